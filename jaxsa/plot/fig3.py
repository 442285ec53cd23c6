"""Fig. 3 (matplotlib, imported lazily): Swiss-roll flows of each learned model from the prior
and from the perturbed start at t = 0, τ/3, 2τ/3, τ, and bars of η, c₁, c₂ with their 95%
intervals, learned models beside the exact-field reference."""

from __future__ import annotations

import numpy as np

from jaxsa.plot import COLORS, LABELS, pyplot

__all__ = ["plot_fig3"]


def _bars(ax, recs, name):
    keys = ("eta", "c1", "c2")
    x = np.arange(3)
    for off, kind, hatch in ((-0.2, "learned", None), (0.2, "exact", "//")):
        r = recs.get((name, kind))
        if r is None:
            continue
        vals = np.array([r[k] for k in keys])
        lo = np.array([r[f"{k}_ci"][0] for k in keys])
        hi = np.array([r[f"{k}_ci"][1] for k in keys])
        err = np.stack([vals - np.maximum(lo, vals * 1e-3), hi - vals])
        ax.bar(x + off, vals, 0.38, color=COLORS.get(name, "k"), hatch=hatch,
               alpha=1.0 if kind == "learned" else 0.45, label=kind, yerr=err, capsize=2)
    ax.set_xticks(x, ["η", "c₁", "c₂"])
    ax.set_yscale("log")


def plot_fig3(records: list, samples: dict, times: list, data, path: str) -> None:
    """Write Fig. 3 to ``path``: one row per learned schedule (the keys of ``samples``), its
    flow from $P_\\tau$ (grey) and from the perturbed start (colour) at each time in ``times``
    (``data``, an ``(n, 2)`` array or ``None``, in light grey at t = 0); last column: η, c₁, c₂ with their intervals
    for the learned model (solid) and the exact empirical field (hatched)."""
    plt = pyplot()
    recs = {(r["schedule"], r["field"]): r for r in records}
    names = list(samples) or sorted({r["schedule"] for r in records})
    nt = len(times)
    fig, axes = plt.subplots(len(names), nt + 1, figsize=(2.6 * (nt + 1), 2.6 * len(names)),
                             squeeze=False)
    for i, name in enumerate(names):
        if name in samples:
            fwd, est = np.asarray(samples[name]["forward"]), np.asarray(samples[name]["estimated"])
            for j, t in enumerate(times):
                ax = axes[i, j]
                if j == 0 and data is not None:
                    ax.scatter(data[:, 0], data[:, 1], s=1, c="0.85", label="data")
                ax.scatter(fwd[j, :, 0], fwd[j, :, 1], s=1, c="0.45", label="from P_τ")
                ax.scatter(est[j, :, 0], est[j, :, 1], s=1, c=COLORS.get(name, "k"), alpha=0.6,
                           label="from perturbed start")
                ax.set_xlim(-3.2, 3.2)
                ax.set_ylim(-3.2, 3.2)
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(f"t = {t:.2f}")
                if j == 0:
                    ax.set_ylabel(LABELS.get(name, name))
        _bars(axes[i, nt], recs, name)
        r = recs.get((name, "learned")) or recs.get((name, "exact"))
        res = "resolved" if r.get("eta_resolved") else "η unresolved"
        axes[i, nt].set_title(("η ≤ c₁ ≤ c₂ (95%)\n" if i == 0 else "") + res, fontsize=8)
    axes[0, 0].legend(loc="lower left", fontsize=6, markerscale=5)
    axes[0, nt].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
