"""Quick start: the speed-accuracy relations for one schedule and one perturbation.

    python examples/quickstart.py [--fast]

Computes η, c₁, c₂ for the paper's data under the cond-OT schedule with the perturbed start
N(1, 1), checks η ≤ c₁ ≤ c₂ ≤ … (Eqs. 77–82, 91), then sweeps τ with jax.vmap.
"""

import sys

import jax
import jax.numpy as jnp

import jaxsa

fast = "--fast" in sys.argv
settings = jaxsa.Settings(n_quantiles=256, n_gauss=16) if fast else jaxsa.Settings()

with jaxsa.float64():  # the paper's quantities need float64; this leaves the global flag alone
    data = jaxsa.paper_data()
    path = jaxsa.DiffusionPath(jaxsa.CondOT(tau=1.0), data)
    rep = jaxsa.speed_accuracy(path, jaxsa.gaussian(1.0, 1.0), settings)
    print(f"eta = {float(rep.eta):.6f} <= c1 = {float(rep.c1):.6f} <= c2 = {float(rep.c2):.6f}")
    print(f"OT bound W2(q, P_tau)^2/tau = {float(rep.ot_bound):.6f}; violations: {rep.violations()}")
    print(f"eta error estimate {float(rep.errors['eta']):.1e}, converged: {bool(rep.converged)}")

    # a vmapped sweep over the duration τ: one trace, one compiled call
    start = jaxsa.perturbation_start(jaxsa.gaussian(1.0, 1.0), settings)

    @jax.jit
    def eta_c1_c2(tau):
        r = jaxsa.speed_accuracy_from_start(jaxsa.DiffusionPath(jaxsa.Cosine(tau), data), start, settings)
        return r.eta, r.c1, r.c2

    taus = jnp.array([0.5, 1.0, 2.0, 4.0])
    for tau, e, c1, c2 in zip(taus, *jax.vmap(eta_c1_c2)(taus)):
        print(f"cosine, tau = {float(tau):.1f}: eta = {float(e):.5f}, c1 = {float(c1):.5f}, c2 = {float(c2):.5f}")
