"""Re-scheduling a velocity field (jaxsa.processes.reschedule): exact on closed-form paths
(cosine <-> cond-OT, VP, VE; 1D mixtures with narrow modes, 2D mixtures, empirical data),
the valid time range, jit and vmap, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsa.densities import GaussianMixture
from jaxsa.processes.base import velocity_field
from jaxsa.processes.diffusion import DiffusionPath
from jaxsa.processes.empirical import EmpiricalPath
from jaxsa.processes.reschedule import reschedule
from jaxsa.schedules.standard import CondOT, Cosine, Custom, VEGeometric, VPLinear

S = np.linspace(0.01, 0.95, 12)
RTOL = 1e-10


def _data_1d():
    return {
        "paper": GaussianMixture(jnp.array([0.5, 0.5]), jnp.array([-0.35**0.5, 0.35**0.5]),
                                 jnp.array([0.3, 0.3])),
        "narrow": GaussianMixture(jnp.array([0.3, 0.4, 0.3]), jnp.array([-2.0, 0.1, 1.5]),
                                  jnp.array([0.02, 0.05, 0.01])),
    }


def _close(u, v, rtol=RTOL):
    u, v = np.asarray(u), np.asarray(v)
    err = float(np.max(np.abs(u - v) / (1.0 + np.abs(v))))
    assert err <= rtol, err


@jax.jit
def _error(field, ref, s, x):
    """max |u - v| / (1 + |v|) of ``field`` against ``ref`` at each time of ``s`` (n_s,) on its
    own points ``x[i]``: one compiled program per pair, not an eager bisection per time."""
    u = jax.vmap(lambda si, xi: field.velocity(si, xi))(s, x)
    v = jax.vmap(lambda si, xi: ref.velocity(si, xi))(s, x)
    return jnp.max(jnp.abs(u - v) / (1.0 + jnp.abs(v)))


def _compare(field, ref, schedule, times, rtol=RTOL, **kw):
    s = np.asarray(times, dtype=np.float64)
    x = np.stack([_points(schedule, float(si), **kw) for si in s])
    err = float(_error(field, ref, s, x))
    assert err <= rtol, err


def _points(schedule, s, n=201, d=None):
    """Points spread over P_s (its scale sqrt(sigma^2 + m^2)), 1D or (n, d)."""
    scale = float(np.sqrt(schedule.sigma_sq(s) + schedule.m(s) ** 2))
    x = np.linspace(-3.5, 3.5, n) * scale
    if d is None:
        return x
    return np.stack([x * np.cos(0.7 * k + 0.3) + x[::-1] * np.sin(k) for k in range(d)], -1)


@pytest.mark.parametrize("name", ["paper", "narrow"])
@pytest.mark.parametrize("pair", [(Cosine, CondOT), (CondOT, Cosine)], ids=["cos-ot", "ot-cos"])
def test_cosine_cond_ot_exact_1d(name, pair):
    data = _data_1d()[name]
    a, b = pair[0](1.0), pair[1](1.0)
    field = reschedule(DiffusionPath(a, data), a, b)
    ref = DiffusionPath(b, data)
    assert field.event_shape == () and float(field.tau) == 1.0
    _compare(field, ref, b, [0.0, *S])  # s = 0 through the limit t'(0) = sqrt(r_B''/r_A'')
    if name == "narrow" and pair[0] is Cosine:  # once without jit
        x = _points(b, 0.3)
        _close(field.velocity(0.3, x), ref.velocity(0.3, x))


def test_time_map_closed_form_and_other_tau():
    a, b = Cosine(1.0), CondOT(2.0)
    data = _data_1d()["narrow"]
    field = reschedule(DiffusionPath(a, data), a, b)
    s = 2.0 * S
    t, c, dt = jax.jit(jax.vmap(field.time_map))(s)
    u = s / 2.0  # cond-OT(2): rho = u / (1 - u); cosine: rho = tan(pi t / 2)
    t_ref = (2 / np.pi) * np.arctan(u / (1 - u))
    np.testing.assert_allclose(t, t_ref, rtol=1e-14, atol=0)
    np.testing.assert_allclose(c, (1 - u) / np.cos(np.pi * t_ref / 2), rtol=1e-13)
    np.testing.assert_allclose(dt, 1 / (np.pi * ((1 - u) ** 2 + u**2)), rtol=1e-12)
    assert float(field.tau) == 2.0 and float(field.max_time()) == 2.0
    ref = DiffusionPath(b, data)
    _compare(field, ref, b, [0.02, 1.0, 1.9])


@pytest.mark.parametrize("kind", ["mixture", "empirical"])
def test_exact_2d(kind):
    a, b = Cosine(1.0), CondOT(1.0)
    if kind == "mixture":
        data = GaussianMixture(jnp.array([0.2, 0.5, 0.3]),
                               jnp.array([[-1.0, 0.5], [0.3, -0.2], [1.2, 1.0]]),
                               jnp.array([0.05, 0.3, 0.1]))
        fa, fb = DiffusionPath(a, data), DiffusionPath(b, data)
    else:
        pts = jax.random.normal(jax.random.key(0), (40, 2)) * jnp.array([[1.0, 0.4]])
        fa, fb = EmpiricalPath(a, pts), EmpiricalPath(b, pts)
    for f, g, sa, sb in ((fa, fb, a, b), (fb, fa, b, a)):
        field = reschedule(f, sa, sb)
        assert field.event_shape == (2,)
        assert field.singular_at_zero() == f.singular_at_zero()
        _compare(field, g, sb, S, n=64, d=2)
    x = _points(b, 0.4, n=64, d=2).reshape(8, 8, 2)  # any batch shape, without jit
    _close(field.velocity(0.4, x), fa.velocity(0.4, x))


def test_vp_to_cond_ot_valid_range():
    data = _data_1d()["narrow"]
    vp, ot = VPLinear(0.1, 20.0, 1.0), CondOT(1.0)
    field = reschedule(DiffusionPath(vp, data), vp, ot)
    ref = DiffusionPath(ot, data)
    # VP stops short of pure noise: rho_VP(1) = sigma/m, matched by cond-OT at rho/(1+rho)
    v = vp.values(1.0)
    rho = float(v.sigma / v.m)
    s_max = float(field.max_time())
    assert s_max == pytest.approx(rho / (1 + rho), rel=1e-13) and 0.99 < s_max < 0.994
    _compare(field, ref, ot, [0.0, *S, s_max], rtol=2e-10)
    with pytest.raises(ValueError, match="outside the valid range"):
        field.velocity(0.5 * (s_max + 1.0), jnp.zeros(3))
    with pytest.raises(ValueError, match="outside the valid range"):
        field.velocity(1.0, jnp.zeros(3))
    # the other way the whole of [0, tau] is reached, up to and including tau (m_VP(1) > 0)
    back = reschedule(DiffusionPath(ot, data), ot, vp)
    assert float(back.max_time()) == 1.0
    ref = DiffusionPath(vp, data)
    _compare(back, ref, vp, [*S, 1.0])
    # cond-OT (sigma ∝ t) -> VP (sigma ∝ sqrt t): dt/ds is infinite at s = 0
    with pytest.raises(ValueError, match="dt/ds is infinite"):
        back.velocity(0.0, jnp.zeros(3))


@pytest.mark.parametrize("pair", [(Cosine, VEGeometric), (VEGeometric, VPLinear)],
                         ids=["cos-ve", "ve-vp"])
def test_ve_pairs(pair):
    a, b = pair[0](), pair[1]()  # built in float64 (conftest enables it per session)
    data = _data_1d()["paper"]
    field = reschedule(DiffusionPath(a, data), a, b)
    ref = DiffusionPath(b, data)
    _compare(field, ref, b, np.linspace(0.01, float(field.max_time()), 10))


def test_the_cond_ot_end_is_excluded():
    data = _data_1d()["paper"]
    field = reschedule(DiffusionPath(Cosine(1.0), data), Cosine(1.0), CondOT(1.0))
    with pytest.raises(ValueError, match="outside the valid range"):
        field.velocity(1.0, jnp.zeros(3))
    with pytest.raises(ValueError, match="outside the valid range"):
        field.velocity(-0.1, jnp.zeros(3))


def test_jit_and_vmap_over_s():
    data = _data_1d()["narrow"]
    a, b = Cosine(1.0), CondOT(1.0)
    field = reschedule(DiffusionPath(a, data), a, b)
    ref = DiffusionPath(b, data)
    s = jnp.asarray(S)
    x = np.stack([_points(b, si, n=33) for si in S])  # (12, 33)
    got = jax.jit(jax.vmap(field.velocity))(s, x)
    _close(got, jax.vmap(ref.velocity)(s, x))
    one = jax.jit(lambda f, si, xi: f.velocity(si, xi))  # the field as a pytree argument
    _close(one(field, s[3], x[3]), ref.velocity(s[3], x[3]))
    # divergence (the protocol's default, through jvp) agrees as well
    div = jax.jit(lambda f, si, xi: f.velocity_and_divergence(si, xi)[1])
    _close(div(field, s[3], x[3]), div(ref, s[3], x[3]), rtol=1e-9)
    # and so does the time derivative (the inversion t(s) carries a custom_jvp)
    ds = jax.jit(lambda f, si, xi: jax.jvp(lambda u: f.velocity(u, xi), (si,), (1.0,))[1])
    _close(ds(field, s[3], x[3]), ds(ref, s[3], x[3]), rtol=1e-9)
    # under jit a time out of range fails at run time instead of returning NaN
    with pytest.raises(Exception, match="outside the valid range"):
        jax.block_until_ready(jax.jit(lambda si, xi: field.velocity(si, xi))(1.0, x[0]))


def test_bad_input_names_the_argument():
    data = _data_1d()["paper"]
    path = DiffusionPath(Cosine(1.0), data)
    with pytest.raises(ValueError, match="`field`"):
        reschedule(lambda t, x: x, Cosine(1.0), CondOT(1.0))
    with pytest.raises(ValueError, match="`from_schedule`"):
        reschedule(path, "cosine", CondOT(1.0))
    with pytest.raises(ValueError, match="`to_schedule`"):
        reschedule(path, Cosine(1.0), None)
    with pytest.raises(ValueError, match="`from_schedule`.*tau"):  # field of another duration
        reschedule(path, Cosine(2.0), CondOT(1.0))
    with pytest.raises(ValueError, match="`from_schedule`.*not the schedule of `field`"):
        reschedule(path, CondOT(1.0), Cosine(1.0))
    with pytest.raises(ValueError, match="`from_schedule`.*not the schedule of `field`"):
        vp = DiffusionPath(VPLinear(0.1, 20.0), data)
        reschedule(vp, VPLinear(0.1, 10.0), Cosine(1.0))
    plain = velocity_field(lambda t, x: -x, tau=2.0)
    with pytest.raises(ValueError, match="`from_schedule`.*tau"):
        reschedule(plain, Cosine(1.0), CondOT(1.0))
    with pytest.raises(ValueError, match="`to_schedule`.*m_0 = 1"):  # violates check_schedule
        reschedule(path, Cosine(1.0), Custom(lambda t, p: 2.0 - t, lambda t, p: t))
    with pytest.raises(ValueError, match="`to_schedule`.*scalar tau"):
        reschedule(path, Cosine(1.0), CondOT(jnp.array([1.0, 2.0])))
