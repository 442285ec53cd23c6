"""Figure of the digits experiment (`jaxsa.experiments.images`); matplotlib imported lazily."""

from __future__ import annotations

import numpy as np

from jaxsa.plot import pyplot

__all__ = ["plot_images"]

_STARTS = {"none": r"$P_\tau$", "mean": "mean shift", "variance": "variance"}


def plot_images(doc: dict, path: str) -> None:
    r"""Write ``images.png``: generated digits of every field from the unperturbed and perturbed
    starts (left), η against its bound (Eq. 77, log scale, 95% intervals) and the rate
    $\mathbb E\|u_t\|^2$ along each flow (right)."""
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
    labels = [f"{r['schedule']} {r['field'][0]}\n{r['perturbation']}" for r in recs]
    xs = np.arange(len(recs))

    def bar(off, key, label):
        val = np.array([max(r[key], 1e-12) for r in recs])
        lo = np.array([max(r[f"{key}_ci"][0], 1e-12) for r in recs])
        hi = np.array([r[f"{key}_ci"][1] for r in recs])
        ax.bar(xs + off, val, 0.4, yerr=[val - np.minimum(lo, val), hi - val], label=label)
        return val

    eta = bar(-0.2, "eta", r"$\eta$ (response, 95%)")
    bar(0.2, "entropy_bound", r"$\int \mathbb{E}\|u\|^2dt$ (bound, 95%)")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.1 * float(eta.min()))  # an interval reaching 0 runs off the bottom
    ax.set_xticks(xs, labels, fontsize=6)
    ax.legend(fontsize=7, loc="center left")
    ax.set_title("Eq. 77: response vs bound (digits, d = 64; l = learned, e = exact)", fontsize=9)
    ax = fig.add_subplot(gs[half + 1:, ncol + 2:])
    for r in recs:
        if r["perturbation"] == "mean":
            ax.plot(r["t"], r["v2_sq"], marker=".", label=f"{r['schedule']} ({r['field']})")
    ax.set_xlabel("t")
    ax.set_ylabel(r"$\mathbb{E}_{P_t}\|u_t\|^2$")
    ax.set_yscale("log")
    ax.legend(fontsize=6)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
