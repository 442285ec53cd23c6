r"""The probability-flow ODE through diffrax ([spec §4][spec-4], Eqs. 10–11, 14–15).

The estimated process starts at ``t = τ`` from the perturbed density and follows the forward
velocity backwards in time, $dx/d\tilde t = -\nu_{\tau - \tilde t}(x)$; in forward time this
is simply $dx/dt = \nu_t(x)$ integrated from ``t = τ`` down to ``t = 0`` (diffrax
integrates with a negative step). Along each trajectory the log-Jacobian
$\ln \partial x_t/\partial x_\tau$ obeys $d\ln J/dt = \nabla\!\cdot\nu_t(x_t)$
(instantaneous change of variables), which gives the transported density
$\tilde P_t(x_t) = \tilde P_\tau(x_\tau)/J$.

Particles are independent: the vector field is vmapped over them and the batch is one ODE
system with an adaptive PID step controller whose error norm is the *maximum* over particles,
so every particle meets the tolerance (as a vmap of separate solves would, but with shared
steps and one while-loop).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from jaxsa._checks import promoted_dtype

__all__ = ["ODESettings", "RK4", "integrate", "transport", "solve_flow", "max_norm"]


@dataclasses.dataclass(frozen=True)
class ODESettings:
    """Static settings of the probability-flow ODE solve.

    Attributes:
        rtol, atol: tolerances of the PID step-size controller (max-norm over particles).
        solver: name of a diffrax solver (``"Tsit5"``, ``"Dopri5"``, ``"Dopri8"``).
        max_steps: step budget; exceeding it is reported in the result status.
        fixed_steps: if > 0, take this many equal steps instead of adaptive ones. Under
            ``jax.vmap`` over paths an adaptive solve batches its while-loop (every step then
            selects over the whole state and save buffer); equal steps keep the loop unbatched,
            which is what large sweeps want. Accuracy is then checked by refinement.
    """

    rtol: float = 1e-10
    atol: float = 1e-10
    solver: str = "Dopri8"
    max_steps: int = 20_000
    fixed_steps: int = 0

    def refined(self, factor: float = 2.0) -> "ODESettings":
        """Tolerances tightened by ``factor**5`` (one halving of a 5th-order step)."""
        return dataclasses.replace(self, rtol=self.rtol / factor**5, atol=self.atol / factor**5,
                                   fixed_steps=int(self.fixed_steps * factor))


def max_norm(y):
    """The largest absolute value over every leaf of the PyTree ``y`` (a scalar, in the units of
    ``y``): the error norm of the adaptive step controllers, so that every particle of a batch
    meets the tolerance (``diffrax.PIDController(..., norm=max_norm)``)."""
    return jnp.max(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in jax.tree_util.tree_leaves(y)]))


class RK4(diffrax.AbstractERK):
    """The classical fourth-order Runge–Kutta method as a diffrax solver, for equal steps
    (``ODESettings(solver="RK4", fixed_steps=n)``). Its embedded error estimate (against the
    midpoint rule) is crude: prefer an adaptive pair (``Tsit5``, ``Dopri8``) for step control."""

    tableau: ClassVar[diffrax.ButcherTableau] = diffrax.ButcherTableau(
        c=np.array([0.5, 0.5, 1.0]),
        b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
        b_error=np.array([1 / 6, 1 / 3 - 1.0, 1 / 3, 1 / 6]),
        a_lower=(np.array([0.5]), np.array([0.0, 0.5]), np.array([0.0, 0.0, 1.0])),
    )
    interpolation_cls: ClassVar = diffrax.ThirdOrderHermitePolynomialInterpolation.from_k

    def order(self, terms):
        return 4


def _solver(name: str):
    return RK4() if name == "RK4" else getattr(diffrax, name)()


def _span(t0, t1):
    """``t1 - t0`` in the dtype implicit promotion gives them (a float32 end time of a float32
    field with a float64 ``tau``: float64), written out for strict dtype promotion."""
    if not (hasattr(t0, "dtype") or hasattr(t1, "dtype")):  # Python numbers
        return t1 - t0
    dt = promoted_dtype(t0, t1)
    return jnp.asarray(t1, dt) - jnp.asarray(t0, dt)


def integrate(vector_field, y0, t0, t1, ts, settings: ODESettings = ODESettings(),
              chunk_size: int | None = None):
    r"""The one probability-flow integrator of jaxsa: $dy/dt = f(t, y)$ from ``t0`` to ``t1``
    (either direction) by diffrax, saved at the times ``ts``.

    Args:
        vector_field: ``(t, y) -> dy/dt`` for a PyTree ``y`` whose leaves share a leading
            particle axis (e.g. positions ``(n,)`` or ``(n, d)``, with log-Jacobians ``(n,)``).
        y0: the state at ``t0``.
        t0, t1: start and end times (scalars).
        ts: ``(S,)`` save times, monotone from ``t0`` towards ``t1``.
        settings: [`ODESettings`][jaxsa.solvers.flow.ODESettings]: an adaptive PID controller whose
            error norm is the maximum over every particle ([`max_norm`][jaxsa.solvers.flow.max_norm]),
            so every particle meets the tolerance, or ``fixed_steps`` equal steps.
        chunk_size: if set, the particles are split into chunks of this many (the last one
            padded with copies of the first particle), each an independent solve with its own
            step control, run in sequence under ``lax.map``: for 10⁵–10⁶ particles this keeps
            each state in cache and stops one stiff particle from setting every step.

    Returns:
        ``(ys, n_steps, success)``: ``ys`` with leaves of shape ``(S,) + leaf.shape``; the
        number of accepted steps (the largest over chunks) and whether every solve succeeded.
    """
    solver = _solver(settings.solver)
    if settings.fixed_steps > 0:
        controller, dt0 = diffrax.ConstantStepSize(), _span(t0, t1) / settings.fixed_steps
    else:
        controller = diffrax.PIDController(rtol=settings.rtol, atol=settings.atol, norm=max_norm)
        dt0 = _span(t0, t1) / 64

    def solve(y):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(lambda t, y, args: vector_field(t, y)), solver, t0=t0, t1=t1,
            dt0=dt0, y0=y, saveat=diffrax.SaveAt(ts=ts), stepsize_controller=controller,
            max_steps=settings.max_steps, throw=False)
        return sol.ys, sol.stats["num_accepted_steps"], sol.result == diffrax.RESULTS.successful

    n = jax.tree_util.tree_leaves(y0)[0].shape[0]
    if chunk_size is None or int(chunk_size) >= n:
        return solve(y0)
    if int(chunk_size) < 1:
        raise ValueError(f"integrate: `chunk_size` must be >= 1, got {chunk_size}.")
    c = int(chunk_size)
    k = -(-n // c)

    def split(a):
        pad = jnp.broadcast_to(a[:1], (k * c - n,) + a.shape[1:])
        return jnp.concatenate([a, pad]).reshape((k, c) + a.shape[1:])

    ys, steps, oks = jax.lax.map(solve, jax.tree.map(split, y0))

    def join(a):  # (k, S, c, ...) -> (S, n, ...)
        a = jnp.moveaxis(a, 0, 1)
        return a.reshape((a.shape[0], k * c) + a.shape[3:])[:, :n]

    return jax.tree.map(join, ys), jnp.max(steps), jnp.all(oks)


def solve_flow(velocity_and_divergence, tau, x_tau, ts, settings: ODESettings = ODESettings()):
    r"""Integrate $dx/dt = \nu_t(x)$ with its log-Jacobian from ``t = tau`` back through the
    times ``ts`` (by [`integrate`][jaxsa.solvers.flow.integrate]).

    Args:
        velocity_and_divergence: ``(t, x) -> (ν_t(x), ∂_x ν_t(x))`` for 1D points ``x`` of
            shape ``(N,)``.
        tau: start time τ (scalar).
        x_tau: ``(N,)`` positions at ``t = tau``.
        ts: ``(S,)`` save times, *decreasing* from ``tau`` towards 0.
        settings: [`ODESettings`][jaxsa.solvers.flow.ODESettings].

    Returns:
        ``(x, v, log_jac, stats)``: arrays of shape ``(S, N)`` with positions, velocities
        and $\ln \partial x_t/\partial x_\tau$ at ``ts``, and a dict with the number of
        accepted steps and a success flag.
    """
    (x, log_jac), n_steps, success = integrate(
        lambda t, y: velocity_and_divergence(t, y[0]), (x_tau, jnp.zeros_like(x_tau)), tau,
        jnp.zeros_like(tau), ts, settings)
    v = jax.vmap(lambda t, xx: velocity_and_divergence(t, xx)[0])(ts, x)
    return x, v, log_jac, {"num_steps": n_steps, "success": success}


def transport(path, x_tau, ts, settings: ODESettings = ODESettings()):
    """Flow of a 1D velocity field (an
    [`AbstractVelocityField`][jaxsa.processes.base.AbstractVelocityField]) from ``t = τ`` to the
    times ``ts`` (decreasing).

    Uses the field's exact flow where it has one (``exact_flow`` is not ``None``, e.g.
    [`jaxsa.OTPath`][jaxsa.processes.ot.OTPath]) and the diffrax probability-flow ODE otherwise.
    Returns ``(x, v, log_jac, stats)`` as [`solve_flow`][jaxsa.solvers.flow.solve_flow].
    """
    exact = path.exact_flow(x_tau, ts)
    if exact is not None:
        x, v, log_jac = exact
        stats = {"num_steps": jnp.zeros((), jnp.int32), "success": jnp.ones((), bool)}
        return x, v, log_jac, stats

    return solve_flow(path.velocity_and_divergence, path.tau, x_tau, ts, settings)
