r"""The entry points of the 1D relations: input checks, the automatic resolution of the CDF
method, and the quantile method from a start on its nodes."""

from __future__ import annotations

import warnings

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from jaxsa._checks import DivergenceWarning, check, format_number, is_concrete, warn_if_float32
from jaxsa.processes.base import AbstractForwardProcess
from jaxsa.relations.cdf import cdf_report
from jaxsa.relations.quantile import perturbation_start, quantile_nodes, quantile_report
from jaxsa.relations.report import Report, Settings

__all__ = ["speed_accuracy", "speed_accuracy_from_start", "end_marginal", "check_inputs"]


def end_marginal(path):
    r"""$P_\tau$, the end density of a forward process, as a density object (the same as
    ``path.end_marginal()``)."""
    return path.end_marginal()


def _mass_message(settings, name, mass):
    return (f"speed_accuracy: `settings.grid` = {settings.grid} does not hold the mass of the "
            f"{name}: {format_number(mass)} lies outside (> mass_tol = {settings.mass_tol:g}); "
            "widen the grid.")


def check_inputs(path, settings, perturbation_cdf):
    """Structural checks (ValueError now) and value checks (now, or at run time if traced)."""
    if not isinstance(path, AbstractForwardProcess) or not hasattr(path, "data"):
        raise ValueError(
            "speed_accuracy: `path` must be a forward process with Gaussian-mixture data (a "
            f"DiffusionPath or OTPath), got {type(path).__name__}."
        )
    if path.event_shape != () or path.data.means.ndim != 1:
        raise ValueError("speed_accuracy: this is the 1D method; `path.data` must be 1D.")
    if settings.grid is not None:
        lo, hi, n = settings.grid
        if not (lo < hi and n >= 2):
            raise ValueError(f"speed_accuracy: `settings.grid` must be (x_min < x_max, n >= 2), "
                             f"got {settings.grid}.")
    if settings.n_time < 2 or settings.n_grid < 2:
        raise ValueError("speed_accuracy: `settings.n_time` and `settings.n_grid` must be >= 2.")
    if settings.method not in ("cdf", "particles", "flow_map"):
        raise ValueError(f"speed_accuracy: `settings.method` must be 'cdf', 'particles' or "
                         f"'flow_map', got {settings.method!r}.")
    if not settings.rtol > 0:
        raise ValueError(f"speed_accuracy: `settings.rtol` must be > 0, got {settings.rtol}.")
    if settings.method == "cdf":
        if (settings.n_comp < 4 or settings.n_span < 4 or settings.order < 2
                or settings.time_levels < 1 or settings.time_top < 1 or settings.time_order < 2
                or settings.n_cross < 1):
            raise ValueError("speed_accuracy: `settings` resolution too coarse for the cdf method "
                             "(n_comp >= 4, n_span >= 4, order >= 2, time_levels >= 1, "
                             "time_top >= 1, time_order >= 2, n_cross >= 1).")
    elif settings.n_quantiles < 16 or settings.n_gauss < 2:
        raise ValueError("speed_accuracy: `settings` resolution too coarse (n_quantiles >= 16, "
                         "n_gauss >= 2).")
    if settings.method == "flow_map" and not (settings.map_nodes >= 16
                                              and settings.map_z_max >= settings.z_max):
        raise ValueError("speed_accuracy: the flow map needs `settings.map_nodes` >= 16 and "
                         f"`settings.map_z_max` >= z_max = {settings.z_max}; got "
                         f"{settings.map_nodes}, {settings.map_z_max}.")
    path = path.checked()
    if settings.grid is None:
        return path
    # an explicit grid must hold the mass of q, P_τ and the perturbed start (by their CDFs)
    lo, hi, _ = settings.grid
    cdfs = [("data q", path.data.cdf), ("P_tau", path.end_marginal().cdf)]
    if perturbation_cdf is not None:
        cdfs.append(("perturbation", perturbation_cdf))
    funcs = tuple(cdf for _, cdf in cdfs)
    if is_concrete(path, funcs):  # one compiled program, checked in numpy (module docstring)
        masses = [np.asarray(m) for m in _outside_masses_jit(funcs, lo, hi)]
    else:
        masses = _outside_masses(funcs, lo, hi)
    for (name, _), mass in zip(cdfs, masses):
        path = check(mass <= settings.mass_tol, _mass_message(settings, name, mass), path)
    return path


def _outside_masses(cdfs, lo, hi):
    """The mass of each distribution (given by its CDF) outside ``[lo, hi]``."""
    return [cdf(jnp.asarray(lo)) + 1.0 - cdf(jnp.asarray(hi)) for cdf in cdfs]


_outside_masses_jit = eqx.filter_jit(_outside_masses)


def speed_accuracy(path, perturbation, settings: Settings = Settings()) -> Report:
    r"""Every quantity of the speed-accuracy relations for one forward process and one
    perturbed start, each with its error estimate ([spec §4][spec-4], Eqs. 77–82, 91; [§2][spec-2] Eqs. 36,
    66–67; Appendix E).

    Args:
        path: the forward process with its velocity field: a [`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath]
            (schedule + 1D Gaussian-mixture data; closed-form field) or a
            [`jaxsa.OTPath`][jaxsa.processes.ot.OTPath] (exact 1D optimal transport).
        perturbation: the perturbed start $\tilde P_\tau$ of the estimated process, a
            1D [`jaxsa.GaussianMixture`][jaxsa.densities.GaussianMixture] or [`jaxsa.Uniform`][jaxsa.densities.Uniform].
        settings: static [`Settings`][jaxsa.relations.Settings] (method, requested accuracy, resolutions).

    Returns:
        A [`Report`][jaxsa.relations.Report] pytree: values, ``errors`` (estimates), ``converged`` and
        ``D0_finite``. With the default ``method="cdf"`` ([`jaxsa.relations.cdf_quadrature`][jaxsa.relations.cdf_quadrature]) the
        resolution is doubled up to ``settings.max_refine`` times until every estimate meets
        ``settings.rtol`` (outside ``jit``; under a transformation the one resolution given
        is used and ``converged`` tells). When $\chi^2(\tilde P_\tau\|P_\tau)$ diverges
        (a start with heavier tails than $P_\tau$) the report has ``D0 = inf``,
        ``eta = c1 = 0``, ``D0_finite = False`` and a `jaxsa.Float64Warning`-style
        `jaxsa.DivergenceWarning` is issued. Under ``jax.vmap`` over a batch of paths
        or perturbations of one kind every leaf gains a leading batch axis.

    Raises:
        ValueError: an invalid schedule (Eq. 24, end conditions), an explicit grid that does
            not hold the mass, or malformed inputs, before any heavy computation (at run time
            through ``equinox.error_if`` when the inputs are traced).

    Needs float64 (warns otherwise). Example:

    ```python
    with jaxsa.float64():
        path = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), jaxsa.paper_data())
        rep = jaxsa.speed_accuracy(path, jaxsa.gaussian(1.0, 1.0))
        print(rep.eta, rep.errors["eta"], rep.converged)   # η ≤ c₁ ≤ c₂
    ```
    """
    from jaxsa.relations.cdf_quadrature import Start

    warn_if_float32("speed_accuracy (η, c₁, c₂, D₀)", path, perturbation)
    if isinstance(perturbation, Start):
        if settings.method != "cdf":
            raise ValueError("speed_accuracy: a `Start` needs settings.method = 'cdf'.")
    elif not hasattr(perturbation, "normal_score_quantile") or not hasattr(perturbation, "cdf"):
        raise ValueError(
            "speed_accuracy: `perturbation` must be a 1D density with a quantile function "
            f"(GaussianMixture or Uniform), got {type(perturbation).__name__}."
        )
    if getattr(perturbation, "event_shape", ()) != ():
        raise ValueError("speed_accuracy: `perturbation` must be 1D.")
    path = check_inputs(path, settings, perturbation.cdf)
    if settings.method != "cdf":
        start = perturbation_start(perturbation, settings)
        return quantile_report(path, start, settings)
    rep = cdf_report(path, perturbation, settings)
    if is_concrete(rep.converged):
        for _ in range(settings.max_refine):
            if bool(np.all(np.asarray(rep.converged))):
                break
            settings = settings.refined(2)
            rep = cdf_report(path, perturbation, settings)
        if not bool(np.all(np.asarray(rep.D0_finite))):
            warnings.warn(
                "speed_accuracy: chi^2(P~_tau || P_tau) diverges (the perturbed start has "
                "heavier tails than P_tau: its widest component variance is >= 2x that of "
                "P_tau); D0 = inf and eta = c1 = 0 -- the relations bound nothing here.",
                DivergenceWarning, stacklevel=2)
    return rep


def speed_accuracy_from_start(path, start, settings: Settings = Settings()) -> Report:
    """[`speed_accuracy`][jaxsa.relations.speed_accuracy] for a perturbed start given on the quantile nodes.

    ``start = (x, log_p)`` as returned by [`perturbation_start`][jaxsa.relations.perturbation_start] (any 1D density whose
    quantiles and log-density you can evaluate at the normal-score nodes), with any leading
    batch shape: a batch of starts is solved as *one* ODE system (all particles together),
    which is much faster than ``jax.vmap`` over starts, and the report's leaves gain that
    batch shape. Also vmappable over ``path``.
    """
    warn_if_float32("speed_accuracy_from_start (η, c₁, c₂, D₀)", path, start)
    x, log_p = start
    if jnp.shape(x)[-1:] != (settings.n_quantiles,) or jnp.shape(log_p) != jnp.shape(x):
        raise ValueError(
            f"speed_accuracy_from_start: `start` must be two arrays of shape (..., "
            f"{settings.n_quantiles}) (settings.n_quantiles); got {jnp.shape(x)}, {jnp.shape(log_p)}."
        )
    settings = settings.quantile_method()
    path = check_inputs(path, settings, None)
    if settings.grid is not None:
        _, w = quantile_nodes(settings.n_quantiles, settings.z_max)
        lo, hi, _ = settings.grid
        w = jnp.asarray(w)
        outside = ((x < lo) | (x > hi)).astype(w.dtype)  # 0/1 in w's dtype, as w * bool gave
        mass = jnp.sum(w.reshape((1,) * (jnp.ndim(x) - 1) + w.shape) * outside, axis=-1)
        mass = check(mass <= settings.mass_tol, _mass_message(settings, "perturbation", mass), mass)
    return quantile_report(path, (x, log_p), settings)
