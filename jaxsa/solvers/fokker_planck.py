r"""Finite-volume solvers on uniform 1D/2D grids: Fokker–Planck (Eq. 1) and transport.

**Fokker–Planck** $\partial_t P = -\nabla\cdot J$, $J = f_t P - T_t\nabla P$ (Eq. 1)
with an arbitrary force ``force(t, x)`` and temperature ``temperature(t)``. Cell values
$P_i$ (at cell centres) change only through face fluxes, so mass is conserved to
round-off; the faces on the domain boundary carry no flux. The face flux is of
Scharfetter–Gummel (exponential-fitting) type, with Péclet number $\mathrm{Pe} = f\,dx/T$
and $B(z) = z/(e^z - 1)$,

$$
J_{i+1/2} = f P_i + \frac{T}{dx} B(\mathrm{Pe})\,(P_i - P_{i+1}),
$$

which is exact for a constant force between two cells, reduces to upwinding as
$T\to 0$ and to central diffusion as $f\to 0$, keeps $P\ge 0$ (an M-matrix
generator) and has the discrete Gibbs state as exact null vector for a linear force. The
method of lines is integrated with diffrax, adaptive steps: ``Kvaerno5`` (L-stable ESDIRK;
the default in 1D, where its Newton systems are solved in O(n) by
`jaxsa.solvers._banded.Tridiagonal1D` instead of a dense LU) or ``Tsit5`` (explicit; the
default in 2D — the step controller then follows the diffusive stability limit).

**Transport** $\partial_t P = -\nabla\cdot(vP)$ with a given velocity (the estimated
process, [spec §4][spec-4]): MUSCL reconstruction with the monotonised-central limiter, upwind face
fluxes, dimension by dimension, and third-order SSP Runge–Kutta with a fixed step. Under
$\mathrm{CFL} = dt\sum_k \max|v_k|/dx_k \le 1/2$ it is positivity preserving; a larger
CFL is an error. The velocity of the first stage of a step is the one of the second stage of
the step before, carried over (two velocity evaluations per step).

**Accuracy** (``tests/solvers/test_fokker_planck.py``, ``tests/relations/test_grid_relations.py``): second order in
``dx``; with a finite force at zero temperature (cond-OT at ``t = 0``) the flux is upwind for a
time of order ``dx``, which costs a logarithm: O(dx² ln(1/dx)).

**Schedules with** $m_\tau = 0$ (cond-OT, cosine): $f_t = (\dot m/m)x$ and
$T_t$ diverge at $t=\tau$ while $P_t$ stays smooth and tends to
$\mathcal N(0,\sigma_\tau^2 I)$ whatever the data. [`schedule_fokker_planck`][jaxsa.solvers.fokker_planck.schedule_fokker_planck] changes
time to $ds = dt/m_t$, in which force and temperature stay finite, carries the time as the
log-gap $-\ln((\tau - t)/\tau)$ (so that the gap keeps its relative accuracy), integrates
to $\tau(1-\epsilon)$ and returns at $t=\tau$ the exact limit: the null vector of
the singular part of the discrete generator, which for the SG flux is the discrete Gibbs state
$\propto e^{-|x|^2/2\sigma_\tau^2}$ (not a truncated solve). The jump between the two is
reported (``endpoint_jump``).
"""

from __future__ import annotations

import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsa.solvers._banded import Tridiagonal1D
from jaxsa._checks import check, format_number, is_concrete
from jaxsa.quadrature import gauss_legendre
from jaxsa.schedules.standard import check_schedule

__all__ = [
    "Grid", "FPSettings", "FPSolution", "sg_fluxes", "divergence", "boundary_mass",
    "solve_fokker_planck", "schedule_fokker_planck", "adjacent_pairs", "field_at_faces",
]


@dataclasses.dataclass(frozen=True)
class Grid:
    r"""Uniform cell-centred grid on the box $\prod_k [lo_k, hi_k]$ (static, hashable).

    Attributes:
        lo, hi: tuples of length ``d`` (1 or 2), box corners (length units).
        n: tuple of cell counts per axis. A density on the grid is an array of shape ``n``
            holding cell-centre values (1/length^d); its mass is ``sum(P) * cell_volume``.
    """

    lo: tuple
    hi: tuple
    n: tuple

    @staticmethod
    def uniform(lo, hi, n) -> "Grid":
        """``Grid.uniform(-5, 5, 512)`` (1D) or ``Grid.uniform((-6, -6), (6, 6), (128, 128))``."""
        tup = lambda a: tuple(float(v) for v in np.atleast_1d(a))  # noqa: E731
        lo, hi = tup(lo), tup(hi)
        n = tuple(int(v) for v in np.atleast_1d(n))
        if len(n) == 1 and len(lo) > 1:
            n = n * len(lo)
        if not (len(lo) == len(hi) == len(n) and len(n) in (1, 2)):
            raise ValueError(f"Grid: `lo`, `hi`, `n` must describe a 1D or 2D box, got {lo}, {hi}, {n}.")
        if any(a >= b for a, b in zip(lo, hi)) or any(k < 4 for k in n):
            raise ValueError(f"Grid: need lo < hi and at least 4 cells per axis, got {lo}, {hi}, {n}.")
        return Grid(lo, hi, n)

    @property
    def dim(self) -> int:
        return len(self.n)

    @property
    def dx(self) -> tuple:
        return tuple((b - a) / k for a, b, k in zip(self.lo, self.hi, self.n))

    @property
    def cell_volume(self) -> float:
        return float(np.prod(self.dx))

    def axes(self):
        """Cell-centre coordinates per axis, tuple of ``(n_k,)`` arrays."""
        return tuple(jnp.asarray(a + (np.arange(k) + 0.5) * h)
                     for a, k, h in zip(self.lo, self.n, self.dx))

    def points(self):
        """Cell centres, shape ``n`` (1D) or ``n + (2,)`` (2D): the ``x`` passed to forces."""
        ax = self.axes()
        if self.dim == 1:
            return ax[0]
        return jnp.stack(jnp.meshgrid(*ax, indexing="ij"), axis=-1)

    def face_points(self, axis: int):
        """Interior faces normal to ``axis`` (shape ``n`` with ``n[axis] - 1``, plus ``(2,)`` in 2D)."""
        ax = list(self.axes())
        ax[axis] = 0.5 * (ax[axis][1:] + ax[axis][:-1])
        if self.dim == 1:
            return ax[0]
        return jnp.stack(jnp.meshgrid(*ax, indexing="ij"), axis=-1)

    def face_component(self, field, axis: int):
        """Component ``axis`` of a vector field evaluated at [`face_points`][jaxsa.solvers.fokker_planck.Grid.face_points]."""
        return field if self.dim == 1 else field[..., axis]

    def sample(self, density_fn):
        """``density_fn(x)`` at the cell centres (e.g. ``path.marginal(t).density``)."""
        return density_fn(self.points())

    def mass(self, p):
        return jnp.sum(p, axis=tuple(range(-self.dim, 0))) * self.cell_volume


def _bernoulli_coefficient(f, T, dx):
    r"""$(T/dx)B(f\,dx/T) = f/(e^{Pe}-1)$: safe at Pe → 0 and at T = 0 (pure upwind).

    No division by a vanishing temperature: at ``T = 0`` the coefficient is the upwind limit
    $\max(-f, 0)$ (a face with ``f = 0`` and ``T = 0`` gave 0/0 under XLA's CPU
    rewrites), and $|\mathrm{Pe}|$ is clipped at 600, where $B$ has reached its
    limits to round-off.
    """
    T = jnp.maximum(T, 0.0)
    pos = T > 0
    pe = jnp.clip(f * dx / jnp.where(pos, T, 1.0), -600.0, 600.0)
    small = jnp.abs(pe) < 1e-5
    safe_pe = jnp.where(small, 1.0, pe)
    sg = jnp.where(small, (T / dx) * (1.0 - 0.5 * pe + pe**2 / 12.0), f / jnp.expm1(safe_pe))
    return jnp.where(pos, sg, jnp.maximum(-f, 0.0))


def adjacent_pairs(p, axis: int):
    """``(left, right)``: the values of ``p`` on either side of each interior face normal to
    ``axis`` — ``p`` without its last, and without its first, slice along ``axis`` (shape of ``p``
    with ``n - 1`` along ``axis``, units of ``p``)."""
    n = p.shape[axis]
    return (jax.lax.slice_in_dim(p, 0, n - 1, axis=axis), jax.lax.slice_in_dim(p, 1, n, axis=axis))


def sg_fluxes(grid: Grid, p, force_faces, T):
    r"""Scharfetter–Gummel fluxes $J = fP - T\nabla P$ at the interior faces.

    Args:
        grid: the [`Grid`][jaxsa.solvers.fokker_planck.Grid]; ``p``: density, shape ``grid.n``.
        force_faces: tuple (one per axis) of the normal force component at
            ``grid.face_points(axis)``; ``T``: scalar temperature ≥ 0.

    Returns:
        tuple of flux arrays (per axis, shape of the faces; 1/length^(d-1)/time).
    """
    out = []
    for k in range(grid.dim):
        left, right = adjacent_pairs(p, k)
        f = force_faces[k]
        out.append(f * left + _bernoulli_coefficient(f, T, grid.dx[k]) * (left - right))
    return tuple(out)


def divergence(grid: Grid, fluxes):
    """Discrete divergence of interior-face fluxes (zero flux through the boundary), shape ``n``."""
    div = 0.0
    for k in range(grid.dim):
        J = fluxes[k]
        pad = [(0, 0)] * J.ndim
        pad[k] = (1, 1)
        Jp = jnp.pad(J, pad)
        a, b = adjacent_pairs(Jp, k)
        div = div + (b - a) / grid.dx[k]
    return div


def field_at_faces(grid: Grid, field, t):
    """Normal components of the vector field ``field(t, x)`` (a force or a velocity, length/time)
    at the interior faces: a tuple with, per axis ``k``, the component ``k`` at
    ``grid.face_points(k)`` (the ``force_faces`` of [`sg_fluxes`][jaxsa.solvers.fokker_planck.sg_fluxes],
    the ``vel_faces`` of [`transport_fluxes`][jaxsa.solvers.transport.transport_fluxes])."""
    return tuple(grid.face_component(field(t, grid.face_points(k)), k) for k in range(grid.dim))


@dataclasses.dataclass(frozen=True)
class FPSettings:
    r"""Static settings of [`solve_fokker_planck`][jaxsa.solvers.fokker_planck.solve_fokker_planck].

    Attributes:
        solver: ``"auto"`` (``Kvaerno5`` in 1D, ``Tsit5`` in 2D), or a diffrax solver name.
        rtol, atol: step-size controller tolerances (atol in units of the peak density).
        max_steps: step budget; a solve that needs more (too fine a grid for an explicit
            solver, too stiff a problem) is an error.
        mass_tol: largest mass allowed in the boundary cells (initial and final densities).
        endpoint_eps: relative gap $\epsilon$ before a singular end point (schedules).
    """

    solver: str = "auto"
    rtol: float = 1e-7
    atol: float = 1e-10
    max_steps: int = 100_000
    mass_tol: float = 1e-7
    endpoint_eps: float = 1e-9


class FPSolution(eqx.Module):
    """Grid solution: ``ts`` ``(S,)``, ``p`` ``(S,) + grid.n``, ``mass_error`` (max |mass − mass₀|),
    ``min_density`` (most negative value, relative to the peak), ``num_steps``, ``success``,
    ``boundary_mass`` (largest mass in the boundary cells), ``endpoint_jump`` (schedules)."""

    ts: jax.Array
    p: jax.Array
    mass_error: jax.Array
    min_density: jax.Array
    num_steps: jax.Array
    success: jax.Array
    boundary_mass: jax.Array
    endpoint_jump: jax.Array


def boundary_mass(grid: Grid, p):
    """Mass in the outermost layer of cells (per leading batch entry)."""
    d = grid.dim
    mask = np.zeros(grid.n, bool)
    for k in range(d):
        idx = [slice(None)] * d
        idx[k] = 0
        mask[tuple(idx)] = True
        idx[k] = -1
        mask[tuple(idx)] = True
    return jnp.sum(jnp.where(mask, jnp.abs(p), 0.0), axis=tuple(range(-d, 0))) * grid.cell_volume


def _check_start(grid, p0, name):
    if tuple(jnp.shape(p0)[-grid.dim:]) != grid.n:
        raise ValueError(f"{name}: `p0` must have shape {grid.n} (grid.n), got {jnp.shape(p0)}.")
    p0 = check(jnp.all(p0 >= 0), f"{name}: `p0` must be non-negative.", p0)
    # resolution: neighbouring cells of a resolved density differ by a fraction of its peak
    peak = jnp.max(p0)
    jumps = [jnp.max(jnp.abs(jnp.diff(p0, axis=k))) for k in range(grid.dim)]
    p0 = check(jnp.max(jnp.stack(jumps)) <= 0.5 * peak,
               f"{name}: grid resolution too coarse: the initial density changes by more than "
               f"half its peak between neighbouring cells (dx = {grid.dx}); refine the grid.", p0)
    return p0


def solve_fokker_planck(force, temperature, grid: Grid, p0, ts,
                        settings: FPSettings = FPSettings()) -> FPSolution:
    """Solve Eq. 1 on ``grid`` from ``p0`` at ``ts[0]`` and save at the times ``ts``.

    Args:
        force: ``force(t, x) -> f_t(x)`` (jit-able; ``x`` of shape ``batch`` in 1D,
            ``batch + (2,)`` in 2D; length/time).
        temperature: ``temperature(t) -> T_t`` (scalar ≥ 0; length²/time).
        grid: [`Grid`][jaxsa.solvers.fokker_planck.Grid]; ``p0``: initial density on the grid, shape ``grid.n``.
        ts: ``(S,)`` increasing save times (``ts[0]`` is the start).
        settings: [`FPSettings`][jaxsa.solvers.fokker_planck.FPSettings].

    Returns:
        [`FPSolution`][jaxsa.solvers.fokker_planck.FPSolution].

    Raises:
        ValueError: negative temperature at a save time, non-finite force or temperature
            (a singular end point: use [`schedule_fokker_planck`][jaxsa.solvers.fokker_planck.schedule_fokker_planck]), boundary cells holding
            more than ``settings.mass_tol`` of mass (the grid does not hold the density), a
            grid too coarse for the initial density, a negative ``p0``, a solve that fails
            (step budget exhausted). Checked at run time through ``equinox.error_if`` when traced.

    Example:
        ```python
        g = Grid.uniform(-6, 6, 512)
        sol = solve_fokker_planck(lambda t, x: -x, lambda t: 1.0, g, g.sample(q.density), ts)
        ```
    """
    ts = jnp.asarray(ts, dtype=jnp.result_type(float))
    name = "solve_fokker_planck"
    if ts.ndim != 1 or ts.shape[0] < 2:
        raise ValueError(f"{name}: `ts` must be 1D with at least two times, got shape {ts.shape}.")
    p0 = _check_start(grid, jnp.asarray(p0, ts.dtype), name)
    p0 = _check_boundary(grid, p0, settings, name)
    # temperature at the save times and on 129 uniform times between the ends
    probe = jnp.concatenate([ts, jnp.linspace(ts[0], ts[-1], 129)])
    Ts = jax.vmap(lambda t: jnp.asarray(temperature(t), ts.dtype))(probe)
    p0 = check(jnp.all(Ts >= 0), f"{name}: negative temperature T_t on [ts[0], ts[-1]] (min "
               f"{format_number(jnp.min(Ts))} at t = {_fmt_at(probe, Ts)}); the temperature must be >= 0.",
               p0)
    # the end points must be regular (singular schedules: see schedule_fokker_planck)
    ff = [jax.vmap(lambda t: field_at_faces(grid, force, t)[k])(jnp.stack([ts[0], ts[-1]])) for k in range(grid.dim)]
    ok = jnp.all(jnp.isfinite(Ts)) & jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in ff]))
    p0 = check(ok, f"{name}: force or temperature is not finite on [ts[0], ts[-1]] (a "
               "singular end point such as m_t = 0?); use schedule_fokker_planck.", p0)
    sol = _solve_fp_jit(force, temperature, grid, p0, ts, settings)
    return _check_solution(grid, sol, settings, name)


def _check_boundary(grid, p0, settings, name):
    bm = boundary_mass(grid, p0)
    return check(bm <= settings.mass_tol, f"{name}: the grid does not hold the mass: "
                 f"{format_number(bm)} of the initial density lies in the boundary cells (> mass_tol = "
                 f"{settings.mass_tol:g}); widen the grid.", p0)


def _check_solution(grid, sol, settings, name):
    p = check(sol.success, f"{name}: the ODE solve failed (step budget max_steps = "
              f"{settings.max_steps} exhausted: problem too stiff for solver, or grid too fine).",
              sol.p)
    p = check(sol.boundary_mass <= settings.mass_tol,
              f"{name}: the grid does not hold the mass: {format_number(sol.boundary_mass)} lies in the "
              f"boundary cells (> mass_tol = {settings.mass_tol:g}); widen the grid.", p)
    return eqx.tree_at(lambda s: s.p, sol, p)


def _ode_solver(name: str, grid: Grid):
    """The diffrax solver; implicit ones in 1D get the O(n) tridiagonal Newton solve."""
    if name == "auto":
        name = "Kvaerno5" if grid.dim == 1 else "Tsit5"
    cls = getattr(diffrax, name)
    if grid.dim == 1 and issubclass(cls, diffrax.AbstractImplicitSolver):
        root = diffrax.with_stepsize_controller_tols(diffrax.VeryChord)(linear_solver=Tridiagonal1D())
        return cls(root_finder=root)
    return cls()


@eqx.filter_jit
def _solve_fp_jit(force, temperature, grid, p0, ts, settings):
    return _solve_fp(force, temperature, grid, p0, ts, settings)


def _solve_fp(force, temperature, grid, p0, ts, settings):
    def rhs(t, p, args):
        return -divergence(grid, sg_fluxes(grid, p, field_at_faces(grid, force, t), temperature(t)))

    solver = _ode_solver(settings.solver, grid)
    scale = jnp.max(p0)
    ctrl = diffrax.PIDController(rtol=settings.rtol, atol=settings.atol * scale)
    span = ts[-1] - ts[0]
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs), solver, t0=ts[0], t1=ts[-1], dt0=span * 1e-4, y0=p0,
        saveat=diffrax.SaveAt(ts=ts), stepsize_controller=ctrl, max_steps=settings.max_steps,
        throw=False)
    p = sol.ys
    mass = grid.mass(p)
    return FPSolution(
        ts=ts, p=p, mass_error=jnp.max(jnp.abs(mass - mass[0])),
        min_density=jnp.min(p) / scale, num_steps=sol.stats["num_accepted_steps"],
        success=sol.result == diffrax.RESULTS.successful,
        boundary_mass=jnp.max(boundary_mass(grid, p)), endpoint_jump=jnp.zeros((), p.dtype))


def schedule_fokker_planck(schedule, grid: Grid, p0, ts, settings: FPSettings = FPSettings()):
    r"""Eq. 1 for a diffusion schedule ([spec §3][spec-3]): $f_t = (\dot m_t/m_t)x$, $T_t$ of Eq. 23.

    Where $m_t = 0$ at the last time (cond-OT and cosine at τ) the solve runs to
    $t_{S} (1-\epsilon)$ and the saved density at $t_S$ is the exact limit,
    the discrete Gibbs state $\propto\exp(-|x|^2/2\sigma^2_{t_S})$ scaled to the mass
    (see the module docstring); ``endpoint_jump`` reports its max distance from the
    $t_S(1-\epsilon)$ solution. Arguments and errors as [`solve_fokker_planck`][jaxsa.solvers.fokker_planck.solve_fokker_planck]; the
    schedule is checked first ([`jaxsa.check_schedule`][jaxsa.schedules.standard.check_schedule]: end conditions and Eq. 24, i.e.
    a negative temperature is an error, not clamped).
    """
    ts = jnp.asarray(ts, dtype=jnp.result_type(float))
    name = "schedule_fokker_planck"
    p0 = _check_start(grid, jnp.asarray(p0, ts.dtype), name)
    p0 = _check_boundary(grid, p0, settings, name)
    # docs/spec.md §3 conditions, among them Eq. 24 (T_t >= 0): a negative temperature is an error
    schedule = check_schedule(schedule)
    sol = _schedule_fp_jit(schedule, grid, p0, ts, settings)
    return _check_solution(grid, sol, settings, name)


@eqx.filter_jit
def _schedule_fp_jit(schedule, grid, p0, ts, settings):
    # Time change ds = dt/m_t: in s the generator is m_t(-div J_t), whose force m f = dm x and
    # temperature m T = m sigma dsigma - sigma^2 dm stay finite where m_t = 0.
    tau = schedule.tau
    v_end = schedule.values(ts[-1])
    singular = jnp.abs(v_end.m) < 1e-12  # m_tau = 0 up to round-off (cosine: cos(pi/2))
    gx, gw = gauss_legendre(128, dtype=ts.dtype)  # on [0, 1]

    def s_of(t):  # s(t) = int_{t0}^t dt'/m_t' (Gauss-Legendre; used where m > 0)
        nodes = ts[0] + (t - ts[0]) * gx
        return (t - ts[0]) * jnp.sum(gw / schedule.values(nodes).m)

    t_a = ts[0] + (1 - 1e-3) * (ts[-1] - ts[0])
    # m_t ~ |dm_end| (t_end - t) near a singular end: tau - t decays like exp(-|dm_end| s)
    s_end = s_of(t_a) + jnp.log(1e-3 / settings.endpoint_eps) / jnp.maximum(jnp.abs(v_end.dm), 1e-30)
    ss = jax.vmap(s_of)(ts)
    ss = jnp.where(singular & (jnp.arange(ts.shape[0]) == ts.shape[0] - 1), s_end, ss)

    # the time rides along in the state, as the log-gap y = -ln((t_end - t)/(t_end - t0)) at a
    # singular end (dy/ds = m/(t_end - t) stays finite; relative accuracy of the gap) or as t
    span = ts[-1] - ts[0]

    def t_of(y):
        return jnp.where(singular, ts[0] - span * jnp.expm1(-y), y)

    def rhs(s, y, args):
        u, p = y
        t = t_of(u)
        v = schedule.values(t)
        ff = tuple(grid.face_component(v.dm * grid.face_points(k), k) for k in range(grid.dim))
        mT = jnp.maximum(v.m * v.sigma_dsigma - v.sigma_sq * v.dm, 0.0)
        du = jnp.where(singular, v.m / (span * jnp.exp(-jnp.where(singular, u, 0.0))), v.m)
        return du, -divergence(grid, sg_fluxes(grid, p, ff, mT))

    scale = jnp.max(p0)
    ctrl = diffrax.PIDController(rtol=settings.rtol, atol=settings.atol * scale)
    y0 = jnp.where(singular, jnp.zeros_like(ts[0]), ts[0])
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs), _ode_solver(settings.solver, grid), t0=ss[0], t1=ss[-1],
        dt0=(ss[-1] - ss[0]) * 1e-4, y0=(y0, p0), saveat=diffrax.SaveAt(ts=ss),
        stepsize_controller=ctrl, max_steps=settings.max_steps, throw=False)
    u_saved, p = sol.ys
    t_saved = t_of(u_saved)
    x = grid.points()
    r2 = x**2 if grid.dim == 1 else jnp.sum(x**2, -1)
    gibbs = jnp.exp(-0.5 * r2 / v_end.sigma_sq)
    gibbs = gibbs * grid.mass(p0) / grid.mass(gibbs)
    jump = jnp.where(singular, jnp.max(jnp.abs(gibbs - p[-1])), 0.0)
    p = p.at[-1].set(jnp.where(singular, gibbs, p[-1]))
    mass = grid.mass(p)
    t_err = jnp.max(jnp.abs(jnp.where(singular, t_saved.at[-1].set(ts[-1]), t_saved) - ts))
    return FPSolution(
        ts=ts, p=p, mass_error=jnp.max(jnp.abs(mass - mass[0])),
        min_density=jnp.min(p) / scale, num_steps=sol.stats["num_accepted_steps"],
        success=(sol.result == diffrax.RESULTS.successful) & (t_err < 1e-6 * tau),
        boundary_mass=jnp.max(boundary_mass(grid, p)), endpoint_jump=jump)


# ---------------------------------------------------------------------------- transport


def _fmt_at(times, values):
    """The time of the smallest value (for messages)."""
    return f"{float(times[jnp.argmin(values)]):.4g}" if is_concrete(times, values) else "<traced>"
