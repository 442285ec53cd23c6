r"""Closed-form forward process of a conditional Gaussian path with Gaussian-mixture data ([spec §3][spec-3]).

With data $q = \sum_k w_k \mathcal N(\mu_k, s_k^2 I)$ and schedule $(m_t, \sigma_t)$,
the marginal (Eqs. 17, 25) is again a mixture,

$$
P_t = \sum_k w_k\, \mathcal N\big(m_t\mu_k,\ (\sigma_t^2 + m_t^2 s_k^2) I\big),
$$

and the velocity field (Eqs. 96–97) is written here as

$$
\nu_t(x) = \dot m_t\, \mathbb E[y|x_t=x] \;-\; \sigma_t\dot\sigma_t\, \nabla\ln P_t(x),
$$

which equals [the spec][spec]'s $(\dot\sigma/\sigma)x - m(\dot\sigma/\sigma - \dot m/m)\mathbb E[y|x]$
identically (substitute $\nabla\ln P_t = (m_t\mathbb E[y|x] - x)/\sigma_t^2$) but has no
removable singularity left: it is finite at $\sigma_t = 0$ (``t = 0``) and at
$m_t = 0$ (``t = τ`` for cosine and cond-OT) as long as every component variance
$\sigma_t^2 + m_t^2 s_k^2$ is positive, which the data's $s_k > 0$ guarantees.
Nothing is clipped.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsa.densities import GaussianMixture
from jaxsa.processes.base import AbstractForwardProcess
from jaxsa.schedules.standard import Schedule, check_schedule

__all__ = ["DiffusionPath"]


class DiffusionPath(AbstractForwardProcess):
    """Forward process of a diffusion model: schedule + Gaussian-mixture data.

    Args:
        schedule: a [`jaxsa.schedules.standard.Schedule`][jaxsa.schedules.standard.Schedule] (``tau`` is taken from it).
        data: the data density $q$ as a [`jaxsa.densities.GaussianMixture`][jaxsa.densities.GaussianMixture].

    All methods take a scalar time ``t`` in ``[0, tau]`` and points ``x`` of shape
    ``batch + data.event_shape``; vmap over ``t`` if needed.
    """

    schedule: Schedule
    data: GaussianMixture

    @property
    def tau(self):
        return self.schedule.tau

    @property
    def event_shape(self) -> tuple:
        return () if self.data.means.ndim == 1 else (self.data.dim,)

    def marginal(self, t) -> GaussianMixture:
        """$P_t$ as a Gaussian mixture (Eqs. 17, 25)."""
        v = self.schedule.values(t)
        var = v.sigma_sq + v.m**2 * self.data.scales**2
        return GaussianMixture.unchecked(self.data.weights, v.m * self.data.means, jnp.sqrt(var))

    def end_marginal(self) -> GaussianMixture:
        r"""$P_\tau$; a single Gaussian $\mathcal N(0, \sigma_\tau^2 I)$ where the schedule ends
        at $m_\tau = 0$ by construction (``schedule.ends_at_noise``): every component is then
        the same, and one component is exact and cheaper (closed-form quantiles)."""
        p = self.marginal(self.tau)
        if not type(self.schedule).ends_at_noise:
            return p
        dt = p.means.dtype
        return GaussianMixture.unchecked(jnp.ones(1, dt), jnp.zeros((1,) + p.means.shape[1:], dt),
                                         p.scales[:1])

    def checked(self) -> "DiffusionPath":
        """This path with its schedule's values checked (see
        [`check_schedule`][jaxsa.schedules.standard.check_schedule]; under ``jit`` at run time)."""
        return eqx.tree_at(lambda p: p.schedule, self, check_schedule(self.schedule))

    def log_density(self, t, x):
        r"""$\ln P_t(x)$, shape ``batch``."""
        return self.marginal(t).log_density(x)

    def density(self, t, x):
        """$P_t(x)$ (1/length^d), shape ``batch``."""
        return jnp.exp(self.log_density(t, x))

    def _posterior(self, t, x):
        v = self.schedule.values(t)
        d = self.data
        var = v.sigma_sq + v.m**2 * d.scales**2  # (K,): component variances of P_t
        x = jnp.asarray(x)
        gain = d.scales**2 * v.m / var  # E[y | x, k] = gain_k x + shrink_k mu_k
        shrink = v.sigma_sq / var
        if d.means.ndim == 1:
            # component-major layout (K, *batch): reductions run over the leading axis,
            # which XLA on CPU vectorises far better than a minor axis of size K
            ex = (slice(None),) + (None,) * x.ndim
            mu, vk = (v.m * d.means)[ex], var[ex]
            xk = x[None]
            logits = jnp.log(d.weights)[ex] - 0.5 * (xk - mu) ** 2 / vk - 0.5 * jnp.log(vk)
            r = jax.nn.softmax(logits, axis=0)
            mean_y = jnp.sum(r * (gain[ex] * xk + shrink[ex] * d.means[ex]), 0)
            score = jnp.sum(r * (mu - xk) / vk, 0)
            return v, mean_y, score
        lead = (None,) * (x.ndim - 1)  # the batch axes (explicit broadcasting)
        kd = lead + (slice(None), None)  # (K,) -> batch + (K, 1)
        xe = x[..., None, :]
        mu = (v.m * d.means)[lead]
        sq = jnp.sum((xe - mu) ** 2, axis=-1)
        logits = jnp.log(d.weights)[lead] - 0.5 * sq / var[lead] - 0.5 * d.dim * jnp.log(var)[lead]
        r = jax.nn.softmax(logits, axis=-1)  # responsibilities, batch + (K,)
        post = gain[kd] * xe + shrink[kd] * d.means[lead]
        mean_y = jnp.sum(r[..., None] * post, -2)
        score = jnp.sum((r / var[lead])[..., None] * (mu - xe), -2)
        return v, mean_y, score

    def posterior_mean(self, t, x):
        r"""$\mathbb E[y | x_t = x]$ (Eq. 97), shape of ``x``."""
        return self._posterior(t, x)[1]

    def score(self, t, x):
        r"""$\nabla \ln P_t(x)$ (1/length), shape of ``x``."""
        return self._posterior(t, x)[2]

    def velocity(self, t, x):
        r"""Velocity field $\nu_t(x)$ (Eqs. 1, 96; length/time), shape of ``x``."""
        v, mean_y, score = self._posterior(t, x)
        return v.dm * mean_y - v.sigma_dsigma * score

    def v2_sq(self, t, n_hermite: int = 256):
        r"""$v_2(t)^2 = \int \nu_t^2 P_t\,dx$ (length²/time², Eqs. 36, 66–67) at scalar ``t``
        for 1D data, by Gauss–Hermite quadrature with ``n_hermite`` nodes per component
        (see [`jaxsa.thermo.dissipation`][jaxsa.thermo.dissipation] for its accuracy)."""
        d = self.data
        if d.means.ndim != 1:
            raise ValueError("v2_sq: closed-form quadrature is implemented for 1D data.")
        xi, wq = np.polynomial.hermite_e.hermegauss(n_hermite)
        xi = jnp.asarray(xi, jnp.result_type(float))
        wq = jnp.asarray(wq / np.sqrt(2 * np.pi), jnp.result_type(float))
        marg = self.marginal(t)
        x = marg.means[:, None] + marg.scales[:, None] * xi[None, :]  # (K, n_hermite)
        nu = self.velocity(t, x)
        return jnp.sum(marg.weights[:, None] * wq[None, :] * nu**2)

    def normal_score_quantile(self, t, z):
        r"""$F_{P_t}^{-1}(\Phi(z))$ (1D)."""
        return self.marginal(t).normal_score_quantile(z)
