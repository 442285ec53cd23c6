"""d-dimensional forward process (jaxsa.processes.empirical) against closed forms for Gaussian data,
chunked against unchunked reductions, the exact particle flow, Monte-Carlo estimates against
closed forms, and bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsa
from jaxsa.processes.empirical import EmpiricalPath, transport_particles
from jaxsa.thermo.monte_carlo import chi2_divergence, chi2_isotropic_gaussian, dissipation_mc, gaussian_path_c2

SCHEDULES = {"cond-ot": lambda: jaxsa.CondOT(1.0), "cosine": lambda: jaxsa.Cosine(1.0)}


def _gauss(d, s):
    mu = jnp.linspace(-1.0, 1.5, d)
    return mu, jaxsa.GaussianMixture(jnp.ones(1), mu[None], jnp.array([s]))


def _closed(sched, mu, s, t, x):
    """Gaussian data N(mu, s^2 I): P_t = N(m mu, s_t^2 I), affine velocity."""
    v = sched.values(t)
    st2 = v.sigma_sq + v.m**2 * s**2
    dst2 = 2 * (v.sigma_dsigma + v.m * v.dm * s**2)  # d(s_t^2)/dt
    d = mu.shape[0]
    mu = mu.reshape((1,) * (x.ndim - 1) + mu.shape)  # explicit broadcasting over the batch of x
    r = x - v.m * mu
    logp = -0.5 * jnp.sum(r**2, -1) / st2 - 0.5 * d * jnp.log(2 * jnp.pi * st2)
    score = -r / st2
    post = mu + (s**2 * v.m / st2) * r
    vel = v.dm * mu + 0.5 * dst2 / st2 * r
    return logp, score, post, vel


@pytest.mark.parametrize("d", [2, 16])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_gaussian_data_closed_forms(d, name):
    sched = SCHEDULES[name]()
    mu, gm = _gauss(d, 0.6)
    path = EmpiricalPath(sched, gm)
    x = 1.3 * jax.random.normal(jax.random.PRNGKey(d), (7, d)) + 0.2
    for t in (0.0, 0.01, 0.37, 0.99, 1.0):  # both ends included: finite for s > 0
        logp, score, post, vel = _closed(sched, mu, 0.6, t, x)
        np.testing.assert_allclose(path.log_density(t, x), logp, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(path.score(t, x), score, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(path.posterior_mean(t, x), post, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(path.velocity(t, x), vel, rtol=1e-11, atol=1e-12)
    # agrees with the existing closed-form DiffusionPath (d-D branch)
    ref = jaxsa.DiffusionPath(sched, gm)
    np.testing.assert_allclose(path.velocity(0.5, x), ref.velocity(0.5, x), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("d", [2, 16])
def test_one_point_data_is_gaussian_and_cond_ot_is_optimal(d):
    """Empirical data with one point y: P_t = N(m y, sigma^2 I). Under cond-OT the forward
    process is the W2 geodesic, so c2 = W2(q, P_tau)^2/tau = (|y|^2 + d)/tau (Eq. 91, equality)."""
    y = jnp.linspace(0.5, -0.5, d)
    sched = jaxsa.CondOT(1.0)
    path = EmpiricalPath(sched, y[None])
    x = jax.random.normal(jax.random.PRNGKey(1), (5, d))
    for t in (0.05, 0.5, 1.0):
        logp, _score, _post, vel = _closed(sched, y, 0.0, t, x)
        np.testing.assert_allclose(path.log_density(t, x), logp, rtol=1e-12)
        np.testing.assert_allclose(path.velocity(t, x), vel, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(path.posterior_mean(t, x), jnp.broadcast_to(y, x.shape), atol=1e-12)
    w2 = jaxsa.w2_isotropic_gaussian(y, 0.0, jnp.zeros(d), 1.0)
    exact = float(w2**2)  # tau = 1
    np.testing.assert_allclose(exact, float(jnp.sum(y**2)) + d, rtol=1e-12)
    est = dissipation_mc(path, jax.random.PRNGKey(2), 500, 4)
    # the velocity along x_t = (1-t) y + t eps is eps - y: E||nu||^2 = |y|^2 + d for every t
    assert abs(float(est.value) - exact) <= 4 * float(est.stderr) + 1e-9, (est.value, exact)


@pytest.mark.parametrize(("d", "name"), [(2, "cond-ot"), (16, "cosine")])
def test_dissipation_mc_matches_c2_and_bounds_w2(d, name):
    """MC of int E||nu||^2 against the Gaussian closed form (1D time quadrature of
    mdot^2|mu|^2 + d sdot_t^2), and c2 >= W2(q, P_tau)^2 / tau (Eq. 91)."""
    sched = SCHEDULES[name]()
    mu, gm = _gauss(d, 0.6)
    path = EmpiricalPath(sched, gm)
    est = dissipation_mc(path, jax.random.PRNGKey(d), 1000, 8)
    exact = float(gaussian_path_c2(sched, mu, 0.6, n_nodes=96))
    assert float(est.stderr) < 0.01 * exact
    assert abs(float(est.value) - exact) <= 4 * float(est.stderr), (est.value, exact, est.stderr)
    w2 = jaxsa.w2_isotropic_gaussian(mu, 0.6, jnp.zeros(d), 1.0)
    assert exact >= float(w2**2) - 1e-12
    assert est.rate.shape == (8,) and est.n == 1000 and est.n_time == 8


def test_chunked_equals_unchunked():
    key = jax.random.PRNGKey(3)
    pts = jax.random.normal(key, (37, 5))
    w = jax.random.uniform(jax.random.PRNGKey(4), (37,)) + 0.1
    x = 0.8 * jax.random.normal(jax.random.PRNGKey(5), (3, 4, 5))
    full = EmpiricalPath(jaxsa.Cosine(1.0), pts, weights=w)
    gm = jaxsa.GaussianMixture(w / w.sum(), pts, jnp.linspace(0.05, 0.4, 37))
    full_gm = EmpiricalPath(jaxsa.CondOT(1.0), gm)
    for c in (5, 36):  # many chunks with padding; two chunks, the last of one point
        ch = EmpiricalPath(jaxsa.Cosine(1.0), pts, weights=w, chunk_size=c)
        ch_gm = EmpiricalPath(jaxsa.CondOT(1.0), gm, chunk_size=c)
        for t in (0.02, 1.0):
            for a, b in ((full, ch), (full_gm, ch_gm)):
                np.testing.assert_allclose(a.log_density(t, x), b.log_density(t, x), rtol=1e-12)
                np.testing.assert_allclose(a.velocity(t, x), b.velocity(t, x), rtol=1e-10, atol=1e-12)
                np.testing.assert_allclose(a.score(t, x), b.score(t, x), rtol=1e-10, atol=1e-12)


def test_empirical_against_dense_mixture_and_duplicates():
    """Empirical data = the t > 0 marginal of a mixture of point masses: compare with a dense
    (unstreamed) softmax, and check that a repeated point equals a doubled weight."""
    pts = jax.random.normal(jax.random.PRNGKey(6), (9, 3))
    path = EmpiricalPath(jaxsa.CondOT(1.0), pts)
    x = jax.random.normal(jax.random.PRNGKey(7), (4, 3))
    t = 0.3
    v = path.schedule.values(t)
    logits = -0.5 * jnp.sum((x[:, None] - v.m * pts[None]) ** 2, -1) / v.sigma_sq
    r = jax.nn.softmax(logits, -1)
    np.testing.assert_allclose(path.posterior_mean(t, x), r @ pts, rtol=1e-12)
    dup = EmpiricalPath(jaxsa.CondOT(1.0), jnp.concatenate([pts, pts[:1]]))
    w = jnp.ones(9).at[0].set(2.0)
    wtd = EmpiricalPath(jaxsa.CondOT(1.0), pts, weights=w)
    np.testing.assert_allclose(dup.velocity(t, x), wtd.velocity(t, x), rtol=1e-12)


@pytest.mark.parametrize("kind", ["empirical", "mixture"])
def test_continuity_equation(kind):
    """Non-Gaussian data: the velocity and the density satisfy Eq. 1 pointwise,
    d/dt ln P_t + div nu_t + nu_t . grad ln P_t = 0 (derivatives by autodiff)."""
    pts = jax.random.normal(jax.random.PRNGKey(14), (7, 3))
    data = pts if kind == "empirical" else jaxsa.GaussianMixture(
        jnp.full(7, 1 / 7), pts, jnp.linspace(0.1, 0.5, 7))
    path = EmpiricalPath(jaxsa.Cosine(1.0), data, chunk_size=3)
    xs = 0.7 * jax.random.normal(jax.random.PRNGKey(15), (4, 3))

    @jax.jit
    def residual(t, x):
        dlogp = jax.jvp(lambda s: path.log_density(s, x), (t,), (jnp.ones_like(t),))[1]
        div = jnp.trace(jax.jacfwd(lambda y: path.velocity(t, y))(x))
        work = path.velocity(t, x) @ path.score(t, x)
        return dlogp + div + work, jnp.abs(dlogp) + jnp.abs(div) + jnp.abs(work)

    for t in (0.1, 0.5, 0.9):
        res, scale = jax.vmap(residual, in_axes=(None, 0))(jnp.asarray(t), xs)
        assert bool(jnp.all(jnp.abs(res) <= 1e-10 * scale)), (t, res, scale)


def test_transport_gaussian_exact_flow():
    """Gaussian data: the probability-flow map is affine, x_t = m_t mu + (s_t/s_tau)(x_tau - m_tau mu)."""
    d = 2
    mu, gm = _gauss(d, 0.5)
    sched = jaxsa.Cosine(1.0)
    path = EmpiricalPath(sched, gm)
    x_tau = jax.random.normal(jax.random.PRNGKey(8), (64, d))
    ts = jnp.array([1.0, 2 / 3, 1 / 3, 0.0])
    sol = transport_particles(path, x_tau, ts)
    assert bool(sol.success)
    chunked = transport_particles(path, x_tau, ts, chunk_size=24)  # 3 chunks, the last padded
    assert bool(chunked.success) and chunked.xs.shape == sol.xs.shape
    with pytest.raises(ValueError, match="chunk_size"):
        transport_particles(path, x_tau, ts, chunk_size=0)

    def st(t):
        v = sched.values(t)
        return v.m, jnp.sqrt(v.sigma_sq + v.m**2 * 0.25)

    m_tau, s_tau = st(1.0)
    for i, t in enumerate(ts):
        m, s = st(t)
        exact = m * mu[None] + (s / s_tau) * (x_tau - m_tau * mu[None])
        np.testing.assert_allclose(sol.xs[i], exact, atol=1e-5)
        np.testing.assert_allclose(chunked.xs[i], exact, atol=1e-5)


def test_flow_map_is_schedule_invariant():
    """The probability-flow map from P_tau = N(0, I) to q depends on the schedule only through
    sigma_t/m_t (DDIM coordinates, SPEC §3 Eqs. 33-35), which spans [0, inf) for both cond-OT and
    cosine: the two flows must carry the same x_tau to the same x_0. A non-Gaussian check of the
    whole ODE path (mixture data, s > 0, so the flow is regular down to t = 0)."""
    gm = jaxsa.GaussianMixture(jnp.array([0.2, 0.5, 0.3]),
                               jnp.array([[1.0, 0.0], [-0.5, 0.8], [0.0, -1.0]]),
                               jnp.array([0.2, 0.3, 0.15]))
    x_tau = jax.random.normal(jax.random.PRNGKey(13), (32, 2))
    ts = jnp.array([1.0, 0.0])
    a = transport_particles(EmpiricalPath(jaxsa.CondOT(1.0), gm), x_tau, ts)
    b = transport_particles(EmpiricalPath(jaxsa.Cosine(1.0), gm), x_tau, ts)
    assert bool(a.success) and bool(b.success)
    np.testing.assert_allclose(a.xs[-1], b.xs[-1], atol=2e-5)
    assert float(jnp.max(jnp.abs(a.xs[-1] - x_tau))) > 0.5  # it did move


def test_transport_empirical_ends_on_data():
    """Memorisation: with the exact empirical velocity every particle ends on a data point."""
    pts = jax.random.normal(jax.random.PRNGKey(9), (20, 4))
    path = EmpiricalPath(jaxsa.CondOT(1.0), pts, chunk_size=8)
    x_tau = path.sample(jax.random.PRNGKey(10), 1.0, 50)
    sol = transport_particles(path, x_tau, jnp.array([1.0, 0.5, 0.0]))
    assert bool(sol.success) and float(sol.t_end) == pytest.approx(1e-3)
    d2 = jnp.min(jnp.sum((sol.xs[-1][:, None] - pts[None]) ** 2, -1), 1)
    assert float(jnp.max(d2)) < 1e-12
    assert bool(jnp.all(jnp.isfinite(sol.xs)))


@pytest.mark.parametrize("d", [2, 16])
def test_chi2_closed_form_and_monte_carlo(d):
    mp, mq = jnp.full(d, 0.3 / np.sqrt(d)), jnp.zeros(d)
    sp, sq = 0.97, 1.0
    closed = chi2_isotropic_gaussian(mp, sp, mq, sq)
    # isotropic Gaussians factorise over coordinates: 1 + chi2 = prod_i (1 + chi2_i)
    prod = np.prod([1 + float(jaxsa.chi2_gaussian_1d(mp[i], sp, mq[i], sq)) for i in range(d)]) - 1
    np.testing.assert_allclose(float(closed), prod, rtol=1e-10)
    g = lambda m, s: jaxsa.GaussianMixture(jnp.ones(1), m[None], jnp.array([s]))
    est = chi2_divergence(g(mp, sp), g(mq, sq))
    assert float(est.value) == float(closed) and float(est.stderr) == 0.0
    # Monte Carlo through a two-component mixture that is the same Gaussian twice
    p2 = jaxsa.GaussianMixture(jnp.array([0.5, 0.5]), jnp.stack([mq, mq]), jnp.array([sq, sq]))
    mc = chi2_divergence(g(mp, sp), p2, key=jax.random.PRNGKey(11), n=40_000)
    assert abs(float(mc.value) - float(closed)) <= 4 * float(mc.stderr), (mc.value, closed)
    assert np.isinf(float(chi2_isotropic_gaussian(mp, 1.5, mq, 1.0)))


def test_end_marginal_is_exact_gaussian():
    pts = jax.random.normal(jax.random.PRNGKey(12), (10, 3))
    pt = EmpiricalPath(jaxsa.CondOT(1.0), pts).end_marginal()
    assert isinstance(pt, jaxsa.GaussianMixture)
    np.testing.assert_allclose(pt.means, 0.0)
    np.testing.assert_allclose(pt.scales, 1.0)


def test_bad_input():
    pts = jnp.ones((5, 3))
    with pytest.raises(ValueError, match="NaN"):
        EmpiricalPath(jaxsa.CondOT(1.0), pts.at[2, 1].set(jnp.nan))
    with pytest.raises(ValueError, match=r"shape \(N, d\)"):
        EmpiricalPath(jaxsa.CondOT(1.0), jnp.ones(5))
    with pytest.raises(ValueError, match="weights"):
        EmpiricalPath(jaxsa.CondOT(1.0), pts, weights=jnp.ones(4))
    with pytest.raises(ValueError, match="weights"):
        EmpiricalPath(jaxsa.CondOT(1.0), pts, weights=-jnp.ones(5))
    with pytest.raises(ValueError, match="chunk_size"):
        EmpiricalPath(jaxsa.CondOT(1.0), pts, chunk_size=0)
    path = EmpiricalPath(jaxsa.CondOT(1.0), pts)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        path.velocity(0.5, jnp.ones((4, 2)))
    with pytest.raises(ValueError, match="t > 0"):
        path.velocity(0.0, jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="n.*>= 2"):
        dissipation_mc(path, jax.random.PRNGKey(0), 1, 4)
    with pytest.raises(ValueError, match="n_time"):
        dissipation_mc(path, jax.random.PRNGKey(0), 10, 0)
    with pytest.raises(ValueError, match="x_tau"):
        transport_particles(path, jnp.ones((4, 2)), jnp.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="ts"):
        transport_particles(path, jnp.ones((4, 3)), jnp.array([1.0, 1e-5, 0.0]))
    g = jaxsa.GaussianMixture(jnp.ones(1), jnp.zeros((1, 3)), jnp.ones(1))
    with pytest.raises(ValueError, match="n.*>= 2"):
        chi2_divergence(path.marginal(1.0), path.marginal(0.5), key=jax.random.PRNGKey(0), n=1)
    with pytest.raises(ValueError, match="dimensions"):
        chi2_divergence(g, jaxsa.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), jnp.ones(1)))
    with pytest.raises(ValueError, match="weights"):
        EmpiricalPath(jaxsa.CondOT(1.0), g, weights=jnp.ones(1))
