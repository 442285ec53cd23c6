"""jaxsa: speed-accuracy relations of diffusion models, in JAX.

The whole public API is re-exported here; the pipeline reads top to bottom:
schedules (and families) → densities → forward process → estimated process (flow) → metrics →
relations → sweeps, validation and schedule optimisation.

Importing jaxsa never changes JAX's global float64 switch. The quantities of the paper need
float64 (χ² ratios of densities near zero, differences of Wasserstein distances); enable it
in your program (``jax.config.update("jax_enable_x64", True)``) or use ``jaxsa.float64()``.
Functions that need it warn (:class:`Float64Warning`) when called in float32.
"""

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
from jaxsa.flow import ODESettings as ODESettings
from jaxsa.flow import solve_flow as solve_flow
from jaxsa.flow import transport as transport
from jaxsa.forward import DiffusionPath as DiffusionPath
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

from jaxsa.optimize import optimize_schedule as optimize_schedule
from jaxsa.sweep import SweepSpec as SweepSpec
from jaxsa.sweep import run_sweep as run_sweep
from jaxsa.validate import run_validation as run_validation

__version__ = "0.1.0"
