r"""The speed-accuracy relations in 1D computed on a grid: an independent method ([spec §4][spec-4]).

[`speed_accuracy_grid`][jaxsa.relations.grid.speed_accuracy_grid] computes $\eta$, $c_1$, $c_2$, $D_0$ without the
closed-form marginals or particles of [`jaxsa.speed_accuracy`][jaxsa.relations.speed_accuracy]:

* **forward process**: the Fokker–Planck equation (Eq. 1) for the schedule's force and
  temperature on a uniform grid ([`jaxsa.solvers.fokker_planck.schedule_fokker_planck`][jaxsa.solvers.fokker_planck.schedule_fokker_planck],
  Scharfetter–Gummel finite volumes, Kvaerno5), started from the data's cell averages;
  $v_2(t)^2 = T_t\dot S^{tot}_t = \sum_{faces} J^2/P_{face}\,dx$ from its fluxes
  ([`jaxsa.thermo.grid`][jaxsa.thermo.grid]; in 1D every flux is a gradient flux);
* **estimated process**: the continuity equation with the velocity field $\nu_t$
  (Eqs. 96–97, ``path.velocity``) carries the cell averages of $\tilde P_\tau$ from τ back
  to 0 (MUSCL / SSP-RK3, [`jaxsa.solvers.transport.transport_fluxes`][jaxsa.solvers.transport.transport_fluxes]), the step refined so
  that every Gauss–Legendre time node is a step boundary;
* **Wasserstein distances from CDFs**: $W_1(P_t,\tilde P_t) = \int|F_t-\tilde F_t|dx$ with
  the CDFs at the faces (cumulative cell masses), integrated exactly for their piecewise-linear
  interpolant ([`abs_integral`][jaxsa.relations.grid.abs_integral]), and its exact time derivative
  $\partial_t W_1 = \int \mathrm{sign}(F_t-\tilde F_t)\,(\tilde J_t - J_t)\,dx$ (since
  $\partial_t F = -J$; no finite differences in time), with both fluxes written
  $\nu_t P_{face}$ so that their difference carries no scheme-dependent O(dx²) error;
* $D_0 = \sum (\tilde P_\tau - P_\tau)^2/P_\tau\,dx$, $\eta = \Delta W_1^2/(\tau D_0)$,
  $c_1 = \int (\partial_t W_1)^2/D_0\,dt$, $c_2 = \int v_2^2 dt$ (Gauss–Legendre
  nodes in $(0, \tau)$, which avoid the singular end point of cond-OT and cosine).

Every piece is second order in ``dx``; see ``tests/relations/test_grid_relations.py`` and
``benchmarks/RESULTS.md`` for the measured errors against [`jaxsa.speed_accuracy`][jaxsa.relations.speed_accuracy].
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsa._checks import check, format_number, is_concrete, warn_if_float32
from jaxsa.solvers.fokker_planck import FPSettings, Grid, boundary_mass, divergence, field_at_faces, schedule_fokker_planck, sg_fluxes
from jaxsa.solvers.transport import transport_fluxes
from jaxsa.processes.diffusion import DiffusionPath
from jaxsa.quadrature import gauss_legendre

__all__ = ["GridSettings", "GridReport", "speed_accuracy_grid", "cell_averages", "abs_integral"]


@dataclasses.dataclass(frozen=True)
class GridSettings:
    """Static resolution of [`speed_accuracy_grid`][jaxsa.relations.grid.speed_accuracy_grid].

    Attributes:
        n_cells: cells of the uniform grid on ``x_range``.
        x_range: ``(x_min, x_max)``; must hold the mass of every density (checked).
        n_gauss: Gauss–Legendre time nodes for $c_1, c_2$.
        cfl: Courant number of the transport steps (≤ 1/2 keeps positivity).
        n_steps: transport steps over ``[0, τ]`` before refinement at the time nodes;
            ``None``: the fewest giving ``cfl`` for the largest speed on the grid (needs a
            concrete ``path``).
        fp: [`FPSettings`][jaxsa.solvers.fokker_planck.FPSettings] of the forward solve.
    """

    n_cells: int = 512
    x_range: tuple = (-7.0, 7.0)
    n_gauss: int = 24
    cfl: float = 0.4
    n_steps: int | None = None
    fp: FPSettings = FPSettings()

    def refined(self, factor: int = 2) -> "GridSettings":
        """Grid refined by ``factor`` (time nodes and tolerances kept: the spatial error dominates)."""
        n = None if self.n_steps is None else self.n_steps * factor
        return dataclasses.replace(self, n_cells=self.n_cells * factor, n_steps=n)


class GridReport(eqx.Module):
    r"""Result of [`speed_accuracy_grid`][jaxsa.relations.grid.speed_accuracy_grid].

    Scalars: ``eta``, ``c1``, ``c2``, ``D0``, ``W1_q_p``, ``W1_init``, ``delta_W1`` (as in
    [`jaxsa.Report`][jaxsa.relations.Report]). Series on the Gauss–Legendre nodes ``t`` ``(n_gauss,)``: ``v2_sq``,
    ``vloss_sq``, ``W1_t``, ``dW1_dt``. Densities (cell values, ``x`` the centres):
    ``forward_t`` ``(S,)`` and ``forward_density`` ``(S, n)`` (the Fokker–Planck solution,
    ``S = n_gauss + 2``, the ends included), ``generated_density`` ($p = \tilde P_0$).
    Diagnostics: ``mass_error`` (largest of both processes), ``min_density`` (relative to the
    peak), ``max_cfl``, ``fp_steps``, ``endpoint_jump``, ``boundary_mass`` (largest mass in
    the boundary cells along the estimated process), ``transport_steps``.
    """

    eta: jax.Array
    c1: jax.Array
    c2: jax.Array
    D0: jax.Array
    W1_q_p: jax.Array
    W1_init: jax.Array
    delta_W1: jax.Array
    t: jax.Array
    v2_sq: jax.Array
    vloss_sq: jax.Array
    W1_t: jax.Array
    dW1_dt: jax.Array
    x: jax.Array
    forward_t: jax.Array
    forward_density: jax.Array
    generated_density: jax.Array
    mass_error: jax.Array
    min_density: jax.Array
    max_cfl: jax.Array
    fp_steps: jax.Array
    endpoint_jump: jax.Array
    boundary_mass: jax.Array
    transport_steps: int = eqx.field(static=True)


def cell_averages(grid: Grid, density):
    """Cell averages of a 1D density: CDF differences over the cells when ``density`` has a
    ``cdf`` (exact masses, also for discontinuous densities such as [`jaxsa.Uniform`][jaxsa.densities.Uniform]),
    else the values at the centres; an array of shape ``grid.n`` is returned as is."""
    if isinstance(density, (jax.Array, np.ndarray)):
        return jnp.asarray(density, jnp.result_type(float))
    if hasattr(density, "cdf"):
        edges = jnp.linspace(grid.lo[0], grid.hi[0], grid.n[0] + 1, dtype=jnp.result_type(float))
        return jnp.diff(density.cdf(edges)) / grid.dx[0]
    return density.density(grid.points())


def abs_integral(d, dx):
    r"""$\int |D|$ for ``d`` the values of $D$ at the interior faces (zero at both
    ends), exact for the piecewise-linear interpolant: a segment where $D$ changes sign
    contributes $dx(a^2+b^2)/(2|a-b|)$ instead of the trapezoid $dx|a+b|/2$, so the
    kinks cost no accuracy and the ``jax.jvp`` of this function (the time derivative of
    $W_1$ from that of $D$) is continuous in the position of the crossing."""
    z = jnp.zeros(d.shape[:-1] + (1,), d.dtype)
    d = jnp.concatenate([z, d, z], -1)
    a, b = d[..., :-1], d[..., 1:]
    cross = a * b < 0
    gap = jnp.where(cross, a - b, 1.0)
    seg = jnp.where(cross, (a**2 + b**2) / (2 * jnp.abs(gap)), 0.5 * jnp.abs(a + b))
    return jnp.sum(seg, -1) * dx


def _step_layout(frac_nodes, n_steps):
    """Backward steps from τ to 0 (fractions of τ) with every node a step boundary.

    Returns static numpy arrays: step start fractions, step lengths (negative), and for each
    node the index of the state (after that many steps) that lands on it.
    """
    bounds = np.concatenate([[1.0], frac_nodes[::-1], [0.0]])
    starts, lengths, land = [], [], [0]
    for a, b in zip(bounds[:-1], bounds[1:]):
        k = max(1, int(np.ceil((a - b) * n_steps)))
        h = (b - a) / k
        starts.extend(a + h * np.arange(k))
        lengths.extend([h] * k)
        land.append(land[-1] + k)
    return np.asarray(starts), np.asarray(lengths), np.asarray(land)


def speed_accuracy_grid(path: DiffusionPath, perturbation, settings: GridSettings = GridSettings()
                        ) -> GridReport:
    r"""η, c₁, c₂, D₀ of one forward process and one perturbed start, all on a grid.

    Args:
        path: a 1D [`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath] (schedule and data; its velocity field drives
            the estimated process, its schedule's force and temperature the Fokker–Planck solve).
        perturbation: the perturbed start $\tilde P_\tau$: a 1D density object
            (``GaussianMixture``, ``Uniform``; cell averages from its CDF) or an array of cell
            values of shape ``(n_cells,)``.
        settings: [`GridSettings`][jaxsa.relations.grid.GridSettings].

    Returns:
        [`GridReport`][jaxsa.relations.grid.GridReport].

    Raises:
        ValueError: a grid that does not hold the mass (of the data, the forward solution or
            the perturbation: more than ``settings.fp.mass_tol`` in the boundary cells), a
            grid too coarse for the data, a negative perturbation, a failed solve, a CFL
            above 1/2, an estimated process that reaches the boundary cells.

    Example:
        ```python
        with jaxsa.float64():
            path = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), jaxsa.paper_data())
            rep = speed_accuracy_grid(path, jaxsa.gaussian(1.0, 1.0))
            print(rep.eta, rep.c1, rep.c2)
        ```
    """
    warn_if_float32("speed_accuracy_grid (η, c₁, c₂, D₀)", path)
    if not isinstance(path, DiffusionPath) or path.data.means.ndim != 1:
        raise ValueError("speed_accuracy_grid: `path` must be a 1D DiffusionPath.")
    s = settings
    grid = Grid.uniform(s.x_range[0], s.x_range[1], s.n_cells)
    q0 = cell_averages(grid, path.data)
    pt = cell_averages(grid, perturbation)
    if pt.shape != grid.n:
        raise ValueError(f"speed_accuracy_grid: `perturbation` cell values must have shape "
                         f"{grid.n}, got {pt.shape}.")
    pt = check(jnp.all(pt >= 0), "speed_accuracy_grid: the perturbation must be non-negative.", pt)
    bm = boundary_mass(grid, pt)
    pt = check(bm <= s.fp.mass_tol, f"speed_accuracy_grid: the grid does not hold the mass of "
               f"the perturbation: {format_number(bm)} lies in the boundary cells (> mass_tol = "
               f"{s.fp.mass_tol:g}); widen `x_range`.", pt)
    frac, _ = gauss_legendre(s.n_gauss)
    tau = path.tau
    ts = jnp.concatenate([jnp.zeros(1), jnp.asarray(frac) * tau, jnp.ones(1) * tau])
    fp = schedule_fokker_planck(path.schedule, grid, q0, ts, s.fp)
    n_steps = s.n_steps
    if n_steps is None:
        if not is_concrete(path):
            raise ValueError("speed_accuracy_grid: set `settings.n_steps` when `path` is traced.")
        speed = jax.jit(jax.vmap(lambda t: jnp.max(jnp.abs(field_at_faces(grid, path.velocity, t)[0]))))
        vmax = float(jnp.max(speed(jnp.linspace(0.0, 1.0, 65) * tau)))
        n_steps = int(np.ceil(vmax * float(tau) / grid.dx[0] / s.cfl))
    rep = _grid_jit(path, grid, fp.p, fp.num_steps, fp.endpoint_jump, fp.mass_error, pt, s, n_steps)
    p = check(rep.max_cfl <= 0.5, f"speed_accuracy_grid: transport step too coarse for stability "
              f"(CFL {format_number(rep.max_cfl)} > 1/2); lower `settings.cfl` or raise `n_steps`.",
              rep.generated_density)
    p = check(rep.boundary_mass <= s.fp.mass_tol, f"speed_accuracy_grid: the grid does not hold "
              f"the mass of the estimated process: {format_number(rep.boundary_mass)} reaches the boundary "
              f"cells (> mass_tol = {s.fp.mass_tol:g}); widen `x_range`.", p)
    return eqx.tree_at(lambda r: r.generated_density, rep, p)


@eqx.filter_jit
def _grid_jit(path, grid, P, fp_steps, jump, fp_mass_error, pt_tau, s: GridSettings, n_steps):
    dtype = P.dtype
    tau = path.tau
    dx = grid.dx[0]
    frac, gw = gauss_legendre(s.n_gauss)
    tg = jnp.asarray(frac, dtype) * tau
    gw = jnp.asarray(gw, dtype) * tau
    pt_tau = pt_tau / (jnp.sum(pt_tau) * dx)  # unit mass on the grid
    P_tau, q = P[-1], P[0]
    Pg = P[1:-1]  # forward densities at the Gauss nodes

    # forward: Scharfetter-Gummel fluxes and v2^2 = sum J^2 / P_face dx at the nodes
    sch = path.schedule

    def fp_flux(t, p):
        return sg_fluxes(grid, p, field_at_faces(grid, sch.force, t), sch.temperature(t))[0]

    J = jax.vmap(fp_flux)(tg, Pg)
    Pface = 0.5 * (Pg[:, 1:] + Pg[:, :-1])
    v2_sq = jnp.sum(jnp.where(Pface > 0, J**2 / jnp.where(Pface > 0, Pface, 1.0), 0.0), -1) * dx

    # estimated process: transport from tau back to 0, landing on every node
    starts, lengths, land = _step_layout(frac, n_steps)

    def vfaces(t):
        return field_at_faces(grid, path.velocity, t)

    def rate(t, p):  # -div(v P), upwinded along -v: the direction of travel backward in time
        v = vfaces(t)
        return divergence(grid, transport_fluxes(grid, p, tuple(-a for a in v))), v

    def step(carry, sh):
        p, cfl = carry
        t0, h = sh[0] * tau, sh[1] * tau  # h < 0
        k1, v = rate(t0, p)
        p1 = p + h * k1
        k2, _ = rate(t0 + h, p1)
        p2 = 0.75 * p + 0.25 * (p1 + h * k2)
        k3, _ = rate(t0 + 0.5 * h, p2)
        p3 = p / 3.0 + (2.0 / 3.0) * (p2 + h * k3)
        c = jnp.max(jnp.abs(v[0])) / dx * jnp.abs(h)
        return (p3, jnp.maximum(cfl, c)), p3

    xs = jnp.stack([jnp.asarray(starts, dtype), jnp.asarray(lengths, dtype)], -1)
    (p_gen, cfl), traj = jax.lax.scan(step, (pt_tau, jnp.zeros((), dtype)), xs)
    traj = jnp.concatenate([pt_tau[None], traj])
    Pt_g = traj[np.asarray(land[1:-1])][::-1]  # estimated densities at the nodes, increasing t

    # W1 from the CDFs at the interior faces, and its exact time derivative
    def cdf(p):
        return jnp.cumsum(p, axis=-1)[..., :-1] * dx

    F, Ft = cdf(Pg), cdf(Pt_g)
    vel = jax.vmap(lambda t: vfaces(t)[0])(tg)
    D_dot = vel * (0.5 * (Pt_g[:, 1:] + Pt_g[:, :-1]) - Pface)  # d/dt (F - F~) = J~ - J
    W1_t, dW1 = jax.vmap(lambda d, dd: jax.jvp(lambda a: abs_integral(a, dx), (d,), (dd,)))(
        F - Ft, D_dot)
    D0 = jnp.sum((pt_tau - P_tau) ** 2 / P_tau) * dx
    W1_q_p = abs_integral(cdf(q) - cdf(p_gen), dx)
    W1_init = abs_integral(cdf(P_tau) - cdf(pt_tau), dx)
    delta = W1_q_p - W1_init
    vloss_sq = dW1**2 / D0
    m_gen = jnp.sum(p_gen) * dx
    return GridReport(
        eta=delta**2 / (tau * D0), c1=jnp.sum(gw * vloss_sq), c2=jnp.sum(gw * v2_sq), D0=D0,
        W1_q_p=W1_q_p, W1_init=W1_init, delta_W1=delta, t=tg, v2_sq=v2_sq,
        vloss_sq=vloss_sq, W1_t=W1_t, dW1_dt=dW1, x=grid.points(),
        forward_t=jnp.concatenate([jnp.zeros(1, dtype), tg, jnp.ones(1, dtype) * tau]),
        forward_density=P, generated_density=p_gen,
        mass_error=jnp.maximum(fp_mass_error, jnp.abs(m_gen - 1.0)),
        min_density=jnp.minimum(jnp.min(P) / jnp.max(P), jnp.min(traj) / jnp.max(pt_tau)),
        max_cfl=cfl, fp_steps=fp_steps, endpoint_jump=jump,
        boundary_mass=jnp.max(boundary_mass(grid, traj)), transport_steps=len(starts))
