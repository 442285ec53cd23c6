r"""Probability densities: Gaussian mixtures (1D and isotropic d-dimensional) and uniform.

Every density is an `equinox.Module` pytree with array parameters, so batches of
densities of one kind vmap. Points have shape ``batch + event_shape``: ``event_shape`` is
``()`` in 1D (``means`` of shape ``(K,)``) and ``(d,)`` for an isotropic mixture in
$\mathbb R^d$ (``means`` of shape ``(K, d)``).

1D densities also provide ``cdf``, ``quantile`` and ``normal_score_quantile``:
$Q(\Phi(z))$, the point whose CDF equals the standard-normal CDF at ``z``. Working in
the normal score ``z`` instead of the level ``u = Φ(z)`` keeps full float64 precision far in
both tails (``u`` near 1 would lose it), which the quantile transport of the estimated process
relies on.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, logsumexp, ndtr

from jaxsa._checks import check, format_number

__all__ = [
    "Density",
    "GaussianMixture",
    "Uniform",
    "gaussian",
    "paper_data",
    "paper_prior",
    "paper_perturbations",
    "PERTURBATION_NAMES",
]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class Density(eqx.Module):
    r"""Interface of a density on $\mathbb R^d$ (or $\mathbb R$)."""

    def log_density(self, x):
        raise NotImplementedError

    def density(self, x):
        """Probability density at ``x`` (units 1/length^d)."""
        return jnp.exp(self.log_density(x))

    def sample(self, key, shape=()):
        raise NotImplementedError

    @property
    def event_shape(self) -> tuple:
        return ()


class GaussianMixture(Density):
    r"""Isotropic Gaussian mixture $\sum_k w_k \mathcal N(\mu_k, s_k^2 I)$.

    Args:
        weights: ``(K,)`` non-negative, summing to one.
        means: ``(K,)`` in 1D or ``(K, d)``.
        scales: ``(K,)`` standard deviations $s_k > 0$ (length units).

    Raises ``ValueError`` (checked before any computation) for negative or zero scales,
    negative weights, weights not summing to one, or mismatched shapes.
    """

    weights: jax.Array
    means: jax.Array
    scales: jax.Array
    _quantile_iterations = 64  # cap of the safeguarded Newton (rtsafe) loop, which stops early

    def __init__(self, weights, means, scales):
        dt = jnp.result_type(float)
        weights = jnp.asarray(weights, dtype=dt)
        means = jnp.asarray(means, dtype=dt)
        scales = jnp.asarray(scales, dtype=dt)
        if weights.ndim != 1 or scales.shape != weights.shape or means.shape[:1] != weights.shape:
            raise ValueError(
                "GaussianMixture: `weights` and `scales` must have shape (K,) and `means` "
                f"(K,) or (K, d); got weights {weights.shape}, means {means.shape}, "
                f"scales {scales.shape}."
            )
        if means.ndim > 2:
            raise ValueError(f"GaussianMixture: `means` must be (K,) or (K, d), got {means.shape}.")
        weights = check(jnp.all(weights >= 0), "GaussianMixture: `weights` must be >= 0.", weights)
        weights = check(
            jnp.abs(jnp.sum(weights) - 1.0) <= 1e-6,
            "GaussianMixture: `weights` must sum to one (got sum "
            f"{format_number(jnp.sum(weights), '.6g')}).",
            weights,
        )
        scales = check(
            jnp.all(scales > 0) & jnp.all(jnp.isfinite(scales)),
            "GaussianMixture: `scales` (standard deviations) must be finite and > 0; a "
            f"negative or zero variance is not a density (got {format_number(jnp.min(scales), '.6g')}).",
            scales,
        )
        means = check(jnp.all(jnp.isfinite(means)), "GaussianMixture: `means` must be finite.", means)
        self.weights, self.means, self.scales = weights, means, scales

    @classmethod
    def unchecked(cls, weights, means, scales) -> "GaussianMixture":
        """Build from arrays already known to be valid (inside jitted code), skipping checks."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "weights", weights)
        object.__setattr__(obj, "means", means)
        object.__setattr__(obj, "scales", scales)
        return obj

    @property
    def event_shape(self) -> tuple:
        return tuple(self.means.shape[1:])

    @property
    def dim(self) -> int:
        return 1 if self.means.ndim == 1 else self.means.shape[1]

    def component_log_densities(self, x):
        r"""$\ln w_k + \ln \mathcal N(x|\mu_k, s_k^2 I)$, shape ``batch + (K,)``."""
        x = jnp.asarray(x)
        if self.means.ndim == 1:
            diff = x[..., None] - self.means[(None,) * x.ndim]
            sq = diff**2
        else:
            diff = x[..., None, :] - self.means[(None,) * (x.ndim - 1)]
            sq = jnp.sum(diff**2, axis=-1)
        d = self.dim
        lead = (None,) * (sq.ndim - 1)  # the batch axes (explicit broadcasting)
        return (
            jnp.log(self.weights)[lead]
            - 0.5 * sq / self.scales[lead] ** 2
            - d * (jnp.log(self.scales)[lead] + _LOG_SQRT_2PI)
        )

    def log_density(self, x):
        r"""$\ln q(x)$; ``x`` of shape ``batch + event_shape``, result ``batch``."""
        return logsumexp(self.component_log_densities(x), axis=-1)

    def score(self, x):
        r"""$\nabla \ln q(x)$, shape of ``x``."""
        x = jnp.asarray(x)
        r = jax.nn.softmax(self.component_log_densities(x), axis=-1)
        lead = (None,) * (r.ndim - 1)  # the batch axes (explicit broadcasting)
        if self.means.ndim == 1:
            return jnp.sum(r * (self.means[lead] - x[..., None]) / self.scales[lead] ** 2, axis=-1)
        return jnp.sum(
            (r / self.scales[lead] ** 2)[..., None] * (self.means[lead] - x[..., None, :]), axis=-2
        )

    def sample(self, key, shape=()):
        """Draw samples of shape ``shape + event_shape`` with the explicit PRNG ``key``."""
        k1, k2 = jax.random.split(key)
        comp = jax.random.choice(k1, self.weights.shape[0], shape=shape, p=self.weights)
        eps = jax.random.normal(k2, shape + self.event_shape, dtype=self.means.dtype)
        scale = self.scales[comp]
        if self.means.ndim == 2:
            scale = scale[..., None]
        return self.means[comp] + scale * eps

    def mean(self):
        return jnp.tensordot(self.weights, self.means, axes=1)

    def variance(self):
        """Total variance per coordinate."""
        mu = self.mean()
        if self.means.ndim == 1:
            return jnp.sum(self.weights * (self.scales**2 + (self.means - mu) ** 2))
        return jnp.sum(
            self.weights * (self.scales**2 + jnp.mean((self.means - mu[None, :]) ** 2, axis=-1))
        )

    # ---- 1D only -----------------------------------------------------------------
    def _require_1d(self, what):
        if self.means.ndim != 1:
            raise ValueError(f"GaussianMixture.{what} is defined in 1D only (means of shape (K,)).")

    def log_cdf(self, x):
        self._require_1d("log_cdf")
        x = jnp.asarray(x)
        lead = (None,) * x.ndim
        return logsumexp(jnp.log(self.weights)[lead]
                         + log_ndtr((x[..., None] - self.means[lead]) / self.scales[lead]), -1)

    def log_sf(self, x):
        r"""Log survival function $\ln(1 - F(x))$, accurate in the right tail."""
        self._require_1d("log_sf")
        x = jnp.asarray(x)
        lead = (None,) * x.ndim
        return logsumexp(jnp.log(self.weights)[lead]
                         + log_ndtr((self.means[lead] - x[..., None]) / self.scales[lead]), -1)

    def cdf(self, x):
        """Cumulative distribution $F(x)$ (1D)."""
        self._require_1d("cdf")
        x = jnp.asarray(x)
        lead = (None,) * x.ndim
        return jnp.sum(self.weights[lead] * ndtr((x[..., None] - self.means[lead]) / self.scales[lead]), -1)

    def normal_score_quantile(self, z):
        r"""$Q(\Phi(z))$ (1D): the point ``x`` with $F(x) = \Phi(z)$.

        Solved in log space by Newton's method safeguarded by bisection on a bracket that
        provably contains the root (right-tail levels are mirrored onto the left tail, so
        only $\ln F$ is needed and no precision is lost near ``u = 1``): exact to
        float64 round-off for ``|z|`` up to ~37.
        """
        self._require_1d("normal_score_quantile")
        z = jnp.asarray(z, dtype=self.means.dtype)
        if self.weights.shape[0] == 1:  # a Gaussian: exact
            return self.means[0] + self.scales[0] * z
        # Mirror the right tail onto the left one (x -> -x, means -> -means), so that only
        # ln F is ever needed: solve g(y) = ln F_mirror(y) - ln Φ(-|z|) = 0, g increasing.
        sgn = jnp.where(z > 0, -1.0, 1.0)
        target = log_ndtr(sgn * z)  # = ln Φ(-|z|), with the derivative of the branch taken
        ex = (slice(None),) + (None,) * z.ndim
        mu = self.means[ex] * sgn[None]  # (K, *batch)
        s = self.scales[ex]
        logw = jnp.log(self.weights)[ex]

        def g_and_slope(y):
            a = (y[None] - mu) / s
            lc = logsumexp(logw + log_ndtr(a), axis=0)
            lp = logsumexp(logw - 0.5 * a**2 - jnp.log(s) - _LOG_SQRT_2PI, axis=0)
            return lc - target, jnp.exp(lp - lc)  # g and g' = p/F

        # Tight bracket from the components (a_k = (y - mu_k)/s_k, root y*):
        #   F <= max_k Φ(a_k)  gives  y* >= min_k(mu_k + s_k z);
        #   F >= min_k Φ(a_k)  gives  y* <= max_k(mu_k + s_k z);
        #   w_k Φ(a_k) <= F    gives  y* <= mu_k + s_k Φ^{-1}(Φ(z)/w_k) where Φ(z) < w_k.
        zz = sgn * z
        from jax.scipy.special import ndtri

        lo = jnp.min(mu + s * zz[None], axis=0)
        ratio = jnp.exp(target[None] - logw)
        hi_k = jnp.where(ratio < 1.0, mu + s * ndtri(jnp.minimum(ratio, 1.0)), jnp.inf)
        hi = jnp.minimum(jnp.max(mu + s * zz[None], axis=0), jnp.min(hi_k, axis=0))
        lo, hi = lo - 1e-12 * (1 + jnp.abs(lo)), hi + 1e-12 * (1 + jnp.abs(hi))

        # rtsafe: a Newton step is taken only if it stays inside the bracket and moves less
        # than half the step before last; otherwise bisect. The bracket then shrinks at least
        # as fast as bisection every other iteration, so the loop cannot oscillate.
        def body(state):
            i, y, a, b, step_old, step = state
            g, slope = g_and_slope(y)
            a = jnp.where(g < 0, y, a)
            b = jnp.where(g < 0, b, y)
            newton = y - g / slope
            ok = (jnp.isfinite(newton) & (newton >= a) & (newton <= b)
                  & (jnp.abs(2.0 * (newton - y)) <= jnp.abs(step_old)))
            y_new = jnp.where(ok, newton, 0.5 * (a + b))
            y_new = jnp.where(g == 0, y, y_new)  # exact root found
            return i + 1, y_new, a, b, step, y_new - y

        # Stop once every node's last step was a converged Newton step (the error after a
        # Newton step of size δ is O(δ²), so |δ| ≤ 4ε(1 + |y|) leaves round-off only), or
        # after the cap: typically 6–12 iterations instead of 64.
        eps = 4.0 * jnp.finfo(lo.dtype).eps

        def cond(state):
            i, y, _, _, _, step = state
            return (i < self._quantile_iterations) & jnp.any(jnp.abs(step) > eps * (1.0 + jnp.abs(y)))

        width = hi - lo
        state = (jnp.zeros((), jnp.int32), lo, lo, hi, 2.0 * width, width)
        y = jax.lax.stop_gradient(jax.lax.while_loop(cond, body, state)[1])
        # Derivatives (the loop has none in reverse mode): one more Newton step from the
        # converged root, whose value moves by round-off only and whose derivative is the
        # implicit-function one, dy = -dg/g'.
        g, slope = g_and_slope(y)
        ok = jnp.isfinite(g) & jnp.isfinite(slope) & (slope > 0)
        y = y - jnp.where(ok, g, 0.0) / jnp.where(ok, slope, 1.0)
        return sgn * y

    def normal_score(self, x):
        r"""$\Phi^{-1}(F(x))$ (1D), computed from the tail that keeps precision."""
        self._require_1d("normal_score")
        x = jnp.asarray(x, dtype=self.means.dtype)
        if self.weights.shape[0] == 1:
            return (x - self.means[0]) / self.scales[0]
        return _normal_score_from_logs(self.log_cdf(x), self.log_sf(x))

    def quantile(self, u):
        """Quantile function $F^{-1}(u)$ for ``u`` in (0, 1) (1D)."""
        from jax.scipy.special import ndtri

        return self.normal_score_quantile(ndtri(jnp.asarray(u, dtype=self.means.dtype)))


class Uniform(Density):
    """Uniform density on ``[low, high]`` (1D).

    Raises ``ValueError`` unless ``low < high``.
    """

    low: jax.Array
    high: jax.Array

    def __init__(self, low, high):
        dt = jnp.result_type(float)
        low, high = jnp.asarray(low, dtype=dt), jnp.asarray(high, dtype=dt)
        low = check(jnp.all(low < high), "Uniform: need `low` < `high`.", low)
        self.low, self.high = low, high

    def log_density(self, x):
        inside = (x >= self.low) & (x <= self.high)
        return jnp.where(inside, -jnp.log(self.high - self.low), -jnp.inf)

    def cdf(self, x):
        return jnp.clip((x - self.low) / (self.high - self.low), 0.0, 1.0)

    def quantile(self, u):
        return self.low + (self.high - self.low) * u

    def normal_score_quantile(self, z):
        r"""$Q(\Phi(z))$, computed from whichever tail keeps precision."""
        z = jnp.asarray(z, dtype=self.low.dtype)
        width = self.high - self.low
        return jnp.where(z <= 0, self.low + width * ndtr(z), self.high - width * ndtr(-z))

    def normal_score(self, x):
        r"""$\Phi^{-1}(F(x))$ for ``x`` inside the support."""
        from jax.scipy.special import ndtri

        x = jnp.asarray(x, dtype=self.low.dtype)
        width = self.high - self.low
        u, v = (x - self.low) / width, (self.high - x) / width
        return jnp.where(u <= v, ndtri(u), -ndtri(v))

    def sample(self, key, shape=()):
        return jax.random.uniform(key, shape, self.low.dtype, self.low, self.high)

    def mean(self):
        return 0.5 * (self.low + self.high)

    def variance(self):
        return (self.high - self.low) ** 2 / 12.0


def gaussian(mean=0.0, std=1.0) -> GaussianMixture:
    r"""A 1D Gaussian $\mathcal N(\mu, s^2)$ as a one-component mixture."""
    return GaussianMixture(jnp.ones(1), jnp.reshape(jnp.asarray(mean, jnp.result_type(float)), (1,)),
                           jnp.reshape(jnp.asarray(std, jnp.result_type(float)), (1,)))


def paper_data() -> GaussianMixture:
    r"""The paper's data (Eq. 95, [spec §7][spec-7]): $\tfrac12\mathcal N(\sqrt{0.35}, 0.3^2) + \tfrac12\mathcal N(-\sqrt{0.35}, 0.3^2)$.

    Its variance is 0.35 + 0.09 = 0.44.
    """
    a = jnp.sqrt(jnp.asarray(0.35, jnp.result_type(float)))
    return GaussianMixture(jnp.array([0.5, 0.5]), jnp.stack([a, -a]), jnp.array([0.3, 0.3]))


def paper_prior() -> GaussianMixture:
    r"""$P_\tau = \mathcal N(0, 1)$, the end of the forward process for cosine and cond-OT."""
    return gaussian(0.0, 1.0)


PERTURBATION_NAMES = ("mean", "variance", "mixture", "uniform")


def paper_perturbations() -> dict:
    r"""The four perturbed starts $\tilde P_\tau$ of Table I ([spec §7][spec-7]), keyed by name.

    ``mean``: N(1, 1); ``variance``: N(0, 0.8²);
    ``mixture``: ⅓[N(-1/0.94, (0.3/0.94)²) + N(0, (0.8/0.94)²) + N(1/0.94, (0.3/0.94)²)];
    ``uniform``: U[-√3, √3] (unit variance).
    """
    c = 0.94
    r3 = jnp.sqrt(jnp.asarray(3.0, jnp.result_type(float)))
    return {
        "mean": gaussian(1.0, 1.0),
        "variance": gaussian(0.0, 0.8),
        "mixture": GaussianMixture(
            jnp.full(3, 1.0 / 3.0),
            jnp.array([-1.0 / c, 0.0, 1.0 / c]),
            jnp.array([0.3 / c, 0.8 / c, 0.3 / c]),
        ),
        "uniform": Uniform(-r3, r3),
    }


def _normal_score_from_logs(log_cdf, log_sf):
    r"""$\Phi^{-1}(F)$ from $\ln F$ and $\ln(1-F)$, precise in both tails."""
    from jax.scipy.special import ndtri

    left = log_cdf <= log_sf
    return jnp.where(left, ndtri(jnp.exp(log_cdf)), -ndtri(jnp.exp(log_sf)))
