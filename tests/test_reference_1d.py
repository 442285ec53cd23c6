"""Self-tests of the independent 1D reference (tests/helpers/reference_1d.py) against closed forms.

Nothing here touches jaxsa: these tests check the reference itself, so that it can later be
used to test jaxsa's 1D speed_accuracy on random multimodal configurations.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from tests.helpers import reference_1d as R

SCHEDULES = [
    R.Schedule("cosine", 1.3),
    R.Schedule("cond-ot", 0.8),
    R.Schedule("vp-linear", 1.1, beta_min=0.1, beta_max=12.0),
    R.Schedule("ve-geometric", 1.7, sigma_min=0.01, sigma_max=8.0),
]

BIMODAL = R.Mixture([0.3, 0.7], [-1.2, 0.9], [0.08, 0.3])
TRIMODAL = R.Mixture([0.2, 0.5, 0.3], [-3.0, 0.2, 3.5], [0.05, 0.4, 0.12])


# ---------------------------------------------------------------------------------------
# closed forms written here, independently of the module
# ---------------------------------------------------------------------------------------


def w1_gauss(m1, s1, m2, s2):
    """W1(N(m1,s1^2), N(m2,s2^2)) = E|dm + ds Z| = dm (2 Phi(dm/|ds|) - 1) + 2 |ds| phi(dm/ds)."""
    dm, ds = m1 - m2, abs(s1 - s2)
    if ds == 0:
        return abs(dm)
    c = dm / ds
    return dm * (2 * special.ndtr(c) - 1) + 2 * ds * math.exp(-0.5 * c * c) / math.sqrt(2 * math.pi)


def chi2_gauss(m0, s0, m1, s1):
    """chi^2(N(m1,s1^2) || N(m0,s0^2)) = s0^2/(s1 sqrt(2 s0^2 - s1^2)) exp((m1-m0)^2/(2 s0^2 - s1^2)) - 1."""
    d = 2 * s0**2 - s1**2
    if d <= 0:
        return math.inf
    return s0**2 / (s1 * math.sqrt(d)) * math.exp((m1 - m0) ** 2 / d) - 1


def gaussian_v2_sq(sched, mu, s, t):
    """Data N(mu, s^2): P_t = N(m mu, sigma^2 + m^2 s^2), affine flow: v2^2 = M'^2 + S'^2."""
    m, dm, s2, ds2 = sched.coeffs(t)
    big_s = math.sqrt(s2 + m * m * s * s)
    return (dm * mu) ** 2 + ((ds2 + 2 * m * dm * s * s) / (2 * big_s)) ** 2


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


# ---------------------------------------------------------------------------------------
# distributions, schedules, velocity
# ---------------------------------------------------------------------------------------


def test_mixture_tails_and_inversion():
    mix = TRIMODAL
    z = np.array([-37.0, -30.0, -11.4, -3.0, -0.1, 0.0, 0.7, 5.0, 11.4, 30.0, 37.0])
    x = mix.from_nscore(z)
    assert np.all(np.diff(x) > 0)
    np.testing.assert_allclose(mix.nscore(x), z, rtol=1e-12, atol=1e-13)
    # log-space CDF at a 1e-30 tail
    lo = z < 0
    np.testing.assert_allclose(mix.logcdf(x[lo]), special.log_ndtr(z[lo]), rtol=1e-12)
    np.testing.assert_allclose(mix.logsf(x[~lo]), special.log_ndtr(-z[~lo]), rtol=1e-12)
    # the gaps between narrow modes (density ~ e^-1000) invert too
    u = np.array([0.2 - 1e-9, 0.2, 0.2 + 1e-9, 0.7, 0.7 + 1e-12])
    xu = mix.quantile(u)
    np.testing.assert_allclose(mix.cdf(xu), u, rtol=1e-12)
    # uniform
    uni = R.Uniform(-1.0, 2.5)
    zz = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])  # absolute precision only near the edges
    np.testing.assert_allclose(uni.nscore(uni.from_nscore(zz)), zz, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("sched", SCHEDULES, ids=lambda s: s.name)
def test_schedule_coefficients(sched):
    m0, _, s20, _ = sched.coeffs(0.0)
    assert m0 == 1.0 and s20 == 0.0
    h = 1e-6 * sched.tau
    for f in (0.1, 0.45, 0.8):
        t = f * sched.tau
        m, dm, s2, ds2 = sched.coeffs(t)
        mp, _, s2p, _ = sched.coeffs(t + h)
        mm, _, s2m, _ = sched.coeffs(t - h)
        assert rel((mp - mm) / (2 * h), dm) < 1e-7 or abs(dm) < 1e-12
        assert rel((s2p - s2m) / (2 * h), ds2) < 1e-7
        # T_t >= 0 (monotonicity of sigma/m)
        assert 0.5 * ds2 - s2 * dm / m >= 0
        if sched.name in ("cosine", "vp-linear"):
            assert abs(m * m + s2 - 1) < 1e-14
    mt, _, s2t, _ = sched.coeffs(sched.tau)
    if sched.name in ("cosine", "cond-ot"):
        assert mt == 0.0 and s2t == 1.0
    if sched.name == "ve-geometric":
        assert rel(s2t, 0.01**2 * ((8.0 / 0.01) ** 2 - 1)) < 1e-13


@pytest.mark.parametrize("sched", SCHEDULES, ids=lambda s: s.name)
def test_velocity_solves_continuity(sched):
    """d/dt F_t(x) = -nu_t(x) P_t(x) (the velocity transports the forward marginals)."""
    x = np.linspace(-4.0, 4.0, 41)
    for f in (0.05, 0.5, 0.9):
        t = f * sched.tau
        h = 1e-5 * sched.tau
        dF = (sched.marginal(BIMODAL, t + h).cdf(x) - sched.marginal(BIMODAL, t - h).cdf(x)) / (
            2 * h
        )
        flux = R.velocity(t, sched, BIMODAL, x) * sched.marginal(BIMODAL, t).pdf(x)
        np.testing.assert_allclose(dF, -flux, atol=1e-7 * max(1.0, np.max(np.abs(flux))))


def test_velocity_single_gaussian_is_affine():
    data = R.Mixture.gaussian(0.4, 0.3)
    for sched in SCHEDULES:
        t = 0.37 * sched.tau
        m, dm, s2, ds2 = sched.coeffs(t)
        big_s = math.sqrt(s2 + m * m * 0.09)
        ds = (ds2 + 2 * m * dm * 0.09) / (2 * big_s)
        x = np.linspace(-3, 3, 7)
        np.testing.assert_allclose(
            R.velocity(t, sched, data, x),
            dm * 0.4 + ds / big_s * (x - m * 0.4),
            rtol=1e-12,
            atol=1e-13,
        )


# ---------------------------------------------------------------------------------------
# W1
# ---------------------------------------------------------------------------------------


def test_w1_gaussians_closed_form():
    n01 = R.Mixture.gaussian(0.0, 1.0)
    assert rel(R.w1_start(n01, R.Mixture.gaussian(0.7, 1.0)), 0.7) < 1e-12
    assert rel(R.w1_start(n01, R.Mixture.gaussian(0.0, 0.6)), 0.4 * math.sqrt(2 / math.pi)) < 1e-12
    for m1, s1, m2, s2 in [(0.3, 1.0, -0.2, 0.5), (0.0, 2.0, 3.0, 0.1), (1.0, 0.05, 1.01, 0.07)]:
        got = R.w1_start(R.Mixture.gaussian(m1, s1), R.Mixture.gaussian(m2, s2))
        assert rel(got, w1_gauss(m1, s1, m2, s2)) < 1e-10


def test_w1_uniform_vs_quantile_route():
    n01 = R.Mixture.gaussian(0.0, 1.0)
    for a, b in [(-math.sqrt(3), math.sqrt(3)), (-0.42, 1.27), (-2.0, 0.3)]:
        x_route = R.w1_start(n01, R.Uniform(a, b))
        q_route = R.w1_start_quantile(n01, R.Uniform(a, b))
        assert rel(x_route, q_route) < 1e-11


def test_w1_generated_gaussian_data_closed_form():
    """q = N(mu, s^2), prior N(c, C): p is the push of N(a, b^2) by y -> mu + s (y - c)/sqrt(C)."""
    mu, s = 0.3, 0.45
    data = R.Mixture.gaussian(mu, s)
    for sched in SCHEDULES:
        prior = sched.prior(data)
        c, sc = float(prior.m[0]), float(prior.s[0])
        for a, b in [(0.5, 1.1), (-0.8, 0.6)]:
            pert = R.Mixture.gaussian(c + a * sc, b * sc)
            exp_ = w1_gauss(mu, s, mu + s * a, s * b)
            assert rel(R.w1_generated(data, prior, pert), exp_) < 1e-10
        # uniform start: p is uniform on the mapped interval
        pert = R.Uniform(c - 1.2 * sc, c + 0.4 * sc)
        p = R.Uniform(mu - 1.2 * s, mu + 0.4 * s)
        assert rel(R.w1_generated(data, prior, pert), R.w1_start(data, p)) < 1e-10


def test_w1_generated_x_vs_quantile_route():
    """The x-space integral and int_0^1 |Q_q - Q_p| du agree on multimodal data (the quantile
    route is slow on narrow modes; more cases in the slow test)."""
    data = R.Mixture([0.4, 0.6], [-0.8, 0.7], [0.3, 0.4])
    prior = R.Mixture.gaussian(0.0, 1.0)
    pert = R.Uniform(-1.0, 1.5)
    assert (
        rel(R.w1_generated(data, prior, pert), R.w1_generated_quantile(data, prior, pert)) < 1e-10
    )


@pytest.mark.slow
@pytest.mark.parametrize("data", [BIMODAL, TRIMODAL], ids=["bimodal", "trimodal"])
def test_w1_generated_x_vs_quantile_route_slow(data):
    sched = R.Schedule("vp-linear", 1.0, beta_min=0.2, beta_max=9.0)
    prior = sched.prior(data)
    for pert in (R.Mixture.gaussian(0.4, 1.2), R.Uniform(-1.0, 1.5)):
        assert (
            rel(R.w1_generated(data, prior, pert), R.w1_generated_quantile(data, prior, pert))
            < 1e-10
        )


# ---------------------------------------------------------------------------------------
# chi^2
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "m0,s0,m1,s1",
    [(0.0, 1.0, 1.0, 1.0), (0.0, 1.0, 0.0, 0.8), (0.2, 1.3, -0.5, 1.7), (0.0, 1.0, 0.3, 1.4)],
)
def test_chi2_gaussians_closed_form(m0, s0, m1, s1):
    prior, pert = R.Mixture.gaussian(m0, s0), R.Mixture.gaussian(m1, s1)
    exp_ = chi2_gauss(m0, s0, m1, s1)
    assert rel(R.chi2(prior, pert), exp_) < 1e-12
    assert rel(R.chi2_quad(prior, pert), exp_) < 1e-9


def test_chi2_near_threshold_long_tails():
    prior = R.Mixture.gaussian(0.0, 1.0)
    pert = R.Mixture.gaussian(0.5, math.sqrt(0.98 * 2.0))
    exp_ = chi2_gauss(0.0, 1.0, 0.5, math.sqrt(1.96))
    assert rel(R.chi2(prior, pert), exp_) < 1e-12
    assert rel(R.chi2_quad(prior, pert), exp_) < 1e-9


def test_chi2_mixture_closed_vs_quad():
    prior = R.Mixture.gaussian(0.0, 1.0)
    pert = R.Mixture([1 / 3] * 3, [-1 / 0.94, 0.0, 1 / 0.94], [0.3 / 0.94, 0.8 / 0.94, 0.3 / 0.94])
    assert rel(R.chi2_closed(prior, pert), R.chi2_quad(prior, pert)) < 1e-10
    pert = R.Mixture([0.5, 0.5], [-0.5, 1.0], [0.4, 1.3])
    assert rel(R.chi2_closed(prior, pert), R.chi2_quad(prior, pert)) < 1e-10
    uni = R.Uniform(-math.sqrt(3), math.sqrt(3))
    assert rel(R.chi2_closed(prior, uni), R.chi2_quad(prior, uni)) < 1e-10


def test_chi2_mixture_prior_vs_prior_quantile_route():
    """Mixture (VP) prior: D0 = E_P[(P~/P - 1)^2] = int (rho(F^{-1}(Phi(z))) - 1)^2 phi(z) dz."""
    sched = R.Schedule("vp-linear", 0.6, beta_min=0.3, beta_max=6.0)
    prior = sched.prior(TRIMODAL)
    assert prior.k == 3
    for pert in (R.Mixture.gaussian(0.4, 0.8), R.Mixture([0.6, 0.4], [-0.5, 0.7], [0.5, 0.9])):

        def g(z):
            x = prior.from_nscore(np.array([z]))
            d = pert.logpdf(x) - prior.logpdf(x)
            return float(np.expm1(d)[0] ** 2 * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi))

        pts = np.linspace(-14.0, 14.0, 29)
        ref = math.fsum(
            integrate.quad(g, a, b, epsabs=1e-16, epsrel=1e-12, limit=200)[0]
            for a, b in zip(pts[:-1], pts[1:])
        )
        assert rel(R.chi2(prior, pert), ref) < 1e-9


def test_chi2_divergence_rule():
    prior = R.Mixture.gaussian(0.3, 1.2)
    thr = math.sqrt(2.0) * 1.2
    assert R.chi2(prior, R.Mixture.gaussian(0.0, thr)) == math.inf  # equality diverges
    assert R.chi2(prior, R.Mixture.gaussian(0.3, thr)) == math.inf  # even with equal means
    assert R.chi2(prior, R.Mixture.gaussian(0.0, 1.01 * thr)) == math.inf
    assert math.isfinite(R.chi2(prior, R.Mixture.gaussian(0.0, 0.999 * thr)))
    assert R.chi2(prior, R.Mixture([0.99, 0.01], [0.0, 0.0], [0.5, thr])) == math.inf
    assert math.isfinite(R.chi2(prior, R.Uniform(-5.0, 5.0)))
    # mixture prior at the threshold: finite iff the widest perturbation means lie strictly
    # inside the span of the widest prior means (the tail exponent is then linear and negative)
    mprior = R.Mixture([0.5, 0.5], [-1.0, 1.0], [1.0, 1.0])
    inside = R.Mixture.gaussian(0.0, math.sqrt(2.0))
    d_eq = R.chi2(mprior, inside)
    assert math.isfinite(d_eq) and d_eq > 0
    d_near = R.chi2(mprior, R.Mixture.gaussian(0.0, math.sqrt(2.0 * (1 - 1e-7))))
    assert rel(d_near, d_eq) < 1e-5  # continuity at the boundary (dominated convergence)
    assert R.chi2(mprior, R.Mixture.gaussian(1.0, math.sqrt(2.0))) == math.inf
    assert R.chi2(mprior, R.Mixture.gaussian(-1.5, math.sqrt(2.0))) == math.inf


def test_chi2_constant_along_flow():
    sched = R.Schedule("cosine", 1.0)
    prior = sched.prior(BIMODAL)
    for pert in (R.Mixture.gaussian(0.5, 1.1), R.Uniform(-1.5, 1.0)):
        d0 = R.chi2(prior, pert)
        assert rel(R.chi2_t(0.5, sched, BIMODAL, pert), d0) < 1e-9


# ---------------------------------------------------------------------------------------
# time derivatives, v2, c2
# ---------------------------------------------------------------------------------------


def _fd(f, t, h):
    """Richardson-extrapolated central difference (error O(h^4))."""
    d1 = (f(t + h) - f(t - h)) / (2 * h)
    d2 = (f(t + h / 2) - f(t - h / 2)) / h
    return (4 * d2 - d1) / 3


@pytest.mark.parametrize(
    "sched,pert",
    [
        (R.Schedule("cosine", 1.0), R.Mixture.gaussian(0.6, 0.9)),
        (R.Schedule("vp-linear", 1.2, beta_min=0.3, beta_max=10.0), R.Uniform(-1.3, 1.0)),
        (
            R.Schedule("ve-geometric", 0.9, sigma_min=0.02, sigma_max=6.0),
            R.Mixture([0.4, 0.6], [-2.0, 1.5], [2.0, 3.0]),
        ),
    ],
    ids=["cosine-gauss", "vp-uniform", "ve-mixture"],
)
def test_dw1_dt_matches_finite_difference(sched, pert):
    t = 0.4 * sched.tau
    got = R.dw1_dt(t, sched, BIMODAL, pert)
    fd = _fd(lambda s: R.w1_t(s, sched, BIMODAL, pert), t, 2e-3 * sched.tau)
    assert rel(got, fd) < 1e-7


def test_w1_t_endpoints():
    sched = R.Schedule("cond-ot", 1.0)
    prior = sched.prior(TRIMODAL)
    pert = R.Mixture.gaussian(-0.3, 1.2)
    assert R.w1_t(1.0, sched, TRIMODAL, pert) == R.w1_start(prior, pert)
    assert rel(R.w1_t(0.0, sched, TRIMODAL, pert), R.w1_generated(TRIMODAL, prior, pert)) < 1e-12


def test_ot_schedule():
    """1D OT path: W1(t) from quantiles; endpoints, derivative, v2 = W2/tau."""
    prior = R.Mixture.gaussian(0.0, 1.0)
    sched = R.Schedule("ot", 1.0)
    data = R.Mixture([0.5, 0.5], [math.sqrt(0.35), -math.sqrt(0.35)], [0.3, 0.3])
    pert = R.Mixture.gaussian(1.0, 1.0)
    assert rel(R.w1_t(1.0, sched, data, pert, prior), R.w1_start(prior, pert)) < 1e-10
    assert rel(R.w1_t(0.0, sched, data, pert, prior), R.w1_generated(data, prior, pert)) < 1e-10
    fd = _fd(lambda s: R.w1_t(s, sched, data, pert, prior), 0.5, 2e-3)
    assert rel(R.dw1_dt(0.5, sched, data, pert, prior), fd) < 1e-7
    # centred starts (variance, uniform): D_0 and D_tau are odd in z, so their combination
    # vanishes exactly on the grid node z = 0 and changes sign there (a sign change missed
    # this way once made W1(t) ~ 1e-17 instead of 0.07)
    for pert in (R.Mixture.gaussian(0.0, 0.8), R.Uniform(-math.sqrt(3.0), math.sqrt(3.0))):
        for t, want in ((0.0, R.w1_generated(data, prior, pert)), (1.0, R.w1_start(prior, pert))):
            assert rel(R.w1_t(t, sched, data, pert, prior), want) < 1e-10
        fd = _fd(lambda s, pert=pert: R.w1_t(s, sched, data, pert, prior), 0.5, 2e-3)
        assert rel(R.dw1_dt(0.5, sched, data, pert, prior), fd) < 1e-7
    # W2 between Gaussians: N(0, s^2) vs N(0,1) is (1 - s)^2
    g = R.Mixture.gaussian(0.0, 0.3)
    assert rel(R.v2_sq(0.2, R.Schedule("ot", 2.0), g, prior), 0.49 / 4.0) < 1e-10


@pytest.mark.parametrize("sched", SCHEDULES, ids=lambda s: s.name)
def test_v2_sq_gaussian_closed_form(sched):
    data = R.Mixture.gaussian(0.7, 0.2)
    for f in (0.0, 1e-3, 0.2, 0.6, 0.95):
        t = f * sched.tau
        exp_ = gaussian_v2_sq(sched, 0.7, 0.2, t)
        assert rel(R.v2_sq(t, sched, data), exp_) < 1e-9 or abs(exp_) < 1e-14


def test_v2_sq_mixture_below_conditional_bound():
    """Jensen: int nu^2 P <= sum_k w_k (M_k'^2 + S_k'^2), near equality for separated modes."""
    sched = R.Schedule("cond-ot", 1.0)
    for t in (0.1, 0.5, 0.9):
        bound = sum(
            w * gaussian_v2_sq(sched, mu, s, t)
            for w, mu, s in zip(TRIMODAL.w, TRIMODAL.m, TRIMODAL.s)
        )
        assert R.v2_sq(t, sched, TRIMODAL) <= bound * (1 + 1e-12)


@pytest.mark.parametrize("mu,s,tau", [(0.0, 0.3, 1.0), (0.5, 0.8, 2.0)])
def test_c2_cond_ot_gaussian(mu, s, tau):
    """cond-OT, q = N(mu, s^2): S(u) = sqrt(u^2 + (1-u)^2 s^2), u = t/tau, and
    int_0^1 S'(u)^2 du = 1 + s^2 - pi s / 2, so c2 = (mu^2 + 1 + s^2 - pi s / 2) / tau."""
    got = R.c2(R.Schedule("cond-ot", tau), R.Mixture.gaussian(mu, s))
    assert rel(got, (mu * mu + 1 + s * s - math.pi * s / 2) / tau) < 1e-8


def test_instantaneous_bound():
    """[dW1/dt]^2 / D0 <= v2(t)^2 (Eq. 80 with a conservative force)."""
    for sched, pert in [
        (R.Schedule("cosine", 1.0), R.Uniform(-math.sqrt(3), math.sqrt(3))),
        (R.Schedule("vp-linear", 1.0, beta_min=0.1, beta_max=15.0), R.Mixture.gaussian(0.5, 0.9)),
    ]:
        prior = sched.prior(BIMODAL)
        d0 = R.chi2(prior, pert)
        for f in (0.2, 0.7):
            t = f * sched.tau
            assert R.dw1_dt(t, sched, BIMODAL, pert) ** 2 / d0 <= R.v2_sq(t, sched, BIMODAL)


# ---------------------------------------------------------------------------------------
# random configurations and the reference dict
# ---------------------------------------------------------------------------------------


def test_random_config_and_reference():
    rng = np.random.default_rng(12345)
    cfgs = [R.random_config(rng) for _ in range(6)]
    assert R.random_config(np.random.default_rng(12345)) == cfgs[0]
    for cfg in cfgs:
        assert set(cfg) >= {"data", "schedule", "perturbation"}
        k = len(cfg["data"]["weights"])
        assert 2 <= k <= 4 and abs(sum(cfg["data"]["weights"]) - 1) < 1e-12
        assert all(0.05 <= s <= 0.5 for s in cfg["data"]["scales"])
        gaps = np.diff(cfg["data"]["means"])
        assert np.all((gaps >= 0.5) & (gaps <= 4.0))
        out = R.reference(cfg)
        assert set(out) == {"W1_init", "W1_q_p", "D0", "delta_W1", "eta"}
        assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
        assert out["D0"] > 0 and out["W1_init"] > 0 and out["W1_q_p"] > 0
        assert out["delta_W1"] == out["W1_q_p"] - out["W1_init"]


def test_paper_case_values():
    """SPEC §7: q = 1/2 N(+-sqrt(.35), .3^2), cosine, P~ = N(1, 1): D0 = e - 1, W1_init = 1."""
    cfg = {
        "data": {
            "weights": [0.5, 0.5],
            "means": [math.sqrt(0.35), -math.sqrt(0.35)],
            "scales": [0.3, 0.3],
        },
        "schedule": {"name": "cosine", "tau": 1.0},
        "perturbation": {"type": "gaussian", "mean": 1.0, "scale": 1.0},
    }
    out = R.reference(cfg)
    assert rel(out["D0"], math.e - 1) < 1e-14
    assert rel(out["W1_init"], 1.0) < 1e-12
    data, _, prior, pert = R.config_objects(cfg)
    assert rel(out["W1_q_p"], R.w1_generated_quantile(data, prior, pert)) < 1e-10
    assert rel(out["eta"], out["delta_W1"] ** 2 / (math.e - 1)) < 1e-14


@pytest.mark.slow
def test_random_configs_bounds_slow():
    """eta <= c1 <= c2 and the two W1 routes agree on random configurations (slow)."""
    rng = np.random.default_rng(7)
    cfgs = [R.random_config(rng) for _ in range(3)]
    cfgs.append(R.random_config(rng, schedules=("ot",)))
    for cfg in cfgs:
        data, sched, prior, pert = R.config_objects(cfg)
        out = R.reference(cfg, with_c=True)
        print(sched.name, cfg["perturbation"]["type"], out)
        assert out["eta"] <= out["c1"] * (1 + 1e-7)
        assert out["c1"] <= out["c2"] * (1 + 1e-7)
        assert rel(out["W1_q_p"], R.w1_generated_quantile(data, prior, pert)) < 1e-10
