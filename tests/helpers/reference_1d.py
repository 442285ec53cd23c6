"""Independent 1D reference for the speed-accuracy quantities (plain numpy/scipy, no jaxsa).

This module shares no code with ``jaxsa``: it is written from the formulas of SPEC §3–§5 with
scipy's special functions, ``scipy.integrate.quad`` and a bracketed Newton inversion of
mixture CDFs in normal-score space.  Everything is float64.

Setting (1D)
------------
* data ``q = sum_k w_k N(mu_k, s_k^2)``;
* schedule ``(m_t, sigma_t)``; forward marginal ``P_t = sum_k w_k N(m_t mu_k, sigma_t^2 + m_t^2 s_k^2)``;
* velocity ``nu_t(x) = m'_t E[y | x_t = x] - (1/2) (sigma_t^2)' d/dx ln P_t(x)``;
* prior ``P_tau`` (the marginal at ``t = tau``, or an explicit mixture for the "ot" schedule);
* perturbed start ``P~_tau``: a Gaussian mixture or a uniform on ``[low, high]``;
* in 1D the probability-flow map from ``tau`` to ``t`` is the monotone rearrangement
  ``X_t = F_t^{-1} o F_tau``, so ``F~_t(x) = F~_tau(F_tau^{-1}(F_t(x)))`` and the generated
  density is ``p = P~_0``.

Numerics
--------
CDFs are handled in log space (``log_ndtr``) and through the *normal score*
``z(x) = Phi^{-1}(F(x))`` (``ndtri_exp`` of the smaller of ``log F`` and ``log(1 - F)``), so
tails down to ``1e-300`` are resolved.  Quantiles are found by Newton's method on the normal
score, safeguarded by the exact bracket ``min_k(mu_k + s_k z) <= F^{-1}(Phi(z)) <=
max_k(mu_k + s_k z)`` and bisection.  Integrals are piecewise ``quad`` between breakpoints
(component means +- a few scales, mapped perturbation features, uniform edges, numerically
located crossing points of the two CDFs), plus ``quad`` on the two infinite tails.

Public API
----------
``Mixture(weights, means, scales)``, ``Uniform(low, high)``, ``Schedule(name, tau, **params)``
(``.coeffs(t) -> (m, dm/dt, sigma^2, d sigma^2/dt)``, ``.marginal(data, t)``, ``.prior(data)``),
``velocity(t, schedule, data, x)``, ``w1_start(prior, pert)``, ``w1_generated(data, prior, pert)``,
``chi2(prior, pert)`` (``chi2_closed``, ``chi2_quad``, ``chi2_diverges``),
``eta(data, prior, pert, tau)``, ``w1_t / dw1_dt(t, schedule, data, pert, prior=None)``,
``v2_sq(t, schedule, data, prior=None)``, ``c2(schedule, data, prior=None)``,
``c1(schedule, data, pert, prior=None)``, ``chi2_t(t, schedule, data, pert)``,
``w2_sq(data, prior)``, cross-checks ``w1_generated_quantile`` / ``w1_start_quantile``,
``random_config(rng)``, ``config_objects(config)``, ``reference(config, with_c=False)``.

The "ot" schedule is the exact 1D optimal-transport path between q and an explicit prior
(``Q_t = (1 - t/tau) Q_q + (t/tau) Q_tau``); W1(P_t, P~_t), its derivative and
``v2^2 = W2(q, P_tau)^2 / tau^2`` are computed in quantile space (:class:`OTReference`).
For the diffusion schedules the prior is always the schedule's own marginal at tau unless
a config's "prior" overrides it (only meaningful for "ot").

chi^2 divergence rule (derived in :func:`chi2_diverges`)
---------------------------------------------------------
Let ``A*`` be the largest variance of a perturbation component (positive weight) and ``C*``
the largest variance of a prior component.  ``int P~^2 / P_tau`` is finite if ``A* < 2 C*``
and infinite if ``A* > 2 C*``.  At equality ``A* = 2 C*`` the log-integrand is *linear* in the
tails: with ``a+ / a-`` the largest / smallest mean of the perturbation components of variance
``A*`` and ``c+ / c-`` those of the prior components of variance ``C*``, the integral is finite
iff ``a+ < c+`` and ``a- > c-`` (strictly).  For a single-Gaussian prior (cosine, cond-OT)
``c+ = c-``, so equality always diverges.  A uniform start always gives a finite value.

Config format (see :func:`random_config`)
----------------------------------------
::

    {"data": {"weights": [...], "means": [...], "scales": [...]},
     "schedule": {"name": "cosine" | "cond-ot", "tau": T}
               | {"name": "vp-linear", "beta_min": b0, "beta_max": b1, "tau": T}
               | {"name": "ve-geometric", "sigma_min": s0, "sigma_max": s1, "tau": T}
               | {"name": "ot", "tau": T},
     "prior": {"weights", "means", "scales"}        # optional; required for "ot"
     "perturbation": {"type": "gaussian", "mean": a, "scale": b}
                   | {"type": "mixture", "weights", "means", "scales"}
                   | {"type": "uniform", "low": lo, "high": hi}}
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import integrate, optimize, special

LOG_HALF = math.log(0.5)
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

# quad settings used throughout
QUAD_LIMIT = 500
EPSABS = 1e-15
EPSREL = 1e-12

# normal-score half-width of the "bulk" integrated between breakpoints (the rest is tails)
Z_BULK = 9.0


# ----------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------


def _lse(v):
    """log-sum-exp over the last axis, robust to all -inf."""
    v = np.asarray(v, float)
    mx = np.max(v, axis=-1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(v - mx), axis=-1)) + mx[..., 0]


def _logphi(z):
    return -0.5 * np.square(z) - LOG_SQRT_2PI


def _nscore_from_tails(log_f, log_s):
    """Phi^{-1}(F) from log F and log(1 - F), choosing the accurate tail."""
    log_f = np.asarray(log_f, float)
    log_s = np.asarray(log_s, float)
    lower = log_f <= log_s
    zl = special.ndtri_exp(np.minimum(log_f, LOG_HALF))
    zu = -special.ndtri_exp(np.minimum(log_s, LOG_HALF))
    return np.where(lower, zl, zu)


def _quad(f, a, b, epsabs=EPSABS, epsrel=EPSREL, quiet=False):
    """quad on [a, b]; ``quiet`` silences quadpack's roundoff messages (ier 2, 4), which
    only say that the (very tight) requested tolerance is below the integrand's noise."""
    if not b > a:
        return 0.0
    if quiet:
        out = integrate.quad(f, a, b, limit=QUAD_LIMIT, epsabs=epsabs, epsrel=epsrel, full_output=1)
        if len(out) > 3 and not any(k in out[3] for k in ("roundoff", "Roundoff")):
            warnings.warn(out[3], integrate.IntegrationWarning, stacklevel=2)
        return out[0]
    val, _ = integrate.quad(f, a, b, limit=QUAD_LIMIT, epsabs=epsabs, epsrel=epsrel)
    return val


def _piecewise(f, pts, epsabs=EPSABS, epsrel=EPSREL, quiet=False):
    """Sum of quad over consecutive breakpoints (sorted, de-duplicated)."""
    pts = np.unique(np.asarray(pts, float))
    if pts.size > 2:  # merge breakpoints closer than a few ulps
        keep = np.concatenate([[True], np.diff(pts) > 8 * np.spacing(np.abs(pts[1:]))])
        keep[-1] = True
        pts = pts[keep]
    return math.fsum(_quad(f, a, b, epsabs, epsrel, quiet) for a, b in zip(pts[:-1], pts[1:]))


def _scalar(fv):
    """Wrap a vectorised function of x as a scalar function for quad."""

    def f(x):
        return float(fv(np.array([x]))[0])

    return f


def _crossings(fv, grid, max_count=400):
    """Sign changes of the vectorised fv on a sorted grid, refined with brentq."""
    grid = np.unique(np.asarray(grid, float))
    vals = fv(grid)
    s = np.sign(vals)
    idx = np.nonzero(s[:-1] * s[1:] < 0)[0]
    if idx.size > max_count:  # pure noise (e.g. identical distributions): keep none
        return np.array([])
    f = _scalar(fv)
    out = []
    for i in idx:
        a, b = grid[i], grid[i + 1]
        try:
            out.append(optimize.brentq(f, a, b, xtol=1e-15 * max(1.0, abs(a)), rtol=1e-15))
        except ValueError:
            out.append(0.5 * (a + b))
    return np.asarray(out)


# ----------------------------------------------------------------------------------------
# distributions
# ----------------------------------------------------------------------------------------


class Mixture:
    """1D Gaussian mixture sum_k w_k N(mu_k, s_k^2) (zero-weight components dropped)."""

    def __init__(self, weights, means, scales):
        w = np.atleast_1d(np.asarray(weights, float))
        m = np.atleast_1d(np.asarray(means, float))
        s = np.atleast_1d(np.asarray(scales, float))
        w, m, s = np.broadcast_arrays(w, m, s)
        keep = w > 0
        if not np.all(s[keep] > 0):
            raise ValueError("scales must be positive")
        w, m, s = w[keep], m[keep], s[keep]
        self.w = w / w.sum()
        self.m = m.copy()
        self.s = s.copy()
        self.logw = np.log(self.w)
        self.logs = np.log(self.s)
        self.k = self.w.size

    @classmethod
    def from_dict(cls, d):
        return cls(d["weights"], d["means"], d["scales"])

    @classmethod
    def gaussian(cls, mean, scale):
        return cls([1.0], [mean], [scale])

    def to_dict(self):
        return {"weights": self.w.tolist(), "means": self.m.tolist(), "scales": self.s.tolist()}

    def __repr__(self):
        return f"Mixture(w={self.w.tolist()}, m={self.m.tolist()}, s={self.s.tolist()})"

    # moments
    @property
    def mean(self):
        return float(np.dot(self.w, self.m))

    @property
    def var(self):
        return float(np.dot(self.w, self.s**2 + self.m**2) - self.mean**2)

    @property
    def max_var(self):
        return float(np.max(self.s) ** 2)

    # log densities / tails
    def _a(self, x):
        return (np.asarray(x, float)[..., None] - self.m) / self.s

    def _comp_logpdf(self, x):
        a = self._a(x)
        return self.logw - 0.5 * a * a - self.logs - LOG_SQRT_2PI

    def logpdf(self, x):
        return _lse(self._comp_logpdf(x))

    def pdf(self, x):
        return np.exp(self.logpdf(x))

    def logcdf(self, x):
        return _lse(self.logw + special.log_ndtr(self._a(x)))

    def logsf(self, x):
        return _lse(self.logw + special.log_ndtr(-self._a(x)))

    def cdf(self, x):
        return np.exp(self.logcdf(x))

    def tails(self, x):
        a = self._a(x)
        return _lse(self.logw + special.log_ndtr(a)), _lse(self.logw + special.log_ndtr(-a))

    def nscore(self, x):
        """z(x) = Phi^{-1}(F(x)), accurate in both tails."""
        x = np.asarray(x, float)
        if self.k == 1:
            return (x - self.m[0]) / self.s[0]
        return _nscore_from_tails(*self.tails(x))

    def from_nscore(self, z):
        """x with Phi^{-1}(F(x)) = z, i.e. the quantile F^{-1}(Phi(z)) (vectorised)."""
        z = np.asarray(z, float)
        if self.k == 1:
            return self.m[0] + self.s[0] * z
        shape = z.shape
        z = z.reshape(-1)
        cand = self.m + self.s * z[:, None]
        lo = np.min(cand, axis=1)
        hi = np.max(cand, axis=1)
        x = np.clip(self.mean + math.sqrt(self.var) * z, lo, hi)
        tab = self._table()
        if tab is not None:
            # the quantile is monotone in z: a table of solved points gives an exact bracket
            tz, tx = tab
            inside = (z > tz[0]) & (z < tz[-1])
            i = np.clip(np.searchsorted(tz, z) - 1, 0, tz.size - 2)
            lo = np.where(inside, np.maximum(lo, tx[i]), lo)
            hi = np.where(inside, np.minimum(hi, tx[i + 1]), hi)
            x = np.where(inside, np.clip(np.interp(z, tz, tx), lo, hi), x)
        done = ~np.isfinite(z) | (hi <= lo)
        x = np.where(done, np.where(np.isfinite(z), lo, z), x)
        for _ in range(300):
            act = ~done
            if not act.any():
                break
            xa, za, la, ha = x[act], z[act], lo[act], hi[act]
            g = self.nscore(xa)
            r = g - za
            la = np.where(r < 0, xa, la)
            ha = np.where(r > 0, xa, ha)
            with np.errstate(over="ignore", invalid="ignore"):
                step = r * np.exp(_logphi(g) - self.logpdf(xa))
                xn = xa - step
            bad = ~((xn > la) & (xn < ha))
            xn = np.where(bad, 0.5 * (la + ha), xn)
            scale = np.maximum(1.0, np.abs(xa))
            conv = (
                (r == 0) | (~bad & (np.abs(xn - xa) <= 1e-13 * scale)) | (ha - la <= 5e-16 * scale)
            )
            xn = np.where(r == 0, xa, xn)
            x[act], lo[act], hi[act] = xn, la, ha
            done[act] = conv
        return x.reshape(shape)

    _tab = None
    _building = False

    def _table(self):
        """Lazily solved (z, F^{-1}(Phi(z))) on a z grid, used to bracket Newton's method."""
        if self._tab is None and not self._building:
            self._building = True
            tz = np.linspace(-12.0, 12.0, 961)
            self._tab = (tz, np.maximum.accumulate(self.from_nscore(tz)))
            self._building = False
        return self._tab

    def quantile(self, u):
        return self.from_nscore(special.ndtri(np.asarray(u, float)))

    # layout helpers
    def features(self, ks=(-3.0, -1.0, 0.0, 1.0, 3.0)):
        return np.concatenate([self.m + k * self.s for k in ks])

    def scan(self, half=7.0, n=141):
        u = np.linspace(-half, half, n)
        return (self.m[:, None] + self.s[:, None] * u).ravel()

    def gaps(self):
        """Density minima between neighbouring component means (where the quantile is steep)."""
        if self._gaps is None:
            ms = np.sort(self.m)
            out = []
            for a, b in zip(ms[:-1], ms[1:]):
                if b - a < 1e-12:
                    continue
                res = optimize.minimize_scalar(
                    lambda x: float(self.logpdf(np.array([x]))[0]),
                    bounds=(a, b),
                    method="bounded",
                    options={"xatol": 1e-12 * max(1.0, abs(a), abs(b))},
                )
                out.append(res.x)
            self._gaps = np.asarray(out)
        return self._gaps

    _gaps = None

    def jump_z(self):
        """Normal scores of the gaps: where the quantile function rises steeply."""
        g = self.gaps()
        return self.nscore(g) if g.size else g


class Uniform:
    """Uniform density on [low, high]."""

    def __init__(self, low, high):
        self.a = float(low)
        self.b = float(high)
        if not self.b > self.a:
            raise ValueError("need high > low")
        self.width = self.b - self.a

    def __repr__(self):
        return f"Uniform({self.a}, {self.b})"

    @property
    def mean(self):
        return 0.5 * (self.a + self.b)

    @property
    def var(self):
        return self.width**2 / 12.0

    def logpdf(self, x):
        x = np.asarray(x, float)
        return np.where((x >= self.a) & (x <= self.b), -math.log(self.width), -np.inf)

    def pdf(self, x):
        return np.exp(self.logpdf(x))

    def tails(self, x):
        x = np.asarray(x, float)
        with np.errstate(divide="ignore"):
            lf = np.log(np.clip((x - self.a) / self.width, 0.0, 1.0))
            ls = np.log(np.clip((self.b - x) / self.width, 0.0, 1.0))
        return lf, ls

    def logcdf(self, x):
        return self.tails(x)[0]

    def logsf(self, x):
        return self.tails(x)[1]

    def cdf(self, x):
        return np.clip((np.asarray(x, float) - self.a) / self.width, 0.0, 1.0)

    def nscore(self, x):
        return _nscore_from_tails(*self.tails(x))

    def from_nscore(self, z):
        z = np.asarray(z, float)
        return np.where(
            z <= 0, self.a + self.width * special.ndtr(z), self.b - self.width * special.ndtr(-z)
        )

    def quantile(self, u):
        return self.a + self.width * np.asarray(u, float)

    def features(self, ks=None):
        return np.array([self.a, self.b])

    def scan(self, half=None, n=201):
        return np.linspace(self.a, self.b, n)

    def jump_z(self):
        return np.array([])


def make_perturbation(d):
    kind = d["type"].lower()
    if kind == "gaussian":
        return Mixture.gaussian(d["mean"], d["scale"])
    if kind == "mixture":
        return Mixture.from_dict(d)
    if kind == "uniform":
        return Uniform(d["low"], d["high"])
    raise ValueError(f"unknown perturbation type {d['type']!r}")


# ----------------------------------------------------------------------------------------
# schedules
# ----------------------------------------------------------------------------------------

_ALIASES = {
    "cosine": "cosine",
    "cos": "cosine",
    "cond-ot": "cond-ot",
    "condot": "cond-ot",
    "cond_ot": "cond-ot",
    "vp-linear": "vp-linear",
    "vp_linear": "vp-linear",
    "vplinear": "vp-linear",
    "vp": "vp-linear",
    "ve-geometric": "ve-geometric",
    "ve_geometric": "ve-geometric",
    "vegeometric": "ve-geometric",
    "ve": "ve-geometric",
    "ot": "ot",
}


class Schedule:
    """(m_t, m'_t, sigma_t^2, (sigma_t^2)') of the conditional Gaussian paths, or the 1D OT path.

    ``name``: "cosine", "cond-ot", "vp-linear" (beta_min, beta_max), "ve-geometric"
    (sigma_min, sigma_max) or "ot" (exact 1D optimal transport between data and prior).
    """

    def __init__(self, name, tau=1.0, **params):
        key = name.lower()
        if key not in _ALIASES:
            raise ValueError(f"unknown schedule {name!r}")
        self.name = _ALIASES[key]
        self.tau = float(tau)
        self.params = {k: float(v) for k, v in params.items()}
        if self.name == "vp-linear":
            self.b0 = self.params["beta_min"]
            self.b1 = self.params["beta_max"]
        if self.name == "ve-geometric":
            self.smin = self.params["sigma_min"]
            self.lr = math.log(self.params["sigma_max"] / self.smin)

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        return cls(d.pop("name"), d.pop("tau", 1.0), **d)

    def to_dict(self):
        return {"name": self.name, **self.params, "tau": self.tau}

    def coeffs(self, t):
        """(m, dm/dt, sigma^2, d sigma^2/dt) at time t."""
        t = float(t)
        tau = self.tau
        if self.name == "cosine":
            a = math.pi / (2.0 * tau)
            if t >= tau:
                return 0.0, -a, 1.0, 0.0
            m, sn = math.cos(a * t), math.sin(a * t)
            return m, -a * sn, sn * sn, 2.0 * a * sn * m
        if self.name == "cond-ot":
            u = t / tau
            return 1.0 - u, -1.0 / tau, u * u, 2.0 * t / tau**2
        if self.name == "vp-linear":
            s = t / tau
            logm = -0.5 * tau * (self.b0 * s + 0.5 * (self.b1 - self.b0) * s * s)
            m = math.exp(logm)
            dm = -0.5 * (self.b0 + (self.b1 - self.b0) * s) * m
            return m, dm, -math.expm1(2.0 * logm), -2.0 * m * dm
        if self.name == "ve-geometric":
            e = 2.0 * self.lr * t / tau
            s2 = self.smin**2 * math.expm1(e)
            ds2 = self.smin**2 * (2.0 * self.lr / tau) * math.exp(e)
            return 1.0, 0.0, s2, ds2
        raise ValueError("the 'ot' schedule has no (m, sigma) coefficients")

    def marginal(self, data, t):
        """P_t for mixture data (diffusion schedules only)."""
        m, _, s2, _ = self.coeffs(t)
        return Mixture(data.w, m * data.m, np.sqrt(s2 + m * m * data.s**2))

    def prior(self, data):
        if self.name == "ot":
            raise ValueError("the 'ot' schedule needs an explicit prior")
        if self.name in ("cosine", "cond-ot"):
            return Mixture.gaussian(0.0, 1.0)
        return self.marginal(data, self.tau)


def velocity(t, schedule, data, x):
    """nu_t(x) = m' E[y|x_t=x] - (1/2)(sigma^2)' d/dx ln P_t(x) for mixture data (vectorised)."""
    m, dm, s2, ds2 = schedule.coeffs(t)
    x = np.asarray(x, float)
    v = s2 + m * m * data.s**2  # component variances of P_t
    xe = x[..., None]
    lp = data.logw - 0.5 * (xe - m * data.m) ** 2 / v - 0.5 * np.log(v) - LOG_SQRT_2PI
    r = np.exp(lp - _lse(lp)[..., None])  # responsibilities
    post = (data.s**2 * m * xe + s2 * data.m) / v  # E[y | x, k]
    score = -(xe - m * data.m) / v
    return np.sum(r * (dm * post - 0.5 * ds2 * score), axis=-1)


# ----------------------------------------------------------------------------------------
# W1 in x space: W1(P_t, P~_t) = int |F_t(x) - F~_tau(F_tau^{-1}(F_t(x)))| dx
# ----------------------------------------------------------------------------------------


class _Pushed:
    """P_t (mixture) with the pushed perturbation P~_t = (X_t)_# P~_tau, X_t = F_t^{-1} o F_tau."""

    def __init__(self, pt, prior, pert, identity=False):
        self.pt, self.prior, self.pert = pt, prior, pert
        self.identity = identity

    def _y(self, x, z):
        return x if self.identity else self.prior.from_nscore(z)

    def mapx(self, y):
        """X_t(y)."""
        y = np.asarray(y, float)
        return y if self.identity else self.pt.from_nscore(self.prior.nscore(y))

    def cdf_diff(self, x):
        """F_t(x) - F~_t(x), each CDF taken from its accurate tail."""
        x = np.asarray(x, float)
        lf, ls = self.pt.tails(x)
        z = _nscore_from_tails(lf, ls)
        plf, pls = self.pert.tails(self._y(x, z))
        return np.where(z <= 0, np.exp(lf) - np.exp(plf), np.exp(pls) - np.exp(ls))

    def dens_diff(self, x):
        """P_t(x) - P~_t(x), P~_t(x) = P~_tau(Y) P_t(x) / P_tau(Y), Y = F_tau^{-1}(F_t(x))."""
        x = np.asarray(x, float)
        lp = self.pt.logpdf(x)
        y = self._y(x, self.pt.nscore(x))
        with np.errstate(invalid="ignore"):
            lq = lp + self.pert.logpdf(y) - self.prior.logpdf(y)
        return np.exp(lp) - np.exp(lq)

    def flux_terms(self, x):
        """(F_t - F~_t, P_t - P~_t) at x with a single quantile inversion."""
        x = np.asarray(x, float)
        lf, ls = self.pt.tails(x)
        z = _nscore_from_tails(lf, ls)
        y = self._y(x, z)
        plf, pls = self.pert.tails(y)
        cd = np.where(z <= 0, np.exp(lf) - np.exp(plf), np.exp(pls) - np.exp(ls))
        lp = self.pt.logpdf(x)
        with np.errstate(invalid="ignore"):
            lq = lp + self.pert.logpdf(y) - self.prior.logpdf(y)
        return cd, np.exp(lp) - np.exp(lq)

    def layout(self):
        pt, pert = self.pt, self.pert
        lo = min(pt.from_nscore(-Z_BULK), float(self.mapx(pert.from_nscore(-Z_BULK))))
        hi = max(pt.from_nscore(Z_BULK), float(self.mapx(pert.from_nscore(Z_BULK))))
        feats = [pt.features((-5.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 5.0))]
        feats.append(self.mapx(pert.features()))
        grid = np.concatenate(
            [np.linspace(lo, hi, 2001), pt.scan(), self.mapx(pert.scan()), *feats]
        )
        grid = grid[(grid >= lo) & (grid <= hi)]
        cross = _crossings(self.cdf_diff, grid)
        pts = np.concatenate([[lo, hi], *feats, cross])
        pts = np.unique(pts[(pts >= lo) & (pts <= hi)])
        return pts, cross


def _tails(f, lo, hi, h0, core):
    """Integrals of f over (-inf, lo] and [hi, inf) on growing finite pieces.

    Pieces of width h0, 1.5 h0, ... are added until a piece and the integrand at its far end
    are negligible (1e-17) against the running total; robust for slowly decaying tails.
    """
    total = abs(core)
    out = []
    for side in (-1.0, 1.0):
        x0 = hi if side > 0 else lo
        h = h0
        acc = []
        for _ in range(300):
            x1 = x0 + side * h
            piece = _quad(f, min(x0, x1), max(x0, x1))
            acc.append(piece)
            total += abs(piece)
            if abs(piece) <= 1e-17 * total and abs(f(x1)) * h <= 1e-17 * total:
                break
            x0 = x1
            h *= 1.5
        else:
            raise RuntimeError("tail integral did not settle")
        out.append(math.fsum(acc))
    return out


def _integrate_line(fv, pts, h0=None):
    """int_R f = piecewise quad over pts plus the two tails (see :func:`_tails`)."""
    f = _scalar(fv)
    core = _piecewise(f, pts)
    if h0 is None:
        h0 = max((pts[-1] - pts[0]) / 8.0, 1e-3)
    left, right = _tails(f, pts[0], pts[-1], h0, core)
    return math.fsum([left, core, right])


def _w1_pushed(pushed):
    pts, _ = pushed.layout()
    return _integrate_line(lambda x: np.abs(pushed.cdf_diff(x)), pts)


def w1_start(prior, pert):
    """W1(P_tau, P~_tau) = int |F_tau - F~_tau| dx."""
    return _w1_pushed(_Pushed(prior, prior, pert, identity=True))


def w1_generated(data, prior, pert):
    """W1(q, p), p = P~_0: int |F_q(x) - F~_tau(F_tau^{-1}(F_q(x)))| dx."""
    return _w1_pushed(_Pushed(data, prior, pert))


def w1_mixtures(p, q):
    """W1 between two distributions of this module (Mixture / Uniform) = int |F_p - F_q|."""
    if isinstance(p, Uniform):
        p, q = q, p
    if isinstance(p, Uniform):
        raise ValueError("at least one argument must be a Mixture")
    return w1_start(p, q)


# ----------------------------------------------------------------------------------------
# quantile (normal-score) space:  int_0^1 |Q_a(u) - Q_b(u)| du = int |.| phi(z) dz
# ----------------------------------------------------------------------------------------

Z_Q = 13.0  # |z| beyond which phi(z) * |quantile difference| < 1e-35


def _z_integrate(fv, extra_z=(), scan=None, signed=None):
    """int_{-Z_Q}^{Z_Q} f(z) phi(z) dz, breakpoints at extra_z and sign changes of ``signed``.

    ``signed`` is the function whose zeros are kinks / jumps of fv (e.g. D for fv = |D|).
    """
    base = np.array(
        [-Z_Q, -8.0, -6.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, Z_Q]
    )
    extra = np.asarray([e for e in np.atleast_1d(extra_z) if np.isfinite(e) and abs(e) < Z_Q])
    grid = np.concatenate([np.linspace(-Z_Q, Z_Q, 4001), base, extra])
    if scan is not None:
        grid = np.concatenate([grid, scan])
    grid = grid[np.abs(grid) <= Z_Q]
    cross = _crossings(signed, grid) if signed is not None else np.array([])
    pts = np.concatenate([base, extra, cross])

    def g(z):
        return fv(z) * np.exp(_logphi(z))

    # quantile functions of narrow-mode mixtures rise steeply across gaps; quadpack may then
    # report roundoff at the 1e-12 level requested, which is harmless here
    return _piecewise(_scalar(g), pts, quiet=True), pts


class _QuantileParts:
    """Quantile functions in normal-score space for the OT interpolation formulas."""

    def __init__(self, data, prior, pert):
        self.data, self.prior, self.pert = data, prior, pert
        # z where the data quantile rises steeply across a gap, and where p's quantile does
        zj = data.jump_z()
        with np.errstate(divide="ignore", invalid="ignore"):
            zp = self.pert.nscore(prior.from_nscore(zj)) if zj.size else np.array([])
        self.jumps = np.concatenate([zj, zp, prior.jump_z(), pert.jump_z()])
        near = [j + np.linspace(-0.05, 0.05, 41) for j in self.jumps if np.isfinite(j)]
        self.scan = np.concatenate(near) if near else None

    def d0(self, z):
        """Q_q - Q_p at Phi(z)."""
        data, prior, pert = self.data, self.prior, self.pert
        return data.from_nscore(z) - data.from_nscore(prior.nscore(pert.from_nscore(z)))

    def dtau(self, z):
        """Q_tau - Q~_tau at Phi(z)."""
        return self.prior.from_nscore(z) - self.pert.from_nscore(z)

    def transport(self, z):
        """T(x0) - x0 at the u = Phi(z) quantile, T = F_tau^{-1} o F_q."""
        return self.prior.from_nscore(z) - self.data.from_nscore(z)


class OTReference:
    """W1(P_t, P~_t) and its time derivative on the exact 1D OT path (schedule "ot").

    With Q_t = (1-s) Q_q + s Q_tau (s = t/tau) and the same interpolation applied to the
    estimated process, W1(t) = int |(1-s) D_0 + s D_tau| du, D_0 = Q_q - Q_p and
    D_tau = Q_tau - Q~_tau.  The cumulative integrals H_0(z) = int^z D_0 phi and
    H_tau(z) = int^z D_tau phi are tabulated once; then for every t only the sign changes of
    (1-s) D_0 + s D_tau are needed:
    W1 = sum_i sign_i [(1-s) dH_0 + s dH_tau],  dW1/dt = (1/tau) sum_i sign_i (dH_tau - dH_0).
    """

    def __init__(self, data, prior, pert, tau):
        self.qp = qp = _QuantileParts(data, prior, pert)
        self.tau = float(tau)
        base = np.linspace(-Z_Q, Z_Q, 105)
        extra = np.asarray([e for e in qp.jumps if np.isfinite(e) and abs(e) < Z_Q])
        grid = [np.linspace(-Z_Q, Z_Q, 4001), base, extra]
        if qp.scan is not None:
            grid.append(qp.scan)
        grid = np.unique(np.concatenate(grid))
        self.grid = grid[np.abs(grid) <= Z_Q]
        self.d0g = qp.d0(self.grid)
        self.dtg = qp.dtau(self.grid)
        self.nodes = np.unique(np.concatenate([base, extra]))
        self._f0 = _scalar(lambda z: qp.d0(z) * np.exp(_logphi(z)))
        self._ft = _scalar(lambda z: qp.dtau(z) * np.exp(_logphi(z)))
        self.h0 = self._cumulative(self._f0)
        self.ht = self._cumulative(self._ft)

    def _cumulative(self, f):
        n = self.nodes
        pieces = [_quad(f, a, b, quiet=True) for a, b in zip(n[:-1], n[1:])]
        return np.concatenate([[0.0], np.cumsum(pieces)])

    def _h(self, z):
        i = int(np.clip(np.searchsorted(self.nodes, z, side="right") - 1, 0, self.nodes.size - 2))
        a = self.nodes[i]
        return (
            self.h0[i] + _quad(self._f0, a, z, quiet=True),
            self.ht[i] + _quad(self._ft, a, z, quiet=True),
        )

    def _intervals(self, s):
        comb_g = (1 - s) * self.d0g + s * self.dtg
        sg = np.sign(comb_g)
        # sign changes between consecutive *nonzero* grid values: a combination that vanishes
        # exactly on a grid node (an odd D, e.g. a centred variance or uniform start, is 0 at
        # z = 0) still changes sign there
        nz = np.nonzero(sg != 0)[0]
        ch = np.nonzero(sg[nz[:-1]] * sg[nz[1:]] < 0)[0]
        pairs = [(nz[k], nz[k + 1]) for k in ch]
        qp = self.qp

        def comb(z):
            zz = np.array([z])
            return float(((1 - s) * qp.d0(zz) + s * qp.dtau(zz))[0])

        cross = [
            optimize.brentq(comb, self.grid[i], self.grid[j], xtol=1e-15, rtol=1e-15)
            for i, j in pairs
        ]
        edges = np.concatenate([[-Z_Q], cross, [Z_Q]])
        signs = []  # sign on each interval, from grid values strictly inside it
        for a, b in zip(edges[:-1], edges[1:]):
            inside = (self.grid > a) & (self.grid < b) & (sg != 0)
            signs.append(sg[inside][0] if inside.any() else np.sign(comb(0.5 * (a + b))))
        return signs, [self._h(e) for e in edges]

    def w1(self, t):
        s = t / self.tau
        signs, hs = self._intervals(s)
        return math.fsum(
            sg * ((1 - s) * (h1[0] - h0[0]) + s * (h1[1] - h0[1]))
            for sg, h0, h1 in zip(signs, hs[:-1], hs[1:])
        )

    def dw1_dt(self, t):
        signs, hs = self._intervals(t / self.tau)
        tot = math.fsum(
            sg * ((h1[1] - h0[1]) - (h1[0] - h0[0])) for sg, h0, h1 in zip(signs, hs[:-1], hs[1:])
        )
        return tot / self.tau


_OT_CACHE = {}


def _ot_reference(schedule, data, prior, pert):
    """OTReference for these objects (one-entry cache keyed by identity)."""
    if prior is None:
        raise ValueError("the 'ot' schedule needs an explicit prior")
    key = (id(data), id(prior), id(pert), schedule.tau)
    if key not in _OT_CACHE:
        _OT_CACHE.clear()
        _OT_CACHE[key] = (OTReference(data, prior, pert, schedule.tau), (data, prior, pert))
    return _OT_CACHE[key][0]


def w1_generated_quantile(data, prior, pert):
    """W1(q, p) by the quantile route (independent of the x-space integral; cross-check)."""
    qp = _QuantileParts(data, prior, pert)
    return _z_integrate(lambda z: np.abs(qp.d0(z)), qp.jumps, qp.scan, signed=qp.d0)[0]


def w1_start_quantile(prior, pert):
    """W1(P_tau, P~_tau) by the quantile route (cross-check of :func:`w1_start`)."""
    qp = _QuantileParts(prior, prior, pert)
    return _z_integrate(lambda z: np.abs(qp.dtau(z)), qp.jumps, qp.scan, signed=qp.dtau)[0]


def w2_sq(data, prior):
    """W2(q, P_tau)^2 = int_0^1 (F_tau^{-1} - F_q^{-1})^2 du."""
    qp = _QuantileParts(data, prior, prior)
    return _z_integrate(lambda z: qp.transport(z) ** 2, qp.jumps, qp.scan)[0]


# ----------------------------------------------------------------------------------------
# chi^2 divergence D0 = int (P~_tau - P_tau)^2 / P_tau
# ----------------------------------------------------------------------------------------


def _close(a, b, rtol=1e-12):
    return abs(a - b) <= rtol * max(abs(a), abs(b))


def chi2_diverges(prior, pert):
    """True iff int P~^2 / P_tau = inf (exact rule, see the module docstring).

    Tails: P_tau ~ w N(c+, C*) at +inf (the widest prior component, largest mean among ties);
    P~^2 ~ w~^2 N(a+, A*)^2.  log(P~^2/P) = -x^2 (1/A* - 1/(2C*)) + x (2a+/A* - c+/C*) + O(1):
    finite iff A* < 2C*, or A* = 2C* and a+ < c+ (and symmetrically a- > c- at -inf).
    """
    if isinstance(pert, Uniform):
        return False
    a_star = pert.max_var
    c_star = prior.max_var
    if _close(a_star, 2.0 * c_star):
        a_w = pert.m[np.isclose(pert.s**2, a_star, rtol=1e-12, atol=0)]
        c_w = prior.m[np.isclose(prior.s**2, c_star, rtol=1e-12, atol=0)]
        return not (a_w.max() < c_w.max() and a_w.min() > c_w.min())
    return a_star > 2.0 * c_star


def _log_gauss_ratio_integral(a, aa, b, bb, c, cc):
    """log int N(x|a,A) N(x|b,B) / N(x|c,C) dx (requires C > AB/(A+B)).

    N(x|a,A) N(x|b,B) = N(a|b, A+B) N(x|m, V), V = AB/(A+B), m = (aB + bA)/(A+B), and
    int N(x|m,V)/N(x|c,C) dx = sqrt(2 pi) C / sqrt(C - V) * exp((m - c)^2 / (2 (C - V))).
    """
    s = aa + bb
    v = aa * bb / s
    m = (a * bb + b * aa) / s
    d = cc - v
    log_nab = -0.5 * (a - b) ** 2 / s - 0.5 * math.log(s) - LOG_SQRT_2PI
    return log_nab + LOG_SQRT_2PI + math.log(cc) - 0.5 * math.log(d) + 0.5 * (m - c) ** 2 / d


def chi2_closed(prior, pert):
    """Closed-form D0 for a single-Gaussian prior N(c, C)."""
    if prior.k != 1:
        raise ValueError("closed form needs a single-Gaussian prior")
    if chi2_diverges(prior, pert):
        return math.inf
    c, cc = float(prior.m[0]), float(prior.s[0] ** 2)
    if isinstance(pert, Uniform):
        u = 1.0 / pert.width
        r = math.sqrt(2.0 * cc)
        al, be = (pert.a - c) / r, (pert.b - c) / r
        # int_a^b u^2 / N(x|c,C) dx = u^2 pi C (erfi(beta) - erfi(alpha))
        return float(u * u * math.pi * cc * (special.erfi(be) - special.erfi(al)) - 1.0)
    terms = []
    for i in range(pert.k):
        for j in range(pert.k):
            terms.append(
                pert.logw[i]
                + pert.logw[j]
                + _log_gauss_ratio_integral(
                    pert.m[i], pert.s[i] ** 2, pert.m[j], pert.s[j] ** 2, c, cc
                )
            )
    return float(np.expm1(_lse(np.array(terms))))


def _chi2_integrand(prior, pert):
    def fv(x):
        lp = prior.logpdf(x)
        lq = pert.logpdf(x)
        d = lq - lp
        with np.errstate(over="ignore", invalid="ignore"):
            big = np.exp(2.0 * lq - lp) * np.square(-np.expm1(-d))
            small = np.exp(lp) * np.square(np.expm1(d))
        return np.where(d > 1.0, big, small)

    return fv


def chi2_quad(prior, pert):
    """D0 by quad (any mixture prior); tails integrated out on doubling pieces."""
    if chi2_diverges(prior, pert):
        return math.inf
    if isinstance(pert, Uniform):
        # inside: (1/w - P)^2 / P; outside: P
        def fin(x):
            x = np.asarray(x, float)
            lp = prior.logpdf(x)
            return np.exp(-lp) * np.square(1.0 / pert.width - np.exp(lp))

        pts = np.concatenate([[pert.a, pert.b], prior.features()])
        pts = pts[(pts >= pert.a) & (pts <= pert.b)]
        inside = _piecewise(_scalar(fin), pts)
        outside = float(np.exp(prior.logcdf(pert.a)) + np.exp(prior.logsf(pert.b)))
        return inside + outside
    fv = _chi2_integrand(prior, pert)
    f = _scalar(fv)
    lo = min(prior.from_nscore(-Z_BULK), pert.from_nscore(-Z_BULK))
    hi = max(prior.from_nscore(Z_BULK), pert.from_nscore(Z_BULK))
    pts = np.concatenate([[lo, hi], prior.features(), pert.features()])
    pts = pts[(pts >= lo) & (pts <= hi)]
    core = _piecewise(f, pts)
    left, right = _tails(f, lo, hi, math.sqrt(max(prior.max_var, pert.max_var)), core)
    return math.fsum([left, core, right])


def chi2(prior, pert):
    """D0 = chi^2(P~_tau || P_tau); math.inf when it diverges."""
    if chi2_diverges(prior, pert):
        return math.inf
    if prior.k == 1:
        if isinstance(pert, Uniform):
            r = math.sqrt(2.0 * prior.max_var)
            if max(abs(pert.a - prior.m[0]), abs(pert.b - prior.m[0])) / r < 20.0:
                return chi2_closed(prior, pert)
            return chi2_quad(prior, pert)
        return chi2_closed(prior, pert)
    return chi2_quad(prior, pert)


def chi2_t(t, schedule, data, pert, prior=None):
    """D_{tau-t} = int (P~_t - P_t)^2 / P_t dx computed in x space at time t (equals D0)."""
    prior = _prior_of(schedule, data, prior)
    pt = schedule.marginal(data, t)
    pushed = _Pushed(pt, prior, pert, identity=(t >= schedule.tau))

    def fv(x):
        x = np.asarray(x, float)
        lp = pt.logpdf(x)
        y = pushed._y(x, pt.nscore(x))
        with np.errstate(invalid="ignore"):
            d = pert.logpdf(y) - prior.logpdf(y)
        with np.errstate(over="ignore", invalid="ignore"):
            big = np.exp(lp + 2.0 * d) * np.square(-np.expm1(-d))
            small = np.exp(lp) * np.square(np.expm1(d))
        return np.where(d > 1.0, big, small)

    pts, _ = pushed.layout()
    return _integrate_line(fv, pts)


# ----------------------------------------------------------------------------------------
# time-dependent quantities
# ----------------------------------------------------------------------------------------


def _prior_of(schedule, data, prior):
    if prior is not None:
        return prior
    return schedule.prior(data)


def _pushed_at(t, schedule, data, pert, prior):
    prior = _prior_of(schedule, data, prior)
    if t >= schedule.tau:
        return _Pushed(prior, prior, pert, identity=True)
    return _Pushed(schedule.marginal(data, t), prior, pert)


def w1_t(t, schedule, data, pert, prior=None):
    """W1(P_t, P~_t)."""
    if schedule.name == "ot":
        return _ot_reference(schedule, data, prior, pert).w1(t)
    return _w1_pushed(_pushed_at(t, schedule, data, pert, prior))


def dw1_dt(t, schedule, data, pert, prior=None):
    """d/dt W1(P_t, P~_t) = -int sign(F_t - F~_t) nu_t (P_t - P~_t) dx (continuity equation).

    For the "ot" schedule (1D exact OT, Q_t = (1-s) Q_q + s Q_tau, s = t/tau):
    W1(t) = int |(1-s) D_0(u) + s D_tau(u)| du and its derivative is
    (1/tau) int sign(.) (D_tau - D_0) du, D_0 = Q_q - Q_p, D_tau = Q_tau - Q~_tau.
    """
    if schedule.name == "ot":
        return _ot_reference(schedule, data, prior, pert).dw1_dt(t)
    pushed = _pushed_at(t, schedule, data, pert, prior)
    pts, _ = pushed.layout()

    def fv(x):
        cd, dd = pushed.flux_terms(x)
        return -np.sign(cd) * velocity(t, schedule, data, x) * dd

    return _integrate_line(fv, pts)


def v2_sq(t, schedule, data, prior=None):
    """v_2(t)^2 = int nu_t(x)^2 P_t(x) dx (for "ot": W2(q, P_tau)^2 / tau^2)."""
    if schedule.name == "ot":
        return w2_sq(data, prior) / schedule.tau**2
    pt = schedule.marginal(data, t)

    def fv(x):
        return velocity(t, schedule, data, x) ** 2 * pt.pdf(x)

    lo = float(np.min(pt.m - 14.0 * pt.s))
    hi = float(np.max(pt.m + 14.0 * pt.s))
    pts = np.concatenate([[lo, hi], pt.features((-8.0, -4.0, -2.0, 0.0, 2.0, 4.0, 8.0))])
    return _piecewise(_scalar(fv), pts)


def _t_points(tau):
    fr = [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 0.6, 1.0]
    return [tau * f for f in fr]


def c2(schedule, data, prior=None, epsrel=1e-9):
    """c2 = int_0^tau v_2(t)^2 dt."""
    if schedule.name == "ot":
        return w2_sq(data, prior) / schedule.tau
    pts = _t_points(schedule.tau)
    return math.fsum(
        _quad(lambda t: v2_sq(t, schedule, data), a, b, epsabs=1e-13, epsrel=epsrel)
        for a, b in zip(pts[:-1], pts[1:])
    )


def c1(schedule, data, pert, prior=None, d0=None, epsrel=1e-8):
    """c1 = int_0^tau (dW1/dt)^2 / D0 dt (0 when D0 = inf).  Slow: ~150+ evaluations of
    :func:`dw1_dt` (0.1-0.7 s each), i.e. about a minute per configuration."""
    prior = _prior_of(schedule, data, prior)
    d0 = chi2(prior, pert) if d0 is None else d0
    if not math.isfinite(d0):
        return 0.0
    pts = [schedule.tau * f for f in (0.0, 1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5, 1.0)]

    def f(t):
        return dw1_dt(t, schedule, data, pert, prior) ** 2

    tot = math.fsum(_quad(f, a, b, epsabs=1e-13, epsrel=epsrel) for a, b in zip(pts[:-1], pts[1:]))
    return tot / d0


def eta(data, prior, pert, tau):
    """eta = (W1(q,p) - W1(P_tau, P~_tau))^2 / (tau D0); 0 if D0 = inf."""
    d0 = chi2(prior, pert)
    if not math.isfinite(d0):
        return 0.0
    return (w1_generated(data, prior, pert) - w1_start(prior, pert)) ** 2 / (tau * d0)


# ----------------------------------------------------------------------------------------
# configurations
# ----------------------------------------------------------------------------------------


def config_objects(config):
    """(data, schedule, prior, perturbation) objects of a config dict."""
    data = Mixture.from_dict(config["data"])
    sched = Schedule.from_dict(config["schedule"])
    prior = config.get("prior")
    prior = Mixture.from_dict(prior) if prior is not None else sched.prior(data)
    pert = make_perturbation(config["perturbation"])
    return data, sched, prior, pert


def random_config(
    rng, schedules=("cosine", "cond-ot", "vp-linear", "ve-geometric"), pert_types=None
):
    """One random configuration (plain dict, see the module docstring).

    data: 2-4 components, scales log-uniform in [0.05, 0.5], neighbouring separations
    uniform in [0.5, 4], weights Dirichlet(2), centred to weighted mean 0.
    schedule: uniform over ``schedules``; VP beta_min ~ U[0.05, 0.5], beta_max ~ U[5, 25];
    VE sigma_min ~ U[0.005, 0.05], sigma_max ~ U[5, 20]; tau ~ U[0.5, 2]; "ot" uses N(0,1).
    perturbation (probabilities 1/2, 1/4, 1/4 unless ``pert_types`` is given), with
    M, S the prior's mean and standard deviation and C* its widest component variance:
    gaussian N(M + S U[-1,1], C* U[0.2, 1.96]) (b^2 < 0.98 x the chi^2 threshold 2C*);
    mixture of 2-3 components, weights Dirichlet(2), means M + S U[-1,1],
    scales sqrt(C*) U[0.2, 0.9]; uniform centred at M + S U[-0.5, 0.5], half-width S U[0.5, 1.8].
    """
    k = int(rng.integers(2, 5))
    scales = np.exp(rng.uniform(math.log(0.05), math.log(0.5), k))
    means = np.concatenate([[0.0], np.cumsum(rng.uniform(0.5, 4.0, k - 1))])
    weights = rng.dirichlet(2.0 * np.ones(k))
    means = means - np.dot(weights, means)
    data = {"weights": weights.tolist(), "means": means.tolist(), "scales": scales.tolist()}
    name = schedules[int(rng.integers(len(schedules)))]
    tau = float(rng.uniform(0.5, 2.0))
    sched = {"name": name, "tau": tau}
    if name == "vp-linear":
        sched.update(beta_min=float(rng.uniform(0.05, 0.5)), beta_max=float(rng.uniform(5.0, 25.0)))
    elif name == "ve-geometric":
        sched.update(
            sigma_min=float(rng.uniform(0.005, 0.05)), sigma_max=float(rng.uniform(5.0, 20.0))
        )
    config = {"data": data, "schedule": sched}
    if name == "ot":
        config["prior"] = {"weights": [1.0], "means": [0.0], "scales": [1.0]}
        prior = Mixture.from_dict(config["prior"])
    else:
        prior = Schedule.from_dict(sched).prior(Mixture.from_dict(data))
    mean, std, cstar = prior.mean, math.sqrt(prior.var), prior.max_var
    if pert_types is None:
        u = rng.uniform()
        kind = "gaussian" if u < 0.5 else ("mixture" if u < 0.75 else "uniform")
    else:
        kind = pert_types[int(rng.integers(len(pert_types)))]
    if kind == "gaussian":
        pert = {
            "type": "gaussian",
            "mean": float(mean + std * rng.uniform(-1.0, 1.0)),
            "scale": float(math.sqrt(cstar * rng.uniform(0.2, 1.96))),
        }
    elif kind == "mixture":
        n = int(rng.integers(2, 4))
        pert = {
            "type": "mixture",
            "weights": rng.dirichlet(2.0 * np.ones(n)).tolist(),
            "means": (mean + std * rng.uniform(-1.0, 1.0, n)).tolist(),
            "scales": (math.sqrt(cstar) * rng.uniform(0.2, 0.9, n)).tolist(),
        }
    else:
        c = mean + std * rng.uniform(-0.5, 0.5)
        h = std * rng.uniform(0.5, 1.8)
        pert = {"type": "uniform", "low": float(c - h), "high": float(c + h)}
    config["perturbation"] = pert
    return config


def reference(config, with_c=False):
    """Reference numbers of one config: W1_init, W1_q_p, D0, delta_W1, eta (+ c1, c2)."""
    data, sched, prior, pert = config_objects(config)
    w1i = w1_start(prior, pert)
    w1g = w1_generated(data, prior, pert)
    d0 = chi2(prior, pert)
    dw = w1g - w1i
    out = {
        "W1_init": w1i,
        "W1_q_p": w1g,
        "D0": d0,
        "delta_W1": dw,
        "eta": dw * dw / (sched.tau * d0) if math.isfinite(d0) else 0.0,
    }
    if with_c:
        out["c2"] = c2(sched, data, prior if sched.name == "ot" else None)
        out["c1"] = c1(sched, data, pert, prior, d0=d0)
    return out
