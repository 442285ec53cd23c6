r"""Noise schedules of conditional Gaussian paths (SPEC §3, Eqs. 22–32).

A schedule gives the mean scale :math:`m_t` and the noise scale :math:`\sigma_t` of the
conditional path :math:`P^c_t(x|y) = \mathcal N(x | m_t y, \sigma_t^2 I)` on :math:`t\in[0,\tau]`.
From them follow (Eqs. 22–23)

.. math::

    f_t(x) = (\partial_t \ln m_t)\, x, \qquad
    T_t = m_t \sigma_t \partial_t(\sigma_t/m_t) = \partial_t(\sigma_t^2/2) - \sigma_t^2 \partial_t \ln m_t .

Schedules are :class:`equinox.Module` pytrees: their parameters (``tau``, ``beta_min``, …) are
array leaves, so a batch of schedules of one kind is one pytree with a leading axis and
``jax.vmap`` sweeps over it. Time derivatives come from automatic differentiation
(``jax.jvp``), never finite differences. Each schedule defines :math:`\sigma_t^2` directly
where :math:`\sigma_t \sim \sqrt t` (VP, VE), so :math:`\sigma_t\dot\sigma_t =
\tfrac12\partial_t\sigma_t^2` stays finite at :math:`t=0`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxsa._checks import check, is_concrete

__all__ = [
    "Schedule",
    "ScheduleValues",
    "Cosine",
    "CondOT",
    "VPLinear",
    "VEGeometric",
    "Custom",
    "check_schedule",
]


class ScheduleValues(NamedTuple):
    """Schedule coefficients at one time (scalars, or arrays of the shape of ``t``).

    ``sigma_dsigma`` is :math:`\\sigma_t\\dot\\sigma_t = \\tfrac12 \\partial_t \\sigma_t^2`.
    """

    m: jax.Array
    sigma: jax.Array
    dm: jax.Array
    sigma_sq: jax.Array
    sigma_dsigma: jax.Array


class Schedule(eqx.Module):
    """Base class: subclasses define :meth:`m` and :meth:`sigma_sq` (or :meth:`sigma`).

    Attributes:
        tau: duration :math:`\\tau > 0` of the forward process (time units).
    """

    tau: jax.Array

    # -- to be provided by subclasses -------------------------------------------------
    def m(self, t):
        """Mean scale :math:`m_t` (dimensionless); ``t`` a scalar time in ``[0, tau]``."""
        raise NotImplementedError

    def sigma_sq(self, t):
        """Noise variance :math:`\\sigma_t^2` (length² units)."""
        return self.sigma(t) ** 2

    def sigma(self, t):
        """Noise scale :math:`\\sigma_t` (length units)."""
        return jnp.sqrt(self.sigma_sq(t))

    # -- derived -------------------------------------------------------------------
    def values(self, t) -> ScheduleValues:
        """:math:`m_t, \\sigma_t, \\dot m_t, \\sigma_t^2, \\sigma_t\\dot\\sigma_t` at ``t``.

        Derivatives by forward-mode autodiff; works elementwise on an array ``t``.
        """
        t = jnp.asarray(t, dtype=jnp.result_type(float))
        one = jnp.ones_like(t)
        m, dm = jax.jvp(lambda s: jnp.broadcast_to(self.m(s), jnp.shape(s)), (t,), (one,))
        s2, ds2 = jax.jvp(
            lambda s: jnp.broadcast_to(self.sigma_sq(s), jnp.shape(s)), (t,), (one,)
        )
        return ScheduleValues(m, jnp.sqrt(s2), dm, s2, 0.5 * ds2)

    def temperature(self, t):
        """Temperature :math:`T_t = \\sigma\\dot\\sigma - \\sigma^2\\dot m/m` (Eq. 23).

        Returns ``+inf`` where :math:`m_t = 0` and the noise still grows (the end point of
        cosine and cond-OT): the temperature genuinely diverges there, while the velocity
        field and :math:`T_t\\dot S_t^{tot}` stay finite.
        """
        v = self.values(t)
        num = v.sigma_sq * v.dm
        safe_m = jnp.where(v.m == 0, 1.0, v.m)
        ratio = jnp.where(v.m == 0, jnp.where(num == 0, 0.0, jnp.sign(num) * jnp.inf),
                          num / safe_m)
        return v.sigma_dsigma - ratio

    def drift_rate(self, t):
        """:math:`\\partial_t \\ln m_t` (1/time): the force is :math:`f_t(x) = \\partial_t\\ln m_t\\, x`
        (Eq. 22); ``-inf`` where :math:`m_t=0` with :math:`\\dot m_t<0`."""
        v = self.values(t)
        safe_m = jnp.where(v.m == 0, 1.0, v.m)
        return jnp.where(v.m == 0, jnp.where(v.dm == 0, 0.0, jnp.sign(v.dm) * jnp.inf),
                         v.dm / safe_m)

    def force(self, t, x):
        """External force :math:`f_t(x) = (\\partial_t \\ln m_t) x` (Eq. 22); ``x`` any shape."""
        return self.drift_rate(t) * x

    def monotonicity(self, t):
        """:math:`m_t^2\\,\\partial_t(\\sigma_t/m_t) = m_t\\dot\\sigma_t - \\sigma_t\\dot m_t`.

        Eq. 24 requires it to be :math:`\\ge 0` (so that :math:`T_t \\ge 0`); this form stays
        finite where :math:`m_t = 0`. Computed as :math:`(m\\,\\sigma\\dot\\sigma -
        \\sigma^2\\dot m)/\\sigma` away from :math:`\\sigma = 0`.
        """
        v = self.values(t)
        num = v.m * v.sigma_dsigma - v.sigma_sq * v.dm
        safe = jnp.where(v.sigma > 0, v.sigma, 1.0)
        return jnp.where(v.sigma > 0, num / safe, num)


class Cosine(Schedule):
    """Cosine schedule (Eq. 32): :math:`m_t = \\cos(\\pi t/2\\tau)`, :math:`\\sigma_t = \\sin(\\pi t/2\\tau)`.

    The geodesic of the VP family on the unit circle :math:`m^2 + \\sigma^2 = 1`.
    """

    def __init__(self, tau=1.0):
        self.tau = jnp.asarray(tau, dtype=jnp.result_type(float))

    def m(self, t):
        return jnp.cos(0.5 * jnp.pi * t / self.tau)

    def sigma_sq(self, t):
        return jnp.sin(0.5 * jnp.pi * t / self.tau) ** 2


class CondOT(Schedule):
    """Conditional optimal-transport schedule (Eq. 28): :math:`m_t = 1 - t/\\tau`, :math:`\\sigma_t = t/\\tau`."""

    def __init__(self, tau=1.0):
        self.tau = jnp.asarray(tau, dtype=jnp.result_type(float))

    def m(self, t):
        return 1.0 - t / self.tau

    def sigma_sq(self, t):
        return (t / self.tau) ** 2


class VPLinear(Schedule):
    """Variance-preserving schedule with linear :math:`\\beta` (DDPM; Eqs. 29–31).

    :math:`\\beta(t) = \\beta_{min} + (\\beta_{max}-\\beta_{min}) t/\\tau`,
    :math:`m_t = \\exp(-\\tfrac12\\int_0^t \\beta)`, :math:`\\sigma_t^2 = 1 - m_t^2`;
    then :math:`f_t(x) = -\\tfrac12\\beta(t) x` and :math:`T_t = \\tfrac12\\beta(t)`.
    ``beta_min``, ``beta_max`` in units of 1/time (per unit ``t``; τ scales them).
    """

    beta_min: jax.Array
    beta_max: jax.Array

    def __init__(self, beta_min=0.1, beta_max=20.0, tau=1.0):
        dt = jnp.result_type(float)
        self.beta_min = jnp.asarray(beta_min, dtype=dt)
        self.beta_max = jnp.asarray(beta_max, dtype=dt)
        self.tau = jnp.asarray(tau, dtype=dt)

    def _log_m(self, t):
        s = t / self.tau
        return -0.5 * self.tau * (self.beta_min * s + 0.5 * (self.beta_max - self.beta_min) * s**2)

    def m(self, t):
        return jnp.exp(self._log_m(t))

    def sigma_sq(self, t):
        return -jnp.expm1(2.0 * self._log_m(t))


class VEGeometric(Schedule):
    """Variance-exploding schedule with geometric noise levels (Eqs. 26–27).

    :math:`m_t = 1`, :math:`\\sigma_t^2 = \\sigma_{min}^2[(\\sigma_{max}/\\sigma_{min})^{2t/\\tau} - 1]`,
    the perturbation-kernel variance of the VE SDE whose noise level grows geometrically
    from ``sigma_min`` to ``sigma_max``; :math:`\\sigma_0 = 0` as the end conditions require.
    """

    sigma_min: jax.Array
    sigma_max: jax.Array

    def __init__(self, sigma_min=0.01, sigma_max=10.0, tau=1.0):
        dt = jnp.result_type(float)
        self.sigma_min = jnp.asarray(sigma_min, dtype=dt)
        self.sigma_max = jnp.asarray(sigma_max, dtype=dt)
        self.tau = jnp.asarray(tau, dtype=dt)

    def m(self, t):
        return jnp.ones_like(t)

    def sigma_sq(self, t):
        log_ratio = jnp.log(self.sigma_max / self.sigma_min)
        return self.sigma_min**2 * jnp.expm1(2.0 * log_ratio * t / self.tau)


class Custom(Schedule):
    """A schedule from user-supplied functions ``m_fn(t, params)`` and ``sigma_fn(t, params)``.

    ``params`` is any pytree of arrays (vmappable). Pass ``sigma_sq_fn`` instead of
    ``sigma_fn`` when :math:`\\sigma_t \\sim \\sqrt t` near 0, so that autodiff of
    :math:`\\sigma_t^2` stays finite there. Functions must be jax-traceable.

    Example::

        sched = Custom(lambda t, p: 1 - t, lambda t, p: t, tau=1.0)   # = CondOT(1.0)
    """

    params: object
    m_fn: Callable = eqx.field(static=True)
    sigma_fn: Callable | None = eqx.field(static=True)
    sigma_sq_fn: Callable | None = eqx.field(static=True)

    def __init__(self, m_fn, sigma_fn=None, tau=1.0, params=None, *, sigma_sq_fn=None):
        if (sigma_fn is None) == (sigma_sq_fn is None):
            raise ValueError("Custom: give exactly one of `sigma_fn` and `sigma_sq_fn`.")
        self.m_fn = m_fn
        self.sigma_fn = sigma_fn
        self.sigma_sq_fn = sigma_sq_fn
        self.params = params
        self.tau = jnp.asarray(tau, dtype=jnp.result_type(float))

    def m(self, t):
        return self.m_fn(t, self.params)

    def sigma_sq(self, t):
        if self.sigma_sq_fn is not None:
            return self.sigma_sq_fn(t, self.params)
        return self.sigma_fn(t, self.params) ** 2


def check_schedule(schedule: Schedule, num: int = 513, atol: float = 1e-9) -> Schedule:
    """Check the conditions of SPEC §3 on ``num`` times in ``[0, tau]``; return ``schedule``.

    Checked: ``tau > 0``; end conditions :math:`m_0 = 1`, :math:`\\sigma_0 = 0`;
    :math:`m_t \\ge 0`, :math:`\\sigma_t^2 \\ge 0`; and the monotonicity condition Eq. 24,
    :math:`\\partial_t(\\sigma_t/m_t) \\ge 0` (equivalently :math:`T_t \\ge 0`), all to
    ``atol``. With concrete parameters a violation raises ``ValueError`` naming the
    condition and the first offending time; under ``jit``/``vmap`` it raises at run time
    through :func:`equinox.error_if`.
    """
    tau = schedule.tau
    tau = check(jnp.all(tau > 0), f"schedule.tau must be > 0 (got {_show(tau)}).", tau)
    s = jnp.linspace(0.0, 1.0, num)
    t = s * jnp.expand_dims(tau, -1) if jnp.ndim(tau) else s * tau
    v = schedule.values(t) if jnp.ndim(tau) == 0 else jax.vmap(lambda sc, tt: sc.values(tt))(
        schedule, t
    )
    mono = (
        schedule.monotonicity(t)
        if jnp.ndim(tau) == 0
        else jax.vmap(lambda sc, tt: sc.monotonicity(tt))(schedule, t)
    )
    m0, s0 = v.m[..., 0], v.sigma_sq[..., 0]
    name = type(schedule).__name__
    conditions = [
        (jnp.abs(m0 - 1) <= atol, f"{name}: end condition m_0 = 1 violated (m_0 = {_show(m0)})."),
        (jnp.abs(s0) <= atol, f"{name}: end condition sigma_0 = 0 violated (sigma_0^2 = {_show(s0)})."),
        (jnp.isfinite(v.m) & jnp.isfinite(v.sigma_sq) & jnp.isfinite(v.dm) & jnp.isfinite(v.sigma_dsigma),
         f"{name}: m_t, sigma_t or their time derivatives are not finite on [0, tau]."),
        (v.m >= -atol, f"{name}: m_t must be >= 0 on [0, tau]{_where(v.m >= -atol, t)}."),
        (v.sigma_sq >= -atol, f"{name}: sigma_t^2 must be >= 0 on [0, tau]{_where(v.sigma_sq >= -atol, t)}."),
        (mono >= -atol,
         f"{name}: monotonicity condition d/dt(sigma_t/m_t) >= 0 (Eq. 24, T_t >= 0) is violated"
         f"{_where(mono >= -atol, t)}."),
    ]
    leaves, treedef = jax.tree_util.tree_flatten(schedule)
    for ok, msg in conditions:
        leaves = list(check(ok, msg, *leaves)) if len(leaves) > 1 else [check(ok, msg, *leaves)]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _show(x):
    return f"{float(jnp.ravel(x)[0]):.6g}" if is_concrete(x) else "<traced>"


def _where(ok, t):
    if not is_concrete(ok):
        return ""
    import numpy as np

    bad = np.argwhere(~np.asarray(ok))
    if bad.size == 0:
        return ""
    return f" (first at t = {float(np.asarray(t)[tuple(bad[0])]):.6g})"
