"""Figure of the step-grid benchmark (`jaxsa.studies.steps`); matplotlib imported lazily."""

from __future__ import annotations

import numpy as np

from jaxsa.plot import pyplot

__all__ = ["plot_steps"]


def plot_steps(records: list, path: str) -> None:
    r"""Write ``steps.png``: for each data set (rows) and schedule (columns), the error of the
    sampler against the budget NFE, one line per grid rule (log-log), the optimised grids as
    stars and the converged flow's floor dashed: $W_1(q, p_N)$ for the 1D data, the pathwise
    error $\mathbb E|T_N(z) - T(z)|$ with its 95% interval against the learned model's
    converged flow for the d-D data (records with a ``metric``)."""
    plt = pyplot()
    data = list(dict.fromkeys(r["data"] for r in records))
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
                if "metric" in rs[0] and rule != "optimised":
                    lo = [r["W1_err"] for r in sorted(rs, key=lambda r: r["nfe"]) if r["rule"] == rule]
                    ax.errorbar(x, y, yerr=np.minimum(lo, 0.99 * y), fmt="o-", ms=3, label=rule)
                elif rule == "optimised":
                    ax.plot(x, y, "*", ms=10, color="k", label=rule)
                else:
                    ax.plot(x, y, "o-", ms=3, label=rule)
            if rs:
                ax.axhline(max(min(r["W1_floor"] for r in rs), 1e-17), color="0.5", ls="--", lw=0.8)
            else:
                ax.text(0.5, 0.5, "no model", transform=ax.transAxes, ha="center", color="0.5")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{d} / {sc}", fontsize=9)
            if i == len(data) - 1:
                ax.set_xlabel("NFE")
            if j == 0:
                dd = any("metric" in r for r in records if r["data"] == d)
                ax.set_ylabel(r"$\mathbb{E}|T_N - T|$" if dd else r"$W_1(q, p_N)$")
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
