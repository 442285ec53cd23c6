r"""A lineax solver for the Newton systems of the 1D method of lines (tridiagonal Jacobian).

The implicit solvers of diffrax (``Kvaerno5``) solve $(I - \gamma h J)\,\delta = r$ at
every stage, where $J$ is the Jacobian of the right-hand side. For the 1D finite-volume
Fokker–Planck generator $J$ is tridiagonal; diffrax's default (``AutoLinearSolver``)
materialises it as a dense matrix and LU-factorises it, $O(n^3)$ per step, which made
512 cells take minutes. `Tridiagonal1D` recovers the three diagonals from three
matrix-vector products (probing with the vectors $\mathbb 1[i \bmod 3 = k]$) and solves
in $O(n)$ with ``jax.lax.linalg.tridiagonal_solve``.

The state may also be ``(t, p)`` — the time riding along in the state, as in the time-changed
solve of [`jaxsa.solvers.fokker_planck.schedule_fokker_planck`][jaxsa.solvers.fokker_planck.schedule_fokker_planck]. Then the Jacobian is block lower
triangular, $\begin{pmatrix} a & 0 \\ c & A\end{pmatrix}$ (``dt/ds`` depends on ``t``
only), and the solve is $\delta t = r_t/a$, $A\,\delta p = r_p - c\,\delta t$.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import lineax as lx

__all__ = ["Tridiagonal1D"]


def _diagonals(mv, n, dtype):
    """The three diagonals of the linear map ``mv`` on ``(n,)`` vectors (3 products)."""
    idx = jnp.arange(n)
    probes = jnp.stack([(idx % 3 == k).astype(dtype) for k in range(3)])
    R = jax.vmap(mv)(probes)  # R[k, i] = sum over j = k mod 3 of A[i, j]
    diag = R[idx % 3, idx]
    lower = jnp.where(idx > 0, R[(idx - 1) % 3, idx], 0.0)  # A[i, i-1]
    upper = jnp.where(idx < n - 1, R[(idx + 1) % 3, idx], 0.0)  # A[i, i+1]
    return lower, diag, upper


class Tridiagonal1D(lx.AbstractLinearSolver):
    r"""Solver for operators on ``p`` ``(n,)`` with tridiagonal matrix, or on ``(t, p)`` with
    the block lower-triangular structure described in the module docstring. No pivoting
    is needed for the M-matrix-like Newton matrices $I - \gamma h J$ of the FP generator."""

    def init(self, operator, options: dict[str, Any]):
        del options
        struct = operator.in_structure()
        if isinstance(struct, tuple):
            (ts, ps) = struct
            n, dtype = ps.shape[0], ps.dtype
            zero_t = jnp.zeros(ts.shape, ts.dtype)
            a, c = operator.mv((jnp.ones(ts.shape, ts.dtype), jnp.zeros(ps.shape, dtype)))
            bands = _diagonals(lambda v: operator.mv((zero_t, v))[1], n, dtype)
            return bands, (a, c)
        if len(struct.shape) != 1:
            raise ValueError("Tridiagonal1D: the state must be a 1D array or (t, p).")
        return _diagonals(operator.mv, struct.shape[0], struct.dtype), None

    def compute(self, state, vector, options):
        del options
        (lower, diag, upper), coupling = state
        if coupling is None:
            rp = vector
        else:
            a, c = coupling
            rt, rp = vector
            dt = rt / a
            rp = rp - c * dt
        sol = jax.lax.linalg.tridiagonal_solve(lower, diag, upper, rp[:, None])[:, 0]
        out = sol if coupling is None else (dt, sol)
        return out, lx.RESULTS.successful, {}

    def transpose(self, state, options):
        raise NotImplementedError("Tridiagonal1D: transposed solves are not supported.")

    def conj(self, state, options):
        return state, options

    def assume_full_rank(self):
        return True

    # the same statement for lineax < 0.1, whose abstract solver asks these two instead
    def allow_dependent_columns(self, operator):
        return False

    def allow_dependent_rows(self, operator):
        return False
