"""jaxsa: speed-accuracy relations of diffusion models, in JAX.

The whole public API is re-exported here, grouped by the stage of the pipeline it belongs to
(each stage imports only the ones before it): schedules and densities → solvers and metrics →
processes and velocity fields (the protocol
[`AbstractVelocityField`][jaxsa.processes.base.AbstractVelocityField]) → thermodynamics →
relations → studies. ``jaxsa.cdf_quadrature`` is the CDF
method's quadrature module; ``jaxsa.results``, ``jaxsa.plot`` and ``jaxsa.experiments`` are
imported on demand (the numerical core imports no matplotlib, flax or tqdm).

Importing jaxsa never changes JAX's global float64 switch. The quantities of the paper need
float64 (χ² ratios of densities near zero, differences of Wasserstein distances); enable it
in your program (``jax.config.update("jax_enable_x64", True)``) or use ``jaxsa.float64()``.
Functions that need it warn (`Float64Warning`) when called in float32.
"""

# ---- checks and float64 --------------------------------------------------------------------

from jaxsa._checks import (  # noqa: F401
    Float64Warning,
    DivergenceWarning,
    float64,
)

# ---- schedules and densities ---------------------------------------------------------------

from jaxsa.schedules.standard import (  # noqa: F401
    Schedule,
    ScheduleValues,
    Cosine,
    CondOT,
    VPLinear,
    VEGeometric,
    Custom,
    check_schedule,
)

from jaxsa.schedules.families import (  # noqa: F401
    Interpolated,
    PolarBernstein,
    bernstein,
)

from jaxsa.densities import (  # noqa: F401
    Density,
    GaussianMixture,
    Uniform,
    gaussian,
    paper_data,
    paper_prior,
    paper_perturbations,
    PERTURBATION_NAMES,
)

# ---- processes and velocity fields (the protocol and its implementations) ------------------

from jaxsa.processes.base import (  # noqa: F401
    AbstractVelocityField,
    AbstractForwardProcess,
    VelocityFunction,
    velocity_field,
)

from jaxsa.processes.diffusion import (  # noqa: F401
    DiffusionPath,
)

from jaxsa.processes.ot import (  # noqa: F401
    OTPath,
)

from jaxsa.processes.empirical import (  # noqa: F401
    PARTICLE_ODE,
    EmpiricalPath,
    ParticleSolution,
    PathMarginal,
    transport_particles,
)

from jaxsa.processes.learned import (  # noqa: F401
    CFMSettings,
    LearnedVelocity,
    VelocityMLP,
    compare_1d_ot,
    data_digest,
    train_cfm,
    train_cfm_family,
    checkpoint_digest,
    ot_coupled_pairs, path_schedule,
)

from jaxsa.processes.langevin import (  # noqa: F401
    OrnsteinUhlenbeck,
    GaussianGeodesic,
    DiffusionProcess,
    as_process,
    check_window,
)

from jaxsa.processes.ddim import (  # noqa: F401
    ddim_coordinates,
    ddim_inverse,
    ddim_schedule,
    ddim_path,
    ddim_velocity,
)

# ---- solvers and quadrature ----------------------------------------------------------------

from jaxsa.solvers.flow import (  # noqa: F401
    ODESettings,
    RK4,
    integrate,
    transport,
    solve_flow,
    max_norm,
)

from jaxsa.solvers.fokker_planck import (  # noqa: F401
    Grid,
    FPSettings,
    FPSolution,
    sg_fluxes,
    divergence,
    boundary_mass,
    solve_fokker_planck,
    schedule_fokker_planck,
    adjacent_pairs,
    field_at_faces,
)

from jaxsa.solvers.transport import (  # noqa: F401
    TransportSolution,
    transport_fluxes,
    solve_transport,
)

from jaxsa.quadrature import (  # noqa: F401
    gauss_legendre, gauss_kronrod, kronrod_panels, kronrod_integral, quantile_nodes,
    bisect_increasing, parabolic_vertex, sampled_maximum,
)

# ---- metrics -------------------------------------------------------------------------------

from jaxsa.metrics import (  # noqa: F401
    W1Result,
    chi2_gaussian_1d,
    w1_bounds,
    w1_cdf_grid,
    w1_gaussian_1d,
    w1_point_cloud,
    w1_samples_1d,
    w2_gaussian,
    w2_isotropic_gaussian,
    wp_quantiles,
)

# ---- thermodynamics ------------------------------------------------------------------------

from jaxsa.thermo.dissipation import (  # noqa: F401
    v2_sq,
    speed_cost,
    w2_sq_to_prior,
)

from jaxsa.thermo.grid import (  # noqa: F401
    EntropyRates,
    entropy_rates,
    flux_entropy_rates,
    gradient_projection,
    ou_gaussian_rates,
)

from jaxsa.thermo.kinetic import (  # noqa: F401
    conditional_kinetic_energy,
    kinetic_c2_monte_carlo,
    point_cloud_data,
)

from jaxsa.thermo.speed_limits import (  # noqa: F401
    SpeedLimit,
    speed_limit,
    observable_speed_sq,
    optimal_observable_gradient,
    w1_speed,
)

from jaxsa.thermo.path_entropy import (  # noqa: F401
    entropy_production,
    PathEntropy,
    mean_ci,
    simulate_langevin,
    path_entropy,
)

from jaxsa.thermo.monte_carlo import (  # noqa: F401
    MCEstimate,
    dissipation_mc,
    chi2_divergence,
    chi2_isotropic_gaussian,
    gaussian_path_c2,
)

from jaxsa.solvers.steps import (  # noqa: F401
    STEP_RULES,
    step_grid,
)

from jaxsa.solvers.samplers import (  # noqa: F401
    SAMPLER_METHODS,
    sample,
)

from jaxsa.processes.reschedule import (  # noqa: F401
    RescheduledField,
    reschedule,
)

# ---- relations -----------------------------------------------------------------------------

from jaxsa.relations.report import (  # noqa: F401
    Settings,
    Report,
    SCALE_OF,
    violated,
    tolerance_of,
)

from jaxsa.relations.api import (  # noqa: F401
    speed_accuracy,
    speed_accuracy_from_start,
    end_marginal,
    check_inputs,
)

from jaxsa.relations.cdf import (  # noqa: F401
    cdf_report,
    batched_cdf_jit,
)

from jaxsa.relations.quantile import (  # noqa: F401
    abs_quadrature,
    perturbation_start,
    quantile_report,
)

from jaxsa.relations.grid import (  # noqa: F401
    GridSettings,
    GridReport,
    speed_accuracy_grid,
    cell_averages,
    abs_integral,
)

from jaxsa.relations.audit import (  # noqa: F401
    AuditSettings,
    AuditReport,
    audit,
)

from jaxsa.relations.estimators import (  # noqa: F401
    eta_interval, w1_flow_derivative, chi2_monte_carlo, Chi2Estimate, replicate_interval,
    student_t_quantile, chi_mean, w1_paired, legendre_derivative, map_each,
    isotropic_gaussian, start_chi2,
)

# ---- studies -------------------------------------------------------------------------------

from jaxsa.studies.steps import (  # noqa: F401
    STEP_SCHEDULES, StepsSettings, optimise_grid, run_steps, sampler_w1, step_data,
)
from jaxsa.studies.steps_dd import LearnedFlow, learned_flow, sampler_error  # noqa: F401

from jaxsa.studies.sweep import (  # noqa: F401
    FAMILIES,
    SweepSpec,
    sweep_settings,
    load_spec,
    make_evaluator,
    run_sweep,
    run_chunks,
    map_over_devices,
    sweep_points,
    config_mesh,
    to_host,
    write_json_once,
    report_record,
)

from jaxsa.studies.validate import (  # noqa: F401
    random_config,
    run_validation,
    FAMILY_NAMES,
)

from jaxsa.studies.optimize import (  # noqa: F401
    optimize_schedule,
)

from jaxsa.relations import cdf_quadrature as cdf_quadrature  # noqa: E402

__all__ = [
    # checks and float64
    "Float64Warning",
    "DivergenceWarning",
    "float64",
    # schedules and densities
    "Schedule",
    "ScheduleValues",
    "Cosine",
    "CondOT",
    "VPLinear",
    "VEGeometric",
    "Custom",
    "check_schedule",
    "Interpolated",
    "PolarBernstein",
    "bernstein",
    "Density",
    "GaussianMixture",
    "Uniform",
    "gaussian",
    "paper_data",
    "paper_prior",
    "paper_perturbations",
    "PERTURBATION_NAMES",
    # processes and velocity fields (the protocol and its implementations)
    "RescheduledField",
    "reschedule",
    "AbstractVelocityField",
    "AbstractForwardProcess",
    "VelocityFunction",
    "velocity_field",
    "DiffusionPath",
    "OTPath",
    "PARTICLE_ODE",
    "EmpiricalPath",
    "ParticleSolution",
    "PathMarginal",
    "transport_particles",
    "CFMSettings",
    "LearnedVelocity",
    "VelocityMLP",
    "compare_1d_ot",
    "data_digest",
    "train_cfm",
    "train_cfm_family",
    "checkpoint_digest",
    "ot_coupled_pairs", "path_schedule",
    "OrnsteinUhlenbeck",
    "GaussianGeodesic",
    "DiffusionProcess",
    "as_process",
    "check_window",
    "ddim_coordinates",
    "ddim_inverse",
    "ddim_schedule",
    "ddim_path",
    "ddim_velocity",
    # solvers and quadrature
    "STEP_RULES",
    "step_grid",
    "SAMPLER_METHODS",
    "sample",
    "ODESettings",
    "RK4",
    "integrate",
    "transport",
    "solve_flow",
    "max_norm",
    "Grid",
    "FPSettings",
    "FPSolution",
    "sg_fluxes",
    "divergence",
    "boundary_mass",
    "solve_fokker_planck",
    "schedule_fokker_planck",
    "adjacent_pairs",
    "field_at_faces",
    "TransportSolution",
    "transport_fluxes",
    "solve_transport",
    "gauss_legendre",
    "gauss_kronrod",
    "kronrod_panels",
    "kronrod_integral",
    "quantile_nodes",
    "bisect_increasing",
    "parabolic_vertex",
    "sampled_maximum",
    # metrics
    "W1Result",
    "chi2_gaussian_1d",
    "w1_bounds",
    "w1_cdf_grid",
    "w1_gaussian_1d",
    "w1_point_cloud",
    "w1_samples_1d",
    "w2_gaussian",
    "w2_isotropic_gaussian",
    "wp_quantiles",
    # thermodynamics
    "v2_sq",
    "speed_cost",
    "w2_sq_to_prior",
    "EntropyRates",
    "entropy_rates",
    "flux_entropy_rates",
    "gradient_projection",
    "ou_gaussian_rates",
    "conditional_kinetic_energy",
    "kinetic_c2_monte_carlo",
    "point_cloud_data",
    "SpeedLimit",
    "speed_limit",
    "observable_speed_sq",
    "optimal_observable_gradient",
    "w1_speed",
    "entropy_production",
    "PathEntropy",
    "mean_ci",
    "simulate_langevin",
    "path_entropy",
    "MCEstimate",
    "dissipation_mc",
    "chi2_divergence",
    "chi2_isotropic_gaussian",
    "gaussian_path_c2",
    # relations
    "Settings",
    "Report",
    "SCALE_OF",
    "violated",
    "tolerance_of",
    "speed_accuracy",
    "speed_accuracy_from_start",
    "end_marginal",
    "check_inputs",
    "cdf_report",
    "batched_cdf_jit",
    "abs_quadrature",
    "perturbation_start",
    "quantile_report",
    "GridSettings",
    "GridReport",
    "speed_accuracy_grid",
    "cell_averages",
    "abs_integral",
    "AuditSettings",
    "AuditReport",
    "audit",
    "eta_interval",
    "w1_flow_derivative",
    "chi2_monte_carlo",
    "Chi2Estimate",
    "replicate_interval",
    "student_t_quantile",
    "chi_mean",
    "w1_paired",
    "legendre_derivative",
    "map_each",
    "isotropic_gaussian",
    "start_chi2",
    # studies
    "STEP_SCHEDULES", "StepsSettings", "optimise_grid", "run_steps", "sampler_w1", "step_data",
    "LearnedFlow", "learned_flow", "sampler_error",
    "FAMILIES",
    "SweepSpec",
    "sweep_settings",
    "load_spec",
    "make_evaluator",
    "run_sweep",
    "run_chunks",
    "map_over_devices",
    "sweep_points",
    "config_mesh",
    "to_host",
    "write_json_once",
    "report_record",
    "random_config",
    "run_validation",
    "FAMILY_NAMES",
    "optimize_schedule",
    "cdf_quadrature",
]

__version__ = "0.1.0"
