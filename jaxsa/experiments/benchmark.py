"""Timing of the fig4 computation: compile time and steady state, plotting excluded.

Used by ``benchmarks/bench_fig4.py`` and ``jaxsa benchmark``. Every timing blocks until the
result is ready (``jax.block_until_ready``); steady state is the minimum and median over
``repeats`` executions of the already compiled computations.
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import jax

from jaxsa.experiments import fig4
from jaxsa.relations import Settings, batched_cdf_jit, check_inputs, quantile_report

__all__ = ["benchmark_fig4", "format_table"]


def benchmark_fig4(settings: Settings = Settings(), repeats: int = 10) -> dict:
    """Compile and steady-state times of all 12 fig4 configurations (3 compiled calls)."""
    settings = fig4.with_common_grid(settings)
    starts = fig4.batch_of_starts(settings)
    run = batched_cdf_jit if settings.method == "cdf" else quantile_report
    compiled, compile_s = {}, {}
    paths = {k: check_inputs(p, settings, None) for k, p in fig4.paper_paths().items()}
    for name, path in paths.items():
        t0 = time.perf_counter()
        compiled[name] = run.lower(path, starts, settings).compile()
        compile_s[name] = time.perf_counter() - t0
        jax.block_until_ready(compiled[name](path, starts))  # warm-up

    per_schedule = {name: [] for name in paths}
    totals = []
    for _ in range(repeats):
        t_all = time.perf_counter()
        for name, path in paths.items():
            t0 = time.perf_counter()
            jax.block_until_ready(compiled[name](path, starts))
            per_schedule[name].append(time.perf_counter() - t0)
        totals.append(time.perf_counter() - t_all)
    dev = jax.devices()[0]
    return {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, {dev.platform} "
                   f"({getattr(dev, 'device_kind', '')})",
        "configurations": 12,
        "n_quantiles": settings.n_quantiles,
        "compile_s": compile_s,
        "compile_total_s": sum(compile_s.values()),
        "steady_min_s": {k: min(v) for k, v in per_schedule.items()},
        "steady_median_s": {k: statistics.median(v) for k, v in per_schedule.items()},
        "total_min_s": min(totals),
        "total_median_s": statistics.median(totals),
        "repeats": repeats,
    }


def format_table(res: dict) -> str:
    lines = [
        f"fig4 benchmark on {res['machine']}; {res['configurations']} configurations, "
        f"n_quantiles={res['n_quantiles']}, {res['repeats']} repeats",
        f"{'schedule':10s} {'compile [s]':>12s} {'steady min [s]':>15s} {'steady median [s]':>18s}",
    ]
    for k in res["compile_s"]:
        lines.append(f"{k:10s} {res['compile_s'][k]:12.2f} {res['steady_min_s'][k]:15.4f} "
                     f"{res['steady_median_s'][k]:18.4f}")
    lines.append(f"{'all 12':10s} {res['compile_total_s']:12.2f} {res['total_min_s']:15.4f} "
                 f"{res['total_median_s']:18.4f}")
    return "\n".join(lines)
