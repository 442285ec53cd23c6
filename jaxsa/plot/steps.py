"""Figure of the step-grid benchmark (`jaxsa.studies.steps`); matplotlib imported lazily."""

from __future__ import annotations

import numpy as np

from jaxsa.plot import pyplot

__all__ = ["plot_steps"]


def plot_steps(records: list, path: str) -> None:
    """Write ``steps.png``: for each data set (rows) and schedule (columns), the error
    $W_1(q, p_N)$ of the sampler against the budget NFE, one line per grid rule (log-log),
    the optimised grids as stars and the converged flow's floor dashed."""
    plt = pyplot()
    data = sorted({r["data"] for r in records})
    scheds = list(dict.fromkeys(r["schedule"] for r in records))
    fig, axes = plt.subplots(len(data), len(scheds), figsize=(3.4 * len(scheds), 2.9 * len(data)),
                             squeeze=False)
    for i, d in enumerate(data):
        for j, sc in enumerate(scheds):
            ax = axes[i, j]
            rs = [r for r in records if r["data"] == d and r["schedule"] == sc]
            for rule in dict.fromkeys(r["rule"] for r in rs):
                pts = sorted((r["nfe"], max(r["W1"], 1e-17)) for r in rs if r["rule"] == rule)
                x, y = np.array(pts).T
                if rule == "optimised":
                    ax.plot(x, y, "*", ms=10, color="k", label=rule)
                else:
                    ax.plot(x, y, "o-", ms=3, label=rule)
            if rs:
                ax.axhline(max(rs[0]["W1_floor"], 1e-17), color="0.5", ls="--", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{d} / {sc}", fontsize=9)
            if i == len(data) - 1:
                ax.set_xlabel("NFE")
            if j == 0:
                ax.set_ylabel(r"$W_1(q, p_N)$")
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
