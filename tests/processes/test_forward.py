"""Forward process (SPEC §3, Eqs. 17, 25, 96–97) and the exact 1D OT process (SPEC §5)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tests.helpers.reference import MixRef, gaussian_marginal, hand_schedule, posterior_mean
from scipy import integrate, special, stats

import jaxsa

KINDS = ("cosine", "cond-ot", "vp", "ve")


def make_schedule(kind, tau=1.0):
    return {
        "cosine": lambda: jaxsa.Cosine(tau),
        "cond-ot": lambda: jaxsa.CondOT(tau),
        "vp": lambda: jaxsa.VPLinear(0.1, 20.0, tau),
        "ve": lambda: jaxsa.VEGeometric(0.01, 10.0, tau),
    }[kind]()


# One jitted evaluator per kind of path (compiled once per schedule type and shape; eager
# dispatch of jaxsa's methods, and one compile per method, would dominate the run time).
@jax.jit
def ev(path, t, x):
    v, div = path.velocity_and_divergence(t, x)
    return dict(
        vel=v,
        div=div,
        score=path.score(t, x),
        post=path.posterior_mean(t, x),
        dens=path.density(t, x),
        cdf=path.marginal(t).cdf(x),
        grad_logp=jax.vmap(jax.grad(lambda y: path.log_density(t, y)))(x),
    )


def _vel(path, t, x):
    return ev(path, t, x)["vel"]


ASYM = dict(weights=np.array([0.3, 0.7]), means=np.array([-1.0, 0.8]), scales=np.array([0.3, 0.5]))


def asym_data():
    return jaxsa.GaussianMixture(ASYM["weights"], ASYM["means"], ASYM["scales"])


# --------------------------------------------------------------------------- Gaussian data
@pytest.mark.parametrize("kind", KINDS)
def test_gaussian_data_marginal_and_affine_velocity(kind):
    mu, s = 0.3, 0.5
    path = jaxsa.DiffusionPath(make_schedule(kind), jaxsa.gaussian(mu, s))
    x = jnp.linspace(-3.0, 3.0, 13)
    for t in (0.0, 0.1, 0.37, 0.5, 0.83, 1.0):
        M, S, dM, dS = gaussian_marginal(kind, t, mu, s)
        marg = path.marginal(t)
        assert float(marg.means[0]) == pytest.approx(M, rel=1e-12, abs=1e-15)
        assert float(marg.scales[0]) == pytest.approx(S, rel=1e-12)
        # the velocity of a Gaussian path is the affine field M' + (S'/S)(x - M)
        e = ev(path, t, x)
        np.testing.assert_allclose(
            e["vel"], dM + dS / S * (np.asarray(x) - M), rtol=1e-10, atol=1e-10
        )
        np.testing.assert_allclose(e["div"], dS / S, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(e["score"], -(np.asarray(x) - M) / S**2, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            e["cdf"], stats.norm.cdf(np.asarray(x), M, S), rtol=1e-12, atol=1e-15
        )
        np.testing.assert_allclose(e["dens"], stats.norm.pdf(np.asarray(x), M, S), rtol=1e-12)


# --------------------------------------------------------------------------- mixture data
@pytest.mark.parametrize("kind", KINDS)
def test_continuity_equation(kind, paper):
    """d F_t(x)/dt = -nu_t(x) P_t(x): the CDF form of Eq. 1, by a central difference in t."""
    data = paper[0]
    path = jaxsa.DiffusionPath(make_schedule(kind), data)
    x = jnp.linspace(-3.0, 3.0, 13)
    h = 1e-5
    for t in (0.05, 0.3, 0.5, 0.7, 0.95):
        dF = (np.asarray(ev(path, t + h, x)["cdf"]) - np.asarray(ev(path, t - h, x)["cdf"])) / (
            2 * h
        )
        e = ev(path, t, x)
        flux = np.asarray(e["vel"]) * np.asarray(e["dens"])
        np.testing.assert_allclose(dF, -flux, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", KINDS)
def test_velocity_equals_spec_formula_at_interior_times(kind, paper):
    """nu = (sigma'/sigma) x - m (sigma'/sigma - m'/m) E[y|x] (Eq. 96), and
    grad ln P_t = (m E[y|x] - x) / sigma^2 (Eq. 97), with E[y|x] by numpy."""
    data = paper[0]
    w, mu, s = (np.asarray(a) for a in (data.weights, data.means, data.scales))
    path = jaxsa.DiffusionPath(make_schedule(kind), data)
    x = np.linspace(-3, 3, 13)
    hh = 1e-5
    for t in (0.1, 0.4, 0.6, 0.9):
        h = hand_schedule(kind, t)
        ey = posterior_mean(w, mu, s, h["m"], h["sigma_sq"], x)
        ds_over_s = h["sigma_dsigma"] / h["sigma_sq"]
        nu = ds_over_s * x - h["m"] * (ds_over_s - h["dm"] / h["m"]) * ey
        e = ev(path, t, jnp.asarray(x))
        np.testing.assert_allclose(e["post"], ey, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(e["vel"], nu, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(
            e["score"], (h["m"] * ey - x) / h["sigma_sq"], rtol=1e-9, atol=1e-10
        )
        np.testing.assert_allclose(e["score"], e["grad_logp"], rtol=1e-10, atol=1e-11)
        fd = (
            np.asarray(_vel(path, t, jnp.asarray(x + hh)))
            - np.asarray(_vel(path, t, jnp.asarray(x - hh)))
        ) / (2 * hh)
        np.testing.assert_allclose(e["div"], fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_marginal_is_mixture_of_scaled_components(kind):
    path = jaxsa.DiffusionPath(make_schedule(kind), asym_data())
    x = np.linspace(-4, 4, 13)
    for t in (0.0, 0.25, 0.75, 1.0):
        h = hand_schedule(kind, t)
        ref = MixRef(
            ASYM["weights"],
            h["m"] * ASYM["means"],
            np.sqrt(h["sigma_sq"] + h["m"] ** 2 * ASYM["scales"] ** 2),
        )
        e = ev(path, t, jnp.asarray(x))
        np.testing.assert_allclose(e["cdf"], ref.cdf(x), rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(e["dens"], ref.pdf(x), rtol=1e-11)


@pytest.mark.parametrize("kind", KINDS)
def test_velocity_and_score_finite_at_endpoints(kind, paper):
    for data in (paper[0], asym_data()):
        path = jaxsa.DiffusionPath(make_schedule(kind), data)
        x = jnp.linspace(-6, 6, 13)
        for t in (0.0, 1.0):
            e = ev(path, t, x)
            for k in ("vel", "div", "score", "post", "dens"):
                assert np.all(np.isfinite(np.asarray(e[k]))), k
        # the endpoint values are the limits from inside
        for t0, t1 in ((0.0, 1e-7), (1.0, 1.0 - 1e-7)):
            np.testing.assert_allclose(_vel(path, t0, x), _vel(path, t1, x), rtol=1e-4, atol=1e-4)


def test_endpoint_velocities_closed_form():
    """Limits of Eq. 96 at the endpoints, for asymmetric data q:
    cond-OT: nu_0 = -x, nu_tau = x - E_q[y];  cosine: nu_0 = 0, nu_tau = -(pi/2) E_q[y];
    VP: nu_0 = -(beta_min/2)(x + grad ln q);  VE: nu_0 = -sigma_min^2 ln(r) grad ln q."""
    data = asym_data()
    mean_q = float(np.sum(ASYM["weights"] * ASYM["means"]))
    x = jnp.linspace(-6, 6, 13)
    xn = np.asarray(x)
    score_q = np.asarray(data.score(x))
    v = lambda kind, t: np.asarray(_vel(jaxsa.DiffusionPath(make_schedule(kind), data), t, x))  # noqa: E731
    np.testing.assert_allclose(v("cond-ot", 0.0), -xn, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(v("cond-ot", 1.0), xn - mean_q, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(v("cosine", 0.0), 0.0, atol=1e-14)
    np.testing.assert_allclose(v("cosine", 1.0), -0.5 * np.pi * mean_q, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(v("vp", 0.0), -0.05 * (xn + score_q), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        v("ve", 0.0), -(0.01**2) * np.log(1000.0) * score_q, rtol=1e-12, atol=1e-16
    )


def test_2d_isotropic_velocity_matches_spec_formula():
    w, mu, s = np.array([0.4, 0.6]), np.array([[1.0, -0.5], [-0.7, 0.9]]), np.array([0.3, 0.6])
    path = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), jaxsa.GaussianMixture(w, mu, s))
    x = np.stack(np.meshgrid(np.linspace(-2, 2, 5), np.linspace(-1.5, 1.5, 4)), -1).reshape(-1, 2)
    t = 0.4
    h = hand_schedule("cond-ot", t)
    var = h["sigma_sq"] + h["m"] ** 2 * s**2
    logr = np.log(w) - 0.5 * np.sum((x[:, None, :] - h["m"] * mu) ** 2, -1) / var - np.log(var)
    r = np.exp(logr - special.logsumexp(logr, -1, keepdims=True))
    ey = np.sum(
        r[..., None]
        * (s[:, None] ** 2 * h["m"] * x[:, None, :] + h["sigma_sq"] * mu)
        / var[:, None],
        1,
    )
    ds_over_s = h["sigma_dsigma"] / h["sigma_sq"]
    nu = ds_over_s * x - h["m"] * (ds_over_s - h["dm"] / h["m"]) * ey
    np.testing.assert_allclose(path.velocity(t, jnp.asarray(x)), nu, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        path.score(t, jnp.asarray(x)), (h["m"] * ey - x) / h["sigma_sq"], rtol=1e-10, atol=1e-12
    )


# --------------------------------------------------------------------------- OT path
# Every OT evaluation uses arrays of one shape (N_OT,): each new shape recompiles the
# 120-step bisection of OTPath.origin, which costs seconds.
N_OT = 801
# trapezoid rule on a uniform grid of [-7, 7]: spectrally accurate for the smooth, fast-decaying
# P_t (Gauss–Legendre with as many nodes is not: its nodes crowd the ends of the interval)
GL_X = np.linspace(-7.0, 7.0, N_OT)
GL_W = np.full(N_OT, GL_X[1] - GL_X[0])
GL_W[[0, -1]] *= 0.5


def _pad(a):
    a = np.asarray(a, float)
    return jnp.asarray(np.concatenate([a, np.zeros(N_OT - a.size)])), a.size


@jax.jit
def _ot_ev(path, t, x):
    return dict(
        vel=path.velocity(t, x),
        dens=path.density(t, x),
        pos=path.positions(t, x),
        cdf=path.data.cdf(path.origin(t, x)),
        tmap=path.transport_map(x),
        imap_tmap=path.inverse_map(path.transport_map(x)),
    )


def ot_ev(path, t, x):
    """Field, density and CDF of the OT path at points x; positions at normal scores x."""
    xp, n = _pad(x)
    return {k: np.asarray(v)[:n] for k, v in _ot_ev(path, t, xp).items()}


@pytest.fixture(scope="module")
def ot_path(paper):
    return paper[2]["ot"]


@pytest.fixture(scope="module")
def ot_w2_sq(paper):
    """W_2(q, N(0,1))^2 = int (Q_q(Phi(z)) - z)^2 phi(z) dz with an independent quantile."""
    d = paper[0]
    ref = MixRef(d.weights, d.means, d.scales)
    z = np.linspace(-9, 9, 3601)
    f = (ref.nsq(z) - z) ** 2 * stats.norm.pdf(z)
    return float(integrate.simpson(f, x=z))


def test_ot_positions_transport_map_and_velocity(ot_path, paper):
    d = paper[0]
    ref = MixRef(d.weights, d.means, d.scales)
    z = np.linspace(-8, 8, 161)
    pos = {t: ot_ev(ot_path, t, z)["pos"] for t in (0.0, 0.25, 0.6, 0.9, 1.0)}
    for t, p in pos.items():
        assert np.all(np.diff(p) > 0), t
    np.testing.assert_allclose(pos[0.0], ref.nsq(z), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pos[1.0], z, rtol=1e-14, atol=1e-14)
    # nu_t(x_t(z)) = (Q_tau(z) - Q_0(z)) / tau: straight lines at constant speed
    core = np.abs(z) <= 6
    for t in (0.0, 0.25, 0.6, 0.9):
        v = ot_ev(ot_path, t, pos[t])["vel"]
        np.testing.assert_allclose(v[core], (pos[1.0] - pos[0.0])[core], rtol=1e-9, atol=1e-10)
    # the monotone map T = F_{P_tau}^{-1} o F_q, and its inverse
    e = ot_ev(ot_path, 0.5, z / 3)
    np.testing.assert_allclose(e["tmap"], ref.normal_score(z / 3), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(e["imap_tmap"], z / 3, rtol=1e-12, atol=1e-12)


def test_ot_density(ot_path, paper):
    d = paper[0]
    xs = np.linspace(-3, 3, 13)
    z = np.linspace(-4, 4, 17)
    h = 1e-5
    for t in (0.0, 0.25, 0.75, 1.0):
        assert np.sum(GL_W * ot_ev(ot_path, t, GL_X)["dens"]) == pytest.approx(1.0, abs=1e-10)
        # change of variables along the quantile coordinate: P_t(x_t(z)) dx_t/dz = phi(z)
        dxdz = (ot_ev(ot_path, t, z + h)["pos"] - ot_ev(ot_path, t, z - h)["pos"]) / (2 * h)
        pt = ot_ev(ot_path, t, ot_ev(ot_path, t, z)["pos"])["dens"]
        np.testing.assert_allclose(pt * dxdz, stats.norm.pdf(z), rtol=1e-7)
    ref = MixRef(d.weights, d.means, d.scales)
    np.testing.assert_allclose(ot_ev(ot_path, 0.0, xs)["dens"], ref.pdf(xs), rtol=1e-11)
    np.testing.assert_allclose(ot_ev(ot_path, 1.0, xs)["dens"], stats.norm.pdf(xs), rtol=1e-11)


def test_ot_constant_speed(ot_path, ot_w2_sq):
    """v_2(t)^2 = int nu_t^2 P_t dx = W_2(q, P_tau)^2 / tau^2 at every t (Eqs. 69–70)."""
    for t in (0.1, 0.5, 0.9):
        e = ot_ev(ot_path, t, GL_X)
        assert np.sum(GL_W * e["vel"] ** 2 * e["dens"]) == pytest.approx(ot_w2_sq, rel=1e-9)


def test_ot_continuity_equation(ot_path):
    """dF_t(x)/dt = -nu_t(x) P_t(x), with F_t(x) = F_q(x_0(t, x)) (x_0 the origin of x)."""
    x = np.linspace(-3, 3, 13)
    h = 1e-5
    for t in (0.2, 0.5, 0.8):
        dF = (ot_ev(ot_path, t + h, x)["cdf"] - ot_ev(ot_path, t - h, x)["cdf"]) / (2 * h)
        e = ot_ev(ot_path, t, x)
        np.testing.assert_allclose(dF, -e["vel"] * e["dens"], rtol=1e-6, atol=1e-8)


def test_ot_path_rejects_2d_data():
    with pytest.raises(ValueError, match="1D"):
        jaxsa.OTPath(jaxsa.GaussianMixture([1.0], [[0.0, 0.0]], [1.0]), jaxsa.paper_prior())


def test_ot_velocity_and_density_are_differentiable(ot_path):
    """The field is found by bisection, which has no tangent: autodiff must still give the
    implicit-function derivatives (checked against central differences in x and in t)."""
    x = np.linspace(-3, 3, 13)
    h = 1e-5

    @jax.jit
    def tangents(p, y):
        one = jnp.ones_like(y)
        _, dv_dx = jax.jvp(lambda u: p.velocity(0.5, u), (y,), (one,))
        _, dv_dt = jax.jvp(lambda s: p.velocity(s, y), (jnp.asarray(0.5),), (jnp.asarray(1.0),))
        _, dlogp_dx = jax.jvp(lambda u: p.log_density(0.5, u), (y,), (one,))
        return dv_dx, dv_dt, dlogp_dx

    dv_dx, dv_dt, dlogp_dx = tangents(ot_path, jnp.asarray(x))
    fd_x = (ot_ev(ot_path, 0.5, x + h)["vel"] - ot_ev(ot_path, 0.5, x - h)["vel"]) / (2 * h)
    fd_t = (ot_ev(ot_path, 0.5 + h, x)["vel"] - ot_ev(ot_path, 0.5 - h, x)["vel"]) / (2 * h)
    fd_logp = (
        np.log(ot_ev(ot_path, 0.5, x + h)["dens"]) - np.log(ot_ev(ot_path, 0.5, x - h)["dens"])
    ) / (2 * h)
    np.testing.assert_allclose(dv_dx, fd_x, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dv_dt, fd_t, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dlogp_dx, fd_logp, rtol=1e-6, atol=1e-8)
