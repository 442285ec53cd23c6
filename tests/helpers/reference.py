"""Independent reference implementations (numpy/scipy only, no jaxsa) used by the tests.

Everything here is written from the formulas of SPEC §2–§5 with scipy's special functions and
root finders, so the tests compare jaxsa against an implementation that shares no code with it.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special, stats  # noqa: F401


class MixRef:
    """1D Gaussian mixture sum_k w_k N(mu_k, s_k^2), evaluated with scipy."""

    def __init__(self, weights, means, scales):
        self.w = np.asarray(weights, float)
        self.m = np.asarray(means, float)
        self.s = np.asarray(scales, float)

    # scipy.special directly (scipy.stats' per-call overhead is large in the bisection below)
    def _a(self, x):
        return (np.asarray(x, float)[..., None] - self.m) / self.s

    def pdf(self, x):
        return np.exp(self.logpdf(x))

    def logpdf(self, x):
        a = self._a(x)
        return special.logsumexp(
            np.log(self.w) - 0.5 * a**2 - np.log(self.s) - 0.5 * np.log(2 * np.pi), axis=-1
        )

    def cdf(self, x):
        return np.sum(self.w * special.ndtr(self._a(x)), -1)

    def logcdf(self, x):
        return special.logsumexp(np.log(self.w) + special.log_ndtr(self._a(x)), axis=-1)

    def logsf(self, x):
        return special.logsumexp(np.log(self.w) + special.log_ndtr(-self._a(x)), axis=-1)

    def normal_score(self, x):
        """Phi^{-1}(F(x)) from the tail that keeps the precision."""
        lc, ls = self.logcdf(x), self.logsf(x)
        return np.where(lc <= ls, special.ndtri(np.exp(lc)), -special.ndtri(np.exp(ls)))

    def mean(self):
        return float(np.sum(self.w * self.m))

    def var(self):
        mu = self.mean()
        return float(np.sum(self.w * (self.s**2 + (self.m - mu) ** 2)))

    def nsq(self, z):
        """Q(Phi(z)) for an array (or scalar) z: vectorised bisection to the last ulp on the
        log-CDF (z <= 0) or the log-survival function (z > 0), the tail that keeps precision."""
        z = np.asarray(z, float)
        zf = z.ravel()
        lo = np.full(zf.shape, float(np.min(self.m - 60 * self.s)))
        hi = np.full(zf.shape, float(np.max(self.m + 60 * self.s)))
        left = zf <= 0
        target = special.log_ndtr(np.where(left, zf, -zf))
        for _ in range(80):  # bracket width < 1e3: 2^-80 of it is below one ulp
            mid = 0.5 * (lo + hi)
            below = np.where(left, self.logcdf(mid) < target, self.logsf(mid) > target)
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        out = 0.5 * (lo + hi)
        return out.reshape(z.shape) if z.ndim else float(out[0])

    def quantile(self, u):
        return self.nsq(special.ndtri(u))


def nsq_normal(mean, std):
    return lambda z: mean + std * z


def nsq_uniform(low, high):
    def f(z):
        z = np.asarray(z, float)
        return np.where(
            z <= 0, low + (high - low) * special.ndtr(z), high - (high - low) * special.ndtr(-z)
        )

    return f


def chi2_quad(p_pdf, q_pdf, lo, hi, points=None):
    """Pearson chi^2 = int (p - q)^2 / q by adaptive quadrature on [lo, hi]."""
    from scipy import integrate

    val, _ = integrate.quad(
        lambda x: (p_pdf(x) - q_pdf(x)) ** 2 / q_pdf(x),
        lo,
        hi,
        points=points,
        limit=400,
        epsabs=1e-13,
        epsrel=1e-12,
    )
    return val


def w1_from_nsq(nsq_a, nsq_b, z_max=9.0, nodes=20, panel=0.5):
    """W_1 = int |Q_a(Phi(z)) - Q_b(Phi(z))| phi(z) dz (SPEC §2, 1D quantile form).

    ``nsq_a``, ``nsq_b`` map arrays of normal scores z to quantiles. The kinks of |.| are
    located (sign changes on a grid, refined by brentq) and each smooth piece between them is
    integrated by composite Gauss–Legendre (panels of width <= ``panel`` with ``nodes`` nodes
    each); the mass beyond ``z_max`` (2 Phi(-9) ~ 2e-19) is neglected.
    """
    diff = lambda z: (
        np.asarray(nsq_a(np.asarray(z, float))) - np.asarray(nsq_b(np.asarray(z, float)))
    )  # noqa: E731
    z = np.linspace(-z_max, z_max, 1441)
    d = diff(z)
    cuts = [-z_max]
    cuts += list(z[1:-1][d[1:-1] == 0])  # exact zeros on the grid (symmetric cases: z = 0)
    for i in np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]:
        cuts.append(
            optimize.brentq(lambda zz: float(diff(np.array([zz]))[0]), z[i], z[i + 1], xtol=1e-15)
        )
    cuts = sorted(cuts) + [z_max]
    g, gw = np.polynomial.legendre.leggauss(nodes)
    zs, ws = [], []
    for a, b in zip(cuts[:-1], cuts[1:]):
        edges = np.linspace(a, b, int(np.ceil((b - a) / panel)) + 1)
        for lo, hi in zip(edges[:-1], edges[1:]):
            zs.append(0.5 * (hi - lo) * g + 0.5 * (lo + hi))
            ws.append(0.5 * (hi - lo) * gw)
    zz, ww = np.concatenate(zs), np.concatenate(ws)
    return float(np.sum(ww * np.abs(diff(zz)) * stats.norm.pdf(zz)))


# --------------------------------------------------------------------------- schedules by hand
@np.errstate(divide="ignore", invalid="ignore")
def hand_schedule(kind, t, tau=1.0, **p):
    """m, m', sigma^2, sigma sigma' (= d(sigma^2/2)/dt) and T of SPEC §3 schedules, by hand."""
    t = np.asarray(t, float)
    if kind == "cosine":
        c = np.pi / (2 * tau)
        m, dm = np.cos(c * t), -c * np.sin(c * t)
        s2, sds = np.sin(c * t) ** 2, c * np.sin(c * t) * np.cos(c * t)
    elif kind == "cond-ot":
        m, dm = 1 - t / tau, -np.ones_like(t) / tau
        s2, sds = (t / tau) ** 2, t / tau**2
    elif kind == "vp":
        bmin, bmax = p.get("beta_min", 0.1), p.get("beta_max", 20.0)
        beta = bmin + (bmax - bmin) * t / tau
        m = np.exp(-0.5 * (bmin * t + 0.5 * (bmax - bmin) * t**2 / tau))
        dm = -0.5 * beta * m
        s2, sds = 1 - m**2, 0.5 * beta * m**2
    elif kind == "ve":
        smin, smax = p.get("sigma_min", 0.01), p.get("sigma_max", 10.0)
        r = smax / smin
        m, dm = np.ones_like(t), np.zeros_like(t)
        s2 = smin**2 * (r ** (2 * t / tau) - 1)
        sds = smin**2 * np.log(r) / tau * r ** (2 * t / tau)
    else:
        raise KeyError(kind)
    return dict(m=m, dm=dm, sigma_sq=s2, sigma_dsigma=sds, T=sds - s2 * dm / m)


def gaussian_marginal(kind, t, mu, s, tau=1.0, **p):
    """P_t = N(M, S^2) for Gaussian data N(mu, s^2), with M', S' by hand:
    M = m mu, S = sqrt(sigma^2 + m^2 s^2), S' = (sigma sigma' + m m' s^2) / S."""
    h = hand_schedule(kind, t, tau, **p)
    M, dM = h["m"] * mu, h["dm"] * mu
    S = np.sqrt(h["sigma_sq"] + h["m"] ** 2 * s**2)
    dS = (h["sigma_dsigma"] + h["m"] * h["dm"] * s**2) / S
    return M, S, dM, dS


def posterior_mean(weights, means, scales, m, sigma_sq, x):
    """E[y | x_t = x] for 1D mixture data (SPEC §3), numpy."""
    x = np.asarray(x, float)[..., None]
    var = sigma_sq + m**2 * scales**2
    logr = np.log(weights) + stats.norm.logpdf(x, m * means, np.sqrt(var))
    r = np.exp(logr - special.logsumexp(logr, axis=-1, keepdims=True))
    post = (scales**2 * m * x + sigma_sq * means) / var
    return np.sum(r * post, -1)


def ou_rates(A, T, cov0, t):
    """Entropy rates of the Ornstein-Uhlenbeck process dx = A x dt + sqrt(2T) dW from
    N(0, cov0), by a route independent of jaxsa.thermo.grid.ou_gaussian_rates:
    Sigma(t) = e^{At} cov0 e^{A^T t} + 2T int_0^t e^{As} e^{A^T s} ds (scipy quad_vec),
    nu = B x with B = A + T Sigma^{-1}; T S'_tot = tr(B Sigma B^T), T S'_bath = tr(A Sigma B^T),
    T S'_sys = (T/2) tr(Sigma^{-1} Sigma'); v_2^2 = tr(S Sigma S) with S Sigma + Sigma S = Sigma'
    (scipy's continuous Lyapunov solver). Returns a dict."""
    from scipy import integrate as _int
    from scipy import linalg as _la

    A = np.asarray(A, float)
    d = A.shape[0]
    e = _la.expm(A * t)
    noise = _int.quad_vec(lambda s: (_la.expm(A * s) @ _la.expm(A * s).T), 0.0, t,
                          epsabs=1e-14, epsrel=1e-13)[0]
    cov = e @ np.asarray(cov0, float) @ e.T + 2 * T * noise
    dcov = A @ cov + cov @ A.T + 2 * T * np.eye(d)
    B = A + T * np.linalg.inv(cov)
    total = np.trace(B @ cov @ B.T)
    S = _la.solve_continuous_lyapunov(cov, dcov)
    v2 = np.trace(S @ cov @ S)
    return dict(T_total=total, T_bath=np.trace(A @ cov @ B.T),
                T_system=0.5 * T * np.trace(np.linalg.solve(cov, dcov)), v2_sq=v2,
                housekeeping=total - v2, cov=cov)
