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


import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from jaxsa.densities import GaussianMixture, Uniform
from jaxsa.quadrature import kronrod_integral, kronrod_panels

__all__ = ["chi2_divergent"]


# ---- densities: precise CDF / survival pairs ------------------------------------------------
_SQRT_HALF = float(np.sqrt(0.5))
_LOG_SQRT_2PI = float(0.5 * np.log(2 * np.pi))
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


def as_perturbation(dens):
    """A perturbed start as the CDF method evaluates it: a 1D
    [`jaxsa.GaussianMixture`][jaxsa.densities.GaussianMixture] or [`jaxsa.Uniform`][jaxsa.densities.Uniform]
    stays what it is (its own, cheaper program: no uniform part or zero-weight components to
    carry; the same values), anything else becomes a [`Start`][jaxsa.relations.cdf_quadrature.Start]."""
    if isinstance(dens, Uniform) or (isinstance(dens, GaussianMixture) and dens.means.ndim == 1):
        return dens
    return as_start(dens)


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
    a = (x[None] - means[ex]) / scales[ex] * _SQRT_HALF
    w = 0.5 * weights[ex]
    # one erfc a component: erfc(|a|) is the small tail, and 2 - erfc(|a|) (>= 1) the other
    # side, to full relative precision
    e = jax.scipy.special.erfc(jnp.abs(a))
    big = 2.0 - e
    pos = a >= 0
    return jnp.sum(w * jnp.where(pos, big, e), 0), jnp.sum(w * jnp.where(pos, e, big), 0)


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
    a = (x[None] - means[ex]) / scales[ex]
    lg = jnp.log(weights)[ex] - jnp.log(scales)[ex] - 0.5 * a * a
    if weights.shape[0] == 1:  # the same value as below, without its exp and log
        return lg[0] - _LOG_SQRT_2PI
    m = jnp.max(lg, 0)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    return m + jnp.log(jnp.sum(jnp.exp(lg - m[None]), 0)) - _LOG_SQRT_2PI


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
    r"""$F^{-1}(\Phi(z))$: closed form for a uniform or a single Gaussian; otherwise the root
    of [`normal_score`][jaxsa.relations.cdf_quadrature.normal_score] $= z$ by Newton's method
    safeguarded by bisection (rtsafe) on the bracket
    $[\min_k(\mu_k + s_k z), \max_k(\mu_k + s_k z)]$ (joined with ``[a, b]`` for a
    uniform part), which holds the root: the mixture's CDF lies between its components'.

    A Newton step (slope $P(y)/\varphi(z(y))$) is taken only if it stays inside the bracket
    and moves less than half the step before last, else the bracket is halved; the loop stops
    once every point's last step is below $4\epsilon(1 + |y|)$ (round-off: typically 5–10
    iterations instead of the ~60 halvings of bisection), or after ``iterations``."""
    z = jnp.asarray(z)
    if isinstance(dens, Uniform):
        return dens.normal_score_quantile(z)
    if not isinstance(dens, Start) and dens.weights.shape[0] == 1:
        return dens.means[0] + dens.scales[0] * z
    ex = (slice(None),) + (None,) * z.ndim
    live = (dens.weights > 0)[ex]
    if isinstance(dens, Start):
        live = live & (dens.alpha < 1)
    y = dens.means[ex] + dens.scales[ex] * z[None]
    lo = jnp.min(jnp.where(live, y, jnp.inf), 0)
    hi = jnp.max(jnp.where(live, y, -jnp.inf), 0)
    if isinstance(dens, Start):
        has_u = dens.alpha > 0
        lo = jnp.where(has_u, jnp.minimum(lo, dens.low), lo)
        hi = jnp.where(has_u, jnp.maximum(hi, dens.high), hi)
    pad = 1e-9 * (1.0 + jnp.abs(lo) + jnp.abs(hi))
    lo, hi = lo - pad, hi + pad
    eps = 4.0 * jnp.finfo(lo.dtype).eps

    def converged(y, step):
        return jnp.abs(step) <= eps * (1.0 + jnp.abs(y))

    def body(state):
        i, y, a, b, step_old, step = state
        done = converged(y, step)  # such a point stays where it is
        zy = normal_score(dens, y)
        g = zy - z
        a = jnp.where(g < 0, y, a)
        b = jnp.where(g < 0, b, y)
        slope = jnp.exp(log_density(dens, y) + 0.5 * zy * zy + _LOG_SQRT_2PI)  # dz/dy
        newton = y - g / slope
        ok = (jnp.isfinite(newton) & (newton >= a) & (newton <= b)
              & (jnp.abs(2.0 * (newton - y)) <= jnp.abs(step_old)))
        y_new = jnp.where(done | (g == 0), y, jnp.where(ok, newton, 0.5 * (a + b)))
        return i + 1, y_new, a, b, step, y_new - y

    def cond(state):
        i, y, _, _, _, step = state
        return (i < iterations) & jnp.any(~converged(y, step))

    mid, width = 0.5 * (lo + hi), hi - lo
    state = (jnp.zeros((), jnp.int32), mid, lo, hi, 2.0 * width, width)
    return jax.lax.while_loop(cond, body, state)[1]


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


def _component_edges(mix: GaussianMixture, n: int, zc: float):
    zeta = jnp.linspace(-zc, zc, n, dtype=mix.means.dtype)
    return (mix.means[:, None] + mix.scales[:, None] * zeta[None, :]).ravel()


# ---- the integrals at one time ------------------------------------------------------------
def pert_tails(pert, z_max: float):
    r"""$F_{\tilde P_\tau}^{-1}(\Phi(\mp z_{max}))$: the perturbed start's extent, the same at
    every time (computed once, outside the loop over times)."""
    dt = pert.low.dtype if isinstance(pert, Uniform) else pert.means.dtype
    return normal_score_quantile(pert, jnp.asarray([-z_max, z_max], dt))


X_INTEGRALS = ("W1", "dW1", "v2_sq", "chi2", "W2_sq")


def x_integrals(Pt: GaussianMixture, Ptau: GaussianMixture, pert, velocity, y_breaks, cfg,
                table=None, y_tails=None, keys=X_INTEGRALS):
    r"""Integrals over $x$ at one time, each by Kronrod and by Gauss: a dict of
    ``(2,)`` arrays (``[kronrod, gauss]``) for ``W1``, ``dW1``, ``v2_sq``, ``chi2``,
    ``W2_sq`` ($W_2(P_t, P_\tau)^2$), or for the names in ``keys`` only (the rest is not
    computed: at the time-quadrature nodes only ``dW1`` and ``v2_sq`` are needed, and
    ``dW1`` needs $\tilde F_t$ at one node a panel, for its sign).

    ``Pt``: $P_t$ (1D mixture); ``Ptau``: $P_\tau$; ``pert``: $\tilde P_\tau$;
    ``velocity(x)``: $\nu_t(x)$ or ``None`` (then ``dW1`` and ``v2_sq`` are zero);
    ``y_breaks``: points in $y$ whose images are panel edges (crossings, jumps);
    ``y_tails``: [`pert_tails`][jaxsa.relations.cdf_quadrature.pert_tails] (computed here if ``None``).
    """
    dt = Pt.means.dtype
    zmax = cfg.z_max

    def X(y):  # the flow map τ -> t
        return normal_score_quantile(Pt, normal_score(Ptau, y))

    tails = X(pert_tails(pert, zmax) if y_tails is None else y_tails)
    comp = _component_edges(Pt, cfg.n_comp, cfg.comp_z)
    lo = jnp.minimum(jnp.min(comp), tails[0])
    hi = jnp.maximum(jnp.max(comp), tails[1])
    span = jnp.linspace(lo, hi, cfg.n_span, dtype=dt)
    brk = jnp.clip(X(y_breaks), lo, hi)
    # (2n+1, P): a panel's nodes down axis 0
    x, wk, wg = kronrod_panels(jnp.concatenate([comp, span, brk]), cfg.order, node_major=True)
    lpt = log_density(Pt, x)
    pt = jnp.exp(lpt)
    out = {}
    if velocity is not None and ("v2_sq" in keys or "dW1" in keys):
        nu = velocity(x)
        if "v2_sq" in keys:
            out["v2_sq"] = nu**2 * pt
    if any(k in keys for k in ("W1", "dW1", "chi2", "W2_sq")):
        ft, st = cdf_sf(Pt, x)
        left = ft <= st
        zt = ndtri(jnp.maximum(jnp.where(left, ft, st), _TINY))
        zt = jnp.where(left, zt, -zt)
        Y = table(zt) if table is not None else normal_score_quantile(Ptau, zt)
        # the sign inside a panel is that of its middle node: crossings are panel edges, so
        # it does not change inside; node values at an edge take their own panel's side
        mid = x.shape[0] // 2

        def diff(i):  # F_t - F̃_t at nodes ``i``, from the precise tail
            fe, se = cdf_sf(pert, Y[i])
            return jnp.where(left[i], ft[i] - fe, se - st[i])

        if "W1" in keys:
            d = diff(slice(None))
            sgn = jnp.sign(d[mid:mid + 1])
            out["W1"] = sgn * d
        else:
            sgn = jnp.sign(diff(slice(mid, mid + 1)))
        if "W2_sq" in keys:
            out["W2_sq"] = (x - Y) ** 2 * pt
    if any(k in keys for k in ("chi2", "dW1")):
        # ln(P̃_t / P_t), constant along the flow; a uniform part's jump is a panel edge:
        # every node takes its own panel's side
        inside = None
        if isinstance(pert, (Start, Uniform)):
            ym = Y[mid:mid + 1]
            inside = (ym > pert.low) & (ym < pert.high)
        lr = log_density(pert, Y, inside=inside) - log_density(Ptau, Y)
        if "chi2" in keys:
            out["chi2"] = _p_sq(lpt, lr)
        if velocity is not None and "dW1" in keys:
            out["dW1"] = -sgn * nu * (-pt * jnp.expm1(lr))  # P_t - P̃_t = -P_t (r - 1)
    res = {k: kronrod_integral(f, wk, wg, axis=0) for k, f in out.items()}
    if velocity is None:
        res.update({k: jnp.zeros(2, dt) for k in ("dW1", "v2_sq") if k in keys})
    return {k: res[k] for k in keys}


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
    pert = as_start(pert)  # cheap once; the same edges for every kind of start
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
    nodes, wk, wg = kronrod_panels(edges, cfg.order)
    lp = log_density(Ptau, nodes)
    mid = nodes.shape[1] // 2
    xm = nodes[:, mid:mid + 1]
    lr = log_density(pert, nodes, inside=(xm > pert.low) & (xm < pert.high)) - lp
    f = _p_sq(lp, lr)
    d = kronrod_integral(f, wk, wg)
    return jnp.where(div, jnp.stack([jnp.inf, 0.0]), d), div
