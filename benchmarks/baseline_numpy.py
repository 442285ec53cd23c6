"""The paper's own method (Appendix F) in plain numpy/scipy/POT: the comparison baseline.

For one (schedule, perturbation): draw N samples of P_τ = N(0, 1) and of the perturbed start,
integrate the probability-flow ODE backwards with classical RK4 and τ/Δt = 100 steps,
estimate densities by histograms on 500 cells of [-4.5, 4.5], compute W1 between the two sample
sets with POT at every step, ∂_t W1 by finite differences, v2² = ∫ν²P from the histogram,
D0 = ∫(P̃-P)²/P from the histograms at t = τ, then η, c1, c2 by the trapezoid rule.

Used by ``benchmarks/bench_vs_baseline.py``; importable on its own (numpy, scipy, POT only).
"""

from __future__ import annotations

import numpy as np
import ot
from scipy import stats

SQ035 = np.sqrt(0.35)


def schedule(name, t):
    """(m, σ, ṁ, σσ̇) of cosine or cond-OT at times t (τ = 1)."""
    if name == "cosine":
        a = 0.5 * np.pi * t
        return np.cos(a), np.sin(a), -0.5 * np.pi * np.sin(a), 0.5 * np.pi * np.sin(a) * np.cos(a)
    return 1 - t, t, -np.ones_like(t), t


def velocity(name, t, x):
    """ν_t(x) for the paper's data (Eqs. 96–97), vectorised over x."""
    m, s, dm, sds = schedule(name, t)
    mus = np.array([SQ035, -SQ035])
    var = s**2 + m**2 * 0.09
    logits = -0.5 * (x[:, None] - m * mus) ** 2 / var
    r = np.exp(logits - logits.max(1, keepdims=True))
    r /= r.sum(1, keepdims=True)
    post = (0.09 * m * x[:, None] + s**2 * mus) / var
    mean_y = (r * post).sum(1)
    score = (r * (m * mus - x[:, None]) / var).sum(1)
    return dm * mean_y - sds * score


def sample_perturbation(name, n, rng):
    if name == "mean":
        return rng.normal(1.0, 1.0, n)
    if name == "variance":
        return rng.normal(0.0, 0.8, n)
    if name == "mixture":
        c = rng.integers(0, 3, n)
        mu = np.array([-1, 0, 1]) / 0.94
        sd = np.array([0.3, 0.8, 0.3]) / 0.94
        return rng.normal(mu[c], sd[c])
    return rng.uniform(-np.sqrt(3), np.sqrt(3), n)


def run(sched, pert, n, steps=100, cells=500, seed=0):
    """η, c1, c2 by the paper's method with n samples per process."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    xt = sample_perturbation(pert, n, rng)
    if pert == "uniform":
        cells = 5000  # as in the paper, for the discontinuous start
    edges = np.linspace(-4.5, 4.5, cells + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    dx = edges[1] - edges[0]
    h = -1.0 / steps
    ts = np.linspace(1.0, 0.0, steps + 1)
    w1 = np.empty(steps + 1)
    v2 = np.empty(steps + 1)

    def hist(s):
        return np.histogram(s, edges)[0] / (len(s) * dx)

    p_tau, pt_tau = hist(x), hist(xt)
    ok = p_tau > 0
    d0 = np.sum((pt_tau[ok] - p_tau[ok]) ** 2 / p_tau[ok]) * dx
    for k, t in enumerate(ts):
        w1[k] = ot.wasserstein_1d(x, xt)
        v2[k] = np.sum(velocity(sched, t, centres) ** 2 * hist(x)) * dx
        if k == steps:
            break
        for arr in (x, xt):  # RK4 step of dx/dt = ν_t(x), backwards in time
            k1 = velocity(sched, t, arr)
            k2 = velocity(sched, t + h / 2, arr + h / 2 * k1)
            k3 = velocity(sched, t + h / 2, arr + h / 2 * k2)
            k4 = velocity(sched, t + h, arr + h * k3)
            arr += h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    dw1 = np.gradient(w1, ts)
    t_up = ts[::-1]
    c1 = np.trapezoid((dw1**2 / d0)[::-1], t_up)
    c2 = np.trapezoid(v2[::-1], t_up)
    eta = (w1[-1] - w1[0]) ** 2 / d0
    return {"eta": eta, "c1": c1, "c2": c2, "D0": d0}


if __name__ == "__main__":
    import time

    for n in (10_000, 100_000):
        t0 = time.perf_counter()
        print(n, run("cond-ot", "mean", n), f"{time.perf_counter() - t0:.2f} s")
    print("exact D0 (mean):", np.e - 1, "; scipy check of P_tau:", stats.norm.pdf(0.0))
