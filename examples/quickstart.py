"""Quick start: the speed-accuracy relations for one schedule and one perturbation.

    python examples/quickstart.py [--fast] [--out DIR]

Computes η, c₁, c₂ for the paper's data under the cond-OT schedule with the perturbed start
N(1, 1), checks η ≤ c₁ ≤ c₂ ≤ … (Eqs. 77–82, 91), then sweeps τ with jax.vmap; draws the
densities of both processes (Fig. 4a) and v₂², v_loss² (Eq. 80) to DIR/quickstart.png.
"""

import os
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

import jaxsa

fast = "--fast" in sys.argv
out_dir = (sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv
           else tempfile.mkdtemp() if fast else "quickstart_out")
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

# ---- a figure: P_t and P~_t at t = 0, τ/3, 2τ/3, τ (Fig. 4a), and Eq. 80 along the flow ----
from jaxsa.plot import pyplot  # noqa: E402 (matplotlib only for the figure)

plt = pyplot()
fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
for i, ts in enumerate(np.asarray(rep.snapshot_t)):
    ax[0].plot(rep.x_grid, rep.forward_density[i], color=f"C{i}", label=f"t = {ts:.2f}")
    ax[0].plot(rep.x_grid, rep.estimated_density[i], "--", color=f"C{i}")
ax[0].set_xlim(-4, 4)
ax[0].set_title(r"$P_t$ (solid), $\tilde P_t$ (dashed)", fontsize=9)
ax[0].legend(fontsize=7)
ax[1].plot(rep.t, rep.v2_sq, label=r"$v_2^2$")
ax[1].plot(rep.t, rep.vloss_sq, label=r"$v_{loss}^2$ (Eq. 80: $\leq v_2^2$)")
ax[1].set_xlabel("t")
ax[1].legend(fontsize=8)
fig.tight_layout()
os.makedirs(out_dir, exist_ok=True)
fig.savefig(os.path.join(out_dir, "quickstart.png"), dpi=100)
print(f"wrote {out_dir}/quickstart.png")
