"""Work–precision of the 1D relations on random multimodal configurations (issue 11).

Draws configurations from the wide distribution of ``tests.helpers.reference_1d.random_config``
(2–4 data components with scales down to 0.05 and separations up to 4; cosine, cond-OT,
VP, VE; Gaussian starts up to just below the χ² threshold, mixtures, uniform starts) and
compares against the independent numpy/scipy reference:

* the CDF method at its default resolution (adaptive refinement to rtol = 1e-6), and
* the quantile method (``method="particles"``, the former default) for comparison.

Prints the distribution of relative errors of W₁(q,p), W₁(P_τ,P̃_τ), D₀ and η, the fraction
of records flagged ``converged = False``, how often the error estimate bounds the true
error, and the time per configuration (steady state, compiles excluded).

    python benchmarks/bench_accuracy_1d.py [N] [SEED]
"""

import os
import sys
import time
import warnings

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # the repository root: tests.*
jax.config.update("jax_enable_x64", True)

from tests.helpers import reference_1d as R  # noqa: E402
from tests.relations.test_accuracy_1d import _compare, _objects  # noqa: E402

import jaxsa  # noqa: E402


def main(n=200, seed=0):
    rng = np.random.default_rng(seed)
    cfgs = [R.random_config(rng) for _ in range(n)]
    rows, flagged, times, old_err = [], 0, [], []
    quantile = jaxsa.Settings(method="particles", n_time=2)
    t_ref = 0.0
    for i, cfg in enumerate(cfgs):
        path, pert = _objects(cfg)
        t0 = time.perf_counter()
        ref = R.reference(cfg)
        t_ref += time.perf_counter() - t0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = jaxsa.speed_accuracy(path, pert, jaxsa.Settings(n_time=2))  # compile
            t0 = time.perf_counter()
            rep = jaxsa.speed_accuracy(path, pert, jaxsa.Settings(n_time=2))
            times.append(time.perf_counter() - t0)
            if cfg["perturbation"]["type"] != "uniform":
                raw = {"gaussian": lambda p: jaxsa.gaussian(p["mean"], p["scale"]),
                       "mixture": lambda p: jaxsa.GaussianMixture(p["weights"], p["means"], p["scales"])}
                q = jaxsa.speed_accuracy(path, raw[cfg["perturbation"]["type"]](cfg["perturbation"]),
                                         quantile)
                old_err.append(abs(float(q.eta) - ref["eta"]) / max(abs(ref["eta"]), 1e-300))
        if not bool(rep.converged):
            flagged += 1
        else:
            rows.append(_compare(cfg, rep, ref))
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{n}", flush=True)
    qs = (0.5, 0.9, 0.99, 1.0)
    print(f"{n} configurations (seed {seed}); {flagged} flagged not converged "
          f"({100 * flagged / n:.1f}%)")
    print(f"{'quantity':10s} " + " ".join(f"{'q' + str(q):>10s}" for q in qs) + "   est>=true")
    for k in ("W1_q_p", "W1_init", "D0", "delta_W1", "eta"):
        e = np.array([r[k][0] for r in rows])
        ok = np.mean([r[k][2] for r in rows])
        print(f"{k:10s} " + " ".join(f"{np.quantile(e, q):10.1e}" for q in qs) + f"   {100 * ok:.1f}%")
    ratio = np.array([r[k][1] / max(r[k][0], 1e-16) for r in rows for k in r])
    print(f"estimate / true error: median {np.median(ratio):.1e}, min {np.min(ratio):.1e}")
    oe = np.array(old_err)
    print(f"quantile method (former default) eta rel. error: median {np.median(oe):.1e}, "
          f"90% {np.quantile(oe, 0.9):.1e}, max {np.max(oe):.1e}, "
          f"> 1e-3 in {100 * np.mean(oe > 1e-3):.0f}%")
    print(f"time per configuration (CDF method, steady state, refinements included): "
          f"median {np.median(times) * 1e3:.0f} ms, 90% {np.quantile(times, 0.9) * 1e3:.0f} ms; "
          f"reference {1e3 * t_ref / n:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200, int(sys.argv[2]) if len(sys.argv) > 2 else 0)
