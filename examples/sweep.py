"""A sweep over schedules from a JSON configuration, through the Python API that ``jaxsa sweep``
runs: η, c₁, c₂ for every schedule parameter × perturbation, with error estimates.

    python examples/sweep.py [--fast] [--out DIR]

The configuration is examples/sweep_interpolated.json: the interpolated schedule between
cond-OT (λ = 0) and cosine (λ = 1), nine λ × the paper's four perturbed starts. ``--fast``
(what CI and the docs run) keeps three λ and two perturbations. Chunks go to ``DIR/chunks/``;
a re-run with the same DIR skips the finished ones.
"""

import dataclasses
import os
import sys
import tempfile

import numpy as np

import jaxsa

fast = "--fast" in sys.argv
out_dir = (sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv
           else tempfile.mkdtemp() if fast else "sweep_out")

spec = jaxsa.load_spec(os.path.join(os.path.dirname(os.path.abspath(__file__)), "sweep_interpolated.json"))
if fast:
    spec = dataclasses.replace(spec, grid={"lam": [0.0, 0.5, 1.0]}, perturbations=["mean", "variance"],
                               chunk_size=3)

with jaxsa.float64():
    doc = jaxsa.run_sweep(spec, os.path.join(out_dir, "sweep"))

recs = doc["records"]
# the one rule of Report.violations: a slack below -(rtol x scale + its error estimate)
violations = [(r["params"], r["perturbation"], jaxsa.violated(r, {k[:-4]: v for k, v in r.items()
                                                                  if k.endswith("_err")}, 1e-6))
              for r in recs]
print(f"{doc['n_configurations']} configurations ({spec.family}, tau = {spec.tau}); every one "
      f"converged: {all(r['converged'] for r in recs)}; violated inequalities: "
      f"{[v for v in violations if v[2]] or 'none'}")
print(f"{'lambda':>7s}  {'perturbation':12s}{'eta':>10s}{'c1':>10s}{'c2':>10s}{'L^2/tau':>10s}"
      f"{'W2^2/tau':>10s}{'max error':>11s}")
for r in recs:
    err = max(r[f"{k}_err"] for k in ("eta", "c1", "c2"))
    print(f"{r['params']['lam']:7.3f}  {r['perturbation']:12s}{r['eta']:10.5f}{r['c1']:10.5f}"
          f"{r['c2']:10.5f}{r['length_bound']:10.5f}{r['ot_bound']:10.5f}{err:11.1e}")

# ---- a figure: eta, c1, c2 against lambda, one panel per perturbation ----------------------
from jaxsa.plot import pyplot  # noqa: E402 (matplotlib only for the figure)

plt = pyplot()
perts = list(dict.fromkeys(r["perturbation"] for r in recs))
fig, axes = plt.subplots(1, len(perts), figsize=(3.6 * len(perts), 3.2), squeeze=False)
for ax, p in zip(axes[0], perts):
    rs = [r for r in recs if r["perturbation"] == p]
    lam = np.array([r["params"]["lam"] for r in rs])
    for name, style in (("eta", "o-"), ("c1", "^-"), ("c2", "s-"), ("ot_bound", ":")):
        ax.plot(lam, [r[name] for r in rs], style, ms=4, label=name if name != "ot_bound" else "W₂²/τ")
    ax.set_yscale("log")
    ax.set_xlabel("λ (0: cond-OT, 1: cosine)")
    ax.set_title(p, fontsize=9)
axes[0][0].legend(fontsize=7)
fig.tight_layout()
os.makedirs(out_dir, exist_ok=True)
fig.savefig(os.path.join(out_dir, "sweep.png"), dpi=100)
print(f"wrote {out_dir}/sweep/sweep.json and {out_dir}/sweep.png")
