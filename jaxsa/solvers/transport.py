r"""Transport $\partial_t P = -\nabla\cdot(vP)$ with a given velocity on a uniform 1D/2D grid (the
estimated process, [spec §4][spec-4]): MUSCL reconstruction with the monotonised-central limiter,
upwind face fluxes, dimension by dimension, and third-order SSP Runge–Kutta with a fixed step.
Under $\mathrm{CFL} = dt\sum_k \max|v_k|/dx_k \le 1/2$ it is positivity preserving; a larger
CFL is an error. The grid is [`jaxsa.solvers.fokker_planck.Grid`][jaxsa.solvers.fokker_planck.Grid]."""

from __future__ import annotations


import equinox as eqx
import jax
import jax.numpy as jnp

from jaxsa._checks import check, format_number
from jaxsa.solvers.fokker_planck import Grid, adjacent_pairs, boundary_mass, divergence, field_at_faces

__all__ = ["TransportSolution", "transport_fluxes", "solve_transport"]

class TransportSolution(eqx.Module):
    """``ts`` ``(S,)``, ``p`` ``(S,) + grid.n``, ``fluxes`` (tuple per axis, ``(S,)`` + faces:
    the scheme's flux at the saved times), ``max_cfl``, ``mass_error``, ``min_density``,
    ``boundary_mass`` (largest mass in the boundary cells over the saved times)."""

    ts: jax.Array
    p: jax.Array
    fluxes: tuple
    max_cfl: jax.Array
    mass_error: jax.Array
    min_density: jax.Array
    boundary_mass: jax.Array


def _mc_slope(p, axis):
    """Monotonised-central limited slopes (zero in the boundary cells)."""
    pad = [(0, 0)] * p.ndim
    pad[axis] = (1, 1)
    pp = jnp.pad(p, pad, mode="edge")
    a, b = adjacent_pairs(pp, axis)  # consecutive padded cells
    n = p.shape[axis]
    dl = jax.lax.slice_in_dim(b - a, 0, n, axis=axis)
    dr = jax.lax.slice_in_dim(b - a, 1, n + 1, axis=axis)
    same = dl * dr > 0
    mag = jnp.minimum(jnp.minimum(2 * jnp.abs(dl), 2 * jnp.abs(dr)), 0.5 * jnp.abs(dl + dr))
    return jnp.where(same, jnp.sign(dl) * mag, 0.0)


def transport_fluxes(grid: Grid, p, vel_faces):
    """Upwind fluxes $vP$ at interior faces from MUSCL (MC-limited) edge values."""
    out = []
    for k in range(grid.dim):
        s = _mc_slope(p, k)
        plus, minus = p + 0.5 * s, p - 0.5 * s  # right and left edge values of each cell
        left, _ = adjacent_pairs(plus, k)
        _, right = adjacent_pairs(minus, k)
        v = vel_faces[k]
        out.append(jnp.maximum(v, 0.0) * left + jnp.minimum(v, 0.0) * right)
    return tuple(out)


def solve_transport(velocity, grid: Grid, p_start, t_start, t_end, n_steps: int,
                    save_every: int = 1, cfl_max: float = 0.5,
                    mass_tol: float = 1e-7) -> TransportSolution:
    r"""Continuity equation $\partial_t P = -\nabla\cdot(v_t P)$ (no diffusion) on ``grid``.

    Integrates from ``t_start`` to ``t_end`` (either direction; the estimated process runs
    from τ down to 0) in ``n_steps`` SSP-RK3 steps, saving every ``save_every`` steps
    (``n_steps // save_every + 1`` saves, the start included).

    Args:
        velocity: ``velocity(t, x)`` (shape of ``x``; length/time), e.g. ``path.velocity``.
        grid, p_start: [`Grid`][jaxsa.solvers.fokker_planck.Grid] and starting density (shape ``grid.n``).
        t_start, t_end: times (scalars, may be traced); ``n_steps``, ``save_every``: static.
        cfl_max: largest allowed $|dt|\sum_k\max|v_k|/dx_k$ (1/2 keeps positivity).
        mass_tol: largest mass allowed in the boundary cells at the saved times (the
            boundary faces carry no flux, so mass driven there would pile up silently).

    Raises:
        ValueError: a time step too coarse for stability (CFL above ``cfl_max`` at some
            stage), a grid that does not hold the mass (boundary cells above ``mass_tol``), a
            negative start (at run time through ``equinox.error_if`` under jit), bad shapes.
    """
    if n_steps % save_every:
        raise ValueError(f"solve_transport: `n_steps` ({n_steps}) must be a multiple of `save_every`.")
    if tuple(jnp.shape(p_start)) != grid.n:
        raise ValueError(f"solve_transport: `p_start` must have shape {grid.n}, got {jnp.shape(p_start)}.")
    p_start = jnp.asarray(p_start, jnp.result_type(float))
    p_start = check(jnp.all(p_start >= 0), "solve_transport: `p_start` must be non-negative.", p_start)
    sol = _transport_jit(velocity, grid, p_start, t_start, t_end, n_steps, save_every)
    p = check(sol.max_cfl <= cfl_max, f"solve_transport: time step too coarse for stability: CFL "
              f"{format_number(sol.max_cfl)} > cfl_max = {cfl_max:g}; increase `n_steps`.", sol.p)
    p = check(sol.boundary_mass <= mass_tol, f"solve_transport: the grid does not hold the mass: "
              f"{format_number(sol.boundary_mass)} lies in the boundary cells at a saved time (> mass_tol = "
              f"{mass_tol:g}); widen the grid.", p)
    return eqx.tree_at(lambda s: s.p, sol, p)


@eqx.filter_jit
def _transport_jit(velocity, grid, p_start, t_start, t_end, n_steps, save_every):
    dtype = jnp.result_type(float)
    p_start = jnp.asarray(p_start, dtype)
    dt = (jnp.asarray(t_end, dtype) - jnp.asarray(t_start, dtype)) / n_steps

    sgn = jnp.sign(dt)  # upwind along the direction of travel (backward runs reverse v)

    def vfaces(t):
        return field_at_faces(grid, velocity, t)

    def rate(v, p):
        return -sgn * divergence(grid, transport_fluxes(grid, p, tuple(sgn * a for a in v)))

    def speed(v):
        return sum(jnp.max(jnp.abs(v[k])) / grid.dx[k] for k in range(grid.dim)) * jnp.abs(dt)

    # the first stage of a step is at the time of the second stage of the step before: its
    # velocity is carried over, so each step evaluates the velocity field twice, not three times
    def step(carry, i):
        p, cfl, v0 = carry
        t = t_start + i.astype(dt.dtype) * dt
        v1, vh = vfaces(t + dt), vfaces(t + 0.5 * dt)
        p1 = p + dt * rate(v0, p)
        p2 = 0.75 * p + 0.25 * (p1 + dt * rate(v1, p1))
        p3 = p / 3.0 + (2.0 / 3.0) * (p2 + dt * rate(vh, p2))
        c = jnp.maximum(jnp.maximum(speed(v0), speed(vh)), speed(v1))
        return (p3, jnp.maximum(cfl, c), v1), None

    def block(carry, j):
        carry, _ = jax.lax.scan(step, carry, j * save_every + jnp.arange(save_every))
        return carry, carry[0]

    n_saves = n_steps // save_every
    init = (p_start, jnp.zeros((), dtype), vfaces(jnp.asarray(t_start, dtype)))
    (p_end, cfl, _), ps = jax.lax.scan(block, init, jnp.arange(n_saves))
    p = jnp.concatenate([p_start[None], ps])
    ts = t_start + dt * save_every * jnp.arange(n_saves + 1, dtype=dt.dtype)
    fl = jax.vmap(lambda t, q: tuple(sgn * a for a in transport_fluxes(
        grid, q, tuple(sgn * a for a in vfaces(t)))))(ts, p)
    mass = grid.mass(p)
    return TransportSolution(ts=ts, p=p, fluxes=fl, max_cfl=cfl,
                             mass_error=jnp.max(jnp.abs(mass - mass[0])),
                             min_density=jnp.min(p) / jnp.max(p_start),
                             boundary_mass=jnp.max(boundary_mass(grid, p)))
