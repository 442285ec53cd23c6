"""Schedules (SPEC §3, Eqs. 22–32): values and autodiff derivatives against hand derivatives,
the end and monotonicity conditions of ``check_schedule``, and batching under ``jax.vmap``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsa

TS = np.linspace(0.0, 1.0, 17)[1:-1]  # interior fractions of tau


def _hand_cosine(t, tau):
    c = np.pi / (2 * tau)
    m, sg = np.cos(c * t), np.sin(c * t)
    return dict(
        m=m,
        dm=-c * sg,
        sigma=sg,
        sigma_dsigma=c * sg * m,
        T=c * np.tan(c * t),
        drift=-c * np.tan(c * t),
        mono=c * np.ones_like(t),
    )


def _hand_condot(t, tau):
    return dict(
        m=1 - t / tau,
        dm=-np.ones_like(t) / tau,
        sigma=t / tau,
        sigma_dsigma=t / tau**2,
        T=t / (tau * (tau - t)),
        drift=-1 / (tau - t),
        mono=np.ones_like(t) / tau,
    )


@np.errstate(divide="ignore", invalid="ignore")
def _hand_vp(t, bmin, bmax, tau):
    beta = bmin + (bmax - bmin) * t / tau
    m = np.exp(-0.5 * (bmin * t + 0.5 * (bmax - bmin) * t**2 / tau))
    dm = -0.5 * beta * m
    s2 = 1 - m**2
    return dict(
        m=m,
        dm=dm,
        sigma=np.sqrt(s2),
        sigma_dsigma=0.5 * beta * m**2,
        T=0.5 * beta,
        drift=-0.5 * beta,
        mono=m * (0.5 * beta * m**2) / np.sqrt(s2) + np.sqrt(s2) * 0.5 * beta * m,
    )


@np.errstate(divide="ignore", invalid="ignore")
def _hand_ve(t, smin, smax, tau):
    r = smax / smin
    s2 = smin**2 * (r ** (2 * t / tau) - 1)
    sds = smin**2 * np.log(r) / tau * r ** (2 * t / tau)  # d/dt (sigma^2 / 2)
    return dict(
        m=np.ones_like(t),
        dm=np.zeros_like(t),
        sigma=np.sqrt(s2),
        sigma_dsigma=sds,
        T=sds,
        drift=np.zeros_like(t),
        mono=sds / np.sqrt(s2),
    )


CASES = [
    ("cosine", lambda: jaxsa.Cosine(1.7), lambda t: _hand_cosine(t, 1.7), 1.7),
    ("cond-ot", lambda: jaxsa.CondOT(0.8), lambda t: _hand_condot(t, 0.8), 0.8),
    ("vp", lambda: jaxsa.VPLinear(0.1, 20.0, 1.3), lambda t: _hand_vp(t, 0.1, 20.0, 1.3), 1.3),
    ("ve", lambda: jaxsa.VEGeometric(0.01, 10.0, 2.0), lambda t: _hand_ve(t, 0.01, 10.0, 2.0), 2.0),
]


@pytest.mark.parametrize("name,make,hand,tau", CASES, ids=[c[0] for c in CASES])
def test_values_match_hand_derivatives(name, make, hand, tau):
    sched = make()
    t = TS * tau
    v = sched.values(jnp.asarray(t))
    ref = hand(t)
    assert v.m.dtype == jnp.float64
    np.testing.assert_allclose(v.m, ref["m"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(v.dm, ref["dm"], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(v.sigma, ref["sigma"], rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(v.sigma_sq, ref["sigma"] ** 2, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(v.sigma_dsigma, ref["sigma_dsigma"], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(sched.temperature(jnp.asarray(t)), ref["T"], rtol=1e-10)
    np.testing.assert_allclose(
        sched.drift_rate(jnp.asarray(t)), ref["drift"], rtol=1e-10, atol=1e-14
    )
    np.testing.assert_allclose(sched.monotonicity(jnp.asarray(t)), ref["mono"], rtol=1e-10)
    x = jnp.linspace(-2, 2, 5)
    np.testing.assert_allclose(
        sched.force(t[3], x), ref["drift"][3] * np.asarray(x), rtol=1e-10, atol=1e-14
    )
    # Eq. 23, both forms: T = m sigma d/dt(sigma/m) = d(sigma^2/2)/dt - sigma^2 d ln m / dt
    np.testing.assert_allclose(
        ref["T"], ref["sigma_dsigma"] - ref["sigma"] ** 2 * ref["dm"] / ref["m"], rtol=1e-10
    )


@pytest.mark.parametrize("name,make,hand,tau", CASES, ids=[c[0] for c in CASES])
def test_end_conditions_and_scalar_time(name, make, hand, tau):
    sched = make()
    v0 = sched.values(0.0)
    assert float(v0.m) == pytest.approx(1.0, abs=1e-15)
    assert float(v0.sigma_sq) == pytest.approx(0.0, abs=1e-15)
    assert np.isfinite(float(v0.sigma_dsigma)) and np.isfinite(float(v0.dm))
    assert float(sched.temperature(0.0)) == pytest.approx(
        float(hand(np.array(0.0))["T"]), abs=1e-12
    )
    assert jaxsa.check_schedule(sched) is not None


def test_condot_temperature_at_half():
    # T_t = t / (tau (tau - t)) for cond-OT: 1 at t = tau/2 when tau = 1, 1/tau in general
    assert float(jaxsa.CondOT(1.0).temperature(0.5)) == pytest.approx(1.0, rel=1e-14)
    assert float(jaxsa.CondOT(2.0).temperature(1.0)) == pytest.approx(0.5, rel=1e-14)


def test_vp_temperature_is_half_beta_and_unit_circle():
    s = jaxsa.VPLinear(0.5, 12.0, 1.0)
    t = jnp.linspace(0.0, 1.0, 11)
    np.testing.assert_allclose(s.temperature(t), 0.5 * (0.5 + 11.5 * np.asarray(t)), rtol=1e-12)
    v = s.values(t)
    np.testing.assert_allclose(v.m**2 + v.sigma_sq, 1.0, rtol=1e-14)  # VP: m^2 + sigma^2 = 1


def test_ve_temperature_is_derivative_of_half_variance():
    s = jaxsa.VEGeometric(0.05, 5.0, 1.0)
    t = np.linspace(0.05, 0.95, 7)
    h = 1e-5
    fd = (np.asarray(s.sigma_sq(t + h)) - np.asarray(s.sigma_sq(t - h))) / (4 * h)
    np.testing.assert_allclose(s.temperature(jnp.asarray(t)), fd, rtol=1e-8)
    assert float(s.sigma_sq(1.0)) == pytest.approx(5.0**2 - 0.05**2, rel=1e-13)


@pytest.mark.parametrize("sched", [jaxsa.Cosine, jaxsa.CondOT], ids=["cosine", "cond-ot"])
def test_temperature_diverges_where_m_vanishes(sched):
    s = sched(1.0)
    # m_tau is 0 (cond-OT) or cos(pi/2) ~ 6e-17 (cosine): T_t = (pi/2) tan(pi t/2) blows up
    assert float(s.values(1.0).m) == pytest.approx(0.0, abs=1e-15)
    assert float(s.temperature(1.0)) > 1e15
    assert float(s.drift_rate(1.0)) < -1e15
    assert np.isfinite(float(s.monotonicity(1.0)))


# --------------------------------------------------------------------------- check_schedule
def _custom(m_fn, sigma_fn):
    return jaxsa.Custom(m_fn, sigma_fn, tau=1.0)


@pytest.mark.parametrize(
    "m_fn,sigma_fn,pattern",
    [
        # sigma/m = t e^{-3t} decreases for t > 1/3: Eq. 24 violated
        (lambda t, p: jnp.exp(3.0 * t), lambda t, p: t, r"Eq\. 24"),
        # non-monotone sigma with constant m
        (lambda t, p: jnp.ones_like(t), lambda t, p: jnp.sin(2.5 * t), r"Eq\. 24"),
        # m_0 = 2
        (lambda t, p: 2.0 - t, lambda t, p: t, r"m_0 = 1"),
        # sigma_0 = 0.1
        (lambda t, p: 1.0 - t, lambda t, p: 0.1 + t, r"sigma_0 = 0"),
        # m negative after t = 1/2 (monotonicity m sigma' - sigma m' = 1 still holds)
        (lambda t, p: 1.0 - 2.0 * t, lambda t, p: t, r"m_t must be >= 0"),
    ],
    ids=["sigma-over-m-decreasing", "sigma-non-monotone", "m0", "sigma0", "m-negative"],
)
def test_check_schedule_rejects(m_fn, sigma_fn, pattern):
    with pytest.raises(ValueError, match=pattern):
        jaxsa.check_schedule(_custom(m_fn, sigma_fn))


def test_check_schedule_reports_first_offending_time():
    with pytest.raises(ValueError, match=r"Eq\. 24.*first at t = 0\.3[3-9]"):
        jaxsa.check_schedule(_custom(lambda t, p: jnp.exp(3.0 * t), lambda t, p: t))


def test_check_schedule_rejects_nonpositive_tau():
    with pytest.raises(ValueError, match=r"tau must be > 0"):
        jaxsa.check_schedule(jaxsa.Cosine(-1.0))


def test_check_schedule_raises_at_run_time_under_jit():
    f = jax.jit(
        lambda p: (
            jaxsa.check_schedule(
                jaxsa.Custom(lambda t, a: jnp.exp(a * t), lambda t, a: t, tau=1.0, params=p)
            ).params
        )
    )
    assert float(f(0.5)) == 0.5  # sigma/m = t e^{-t/2} increasing on [0, 1]: valid
    with pytest.raises(Exception, match=r"Eq\. 24"):
        jax.block_until_ready(f(3.0))


def test_custom_needs_exactly_one_sigma():
    with pytest.raises(ValueError, match="exactly one"):
        jaxsa.Custom(lambda t, p: 1 - t)
    with pytest.raises(ValueError, match="exactly one"):
        jaxsa.Custom(lambda t, p: 1 - t, lambda t, p: t, sigma_sq_fn=lambda t, p: t**2)


def test_custom_equals_condot_and_vp():
    tau = 2.0
    cus = jaxsa.Custom(lambda t, p: 1 - t / p, lambda t, p: t / p, tau=tau, params=jnp.asarray(tau))
    ref = jaxsa.CondOT(tau)
    t = jnp.linspace(0, tau, 23)
    for a, b in zip(cus.values(t), ref.values(t)):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(
        cus.temperature(t[:-1]), ref.temperature(t[:-1]), rtol=1e-13, atol=1e-15
    )

    vp = jaxsa.VPLinear(0.1, 20.0, 1.0)
    log_m = lambda t, p: -0.5 * (p[0] * t + 0.5 * (p[1] - p[0]) * t**2)  # noqa: E731
    cus_vp = jaxsa.Custom(
        lambda t, p: jnp.exp(log_m(t, p)),
        tau=1.0,
        params=jnp.array([0.1, 20.0]),
        sigma_sq_fn=lambda t, p: 1 - jnp.exp(2 * log_m(t, p)),
    )
    t = jnp.linspace(0, 1, 19)
    for a, b in zip(cus_vp.values(t), vp.values(t)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    # sigma_sq_fn keeps sigma*sigma' finite at t = 0 (sigma ~ sqrt(t) for VP)
    assert float(cus_vp.values(0.0).sigma_dsigma) == pytest.approx(0.05, rel=1e-12)


# --------------------------------------------------------------------------- batching
def test_vmap_over_cosine_taus():
    taus = jnp.array([0.5, 1.0, 3.0])
    scheds = jax.vmap(jaxsa.Cosine)(taus)
    assert scheds.tau.shape == (3,)
    frac = jnp.linspace(0.0, 1.0, 9)[1:-1]
    ts = taus[:, None] * frac[None, :]
    batched = jax.vmap(lambda s, t: s.values(t))(scheds, ts)
    temps = jax.vmap(lambda s, t: s.temperature(t))(scheds, ts)
    for i, tau in enumerate(np.asarray(taus)):
        ref = _hand_cosine(np.asarray(ts[i]), tau)
        np.testing.assert_allclose(batched.m[i], ref["m"], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(batched.dm[i], ref["dm"], rtol=1e-12)
        np.testing.assert_allclose(batched.sigma_dsigma[i], ref["sigma_dsigma"], rtol=1e-12)
        np.testing.assert_allclose(temps[i], ref["T"], rtol=1e-11)
    checked = jaxsa.check_schedule(scheds)  # batched check passes
    np.testing.assert_array_equal(checked.tau, taus)


def test_vmap_over_vp_parameters():
    bmin = jnp.array([0.1, 0.5, 1.0])
    bmax = jnp.array([20.0, 10.0, 5.0])
    scheds = jax.vmap(lambda a, b: jaxsa.VPLinear(a, b, 1.0))(bmin, bmax)
    t = jnp.linspace(0, 1, 11)
    temps = jax.vmap(lambda s: s.temperature(t))(scheds)
    expect = 0.5 * (np.asarray(bmin)[:, None] + (np.asarray(bmax - bmin))[:, None] * np.asarray(t))
    np.testing.assert_allclose(temps, expect, rtol=1e-12)
    ms = jax.vmap(lambda s: s.values(t).m)(scheds)
    for i in range(3):
        np.testing.assert_allclose(
            ms[i], _hand_vp(np.asarray(t), float(bmin[i]), float(bmax[i]), 1.0)["m"], rtol=1e-13
        )
    jaxsa.check_schedule(scheds)


def test_batched_check_schedule_finds_the_bad_member():
    params = jnp.array([0.5, 3.0])  # sigma/m = t e^{-a t}: fine for a = 0.5, not for a = 3
    scheds = jax.vmap(
        lambda a: jaxsa.Custom(lambda t, p: jnp.exp(p * t), lambda t, p: t, tau=1.0, params=a)
    )(params)
    with pytest.raises(ValueError, match=r"Eq\. 24"):
        jaxsa.check_schedule(scheds)
