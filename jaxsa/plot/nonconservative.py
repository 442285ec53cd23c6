"""Figure of the non-conservative experiment ([spec §6][spec-6]); matplotlib imported lazily."""

from __future__ import annotations

import numpy as np

from jaxsa.plot import pyplot

__all__ = ["plot_nonconservative"]


def plot_nonconservative(records: list, densities: dict, path: str) -> None:
    r"""Generated densities $p = \tilde P_0$ for a few ``g`` (top) and η with its bounds
    $\int T\dot S^{tot}$ (Eq. 77) and $c_2$ against ``g`` (bottom).

    ``densities``: ``{"axis": (n,), "data": (n, n), "generated": (G, n, n)}``.
    """
    plt = pyplot()
    gen = np.asarray(densities["generated"])
    ax1 = np.asarray(densities["axis"])
    show = list(range(len(records)))[:4]
    fig = plt.figure(figsize=(3.0 * (len(show) + 1), 6.4))
    ext = (ax1[0], ax1[-1], ax1[0], ax1[-1])
    ax = fig.add_subplot(2, len(show) + 1, 1)
    ax.imshow(np.asarray(densities["data"]).T, origin="lower", extent=ext, cmap="viridis")
    ax.set_title("data q")
    for j, i in enumerate(show):
        ax = fig.add_subplot(2, len(show) + 1, j + 2)
        ax.imshow(np.maximum(gen[i], 0).T, origin="lower", extent=ext, cmap="viridis")
        ax.set_title(f"generated p, g = {records[i]['g']:g}")
    ax = fig.add_subplot(2, 1, 2)
    g = [r["g"] for r in records]
    ax.semilogy(g, [r["eta"] for r in records], "ko-", label=r"$\eta = \Delta W_1^2/(\tau D_0)$")
    if all("eta_lower" in r for r in records):  # certified bracket of η (W₁ bounds)
        ax.fill_between(g, [r["eta_lower"] for r in records], [r["eta_upper"] for r in records],
                        color="k", alpha=0.15, lw=0, label=r"certified bracket of $\eta$")
    ax.semilogy(g, [r["entropy_bound"] for r in records], "r^-",
                label=r"$\int T_t\dot S^{tot}_t dt$ (Eq. 77 bound)")
    ax.semilogy(g, [r["c2"] for r in records], "bs--", label=r"$c_2 = \int v_2^2 dt$")
    ax.set_xlabel("g (strength of the rotational velocity $gR\\nabla\\ln P_t$)")
    ax.legend(fontsize=8)
    fig.suptitle("Non-conservative velocity: same forward marginals, larger entropy production")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
