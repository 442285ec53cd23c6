"""Path-space thermodynamics, speed limit, uncertainty relation, conditional kinetic energy and
DDIM coordinates (SPEC §1–3, Eqs. 33–35, 41–50, 66–76, 92–94) against closed forms.

Monte-Carlo checks use fixed keys and tolerances of ``Z`` standard errors; their Euler–Maruyama
bias (weak order 1) was measured well below one standard error at these step counts.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tests.helpers.reference import ou_rates

import jaxsa

Z = 4.0  # half width of the Monte-Carlo acceptance interval, in standard errors


def ou1d():
    return jaxsa.OrnsteinUhlenbeck([[-1.0]], 0.5, [1.5], [[0.25]])


def ou_rot():  # non-conservative: A has an antisymmetric part
    return jaxsa.OrnsteinUhlenbeck([[-1.0, 2.0], [-2.0, -1.0]], 0.5, [0.0, 0.0],
                                   [[0.25, 0.0], [0.0, 0.1]])


# ---- processes: moments and rates -------------------------------------------------------------
def test_ou_moments_and_rates_closed_form():
    p = ou1d()
    for t in (0.0, 0.3, 1.7):
        mu, cov = p.moments(t)
        e = math.exp(-t)
        np.testing.assert_allclose(mu[0], 1.5 * e, rtol=1e-12)
        np.testing.assert_allclose(cov[0, 0], 0.25 * e**2 + 0.5 * (1 - e**2), rtol=1e-12)
    # the matrix-exponential moments solve the moment equations (centred differences);
    # rates agree with the scipy closed form of tests.helpers.reference.ou_rates (quad_vec + Lyapunov)
    q = ou_rot()
    h = 1e-5
    for t in (0.2, 0.9):
        _, _, dmu, dcov = q.moment_rates(t)
        (mp, cp), (mm, cm) = q.moments(t + h), q.moments(t - h)
        np.testing.assert_allclose(dcov, (cp - cm) / (2 * h), atol=1e-8)
        np.testing.assert_allclose(dmu, (mp - mm) / (2 * h), atol=1e-8)
        ref = ou_rates(np.asarray(q.A), float(q.T), np.asarray(q.cov0), t)
        np.testing.assert_allclose(q.T_entropy_rate(t), ref["T_total"], rtol=1e-9)
        np.testing.assert_allclose(q.v2_sq(t), ref["v2_sq"], rtol=1e-9)
        assert ref["housekeeping"] > 1e-3  # genuinely non-conservative


def test_entropy_production_equals_system_plus_bath_closed_form():
    # constant protocol, f = -U' with U = -A x²/2: S_tot = ΔS_sys + ΔS_bath, ΔS_bath = -ΔE[U]/T
    p = ou1d()
    (m0, c0), (m1, c1) = p.moments(0.0), p.moments(1.0)
    def ex2(m, c):
        return c[0, 0] + m[0] ** 2

    ds_sys = 0.5 * math.log(c1[0, 0] / c0[0, 0])
    ds_bath = (-1.0 / 2) * (ex2(m1, c1) - ex2(m0, c0)) / 0.5
    np.testing.assert_allclose(jaxsa.entropy_production(p, 0.0, 1.0), ds_sys + ds_bath, rtol=1e-10)


# ---- path space: KL(P_F||P_B), s_tot, integral fluctuation theorem ----------------------------
def _check_mc(pe, exact, estimators):
    s = pe.summary(z=Z)
    for name in estimators:
        mean, hw = s[f"S_tot_{name}"]
        assert abs(mean - exact) <= hw, (name, mean, exact, hw)
        ift, hw = s[f"ift_{name}"]
        assert abs(ift - 1.0) <= hw, (name, ift, hw)
    return s


def test_path_entropy_ou_kl_and_fluctuation_theorem():
    p = ou1d()
    exact = float(jaxsa.entropy_production(p, 0.0, 1.0))
    pe = jaxsa.path_entropy(p, jax.random.key(0), 4000, 0.0, 1.0, n_steps=200)
    s = _check_mc(pe, exact, ("dual", "s_tot"))
    assert s["S_tot_s_tot"][1] < 0.1 * exact  # the interval is informative
    # the mean system part is the change of Shannon entropy of the Gaussian marginals
    c0, c1 = p.moments(0.0)[1][0, 0], p.moments(1.0)[1][0, 0]
    m, hw = jaxsa.thermo.path_entropy.mean_ci(pe.s_sys, Z)
    assert abs(m - 0.5 * math.log(c1 / c0)) <= hw


def test_path_entropy_paper_schedule():
    # cond-OT with the paper's data on a window where 0 < T_t < inf
    proc = jaxsa.DiffusionProcess(jaxsa.DiffusionPath(jaxsa.CondOT(1.0), jaxsa.paper_data()))
    exact = float(jaxsa.entropy_production(proc, 0.1, 0.9))
    pe = jaxsa.path_entropy(proc, jax.random.key(1), 3000, 0.1, 0.9, n_steps=200)
    _check_mc(pe, exact, ("dual",))


def test_path_entropy_bad_input():
    proc = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), jaxsa.paper_data())
    with pytest.raises(ValueError, match="temperature"):
        jaxsa.entropy_production(proc, 0.0, 0.5)  # T_0 = 0 for cond-OT
    with pytest.raises(ValueError, match="t1"):
        jaxsa.path_entropy(proc, jax.random.key(0), 10, 0.5, 0.5)
    with pytest.raises(ValueError, match="n_paths"):
        jaxsa.path_entropy(ou1d(), jax.random.key(0), 1, 0.0, 1.0)
    with pytest.raises(ValueError, match="A"):
        jaxsa.OrnsteinUhlenbeck([1.0], 0.5, [0.0], [[1.0]])
    with pytest.raises(ValueError, match="temperature"):
        jaxsa.OrnsteinUhlenbeck([[-1.0]], -0.5, [0.0], [[1.0]])
    with pytest.raises(ValueError, match="cov0"):
        jaxsa.OrnsteinUhlenbeck([[-1.0]], 0.5, [0.0], [[-1.0]])
    with pytest.raises(ValueError, match="process"):
        jaxsa.entropy_production(jaxsa.CondOT(1.0), 0.1, 0.5)


# ---- speed limit (Eq. 68) ----------------------------------------------------------------------
def test_speed_limit_equality_on_geodesic():
    g = jaxsa.GaussianGeodesic([0.0, 1.0], 1.0, [2.0, 0.0], 0.5, T=0.3, tau=2.0)
    sl = jaxsa.speed_limit(g, 0.0, 2.0)
    w2_sq = 4.0 + 1.0 + 2 * 0.5**2  # |Δμ|² + d (Δs)² (Eq. 60)
    np.testing.assert_allclose(sl.w2**2, w2_sq, rtol=1e-12)
    for v in (sl.S_tot, sl.length_bound, sl.w2_bound):
        np.testing.assert_allclose(v, w2_sq / (2.0 * 0.3), rtol=1e-10)


def test_speed_limit_strict_off_geodesic():
    sl = jaxsa.speed_limit(ou_rot(), 0.0, 1.0)  # housekeeping > 0 and a curved path
    assert sl.holds()
    assert float(sl.S_tot) > 1.2 * float(sl.length_bound) > 1.2 * float(sl.w2_bound)
    # a diffusion model with constant temperature: VE with σ_t² = 2Tt (T = 0.5), paper data
    ve = jaxsa.Custom(lambda t, p: jnp.ones_like(t), tau=1.0, sigma_sq_fn=lambda t, p: 1.0 * t)
    sl = jaxsa.speed_limit(jaxsa.DiffusionPath(ve, jaxsa.paper_data()), 0.0, 1.0)
    np.testing.assert_allclose(sl.T, 0.5, rtol=1e-12)
    assert sl.holds() and float(sl.S_tot) > float(sl.length_bound) > float(sl.w2_bound)
    with pytest.raises(ValueError, match="constant temperature"):
        jaxsa.speed_limit(jaxsa.DiffusionPath(jaxsa.VPLinear(), jaxsa.paper_data()), 0.0, 1.0)


# ---- uncertainty relation (Eqs. 72–76) and v1 <= v2 ------------------------------------------
def _observables():
    return [lambda x: jnp.sin(x[0]) + x[-1] ** 2]


@pytest.mark.parametrize("which", ["ou_rot", "cosine",
                                   pytest.param("cond-ot", marks=pytest.mark.slow)])
def test_uncertainty_relation(which):
    if which == "ou_rot":
        proc, t = ou_rot(), 0.4
    else:
        sched = jaxsa.Cosine(1.0) if which == "cosine" else jaxsa.CondOT(1.0)
        proc, t = jaxsa.DiffusionProcess(jaxsa.DiffusionPath(sched, jaxsa.paper_data())), 0.5
    nq = 256  # Gauss–Hermite nodes: the mixture velocity needs many for 1e-8 (dissipation.py)
    for r in _observables():
        vr, v2 = jaxsa.observable_speed_sq(proc, t, r, n_quadrature=nq)
        assert float(vr) <= float(v2) * (1 + 1e-10)

        # ∂_t E_{P_t}[r] by autodiff of the quadrature equals E[∇r·ν] (continuity equation)
        @jax.jit
        def direct(t, r=r):
            def mean_r(s):
                x, w = proc.quadrature(s, nq)
                return jnp.sum(w * jax.vmap(r)(x))
            d_mean = jax.jvp(mean_r, (t,), (jnp.ones_like(t),))[1]
            x, w = proc.quadrature(t, nq)
            den = jnp.sum(w * jax.vmap(lambda y: jax.grad(r)(y) @ jax.grad(r)(y))(x))
            return d_mean**2 / den

        np.testing.assert_allclose(vr, direct(jnp.asarray(t)), rtol=1e-8, atol=1e-12 * float(v2))
    vopt, v2 = jaxsa.observable_speed_sq(proc, t, jaxsa.optimal_observable_gradient(proc, t),
                                         n_quadrature=nq, gradient=True)
    np.testing.assert_allclose(vopt, v2, rtol=1e-9)
    if which == "ou_rot":  # v2² of the gradient part is below T Ṡ_tot (housekeeping)
        assert float(v2) < float(proc.T_entropy_rate(t))


def test_w1_speed_closed_form_and_below_v2():
    p = ou1d()
    for t in (0.1, 0.3, 1.0):
        _, cov, dmu, _ = p.moment_rates(t)
        s = abs(-1.0 + 0.5 / cov[0, 0]) * math.sqrt(cov[0, 0])  # ν = B(x-μ) + μ̇ ~ N(μ̇, s²)
        m = float(dmu[0])
        folded = s * math.sqrt(2 / math.pi) * math.exp(-m * m / (2 * s * s)) + m * math.erf(m / (s * math.sqrt(2)))
        np.testing.assert_allclose(jaxsa.w1_speed(p, t), folded, rtol=1e-8)
    for sched in (jaxsa.Cosine(1.0), jaxsa.CondOT(1.0)):
        path = jaxsa.DiffusionPath(sched, jaxsa.paper_data())
        for t in (0.05, 0.5, 0.95):
            assert float(jaxsa.w1_speed(path, t)) < math.sqrt(float(jaxsa.DiffusionProcess(path).v2_sq(t)))


# ---- conditional kinetic energy (Eqs. 92–94) -----------------------------------------------
def test_conditional_kinetic_energy_closed_forms_and_optimality():
    tau = 2.0
    np.testing.assert_allclose(jaxsa.conditional_kinetic_energy(jaxsa.CondOT(tau), 3), 3 * 2 / tau, rtol=1e-12)
    np.testing.assert_allclose(jaxsa.conditional_kinetic_energy(jaxsa.Cosine(tau), 3),
                               3 * (math.pi / 2) ** 2 / tau, rtol=1e-12)
    # cond-OT is the free minimum: within the interpolated family and random flexible members
    k = [float(jaxsa.conditional_kinetic_energy(jaxsa.Interpolated(lam, tau)))
         for lam in np.linspace(0, 1, 11)]
    assert np.argmin(k) == 0 and np.all(np.diff(k) > 0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        free = jaxsa.PolarBernstein(rng.normal(size=6), rng.normal(size=3), tau)
        circle = jaxsa.PolarBernstein(rng.normal(size=6), np.zeros(3), tau)  # m² + σ² = 1
        assert float(jaxsa.conditional_kinetic_energy(free)) > 2 / tau
        assert float(jaxsa.conditional_kinetic_energy(circle)) > (math.pi / 2) ** 2 / tau
    np.testing.assert_allclose(jaxsa.conditional_kinetic_energy(jaxsa.PolarBernstein.cosine(tau=tau)),
                               (math.pi / 2) ** 2 / tau, rtol=1e-10)
    with pytest.raises(ValueError, match="dim"):
        jaxsa.conditional_kinetic_energy(jaxsa.CondOT(), 0)


@pytest.mark.slow  # a cross-check of the estimator (~10 s of compilation)
def test_kinetic_monte_carlo_matches_1d_quadrature():
    # isotropic Gaussian data separates by coordinate: c2(d) = d · c2(1D) (dissipation.speed_cost)
    d, s = 3, 0.7
    c2_1d, _ = jaxsa.speed_cost(jaxsa.DiffusionPath(jaxsa.Cosine(1.0), jaxsa.gaussian(0.0, s)))
    data = jaxsa.GaussianMixture([1.0], np.zeros((1, d)), [s])
    est = jaxsa.kinetic_c2_monte_carlo(jaxsa.DiffusionPath(jaxsa.Cosine(1.0), data),
                                       jax.random.key(0), 2000, 48)
    c2, se = est.value, est.stderr
    assert abs(float(c2) - d * float(c2_1d)) <= Z * float(se)
    # the per-time means integrate to the estimate (the same Gauss–Legendre rule)
    assert est.rate.shape == est.rate_t.shape == (48,) and est.n == 2000 and est.n_time == 48


def test_kinetic_energy_meets_c2_as_dimension_grows():
    # N = 8 data points; c2 <= K_c (Jensen) and the gap closes as N/sqrt(d) -> 0 (Eq. 94)
    gaps = []
    for d in (16, 256):
        data = jaxsa.point_cloud_data(jax.random.key(0), 8, d, 0.05)
        path = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), data)
        est = jaxsa.kinetic_c2_monte_carlo(path, jax.random.key(1), 128, 32)
        c2, se = est.value, est.stderr
        kc = float(jaxsa.conditional_kinetic_energy(path.schedule, d))
        assert float(c2) <= kc + Z * float(se)
        gaps.append(1 - float(c2) / kc)
    assert gaps[1] < 0.5 * gaps[0] and gaps[1] < 0.15, gaps


# ---- DDIM coordinates (Eqs. 33–35) -------------------------------------------------------------
@pytest.mark.parametrize("name", ["cosine", "cond-ot", "vp"])
def test_ddim_removes_the_force(name):
    sched = {"cosine": jaxsa.Cosine, "cond-ot": jaxsa.CondOT, "vp": jaxsa.VPLinear}[name]()
    path = jaxsa.DiffusionPath(sched, jaxsa.paper_data())
    bar = jaxsa.ddim_path(path)
    x = jnp.linspace(-3, 3, 7)
    for t in (0.1, 0.5, 0.9):
        m = sched.m(t)
        np.testing.assert_allclose(bar.schedule.force(t, x), 0.0, atol=1e-14)
        np.testing.assert_allclose(bar.schedule.temperature(t), sched.temperature(t) / m**2, rtol=1e-10)
        xb = jaxsa.ddim_coordinates(sched, t, x)
        np.testing.assert_allclose(jaxsa.ddim_inverse(sched, t, xb), x, rtol=1e-14)
        np.testing.assert_allclose(bar.density(t, xb), m * path.density(t, x), rtol=1e-10)
        np.testing.assert_allclose(bar.velocity(t, xb), jaxsa.ddim_velocity(path, t, xb),
                                   rtol=1e-9, atol=1e-12)


def test_ddim_trajectories_have_no_drift():
    # SDE of the cosine schedule from a fixed point: x̄ = x/m is a driftless martingale with
    # variance σ̄_t² - σ̄_{t0}² ; x itself drifts towards 0
    sched = jaxsa.Cosine(1.0)
    proc = jaxsa.DiffusionProcess(jaxsa.DiffusionPath(sched, jaxsa.paper_data()))
    t0, t1, x0, n = 0.2, 0.7, 1.0, 4000
    ts, xs = jaxsa.simulate_langevin(proc, jax.random.key(3), n, t0, t1, n_steps=100,
                                     x0=jnp.full((n, 1), x0))
    xb = jaxsa.ddim_coordinates(sched, ts[-1], xs[:, -1, 0])
    xb0 = x0 / sched.m(t0)
    se = float(jnp.std(xb)) / math.sqrt(n)
    assert abs(float(jnp.mean(xb)) - float(xb0)) <= Z * se
    assert abs(float(jnp.mean(xs[:, -1, 0])) - x0) > 10 * se  # the untransformed x drifts
    var = sched.sigma_sq(t1) / sched.m(t1) ** 2 - sched.sigma_sq(t0) / sched.m(t0) ** 2
    v = float(jnp.var(xb))
    assert abs(v - float(var)) <= Z * v * math.sqrt(2 / (n - 1))
