"""Fig. 3 (matplotlib, imported lazily): Swiss-roll samples of the forward and estimated processes
at t = 0, τ/3, 2τ/3, τ for each schedule, and bars of η, c₁, c₂."""

from __future__ import annotations

import numpy as np

from jaxsa.plot import COLORS, LABELS, pyplot

__all__ = ["plot_fig3"]


def plot_fig3(records: list, samples: dict, times: list, path: str) -> None:
    """Write Fig. 3 to ``path``: for each schedule, a row of forward samples (grey) and estimated
    samples from the unperturbed start (colour) at each time in ``times``; last column: η, c₁, c₂."""
    plt = pyplot()
    names = [r["schedule"] for r in records]
    nt = len(times)
    fig, axes = plt.subplots(len(names), nt + 1, figsize=(2.6 * (nt + 1), 2.6 * len(names)),
                             squeeze=False)
    for i, name in enumerate(names):
        fwd, est = np.asarray(samples[name]["forward"]), np.asarray(samples[name]["estimated"])
        for j, t in enumerate(times):
            ax = axes[i, j]
            ax.scatter(fwd[j, :, 0], fwd[j, :, 1], s=1, c="0.6", label="forward")
            ax.scatter(est[j, :, 0], est[j, :, 1], s=1, c=COLORS.get(name, "k"), label="estimated")
            ax.set_xlim(-3.2, 3.2)
            ax.set_ylim(-3.2, 3.2)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"t = {t:.2f}")
            if j == 0:
                ax.set_ylabel(LABELS.get(name, name))
        r = records[i]
        ax = axes[i, nt]
        vals = [r["eta"], r["c1"], r["c2"]]
        ax.bar(["η", "c₁", "c₂"], vals, color=COLORS.get(name, "k"))
        ax.set_yscale("log")
        ax.set_title("η ≤ c₁ ≤ c₂" if i == 0 else "")
    axes[0, 0].legend(loc="lower left", fontsize=6, markerscale=5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
