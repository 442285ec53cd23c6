"""Figure of the digits experiment (`jaxsa.experiments.images`); matplotlib imported lazily."""

from __future__ import annotations

import numpy as np

from jaxsa.plot import pyplot

__all__ = ["plot_images"]

_STARTS = {"none": r"$P_\tau$", "mean": "mean shift", "variance": "variance"}


def plot_images(doc: dict, path: str) -> None:
    """Write ``images.png``: generated digits from the unperturbed and perturbed starts (left),
    η against its bound ∫T Ṡ^tot dt (Eq. 77, log scale) and the rate E||ν_t||² (right)."""
    plt = pyplot()
    imgs = doc["images"]
    scheds = list(imgs)
    starts = list(_STARTS)
    ncol = max(len(v) for s in scheds for v in imgs[s].values())
    nrow = len(scheds) * len(starts)
    fig = plt.figure(figsize=(14, 1.1 * nrow + 1.5))
    gs = fig.add_gridspec(nrow, ncol + 7, wspace=0.1, hspace=0.15)
    for i, s in enumerate(scheds):
        for j, k in enumerate(starts):
            row = i * len(starts) + j
            for c, im in enumerate(imgs[s][k]):
                ax = fig.add_subplot(gs[row, c])
                ax.imshow(np.asarray(im).reshape(8, 8), cmap="gray_r", vmin=-1, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if c == 0:
                    ax.set_ylabel(f"{s}\n{_STARTS[k]}", fontsize=7, rotation=0, ha="right",
                                  va="center")
    half = nrow // 2
    ax = fig.add_subplot(gs[:half, ncol + 2:])
    recs = doc["records"]
    labels = [f"{r['schedule']}\n{r['perturbation']}" for r in recs]
    xs = np.arange(len(recs))
    eta = np.array([max(r["eta"], 1e-12) for r in recs])
    err = None
    if all("eta_ci95" in r for r in recs):  # bootstrap 95% interval of η (log axis: clip at 0)
        lo = np.array([max(r["eta_ci95"][0], 1e-12) for r in recs])
        err = [eta - np.minimum(lo, eta), np.array([r["eta_ci95"][1] for r in recs]) - eta]
    ax.bar(xs - 0.2, eta, 0.4, yerr=err, label=r"$\eta$ (response, bootstrap 95%)")
    ax.bar(xs + 0.2, [r["entropy_bound"] for r in recs], 0.4,
           yerr=[r["entropy_bound_ci95"] for r in recs], label=r"$\int T\dot S^{tot}dt$ (bound)")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.1 * float(eta.min()))  # an interval reaching 0 runs off the bottom
    ax.set_xticks(xs, labels, fontsize=7)
    ax.legend(fontsize=7, loc="center left")
    ax.set_title("Eq. 77: response vs bound (digits, d = 64)", fontsize=9)
    ax = fig.add_subplot(gs[half + 1:, ncol + 2:])
    for s, c in doc["entropy_rate"].items():
        ax.plot(c["t"], c["rate"], marker=".", label=s)
    ax.set_xlabel("t")
    ax.set_ylabel(r"$E_{P_t}\|\nu_t\|^2 = T_t\dot S_t^{tot}$")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
