"""Benchmark: grid Fokker–Planck solves over [0, τ], compile vs steady state.

    python benchmarks/bench_fokker_planck.py [--repeats 3]

1D: the paper's data, cond-OT schedule, 512 cells (Kvaerno5, time s = ∫dt/m; exact limit at τ).
2D: rotational Ornstein–Uhlenbeck force, 128×128 cells (Tsit5). Every timing blocks until ready.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import jaxsa  # noqa: E402
from jaxsa.fokker_planck import Grid, schedule_fokker_planck, solve_fokker_planck  # noqa: E402


def timed(fn, repeats):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        runs.append(time.perf_counter() - t0)
    return out, first, min(runs)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    path = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), jaxsa.paper_data())
    g1 = Grid.uniform(-6, 6, 512)
    ts = jnp.linspace(0.0, 1.0, 11)
    p0 = g1.sample(path.data.density)
    sol, first, steady = timed(lambda: schedule_fokker_planck(path.schedule, g1, p0, ts).p, a.repeats)
    exact = jax.vmap(lambda t: path.density(t, g1.points()))(ts)
    print(f"1D 512 cells cond-OT [0, tau]: first call {first:.2f} s, steady {steady:.3f} s, "
          f"max density error {float(jnp.max(jnp.abs(sol - exact))):.3e}")
    A = jnp.array([[-1.0, 1.0], [-1.0, -1.0]])
    g2 = Grid.uniform((-7, -7), (7, 7), (128, 128))
    x = np.asarray(g2.points())
    c0 = np.diag([0.8**2, 1.1**2])
    p2 = np.exp(-0.5 * (x[..., 0] ** 2 / c0[0, 0] + x[..., 1] ** 2 / c0[1, 1])) / (2 * np.pi * 0.88)
    force = lambda t, x: x @ A.T  # noqa: E731
    _, first, steady = timed(lambda: solve_fokker_planck(force, lambda t: 0.5, g2, p2,
                                                         jnp.array([0.0, 1.0])).p, a.repeats)
    print(f"2D 128x128 rotational OU [0, 1]: first call {first:.2f} s, steady {steady:.3f} s")
