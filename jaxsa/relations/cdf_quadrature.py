r"""The 1D relations by quadrature in $x$ of the CDF form, with embedded error estimates.

In 1D the probability-flow map from $\tau$ to $t$ is the monotone rearrangement
$X_t = F_{P_t}^{-1}\circ F_{P_\tau}$, for every schedule, and the estimated process rides
the same map. Its inverse $Y_t(x) = F_{P_\tau}^{-1}(F_{P_t}(x))$ sends a point at time
``t`` back to its start, so $F_{\tilde P_t}(x) = F_{\tilde P_\tau}(Y_t(x))$ and
$\tilde P_t(x) = P_t(x)\,\tilde P_\tau(Y_t)/P_\tau(Y_t)$ (the likelihood ratio is carried
along the flow). Every quantity of the relations is then an integral over $x$ of closed
forms:

$$
W_1(P_t,\tilde P_t) = \int |F_{P_t} - F_{\tilde P_t}|\,dx, \qquad
\partial_t W_1 = -\int \mathrm{sgn}(F_{P_t} - F_{\tilde P_t})\,\nu_t\,(P_t - \tilde P_t)\,dx,
$$

(the second from the continuity equation, $\partial_t F_{P_t} = -\nu_t P_t$),
$v_2^2 = \int \nu_t^2 P_t\,dx$, $D_t = \int P_t (\tilde P_t/P_t - 1)^2 dx$ and
$W_2(P_t,P_\tau)^2 = \int (x - Y_t(x))^2 P_t\,dx$.

Why $x$ and not quantile levels: when the data have narrow, separated modes, the
quantile function of $P_t$ is nearly a step between them, and a quadrature over levels
cannot place that step (an $O(h)$ error that does not converge monotonically). In
$x$ every integrand is bounded and as smooth as the mixture's components.

**Nodes.** At each time the panels of a composite Gauss–Kronrod rule have their edges at
``n_comp`` points across each component of $P_t$ ($\pm$ ``comp_z`` widths),
``n_span`` uniform points over the whole span (gaps between modes, the perturbation's tails),
and every point where an integrand has a kink or a jump: the images $X_t(y_c)$ of the
crossings of $F_{P_\tau}$ and $F_{\tilde P_\tau}$ (time-invariant in $y$) and
of a uniform start's edges. Inside a panel every integrand is smooth.

**Error estimates.** Each integral is computed with the Kronrod rule and with its embedded
Gauss rule; each time integral with Kronrod and Gauss in time. Every reported scalar is
computed from both, and its error estimate is the sum of the two differences (the error of
the coarser rule: an over-estimate of the error of the value reported).
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from jaxsa.densities import GaussianMixture, Uniform
from jaxsa.quadrature import gauss_legendre

__all__ = ["gauss_kronrod", "panels", "chi2_divergent"]


@functools.lru_cache(maxsize=None)
def gauss_kronrod(n: int):
    """Gauss–Kronrod pair on ``[0, 1]``: ``(nodes, kronrod_weights, gauss_weights)``.

    ``2n + 1`` nodes: the ``n`` Gauss–Legendre nodes and the ``n + 1`` zeros of the
    Stieltjes polynomial $E_{n+1}$ (orthogonal to $P_n x^k$, ``k <= n``). The
    Kronrod weights integrate polynomials of degree $3n+1$ exactly, the Gauss weights
    (zero at the added nodes) those of degree $2n-1$. Computed here in numpy from the
    orthogonality conditions (static, cached).
    """
    g, wg_g = gauss_legendre(n, -1.0, 1.0)
    # E_{n+1}(x) = x^{n+1} + sum_k a_k x^k with int P_n(x) E(x) x^j dx = 0, j = 0..n
    xq, wq = gauss_legendre(2 * n + 4, -1.0, 1.0)
    pn = np.polynomial.legendre.legval(xq, np.eye(n + 1)[n])
    A = np.array([[np.sum(wq * pn * xq**j * xq**k) for k in range(n + 1)] for j in range(n + 1)])
    b = -np.array([np.sum(wq * pn * xq**j * xq ** (n + 1)) for j in range(n + 1)])
    a = np.linalg.solve(A, b)
    e = np.roots(np.concatenate([[1.0], a[::-1]]))
    if np.max(np.abs(e.imag)) > 1e-10 or np.max(np.abs(e.real)) >= 1:
        raise RuntimeError(f"gauss_kronrod({n}): Stieltjes zeros are not real in (-1, 1)")
    x = np.sort(np.concatenate([g, e.real]))
    V = np.polynomial.legendre.legvander(x, 2 * n).T
    rhs = np.zeros(2 * n + 1)
    rhs[0] = 2.0
    wk = np.linalg.solve(V, rhs)
    wg = np.zeros_like(x)
    for gi, wi in zip(g, wg_g):
        wg[np.argmin(np.abs(x - gi))] = wi
    return 0.5 * (x + 1.0), 0.5 * wk, 0.5 * wg


# ---- densities: precise CDF / survival pairs ------------------------------------------------
_SQRT_HALF = float(np.sqrt(0.5))
_TINY = 1e-300


class Start(eqx.Module):
    r"""A perturbed start of any supported kind as one pytree: the mixture
    $(1-\alpha)\sum_k w_k\mathcal N(\mu_k, s_k^2) + \alpha\,\mathcal U[a, b]$.

    A Gaussian mixture is ``alpha = 0`` (padded with zero-weight components), a uniform start
    ``alpha = 1``. Starts of different kinds therefore stack into one batch and share one
    compiled program ([`as_start`][jaxsa.relations.cdf_quadrature.as_start], [`stack_starts`][jaxsa.relations.cdf_quadrature.stack_starts]).
    """

    weights: jax.Array
    means: jax.Array
    scales: jax.Array
    alpha: jax.Array
    low: jax.Array
    high: jax.Array

    def log_density(self, x):
        return log_density(self, x)

    def cdf(self, x):
        return cdf_sf(self, x)[0]


def as_start(dens, n_components: int | None = None) -> Start:
    """A [`jaxsa.GaussianMixture`][jaxsa.densities.GaussianMixture], [`jaxsa.Uniform`][jaxsa.densities.Uniform] or [`Start`][jaxsa.relations.cdf_quadrature.Start] as a
    [`Start`][jaxsa.relations.cdf_quadrature.Start] with ``n_components`` Gaussian components (zero-weight padding)."""
    if isinstance(dens, Start):
        k = dens.weights.shape[-1]
        if n_components is None or n_components == k:
            return dens
        pad = n_components - k
        if pad < 0:
            raise ValueError(f"as_start: the start has {k} components, more than {n_components}.")
        return Start(jnp.pad(dens.weights, (0, pad)), jnp.pad(dens.means, (0, pad)),
                     jnp.pad(dens.scales, (0, pad), constant_values=1.0), dens.alpha,
                     dens.low, dens.high)
    if isinstance(dens, Uniform):
        dt = dens.low.dtype
        k = n_components or 1
        return Start(jnp.zeros(k, dt), jnp.zeros(k, dt), jnp.ones(k, dt), jnp.ones((), dt),
                     dens.low, dens.high)
    if not isinstance(dens, GaussianMixture) or dens.means.ndim != 1:
        raise ValueError("as_start: a start must be a 1D GaussianMixture or Uniform, got "
                         f"{type(dens).__name__}.")
    dt = dens.means.dtype
    out = Start(dens.weights, dens.means, dens.scales, jnp.zeros((), dt), jnp.zeros((), dt),
                jnp.ones((), dt))
    return as_start(out, n_components)


def stack_starts(densities) -> Start:
    """Densities of any supported kinds as one batched [`Start`][jaxsa.relations.cdf_quadrature.Start] (leading axis)."""
    k = 1
    for d in densities:
        if isinstance(d, (GaussianMixture, Start)):
            k = max(k, d.weights.shape[-1])
    starts = [as_start(d, k) for d in densities]
    return jax.tree.map(lambda *a: jnp.stack(a), *starts)


def _gm_cdf_sf(weights, means, scales, x):
    x = jnp.asarray(x)
    ex = (slice(None),) + (None,) * x.ndim  # component-major: reductions over the leading axis
    a = (x - means[ex]) / scales[ex] * _SQRT_HALF
    w = 0.5 * weights[ex]
    return jnp.sum(w * jax.scipy.special.erfc(-a), 0), jnp.sum(w * jax.scipy.special.erfc(a), 0)


def cdf_sf(dens, x):
    """``(F(x), 1 - F(x))``, each from ``erfc`` of its own tail (relative precision down to
    ~1e-308, 37 standard deviations)."""
    if isinstance(dens, Uniform):
        width = dens.high - dens.low
        return (jnp.clip((x - dens.low) / width, 0.0, 1.0),
                jnp.clip((dens.high - x) / width, 0.0, 1.0))
    if isinstance(dens, Start):
        f, s = _gm_cdf_sf(dens.weights, dens.means, dens.scales, x)
        width = dens.high - dens.low
        fu = jnp.clip((x - dens.low) / width, 0.0, 1.0)
        su = jnp.clip((dens.high - x) / width, 0.0, 1.0)
        return (1 - dens.alpha) * f + dens.alpha * fu, (1 - dens.alpha) * s + dens.alpha * su
    return _gm_cdf_sf(dens.weights, dens.means, dens.scales, x)


def _gm_log_density(weights, means, scales, x):
    x = jnp.asarray(x)
    ex = (slice(None),) + (None,) * x.ndim
    a = (x - means[ex]) / scales[ex]
    lg = jnp.log(weights)[ex] - jnp.log(scales)[ex] - 0.5 * a * a
    m = jnp.max(lg, 0)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    return m + jnp.log(jnp.sum(jnp.exp(lg - m), 0)) - 0.5 * np.log(2 * np.pi)


def log_density(dens, x, inside=None):
    r"""$\ln$ density in 1D, component-major (XLA on CPU reduces a leading axis of size
    K far faster than a minor one). ``inside``: for a start with a uniform part, whether each
    point counts as inside its support (to take one side of the jump at its edges)."""
    if isinstance(dens, Uniform):
        if inside is None:
            return dens.log_density(x)
        return jnp.where(inside, -jnp.log(dens.high - dens.low), -jnp.inf)
    if isinstance(dens, Start):
        if inside is None:
            inside = (x >= dens.low) & (x <= dens.high)
        lu = jnp.where(inside, jnp.log(dens.alpha) - jnp.log(dens.high - dens.low), -jnp.inf)
        lg = jnp.log1p(-dens.alpha) + _gm_log_density(dens.weights, dens.means, dens.scales, x)
        return jnp.logaddexp(lg, lu)
    return _gm_log_density(dens.weights, dens.means, dens.scales, x)


def normal_score(dens, x):
    r"""$\Phi^{-1}(F(x))$, precise in both tails, clipped to ``±37.5`` beyond them."""
    if isinstance(dens, Uniform):
        return jnp.clip(dens.normal_score(x), -37.5, 37.5)
    f, s = cdf_sf(dens, x)
    left = f <= s
    z = ndtri(jnp.maximum(jnp.where(left, f, s), _TINY))
    return jnp.where(left, z, -z)


def normal_score_quantile(dens, z, iterations: int = 64):
    r"""$F^{-1}(\Phi(z))$: closed form for a uniform or a single Gaussian; otherwise
    bisection of [`normal_score`][jaxsa.relations.cdf_quadrature.normal_score] on the bracket
    $[\min_k(\mu_k + s_k z), \max_k(\mu_k + s_k z)]$ (joined with ``[a, b]`` for a
    uniform part), which holds the root: the mixture's CDF lies between its components'.
    ``iterations`` halvings reach float64 resolution; a loop without data-dependent exit
    compiles small and vectorises."""
    z = jnp.asarray(z)
    if isinstance(dens, Uniform):
        return dens.normal_score_quantile(z)
    if not isinstance(dens, Start) and dens.weights.shape[0] == 1:
        return dens.means[0] + dens.scales[0] * z
    ex = (slice(None),) + (None,) * z.ndim
    live = (dens.weights > 0)[ex]
    if isinstance(dens, Start):
        live = live & (dens.alpha < 1)
    y = dens.means[ex] + dens.scales[ex] * z
    lo = jnp.min(jnp.where(live, y, jnp.inf), 0)
    hi = jnp.max(jnp.where(live, y, -jnp.inf), 0)
    if isinstance(dens, Start):
        has_u = dens.alpha > 0
        lo = jnp.where(has_u, jnp.minimum(lo, dens.low), lo)
        hi = jnp.where(has_u, jnp.maximum(hi, dens.high), hi)
    pad = 1e-9 * (1.0 + jnp.abs(lo) + jnp.abs(hi))
    lo, hi = lo - pad, hi + pad

    def body(_, ab):
        a, b = ab
        mid = 0.5 * (a + b)
        below = normal_score(dens, mid) < z
        return jnp.where(below, mid, a), jnp.where(below, b, mid)

    a, b = jax.lax.fori_loop(0, iterations, body, (lo, hi))
    return 0.5 * (a + b)


def breakpoints(pert):
    """Points where the perturbed start's density jumps (a uniform part's edges)."""
    if isinstance(pert, (Uniform, Start)):
        return jnp.stack([pert.low, pert.high])
    return jnp.zeros((0,), pert.means.dtype)


def chi2_divergent(prior: GaussianMixture, pert):
    r"""Whether $D_0 = \chi^2(\tilde P_\tau\|P_\tau)$ is infinite (bool array).

    For Gaussian mixtures the tails decide: $\tilde P^2/P$ decays like
    $\exp[-x^2(1/\tilde s^2 - 1/(2s^2))]$ for the widest components (weight > 0) of each,
    so $D_0 = \infty$ iff $\tilde s_{max}^2 \ge 2 s_{max}^2$. A uniform start has
    bounded support: always finite.
    """
    if isinstance(pert, Uniform):
        return jnp.zeros((), bool)
    live = pert.weights > 0
    if isinstance(pert, Start):
        live = live & (pert.alpha < 1)
    s2 = jnp.max(jnp.where(live, pert.scales**2, 0.0))
    p2 = jnp.max(jnp.where(prior.weights > 0, prior.scales**2, 0.0))
    return s2 >= 2.0 * p2


# ---- composite Gauss–Kronrod on sorted edges ---------------------------------------------
def panels(edges, order):
    """Nodes ``(P, 2n+1)`` and Kronrod / Gauss weights of the composite rule on ``edges``."""
    u, wk, wg = gauss_kronrod(order)
    e = jnp.sort(edges)
    a, width = e[:-1], jnp.diff(e)
    nodes = a[:, None] + width[:, None] * jnp.asarray(u, e.dtype)
    return nodes, width[:, None] * jnp.asarray(wk, e.dtype), width[:, None] * jnp.asarray(wg, e.dtype)


def integrate(f, wk, wg):
    r"""``[value, error estimate]`` of a composite Gauss–Kronrod rule: ``f``, ``wk``, ``wg``
    of shape ``(panels, 2n+1)``.

    The value is the Kronrod sum; the estimate is $\sum_{panels}|K - G|$ (the error of
    the embedded Gauss rule, which on smooth panels is far larger than the Kronrod rule's:
    a conservative estimate), floored by $50\,\epsilon_{mach}\sum w|f|$ for round-off.
    """
    K = jnp.sum(wk * f, axis=-1)
    G = jnp.sum(wg * f, axis=-1)
    err = jnp.sum(jnp.abs(K - G)) + 50 * jnp.finfo(f.dtype).eps * jnp.sum(jnp.abs(wk * f))
    return jnp.stack([jnp.sum(K), err])


def _component_edges(mix: GaussianMixture, n: int, zc: float):
    zeta = jnp.linspace(-zc, zc, n, dtype=mix.means.dtype)
    return (mix.means[:, None] + mix.scales[:, None] * zeta).ravel()


def crossings(prior, pert, n_max: int, z_max: float, n_scan: int = 512):
    r"""Points $y_c$ where $F_{P_\tau}(y) - F_{\tilde P_\tau}(y)$ changes sign.

    Scanned on the union of both distributions' quantiles at ``n_scan`` normal scores in
    ``[-z_max, z_max]`` and refined by bisection. Returns ``(y_c (n_max,), count)``; unused
    slots repeat the first crossing (or the prior's median), which adds a harmless edge.
    ``count > n_max`` means crossings were left out (the result is flagged).
    """
    z = jnp.linspace(-z_max, z_max, n_scan, dtype=prior.means.dtype)
    y = jnp.sort(jnp.concatenate([normal_score_quantile(prior, z), normal_score_quantile(pert, z)]))

    def diff(v):
        fp, sp = cdf_sf(prior, v)
        fq, sq = cdf_sf(pert, v)
        return jnp.where(fp + fq < sp + sq, fp - fq, sq - sp)

    d = diff(y)
    s = jnp.sign(d)
    change = (s[:-1] * s[1:]) < 0
    count = jnp.sum(change)
    (idx,) = jnp.nonzero(change, size=n_max, fill_value=0)
    a, b = y[idx], y[idx + 1]
    da = diff(a)

    def body(_, ab):
        lo, hi = ab
        mid = 0.5 * (lo + hi)
        same = jnp.sign(diff(mid)) == jnp.sign(da)
        return jnp.where(same, mid, lo), jnp.where(same, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 64, body, (a, b))
    yc = 0.5 * (lo + hi)
    used = jnp.arange(n_max) < count
    fill = jnp.where(count > 0, yc[0], normal_score_quantile(prior, jnp.zeros((), z.dtype)))
    return jnp.where(used, yc, fill), count


# ---- the inverse flow map by table + Newton -----------------------------------------------
class QuantileTable:
    r"""$z \mapsto F_{P_\tau}^{-1}(\Phi(z))$ for many points: cubic Hermite interpolation
    on a uniform table in ``z`` (exact slopes $\varphi(z)/P_\tau$), then two Newton
    steps on the normal score, which leave float64 round-off. One safeguarded Newton solve per
    table node instead of one per point, and no loop in the per-point work."""

    def __init__(self, dens, n: int = 2048, z_lim: float = 37.0, newton: int = 1):
        self.dens, self.z_lim, self.newton = dens, z_lim, newton
        dt = dens.means.dtype if hasattr(dens, "means") else dens.low.dtype
        self.z = jnp.linspace(-z_lim, z_lim, n, dtype=dt)
        self.h = 2 * z_lim / (n - 1)
        self.y = normal_score_quantile(dens, self.z)
        self.dy = jnp.exp(-0.5 * self.z**2 - 0.5 * np.log(2 * np.pi) - log_density(dens, self.y))

    def __call__(self, z):
        dens = self.dens
        if not isinstance(dens, Uniform) and dens.weights.shape[0] == 1:
            return dens.means[0] + dens.scales[0] * z
        z = jnp.clip(z, -self.z_lim, self.z_lim)
        n = self.z.shape[0]
        k = jnp.clip(jnp.floor((z - self.z[0]) / self.h).astype(jnp.int32), 0, n - 2)
        u = (z - self.z[k]) / self.h
        h00, h10 = (1 + 2 * u) * (1 - u) ** 2, u * (1 - u) ** 2
        h01, h11 = u * u * (3 - 2 * u), u * u * (u - 1)
        y = (h00 * self.y[k] + h10 * self.h * self.dy[k] + h01 * self.y[k + 1]
             + h11 * self.h * self.dy[k + 1])
        for _ in range(self.newton):
            zy = normal_score(dens, y)
            slope = jnp.exp(-0.5 * zy**2 - 0.5 * np.log(2 * np.pi) - log_density(dens, y))
            step = (zy - z) * slope
            y = y - jnp.where(jnp.isfinite(step), step, 0.0)
        return y


# ---- the integrals at one time ------------------------------------------------------------
def x_integrals(Pt: GaussianMixture, Ptau: GaussianMixture, pert, velocity, y_breaks, cfg,
                table=None):
    r"""Integrals over $x$ at one time, each by Kronrod and by Gauss: a dict of
    ``(2,)`` arrays (``[kronrod, gauss]``) for ``W1``, ``dW1``, ``v2_sq``, ``chi2``,
    ``W2_sq`` ($W_2(P_t, P_\tau)^2$).

    ``Pt``: $P_t$ (1D mixture); ``Ptau``: $P_\tau$; ``pert``: $\tilde P_\tau$;
    ``velocity(x)``: $\nu_t(x)$ or ``None`` (then ``dW1`` and ``v2_sq`` are zero);
    ``y_breaks``: points in $y$ whose images are panel edges (crossings, jumps).
    """
    dt = Pt.means.dtype
    zmax = cfg.z_max

    def X(y):  # the flow map τ -> t
        return normal_score_quantile(Pt, normal_score(Ptau, y))

    tails = X(jnp.stack([normal_score_quantile(pert, jnp.asarray(-zmax, dt)),
                         normal_score_quantile(pert, jnp.asarray(zmax, dt))]))
    comp = _component_edges(Pt, cfg.n_comp, cfg.comp_z)
    lo = jnp.minimum(jnp.min(comp), tails[0])
    hi = jnp.maximum(jnp.max(comp), tails[1])
    span = jnp.linspace(lo, hi, cfg.n_span, dtype=dt)
    brk = jnp.clip(X(y_breaks), lo, hi)
    nodes, wk, wg = panels(jnp.concatenate([comp, span, brk]), cfg.order)

    x = nodes
    lpt = log_density(Pt, x)
    ft, st = cdf_sf(Pt, x)
    left = ft <= st
    zt = ndtri(jnp.maximum(jnp.where(left, ft, st), _TINY))
    zt = jnp.where(left, zt, -zt)
    Y = table(zt) if table is not None else normal_score_quantile(Ptau, zt)
    fe, se = cdf_sf(pert, Y)
    diff = jnp.where(left, ft - fe, se - st)  # F_t - F̃_t, from the precise tail
    # the sign inside a panel is that of its middle node: crossings are panel edges, so
    # it does not change inside; node values at an edge take their own panel's side
    mid = x.shape[1] // 2
    sgn = jnp.sign(diff[:, mid:mid + 1])
    lptau = log_density(Ptau, Y)
    # ln(P̃_t / P_t), constant along the flow; a uniform part's jump is a panel edge: every
    # node takes its own panel's side
    ym = Y[:, mid:mid + 1]
    lr = log_density(pert, Y, inside=(ym > pert.low) & (ym < pert.high)) - lptau
    pt = jnp.exp(lpt)
    em1 = jnp.expm1(lr)
    out = {"W1": sgn * diff, "chi2": _p_sq(lpt, lr), "W2_sq": (x - Y) ** 2 * pt}
    if velocity is not None:
        nu = velocity(x)
        out["dW1"] = -sgn * nu * (-pt * em1)  # P_t - P̃_t = -P_t (r - 1)
        out["v2_sq"] = nu**2 * pt
    res = {k: integrate(f, wk, wg) for k, f in out.items()}
    if velocity is None:
        res["dW1"] = jnp.zeros(2, dt)
        res["v2_sq"] = jnp.zeros(2, dt)
    return res


def _p_sq(lp, lr):
    """$P (e^{lr} - 1)^2$ without overflow."""
    big = lr > 1.0
    safe = jnp.where(big, lr, 0.0)
    a = jnp.exp(lp + 2 * safe) * (-jnp.expm1(-safe)) ** 2
    b = jnp.exp(lp) * jnp.expm1(jnp.where(big, 0.0, lr)) ** 2
    return jnp.where(big, a, b)


def chi2_start(Ptau: GaussianMixture, pert, cfg):
    r"""$D_0 = \int(\tilde P_\tau - P_\tau)^2/P_\tau$, ``[value, error]``, on panels that
    reach as far as the integrand's slowest Gaussian tail; ``inf`` when it diverges
    ([`chi2_divergent`][jaxsa.relations.cdf_quadrature.chi2_divergent]). ``pert``: a [`Start`][jaxsa.relations.cdf_quadrature.Start]."""
    dt = Ptau.means.dtype
    div = chi2_divergent(Ptau, pert)
    comp = _component_edges(Ptau, cfg.n_comp, cfg.comp_z)
    live = (pert.weights > 0) & (pert.alpha < 1)
    s2 = jnp.max(jnp.where(live, pert.scales**2, 0.0))
    p2 = jnp.max(jnp.where(Ptau.weights > 0, Ptau.scales**2, 0.0))
    kappa = jnp.where(div | (s2 <= 0), 1.0, 1.0 / jnp.where(s2 > 0, s2, 1.0) - 0.5 / p2)
    reach = jnp.where(s2 > 0, jnp.sqrt(2.0 * (cfg.tail_log + 0.5 * jnp.log(p2 / jnp.maximum(s2, 1e-300) + 1.0)) / kappa), 0.0)
    centre = jnp.concatenate([Ptau.means, jnp.where(live, pert.means, Ptau.means[0])])
    lo = jnp.min(centre) - reach - cfg.comp_z * jnp.sqrt(p2)
    hi = jnp.max(centre) + reach + cfg.comp_z * jnp.sqrt(p2)
    edges = jnp.concatenate([comp, _component_edges(pert, cfg.n_comp, cfg.comp_z),
                             jnp.linspace(pert.low, pert.high, cfg.n_span, dtype=dt),
                             jnp.linspace(lo, hi, 2 * cfg.n_span, dtype=dt)])
    nodes, wk, wg = panels(edges, cfg.order)
    lp = log_density(Ptau, nodes)
    mid = nodes.shape[1] // 2
    xm = nodes[:, mid:mid + 1]
    lr = log_density(pert, nodes, inside=(xm > pert.low) & (xm < pert.high)) - lp
    f = _p_sq(lp, lr)
    d = integrate(f, wk, wg)
    return jnp.where(div, jnp.stack([jnp.inf, 0.0]), d), div
