"""Densities: Gaussian mixtures and the uniform density against scipy (log-density, CDF,
tails, quantiles, sampling) and input validation."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tests.helpers.reference import MixRef
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import special, stats

import jaxsa

# eager calls of jaxsa's fori_loop-based quantile are slow; jit once per shape instead
_nsq = jax.jit(lambda g, z: g.normal_score_quantile(z))
_ns = jax.jit(lambda g, x: g.normal_score(x))
_q = jax.jit(lambda g, u: g.quantile(u))

MIX = dict(weights=[0.2, 0.5, 0.3], means=[-1.5, 0.2, 2.0], scales=[0.4, 1.1, 0.25])


@pytest.fixture(scope="module")
def mix():
    return jaxsa.GaussianMixture(**MIX), MixRef(**MIX)


# Tolerance of log-densities (absolute, per dimension): round-off. See also
# test_log_normalisation_is_float64_when_x64_enabled_after_import.
LOG_TOL = 1e-12


def test_logpdf_pdf_cdf_match_scipy(mix):
    g, ref = mix
    x = np.linspace(-6, 6, 97)
    np.testing.assert_allclose(g.log_density(jnp.asarray(x)), ref.logpdf(x), rtol=0, atol=LOG_TOL)
    np.testing.assert_allclose(g.density(jnp.asarray(x)), ref.pdf(x), rtol=LOG_TOL, atol=1e-300)
    # differences of log-densities cancel the constant: round-off accuracy
    np.testing.assert_allclose(
        np.diff(np.asarray(g.log_density(jnp.asarray(x)))),
        np.diff(ref.logpdf(x)),
        rtol=1e-11,
        atol=1e-12,
    )
    np.testing.assert_allclose(g.cdf(jnp.asarray(x)), ref.cdf(x), rtol=1e-12, atol=1e-15)


def test_log_normalisation_is_float64_when_x64_enabled_after_import():
    """Enabling float64 *after* importing jaxsa (what jaxsa's docs recommend) must give float64
    log-densities: no constant may be computed by JAX at import time (it would be float32).
    Run in a subprocess so that the import order is the documented one, with
    ``JAX_ENABLE_X64`` cleared: set in the environment it would switch float64 on before the
    import and the test would prove nothing."""
    code = (
        "import jax, math; assert not jax.config.jax_enable_x64; import jaxsa;"
        "jax.config.update('jax_enable_x64', True);"
        "v = float(jaxsa.gaussian(0.0, 1.0).log_density(0.0));"
        "print(repr(v - (-0.5 * math.log(2 * math.pi))))"
    )
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env)
    assert abs(float(out.stdout.strip())) < 1e-14


def test_log_cdf_and_log_sf_in_far_tails(mix):
    g, ref = mix
    x = np.array([-40.0, -20.0, -10.0, -3.0, 0.0, 3.0, 10.0, 20.0])
    np.testing.assert_allclose(g.log_cdf(jnp.asarray(x)), ref.logcdf(x), rtol=1e-12)
    np.testing.assert_allclose(g.log_sf(jnp.asarray(x)), ref.logsf(x), rtol=1e-12)


def test_score_is_gradient_of_log_density(mix):
    g, ref = mix
    x = np.linspace(-4, 4, 33)
    grad = jax.vmap(jax.grad(lambda y: g.log_density(y)))(jnp.asarray(x))
    np.testing.assert_allclose(g.score(jnp.asarray(x)), grad, rtol=1e-11, atol=1e-12)
    h = 1e-5
    fd = (ref.logpdf(x + h) - ref.logpdf(x - h)) / (2 * h)
    np.testing.assert_allclose(g.score(jnp.asarray(x)), fd, rtol=1e-7, atol=1e-7)


def test_mean_and_variance_match_scipy_quadrature(mix):
    from scipy import integrate

    g, ref = mix
    m1 = integrate.quad(lambda x: x * ref.pdf(x), -np.inf, np.inf)[0]
    m2 = integrate.quad(lambda x: (x - m1) ** 2 * ref.pdf(x), -np.inf, np.inf)[0]
    assert float(g.mean()) == pytest.approx(m1, rel=1e-10)
    assert float(g.variance()) == pytest.approx(m2, rel=1e-10)
    assert float(jaxsa.paper_data().variance()) == pytest.approx(0.44, rel=1e-14)


def test_normal_score_quantile_matches_reference_incl_tails(mix):
    g, ref = mix
    z = np.array([-37.0, -20.0, -8.0, -5.0, -2.0, -0.7, 0.0, 0.3, 1.9, 5.0, 8.0, 20.0, 37.0])
    got = np.asarray(_nsq(g, jnp.asarray(z)))
    core = np.abs(z) <= 8
    np.testing.assert_allclose(got[core], ref.nsq(z[core]), rtol=1e-12, atol=1e-12)
    # beyond |z| = 8 jax's and scipy's log_ndtr differ by ~1e-11 relative
    np.testing.assert_allclose(got[~core], ref.nsq(z[~core]), rtol=1e-10)
    # the levels themselves, from the tail that keeps precision: F(x) = Phi(z) to round-off
    left = z <= 0
    np.testing.assert_allclose(ref.logcdf(got[left]), special.log_ndtr(z[left]), rtol=1e-10)
    np.testing.assert_allclose(ref.logsf(got[~left]), special.log_ndtr(-z[~left]), rtol=1e-10)


def test_normal_score_quantile_paper_densities_dense_grid():
    """Every quantile the paper's pipeline uses (data, mixture perturbation) on a dense grid."""
    z = np.linspace(-8.5, 8.5, 341)
    d = jaxsa.paper_data()
    p = jaxsa.paper_perturbations()["mixture"]
    for dens in (d, p):
        ref = MixRef(dens.weights, dens.means, dens.scales)
        got = np.asarray(_nsq(dens, jnp.asarray(z)))
        np.testing.assert_allclose(got, ref.nsq(z), rtol=1e-12, atol=1e-12)


def test_normal_score_roundtrip_and_quantile(mix):
    g, ref = mix
    z = jnp.linspace(-8, 8, 33)
    np.testing.assert_allclose(_ns(g, _nsq(g, z)), z, atol=1e-9)
    u = np.array([1e-10, 0.01, 0.25, 0.5, 0.8, 0.999])
    got = np.asarray(_q(g, jnp.asarray(u)))
    np.testing.assert_allclose(got, ref.quantile(u), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(ref.cdf(got), u, rtol=1e-11)


def test_single_gaussian_quantile_is_exact():
    g = jaxsa.gaussian(0.7, 1.3)
    z = jnp.linspace(-30, 30, 7)
    np.testing.assert_allclose(_nsq(g, z), 0.7 + 1.3 * np.asarray(z), rtol=1e-15)
    np.testing.assert_allclose(
        g.quantile(jnp.array([0.1, 0.9])), stats.norm.ppf([0.1, 0.9], 0.7, 1.3), rtol=1e-13
    )


def test_sampling_moments_with_explicit_keys(mix):
    g, ref = mix
    n = 200_000
    x = np.asarray(g.sample(jax.random.PRNGKey(0), (n,)))
    assert x.shape == (n,) and x.dtype == np.float64
    mu, var = ref.mean(), ref.var()
    # 5-sigma statistical bounds (the 4th central moment bounds the variance's error)
    m4 = np.mean((x - mu) ** 4)
    assert abs(x.mean() - mu) < 5 * np.sqrt(var / n)
    assert abs(x.var() - var) < 5 * np.sqrt((m4 - var**2) / n)
    assert stats.kstest(x[:20_000], ref.cdf).pvalue > 1e-4
    # same key, same draws; different key, different draws
    np.testing.assert_array_equal(
        g.sample(jax.random.PRNGKey(0), (10,)), g.sample(jax.random.PRNGKey(0), (10,))
    )
    assert not np.allclose(
        g.sample(jax.random.PRNGKey(1), (10,)), g.sample(jax.random.PRNGKey(0), (10,))
    )


def test_isotropic_2d_mixture():
    w, mu, s = np.array([0.3, 0.7]), np.array([[1.0, -1.0], [-0.5, 2.0]]), np.array([0.5, 1.2])
    g = jaxsa.GaussianMixture(w, mu, s)
    assert g.event_shape == (2,) and g.dim == 2
    x = np.array([[0.1, 0.2], [1.0, -1.0], [-3.0, 4.0]])
    ref = np.log(
        sum(w[k] * stats.multivariate_normal(mu[k], s[k] ** 2 * np.eye(2)).pdf(x) for k in range(2))
    )
    np.testing.assert_allclose(g.log_density(jnp.asarray(x)), ref, rtol=0, atol=2 * LOG_TOL)
    grad = jax.jit(jax.vmap(jax.grad(lambda gg, y: gg.log_density(y), argnums=1), (None, 0)))(
        g, jnp.asarray(x)
    )
    np.testing.assert_allclose(g.score(jnp.asarray(x)), grad, rtol=1e-10, atol=1e-12)
    n = 100_000
    samp = np.asarray(jax.jit(lambda gg, k: gg.sample(k, (n,)))(g, jax.random.PRNGKey(3)))
    assert samp.shape == (n, 2)
    np.testing.assert_allclose(samp.mean(0), np.asarray(g.mean()), atol=5 * np.sqrt(4.0 / n))
    mean_var = np.mean(samp.var(0))
    assert mean_var == pytest.approx(float(g.variance()), rel=0.02)
    with pytest.raises(ValueError, match="1D only"):
        g.cdf(jnp.zeros(3))


def test_uniform_matches_scipy():
    u = jaxsa.Uniform(-1.0, 3.0)
    ref = stats.uniform(-1.0, 4.0)
    x = np.linspace(-2, 4, 25)
    np.testing.assert_allclose(u.cdf(jnp.asarray(x)), ref.cdf(x), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(u.density(jnp.asarray(x)), ref.pdf(x), rtol=1e-14)
    lv = np.array([0.01, 0.3, 0.99])
    np.testing.assert_allclose(u.quantile(jnp.asarray(lv)), ref.ppf(lv), rtol=1e-14)
    z = np.array([-8.0, -1.0, 0.0, 2.0, 8.0])
    got = np.asarray(u.normal_score_quantile(jnp.asarray(z)))
    np.testing.assert_allclose(got, ref.ppf(special.ndtr(z)), rtol=1e-14, atol=1e-15)
    # right tail kept to full precision: 3 - 4 Phi(-8), which ppf(ndtr(8)) would round to 3
    assert 3.0 - got[-1] == pytest.approx(4 * special.ndtr(-8.0), rel=1e-12)
    # round trip where x - low is representable to ~1e-9 (at z = -8 it is 2.5e-15 on top of -1)
    zi = jnp.array([-5.0, -1.0, 0.0, 2.0, 5.0])
    np.testing.assert_allclose(
        u.normal_score(u.normal_score_quantile(zi)), zi, rtol=1e-8, atol=1e-12
    )
    assert float(u.mean()) == 1.0 and float(u.variance()) == pytest.approx(16 / 12)
    s = np.asarray(u.sample(jax.random.PRNGKey(0), (50_000,)))
    assert s.min() >= -1 and s.max() <= 3 and stats.kstest(s, ref.cdf).pvalue > 1e-4


def test_paper_perturbations():
    perts = jaxsa.paper_perturbations()
    assert set(perts) == set(jaxsa.PERTURBATION_NAMES)
    assert float(perts["uniform"].variance()) == pytest.approx(1.0, rel=1e-14)
    assert float(perts["mean"].mean()) == 1.0 and float(
        perts["variance"].variance()
    ) == pytest.approx(0.64)
    m = perts["mixture"]
    np.testing.assert_allclose(m.means, [-1 / 0.94, 0.0, 1 / 0.94])
    np.testing.assert_allclose(m.scales, [0.3 / 0.94, 0.8 / 0.94, 0.3 / 0.94])


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        (
            dict(weights=[0.5, 0.6], means=[0.0, 1.0], scales=[1.0, 1.0]),
            r"`weights` must sum to one",
        ),
        (dict(weights=[1.5, -0.5], means=[0.0, 1.0], scales=[1.0, 1.0]), r"`weights` must be >= 0"),
        (dict(weights=[0.5, 0.5], means=[0.0, 1.0], scales=[1.0, -1.0]), r"`scales`"),
        (dict(weights=[0.5, 0.5], means=[0.0, 1.0], scales=[1.0, 0.0]), r"`scales`"),
        (dict(weights=[0.5, 0.5], means=[0.0, np.nan], scales=[1.0, 1.0]), r"`means`"),
        (dict(weights=[0.5, 0.5], means=[0.0, 1.0, 2.0], scales=[1.0, 1.0]), r"`weights`.*`means`"),
    ],
    ids=["weights-sum", "weights-negative", "scale-negative", "scale-zero", "means-nan", "shapes"],
)
def test_mixture_rejects_bad_inputs(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        jaxsa.GaussianMixture(**kwargs)


@pytest.mark.parametrize("low,high", [(1.0, 1.0), (2.0, -1.0)])
def test_uniform_rejects_low_ge_high(low, high):
    with pytest.raises(ValueError, match=r"`low` < `high`"):
        jaxsa.Uniform(low, high)


def test_gaussian_rejects_negative_std():
    with pytest.raises(ValueError, match=r"`scales`"):
        jaxsa.gaussian(0.0, -1.0)


# --------------------------------------------------------------------------- property tests
@jax.jit
def _nsq_check(w, m, s, z):
    """(x, log-CDF error): x = Q(Phi(z)) and the deviation of ln F(x) (or ln(1-F)) from
    ln Phi(z) (or ln Phi(-z)), the tail that keeps the precision."""
    from jax.scipy.special import log_ndtr

    g = jaxsa.GaussianMixture.unchecked(w, m, s)
    x = g.normal_score_quantile(z)
    err = jnp.where(z <= 0, g.log_cdf(x) - log_ndtr(z), g.log_sf(x) - log_ndtr(-z))
    return x, err


def _mixtures(min_scale, max_abs_mean):
    @st.composite
    def build(draw):
        k = draw(st.integers(1, 4))
        w = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=k, max_size=k)))
        m = np.array(draw(st.lists(st.floats(-max_abs_mean, max_abs_mean), min_size=k, max_size=k)))
        s = np.array(draw(st.lists(st.floats(min_scale, 2.0), min_size=k, max_size=k)))
        return w / w.sum(), m, s

    return build()


_Z = np.concatenate([np.linspace(-8.0, 8.0, 81), [-20.0, 20.0]])


def _pad4(w, m, s):
    """The same mixture with exactly four components (the last one split into equal parts), so
    that one compiled program serves every example."""
    w, m, s = (np.asarray(a, float) for a in (w, m, s))
    w = w / w.sum()
    extra = 4 - len(w)
    if extra:
        w = np.concatenate([w[:-1], np.full(extra + 1, w[-1] / (extra + 1))])
        m = np.concatenate([m, np.full(extra, m[-1])])
        s = np.concatenate([s, np.full(extra, s[-1])])
    return w, m, s


def _assert_quantile_property(mixture):
    w, m, s = _pad4(*mixture)
    x, err = _nsq_check(jnp.asarray(w), jnp.asarray(m), jnp.asarray(s), jnp.asarray(_Z))
    # ln F(x) = ln Phi(z) to round-off (relative; jax's log_ndtr itself is good to ~1e-11
    # relative at z = -20), and F(x) = ndtr(z)
    scale = np.maximum(1.0, np.abs(special.log_ndtr(-np.abs(_Z))))
    assert np.max(np.abs(np.asarray(err)) / scale) < 1e-9
    np.testing.assert_allclose(
        MixRef(w, m, s).cdf(np.asarray(x)), special.ndtr(_Z), rtol=1e-9, atol=1e-15
    )
    assert np.all(np.diff(np.asarray(x)[np.argsort(_Z)]) > 0)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(_mixtures(min_scale=0.3, max_abs_mean=1.5))
def test_property_cdf_of_normal_score_quantile_is_ndtr_overlapping(mixture):
    """Overlapping components (the regime of the paper's densities)."""
    _assert_quantile_property(mixture)


# Regression cases found by a random search. A Newton iteration safeguarded only by "the step
# stays inside the bracket [a, b]" can oscillate between the two ends of the bracket (every
# step is accepted, the bisection fallback never fires, the bracket barely shrinks) and stop far
# from the root: for _OSCILLATING at z = -0.3, F(x) differed from Phi(z) by a factor ~5.
_OSCILLATING = (
    np.array([0.3783636, 0.17220868, 0.37887899, 0.07054874]),
    np.array([-1.33865848, -2.22972822, 0.90332774, 0.87691765]),
    np.array([0.46454829, 1.82024562, 1.46801975, 1.45315391]),
)
_NARROW = (
    np.array([0.23776957, 0.2164136, 0.28164492, 0.26417191]),
    np.array([-4.97213241, 0.13092759, -0.14110329, -2.44917885]),
    np.array([0.1178581, 0.0168034, 1.45252948, 1.49119864]),
)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(_mixtures(min_scale=0.01, max_abs_mean=5.0))
@example(_OSCILLATING)
@example(_NARROW)
def test_property_cdf_of_normal_score_quantile_is_ndtr_general(mixture):
    """Any small mixture, narrow and well-separated components included."""
    _assert_quantile_property(mixture)


def test_normal_score_quantile_regression_oscillation():
    w, m, s = _OSCILLATING
    g = jaxsa.GaussianMixture(w / w.sum(), m, s)
    ref = MixRef(w / w.sum(), m, s)
    assert float(_nsq(g, -0.3)) == pytest.approx(ref.nsq(-0.3), abs=1e-10)


def test_quantile_is_differentiable_in_reverse_mode():
    """The quantile's Newton loop stops at convergence (a while loop, no reverse mode); its
    derivative comes from one implicit-function step: check it against finite differences."""

    def q(shift, z):
        g = jaxsa.GaussianMixture([0.3, 0.7], [-1.0 + shift, 0.5], [0.4, 0.8])
        return g.normal_score_quantile(z)

    z = jnp.array([-6.0, -1.0, 0.0, 0.7, 5.0])
    g_shift = jax.grad(lambda s: jnp.sum(q(s, z)))(0.2)
    h = 1e-6
    fd = jnp.sum(q(0.2 + h, z) - q(0.2 - h, z)) / (2 * h)
    assert float(g_shift) == pytest.approx(float(fd), rel=1e-6)
    dz = jax.vmap(jax.grad(lambda zz: q(0.2, zz)))(z)  # dx/dz = φ(z)/p(x)
    g = jaxsa.GaussianMixture([0.3, 0.7], [-0.8, 0.5], [0.4, 0.8])
    expect = jnp.exp(-0.5 * z**2 - 0.5 * jnp.log(2 * jnp.pi) - g.log_density(q(0.2, z)))
    np.testing.assert_allclose(dz, expect, rtol=1e-9)
