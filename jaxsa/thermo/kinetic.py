r"""Conditional kinetic energy of a schedule ([spec §3][spec-3], Eqs. 92–94).

The conditional velocity of a conditional Gaussian path, $\nu^c_t(x|y) = \dot\sigma_t\,
\varepsilon + \dot m_t\, y$ at $x = m_ty + \sigma_t\varepsilon$, has the kinetic energy

$$
K_c = \int_0^\tau \mathbb E\|\nu^c_t\|^2 dt
= \int_0^\tau \big[d\,\dot\sigma_t^2 + \dot m_t^2\,\mathbb E\|y\|^2\big] dt
\;=\; d\int_0^\tau (\dot\sigma_t^2 + \dot m_t^2)\,dt \quad(\mathbb E\|y\|^2 = d).
$$

Since $\nu_t = \mathbb E[\nu^c_t | x_t]$, Jensen gives $c_2 = \int v_2^2 \le K_c$; when
the number of data points is small against the dimension ($N/\sqrt d \to 0$) the noisy
point identifies its data point and $c_2 \simeq K_c$ (Eq. 94). $\int(\dot\sigma^2 +
\dot m^2)$ is the kinetic energy of the curve $(m_t, \sigma_t)$ from (1, 0) to (0, 1):
minimal for the straight line at constant speed, cond-OT, value $2/\tau$; on the VP circle
$m^2+\sigma^2 = 1$ minimal for constant angular speed, cosine, value $(\pi/2)^2/\tau$.

[`kinetic_c2_monte_carlo`][jaxsa.thermo.kinetic.kinetic_c2_monte_carlo] estimates $c_2$ for isotropic Gaussian-mixture data in
$\mathbb R^d$ (Gauss–Legendre in time, Monte Carlo in space with common random numbers);
[`point_cloud_data`][jaxsa.thermo.kinetic.point_cloud_data] builds ``N`` narrow components with $\mathbb E\|y\|^2 = d$.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxsa.densities import GaussianMixture
from jaxsa.processes.diffusion import DiffusionPath
from jaxsa.quadrature import gauss_legendre
from jaxsa.thermo.monte_carlo import MCEstimate

__all__ = ["conditional_kinetic_energy", "kinetic_c2_monte_carlo", "point_cloud_data"]


def conditional_kinetic_energy(schedule, dim: int = 1, second_moment=None, n_gauss: int = 128):
    r"""$K_c = \int_0^\tau [d\,\dot\sigma_t^2 + \dot m_t^2\,\mathbb E\|y\|^2]dt$ (Eqs. 92–94;
    length²/time with unit-variance coordinates).

    Args:
        schedule: a [`jaxsa.schedules.standard.Schedule`][jaxsa.schedules.standard.Schedule].
        dim: data dimension ``d`` (≥ 1).
        second_moment: $\mathbb E\|y\|^2$ of the data (default ``dim``: unit variance per
            coordinate, giving $d\int(\dot\sigma^2+\dot m^2)$).
        n_gauss: Gauss–Legendre nodes (the nodes avoid ``t = 0``, where $\dot\sigma$ of
            VP schedules diverges and so does $K_c$).

    Example:
        ```python
        conditional_kinetic_energy(CondOT(1.0))   # 2.0 = d * 2 / tau
        conditional_kinetic_energy(Cosine(1.0))   # (pi / 2) ** 2
        ```
    """
    if int(dim) < 1:
        raise ValueError(f"conditional_kinetic_energy: `dim` must be >= 1, got {dim}.")
    m2 = float(dim) if second_moment is None else second_moment
    return _kc(schedule, dim, m2, n_gauss)


@eqx.filter_jit
def _kc(schedule, dim, m2, n_gauss):
    ts, w = gauss_legendre(n_gauss, 0.0, schedule.tau, dtype=jnp.result_type(float))
    v = jax.vmap(schedule.values)(ts)
    dsigma = v.sigma_dsigma / v.sigma
    return jnp.sum(w * (dim * dsigma**2 + m2 * v.dm**2))


def point_cloud_data(key, n_points: int, dim: int, scale: float = 1e-3) -> GaussianMixture:
    r"""``N = n_points`` equally weighted narrow components (std ``scale``) at random directions
    with $\mathbb E\|y\|^2 = d$ exactly (each mean has norm $\sqrt{d(1-s^2)}$):
    a smoothed data set of ``N`` points in $\mathbb R^d$."""
    if n_points < 1 or dim < 1 or not 0 < scale < 1:
        raise ValueError("point_cloud_data: need n_points >= 1, dim >= 1, 0 < scale < 1; got "
                         f"{n_points}, {dim}, {scale}.")
    z = jax.random.normal(key, (n_points, dim))
    z = z / jnp.linalg.norm(z, axis=1, keepdims=True) * math.sqrt(dim * (1 - scale**2))
    return GaussianMixture(jnp.full(n_points, 1.0 / n_points), z, jnp.full(n_points, scale))


def kinetic_c2_monte_carlo(path: DiffusionPath, key, n_samples: int = 512, n_gauss: int = 48):
    r"""Monte-Carlo $c_2 = \int_0^\tau \mathbb E_{P_t}\|\nu_t\|^2 dt$ (Eq. 81) for a d-D
    [`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath]: ``n_samples`` draws ``(y, ε)`` shared by all ``n_gauss``
    Gauss–Legendre times, $x_t = m_ty + \sigma_t\varepsilon$.

    Returns:
        [`MCEstimate`][jaxsa.thermo.monte_carlo.MCEstimate], the type of every Monte-Carlo
        $c_2$ of the package: ``value``, ``stderr`` and ``ci95`` (the error of the spatial
        Monte Carlo only; the Gauss–Legendre rule in time is not estimated), ``n`` samples,
        ``n_time = n_gauss``, and the per-time means $\mathbb E\|\nu_t\|^2$ in ``rate`` at the
        times ``rate_t``.
    """
    data = path.data
    if data.means.ndim != 2:
        raise ValueError("kinetic_c2_monte_carlo: needs d-dimensional data (means of shape (K, d)).")
    return _c2_mc(path, key, n_samples, n_gauss)


@eqx.filter_jit
def _c2_mc(path, key, n_samples, n_gauss):
    data = path.data
    k1, k2 = jax.random.split(key)
    y = data.sample(k1, (n_samples,))
    eps = jax.random.normal(k2, y.shape, y.dtype)
    ts, w = gauss_legendre(n_gauss, 0.0, path.tau, dtype=jnp.result_type(float))

    def per_sample(t):
        v = path.schedule.values(t)
        x = v.m * y + v.sigma * eps
        return jnp.sum(path.velocity(t, x) ** 2, axis=-1)  # (n_samples,)

    per_time = jax.lax.map(per_sample, ts)  # (n_gauss, n_samples)
    e = jnp.einsum("t,tn->n", w, per_time)
    se = jnp.std(e, ddof=1) / math.sqrt(n_samples)
    return MCEstimate(jnp.mean(e), se, 1.96 * se, n_samples, n_gauss, ts, jnp.mean(per_time, -1))
