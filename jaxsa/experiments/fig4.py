r"""The paper's 1D experiment (Sec. IV D, Appendix F; [spec §7][spec-7]): Fig. 4 and Fig. 5.

Data $q = \tfrac12 N(\sqrt{0.35}, 0.3^2) + \tfrac12 N(-\sqrt{0.35}, 0.3^2)$, τ = 1, the
cosine, cond-OT and exact OT schedules, and the four perturbations of Table I. For each
schedule the four perturbed starts are one batch ([`jaxsa.relations.cdf_quadrature.stack_starts`][jaxsa.relations.cdf_quadrature.stack_starts];
with a quantile method, one ODE system), so the whole figure is three compiled calls.
Deterministic: no random numbers are drawn. The density snapshots share one grid,
``(-6, 6)`` unless ``settings.grid`` says otherwise, so that Fig. 5 compares like with like.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxsa.densities import PERTURBATION_NAMES, paper_data, paper_perturbations, paper_prior
from jaxsa.processes.diffusion import DiffusionPath
from jaxsa.processes.ot import OTPath
from jaxsa.relations.cdf_quadrature import stack_starts
from jaxsa.relations import (
    Report,
    Settings,
    check_inputs,
    quantile_report,
    batched_cdf_jit,
    perturbation_start,
)
from jaxsa.results.programs import compiled
from jaxsa.schedules.standard import CondOT, Cosine

__all__ = ["SCHEDULE_NAMES", "paper_paths", "run_fig4", "fig4_records"]

SCHEDULE_NAMES = ("cosine", "cond-ot", "ot")

# keys of a fig4.json record copied from the report (scalars, then series)
_SCALAR_KEYS = Report.SCALARS + Report.SLACKS + (
    "chi2_residual", "forward_endpoint_error", "mass_outside_grid", "ode_steps", "converged",
    "D0_finite", "n_crossings",
)
_SERIES_KEYS = ("t", "v2_sq", "vloss_sq", "W1_t", "dW1_dt")


def paper_paths(tau: float = 1.0) -> dict:
    """The three forward processes of Fig. 4, keyed by schedule name."""
    q = paper_data()
    return {
        "cosine": DiffusionPath(Cosine(tau), q),
        "cond-ot": DiffusionPath(CondOT(tau), q),
        "ot": OTPath(q, paper_prior(), tau),
    }


def with_common_grid(settings: Settings) -> Settings:
    """``settings`` with the fig5 grid ``(-6, 6, n_grid)`` unless one is given."""
    if settings.grid is not None:
        return settings
    return dataclasses.replace(settings, grid=(-6.0, 6.0, settings.n_grid))


def batch_of_starts(settings):
    """The four Table I starts as one batch: a stacked [`Start`][jaxsa.relations.cdf_quadrature.Start]
    (CDF method) or stacked quantile-node starts (quantile methods)."""
    perts = paper_perturbations()
    if settings.method == "cdf":
        return stack_starts([perts[name] for name in PERTURBATION_NAMES])
    starts = [perturbation_start(perts[name], settings) for name in PERTURBATION_NAMES]
    return jax.tree.map(lambda *a: jnp.stack(a), *starts)


def run_fig4(settings: Settings = Settings(), progress=None, tau: float = 1.0):
    """Compute the 12 reports of Fig. 4.

    Args:
        settings: resolution ([`jaxsa.Settings`][jaxsa.relations.Settings]).
        progress: optional callable ``progress(message)`` called after each schedule.
        tau: duration τ.

    Returns:
        ``(reports, timing)``: ``reports[schedule]`` is a [`Report`][jaxsa.relations.Report] batched over
        the perturbations in `jaxsa.PERTURBATION_NAMES` order; ``timing[schedule]``
        holds ``compile_s`` (tracing or loading the stored program, then compiling), ``run_s``
        (one execution) and ``program`` (`jaxsa.results.programs.compiled`'s origin).
    """
    perts = paper_perturbations()
    settings = with_common_grid(settings)
    starts = batch_of_starts(settings)
    reports, timing = {}, {}
    for name, path in paper_paths(tau).items():
        checked = check_inputs(path, settings, None)
        for pname in PERTURBATION_NAMES:  # the grid check of each perturbed start
            check_inputs(path, settings, perts[pname].cdf)
        run = batched_cdf_jit if settings.method == "cdf" else quantile_report

        def report_fields(path_, starts_, run=run):
            rep = run(path_, starts_, settings)
            return {f.name: getattr(rep, f.name) for f in dataclasses.fields(rep)}

        t0 = time.perf_counter()
        call, origin = compiled(report_fields, checked, starts, name=f"fig4-{name}",
                                static=repr(settings))
        t1 = time.perf_counter()
        rep = Report(**jax.block_until_ready(call(checked, starts)))
        t2 = time.perf_counter()
        reports[name] = rep
        timing[name] = {"compile_s": t1 - t0, "run_s": t2 - t1, "program": origin}
        if progress is not None:
            progress(name)
    return reports, timing


def fig4_records(reports: dict) -> list:
    """The 3 × 4 JSON records of ``fig4.json`` (one per schedule and perturbation)."""
    records = []
    for sname in SCHEDULE_NAMES:
        rep = reports[sname]
        for i, pname in enumerate(PERTURBATION_NAMES):
            one = jax.tree.map(lambda a: np.asarray(a)[i], rep)
            rec = {"schedule": sname, "perturbation": pname}
            for k in _SCALAR_KEYS:
                v = np.asarray(getattr(one, k))
                rec[k] = v.item()
            for k in Report.SCALARS + Report.SLACKS:
                rec[f"{k}_err"] = float(np.asarray(one.errors[k]))
            for k in _SERIES_KEYS:
                rec[k] = np.asarray(getattr(one, k)).tolist()
            rec["chi2_t"] = np.asarray(one.chi2_t).tolist()
            rec["chi2"] = np.asarray(one.chi2).tolist()
            rec["ode_success"] = bool(np.asarray(one.ode_success))
            rec["violations"] = one.violations()
            records.append(rec)
    return records


def fig5_records(reports: dict) -> dict:
    """Densities of the forward and estimated processes at the snapshot times (Fig. 4a/5)."""
    first = reports[SCHEDULE_NAMES[0]]
    out = {
        "x": np.asarray(first.x_grid[0]).tolist(),
        "t": np.asarray(first.snapshot_t[0]).tolist(),
        "records": [],
    }
    for sname in SCHEDULE_NAMES:
        rep = reports[sname]
        for i, pname in enumerate(PERTURBATION_NAMES):
            out["records"].append({
                "schedule": sname,
                "perturbation": pname,
                "forward_density": np.asarray(rep.forward_density[i]).tolist(),
                "estimated_density": np.asarray(rep.estimated_density[i]).tolist(),
            })
    return out
