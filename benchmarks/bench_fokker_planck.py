"""Benchmark: grid Fokker–Planck solves over [0, τ], compile vs steady state, with accuracy.

    python benchmarks/bench_fokker_planck.py [--repeats 3]

1D, 512 cells on [-7, 7], the paper's data: cond-OT and cosine schedules (Kvaerno5 with the
O(n) tridiagonal Newton solve, time s = ∫dt/m, exact limit at τ); the whole grid pipeline
``speed_accuracy_grid`` (cond-OT, perturbation ``mean``).
2D, 128×128 cells: the rotational Ornstein–Uhlenbeck force on [-7, 7]² over [0, 1] (Tsit5), with
the weighted-Poisson projection of v₂ at t = 1; the cond-OT schedule with the Swiss-roll
mixture of the non-conservative experiment on [-6, 6]² over [0, τ] (Tsit5 in s-time).
Every timing blocks until ready; "compile" is the first call minus a steady call.
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import jaxsa  # noqa: E402
from jaxsa.experiments.nonconservative import swiss_roll_mixture  # noqa: E402
from jaxsa.solvers.fokker_planck import Grid, schedule_fokker_planck, solve_fokker_planck  # noqa: E402
from jaxsa.relations.grid import speed_accuracy_grid  # noqa: E402
from jaxsa.thermo.grid import entropy_rates, ou_gaussian_rates  # noqa: E402


def timed(fn, repeats):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        runs.append(time.perf_counter() - t0)
    steady = float(np.median(runs))
    return out, first - steady, steady


def row(name, compile_s, steady_s, extra):
    print(f"| {name} | {compile_s:.1f} | {steady_s:.3f} | {extra} |", flush=True)


def ou_cov(A, T, c0, t):
    eye = jnp.eye(2)
    M = jnp.kron(eye, A) + jnp.kron(A, eye)
    aug = jnp.zeros((5, 5)).at[:4, :4].set(M).at[:4, -1].set(2 * T * eye.ravel(order="F"))
    y = jax.scipy.linalg.expm(aug * t) @ jnp.concatenate([jnp.asarray(c0).ravel(order="F"), jnp.ones(1)])
    cov = y[:4].reshape(2, 2, order="F")
    return 0.5 * (cov + cov.T)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print("| solve | compile [s] | steady (median) [s] | accuracy / work |")
    print("|---|---|---|---|")

    g1 = Grid.uniform(-7, 7, 512)
    ts = jnp.linspace(0.0, 1.0, 11)
    for name, sch in (("cond-OT", jaxsa.CondOT(1.0)), ("cosine", jaxsa.Cosine(1.0))):
        path = jaxsa.DiffusionPath(sch, jaxsa.paper_data())
        p0 = g1.sample(path.data.density)
        sol, c, s = timed(lambda: schedule_fokker_planck(path.schedule, g1, p0, ts), a.repeats)
        exact = jax.vmap(lambda t: path.density(t, g1.points()))(ts)
        row(f"1D 512 cells, {name}, [0, τ]", c, s,
            f"max abs density error {float(jnp.max(jnp.abs(sol.p - exact))):.2e}, "
            f"{int(sol.num_steps)} steps, mass error {float(sol.mass_error):.1e}")

    path = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), jaxsa.paper_data())
    pert = jaxsa.paper_perturbations()["mean"]
    ref = jaxsa.speed_accuracy(path, pert)
    rep, c, s = timed(lambda: speed_accuracy_grid(path, pert), a.repeats)
    rel = {k: abs(float(getattr(rep, k)) / float(getattr(ref, k)) - 1) for k in ("eta", "c1", "c2", "D0")}
    row("1D grid pipeline (cond-OT, mean), 512 cells", c, s,
        ", ".join(f"{k} rel. error {v:.1e}" for k, v in rel.items()) + f", {rep.transport_steps} transport steps")

    A = jnp.array([[-1.0, 1.0], [-1.0, -1.0]])
    T, c0 = 0.5, np.diag([0.8**2, 1.1**2])
    g2 = Grid.uniform((-7, -7), (7, 7), (128, 128))
    x = np.asarray(g2.points())
    p2 = np.exp(-0.5 * (x[..., 0] ** 2 / c0[0, 0] + x[..., 1] ** 2 / c0[1, 1])) / (2 * np.pi * 0.88)
    force = lambda t, x: x @ A.T  # noqa: E731
    sol, c, s = timed(lambda: solve_fokker_planck(force, lambda t: T, g2, p2, jnp.array([0.0, 1.0])), a.repeats)
    cov = ou_cov(A, T, c0, 1.0)
    ci = jnp.linalg.inv(cov)
    pex = jnp.exp(-0.5 * jnp.einsum("...i,ij,...j->...", x, ci, x)) / (2 * np.pi * jnp.sqrt(jnp.linalg.det(cov)))
    err = float(jnp.max(jnp.abs(sol.p[-1] - pex)) / jnp.max(pex))
    row("2D 128×128, rotational OU, [0, 1]", c, s,
        f"max density error {err:.1e} of the peak, {int(sol.num_steps)} steps, min {float(sol.min_density):.0e}")
    ref = ou_gaussian_rates(A, T, c0, 1.0)
    r, c, s = timed(lambda: entropy_rates(force, lambda t: T, g2, sol.p[-1], 1.0, floor=1e-9), a.repeats)
    row("2D 128×128 thermodynamics (CG projection of v₂)", c, s,
        f"CG residual {float(r.cg_residual):.1e}; rel. errors T·Ṡ {float(r.T_total / ref.T_total - 1):.1e}, "
        f"v₂² {float(r.v2_sq / ref.v2_sq - 1):.1e}, housekeeping {float(r.housekeeping / ref.housekeeping - 1):.1e}")

    g3 = Grid.uniform((-6, -6), (6, 6), (128, 128))
    path2 = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), swiss_roll_mixture())
    q2 = path2.density(0.0, g3.points())
    ts2 = jnp.array([0.0, 0.5, 1.0])
    sol, c, s = timed(lambda: schedule_fokker_planck(path2.schedule, g3, q2, ts2), a.repeats)
    exact = jax.vmap(lambda t: path2.density(t, g3.points()))(ts2)
    err = float(jnp.max(jnp.abs(sol.p - exact)) / jnp.max(exact[1]))
    row("2D 128×128, cond-OT Swiss roll, [0, τ]", c, s,
        f"max density error {err:.1e} of the peak at τ/2, {int(sol.num_steps)} steps")
