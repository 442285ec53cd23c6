r"""Re-scheduling a velocity field: one trained model, any schedule ([spec §3][spec-3], Eqs. 17, 22–35, 96).

Two conditional Gaussian paths with the same data $q$ differ only by a change of time and of
scale. Write a schedule $(m_t, \sigma_t)$ through its DDIM noise level $\rho_t = \sigma_t/m_t$
(Eqs. 33–35): $x_t = m_t y + \sigma_t\varepsilon = m_t\,(y + \rho_t\varepsilon)$, so the
marginal $P_t$ is the law of $m_t$ times the variance-exploding variable $y + \rho_t\varepsilon$,
whose law depends on $t$ through $\rho_t$ alone. For a schedule $A$ (the field's, time $t$)
and a schedule $B$ (the target, time $s$), matching the noise levels,

$$
\rho^A_{t(s)} = \rho^B_s, \qquad t(s) = (\rho^A)^{-1}(\rho^B_s), \qquad
c(s) = m^B_s / m^A_{t(s)},
$$

gives $P^B_s = (x \mapsto c(s)\,x)_\# P^A_{t(s)}$, and even the joint law of $(y, x)$ agrees:
$x^B_s = c(s)\,x^A_{t(s)}$. Hence the flow of $A$, rescaled and re-timed, is a flow of $B$, and
differentiating $x^B_s = c(s)\,x^A_{t(s)}$ in $s$ gives its velocity

$$
u^B_s(x) = \frac{c'(s)}{c(s)}\,x + c(s)\,t'(s)\,u^A_{t(s)}\big(x/c(s)\big)
= \big(\partial_s\ln m^B_s - t'(s)\,\partial_t\ln m^A_{t(s)}\big)\,x
+ c(s)\,t'(s)\,u^A_{t(s)}\big(x/c(s)\big),
$$

with $t'(s) = \partial_s\rho^B_s/\partial_t\rho^A_{t(s)} = \partial_s r^B_s/\partial_t r^A_{t(s)}$,
$r = \rho^2 = \sigma^2/m^2$ (equal because $\rho^A_{t(s)} = \rho^B_s$; $r$ is smooth at $t = 0$
where $\sigma_t \sim \sqrt t$). This is not only *a* field transporting $P^B$: it is exactly the
forward velocity of $B$ (Eq. 96). Eq. 96 reads $\nu_t(x) = (\dot m_t/m_t)\,x +
(\dot\rho_t/\rho_t)(x - m_t\,\mathbb E[y|x_t = x])$; substituting it for $u^A$, using
$\mathbb E_B[y|x^B_s = x] = \mathbb E_A[y|x^A_{t(s)} = x/c]$, $c\,m^A_{t(s)} = m^B_s$ and
$t'\dot\rho^A/\rho^A = \dot\rho^B/\rho^B$ returns $\nu^B_s(x)$. So an exact field of $A$
(a [`DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath], an
[`EmpiricalPath`][jaxsa.processes.empirical.EmpiricalPath]) becomes the exact field of $B$ to
rounding, and a learned field of $A$ gives $B$'s field with the same error, rescaled: schedules can
be compared from one trained model.

**Valid times.** $t(s)$ exists while $\rho^B_s \le \rho^A_{\tau_A}$ and $m^B_s > 0$:

* $s \in [0, \tau_B]$ if $B$ keeps $m^B > 0$ (VP, VE) and $A$ ends at pure noise ($m^A_{\tau_A} = 0$,
  $\rho^A = \infty$, by the schedule's ``ends_at_noise``: cosine, cond-OT);
* $s \in [0, s_{max}]$ with $\rho^B_{s_{max}} = \rho^A_{\tau_A}$ when $A$ stops short of pure noise
  (VP: $\rho^A_{\tau_A}$ finite), e.g. VP($\beta$ 0.1–20) → cond-OT: $s_{max} \approx 0.9935$;
* $s \in [0, \tau_B)$ when both end at pure noise (cosine ↔ cond-OT): at $s = \tau_B$ the scale
  $c = 0/0$ degenerates, and the accuracy falls like $\epsilon/(\tau_B - s)$ before it.

[`RescheduledField.max_time`][jaxsa.processes.reschedule.RescheduledField.max_time] gives the end.
At $s = 0$, $t' = 0/0$ when both schedules have $\sigma_t \propto t$ (cosine, cond-OT); the limit
$t'(0) = (r^{B\prime\prime}(0)/r^{A\prime\prime}(0))^{1/2}$ is used. The one case that cannot be
evaluated at $s = 0$ is $\sigma^A \propto t$ with $\sigma^B \propto \sqrt t$ (cosine → VP):
$t'(0) = \infty$, as $u^A_0$ does not determine the score of $q$ that $\nu^B_0$ needs. A time
outside the valid range, or an infinite $t'$, raises ``ValueError`` (concrete inputs) or a run-time
error through `equinox.error_if` (under ``jit``/``vmap``); a NaN is never returned for it.

**Inversion.** $t(s)$ is found by bisection on $\ln(t/\tau_A)$ over $[\ln \text{tiny}, 0]$ of the
monotone $r^A$ (Eq. 24), 72 halvings: a relative accuracy of about one ulp in $t$ at every scale
(down to $t \sim 10^{-300}$ in float64), under ``jit`` and ``vmap`` (a fixed-length
``fori_loop``, no data-dependent control flow); its derivative is $dt = dr/\dot r^A_t$ (a
``custom_jvp``), so $\partial_s u^B$ by autodiff is right too.

Shapes: ``velocity(s, x)`` takes a scalar ``s`` and ``x`` of shape ``batch + event_shape`` (the
field's event shape, any batch) and returns the shape of ``x``; ``vmap`` over ``s`` for many times.
Units: $s, t$ time; $x$ length; velocities length/time; $c$ dimensionless ($\sigma$ has the
units of $y$, so $\rho$ is dimensionless and both schedules act on the same data).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsa._checks import check, format_number, is_concrete
from jaxsa.processes.base import AbstractVelocityField
from jaxsa.quadrature import bisect_increasing
from jaxsa.schedules.standard import Schedule, check_schedule

__all__ = ["RescheduledField", "reschedule"]

_HALVINGS = 72  # bisection steps on ln(t/tau): width ~708 * 2^-72 ~ 1.5e-19 in ln t


def _r(schedule, t):
    """$r_t = \\rho_t^2 = \\sigma_t^2/m_t^2$ (``inf`` where $m_t = 0$)."""
    return schedule.sigma_sq(t) / schedule.m(t) ** 2


def _r_end(schedule):
    """$r_\tau$; ``inf`` for a schedule that ends at pure noise by construction (``cos(pi/2)``
    rounds to 6e-17, not 0)."""
    return jnp.inf if type(schedule).ends_at_noise else _r(schedule, schedule.tau)


def _r_derivatives(schedule, t):
    r"""$(r_t, \dot r_t, \ddot r_t)$ by nested forward-mode autodiff."""
    one = jnp.ones_like(t)

    def dr(u):
        return jax.jvp(lambda v: _r(schedule, v), (u,), (one,))

    (r, r1), (_, r2) = jax.jvp(dr, (t,), (one,))
    return r, r1, r2


def _invert_r(schedule, r_target):
    r"""The time $t \in [0, \tau]$ with $r_t = $ ``r_target`` (scalar), for increasing $r$;
    differentiable in ``r_target`` ($dt = dr/\dot r_t$, by ``custom_jvp``)."""

    @jax.custom_jvp
    def invert(r):
        return _bisect_r(schedule, r)

    @invert.defjvp
    def invert_jvp(primals, tangents):
        t = invert(primals[0])
        _, r1 = jax.jvp(lambda u: _r(schedule, u), (t,), (jnp.ones_like(t),))
        return t, tangents[0] / jnp.where(r1 > 0, r1, jnp.inf)

    return invert(r_target)


def _bisect_r(schedule, r_target):
    tau = schedule.tau
    lo = jnp.log(jnp.finfo(r_target.dtype).tiny) * jnp.ones_like(r_target)
    log_t = bisect_increasing(lambda u: _r(schedule, tau * jnp.exp(u)), r_target, lo,
                              jnp.zeros_like(r_target), _HALVINGS)
    t = tau * jnp.exp(log_t)
    return jnp.where(r_target <= 0, 0.0, jnp.where(r_target >= _r(schedule, tau), tau, t))


class RescheduledField(AbstractVelocityField):
    r"""The velocity field of ``to_schedule`` made from a field of ``from_schedule`` (see the
    module docstring); build it with [`reschedule`][jaxsa.processes.reschedule.reschedule].

    ``velocity(s, x)``: scalar time ``s`` in the valid range (see
    [`max_time`][jaxsa.processes.reschedule.RescheduledField.max_time]) and ``x`` of shape
    ``batch + event_shape``; returns $u^B_s(x)$, shape of ``x`` (length/time).
    """

    field: AbstractVelocityField
    from_schedule: Schedule
    to_schedule: Schedule

    @property
    def tau(self):
        return self.to_schedule.tau

    @property
    def event_shape(self) -> tuple:
        return self.field.event_shape

    def singular_at_zero(self) -> bool:
        return self.field.singular_at_zero()

    def max_time(self):
        r"""The end $s_{max}$ of the valid times $[0, s_{max}]$: $\tau_B$, or
        $(\rho^B)^{-1}(\rho^A_{\tau_A})$ when $A$ stops short of pure noise. Where ``to_schedule``
        ends at $m^B_{\tau_B} = 0$ and $s_{max} = \tau_B$, the end itself is excluded."""
        return _invert_r(self.to_schedule, jnp.asarray(_r_end(self.from_schedule), self.tau.dtype))

    def time_map(self, s):
        r"""$(t(s), c(s), t'(s))$: the matched time of ``from_schedule``, the scale
        $m^B_s/m^A_{t(s)}$ and $dt/ds$ at a scalar ``s`` (unchecked; NaN or inf outside the valid
        range)."""
        s = jnp.asarray(s, jnp.result_type(float))
        a, b = self.from_schedule, self.to_schedule
        rb, rb1, rb2 = _r_derivatives(b, s)
        t = _invert_r(a, rb)
        _, ra1, ra2 = _r_derivatives(a, t)
        c = b.m(s) / a.m(t)
        # at s = 0 both rates may vanish (sigma ∝ t): the limit of t' is sqrt(r_B''/r_A'')
        both_flat = (rb == 0) & (rb1 == 0) & (ra1 == 0)
        dt = jnp.where(both_flat, jnp.sqrt(rb2 / jnp.where(both_flat, ra2, 1.0)),
                       rb1 / jnp.where(both_flat, 1.0, ra1))
        return t, c, dt

    def velocity(self, s, x):
        r"""$u^B_s(x) = (\partial_s\ln m^B_s - t'\,\partial_t\ln m^A_t)\,x + c\,t'\,u^A_t(x/c)$,
        $t = t(s)$ (length/time), shape of ``x``."""
        s = jnp.asarray(s, jnp.result_type(float))
        a, b = self.from_schedule, self.to_schedule
        t, c, dt = self.time_map(s)
        va, vb = a.values(t), b.values(s)
        eps = jnp.finfo(s.dtype).eps
        ok = ((s >= 0) & (s <= b.tau) & (vb.m > 0) & (_r(b, s) <= _r_end(a) * (1 + 64 * eps))
              & jnp.isfinite(c) & (c > 0) & jnp.isfinite(dt))
        x = check(ok, f"RescheduledField.velocity: time s = {format_number(s, '.6g')} is outside "
                      f"the valid range [0, s_max] of rescheduling {type(a).__name__} -> "
                      f"{type(b).__name__} (s_max = max_time(); where to_schedule ends at m = 0 "
                      "the end is excluded), or dt/ds is infinite there (see "
                      "jaxsa.processes.reschedule).", jnp.asarray(x))
        c_safe = jnp.where(ok, c, 1.0)
        rate = vb.dm / jnp.where(ok, vb.m, 1.0) - dt * va.dm / jnp.where(ok, va.m, 1.0)
        return rate * x + c_safe * dt * self.field.velocity(t, x / c_safe)


def _same_schedule(p, q) -> bool:
    if type(p) is not type(q):
        return False
    lp, tp = jax.tree_util.tree_flatten(p)
    lq, tq = jax.tree_util.tree_flatten(q)
    return tp == tq and all(np.shape(u) == np.shape(v) and np.array_equal(np.asarray(u), np.asarray(v))
                            for u, v in zip(lp, lq))


def _checked(schedule, name):
    if not isinstance(schedule, Schedule):
        raise ValueError(f"reschedule: `{name}` must be a jaxsa Schedule, got {type(schedule).__name__}.")
    if jnp.ndim(schedule.tau) != 0:
        raise ValueError(f"reschedule: `{name}` must be one schedule (scalar tau), got tau of shape "
                         f"{jnp.shape(schedule.tau)}; vmap over reschedule for a batch.")
    try:
        return check_schedule(schedule)
    except ValueError as err:
        raise ValueError(f"reschedule: `{name}`: {err}") from None


def reschedule(field: AbstractVelocityField, from_schedule: Schedule,
               to_schedule: Schedule) -> RescheduledField:
    r"""The velocity field of ``to_schedule`` from ``field``, a velocity field of the forward
    process of ``from_schedule`` (a trained model, or an exact path), with the same data.

    $u^B_s(x) = (\partial_s\ln m^B_s - t'\,\partial_t\ln m^A_{t})\,x + c\,t'\,u^A_{t}(x/c)$ with
    $\rho^A_{t(s)} = \rho^B_s$ and $c = m^B_s/m^A_{t(s)}$ (module docstring). Exact where ``field``
    is exact; times ``s`` in $[0, s_{max}]$ (see
    [`max_time`][jaxsa.processes.reschedule.RescheduledField.max_time]). The two schedules may
    have different ``tau``.

    Args:
        field: an [`AbstractVelocityField`][jaxsa.processes.base.AbstractVelocityField] on
            $[0, \tau_A]$; points of any ``event_shape``.
        from_schedule: the schedule $A$ ``field`` belongs to (``field.tau`` must equal its ``tau``;
            a field with a ``schedule`` attribute, like a ``DiffusionPath``, must carry this one).
        to_schedule: the target schedule $B$; the result lives on $[0, \tau_B]$.

    Raises:
        ValueError: an argument of the wrong type; a batch of schedules; a schedule violating
            [`check_schedule`][jaxsa.schedules.standard.check_schedule] ($m_0 = 1$, $\sigma_0 = 0$,
            Eq. 24); ``field.tau`` differing from ``from_schedule.tau``; or ``field``'s own schedule
            differing from ``from_schedule``. Each message names the argument.

    ```python
    cos = jaxsa.DiffusionPath(jaxsa.Cosine(1.0), data)
    ot_field = reschedule(cos, jaxsa.Cosine(1.0), jaxsa.CondOT(1.0))
    ot_field.velocity(0.5, x)   # == DiffusionPath(CondOT(1.0), data).velocity(0.5, x)
    ```
    """
    if not isinstance(field, AbstractVelocityField):
        raise ValueError(f"reschedule: `field` must be an AbstractVelocityField, got "
                         f"{type(field).__name__} (wrap a function with jaxsa.velocity_field).")
    a = _checked(from_schedule, "from_schedule")
    b = _checked(to_schedule, "to_schedule")
    if is_concrete(field.tau, from_schedule.tau):
        if not np.allclose(np.asarray(field.tau), np.asarray(from_schedule.tau), rtol=1e-12, atol=0):
            raise ValueError(f"reschedule: `from_schedule` has tau = {format_number(from_schedule.tau, '.6g')} "
                             f"but `field` has tau = {format_number(field.tau, '.6g')}; `field` must be a "
                             "field of `from_schedule`.")
    own = getattr(field, "schedule", None)
    if isinstance(own, Schedule) and is_concrete(own, from_schedule) and not _same_schedule(own, from_schedule):
        raise ValueError(f"reschedule: `from_schedule` ({type(from_schedule).__name__}) is not the "
                         f"schedule of `field` ({type(own).__name__} with other parameters or kind).")
    return RescheduledField(field=field, from_schedule=a, to_schedule=b)
