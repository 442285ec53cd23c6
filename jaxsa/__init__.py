"""jaxsa: speed-accuracy relations of diffusion models, in JAX.

The whole public API is re-exported here; the pipeline reads top to bottom:
schedules (and families) → densities → forward process → estimated process (flow) → metrics →
relations → sweeps, validation and schedule optimisation.

Importing jaxsa never changes JAX's global float64 switch. The quantities of the paper need
float64 (χ² ratios of densities near zero, differences of Wasserstein distances); enable it
in your program (``jax.config.update("jax_enable_x64", True)``) or use ``jaxsa.float64()``.
Functions that need it warn (`Float64Warning`) when called in float32.
"""

from jaxsa import cdf_quadrature as cdf_quadrature
from jaxsa._checks import DivergenceWarning as DivergenceWarning
from jaxsa._checks import Float64Warning as Float64Warning
from jaxsa._checks import float64 as float64
from jaxsa.densities import PERTURBATION_NAMES as PERTURBATION_NAMES
from jaxsa.densities import Density as Density
from jaxsa.densities import GaussianMixture as GaussianMixture
from jaxsa.densities import Uniform as Uniform
from jaxsa.densities import gaussian as gaussian
from jaxsa.densities import paper_data as paper_data
from jaxsa.densities import paper_perturbations as paper_perturbations
from jaxsa.densities import paper_prior as paper_prior
from jaxsa.dissipation import speed_cost as speed_cost
from jaxsa.dissipation import v2_sq as v2_sq
from jaxsa.families import Interpolated as Interpolated
from jaxsa.families import PolarBernstein as PolarBernstein
from jaxsa.empirical import EmpiricalPath as EmpiricalPath
from jaxsa.empirical import MCEstimate as MCEstimate
from jaxsa.empirical import chi2_divergence as chi2_divergence
from jaxsa.empirical import chi2_isotropic_gaussian as chi2_isotropic_gaussian
from jaxsa.empirical import dissipation_mc as dissipation_mc  # ∫T Ṡ^tot dt; jaxsa.entropy_production is S^tot
from jaxsa.empirical import transport_particles as transport_particles
from jaxsa.flow import ODESettings as ODESettings
from jaxsa.flow import solve_flow as solve_flow
from jaxsa.flow import transport as transport
from jaxsa.forward import DiffusionPath as DiffusionPath
from jaxsa.processes import AbstractForwardProcess as AbstractForwardProcess
from jaxsa.processes import AbstractVelocityField as AbstractVelocityField
from jaxsa.processes import VelocityFunction as VelocityFunction
from jaxsa.processes import velocity_field as velocity_field
from jaxsa.metrics import chi2_gaussian_1d as chi2_gaussian_1d
from jaxsa.metrics import w1_cdf_grid as w1_cdf_grid
from jaxsa.metrics import w1_gaussian_1d as w1_gaussian_1d
from jaxsa.metrics import w1_point_cloud as w1_point_cloud
from jaxsa.metrics import w1_samples_1d as w1_samples_1d
from jaxsa.metrics import w2_gaussian as w2_gaussian
from jaxsa.metrics import w2_isotropic_gaussian as w2_isotropic_gaussian
from jaxsa.metrics import wp_quantiles as wp_quantiles
from jaxsa.ot_schedule import OTPath as OTPath
from jaxsa.relations import Report as Report
from jaxsa.relations import Settings as Settings
from jaxsa.relations import end_marginal as end_marginal
from jaxsa.relations import quantile_nodes as quantile_nodes
from jaxsa.relations import perturbation_start as perturbation_start
from jaxsa.relations import speed_accuracy as speed_accuracy
from jaxsa.relations import speed_accuracy_from_start as speed_accuracy_from_start
from jaxsa.schedules import CondOT as CondOT
from jaxsa.schedules import Cosine as Cosine
from jaxsa.schedules import Custom as Custom
from jaxsa.schedules import Schedule as Schedule
from jaxsa.schedules import ScheduleValues as ScheduleValues
from jaxsa.schedules import VEGeometric as VEGeometric
from jaxsa.schedules import VPLinear as VPLinear
from jaxsa.schedules import check_schedule as check_schedule
from jaxsa.fokker_planck import FPSettings as FPSettings
from jaxsa.fokker_planck import Grid as Grid
from jaxsa.fokker_planck import schedule_fokker_planck as schedule_fokker_planck
from jaxsa.fokker_planck import solve_fokker_planck as solve_fokker_planck
from jaxsa.fokker_planck import solve_transport as solve_transport
from jaxsa.grid_relations import GridReport as GridReport
from jaxsa.grid_relations import GridSettings as GridSettings
from jaxsa.grid_relations import speed_accuracy_grid as speed_accuracy_grid
from jaxsa.thermo import EntropyRates as EntropyRates
from jaxsa.thermo import entropy_rates as entropy_rates
from jaxsa.thermo import flux_entropy_rates as flux_entropy_rates
from jaxsa.thermo import gradient_projection as gradient_projection
from jaxsa.thermo import ou_gaussian_rates as ou_gaussian_rates

from jaxsa.ddim import ddim_coordinates as ddim_coordinates
from jaxsa.ddim import ddim_inverse as ddim_inverse
from jaxsa.ddim import ddim_path as ddim_path
from jaxsa.ddim import ddim_schedule as ddim_schedule
from jaxsa.ddim import ddim_velocity as ddim_velocity
from jaxsa.kinetic import conditional_kinetic_energy as conditional_kinetic_energy
from jaxsa.kinetic import kinetic_c2_monte_carlo as kinetic_c2_monte_carlo
from jaxsa.kinetic import point_cloud_data as point_cloud_data
from jaxsa.pathspace import DiffusionProcess as DiffusionProcess
from jaxsa.pathspace import GaussianGeodesic as GaussianGeodesic
from jaxsa.pathspace import OrnsteinUhlenbeck as OrnsteinUhlenbeck
from jaxsa.pathspace import PathEntropy as PathEntropy
from jaxsa.pathspace import entropy_production as entropy_production
from jaxsa.pathspace import path_entropy as path_entropy
from jaxsa.pathspace import simulate_langevin as simulate_langevin
from jaxsa.quadrature import gauss_legendre as gauss_legendre
from jaxsa.speed_limits import SpeedLimit as SpeedLimit
from jaxsa.speed_limits import observable_speed_sq as observable_speed_sq
from jaxsa.speed_limits import optimal_observable_gradient as optimal_observable_gradient
from jaxsa.speed_limits import speed_limit as speed_limit
from jaxsa.speed_limits import w1_speed as w1_speed
from jaxsa.optimize import optimize_schedule as optimize_schedule
from jaxsa.sweep import SweepSpec as SweepSpec
from jaxsa.sweep import run_sweep as run_sweep
from jaxsa.validate import run_validation as run_validation
from jaxsa.metrics import W1Result as W1Result
from jaxsa.metrics import w1_bounds as w1_bounds
from jaxsa.cfm import CFMSettings as CFMSettings
from jaxsa.cfm import LearnedVelocity as LearnedVelocity
from jaxsa.cfm import train_cfm as train_cfm

__version__ = "0.1.0"
