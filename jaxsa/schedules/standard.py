r"""Noise schedules of conditional Gaussian paths ([spec §3][spec-3], Eqs. 22–32).

A schedule gives the mean scale $m_t$ and the noise scale $\sigma_t$ of the
conditional path $P^c_t(x|y) = \mathcal N(x | m_t y, \sigma_t^2 I)$ on $t\in[0,\tau]$.
From them follow (Eqs. 22–23)

$$
f_t(x) = (\partial_t \ln m_t)\, x, \qquad
T_t = m_t \sigma_t \partial_t(\sigma_t/m_t) = \partial_t(\sigma_t^2/2) - \sigma_t^2 \partial_t \ln m_t .
$$

Schedules are `equinox.Module` pytrees: their parameters (``tau``, ``beta_min``, …) are
array leaves, so a batch of schedules of one kind is one pytree with a leading axis and
``jax.vmap`` sweeps over it. Time derivatives come from automatic differentiation
(``jax.jvp``), never finite differences. Each schedule defines $\sigma_t^2$ directly
where $\sigma_t \sim \sqrt t$ (VP, VE), so $\sigma_t\dot\sigma_t =
\tfrac12\partial_t\sigma_t^2$ stays finite at $t=0$.
"""

from __future__ import annotations

from typing import Callable, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

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
    r"""Schedule coefficients at one time (scalars, or arrays of the shape of ``t``).

    ``sigma_dsigma`` is $\sigma_t\dot\sigma_t = \tfrac12 \partial_t \sigma_t^2$.
    """

    m: jax.Array
    sigma: jax.Array
    dm: jax.Array
    sigma_sq: jax.Array
    sigma_dsigma: jax.Array


class Schedule(eqx.Module):
    r"""Base class: subclasses define [`m`][jaxsa.schedules.standard.Schedule.m] and [`sigma_sq`][jaxsa.schedules.standard.Schedule.sigma_sq] (or [`sigma`][jaxsa.schedules.standard.Schedule.sigma]).

    Attributes:
        tau: duration $\tau > 0$ of the forward process (time units).
    """

    tau: jax.Array
    #: True where $m_\tau = 0$ holds by construction (the schedule ends at pure noise), so
    #: that $P_\tau = \mathcal N(0, \sigma_\tau^2)$ exactly whatever the data.
    ends_at_noise: ClassVar[bool] = False

    # -- to be provided by subclasses -------------------------------------------------
    def m(self, t):
        """Mean scale $m_t$ (dimensionless); ``t`` a scalar time in ``[0, tau]``."""
        raise NotImplementedError

    def sigma_sq(self, t):
        r"""Noise variance $\sigma_t^2$ (length² units)."""
        return self.sigma(t) ** 2

    def sigma(self, t):
        r"""Noise scale $\sigma_t$ (length units)."""
        return jnp.sqrt(self.sigma_sq(t))

    # -- derived -------------------------------------------------------------------
    def values(self, t) -> ScheduleValues:
        r"""$m_t, \sigma_t, \dot m_t, \sigma_t^2, \sigma_t\dot\sigma_t$ at ``t``.

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
        r"""Temperature $T_t = \sigma\dot\sigma - \sigma^2\dot m/m$ (Eq. 23).

        Returns ``+inf`` where $m_t = 0$ and the noise still grows (the end point of
        cosine and cond-OT): the temperature genuinely diverges there, while the velocity
        field and $T_t\dot S_t^{tot}$ stay finite.
        """
        v = self.values(t)
        num = v.sigma_sq * v.dm
        safe_m = jnp.where(v.m == 0, 1.0, v.m)
        ratio = jnp.where(v.m == 0, jnp.where(num == 0, 0.0, jnp.sign(num) * jnp.inf),
                          num / safe_m)
        return v.sigma_dsigma - ratio

    def drift_rate(self, t):
        r"""$\partial_t \ln m_t$ (1/time): the force is $f_t(x) = \partial_t\ln m_t\, x$
        (Eq. 22); ``-inf`` where $m_t=0$ with $\dot m_t<0$."""
        v = self.values(t)
        safe_m = jnp.where(v.m == 0, 1.0, v.m)
        return jnp.where(v.m == 0, jnp.where(v.dm == 0, 0.0, jnp.sign(v.dm) * jnp.inf),
                         v.dm / safe_m)

    def force(self, t, x):
        r"""External force $f_t(x) = (\partial_t \ln m_t) x$ (Eq. 22); ``x`` any shape."""
        return self.drift_rate(t) * x

    def monotonicity(self, t):
        r"""$m_t^2\,\partial_t(\sigma_t/m_t) = m_t\dot\sigma_t - \sigma_t\dot m_t$.

        Eq. 24 requires it to be $\ge 0$ (so that $T_t \ge 0$); this form stays
        finite where $m_t = 0$. Computed as $(m\,\sigma\dot\sigma -
        \sigma^2\dot m)/\sigma$ away from $\sigma = 0$.
        """
        v = self.values(t)
        num = v.m * v.sigma_dsigma - v.sigma_sq * v.dm
        safe = jnp.where(v.sigma > 0, v.sigma, 1.0)
        return jnp.where(v.sigma > 0, num / safe, num)


class Cosine(Schedule):
    r"""Cosine schedule (Eq. 32): $m_t = \cos(\pi t/2\tau)$, $\sigma_t = \sin(\pi t/2\tau)$.

    The geodesic of the VP family on the unit circle $m^2 + \sigma^2 = 1$.
    """

    ends_at_noise = True

    def __init__(self, tau=1.0):
        self.tau = jnp.asarray(tau, dtype=jnp.result_type(float))

    def m(self, t):
        return jnp.cos(0.5 * jnp.pi * t / self.tau)

    def sigma_sq(self, t):
        return jnp.sin(0.5 * jnp.pi * t / self.tau) ** 2


class CondOT(Schedule):
    r"""Conditional optimal-transport schedule (Eq. 28): $m_t = 1 - t/\tau$, $\sigma_t = t/\tau$."""

    ends_at_noise = True

    def __init__(self, tau=1.0):
        self.tau = jnp.asarray(tau, dtype=jnp.result_type(float))

    def m(self, t):
        return 1.0 - t / self.tau

    def sigma_sq(self, t):
        return (t / self.tau) ** 2


class VPLinear(Schedule):
    r"""Variance-preserving schedule with linear $\beta$ (DDPM; Eqs. 29–31).

    $\beta(t) = \beta_{min} + (\beta_{max}-\beta_{min}) t/\tau$,
    $m_t = \exp(-\tfrac12\int_0^t \beta)$, $\sigma_t^2 = 1 - m_t^2$;
    then $f_t(x) = -\tfrac12\beta(t) x$ and $T_t = \tfrac12\beta(t)$.
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
    r"""Variance-exploding schedule with geometric noise levels (Eqs. 26–27).

    $m_t = 1$, $\sigma_t^2 = \sigma_{min}^2[(\sigma_{max}/\sigma_{min})^{2t/\tau} - 1]$,
    the perturbation-kernel variance of the VE SDE whose noise level grows geometrically
    from ``sigma_min`` to ``sigma_max``; $\sigma_0 = 0$ as the end conditions require.
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
    r"""A schedule from user-supplied functions ``m_fn(t, params)`` and ``sigma_fn(t, params)``.

    ``params`` is any pytree of arrays (vmappable). Pass ``sigma_sq_fn`` instead of
    ``sigma_fn`` when $\sigma_t \sim \sqrt t$ near 0, so that autodiff of
    $\sigma_t^2$ stays finite there. Functions must be jax-traceable.

    Example:
        ```python
        sched = Custom(lambda t, p: 1 - t, lambda t, p: t, tau=1.0)   # = CondOT(1.0)
        ```
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
    r"""Check the conditions of [spec §3][spec-3] on ``num`` times in ``[0, tau]``; return ``schedule``.

    Checked: ``tau > 0``; end conditions $m_0 = 1$, $\sigma_0 = 0$;
    $m_t \ge 0$, $\sigma_t^2 \ge 0$; and the monotonicity condition Eq. 24,
    $\partial_t(\sigma_t/m_t) \ge 0$ (equivalently $T_t \ge 0$), all to
    ``atol``. With concrete parameters a violation raises ``ValueError`` naming the
    condition and the first offending time; under ``jit``/``vmap`` it raises at run time
    through `equinox.error_if`.
    """
    # concrete parameters: the values on the grid come from one compiled program and the
    # conditions are evaluated in numpy (op by op in JAX they compile ~20 small programs);
    # traced ones: the same expressions in jnp, attached through `equinox.error_if`
    concrete = is_concrete(schedule)
    xp = np if concrete else jnp
    tau = np.asarray(schedule.tau) if concrete else schedule.tau
    tau_ok = (xp.all(tau > 0), f"schedule.tau must be > 0 (got {_show(tau)}).")
    check(*tau_ok)  # concrete: raises now; traced: attached to the leaves below with the rest
    if concrete:
        t, v, mono = jax.tree_util.tree_map(np.asarray, _grid_values_jit(schedule, num))
    else:
        t, v, mono = _grid_values(schedule, num)
    m0, s0 = v.m[..., 0], v.sigma_sq[..., 0]
    name = type(schedule).__name__
    conditions = [
        tau_ok,
        (xp.abs(m0 - 1) <= atol, f"{name}: end condition m_0 = 1 violated (m_0 = {_show(m0)})."),
        (xp.abs(s0) <= atol, f"{name}: end condition sigma_0 = 0 violated (sigma_0^2 = {_show(s0)})."),
        (xp.isfinite(v.m) & xp.isfinite(v.sigma_sq) & xp.isfinite(v.dm) & xp.isfinite(v.sigma_dsigma),
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


def _grid_values(schedule, num):
    """``(t, values, monotonicity)`` on ``num`` equal times of ``[0, tau]`` (batched over a
    batch of schedules)."""
    tau = schedule.tau
    s = jnp.linspace(0.0, 1.0, num)
    if jnp.ndim(tau) == 0:
        t = s * tau
        return t, schedule.values(t), schedule.monotonicity(t)
    t = s.reshape((1,) * jnp.ndim(tau) + s.shape) * jnp.expand_dims(tau, -1)  # batch + (num,)
    v = jax.vmap(lambda sc, tt: sc.values(tt))(schedule, t)
    return t, v, jax.vmap(lambda sc, tt: sc.monotonicity(tt))(schedule, t)


_grid_values_jit = eqx.filter_jit(_grid_values)


def _show(x):
    return f"{float(np.ravel(np.asarray(x))[0]):.6g}" if is_concrete(x) else "<traced>"


def _where(ok, t):
    if not is_concrete(ok):
        return ""
    bad = np.argwhere(~np.asarray(ok))
    if bad.size == 0:
        return ""
    return f" (first at t = {float(np.asarray(t)[tuple(bad[0])]):.6g})"
