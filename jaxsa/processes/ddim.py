r"""DDIM coordinates: the change of variables that removes the force ([spec §3][spec-3], Eqs. 33–35, Appendix C).

With $\bar x = x/m_t$ the forward SDE $dx = (\dot m_t/m_t)x\,dt + \sqrt{2T_t}\,dB_t$
becomes (Itô; the map is linear in ``x``)

$$
d\bar x = \sqrt{2\bar T_t}\,dB_t, \qquad \bar T_t = T_t/m_t^2
= \tfrac{\sigma_t}{m_t}\,\partial_t\tfrac{\sigma_t}{m_t},
$$

a force-free (variance-exploding) process with noise scale $\bar\sigma_t = \sigma_t/m_t$:
$\bar x_t = y + \bar\sigma_t\varepsilon$. The velocity field becomes
$\bar\nu_t(\bar x) = (\nu_t(m_t\bar x) - \dot m_t\bar x)/m_t$ and densities
$\bar P_t(\bar x) = m_t^d P_t(m_t\bar x)$. Valid while $m_t > 0$ (not at the end point
of cosine and cond-OT).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxsa.processes.diffusion import DiffusionPath
from jaxsa.schedules.standard import Custom, Schedule

__all__ = ["ddim_coordinates", "ddim_inverse", "ddim_schedule", "ddim_path", "ddim_velocity"]


def ddim_coordinates(schedule: Schedule, t, x):
    r"""$\bar x = x/m_t$ (Eq. 33); ``x`` any shape, ``t`` scalar."""
    return x / schedule.m(t)


def ddim_inverse(schedule: Schedule, t, xbar):
    r"""$x = m_t\bar x$, the inverse of [`ddim_coordinates`][jaxsa.processes.ddim.ddim_coordinates]."""
    return xbar * schedule.m(t)


def _one(t, p):
    return jnp.ones_like(jnp.asarray(t, jnp.result_type(float)))


def _ratio_sq(t, p):
    return p.sigma_sq(t) / p.m(t) ** 2


def ddim_schedule(schedule: Schedule) -> Custom:
    r"""The force-free schedule of the DDIM coordinates (Eqs. 34–35): $\bar m_t = 1$,
    $\bar\sigma_t^2 = \sigma_t^2/m_t^2$; its force is zero and its temperature is
    $T_t/m_t^2$. Same ``tau``; use only on times where $m_t > 0$."""
    return Custom(_one, tau=schedule.tau, params=schedule, sigma_sq_fn=_ratio_sq)


def ddim_path(path: DiffusionPath) -> DiffusionPath:
    """The forward process in DDIM coordinates: the same data with [`ddim_schedule`][jaxsa.processes.ddim.ddim_schedule]."""
    return DiffusionPath(ddim_schedule(path.schedule), path.data)


def ddim_velocity(path: DiffusionPath, t, xbar):
    r"""$\bar\nu_t(\bar x) = (\nu_t(m_t\bar x) - \dot m_t\bar x)/m_t$: the velocity of
    the original process seen in DDIM coordinates (shape of ``xbar``)."""
    v = path.schedule.values(t)
    return (path.velocity(t, v.m * xbar) - v.dm * xbar) / v.m
