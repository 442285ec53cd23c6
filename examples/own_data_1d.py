"""Your own 1D data and schedule: η, c₁, c₂, D₀ with their error estimates (Eqs. 77–82, 91).

    python examples/own_data_1d.py [--fast] [--out DIR]

The data are a Gaussian mixture of your own (three narrow, well separated modes); the schedule is
your own subclass of ``jaxsa.Schedule`` (only m_t and σ_t², derivatives come from autodiff).
Then: the report with its error estimates and statuses, a heavy-tailed start (D₀ = inf), a
tolerance that cannot be met within the refinement budget (``converged: False``) and a schedule
that breaks Eq. 24. ``--fast`` (what CI and the docs run) allows no refinement for the tight
tolerance; the default allows one.
"""

import os
import sys
import tempfile
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import jaxsa

fast = "--fast" in sys.argv
out_dir = (sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv
           else tempfile.mkdtemp() if fast else "own_data_1d_out")


# ---- your schedule: m_t and sigma_t^2 as functions of t (any jax-traceable code) ------------
class SlowStart(jaxsa.Schedule):
    r"""m_t = 1 - s, σ_t = s^k with s = t/τ: for k > 1 the noise grows slowly at first.

    m_τ = 0 and σ_τ = 1, so P_τ = N(0, 1) whatever the data (``ends_at_noise``);
    σ_t/m_t = s^k/(1 - s) increases, so T_t ≥ 0 (Eq. 24)."""

    k: jax.Array
    ends_at_noise = True

    def __init__(self, k=2.0, tau=1.0):
        self.k = jnp.asarray(k, jnp.result_type(float))
        self.tau = jnp.asarray(tau, jnp.result_type(float))

    def m(self, t):
        return 1.0 - t / self.tau

    def sigma_sq(self, t):  # σ_t² directly (σ_t alone would do here too)
        return (t / self.tau) ** (2 * self.k)


NAMES = ("eta", "c1", "c2", "D0", "delta_W1", "ot_bound")

with jaxsa.float64():
    # ---- your data: three narrow, well separated modes ------------------------------------
    data = jaxsa.GaussianMixture(weights=[0.3, 0.5, 0.2], means=[-2.0, 0.5, 3.0],
                                 scales=[0.05, 0.1, 0.03])
    schedule = jaxsa.check_schedule(SlowStart(k=2.0))  # end conditions and Eq. 24, or ValueError
    same = jaxsa.Custom(lambda t, k: 1.0 - t, sigma_sq_fn=lambda t, k: t ** (2 * k), params=2.0)
    t = jnp.linspace(0.0, 1.0, 101)
    diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(schedule.values(t), same.values(t)))
    print(f"SlowStart(k=2) passes check_schedule; jaxsa.Custom gives the same m, sigma and "
          f"derivatives to {diff:.0e}")

    path = jaxsa.DiffusionPath(schedule, data)
    start = jaxsa.gaussian(0.3, 0.9)  # the perturbed start P~_tau; P_tau = N(0, 1)

    # ---- the relations, each number with its error estimate --------------------------------
    rep = jaxsa.speed_accuracy(path, start)  # Settings(): rtol = 1e-6, up to 2 refinements
    print("\nP~_tau = N(0.3, 0.9^2):")
    print(f"    {'':14s}{'value':>17s}{'error estimate':>17s}")
    for name in NAMES:
        print(f"    {name:14s}{float(getattr(rep, name)):17.12f}{float(rep.errors[name]):17.1e}")
    print(f"    converged (every estimate within rtol = {jaxsa.Settings().rtol:g}): "
          f"{bool(rep.converged)}; D0 finite: {bool(rep.D0_finite)}")
    print(f"    violations: {rep.violations()}; eta <= c1 <= c2: "
          f"{float(rep.eta) <= float(rep.c1) <= float(rep.c2)}; "
          f"c2 >= W2^2/tau (Eq. 91): {float(rep.c2) >= float(rep.ot_bound)}")

    # ---- a heavy-tailed start: chi^2(P~_tau || P_tau) diverges ------------------------------
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        heavy = jaxsa.speed_accuracy(path, jaxsa.gaussian(0.0, 1.5))  # variance 2.25 >= 2
    print("\nP~_tau = N(0, 1.5^2), variance >= 2 x that of P_tau:")
    for w in caught:
        print(f"    {w.category.__name__}: {w.message}")
    print(f"    D0 = {float(heavy.D0)}, D0_finite = {bool(heavy.D0_finite)}; eta = {float(heavy.eta)}, "
          f"c1 = {float(heavy.c1)}, c2 = {float(heavy.c2):.12f} (c2 does not depend on the start)")

    # ---- a tolerance that the budget cannot meet ------------------------------------------
    tight = jaxsa.Settings(rtol=1e-13, max_refine=0 if fast else 1)
    rep_t = jaxsa.speed_accuracy(path, start, tight)
    allowed = rep_t.tolerances(tight.rtol)
    missed = [k for k in rep_t.CONVERGED if float(rep_t.errors[k]) > float(allowed[k])]
    print(f"\nrtol = {tight.rtol:g}, max_refine = {tight.max_refine}: converged = {bool(rep_t.converged)}")
    print(f"    {'':14s}{'error estimate':>17s}{'allowed':>10s}")
    for k in missed:
        print(f"    {k:14s}{float(rep_t.errors[k]):17.1e}{float(allowed[k]):10.1e}")
    print(f"    the values are still the best this resolution gives: c1 = {float(rep_t.c1):.12f}")

    # ---- a schedule that breaks Eq. 24 is refused before any computation --------------------
    bad = jaxsa.Custom(lambda t, p: jnp.ones_like(t), lambda t, p: 4.0 * t * (1.0 - t))
    try:
        jaxsa.speed_accuracy(jaxsa.DiffusionPath(bad, data), start)
    except ValueError as e:
        print(f"\nsigma_t = 4t(1 - t), m_t = 1: ValueError: {e}")

    tt = jnp.linspace(0.0, 1.0, 201)
    curves = [(name, style, sched.values(tt)) for sched, name, style in
              ((schedule, "SlowStart(k=2)", "-"), (jaxsa.CondOT(1.0), "cond-OT", ":"))]

# ---- a figure: the schedule, the densities of both processes, Eq. 80 ------------------------
from jaxsa.plot import pyplot  # noqa: E402 (matplotlib only for the figure)

plt = pyplot()
fig, ax = plt.subplots(1, 3, figsize=(12, 3.4))
for name, style, v in curves:
    ax[0].plot(tt, np.asarray(v.m), style, color="C0", label=f"$m_t$ {name}")
    ax[0].plot(tt, np.asarray(v.sigma), style, color="C1", label=rf"$\sigma_t$ {name}")
ax[0].set_xlabel("t")
ax[0].legend(fontsize=7)
x = np.asarray(rep.x_grid)
for i, ts in enumerate(np.asarray(rep.snapshot_t)):
    ax[1].plot(x, np.asarray(rep.forward_density[i]), color=f"C{i}", lw=1, label=f"t = {ts:.2f}")
    ax[1].plot(x, np.asarray(rep.estimated_density[i]), "--", color=f"C{i}", lw=1)
ax[1].set_yscale("log")
ax[1].set_ylim(1e-3, 20)
ax[1].set_xlim(-4, 4)
ax[1].set_title("$P_t$ (solid) and $\\tilde P_t$ (dashed)", fontsize=9)
ax[1].legend(fontsize=7)
ax[2].plot(np.asarray(rep.t), np.asarray(rep.v2_sq), label=r"$v_2^2$")
ax[2].plot(np.asarray(rep.t), np.asarray(rep.vloss_sq), label=r"$v_{loss}^2$ (Eq. 80: $\leq v_2^2$)")
ax[2].set_yscale("log")
ax[2].set_xlabel("t")
ax[2].legend(fontsize=8)
fig.tight_layout()
os.makedirs(out_dir, exist_ok=True)
fig.savefig(os.path.join(out_dir, "own_data_1d.png"), dpi=100)
print(f"\nwrote {out_dir}/own_data_1d.png")
