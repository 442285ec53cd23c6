"""Distances and divergences (SPEC §2, Eqs. 52–60; §4 Eq. 78) against scipy, POT and
closed forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import ot
import pytest
import scipy.linalg
from scipy import integrate, stats

import jaxsa


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(12345)
    x = rng.normal(0.3, 1.0, 2000)
    y = np.concatenate([rng.normal(-1.0, 0.4, 1000), rng.normal(1.5, 0.7, 1000)])
    return x, y


def test_w1_samples_1d_matches_scipy_and_pot(samples):
    x, y = samples
    got = float(jaxsa.w1_samples_1d(jnp.asarray(x), jnp.asarray(y)))
    assert got == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-12)
    n = 400  # POT's exact network simplex on a 400 x 400 cost matrix
    M = ot.dist(x[:n, None], y[:n, None], metric="euclidean")
    emd = ot.emd2(np.full(n, 1 / n), np.full(n, 1 / n), M)
    assert float(jaxsa.w1_samples_1d(jnp.asarray(x[:n]), jnp.asarray(y[:n]))) == pytest.approx(
        emd, rel=1e-10
    )
    assert got == pytest.approx(ot.wasserstein_1d(x, y, p=1), rel=1e-10)


def test_w1_samples_1d_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must both be"):
        jaxsa.w1_samples_1d(jnp.zeros(3), jnp.zeros(4))


def test_wp_quantiles_matches_closed_forms():
    """W_1 and W_2 between N(0.2, 0.7^2) and N(-0.4, 1.3^2) from quantiles on normal-score nodes."""
    z, w = jaxsa.quantile_nodes(2001, 9.0)
    qa, qb = 0.2 + 0.7 * z, -0.4 + 1.3 * z
    w1 = float(jaxsa.wp_quantiles(jnp.asarray(qa), jnp.asarray(qb), jnp.asarray(w), p=1.0))
    w2 = float(jaxsa.wp_quantiles(jnp.asarray(qa), jnp.asarray(qb), jnp.asarray(w), p=2.0))
    ref_w1 = integrate.quad(
        lambda u: abs(0.6 - 0.6 * u) * stats.norm.pdf(u), -12, 12, points=[1.0], epsabs=1e-14
    )[0]
    assert w1 == pytest.approx(ref_w1, rel=1e-5)  # trapezoid across the kink: O(h^2), h = 0.009
    assert w2 == pytest.approx(np.sqrt(0.6**2 + 0.6**2), rel=1e-10)
    assert float(np.sum(w)) == pytest.approx(1 - 2 * stats.norm.cdf(-9.0), abs=1e-12)


def test_w1_cdf_grid_matches_quadrature():
    x = np.linspace(-10, 10, 20001)
    a, b = stats.norm(0.2, 0.7), stats.norm(-0.4, 1.3)
    got = float(jaxsa.w1_cdf_grid(jnp.asarray(x), jnp.asarray(a.cdf(x)), jnp.asarray(b.cdf(x))))
    ref = integrate.quad(lambda t: abs(a.cdf(t) - b.cdf(t)), -np.inf, np.inf, limit=200)[0]
    assert got == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize(
    "mp,sp,mq,sq",
    [(1.0, 1.0, 0.0, 1.0), (0.0, 0.8, 0.0, 1.0), (0.3, 0.5, -0.2, 1.4), (-1.0, 2.0, 0.5, 0.3)],
)
def test_w1_gaussian_1d_matches_quadrature(mp, sp, mq, sq):
    # W_1 = int |F_P^{-1}(u) - F_Q^{-1}(u)| du = E|a + b Z|, a = dmu, b = ds
    ref = integrate.quad(
        lambda z: abs((mp - mq) + (sp - sq) * z) * stats.norm.pdf(z),
        -np.inf,
        np.inf,
        limit=200,
        epsabs=1e-14,
    )[0]
    got = float(jaxsa.w1_gaussian_1d(mp, sp, mq, sq))
    assert got == pytest.approx(ref, rel=1e-10)
    # and the CDF form int |F_P - F_Q| dx
    ref_cdf = integrate.quad(
        lambda x: abs(stats.norm.cdf(x, mp, sp) - stats.norm.cdf(x, mq, sq)),
        -30,
        30,
        limit=400,
        epsabs=1e-14,
    )[0]
    assert got == pytest.approx(ref_cdf, rel=1e-8)
    assert float(jaxsa.w1_gaussian_1d(mp, sp, mp, sp)) == 0.0


def test_w2_gaussian_closed_forms():
    rng = np.random.default_rng(0)
    # isotropic (Eq. 60): ||dmu||^2 + d (s_P - s_Q)^2
    d = 3
    mp, mq = rng.normal(size=d), rng.normal(size=d)
    got = float(
        jaxsa.w2_gaussian(
            jnp.asarray(mp), 0.7**2 * jnp.eye(d), jnp.asarray(mq), 1.9**2 * jnp.eye(d)
        )
    )
    expect = np.sqrt(np.sum((mp - mq) ** 2) + d * (0.7 - 1.9) ** 2)
    assert got == pytest.approx(expect, rel=1e-12)
    assert float(
        jaxsa.w2_isotropic_gaussian(jnp.asarray(mp), 0.7, jnp.asarray(mq), 1.9)
    ) == pytest.approx(expect, rel=1e-14)
    # 1D: |dmu|^2 + (ds)^2
    got1 = float(
        jaxsa.w2_gaussian(
            jnp.array([0.3]), jnp.array([[0.25]]), jnp.array([-0.2]), jnp.array([[1.44]])
        )
    )
    assert got1 == pytest.approx(np.sqrt(0.5**2 + 0.7**2), rel=1e-12)
    # general covariances (Eq. 59) against scipy's matrix square root
    A, B = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    Sp, Sq = A @ A.T + 0.1 * np.eye(d), B @ B.T + 0.1 * np.eye(d)
    rp = scipy.linalg.sqrtm(Sp).real
    cross = scipy.linalg.sqrtm(rp @ Sq @ rp).real
    ref = np.sqrt(np.sum((mp - mq) ** 2) + np.trace(Sp + Sq - 2 * cross))
    assert float(
        jaxsa.w2_gaussian(jnp.asarray(mp), jnp.asarray(Sp), jnp.asarray(mq), jnp.asarray(Sq))
    ) == pytest.approx(ref, rel=1e-10)
    # commuting (diagonal) covariances: sum_i (sqrt(a_i) - sqrt(b_i))^2
    a, b = np.array([0.5, 2.0, 1.0]), np.array([1.5, 0.3, 1.0])
    got_d = float(
        jaxsa.w2_gaussian(
            jnp.asarray(mp), jnp.diag(jnp.asarray(a)), jnp.asarray(mq), jnp.diag(jnp.asarray(b))
        )
    )
    assert got_d == pytest.approx(
        np.sqrt(np.sum((mp - mq) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)), rel=1e-12
    )


@pytest.mark.parametrize(
    "mp,sp,mq,sq",
    [(1.0, 1.0, 0.0, 1.0), (0.0, 0.8, 0.0, 1.0), (0.3, 0.9, 0.0, 1.0), (0.2, 1.3, -0.1, 1.0)],
)
def test_chi2_gaussian_1d_matches_quadrature(mp, sp, mq, sq):
    p, q = stats.norm(mp, sp), stats.norm(mq, sq)
    ref = integrate.quad(
        lambda x: (p.pdf(x) - q.pdf(x)) ** 2 / q.pdf(x),
        -30,
        30,
        limit=400,
        epsabs=1e-14,
        epsrel=1e-12,
    )[0]
    assert float(jaxsa.chi2_gaussian_1d(mp, sp, mq, sq)) == pytest.approx(ref, rel=1e-9)


def test_chi2_gaussian_1d_infinite_when_tails_too_heavy():
    assert np.isposinf(float(jaxsa.chi2_gaussian_1d(0.0, 1.5, 0.0, 1.0)))  # s_P^2 >= 2 s_Q^2
    assert float(jaxsa.chi2_gaussian_1d(1.0, 1.0, 0.0, 1.0)) == pytest.approx(np.e - 1, rel=1e-14)


def test_w1_point_cloud_1d_matches_exact(samples):
    x, y = samples[0][:300], samples[1][:300]
    exact = stats.wasserstein_distance(x, y)
    val, converged = jaxsa.w1_point_cloud(jnp.asarray(x), jnp.asarray(y))
    assert bool(converged)
    # equal-size uniform clouds in 1D: the exact sorted formula
    assert float(val) == pytest.approx(exact, rel=1e-12)
    xa = jnp.asarray(x)
    r = jaxsa.w1_point_cloud(xa, jnp.asarray(y), jnp.full(300, 1 / 300), jnp.full(300, 1 / 300))
    assert float(r.lower) <= exact * (1 + 1e-9) <= float(r.upper) * (1 + 1e-9)
    assert float(r.value) == pytest.approx(exact, rel=0.01)


def test_w1_point_cloud_2d_matches_pot():
    rng = np.random.default_rng(7)
    n, m = 250, 200
    x = rng.normal(size=(n, 2))
    y = rng.normal(size=(m, 2)) * np.array([0.5, 1.5]) + np.array([1.0, -0.5])
    a = rng.uniform(0.5, 1.5, n)
    a /= a.sum()
    b = np.full(m, 1 / m)
    emd = ot.emd2(a, b, ot.dist(x, y, metric="euclidean"))
    val, converged = jaxsa.w1_point_cloud(
        jnp.asarray(x), jnp.asarray(y), jnp.asarray(a), jnp.asarray(b)
    )
    assert bool(converged)
    assert float(val) == pytest.approx(emd, rel=0.01)


@pytest.mark.parametrize("d", [2, 64])
def test_w1_point_cloud_certified_within_1pct_of_pot(d):
    """~1,000 points in 2D and 64D: the bracket contains POT's exact emd2 and the midpoint is
    within the requested 1%."""
    rng = np.random.default_rng(d)
    n = 1000
    x = rng.normal(size=(n, d))
    y = rng.normal(size=(n, d)) * 1.2 + 0.5
    emd = ot.emd2(np.full(n, 1 / n), np.full(n, 1 / n), ot.dist(x, y, metric="euclidean"),
                  numItermax=10_000_000)
    r = jaxsa.w1_point_cloud(jnp.asarray(x), jnp.asarray(y), rtol=0.01)
    assert bool(r.converged)
    assert float(r.lower) <= emd * (1 + 1e-9) and emd <= float(r.upper) * (1 + 1e-9)
    assert float(r.value) == pytest.approx(emd, rel=0.01)
    assert float(r.upper - r.lower) <= 0.02 * float(r.lower) * (1 + 1e-12)


def test_w1_point_cloud_validates():
    with pytest.raises(ValueError, match="finite"):
        jaxsa.w1_point_cloud(jnp.array([[0.0, jnp.nan]]), jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="decay"):
        jaxsa.w1_point_cloud(jnp.zeros((3, 2)), jnp.zeros((4, 2)), decay=1.5)
    with pytest.raises(ValueError, match="one d"):
        jaxsa.w1_point_cloud(jnp.zeros((3, 2)), jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="`a` must have shape"):
        jaxsa.w1_point_cloud(jnp.zeros((3, 2)), jnp.zeros((4, 2)), a=jnp.ones(4) / 4)
    with pytest.raises(ValueError, match="sum to one"):
        jaxsa.w1_point_cloud(jnp.zeros((3, 2)), jnp.zeros((4, 2)), a=jnp.ones(3))


def test_metrics_vmap():
    mp = jnp.array([0.0, 0.5, 1.0])
    got = jax.vmap(lambda m: jaxsa.w1_gaussian_1d(m, 1.2, 0.0, 1.0))(mp)
    for i, m in enumerate(np.asarray(mp)):
        assert float(got[i]) == pytest.approx(
            float(jaxsa.w1_gaussian_1d(m, 1.2, 0.0, 1.0)), rel=1e-14
        )


@pytest.mark.parametrize("dtype", [None, jnp.float32])
def test_w1_point_cloud_bracket_is_certified_at_any_iteration_precision(dtype):
    """float32 Sinkhorn iterations (the default at the default ε floor) and float64 ones give
    brackets that both hold POT's exact value: the bounds are evaluated in the inputs' dtype."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(400, 2)), rng.normal(size=(400, 2)) * 0.8 - 0.3
    emd = ot.emd2(np.full(400, 1 / 400), np.full(400, 1 / 400), ot.dist(x, y, metric="euclidean"),
                  numItermax=10_000_000)
    r = jaxsa.w1_point_cloud(jnp.asarray(x), jnp.asarray(y), rtol=0.01, iteration_dtype=dtype)
    assert r.value.dtype == jnp.float64
    assert float(r.lower) <= emd * (1 + 1e-12) and emd <= float(r.upper) * (1 + 1e-12)
    assert bool(r.converged) and float(r.value) == pytest.approx(emd, rel=0.01)


def test_w1_point_cloud_checks_act_under_jit():
    """The input checks act inside jit too (their returned values are used): a NaN point or
    weights not summing to one fail at run time instead of giving a number."""
    from jaxsa.metrics import w1_point_cloud

    x = jnp.array([[0.0], [jnp.nan], [1.0]])
    y = jnp.array([[0.5], [1.5], [2.0]])
    with pytest.raises(Exception, match="finite"):
        jax.block_until_ready(jax.jit(lambda a, b: w1_point_cloud(a, b).value)(x, y))
    bad = jnp.array([0.5, 0.4, 0.3])
    with pytest.raises(Exception, match="sum to one"):
        jax.block_until_ready(jax.jit(lambda w: w1_point_cloud(y, y + 1.0, w, w).value)(bad))


def _clouds(kind, n, rng):
    if kind == "gauss2d":
        return rng.normal(size=(n, 2)), rng.normal(size=(n, 2)) * 0.8 + 0.4
    if kind == "close2d":  # the same points shifted by 0.05: W1 = 0.05, small against the spread
        x = rng.normal(size=(n, 2)) * np.array([1.0, 0.3])
        return x, x + np.array([0.05, 0.0])
    if kind == "gauss64":
        return rng.normal(size=(n, 64)), rng.normal(size=(n, 64)) + 0.3
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["gauss2d", "close2d", "gauss64"])
@pytest.mark.parametrize("weights", ["uniform", "general"])
def test_w1_sparse_bracket_holds_pot_emd2(kind, weights):
    """The blockwise multiscale sparse solver (method="sparse", and its coarse-to-fine path with
    fewer coarse points than points) gives brackets that hold POT's exact emd2 on random
    configurations, including two close clouds and 64D, with uniform and general weights."""
    from jaxsa.solvers._w1 import w1_multiscale

    rng = np.random.default_rng(abs(hash((kind, weights))) % 2**32)
    n, m = 400, 300
    x, y = _clouds(kind, n, rng)
    y = y[:m]
    if weights == "uniform":
        a, b = np.full(n, 1 / n), np.full(m, 1 / m)
    else:
        a, b = rng.uniform(0.2, 1.8, n), rng.uniform(0.2, 1.8, m)
        a[::17] = 0.0
        a, b = a / a.sum(), b / b.sum()
    emd = ot.emd2(a, b, ot.dist(x, y, metric="euclidean"), numItermax=10_000_000)
    X, Y, A, B = (jnp.asarray(v) for v in (x, y, a, b))
    r = jaxsa.w1_point_cloud(X, Y, A, B, rtol=0.01, method="sparse")
    assert float(r.lower) <= emd * (1 + 1e-12) and emd <= float(r.upper) * (1 + 1e-12)
    if weights == "general":  # the coarse-to-fine path (100 coarse points)
        lo, up, *_ = w1_multiscale(X, Y, A, B, rtol=0.01, relative_epsilon=0.05, decay=0.5,
                                   min_relative_epsilon=1e-4, n_coarse=100, max_rounds=2)
        assert float(lo) <= emd * (1 + 1e-12) and emd <= float(up) * (1 + 1e-12)
    if kind != "close2d":  # the close 2D clouds converge only slowly (see jaxsa.solvers._w1)
        assert bool(r.converged) and float(r.value) == pytest.approx(emd, rel=0.01)


def test_w1_sparse_and_dense_brackets_agree():
    """64D, 1,000 points: the sparse (blockwise) and the dense solvers both reach 1 %, both
    brackets hold emd2, so they overlap; "auto" takes the sparse path only from n m >= 4e6."""
    rng = np.random.default_rng(5)
    n = 1000
    x, y = rng.normal(size=(n, 64)), rng.normal(size=(n, 64)) * 1.1 + 0.2
    emd = ot.emd2(np.full(n, 1 / n), np.full(n, 1 / n), ot.dist(x, y, metric="euclidean"),
                  numItermax=10_000_000)
    rs = jaxsa.w1_point_cloud(jnp.asarray(x), jnp.asarray(y), rtol=0.01, method="sparse")
    rd = jaxsa.w1_point_cloud(jnp.asarray(x), jnp.asarray(y), rtol=0.01, method="dense")
    for r in (rs, rd):
        assert bool(r.converged)
        assert float(r.lower) <= emd * (1 + 1e-12) and emd <= float(r.upper) * (1 + 1e-12)
    assert max(float(rs.lower), float(rd.lower)) <= min(float(rs.upper), float(rd.upper))
    assert float(rs.value) == pytest.approx(float(rd.value), rel=0.02)
    with pytest.raises(ValueError, match="method"):
        jaxsa.w1_point_cloud(jnp.zeros((3, 2)), jnp.zeros((4, 2)), method="exact")
