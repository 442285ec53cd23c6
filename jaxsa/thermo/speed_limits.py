r"""Thermodynamic speed limit and uncertainty relations ([spec §2][spec-2], Eqs. 66–76).

For the processes of [`jaxsa.processes.langevin`][jaxsa.processes.langevin] (or a [`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath]):

* [`speed_limit`][jaxsa.thermo.speed_limits.speed_limit] — for a constant temperature $T$ (Eq. 68)

    $$
    S^{tot}_\tau \;\ge\; \frac{L_\tau^2}{\tau T} \;\ge\; \frac{W_2(P_0, P_\tau)^2}{\tau T},
    \qquad L_\tau = \int v_2\,dt,
    $$

    with equality on the $W_2$ geodesic at constant speed (Eqs. 69–70;
    [`jaxsa.processes.langevin.GaussianGeodesic`][jaxsa.processes.langevin.GaussianGeodesic]);
* [`observable_speed_sq`][jaxsa.thermo.speed_limits.observable_speed_sq] — the speed of an observable ``r`` (Eqs. 72–76)

    $$
    v_r(t)^2 = \frac{(\partial_t\mathbb E_{P_t}[r])^2}{\mathbb E_{P_t}[\|\nabla r\|^2]}
    \le v_2(t)^2,
    $$

    with $\partial_t\mathbb E_{P_t}[r] = \mathbb E_{P_t}[\nabla r\cdot\nu_t]$ (continuity
    equation); tight for the optimal observable $\nabla r^* \propto \nabla\phi_t$, the gradient
    part of $\nu_t$ ([`optimal_observable_gradient`][jaxsa.thermo.speed_limits.optimal_observable_gradient]);
* [`w1_speed`][jaxsa.thermo.speed_limits.w1_speed] — $v_1(t) = \lim W_1(P_t, P_{t+\Delta t})/\Delta t = \int|\nu_tP_t|dx$ in 1D,
    and $v_1 \le v_2$ (Cauchy–Schwarz).

Expectations over $P_t$ use the processes' Gauss–Hermite quadrature (exact for
polynomials of Gaussians; spectrally accurate for smooth observables).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsa._checks import as_float
from jaxsa.processes.langevin import as_process, check_window
from jaxsa.quadrature import gauss_legendre

__all__ = ["SpeedLimit", "speed_limit", "observable_speed_sq", "optimal_observable_gradient",
           "w1_speed"]


class SpeedLimit(eqx.Module):
    r"""Terms of Eq. 68 on ``[t0, t1]`` (``tau = t1 - t0``; scalars, dimensionless unless noted).

    ``S_tot`` ($k_B$), ``length`` $L_\tau$ and ``w2`` $W_2(P_{t_0}, P_{t_1})$
    (length), ``length_bound`` $L^2/(\tau T)$, ``w2_bound`` $W_2^2/(\tau T)$,
    ``T`` the constant temperature, ``tau``.
    """

    S_tot: jax.Array
    length: jax.Array
    w2: jax.Array
    length_bound: jax.Array
    w2_bound: jax.Array
    T: jax.Array
    tau: jax.Array

    def holds(self, rtol: float = 1e-9) -> bool:
        """Eq. 68 up to relative round-off ``rtol``."""
        s, lb, wb = float(self.S_tot), float(self.length_bound), float(self.w2_bound)
        return s >= lb * (1 - rtol) and lb >= wb * (1 - rtol)


def speed_limit(process, t0, t1, n_gauss: int = 64, rtol_T: float = 1e-9) -> SpeedLimit:
    r"""The thermodynamic speed limit Eq. 68 for a constant-temperature process.

    Args:
        process: a process of [`jaxsa.processes.langevin`][jaxsa.processes.langevin] or a [`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath].
        t0, t1: the window (``tau = t1 - t0``).
        n_gauss: Gauss–Legendre nodes for $S^{tot}$ and $L_\tau$.
        rtol_T: relative tolerance of the constant-temperature check.

    Raises ``ValueError`` if $T_t$ is not constant on the window (Eq. 68 needs it).

    Example:
        ```python
        sl = speed_limit(GaussianGeodesic([0.], 1., [2.], .5, T=.3), 0., 1.)
        sl.S_tot, sl.length_bound, sl.w2_bound      # all equal on the geodesic
        ```
    """
    process = as_process(process)
    check_window(process, t0, t1)
    T, S, L, W = _speed_limit_terms(process, as_float(t0), as_float(t1), n_gauss)
    if not np.allclose(np.asarray(T), float(T[0]), rtol=rtol_T, atol=0):
        raise ValueError("speed_limit: Eq. 68 needs a constant temperature on [t0, t1]; got T_t "
                         f"from {float(T.min()):.6g} to {float(T.max()):.6g}.")
    T = T[0]
    tau = as_float(t1) - as_float(t0)
    return SpeedLimit(S, L, W, L**2 / (tau * T), W**2 / (tau * T), T, tau)


@eqx.filter_jit
def _speed_limit_terms(process, t0, t1, n_gauss):
    ts, w = gauss_legendre(n_gauss, as_float(t0), as_float(t1))
    T = jax.vmap(process.temperature)(ts)
    S = jnp.sum(w * jax.vmap(process.entropy_rate)(ts))  # = jaxsa.entropy_production
    L = jnp.sum(w * jnp.sqrt(jax.vmap(process.v2_sq)(ts)))
    return T, S, L, process.w2(t0, t1)


def _expect(process, t, fn, n_quadrature):
    x, w = process.quadrature(t, n_quadrature)
    return jnp.sum(w * jax.vmap(fn)(x))


def observable_speed_sq(process, t, observable, n_quadrature: int = 64, gradient: bool = False):
    r"""$v_r(t)^2 = (\mathbb E[\nabla r\cdot\nu_t])^2/\mathbb E[\|\nabla r\|^2]$ (Eqs. 72–76;
    length²/time²).

    Args:
        process: a process of [`jaxsa.processes.langevin`][jaxsa.processes.langevin] or a [`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath].
        t: scalar time.
        observable: ``r(x)`` for one point ``x`` of shape ``(d,)``, returning a scalar
            (differentiated with ``jax.grad``); or, with ``gradient=True``, the gradient
            ``∇r(x)`` itself, shape ``(d,)``.
        n_quadrature: Gauss–Hermite nodes per axis (per mixture component).

    Returns ``(v_r_sq, v2_sq)``: the observable's speed and $v_2(t)^2$, so that
    ``v_r_sq <= v2_sq`` is the uncertainty relation.
    """
    return _observable_speed_sq(as_process(process), as_float(t), observable, n_quadrature, gradient)


@eqx.filter_jit
def _observable_speed_sq(process, t, observable, n_quadrature, gradient):
    grad_r = observable if gradient else jax.grad(observable)
    num = _expect(process, t, lambda x: grad_r(x) @ process.velocity(t, x), n_quadrature)
    den = _expect(process, t, lambda x: grad_r(x) @ grad_r(x), n_quadrature)
    return num**2 / den, process.v2_sq(t)


def optimal_observable_gradient(process, t):
    r"""$\nabla r^*(x) = \nabla\phi_t(x)$, the optimal observable of Eq. 76 (up to a
    constant factor): the projection of $\nu_t$ on gradient fields in $L^2(P_t)$.
    Returns a function of one point ``(d,) -> (d,)``; pass it with ``gradient=True``."""
    process = as_process(process)
    return lambda x: process.grad_potential(t, x)


def w1_speed(process, t, n_grid: int = 20001, width: float = 12.0):
    r"""$v_1(t) = \int|\nu_t(x)|P_t(x)\,dx$ (1D; length/time): the speed of the process in
    $W_1$, since $W_1(P_t, P_{t+dt}) = \int|\partial_tF_t|dx\,dt$ and
    $\partial_tF_t = -\nu_tP_t$. Trapezoid rule on ``n_grid`` points spanning ``width``
    standard deviations either side of the quadrature nodes' range."""
    process = as_process(process)
    if process.dim != 1:
        raise ValueError("w1_speed: implemented for 1D processes.")
    return _w1_speed(process, as_float(t), n_grid, width)


@eqx.filter_jit
def _w1_speed(process, t, n_grid, width):
    x, w = process.quadrature(t, 16)
    mean = jnp.sum(w * x[:, 0])
    sd = jnp.sqrt(jnp.sum(w * (x[:, 0] - mean) ** 2))
    grid = jnp.linspace(mean - width * sd, mean + width * sd, n_grid)
    f = jax.vmap(lambda y: jnp.abs(process.velocity(t, y[None])[0])
                 * jnp.exp(process.log_density(t, y[None])))(grid)
    return jnp.trapezoid(f, grid)
