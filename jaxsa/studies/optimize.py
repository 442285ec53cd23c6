r"""Differentiable noise-schedule optimisation for the diffusion speed cost ([spec §4][spec-4], Eqs. 81, 91).

Minimises $c_2 = \int_0^\tau v_2(t)^2 dt$ over the [`jaxsa.schedules.families.PolarBernstein`][jaxsa.schedules.families.PolarBernstein]
family (always a valid schedule, always ending at $P_\tau = \mathcal N(0,1)$) with optax,
using ``jax.grad`` of the closed-form cost [`jaxsa.thermo.dissipation.speed_cost`][jaxsa.thermo.dissipation.speed_cost]. The result is
compared with cond-OT, cosine, the best member of the cond-OT–cosine interpolation, and the
lower bounds $L_\tau^2/\tau \ge W_2(q, P_\tau)^2/\tau$ (Eq. 91), reached only by optimal
transport.

Note on η: in 1D with the exact velocity field the generated density is the monotone
rearrangement of the perturbed start, whatever the schedule. So η has zero gradient with
respect to any schedule that keeps $P_\tau$ fixed, and only $c_1, c_2$ can be
optimised. ``tests/studies/test_sweep.py`` checks both facts against finite differences.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsa._checks import library_promotion
from jaxsa.densities import paper_prior
from jaxsa.thermo.dissipation import speed_cost, v2_sq, w2_sq_to_prior
from jaxsa.schedules.families import Interpolated, PolarBernstein
from jaxsa.processes.diffusion import DiffusionPath
from jaxsa.schedules.standard import CondOT, Cosine

__all__ = ["optimize_schedule"]


def optimize_schedule(data, tau=1.0, degree=8, rho_degree=4, steps=400, learning_rate=0.05,
                      n_gauss=64, n_hermite=256, progress=None):
    r"""Minimise $c_2$ over [`PolarBernstein`][jaxsa.schedules.families.PolarBernstein] schedules for ``data``.

    Args:
        data: 1D [`jaxsa.GaussianMixture`][jaxsa.densities.GaussianMixture].
        tau: duration; degree, rho_degree: polynomial degrees of θ and of ln ρ's factor.
        steps, learning_rate: Adam iterations and step size (optax).
        progress: optional ``progress(step, c2)`` callback.

    Returns:
        dict with the optimised ``schedule``, the ``history`` of $c_2$, and the
        comparison values ``c2_opt``, ``c2_cosine``, ``c2_cond_ot``, ``c2_interp_best`` (and
        its ``lam``), ``length_bound`` ($L^2/\tau$ of the optimum), ``ot_bound``.
    """

    def cost(params):
        th, rc = params
        return speed_cost(DiffusionPath(PolarBernstein(th, rc, tau), data), n_gauss, n_hermite)[0]

    opt = optax.adam(learning_rate)
    params = (jnp.zeros(degree), jnp.zeros(rho_degree))  # start at the cosine schedule
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        c, g = jax.value_and_grad(cost)(params)
        with library_promotion():  # implicit promotions inside optax's Adam
            upd, state = opt.update(g, state, params)
        return optax.apply_updates(params, upd), state, c

    history = []
    for i in range(steps):
        params, state, c = step(params, state)
        history.append(float(c))
        if progress is not None:
            progress(i, history[-1])
    best = PolarBernstein(params[0], params[1], tau)
    c2_opt, length = speed_cost(DiffusionPath(best, data), n_gauss, n_hermite)

    lams = jnp.linspace(0.0, 1.0, 101)
    interp = jax.vmap(lambda lam: speed_cost(DiffusionPath(Interpolated(lam, tau), data),
                                             n_gauss, n_hermite)[0])(lams)
    i_best = int(jnp.argmin(interp))
    tau_f = float(tau)
    return {
        "schedule": best,
        "history": history,
        "c2_opt": float(c2_opt),
        "length_bound": float(length) ** 2 / tau_f,
        "c2_cosine": float(speed_cost(DiffusionPath(Cosine(tau), data), n_gauss, n_hermite)[0]),
        "c2_cond_ot": float(speed_cost(DiffusionPath(CondOT(tau), data), n_gauss, n_hermite)[0]),
        "c2_interp_best": float(interp[i_best]),
        "lam_interp_best": float(lams[i_best]),
        "ot_bound": float(w2_sq_to_prior(data, paper_prior())) / tau_f,
    }


def schedule_curves(schedule, data, n=201, n_hermite=256):
    """``t, m_t, σ_t, v_2(t)^2`` on ``n`` uniform times, for plotting."""
    t = jnp.linspace(0.0, 1.0, n) * schedule.tau
    v = schedule.values(t)
    path = DiffusionPath(schedule, data)
    v2 = jax.vmap(lambda s: v2_sq(path, s, n_hermite))(t)
    return {k: np.asarray(a).tolist() for k, a in
            {"t": t, "m": v.m, "sigma": v.sigma, "v2_sq": v2}.items()}
