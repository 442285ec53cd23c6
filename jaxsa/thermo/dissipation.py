r"""Diffusion speed cost of a schedule without any ODE ([spec §2–4][spec-2], Eqs. 36, 66–67, 81, 91).

For a conditional Gaussian path with Gaussian-mixture data, $P_t = \sum_k w_k
\mathcal N(m_t\mu_k, v_k(t))$ in closed form, so

$$
v_2(t)^2 = T_t\dot S_t^{tot} = \int \nu_t^2 P_t\,dx
= \sum_k w_k\, \mathbb E_{\xi\sim\mathcal N(0,1)}\big[\nu_t(m_t\mu_k + \sqrt{v_k}\,\xi)^2\big]
$$

is a Gauss–Hermite sum per component, and $c_2 = \int_0^\tau v_2^2\,dt$,
$L_\tau = \int_0^\tau v_2\,dt$ are Gauss–Legendre sums in time. Both are smooth
functions of every schedule and data parameter, so ``jax.grad`` of [`speed_cost`][jaxsa.thermo.dissipation.speed_cost]
differentiates the diffusion speed cost directly (used by [`jaxsa.studies.optimize`][jaxsa.studies.optimize]). This is an
independent method from the particle/ODE computation of [`jaxsa.speed_accuracy`][jaxsa.relations.speed_accuracy]; the
two agree to ~1e-10 (tests). Gauss–Hermite converges slowly for these velocity fields (the
responsibilities switch between components in the tails): 48 nodes leave ~1e-6 relative
error in $c_2$, 256 nodes (the default) ~1e-11.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsa.quadrature import gauss_legendre

__all__ = ["v2_sq", "speed_cost", "w2_sq_to_prior"]


def v2_sq(path, t, n_hermite: int = 256):
    r"""$v_2(t)^2 = \int \nu_t^2 P_t\,dx$ (length²/time²) for a 1D or d-D
    [`jaxsa.DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath] at scalar ``t``, by Gauss–Hermite quadrature per component
    (``n_hermite`` nodes per coordinate axis; 1D only uses one axis)."""
    return path.v2_sq(t, n_hermite)


def speed_cost(path, n_gauss: int = 64, n_hermite: int = 256):
    r"""``(c2, L)``: $c_2 = \int_0^\tau v_2^2 dt$ (Eq. 81) and the path length
    $L_\tau = \int_0^\tau v_2 dt$ (Eq. 68) by Gauss–Legendre quadrature in time.

    Differentiable in the schedule's and the data's parameters; vmappable over paths.
    """
    ts, gw = gauss_legendre(n_gauss, 0.0, path.tau, dtype=jnp.result_type(float))
    v2 = jax.vmap(lambda t: v2_sq(path, t, n_hermite))(ts)
    return jnp.sum(gw * v2), jnp.sum(gw * jnp.sqrt(v2))


def w2_sq_to_prior(data, prior, n_quantiles: int = 4096, z_max: float = 8.5):
    r"""$W_2(q, P_\tau)^2$ in 1D by the quantile formula on normal-score nodes (Eq. 52);
    ``/τ`` it is the OT lower bound on $c_2$ (Eq. 91)."""
    from jaxsa.quadrature import quantile_nodes

    z, w = quantile_nodes(n_quantiles, z_max)
    z = jnp.asarray(z, jnp.result_type(float))
    return jnp.sum(jnp.asarray(w) * (data.normal_score_quantile(z) - prior.normal_score_quantile(z)) ** 2)
