r"""Sample estimators of the d-dimensional audit ([spec §4][spec-4]): replicate intervals, the
envelope-theorem derivative of $W_1$ along a flow, and $\chi^2$ with a divergence diagnostic.

* [`replicate_interval`][jaxsa.relations.estimators.replicate_interval] — mean and Student-t
  interval over independent replicates.
* [`w1_flow_derivative`][jaxsa.relations.estimators.w1_flow_derivative] —
  $\partial_t W_1(P_t,\tilde P_t)$ from a dual potential (no finite differences).
* [`chi2_monte_carlo`][jaxsa.relations.estimators.chi2_monte_carlo] — $D_0$ (Eq. 78) by Monte
  Carlo with a Hill tail index that detects a divergent $\chi^2$.
* [`eta_interval`][jaxsa.relations.estimators.eta_interval] — the image of an interval of
  $\Delta W_1$ (and of $D_0$) under $\eta = \Delta W_1^2/(\tau D_0)$.
* [`w1_paired`][jaxsa.relations.estimators.w1_paired] — certified $W_1$ of paired clouds;
  [`legendre_derivative`][jaxsa.relations.estimators.legendre_derivative] — the derivative of a
  least-squares Legendre fit; [`map_each`][jaxsa.relations.estimators.map_each] — a map that
  loops in Python on concrete arrays and uses ``lax.map`` under tracing.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsa._checks import is_concrete
from jaxsa.densities import GaussianMixture
from jaxsa.metrics import w1_point_cloud
from jaxsa.thermo.monte_carlo import chi2_isotropic_gaussian

__all__ = ["eta_interval", "replicate_interval", "student_t_quantile", "w1_flow_derivative",
           "chi2_monte_carlo", "Chi2Estimate", "chi_mean", "w1_paired", "legendre_derivative",
           "map_each", "isotropic_gaussian", "start_chi2"]


def eta_interval(delta_lo, delta_hi, tau, D0, D0_lo=None, D0_hi=None):
    r"""Interval of the response $\eta = \Delta W_1^2/(\tau D_0)$ (Eq. 77) given an interval
    ``[delta_lo, delta_hi]`` of $\Delta W_1$ (length units) and optionally one of $D_0$
    (``[D0_lo, D0_hi]``, dimensionless; default the point ``D0``): the image of the box under
    the map, 0 at the bottom when the $\Delta W_1$ interval contains 0. Scalars or arrays
    (traceable); returns ``(eta_lo, eta_hi)`` (1/time)."""
    D0_lo = D0 if D0_lo is None else D0_lo
    D0_hi = D0 if D0_hi is None else D0_hi
    sq_hi = jnp.maximum(delta_lo**2, delta_hi**2)
    sq_lo = jnp.where(delta_lo * delta_hi <= 0, 0.0, jnp.minimum(delta_lo**2, delta_hi**2))
    return sq_lo / (tau * D0_hi), sq_hi / (tau * jnp.maximum(D0_lo, 0.0))


def student_t_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile of Student's t with ``dof`` degrees of freedom (a Python float; by
    bisection on the regularised incomplete beta function, no scipy)."""
    from jax.scipy.special import betainc

    dof = int(dof)
    lo, hi = 0.0, 1e3
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        # P(T <= mid) = 1 - I_{dof/(dof+mid²)}(dof/2, 1/2)/2
        with jax.ensure_compile_time_eval():  # a constant, also while tracing
            cdf = 1.0 - 0.5 * float(betainc(dof / 2, 0.5, dof / (dof + mid * mid)))
        lo, hi = (mid, hi) if cdf < p else (lo, mid)
    return 0.5 * (lo + hi)


def replicate_interval(values, level: float = 0.95):
    r"""Mean of independent replicates ``values`` ``(R, ...)`` and the half-width of its
    two-sided Student-t interval, $t_{R-1}\,s/\sqrt R$ (same units). ``R >= 2``."""
    values = jnp.asarray(values)
    r = values.shape[0]
    t = student_t_quantile(0.5 + level / 2, r - 1)
    return jnp.mean(values, 0), t * jnp.std(values, 0, ddof=1) / jnp.sqrt(r)


def chi_mean(d: int) -> float:
    r"""$\mathbb E\|Z\|$ for $Z\sim\mathcal N(0, I_d)$: $\sqrt2\,\Gamma(\frac{d+1}2)/\Gamma(\frac d2)$."""
    return math.sqrt(2.0) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))


def _euclid_block(x, y):
    sq = jnp.sum(x * x, 1)[:, None] + jnp.sum(y * y, 1)[None, :] - 2.0 * (x @ y.T)
    return jnp.sqrt(jnp.clip(sq, 0.0))


def w1_flow_derivative(x, y, vx, vy, f, epsilon=None, block: int = 1024):
    r"""$\frac{d}{dt}W_1(P_t,\tilde P_t)$ for uniform clouds that move with velocities
    ``vx``, ``vy``, from a dual potential ``f`` on ``x`` (envelope theorem).

    With $g_j = \min_i(|x_i - y_j| - f_i)$ (the c-transform, attained at $i^*(j)$), the dual
    value $\bar f + \bar g$ is $W_1$ when $f$ is optimal, and its derivative with the
    potentials held fixed is

    $$
    \partial_t W_1 = \frac1m\sum_j e_j\cdot\big(\nu(x_{i^*(j)}) - \nu(y_j)\big),\qquad
    e_j = \frac{x_{i^*(j)} - y_j}{|x_{i^*(j)} - y_j|},
    $$

    the change of the cost of the transport rays. With the optimal potential this is the
    derivative of the empirical $W_1$ (almost everywhere). An approximate potential is not
    harmless here: the dual potentials of the Euclidean cost are degenerate (flat along
    transport rays), a slightly wrong one picks tilted rays, and the derivative comes out low
    (by 6–20% from an ε-scaling solver at 10³ points, measured in ``benchmarks/RESULTS.md``);
    [`jaxsa.audit`][jaxsa.relations.audit.audit] therefore checks it against a second route. With ``epsilon`` the hard minimum is replaced by the soft one, weights
    $\pi_{i|j}\propto e^{-(|x_i - y_j| - f_i)/\varepsilon}$ (the conditional of the entropic
    plan of an ε-scaling solver): an approximate potential then averages over the near-optimal
    partners instead of jumping between them, and the result is the derivative of that plan's
    cost. Blockwise over ``y`` (``block`` rows at a time, memory ``block × n``).

    Args:
        x, vx: ``(n, d)`` points of $P_t$ and their velocities; y, vy: ``(m, d)`` of $\tilde P_t$.
        f: ``(n,)`` potential on ``x`` (length units).
        epsilon: entropic temperature (length units) of the soft c-transform, or ``None``.

    Returns:
        The derivative (length/time), a scalar.
    """
    m = y.shape[0]
    b = min(int(block), m)
    k = -(-m // b)
    pad = k * b - m
    yp = jnp.concatenate([y, jnp.broadcast_to(y[:1], (pad,) + y.shape[1:])]).reshape(k, b, -1)
    vyp = jnp.concatenate([vy, jnp.broadcast_to(vy[:1], (pad,) + vy.shape[1:])]).reshape(k, b, -1)
    mask = (jnp.arange(k * b) < m).reshape(k, b)

    def one(args):
        yb, vyb, mb = args
        c = _euclid_block(x, yb)  # (n, b)
        if epsilon is None:
            i = jnp.argmin(c - f[:, None], axis=0)
            e = x[i] - yb
            e = e / jnp.maximum(jnp.linalg.norm(e, axis=1, keepdims=True), 1e-300)
            return jnp.sum(jnp.where(mb, jnp.sum(e * (vx[i] - vyb), 1), 0.0))
        w = jax.nn.softmax(-(c - f[:, None]) / epsilon, axis=0)  # π(i | j), columns sum to 1
        # e_ij·(v_i - v_j) = (x_i·v_i - x_i·v_j - y_j·v_i + y_j·v_j)/c_ij, as matrix products
        inv = w / jnp.maximum(c, 1e-300)
        xv = jnp.sum(x * vx, 1)
        term = (inv.T @ xv - jnp.sum((inv.T @ x) * vyb, 1) - jnp.sum(yb * (inv.T @ vx), 1)
                + jnp.sum(inv, 0) * jnp.sum(yb * vyb, 1))
        return jnp.sum(jnp.where(mb, term, 0.0))

    return jnp.sum(jax.lax.map(one, (yp, vyp, mask))) / m


class Chi2Estimate(NamedTuple):
    """Monte-Carlo $\\chi^2$ (see [`chi2_monte_carlo`][jaxsa.relations.estimators.chi2_monte_carlo]).

    Attributes:
        value: the estimate; half_width: half-width of its 95% interval (normal approximation);
        tail_index: Hill estimate $\\hat\\alpha$ of the tail of the likelihood ratio under
            $\\tilde P$; ``finite``: $\\hat\\alpha > 1$ (the mean exists; ``value`` is then
            ``inf`` when not); ``reliable``: $\\hat\\alpha > 2$ (the variance exists too, so the
            interval means something); n: samples.
    """

    value: jax.Array
    half_width: jax.Array
    tail_index: jax.Array
    finite: jax.Array
    reliable: jax.Array
    n: int


def chi2_monte_carlo(p_tilde, p, key, n: int) -> Chi2Estimate:
    r"""$D_0 = \chi^2(\tilde P\|P) = \mathbb E_{\tilde P}[r] - 1$, $r = \tilde P/P$ (Eq. 78), by
    ``n`` samples of $\tilde P$, with a test for divergence.

    $\chi^2$ is finite exactly when $r$ has a finite mean under $\tilde P$. The Hill estimator
    on the $k = \lceil\sqrt n\rceil$ largest ratios, $\hat\alpha = 1/\overline{\ln(r_{(i)}/r_{(k+1)})}$,
    estimates the tail index of $r$ ($P(r > s)\sim s^{-\alpha}$): $\hat\alpha \le 1$ is reported as
    divergent (``value = inf``), $1 < \hat\alpha \le 2$ as finite but with an infinite variance,
    so that the interval is not ``reliable``. (A Gaussian start with $\tilde s^2 \ge 2s^2$ against
    Gaussian tails has $\alpha \le 1$; a bounded ratio has $\alpha = \infty$.)

    Args:
        p_tilde, p: densities with ``log_density(x)``; ``p_tilde`` also ``sample(key, shape)``.
        key: PRNG key; n: samples (>= 100).
    """
    x = p_tilde.sample(key, (int(n),))
    lr = p_tilde.log_density(x) - p.log_density(x)
    r = jnp.exp(lr)
    k = max(int(jnp.ceil(jnp.sqrt(n))), 10)
    top = jax.lax.top_k(lr, k + 1)[0]  # log-ratios, descending
    alpha = 1.0 / jnp.maximum(jnp.mean(top[:k] - top[k]), 1e-300)
    val = jnp.mean(r) - 1.0
    hw = 1.96 * jnp.std(r, ddof=1) / jnp.sqrt(n)
    finite = alpha > 1.0
    return Chi2Estimate(jnp.where(finite, val, jnp.inf), jnp.where(finite, hw, jnp.inf), alpha,
                        finite, alpha > 2.0, int(n))


def w1_paired(x, y, rtol, soft=False, iterations: int = 300):
    r"""$W_1$ between equal uniform clouds ``x``, ``y`` ``(n, d)`` whose rows are paired (common
    random numbers): ``(value, lower, upper, potential on x)``, the midpoint of the best of three
    certified brackets — [`w1_point_cloud`][jaxsa.metrics.w1_point_cloud]'s, the pairing
    $x_i \leftrightarrow y_i$ (a coupling: $W_1 \le \overline{|x_i - y_i|}$) and the linear
    potential along the mean difference ($W_1 \ge |\bar x - \bar y|$); both extra bounds are
    exact for a translated cloud. In 1D (``d = 1``) the exact sorted formula. With ``soft`` a
    fifth entry, and the fourth is the solver's entropic potential with its ε appended
    (for [`w1_flow_derivative`][jaxsa.relations.estimators.w1_flow_derivative]). The solver runs
    ``iterations`` Sinkhorn iterations per ε stage to a marginal threshold of 1e-5, dense up to
    4,096² pairs."""
    if x.shape[1] == 1:
        v = jnp.mean(jnp.abs(jnp.sort(x[:, 0]) - jnp.sort(y[:, 0])))
        return (v, v, v, None, None) if soft else (v, v, v, None)
    lo_c = jnp.linalg.norm(jnp.mean(x, 0) - jnp.mean(y, 0))
    up_c = jnp.mean(jnp.linalg.norm(x - y, axis=1))
    if not soft and is_concrete(x, y) and bool(up_c - lo_c <= 2 * rtol * lo_c):
        return 0.5 * (lo_c + up_c), lo_c, up_c, None  # certified already: no solve needed
    dense = x.shape[0] * y.shape[0] <= 4096**2
    r = w1_point_cloud(x, y, rtol=rtol, iterations_per_stage=int(iterations), threshold=1e-5,
                       method="dense" if dense else "auto")
    # two more certificates for equal uniform clouds, tight for common random numbers: the
    # pairing x_i <-> y_i is a coupling (upper bound) and f(x) = e·x with e the unit mean
    # difference is 1-Lipschitz (lower bound); both are exact for a translated cloud
    lo, up = jnp.maximum(r.lower, lo_c), jnp.minimum(r.upper, up_c)
    if soft and r.entropic_potential is not None:
        return 0.5 * (lo + up), lo, up, r.entropic_potential, r.epsilon
    return (0.5 * (lo + up), lo, up, r.potential) + ((None,) if soft else ())


def map_each(fn, args):
    """``fn`` over the leading axis of ``args``: a Python loop on concrete arrays (so that each
    W1 solve may take the fast path for large clouds), ``lax.map`` under tracing."""
    if is_concrete(args):
        n = jax.tree_util.tree_leaves(args)[0].shape[0]
        outs = [fn(*jax.tree.map(lambda a, i=i: a[i], args)) for i in range(n)]
        return jax.tree.map(lambda *a: jnp.stack(a), *outs)
    return jax.lax.map(lambda a: fn(*a), args)


def legendre_derivative(t, w, t0, t1, degree):
    """Derivative at ``t`` of the least-squares Legendre series of ``degree`` through the values
    ``w`` at ``t`` (on ``[t0, t1]``)."""
    x = 2 * (t - t0) / (t1 - t0) - 1
    p, dp = [jnp.ones_like(x), x], [jnp.zeros_like(x), jnp.ones_like(x)]
    for n in range(1, degree):
        p.append(((2 * n + 1) * x * p[n] - n * p[n - 1]) / (n + 1))
        dp.append((n + 1) * p[n] + x * dp[n])
    V, dV = jnp.stack(p[: degree + 1], 1), jnp.stack(dp[: degree + 1], 1)
    coef = jnp.linalg.lstsq(V, w)[0]
    return dV @ coef * 2 / (t1 - t0)


def isotropic_gaussian(p):
    """``(mean (d,), std)`` of a one-component isotropic
    [`GaussianMixture`][jaxsa.densities.GaussianMixture], else ``None``."""
    if isinstance(p, GaussianMixture) and p.weights.shape[0] == 1:
        return jnp.atleast_1d(p.means[0]), p.scales[0]
    return None


def start_chi2(prior, start, key, n: int):
    r"""$D_0 = \chi^2(\tilde P_\tau\|P_\tau)$ (Eq. 78) of a perturbed start: the closed form for
    two isotropic Gaussians ([`chi2_isotropic_gaussian`][jaxsa.thermo.monte_carlo.chi2_isotropic_gaussian],
    round-off as its error), else [`chi2_monte_carlo`][jaxsa.relations.estimators.chi2_monte_carlo]
    with ``n`` samples. Returns ``(value, half-width, finite, reliable, tail index)``."""
    a, b = isotropic_gaussian(start), isotropic_gaussian(prior)
    if a is not None and b is not None:
        v = chi2_isotropic_gaussian(a[0], a[1], b[0], b[1])
        z = 16 * jnp.finfo(v.dtype).eps * jnp.abs(v)  # a closed form: round-off only
        return v, z, jnp.isfinite(v), jnp.asarray(True), jnp.asarray(jnp.inf, v.dtype)
    e = chi2_monte_carlo(start, prior, key, n)
    return e.value, e.half_width, e.finite, e.reliable, e.tail_index
