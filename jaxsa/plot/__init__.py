r"""Figures (matplotlib, imported lazily: the numerical core never imports it).

`plot_fig4` draws the paper's Fig. 4(b–e): for each perturbation, the perturbed start
against $P_\tau$, bars of η, c₁, c₂ per schedule, and the curves $v_2(t)^2$,
$v_{loss}(t)^2$. `plot_fig5` draws Fig. 4(a)/Fig. 5: forward and estimated densities
at t = 0, τ/3, 2τ/3, τ for every schedule and perturbation.
"""

from __future__ import annotations

import os
import sys

import numpy as np

__all__ = ["COLORS", "LABELS", "pyplot", "plot_fig4", "plot_fig5", "plot_validation", "plot_optimized"]

#: colour of each schedule in every figure (schedule name → matplotlib colour)
COLORS = {"cosine": "#1f77b4", "cond-ot": "#d62728", "ot": "#2ca02c", "vp": "#9467bd"}
#: legend label of each schedule (schedule name → text)
LABELS = {"cosine": "Cosine", "cond-ot": "Cond-OT", "ot": "OT", "vp": "VP"}
_PERT_TITLES = {
    "mean": "(b) Gaussian, different mean",
    "variance": "(c) Gaussian, different variance",
    "mixture": "(d) Gaussian mixture",
    "uniform": "(e) Uniform",
}


def _has_display() -> bool:
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def pyplot():
    """``matplotlib.pyplot``, imported on first call (so that ``import jaxsa`` never imports
    matplotlib): the one way every figure module of the package gets it.

    A backend chosen by the user (an earlier pyplot import, ``MPLBACKEND``) is kept; otherwise,
    where there is no display (a headless Linux machine, CI), the file-only ``Agg`` backend is
    selected."""
    import matplotlib

    if ("matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND")
            and not _has_display()):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fig4(records: list, fig5: dict, path: str) -> None:
    """Write Fig. 4(b–e) to ``path`` from ``fig4.json`` records and ``fig5`` densities."""
    plt = pyplot()
    perts = list(dict.fromkeys(r["perturbation"] for r in records))
    scheds = list(dict.fromkeys(r["schedule"] for r in records))
    by = {(r["schedule"], r["perturbation"]): r for r in records}
    x = np.asarray(fig5["x"])
    dens = {(r["schedule"], r["perturbation"]): r for r in fig5["records"]}
    fig, axes = plt.subplots(3, len(perts), figsize=(4.2 * len(perts), 10), squeeze=False)
    for j, p in enumerate(perts):
        ax = axes[0, j]
        d = dens[(scheds[0], p)]
        ax.fill_between(x, np.asarray(d["forward_density"])[-1], color="0.8", label=r"$P_\tau=N(0,1)$")
        ax.plot(x, np.asarray(d["estimated_density"])[-1], color="k", lw=1.5, label=r"$\tilde P_\tau$")
        ax.set_xlim(-4.5, 4.5)
        ax.set_title(_PERT_TITLES.get(p, p), fontsize=10)
        ax.set_xlabel("x")
        ax.legend(fontsize=8, loc="upper left")

        ax = axes[1, j]
        width = 0.8 / len(scheds)
        for k, s in enumerate(scheds):
            r = by[(s, p)]
            vals = [r["eta"], r["c1"], r["c2"]]
            ax.bar(np.arange(3) + (k - (len(scheds) - 1) / 2) * width, vals, width,
                   color=COLORS.get(s), label=LABELS.get(s, s))
        ax.set_xticks(range(3), [r"$\eta$", r"$c_1$", r"$c_2$"])
        ax.set_ylabel("(a.u.)")
        ax.legend(fontsize=8)

        ax = axes[2, j]
        for s in scheds:
            r = by[(s, p)]
            t = np.asarray(r["t"])
            ax.plot(t, r["v2_sq"], color=COLORS.get(s), lw=1.8, label=f"{LABELS.get(s, s)} $v_2^2$")
            ax.plot(t, r["vloss_sq"], color=COLORS.get(s), lw=1.4, ls="--",
                    label=f"{LABELS.get(s, s)} $v_{{loss}}^2$")
        ax.set_xlabel(r"$t/\tau$")
        ax.set_ylabel("(a.u.)")
        if j == 0:
            ax.legend(fontsize=7, ncol=1)
    fig.suptitle(r"Speed-accuracy relations: $\eta \leq c_1 \leq c_2$ (Eq. 82) and "
                 r"$v_{loss}(t)^2 \leq v_2(t)^2$ (Eq. 80)")
    # fixed margins: tight_layout would lay the 12 axes out by drawing them once more
    fig.subplots_adjust(left=0.045, right=0.99, bottom=0.05, top=0.94, wspace=0.22, hspace=0.28)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fig5(fig5: dict, path: str) -> None:
    """Write Fig. 4(a)/Fig. 5 to ``path``: forward (grey) and estimated (colour) densities.

    One panel per snapshot time; in each, one row per (perturbation, schedule), stacked
    with a common density scale (a ridge plot: 4 axes rather than 48, which draws in a
    fraction of the time and keeps the rows comparable)."""
    plt = pyplot()
    x = np.asarray(fig5["x"])
    t = np.asarray(fig5["t"])
    recs = fig5["records"]
    perts = list(dict.fromkeys(r["perturbation"] for r in recs))
    scheds = list(dict.fromkeys(r["schedule"] for r in recs))
    rows = [(p, s) for p in perts for s in scheds]
    by = {(r["perturbation"], r["schedule"]): r for r in recs}
    ymax = max(max(np.max(r["forward_density"]), np.max(r["estimated_density"])) for r in recs)
    step = 1.08 * ymax  # vertical offset between rows: rows never overlap
    fig, axes = plt.subplots(1, len(t), figsize=(3.0 * len(t), 0.62 * len(rows) + 1.2),
                             sharey=True, squeeze=False)
    fig.subplots_adjust(left=0.125, right=0.99, bottom=0.05, top=0.92, wspace=0.06)
    offsets = step * np.arange(len(rows))[::-1]
    for j, ax in enumerate(axes[0]):
        for (p, s), off in zip(rows, offsets):
            r = by[(p, s)]
            ax.fill_between(x, off, off + np.asarray(r["forward_density"])[j], color="0.78", lw=0)
            ax.plot(x, off + np.asarray(r["estimated_density"])[j], color=COLORS.get(s), lw=1.2)
        for k in range(1, len(perts)):  # a rule between perturbations
            ax.axhline(offsets[k * len(scheds) - 1] + step - 0.04 * ymax, color="0.4", lw=0.6)
        ax.set_xlim(-4.5, 4.5)
        ax.set_ylim(-0.04 * ymax, offsets[0] + step)
        ax.set_title(f"t = {t[j]:.3g}")
        ax.set_xlabel("x")
    axes[0, 0].set_yticks(offsets + 0.35 * ymax,
                          [f"{p} / {LABELS.get(s, s)}" for p, s in rows], fontsize=8)
    for ax in axes[0, 1:]:
        ax.tick_params(left=False)
    fig.suptitle("Forward process $P_t$ (grey) and estimated process $\\tilde P_t$ (colour)")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_validation(ratios: dict, summary: dict, path: str) -> None:
    """Histograms of the tightness ratios η/c₁, c₁/c₂ and c₂/(W₂²/τ) of a validation run."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    titles = {"eta_over_c1": r"$\eta/c_1$ (Eq. 82, $\leq 1$)",
              "c1_over_c2": r"$c_1/c_2$ (Eq. 82, $\leq 1$)",
              "c2_over_ot_bound": r"$c_2\,/\,(W_2^2/\tau)$ (Eq. 91, $\geq 1$)"}
    for ax, (k, title) in zip(axes, titles.items()):
        v = np.asarray(ratios[k])
        if k == "c2_over_ot_bound":
            ax.hist(v, bins=np.geomspace(max(v.min(), 1e-3), v.max(), 60), color="#2ca02c")
            ax.set_xscale("log")
            ax.axvline(1.0, color="k", ls="--")
        else:
            ax.hist(v, bins=60, range=(0, 1.0), color="#1f77b4")
            ax.axvline(1.0, color="k", ls="--")
        ax.set_title(title)
        ax.set_ylabel("configurations")
    n_v = sum(summary["violations"].values())
    fig.suptitle(f"{summary['n']} random configurations; inequality violations beyond "
                 f"rtol={summary['rtol']:g}: {n_v}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_optimized(curves: dict, summary: dict, path: str) -> None:
    """m_t, σ_t and v₂(t)² of the optimised schedule against cosine and cond-OT."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    styles = {"optimised": ("k", "-"), "cosine": (COLORS["cosine"], "--"),
              "cond-ot": (COLORS["cond-ot"], ":")}
    for name, c in curves.items():
        color, ls = styles.get(name, ("0.5", "-"))
        axes[0].plot(c["t"], c["m"], color=color, ls=ls, label=name)
        axes[1].plot(c["t"], c["sigma"], color=color, ls=ls, label=name)
        axes[2].plot(c["t"], c["v2_sq"], color=color, ls=ls, label=name)
    axes[2].axhline(summary["ot_bound"], color=COLORS["ot"], lw=1, label=r"OT: $W_2^2/\tau^2$")
    for ax, lab in zip(axes, [r"$m_t$", r"$\sigma_t$", r"$v_2(t)^2$"]):
        ax.set_xlabel(r"$t/\tau$")
        ax.set_ylabel(lab)
    axes[2].legend(fontsize=8)
    fig.suptitle(f"c₂: optimised {summary['c2_opt']:.4f}, cosine {summary['c2_cosine']:.4f}, "
                 f"cond-OT {summary['c2_cond_ot']:.4f}, OT bound W₂²/τ = {summary['ot_bound']:.4f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
