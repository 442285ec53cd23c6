r"""Parameterised schedule families that satisfy [spec §3][spec-3]'s conditions by construction.

* [`Interpolated`][jaxsa.schedules.families.Interpolated] — $(m_t, \sigma_t) = (1-\lambda)(1-s, s) + \lambda(\cos\tfrac{\pi s}2,
  \sin\tfrac{\pi s}2)$, ``s = t/τ``: cond-OT at λ = 0, cosine at λ = 1. For λ ∈ [0, 1]
  $\sigma_t/m_t$ is a ratio of an increasing and a decreasing positive function, so
  Eq. 24 holds.
* [`PolarBernstein`][jaxsa.schedules.families.PolarBernstein] — polar coordinates $(m_t, \sigma_t) = \rho(s)(\cos\theta(s),
  \sin\theta(s))$. Since $\sigma/m = \tan\theta$, Eq. 24 is exactly $\dot\theta \ge 0$.
  θ is a Bernstein polynomial with non-decreasing coefficients (cumulative softmax of free
  parameters) from θ(0) = 0 to θ(1) = π/2, and $\rho = \exp(s(1-s)\,b(s))$ with a free
  Bernstein polynomial ``b``, so $m_0 = 1, \sigma_0 = 0$ and
  $P_\tau = \mathcal N(0,1)$ for every parameter value. Equal ``theta_logits`` and zero
  ``rho_coeffs`` give the cosine schedule exactly.

All parameters are unconstrained arrays: ``jax.grad`` and optax optimise them directly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from jaxsa.schedules.standard import Schedule

__all__ = ["Interpolated", "PolarBernstein", "bernstein"]


@jax.custom_jvp
def _int_pow(x, k):
    """``x ** k`` for a float ``x`` and an integer array ``k``: `lax.pow`, which is what
    `jnp.power` calls for them. Its derivative is JAX's own rule for an integer exponent
    (0 where ``k = 0``, else ``k x^(k-1)``), written here with explicit casts: JAX's rule
    promotes implicitly and fails under ``jax_numpy_dtype_promotion="strict"``."""
    x, k = jnp.broadcast_arrays(x, k)
    return jax.lax.pow(x, k)


@_int_pow.defjvp
def _int_pow_jvp(primals, tangents):
    x, k = jnp.broadcast_arrays(*primals)
    dx = jnp.broadcast_to(tangents[0], x.shape)
    kf = k.astype(x.dtype)
    jac = jnp.where(k == 0, jnp.zeros_like(kf),
                    jnp.where(k == 0, jnp.ones_like(kf), kf) * jax.lax.pow(x, kf - 1.0))
    # the primal through `_int_pow` again, so that a second derivative (a gradient through a
    # sampler that itself differentiates the schedule) also takes this rule, not JAX's
    return _int_pow(x, k), dx * jac


def bernstein(coeffs, s):
    r"""$\sum_{k=0}^{n} c_k \binom nk s^k (1-s)^{n-k}$ for coefficients ``(n+1,)``."""
    n = coeffs.shape[-1] - 1
    k = jnp.arange(n + 1)
    kf = k.astype(jnp.result_type(float))  # the default float dtype, as implicit promotion gave
    log_binom = gammaln(n + 1.0) - gammaln(kf + 1.0) - gammaln(n - kf + 1.0)
    s = jnp.asarray(s)[..., None]
    kb = k[(None,) * (s.ndim - 1)]  # explicit broadcasting over the batch axes of s
    basis = jnp.exp(log_binom)[(None,) * (s.ndim - 1)] * _int_pow(s, kb) * _int_pow(1 - s, n - kb)
    return jnp.sum(coeffs[(None,) * (basis.ndim - coeffs.ndim)] * basis, axis=-1)


class Interpolated(Schedule):
    """Convex combination of cond-OT (``lam = 0``) and cosine (``lam = 1``); ``lam`` in [0, 1]."""

    ends_at_noise = True

    lam: jax.Array

    def __init__(self, lam=0.5, tau=1.0):
        dt = jnp.result_type(float)
        self.lam = jnp.asarray(lam, dtype=dt)
        self.tau = jnp.asarray(tau, dtype=dt)

    def m(self, t):
        s = t / self.tau
        return (1 - self.lam) * (1 - s) + self.lam * jnp.cos(0.5 * jnp.pi * s)

    def sigma_sq(self, t):
        s = t / self.tau
        return ((1 - self.lam) * s + self.lam * jnp.sin(0.5 * jnp.pi * s)) ** 2


class PolarBernstein(Schedule):
    r"""Flexible monotone family in polar coordinates (module docstring).

    Args:
        theta_logits: ``(n,)`` free parameters; the increments of θ's Bernstein coefficients
            are ``softmax(theta_logits)`` (degree ``n``).
        rho_coeffs: ``(r,)`` free coefficients of ``b`` in $\rho = e^{s(1-s)b(s)}$.
        tau: duration.
    """

    ends_at_noise = True

    theta_logits: jax.Array
    rho_coeffs: jax.Array

    def __init__(self, theta_logits, rho_coeffs, tau=1.0):
        dt = jnp.result_type(float)
        self.theta_logits = jnp.asarray(theta_logits, dtype=dt)
        self.rho_coeffs = jnp.asarray(rho_coeffs, dtype=dt)
        self.tau = jnp.asarray(tau, dtype=dt)

    @classmethod
    def cosine(cls, degree=8, rho_degree=4, tau=1.0):
        """The member equal to the cosine schedule."""
        return cls(jnp.zeros(degree), jnp.zeros(rho_degree), tau)

    def theta(self, s):
        inc = jax.nn.softmax(self.theta_logits)
        coeffs = jnp.concatenate([jnp.zeros(1, inc.dtype), jnp.cumsum(inc)])
        return 0.5 * jnp.pi * bernstein(coeffs, s)

    def rho(self, s):
        return jnp.exp(s * (1 - s) * bernstein(self.rho_coeffs, s))

    def m(self, t):
        s = t / self.tau
        return self.rho(s) * jnp.cos(self.theta(s))

    def sigma_sq(self, t):
        s = t / self.tau
        return (self.rho(s) * jnp.sin(self.theta(s))) ** 2
