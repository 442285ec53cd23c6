"""jaxsa against the paper's method in numpy/scipy/POT (baseline_numpy.py), at matched accuracy.

    python benchmarks/bench_vs_baseline.py [--samples 10000 100000]

For a few (schedule, perturbation) pairs: errors of η, c₁, c₂ against jaxsa's converged values
(Settings().refined(2)), and time per configuration, for the baseline at N samples and for
jaxsa at several quantile resolutions (steady state, four perturbations per compiled call, so
time per configuration = call time / 4). The speed ratio is taken at matched accuracy: the
cheapest jaxsa resolution whose worst relative error is no larger than the baseline's.
"""

import argparse
import os
import platform
import sys
import time

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, os.path.dirname(__file__))

import baseline_numpy  # noqa: E402

import jaxsa  # noqa: E402
from jaxsa.densities import PERTURBATION_NAMES  # noqa: E402
from jaxsa.experiments.fig4 import batch_of_starts, paper_paths  # noqa: E402

PAIRS = [("cond-ot", "mean"), ("cosine", "mixture"), ("cond-ot", "uniform")]


def jaxsa_run(settings, repeats=5):
    starts = batch_of_starts(settings.quantile_method())
    paths = paper_paths()
    out, per_cfg = {}, []
    for sname in {s for s, _ in PAIRS}:
        f = jax.jit(lambda p, s: jaxsa.speed_accuracy_from_start(p, s, settings))
        rep = jax.block_until_ready(f(paths[sname], starts))
        t0 = time.perf_counter()
        for _ in range(repeats):
            jax.block_until_ready(f(paths[sname], starts))
        per_cfg.append((time.perf_counter() - t0) / repeats / len(PERTURBATION_NAMES))
        for i, p in enumerate(PERTURBATION_NAMES):
            out[(sname, p)] = {k: float(getattr(rep, k)[i]) for k in ("eta", "c1", "c2")}
    return out, float(np.mean(per_cfg))


def worst_error(values, ref):
    return max(abs(values[pair][k] / ref[pair][k] - 1) for pair in PAIRS for k in ("eta", "c1", "c2"))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, nargs="+", default=[10_000, 100_000])
    args = ap.parse_args()
    ref, _ = jaxsa_run(jaxsa.Settings().refined(2), repeats=1)
    rows = []
    for nq in (64, 128, 256, 1024):
        vals, t = jaxsa_run(jaxsa.Settings(n_quantiles=nq, n_gauss=16 if nq < 1024 else 32))
        rows.append(("jaxsa", f"n_quantiles={nq}", worst_error(vals, ref), t))
    for n in args.samples:
        vals, ts = {}, []
        for pair in PAIRS:
            t0 = time.perf_counter()
            vals[pair] = baseline_numpy.run(*pair, n)
            ts.append(time.perf_counter() - t0)
        rows.append(("numpy/POT", f"N={n}", worst_error(vals, ref), float(np.mean(ts))))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, jax {jax.__version__}, "
          f"{jax.devices()[0].platform}; pairs {PAIRS}")
    print(f"{'method':10s} {'resolution':18s} {'worst rel. error':>17s} {'s / config':>11s}")
    for r in rows:
        print(f"{r[0]:10s} {r[1]:18s} {r[2]:17.2e} {r[3]:11.4f}")
    for b in [r for r in rows if r[0] != "jaxsa"]:
        ok = [r for r in rows if r[0] == "jaxsa" and r[2] <= b[2]]
        if ok:
            j = min(ok, key=lambda r: r[3])
            print(f"matched accuracy vs baseline {b[1]} (error {b[2]:.1e}): jaxsa {j[1]} "
                  f"(error {j[2]:.1e}) is {b[3] / j[3]:.0f}x faster")
