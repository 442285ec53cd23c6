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

import diffrax
import jax
import jax.numpy as jnp

__all__ = ["ODESettings", "transport", "solve_flow"]


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


def _max_norm(y):
    return jnp.max(jnp.stack([jnp.max(jnp.abs(leaf)) for leaf in jax.tree_util.tree_leaves(y)]))


def solve_flow(velocity_and_divergence, tau, x_tau, ts, settings: ODESettings = ODESettings()):
    r"""Integrate $dx/dt = \nu_t(x)$ from ``t = tau`` back through the times ``ts``.

    Args:
        velocity_and_divergence: ``(t, x) -> (ν_t(x), ∂_x ν_t(x))`` for 1D points ``x`` of
            shape ``(N,)``.
        tau: start time τ (scalar).
        x_tau: ``(N,)`` positions at ``t = tau``.
        ts: ``(S,)`` save times, *decreasing* from ``tau`` towards 0.
        settings: [`ODESettings`][jaxsa.flow.ODESettings].

    Returns:
        ``(x, v, log_jac, stats)``: arrays of shape ``(S, N)`` with positions, velocities
        and $\ln \partial x_t/\partial x_\tau$ at ``ts``, and a dict with the number of
        accepted steps and a success flag.
    """

    def field(t, y, args):
        x, _ = y
        v, div = velocity_and_divergence(t, x)
        return v, div

    solver = getattr(diffrax, settings.solver)()
    if settings.fixed_steps > 0:
        controller = diffrax.ConstantStepSize()
        dt0 = -tau / settings.fixed_steps
    else:
        controller = diffrax.PIDController(rtol=settings.rtol, atol=settings.atol, norm=_max_norm)
        dt0 = -tau / 64
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        solver,
        t0=tau,
        t1=jnp.zeros_like(tau),
        dt0=dt0,
        y0=(x_tau, jnp.zeros_like(x_tau)),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=controller,
        max_steps=settings.max_steps,
        throw=False,
    )
    x, log_jac = sol.ys
    v = jax.vmap(lambda t, xx: velocity_and_divergence(t, xx)[0])(ts, x)
    stats = {
        "num_steps": sol.stats["num_accepted_steps"],
        "success": sol.result == diffrax.RESULTS.successful,
    }
    return x, v, log_jac, stats


def transport(path, x_tau, ts, settings: ODESettings = ODESettings()):
    """Flow of the path's velocity field from ``t = τ`` to the times ``ts`` (decreasing).

    Uses the path's exact flow when it has one ([`jaxsa.OTPath`][jaxsa.ot_schedule.OTPath]) and the diffrax
    probability-flow ODE otherwise (any path with ``velocity(t, x)``). Returns
    ``(x, v, log_jac, stats)`` as [`solve_flow`][jaxsa.flow.solve_flow].
    """
    if hasattr(path, "flow"):
        x, v, log_jac = path.flow(x_tau, ts)
        stats = {"num_steps": jnp.zeros((), jnp.int32), "success": jnp.ones((), bool)}
        return x, v, log_jac, stats

    def vd(t, x):
        return jax.jvp(lambda y: path.velocity(t, y), (x,), (jnp.ones_like(x),))

    return solve_flow(vd, path.tau, x_tau, ts, settings)
