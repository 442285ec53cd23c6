"""The non-conservative case (docs/spec.md §6): a rotated, non-gradient velocity field, for which
c₂ = ∫E‖u‖²dt is only an upper bound of ∫v₂²dt, while Eq. 77 still bounds η.

    python examples/nonconservative.py [--fast] [--out DIR]

Data: eight Gaussians on a circle; schedule cond-OT, τ = 1, so P_τ = N(0, I). The field is
u_g = ν + g R ∇ln P_t (R the rotation by 90°): since ∇·(P_t R∇ln P_t) = 0 the marginals P_t,
hence v₂ and the generated density, do not depend on g, but E‖u_g‖² = v₂² + g² E‖∇ln P_t‖²
(the housekeeping part) grows. ``jaxsa.audit`` measures η, c₁, c₂ of the flow of u_g from
P_τ and from P~_τ = N((1, 0), I). ``--fast`` (what CI and the docs run): g ∈ {0, 0.5}, 4 × 512
particles; the default: g ∈ {0, 0.5, 1}, 8 × 2,048 particles. ``jaxsa reproduce nonconservative`` is the same
construction on a Swiss roll, solved on a grid.
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
           else tempfile.mkdtemp() if fast else "nonconservative_out")
gs = (0.0, 0.5) if fast else (0.0, 0.5, 1.0)


class Rotated(jaxsa.AbstractVelocityField):
    """u_g = ν + g R∇ln P_t: the exact field of a diffusion path plus a divergence-free flux."""

    path: jaxsa.DiffusionPath
    g: jax.Array  # an array leaf: every g runs through one compiled audit
    event_shape = (2,)

    @property
    def tau(self):
        return self.path.tau

    def velocity(self, t, x):
        s = self.path.score(t, x)
        return self.path.velocity(t, x) + self.g * jnp.stack([-s[..., 1], s[..., 0]], -1)


with jaxsa.float64():
    angle = jnp.linspace(0.0, 2 * jnp.pi, 8, endpoint=False)
    data = jaxsa.GaussianMixture(jnp.full(8, 1 / 8), 2.0 * jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1),
                                 jnp.full(8, 0.25))
    path = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), data)
    prior = jaxsa.GaussianMixture(jnp.ones(1), jnp.zeros((1, 2)), jnp.ones(1))  # P_tau = N(0, I)
    start = jaxsa.GaussianMixture(jnp.ones(1), jnp.array([[1.0, 0.0]]), jnp.ones(1))  # P~_tau

    # the housekeeping part: int E||grad ln P_t||^2 dt, by Monte Carlo on P_t (closed form)
    def fisher(t, key, n=1 << 15):
        x = path.marginal(t).sample(key, (n,))
        f = jnp.sum(path.score(t, x) ** 2, -1)
        return jnp.mean(f), jnp.std(f) / jnp.sqrt(n)

    tq, wq = jaxsa.gauss_legendre(32, 0.0, 1.0, dtype=jnp.float64)
    fi, fi_se = jax.vmap(fisher)(tq, jax.random.split(jax.random.key(1), 32))
    housekeeping, hk_se = float(jnp.sum(wq * fi)), float(jnp.sqrt(jnp.sum((wq * fi_se) ** 2)))
    print(f"int E||grad ln P_t||^2 dt = {housekeeping:.3f} ± {2 * hk_se:.3f} (Monte Carlo, 95%)")

    settings = (jaxsa.AuditSettings(n_particles=512, n_replicates=4, n_times=8, n_curve=128) if fast
                else jaxsa.AuditSettings(n_particles=2048, n_replicates=8, n_times=16, n_curve=256))
    samples = data.sample(jax.random.key(3), (settings.n_particles,))
    reports = [jaxsa.audit(Rotated(path, jnp.asarray(g)), prior, start, jax.random.key(2), settings,
                           data=samples) for g in gs]
    fisher_t = jax.vmap(lambda t: fisher(t, jax.random.key(4))[0])(reports[0].t)

v2_int = float(reports[0].c2)  # int v2^2 dt: the kinetic energy of the gradient field, g = 0


def iv(rep, name):
    lo, hi = (float(v) for v in rep.intervals[name])
    return f"{float(getattr(rep, name)):8.4f} [{lo:.4f}, {hi:.4f}]"


print(f"\n{'g':>4s}{'eta [95% interval]':>26s}{'c1':>26s}{'c2 = int E||u||^2 dt':>28s}"
      f"{'c2(0) + g^2 int E||grad ln P||^2':>35s}")
for g, rep in zip(gs, reports):
    print(f"{g:4.1f}{iv(rep, 'eta'):>26s}{iv(rep, 'c1'):>26s}{iv(rep, 'c2'):>28s}"
          f"{v2_int + g ** 2 * housekeeping:35.4f}")
print(f"\nint v2^2 dt = c2(g = 0) = {v2_int:.4f} for every g (the marginals do not depend on g)")
for g, rep in zip(gs, reports):
    eta_hi, c2_lo = float(rep.intervals["eta"][1]), float(rep.intervals["c2"][0])
    print(f"g = {g:.1f}: W1(data, q) = {iv(rep, 'model_error').strip()} (q does not depend on g); "
          f"Eq. 77, eta <= c2: {eta_hi <= c2_lo}; c2 / int v2^2 dt = {float(rep.c2) / v2_int:.2f}")

# ---- a figure: E||u_g||^2 along the flow against v2^2 + g^2 E||grad ln P||^2 -------------
from jaxsa.plot import pyplot  # noqa: E402 (matplotlib only for the figure)

plt = pyplot()
fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
t = np.asarray(reports[0].t)
for i, (g, rep) in enumerate(zip(gs, reports)):
    ax[0].plot(t, np.asarray(rep.v2_sq), "o", color=f"C{i}", label=rf"$\mathbb{{E}}\|u_g\|^2$, g = {g}")
    ax[0].plot(t, np.asarray(reports[0].v2_sq) + g ** 2 * np.asarray(fisher_t), "-", color=f"C{i}", lw=1)
    ax[0].plot(t, np.asarray(rep.vloss_sq), "x", color=f"C{i}", ms=4)
ax[0].set_yscale("log")
ax[0].set_xlabel("t")
ax[0].set_title(r"lines: $v_2^2 + g^2\,\mathbb{E}\|\nabla\ln P_t\|^2$; x: $v_{loss}^2$", fontsize=9)
ax[0].legend(fontsize=7)
gg = np.linspace(0.0, max(gs), 50)
ax[1].plot(gg, v2_int + gg ** 2 * housekeeping, "-", color="C2", lw=1, label="c2(0) + g² ∫E‖∇ln P‖²")
ax[1].axhline(v2_int, color="C2", ls=":", lw=1, label="∫v₂² dt (every g)")
for name, color, mk in (("c2", "C2", "s"), ("c1", "C1", "^"), ("eta", "C0", "o")):
    vals = np.array([float(getattr(r, name)) for r in reports])
    lo = np.array([float(r.intervals[name][0]) for r in reports])
    hi = np.array([float(r.intervals[name][1]) for r in reports])
    ax[1].errorbar(gs, vals, yerr=[vals - np.maximum(lo, 1e-2 * vals), hi - vals], fmt=mk, color=color,
                   capsize=3, label=name)
ax[1].set_yscale("log")
ax[1].set_xlabel("g")
ax[1].legend(fontsize=7)
fig.tight_layout()
os.makedirs(out_dir, exist_ok=True)
fig.savefig(os.path.join(out_dir, "nonconservative.png"), dpi=100)
print(f"wrote {out_dir}/nonconservative.png")
