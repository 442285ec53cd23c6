"""Stochastic thermodynamics of diffusion models, relation by relation (docs/spec.md §1–3).

    python examples/thermodynamics.py [--fast]

``--fast`` (what CI runs) uses fewer trajectories, only the OU process in part 1 and one
dimension in part 4.

1. Path space (Eqs. 41–50): entropy production from Langevin trajectories, as KL(P_F || P_B) and
   as the mean stochastic entropy production, the integral fluctuation theorem, and the
   density-side integral, for an Ornstein–Uhlenbeck process and the paper's cond-OT schedule.
2. Speed limit (Eq. 68): S_tot >= L²/(τT) >= W2²/(τT), equal on the W2 geodesic.
3. Uncertainty relation (Eqs. 72–76): v_r² <= v_2² for an observable, equality for r*.
4. Conditional kinetic energy (Eqs. 92–94): c2 meets d∫(σ'² + m'²) as d grows at fixed N.
5. DDIM coordinates (Eqs. 33–35): x/m_t has no force.
"""

import sys

import jax
import jax.numpy as jnp

import jaxsa

fast = "--fast" in sys.argv
n_paths = 1000 if fast else 20000
key = jax.random.key(0)

with jaxsa.float64():
    # 1. path space ------------------------------------------------------------------------
    ou = jaxsa.OrnsteinUhlenbeck([[-1.0]], 0.5, [1.5], [[0.25]])
    paper = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), jaxsa.paper_data())
    cases = [("OU", ou, (0.0, 1.0)), ("cond-OT, paper data", paper, (0.1, 0.9))]
    for name, proc, (t0, t1) in cases[:1] if fast else cases:  # --fast: CI smoke run
        exact = float(jaxsa.entropy_production(proc, t0, t1))
        pe = jaxsa.path_entropy(proc, key, n_paths, t0, t1, n_steps=100 if fast else 400)
        s = pe.summary(z=3.0)
        print(f"[{name}] S_tot on [{t0}, {t1}] from the density: {exact:.4f}")
        for est in ("dual", "s_tot"):
            (m, hw), (ift, ihw) = s[f"S_tot_{est}"], s[f"ift_{est}"]
            print(f"    trajectories ({est:5s}): S_tot = {m:.4f} ± {hw:.4f}, "
                  f"E[exp(-s)] = {ift:.3f} ± {ihw:.3f}")

    # 2. speed limit ---------------------------------------------------------------------------
    geo = jaxsa.GaussianGeodesic([0.0], 1.0, [2.0], 0.5, T=0.3)
    rot = jaxsa.OrnsteinUhlenbeck([[-1.0, 2.0], [-2.0, -1.0]], 0.5, [1.0, 0.0], [[0.25, 0.0], [0.0, 0.1]])
    for name, proc in (("W2 geodesic", geo), ("rotating OU", rot)):
        sl = jaxsa.speed_limit(proc, 0.0, 1.0)
        print(f"[speed limit, {name}] S_tot = {float(sl.S_tot):.5f} >= L²/(τT) = "
              f"{float(sl.length_bound):.5f} >= W2²/(τT) = {float(sl.w2_bound):.5f}")

    # 3. uncertainty relation ------------------------------------------------------------------
    t = 0.5
    vr, v2 = jaxsa.observable_speed_sq(paper, t, lambda x: jnp.log(1 + x[0] ** 2))
    vopt, _ = jaxsa.observable_speed_sq(paper, t, jaxsa.optimal_observable_gradient(paper, t),
                                        gradient=True)
    print(f"[TUR, cond-OT t={t}] v_r² = {float(vr):.5f} <= v_r*² = {float(vopt):.5f} = v_2² = "
          f"{float(v2):.5f}; v_1 = {float(jaxsa.w1_speed(paper, t)):.5f} <= v_2 = {float(v2) ** 0.5:.5f}")

    # 4. conditional kinetic energy ------------------------------------------------------------
    n_points = 8
    print(f"[kinetic energy, N = {n_points} points, cond-OT] d, c2, K_c = d∫(σ'²+m'²), c2/K_c")
    for d in ((16,) if fast else (1, 4, 16, 64, 256, 1024)):
        path = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), jaxsa.point_cloud_data(key, n_points, d, 0.05))
        est = jaxsa.kinetic_c2_monte_carlo(path, key, 128 if fast else 512, 32)
        c2, se = est.value, est.stderr
        kc = float(jaxsa.conditional_kinetic_energy(path.schedule, d))
        print(f"    d = {d:5d}: c2 = {float(c2):9.3f} ± {float(se):.3f}, K_c = {kc:8.1f}, "
              f"ratio {float(c2) / kc:.3f}")
    for name, sched in (("cond-OT", jaxsa.CondOT()), ("cosine", jaxsa.Cosine()),
                        ("interpolated λ=0.5", jaxsa.Interpolated(0.5))):
        print(f"    ∫(σ'² + m'²) dt for {name}: {float(jaxsa.conditional_kinetic_energy(sched)):.4f}")

    # 5. DDIM coordinates ----------------------------------------------------------------------
    bar = jaxsa.ddim_path(jaxsa.DiffusionPath(jaxsa.Cosine(1.0), jaxsa.paper_data()))
    print(f"[DDIM, cosine] force at t=0.5: {float(bar.schedule.force(0.5, 1.0))}, "
          f"temperature T/m² = {float(bar.schedule.temperature(0.5)):.4f}")
