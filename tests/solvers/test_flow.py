"""The probability-flow ODE through diffrax (SPEC §4): particles and log-Jacobians carried
from t = tau back to 0 against closed-form marginals, and the OT path's exact flow."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tests.helpers.reference import MixRef, hand_schedule
from scipy import stats

import jaxsa

TS = np.array([1.0, 2.0 / 3.0, 0.5, 1.0 / 3.0, 0.1, 0.0])  # decreasing save times, tau = 1
Z = np.linspace(-5.0, 5.0, 41)


def _marginal_ref(data, kind, t):
    h = hand_schedule(kind, t)
    return MixRef(
        np.asarray(data.weights),
        h["m"] * np.asarray(data.means),
        np.sqrt(h["sigma_sq"] + h["m"] ** 2 * np.asarray(data.scales) ** 2),
    )


@pytest.mark.parametrize(
    "kind,make",
    [("cosine", lambda: jaxsa.Cosine(1.0)), ("vp", lambda: jaxsa.VPLinear(0.1, 20.0, 1.0))],
    ids=["cosine", "vp"],
)
def test_ode_transports_quantiles_and_densities(kind, make, paper):
    """A 1D flow map is monotone: the particle started at the z-quantile of P_tau sits at the
    z-quantile of P_t at every t, and its log-Jacobian gives P_t there."""
    data = paper[0]
    path = jaxsa.DiffusionPath(make(), data)
    p_tau = _marginal_ref(data, kind, 1.0)
    x_tau = p_tau.nsq(Z)
    x, v, log_jac, stats_ = jax.jit(jaxsa.transport)(path, jnp.asarray(x_tau), jnp.asarray(TS))
    assert bool(stats_["success"]) and int(stats_["num_steps"]) > 0
    assert x.shape == v.shape == log_jac.shape == (len(TS), len(Z))
    np.testing.assert_allclose(x[0], x_tau, rtol=0, atol=0)
    np.testing.assert_allclose(log_jac[0], 0.0, atol=0)
    for i, t in enumerate(TS):
        ref = _marginal_ref(data, kind, t)
        np.testing.assert_allclose(x[i], ref.nsq(Z), rtol=1e-8, atol=1e-8, err_msg=f"t={t}")
        # P_t(x_t) = P_tau(x_tau) / (dx_t/dx_tau)
        np.testing.assert_allclose(
            p_tau.logpdf(x_tau) - np.asarray(log_jac[i]),
            ref.logpdf(np.asarray(x[i])),
            rtol=0,
            atol=1e-8,
            err_msg=f"t={t}",
        )
        np.testing.assert_allclose(v[i], path.velocity(t, x[i]), rtol=1e-12, atol=1e-12)


def test_solve_flow_with_user_field_matches_affine_flow():
    """solve_flow with a hand-written affine field (Gaussian data N(mu, s^2), cosine):
    x_t = M_t + S_t (x_tau - M_tau) / S_tau and ln dx_t/dx_tau = ln(S_t / S_tau)."""
    mu, s = 0.3, 0.5
    c = np.pi / 2

    def MS(t):
        m = jnp.cos(c * t)
        return m * mu, jnp.sqrt(jnp.sin(c * t) ** 2 + m**2 * s**2)

    def field(t, x):
        (M, S), (dM, dS) = jax.jvp(MS, (t,), (jnp.ones_like(t),))
        rate = dS / S
        return dM + rate * (x - M), jnp.full_like(x, rate)

    x_tau = jnp.linspace(-4, 4, 17)
    ts = jnp.asarray(TS)
    x, v, lj, st = jaxsa.solve_flow(
        field,
        jnp.asarray(1.0),
        x_tau,
        ts,
        jaxsa.ODESettings(rtol=1e-11, atol=1e-11, solver="Tsit5"),
    )
    assert bool(st["success"])
    M1, S1 = (float(a) for a in MS(1.0))
    for i, t in enumerate(TS):
        Mt, St = (float(a) for a in MS(t))
        np.testing.assert_allclose(
            x[i], Mt + St * (np.asarray(x_tau) - M1) / S1, rtol=1e-9, atol=1e-9
        )
        np.testing.assert_allclose(lj[i], np.log(St / S1), rtol=1e-9, atol=1e-9)


def test_transport_uses_exact_ot_flow(paper):
    data, _, paths = paper
    ot = paths["ot"]
    ref = MixRef(data.weights, data.means, data.scales)
    x_tau = jnp.asarray(Z)
    x, v, lj, st = jax.jit(jaxsa.transport)(ot, x_tau, jnp.asarray(TS))
    assert int(st["num_steps"]) == 0 and bool(st["success"])
    x0 = ref.nsq(Z)  # the inverse map sends the N(0, 1) quantile z to Q_q(Phi(z))
    for i, t in enumerate(TS):
        np.testing.assert_allclose(x[i], (1 - t) * x0 + t * Z, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(v[i], Z - x0, rtol=1e-12, atol=1e-12)
        # log dx_t/dx_tau = ln((1 - t) phi(z) / q(x0) + t)
        np.testing.assert_allclose(
            lj[i], np.log((1 - t) * stats.norm.pdf(Z) / ref.pdf(x0) + t), rtol=1e-7, atol=1e-9
        )


def _ot_ode(path, x_tau, ts):
    def vd(t, x):
        return jax.jvp(lambda y: path.velocity(t, y), (x,), (jnp.ones_like(x),))

    return jaxsa.solve_flow(
        vd, path.tau, x_tau, ts, jaxsa.ODESettings(rtol=1e-9, atol=1e-9, solver="Tsit5")
    )


@pytest.fixture(scope="module")
def ot_ode_and_exact(paper):
    ot = paper[2]["ot"]
    x_tau = jnp.linspace(-4.0, 4.0, 17)
    ts = jnp.asarray(TS)
    ode = jax.jit(_ot_ode)(ot, x_tau, ts)
    exact = jax.jit(lambda p, x, t: p.exact_flow(x, t))(ot, x_tau, ts)
    return ode, exact


def test_ode_with_bisection_velocity_matches_exact_ot_flow(ot_ode_and_exact):
    (x, v, _, st), (xe, ve, _) = ot_ode_and_exact
    assert bool(st["success"])
    np.testing.assert_allclose(x, xe, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(v, ve, rtol=1e-8, atol=1e-8)


def test_ode_with_bisection_velocity_log_jacobian(ot_ode_and_exact):
    """The divergence comes from autodiff through OTPath.velocity's bisection."""
    (_, _, lj, _), (_, _, lje) = ot_ode_and_exact
    assert np.max(np.abs(np.asarray(lje))) > 0.1  # a non-trivial Jacobian to match
    np.testing.assert_allclose(lj, lje, rtol=1e-7, atol=1e-8)
