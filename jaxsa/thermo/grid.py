r"""Thermodynamics of a density on a grid ([spec §1][spec-1] Eqs. 36–39, [§2][spec-2] Eqs. 66–67, [§6][spec-6]).

Given a grid density $P$ and face fluxes $J = \nu P$ (from
[`jaxsa.solvers.fokker_planck.sg_fluxes`][jaxsa.solvers.fokker_planck.sg_fluxes] for a force and temperature, or any flux):

* $T\dot S^{tot} = \int \|\nu\|^2 P = \sum_{faces} J^2/P_{face}\,dV$ (Eq. 36);
* $T\dot S^{sys} = -T\int \partial_t P \ln P = T\sum_i (\nabla\cdot J)_i \ln P_i\,dV$;
* $T\dot S^{bath} = \int f\cdot\nu P = \sum_{faces} f J\,dV$;
* $v_2^2 = \int\|\nabla\phi\|^2 P$ with $\nabla\cdot(P\nabla\phi) = \nabla\cdot J$ (the
  projection of $\nu$ on gradient fields in $L^2(P)$, Eq. 66 and §2), solved by
  Jacobi-preconditioned conjugate gradients on the discrete weighted Laplacian (whose
  discrete gradient and divergence are adjoint, so Pythagoras holds exactly on the grid);
* the housekeeping part $T\dot S^{tot} - v_2^2 = \int\|\nu-\nabla\phi\|^2 P \ge 0$.

In 1D every zero-boundary flux is a gradient flux, so $v_2^2 = T\dot S^{tot}$ exactly and
no solve is needed. $P_{face}$ is the arithmetic mean of the two cells.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxsa.solvers.fokker_planck import Grid, adjacent_pairs, divergence, field_at_faces, sg_fluxes

__all__ = ["EntropyRates", "entropy_rates", "flux_entropy_rates", "gradient_projection",
           "ou_gaussian_rates"]


class EntropyRates(eqx.Module):
    r"""Entropy production parts at one time (arrays; batched under vmap).

    ``T_total`` = $T\dot S^{tot}$ (length²/time²), ``T_system``, ``T_bath`` (their sum
    approximates ``T_total`` to discretisation error), ``v2_sq`` ($v_2^2$),
    ``housekeeping`` (``T_total - v2_sq``), ``cg_residual`` (relative residual of the Poisson
    solve; 0 in 1D).
    """

    T_total: jax.Array
    T_system: jax.Array
    T_bath: jax.Array
    v2_sq: jax.Array
    housekeeping: jax.Array
    cg_residual: jax.Array


def _face_density(grid, p, k):
    a, b = adjacent_pairs(p, k)
    return 0.5 * (a + b)


def gradient_projection(grid: Grid, p, fluxes, tol: float = 1e-11, maxiter: int = 4000,
                        floor: float = 1e-12):
    r"""$v_2^2 = \min_\phi \int\|\nabla\phi\|^2P$ s.t. $\nabla\cdot(P\nabla\phi) = \nabla\cdot J$.

    Args:
        grid, p: [`Grid`][jaxsa.solvers.fokker_planck.Grid] and density (shape ``grid.n``).
        fluxes: tuple of interior-face fluxes $J = \nu P$ per axis.
        tol, maxiter: conjugate-gradient stopping rule; ``floor``: weights are
            $\max(P_{face}, 0) + floor\cdot\max P$ (keeps the operator definite where
            P ≈ 0, also when an explicit solve left round-off negatives of order ``atol``).
            At 128² (rotational OU, see ``tests/thermo/test_thermo.py``) Jacobi-preconditioned CG
            reaches a relative residual of 1e-10 in about 0.1 s.

    Returns:
        ``(v2_sq, gradient_fluxes, relative_residual)``.
    """
    dV = grid.cell_volume
    w = tuple(jnp.maximum(_face_density(grid, p, k), 0.0) + floor * jnp.max(p) for k in range(grid.dim))
    if grid.dim == 1:
        return jnp.sum(fluxes[0] ** 2 / w[0]) * dV, fluxes, jnp.zeros((), p.dtype)

    def grad(phi):
        out = []
        for k in range(grid.dim):
            a, b = adjacent_pairs(phi, k)
            out.append((b - a) / grid.dx[k])
        return out

    def op(phi):  # -div(w grad phi), symmetric positive semi-definite
        return -divergence(grid, tuple(wk * g for wk, g in zip(w, grad(phi))))

    rhs = -divergence(grid, fluxes)
    diag = 0.0
    for k in range(grid.dim):
        pad = [(0, 0)] * grid.dim
        pad[k] = (1, 1)
        wp = jnp.pad(w[k], pad)
        a, b = adjacent_pairs(wp, k)
        diag = diag + (a + b) / grid.dx[k] ** 2
    phi, _ = jax.scipy.sparse.linalg.cg(op, rhs, M=lambda r: r / diag, tol=tol, maxiter=maxiter)
    gflux = tuple(wk * g for wk, g in zip(w, grad(phi)))
    v2_sq = sum(jnp.sum(g**2 / wk) for g, wk in zip(gflux, w)) * dV
    res = jnp.linalg.norm(op(phi) - rhs) / jnp.maximum(jnp.linalg.norm(rhs), 1e-300)
    return v2_sq, gflux, res


def flux_entropy_rates(grid: Grid, p, fluxes, force_faces=None, T=None, **cg) -> EntropyRates:
    r"""[`EntropyRates`][jaxsa.thermo.grid.EntropyRates] from a density and its face fluxes $J = \nu P$.

    ``force_faces`` (tuple per axis, normal force component at the faces) and ``T`` are
    needed only for the system/bath split; without them ``T_system`` and ``T_bath`` are NaN.
    """
    dV = grid.cell_volume
    pf = tuple(_face_density(grid, p, k) for k in range(grid.dim))
    total = sum(jnp.sum(jnp.where(w > 0, J**2 / jnp.where(w > 0, w, 1.0), 0.0))
                for J, w in zip(fluxes, pf)) * dV
    v2_sq, _, res = gradient_projection(grid, p, fluxes, **cg)
    if force_faces is None:
        sys_ = bath = jnp.full((), jnp.nan, p.dtype)
    else:
        logp = jnp.log(jnp.maximum(p, 1e-300))
        sys_ = T * jnp.sum(divergence(grid, fluxes) * logp) * dV
        bath = sum(jnp.sum(f * J) for f, J in zip(force_faces, fluxes)) * dV
    return EntropyRates(T_total=total, T_system=sys_, T_bath=bath, v2_sq=v2_sq,
                        housekeeping=total - v2_sq, cg_residual=res)


def entropy_rates(force, temperature, grid: Grid, p, t, **cg) -> EntropyRates:
    r"""Entropy production parts of the Fokker–Planck density ``p`` at time ``t`` (Eqs. 36–39).

    ``force(t, x)``, ``temperature(t)`` as in [`jaxsa.solvers.fokker_planck.solve_fokker_planck`][jaxsa.solvers.fokker_planck.solve_fokker_planck];
    fluxes are the Scharfetter–Gummel ones of that solver. Divide by ``temperature(t)`` for
    $\dot S$.

    Example:
        ```python
        r = entropy_rates(force, temp, grid, sol.p[-1], sol.ts[-1])
        r.T_total, r.v2_sq, r.housekeeping
        ```
    """
    ff = field_at_faces(grid, force, t)
    T = temperature(t)
    return flux_entropy_rates(grid, p, sg_fluxes(grid, p, ff, T), ff, T, **cg)


def ou_gaussian_rates(A, T, cov0, t) -> EntropyRates:
    r"""Closed form for the Ornstein–Uhlenbeck process $f(x) = Ax$, constant ``T``, from
    $\mathcal N(0, \Sigma_0)$ (reference for the grid; any ``d``).

    $\dot\Sigma = A\Sigma + \Sigma A^\top + 2TI$ (solved exactly through the matrix
    exponential of the vectorised system), $\nu = Bx$, $B = A + T\Sigma^{-1}$;
    $T\dot S^{tot} = \mathrm{tr}(B\Sigma B^\top)$, $T\dot S^{bath} = \mathrm{tr}(A\Sigma B^\top)$,
    $T\dot S^{sys} = \tfrac T2\mathrm{tr}(\Sigma^{-1}\dot\Sigma)$; $v_2^2 = \mathrm{tr}(S\Sigma S)$
    with symmetric $S$ solving $S\Sigma + \Sigma S = \dot\Sigma$ (the gradient part
    $\nabla\phi = Sx$). Returns [`EntropyRates`][jaxsa.thermo.grid.EntropyRates] (``cg_residual`` 0).
    """
    A = jnp.asarray(A, jnp.result_type(float))
    d = A.shape[0]
    eye = jnp.eye(d, dtype=A.dtype)
    M = jnp.kron(eye, A) + jnp.kron(A, eye)  # vec(A S + S A^T), column-major vec
    aug = jnp.zeros((d * d + 1, d * d + 1), A.dtype)
    aug = aug.at[: d * d, : d * d].set(M).at[: d * d, -1].set(2 * T * eye.ravel(order="F"))
    y0 = jnp.concatenate([jnp.asarray(cov0, A.dtype).ravel(order="F"), jnp.ones(1, A.dtype)])
    y = jax.scipy.linalg.expm(aug * t) @ y0
    cov = y[: d * d].reshape(d, d, order="F")
    cov = 0.5 * (cov + cov.T)
    dcov = A @ cov + cov @ A.T + 2 * T * eye
    B = A + T * jnp.linalg.inv(cov)
    total = jnp.trace(B @ cov @ B.T)
    L = jnp.kron(cov.T, eye) + jnp.kron(eye, cov)
    S = jnp.linalg.solve(L, dcov.ravel(order="F")).reshape(d, d, order="F")
    v2 = jnp.trace(S @ cov @ S)
    return EntropyRates(T_total=total, T_system=0.5 * T * jnp.trace(jnp.linalg.solve(cov, dcov)),
                        T_bath=jnp.trace(A @ cov @ B.T), v2_sq=v2, housekeeping=total - v2,
                        cg_residual=jnp.zeros((), A.dtype))
