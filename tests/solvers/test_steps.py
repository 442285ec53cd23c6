"""Sampler time grids (jaxsa.solvers.steps) and fixed-budget probability-flow samplers
(jaxsa.solvers.samplers), issue 15 items 1, 2 and 6: closed forms of each grid rule,
monotonicity and end points, the convergence order of each sampler on a closed-form flow,
jit/vmap, and the errors on bad input."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsa
from jaxsa.processes.base import AbstractVelocityField
from jaxsa.solvers.samplers import SAMPLER_METHODS, sample
from jaxsa.solvers.steps import STEP_RULES, step_grid


class _Speed(eqx.Module):
    """A process known only through its speed: v_2(t) = a + b t (so v_2^2 = (a + b t)^2)."""

    tau: jax.Array
    a: float = 1.0
    b: float = 1.0

    def v2_sq(self, t):
        return (self.a + self.b * t) ** 2


def _sbar_condot(t):
    return t / (1 - t)  # sigma_t / m_t of cond-OT (tau = 1); inverse t = s / (1 + s)


# ---- closed forms of the rules ------------------------------------------------------------


def test_uniform_is_linspace_from_tau_down():
    g = step_grid(jaxsa.CondOT(2.0), 5)
    np.testing.assert_allclose(g, np.linspace(2.0, 0.0, 6), rtol=0, atol=1e-15)
    g = step_grid(jaxsa.Cosine(), 4, "uniform", t_min=0.2, t_max=0.6)
    np.testing.assert_allclose(g, [0.6, 0.5, 0.4, 0.3, 0.2], atol=1e-15)


@pytest.mark.parametrize("t_min,t_max", [(None, None), (0.01, 0.9)])
def test_log_snr_under_cond_ot_has_the_closed_inverse(t_min, t_max):
    # lambda(t) = 2 log((1 - t)/t)  <=>  t = 1 / (1 + exp(lambda / 2))
    kw = {} if t_min is None else {"t_min": t_min, "t_max": t_max}
    n = 10
    g = np.asarray(step_grid(jaxsa.CondOT(), n, "log_snr", **kw))
    lo = 1e-3 if t_min is None else t_min
    hi = 1 - 1e-3 if t_max is None else t_max  # sbar(tau) = inf: top level at tau (1 - margin)
    lam = lambda t: 2 * np.log((1 - t) / t)
    levels = lam(hi) + np.arange(n + 1) / n * (lam(lo) - lam(hi))
    ref = 1 / (1 + np.exp(levels / 2))
    ref[0] = 1.0 if t_max is None else t_max
    np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-14)
    assert g[-1] == lo


def test_thermo_rules_match_closed_forms_of_a_known_speed():
    proc = _Speed(jnp.asarray(1.0))  # v_2 = 1 + t on [0, 1]
    n = 8
    s = 1 - np.arange(n + 1) / n
    # L(t) = t + t^2/2, L(1) = 3/2  =>  t = sqrt(1 + 2 L) - 1
    ref_len = np.sqrt(1 + 2 * 1.5 * s) - 1
    # C(t) = ((1 + t)^3 - 1)/3, C(1) = 7/3  =>  t = (1 + 3 C)^(1/3) - 1
    ref_cost = np.cbrt(1 + 7 * s) - 1
    np.testing.assert_allclose(step_grid(proc, n, "thermo_length"), ref_len, atol=1e-12)
    np.testing.assert_allclose(step_grid(proc, n, "thermo_cost"), ref_cost, atol=1e-12)
    # constant speed: the thermodynamic-length grid is the uniform one
    const = _Speed(jnp.asarray(2.0), 3.0, 0.0)
    for rule in ("thermo_length", "thermo_cost"):
        np.testing.assert_allclose(step_grid(const, n, rule), step_grid(const, n), atol=1e-12)


def test_thermo_length_of_gaussian_data_under_cond_ot():
    # data N(mu, s^2): P_t = N(m mu, s_t^2), s_t = sqrt(m^2 s^2 + sigma^2), and the velocity is
    # affine, so v_2^2 = (dm mu)^2 + (ds_t)^2 (the W2 speed of a Gaussian)
    mu, s = 0.3, 0.7
    path = jaxsa.DiffusionPath(jaxsa.CondOT(), jaxsa.gaussian(mu, s))
    for t in (0.2, 0.9):
        st = np.sqrt((1 - t) ** 2 * s**2 + t**2)
        dst = (t - (1 - t) * s**2) / st
        np.testing.assert_allclose(path.v2_sq(t), mu**2 + dst**2, rtol=1e-12)
    # mu = 0: L(t) = |s_t - s_0| before the minimum of s_t at t* = s^2/(1 + s^2), then
    # (s_0 - s_min) + (s_t - s_min); with s^2 = 1/3, t* = 1/4 (a panel edge), s_min = 1/2
    s = np.sqrt(1 / 3)
    path = jaxsa.DiffusionPath(jaxsa.CondOT(), jaxsa.gaussian(0.0, s))
    n = 12
    s0, smin, s1, tstar = s, 0.5, 1.0, 0.25
    length = (s1 - smin) + (s0 - smin)
    ell = length * (1 - np.arange(n + 1) / n)
    level = np.where(ell <= s0 - smin, s0 - ell, smin + (ell - (s0 - smin)))  # s_t at the steps
    root = np.sqrt(np.maximum(s**4 - (1 + s**2) * (s**2 - level**2), 0.0)) / (1 + s**2)
    ref = np.where(ell <= s0 - smin, tstar - root, tstar + root)
    g = step_grid(path, n, "thermo_length", n_panels=256)
    np.testing.assert_allclose(g, ref, atol=1e-9)


@pytest.mark.parametrize("rho", [7.0, 3.0])
def test_edm_grid_is_karras_formula(rho):
    n = 9
    k = np.arange(n + 1) / n  # N + 1 levels, both ends included
    # VE geometric: sbar = sigma_t, t = log(1 + s^2/smin^2) / (2 log(smax/smin)); sbar(tau) finite
    smin_, smax_ = 0.01, 10.0
    ve = jaxsa.VEGeometric(smin_, smax_)
    sig = lambda t: smin_ * np.sqrt(np.expm1(2 * np.log(smax_ / smin_) * t))
    inv = lambda s: np.log1p(s**2 / smin_**2) / (2 * np.log(smax_ / smin_))
    lo, hi = sig(1e-3), sig(1.0)
    levels = (hi ** (1 / rho) + k * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    np.testing.assert_allclose(step_grid(ve, n, "edm", rho=rho), inv(levels), rtol=1e-11)
    # cond-OT: sbar = t/(1 - t) is infinite at tau, top level at tau(1 - 1e-3), grid[0] = tau
    lo, hi = _sbar_condot(1e-3), _sbar_condot(1 - 1e-3)
    levels = (hi ** (1 / rho) + k * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    ref = levels / (1 + levels)
    ref[0] = 1.0
    path = jaxsa.DiffusionPath(jaxsa.CondOT(), jaxsa.paper_data())
    np.testing.assert_allclose(step_grid(path, n, "edm", rho=rho), ref, rtol=1e-11)


def test_ays_gaussian_is_the_tan_law():
    n, c = 10, 0.5
    k = np.arange(n + 1) / n
    lo, hi = _sbar_condot(1e-3), _sbar_condot(1 - 1e-3)
    th = (1 - k) * np.arctan(hi / c) + k * np.arctan(lo / c)  # equal angles
    levels = c * np.tan(th)
    ref = levels / (1 + levels)
    ref[0] = 1.0
    g = step_grid(jaxsa.CondOT(), n, "ays_gaussian", data_std=c)
    np.testing.assert_allclose(g, ref, rtol=1e-11)
    # default data_std: the data's standard deviation (paper data: variance 0.35 + 0.3^2)
    path = jaxsa.DiffusionPath(jaxsa.CondOT(), jaxsa.paper_data())
    np.testing.assert_allclose(step_grid(path, n, "ays_gaussian"),
                               step_grid(path, n, "ays_gaussian", data_std=np.sqrt(0.44)),
                               rtol=1e-13)


# schedules are built inside the tests, under the session's float64 (not at import time)
@pytest.mark.parametrize("schedule", [jaxsa.Cosine, jaxsa.CondOT, jaxsa.VPLinear],
                         ids=["cosine", "cond-ot", "vp"])
def test_every_rule_is_monotone_with_its_end_points(schedule):
    path = jaxsa.DiffusionPath(schedule(), jaxsa.paper_data())
    n = 12
    for rule in STEP_RULES:
        g = np.asarray(step_grid(path, n, rule))
        assert g.shape == (n + 1,), rule
        assert np.all(np.isfinite(g)) and np.all(np.diff(g) < 0), (rule, g)
        t_min = 1e-3 if rule in ("log_snr", "edm", "ays_gaussian") else 0.0
        assert g[0] == 1.0 and g[-1] == t_min, (rule, g)


def test_step_grid_under_jit():
    f = jax.jit(lambda t_min: step_grid(jaxsa.VPLinear(), 8, "edm", t_min=t_min))
    np.testing.assert_allclose(f(0.01), step_grid(jaxsa.VPLinear(), 8, "edm", t_min=0.01),
                               rtol=1e-14)


# ---- samplers -------------------------------------------------------------------------------

MU, S = 0.7, 0.4
@functools.cache
def _gauss_ot():
    """The Gaussian cond-OT path, built at its first use (under the session's float64)."""
    return jaxsa.DiffusionPath(jaxsa.CondOT(), jaxsa.gaussian(MU, S))
# one compiled sampler per (method, grid length, points shape), shared by the tests
_sample = jax.jit(sample, static_argnames="method")


def _exact_flow(x_tau, t):
    # Gaussian data under cond-OT: P_t = N(m_t mu, s_t^2) and the flow moves quantiles, so
    # x_t = m_t mu + s_t (x_tau - m_tau mu)/s_tau with m_tau = 0, s_tau = 1
    m = 1 - t
    return m * MU + np.sqrt(m**2 * S**2 + t**2) * x_tau


@pytest.mark.parametrize("rule", ["uniform", "log_snr"])
@pytest.mark.parametrize("method,order", [("euler", 1), ("heun", 2), ("dpm2", 2)])
def test_convergence_order_on_a_closed_form_flow(method, order, rule):
    x = jnp.linspace(-2.0, 2.0, 5)
    ns = np.array([8, 16, 32, 64])
    errs = []
    for n in ns:
        grid = step_grid(_gauss_ot(), int(n), rule)
        out = _sample(_gauss_ot(), x, grid, method)
        errs.append(np.max(np.abs(np.asarray(out) - _exact_flow(np.asarray(x), float(grid[-1])))))
    slope = -np.polyfit(np.log(ns), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.3, (errs, slope)


def test_sample_under_jit_and_vmap_over_grids():
    x = jnp.linspace(-2.0, 2.0, 7)
    grids = jnp.stack([step_grid(_gauss_ot(), 16, r) for r in ("uniform", "log_snr", "edm")])
    for method in SAMPLER_METHODS:
        each = np.stack([np.asarray(_sample(_gauss_ot(), x, g, method)) for g in grids])  # jit
        vm = jax.vmap(lambda g: sample(_gauss_ot(), x, g, method))(grids)
        np.testing.assert_allclose(vm, each, rtol=1e-12, atol=1e-14)
        jv = jax.jit(jax.vmap(lambda g: sample(_gauss_ot(), x, g, method)))(grids)
        np.testing.assert_allclose(jv, each, rtol=1e-12, atol=1e-14)
    # eager agrees with jit, and vmap over starting points (one point at a time) too
    np.testing.assert_allclose(sample(_gauss_ot(), x, grids[1], "dpm2"), each[1], rtol=1e-12)  # dpm2: last loop
    pts = jax.vmap(lambda xi: sample(_gauss_ot(), xi, grids[2], "dpm2"))(x)
    np.testing.assert_allclose(pts, _sample(_gauss_ot(), x, grids[2], "dpm2"), rtol=1e-12, atol=1e-14)


def test_single_step_and_the_euler_last_step_of_heun():
    x = jnp.asarray([0.5, -1.0])
    one = jnp.asarray([1.0, 0.0])
    euler = x - _gauss_ot().velocity(1.0, x)
    for method in ("euler", "dpm2"):
        np.testing.assert_allclose(sample(_gauss_ot(), x, one, method), euler, rtol=1e-14)

    class Singular(AbstractVelocityField):  # nu_t(x) = x/t: x_t = x_tau t/tau, singular at 0
        tau: jax.Array
        event_shape = ()

        def velocity(self, t, x):
            return x / t

        def singular_at_zero(self):
            return True

    field = Singular(jnp.asarray(1.0))
    grid = jnp.linspace(1.0, 0.0, 9)
    np.testing.assert_allclose(sample(field, x, grid, "heun"), 0.0, atol=1e-14)  # default: Euler
    assert not np.all(np.isfinite(sample(field, x, grid, "heun", euler_last=False)))
    # a plain function works as a field
    np.testing.assert_allclose(sample(lambda t, y: -y, x, grid[:5], "heun"),
                               sample(jaxsa.velocity_field(lambda t, y: -y, 1.0), x, grid[:5],
                                      "heun"), rtol=1e-15)


# ---- bad input --------------------------------------------------------------------------------


def test_bad_input_names_the_argument():
    path = jaxsa.DiffusionPath(jaxsa.CondOT(), jaxsa.paper_data())
    ot = jaxsa.OTPath(jaxsa.paper_data(), jaxsa.paper_prior())
    with pytest.raises(ValueError, match="`rule`"):
        step_grid(path, 8, "quadratic")
    for n in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="`n_steps`"):
            step_grid(path, n)
    for rule in ("thermo_length", "thermo_cost"):
        with pytest.raises(ValueError, match="`process`.*v2_sq"):
            step_grid(jaxsa.CondOT(), 8, rule)
        with pytest.raises(ValueError, match="`process`.*v2_sq"):
            step_grid(ot, 8, rule)
    with pytest.raises(ValueError, match="`process`.*schedule"):
        step_grid(ot, 8, "edm")
    with pytest.raises(ValueError, match="`process`.*tau"):
        step_grid(object(), 8)
    with pytest.raises(ValueError, match="`rho`"):
        step_grid(path, 8, "uniform", rho=7.0)
    with pytest.raises(ValueError, match="`rho`"):
        step_grid(path, 8, "edm", rho=-1.0)
    with pytest.raises(ValueError, match="`t_min`"):
        step_grid(path, 8, "uniform", t_min=0.8, t_max=0.5)
    with pytest.raises(ValueError, match="`t_min`"):
        step_grid(path, 8, "log_snr", t_min=0.0)
    with pytest.raises(ValueError, match="`data_std`"):
        step_grid(path, 8, "ays_gaussian", data_std=0.0)
    with pytest.raises(ValueError, match="`n_panels`"):
        step_grid(path, 8, "thermo_length", n_panels=0)
    x = jnp.zeros(3)
    with pytest.raises(ValueError, match="`method`"):
        sample(path, x, jnp.linspace(1, 0, 5), "rk4")
    for grid in (jnp.ones(1), jnp.ones((2, 3))):
        with pytest.raises(ValueError, match="`grid`"):
            sample(path, x, grid, "euler")
