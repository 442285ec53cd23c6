"""Experiments: one module per figure or study (settings + runner); used by the CLI."""

import jax.numpy as jnp


def eta_interval(delta_lo, delta_hi, tau, D0):
    r"""Interval of the response $\eta = \Delta W_1^2/(\tau D_0)$ (Eq. 77) given an interval
    ``[delta_lo, delta_hi]`` of $\Delta W_1$ (length units): the image of the interval under
    the square, 0 at the bottom when it contains 0. Scalars or arrays (traceable); returns
    ``(eta_lo, eta_hi)`` (dimensionless per time)."""
    sq_hi = jnp.maximum(delta_lo**2, delta_hi**2)
    sq_lo = jnp.where(delta_lo * delta_hi <= 0, 0.0, jnp.minimum(delta_lo**2, delta_hi**2))
    return sq_lo / (tau * D0), sq_hi / (tau * D0)
