r"""Static settings and the report of the 1D relations: resolutions, values, error estimates,
statuses, and one tolerance rule per quantity ([spec §4][spec-4])."""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsa.solvers.flow import ODESettings

__all__ = ["Settings", "Report", "SCALE_OF", "violated", "tolerance_of"]


@dataclasses.dataclass(frozen=True)
class Settings:
    r"""Static resolution and accuracy of [`speed_accuracy`][jaxsa.relations.speed_accuracy] (hashable; fixes array shapes).

    Accuracy (every method):
        rtol: requested relative accuracy of every reported scalar (default 1e-6). A report
            whose error estimates exceed it has ``converged = False``; [`speed_accuracy`][jaxsa.relations.speed_accuracy]
            first refines the resolution up to ``max_refine`` times to meet it.
        max_refine: how many times [`speed_accuracy`][jaxsa.relations.speed_accuracy] may double the resolution.

    ``method="cdf"`` (default; quadrature in $x$ of the CDF form,
    [`jaxsa.relations.cdf_quadrature`][jaxsa.relations.cdf_quadrature]):
        n_comp: panel edges across each mixture component of $P_t$ (``±comp_z`` widths).
        comp_z: half-width of those edges in component standard deviations.
        n_span: uniform panel edges over the whole support (gaps between modes, tails).
        order: Gauss–Kronrod order in $x$ (``2 order + 1`` nodes a panel).
        n_cross: most crossings of $F_{P_\tau}$ and $F_{\tilde P_\tau}$ resolved.
        time_levels: panels in time graded geometrically in $\sigma_t/m_t$ from
            ``rho_lo`` × the narrowest data scale up to $t = \tau/2$; ``time_top``
            uniform panels on $[\tau/2, \tau]$; ``time_order``: their Gauss–Kronrod order.
        tail_log: $D_0$'s panels reach where its integrand's Gaussian tail is
            $e^{-\text{tail\_log}}$ of its peak.
        time_batch: times evaluated together (speed only; results are the same).

    Quantile methods (``"particles"``, ``"flow_map"``; also [`speed_accuracy_from_start`][jaxsa.relations.speed_accuracy_from_start]):
        n_quantiles, z_max: normal-score quantile nodes on ``[-z_max, z_max]``.
        n_gauss: Gauss–Legendre nodes for $c_1, c_2, L_\tau$.
        ode, map_nodes, map_z_max: see [`speed_accuracy`][jaxsa.relations.speed_accuracy].

    Output:
        n_time: samples of the reported time series on ``[0, τ]`` (uniform).
        chi2_stride: $D_t$ is reported at every ``chi2_stride``-th series time.
        grid: ``(x_min, x_max, n_cells)`` of the density snapshots, or ``None`` (default):
            chosen from the quantiles of $P_t$ and $\tilde P_t$ at the snapshots.
        snapshots: fractions of τ at which densities are reported.
        mass_tol: largest probability mass allowed outside an explicit ``grid``.
    """

    method: str = "cdf"
    rtol: float = 1e-6
    max_refine: int = 2
    n_comp: int = 16
    comp_z: float = 9.0
    n_span: int = 48
    order: int = 7
    n_cross: int = 8
    time_levels: int = 8
    time_top: int = 2
    time_order: int = 7
    rho_lo: float = 0.02
    tail_log: float = 45.0
    time_batch: int = 16
    n_quantiles: int = 1024
    z_max: float = 8.5
    n_time: int = 151
    n_gauss: int = 32
    chi2_stride: int = 10
    grid: tuple | None = None
    n_grid: int = 1200
    snapshots: tuple = (0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0)
    mass_tol: float = 1e-6
    ode: ODESettings = ODESettings()
    map_nodes: int = 1024
    map_z_max: float = 16.0

    def refined(self, factor: int = 2) -> "Settings":
        """Every resolution refined by ``factor`` (nodes, panels, time nodes, grid, ODE tolerance)."""
        grid = self.grid
        if grid is not None:
            lo, hi, n = grid
            grid = (lo, hi, n * factor)
        return dataclasses.replace(
            self,
            n_comp=self.n_comp * factor,
            n_span=self.n_span * factor,
            time_levels=self.time_levels * factor,
            time_top=self.time_top * factor,
            n_quantiles=self.n_quantiles * factor,
            n_time=(self.n_time - 1) * factor + 1,
            n_gauss=self.n_gauss * factor,
            chi2_stride=self.chi2_stride * factor,
            grid=grid,
            n_grid=self.n_grid * factor,
            ode=self.ode.refined(factor),
            map_nodes=self.map_nodes * factor,
        )

    def quantile_method(self) -> "Settings":
        """These settings with the all-particle quantile method (if ``cdf`` was chosen)."""
        return self if self.method != "cdf" else dataclasses.replace(self, method="particles")


class Report(eqx.Module):
    r"""Result of [`speed_accuracy`][jaxsa.relations.speed_accuracy] (all arrays; batched under ``vmap``).

    Scalars (dimensionless unless noted; lengths in data units, time in units of τ):
    ``eta``, ``c1``, ``c2``, ``entropy_bound`` ($\int T\dot S^{tot}dt = c_2$), ``D0``,
    ``W1_q_p`` ($W_1(q,p)$), ``W1_init`` ($W_1(P_\tau,\tilde P_\tau)$),
    ``delta_W1``, ``path_length`` ($L_\tau$), ``W2_sq`` ($W_2(q,P_\tau)^2$),
    ``length_bound`` ($L_\tau^2/\tau$), ``ot_bound`` ($W_2^2/\tau$), ``v2_sq_max``
    ($\max_t v_2^2$, the scale of Eq. 80's slack).

    Slacks (≥ 0 when the inequality holds): ``slack_77`` = entropy_bound − η,
    ``slack_80`` = min over t of $v_2^2 - v_{loss}^2$ (both extremes over t are located between
    the time nodes, with their sampling errors in ``errors``), ``slack_82_eta_c1`` = c₁ − η,
    ``slack_82_c1_c2`` = c₂ − c₁, ``slack_91_c2_length`` = c₂ − L²/τ,
    ``slack_91_length_ot`` = (L² − W₂²)/τ.

    Series ``(n_time,)``: ``t``, ``v2_sq`` (= $T_t\dot S_t^{tot}$), ``vloss_sq``,
    ``W1_t``, ``dW1_dt``. χ² along the flow: ``chi2_t``, ``chi2`` and ``chi2_residual``
    (max relative deviation from $D_0$). Snapshots: ``snapshot_t`` ``(S,)``, ``x_grid``
    ``(G,)``, ``forward_density`` and ``estimated_density`` ``(S, G)``.

    Accuracy: ``errors`` maps every name of ``SCALARS`` and ``SLACKS`` to its error estimate
    (same units; from the embedded second resolution of the method, see
    [`jaxsa.relations.cdf_quadrature`][jaxsa.relations.cdf_quadrature]); ``converged`` is true when every estimate is within the
    requested ``Settings.rtol`` ([`tolerances`][jaxsa.relations.report.Report.tolerances]; every scalar but ``path_length`` and
    ``length_bound``, see ``CONVERGED``); ``D0_finite`` is false when
    $\chi^2(\tilde P_\tau\|P_\tau)$ diverges (then ``D0 = inf`` and ``eta = c1 = 0``:
    the relations bound nothing); ``n_crossings`` counts the crossings of the two start CDFs.

    Diagnostics: ``ode_steps``, ``ode_success``, ``forward_endpoint_error`` (max distance of
    the ODE's forward particles at t = 0 from the exact data quantiles; quantile methods
    only, 0 for ``cdf``), ``mass_outside_grid`` (largest mass outside the grid over the
    snapshots).
    """

    eta: jax.Array
    c1: jax.Array
    c2: jax.Array
    entropy_bound: jax.Array
    D0: jax.Array
    W1_q_p: jax.Array
    W1_init: jax.Array
    delta_W1: jax.Array
    path_length: jax.Array
    W2_sq: jax.Array
    length_bound: jax.Array
    ot_bound: jax.Array
    v2_sq_max: jax.Array
    slack_77: jax.Array
    slack_80: jax.Array
    slack_82_eta_c1: jax.Array
    slack_82_c1_c2: jax.Array
    slack_91_c2_length: jax.Array
    slack_91_length_ot: jax.Array
    t: jax.Array
    v2_sq: jax.Array
    vloss_sq: jax.Array
    W1_t: jax.Array
    dW1_dt: jax.Array
    chi2_t: jax.Array
    chi2: jax.Array
    chi2_residual: jax.Array
    snapshot_t: jax.Array
    x_grid: jax.Array
    forward_density: jax.Array
    estimated_density: jax.Array
    ode_steps: jax.Array
    ode_success: jax.Array
    forward_endpoint_error: jax.Array
    mass_outside_grid: jax.Array
    errors: dict
    converged: jax.Array
    D0_finite: jax.Array
    n_crossings: jax.Array

    SCALARS = (
        "eta", "c1", "c2", "entropy_bound", "D0", "W1_q_p", "W1_init", "delta_W1",
        "path_length", "W2_sq", "length_bound", "ot_bound", "v2_sq_max",
    )
    SLACKS = (
        "slack_77", "slack_80", "slack_82_eta_c1", "slack_82_c1_c2",
        "slack_91_c2_length", "slack_91_length_ot",
    )
    # the scalars whose estimates decide ``converged``: all but L_τ = ∫v₂ dt and L²/τ, whose
    # integrand has a kink wherever v₂ vanishes (P_t's spread turning from contraction to
    # expansion), so that no fixed rule converges fast there; they keep their estimates
    CONVERGED = tuple(k for k in SCALARS if k not in ("path_length", "length_bound"))

    def violations(self, rtol: float = 1e-6) -> dict:
        """Slacks below ``-(rtol × scale + error estimate)`` (concrete reports): the one rule
        of [`violated`][jaxsa.relations.violated], which ``jaxsa validate`` uses too."""
        rec = {k: float(getattr(self, k)) for k in self.SCALARS + self.SLACKS}
        errs = {k: float(v) for k, v in self.errors.items()}
        return {k: rec[k] for k in violated(rec, errs, rtol)}

    def tolerances(self, rtol: float) -> dict:
        """The error allowed for each scalar at relative accuracy ``rtol`` (see [`tolerance_of`][jaxsa.relations.tolerance_of])."""
        return tolerance_of({k: getattr(self, k) for k in self.SCALARS}, rtol)

    def to_dict(self) -> dict:
        """Plain Python floats and lists (for JSON); ``errors`` as ``<name>_err`` entries."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "errors":
                for k, e in v.items():
                    out[f"{k}_err"] = np.asarray(e).tolist()
                continue
            a = np.asarray(v)
            out[f.name] = a.tolist() if a.ndim else a.item()
        return out


# slack -> the side of its inequality that sets its tolerance scale (one rule everywhere)
SCALE_OF = {
    "slack_77": "entropy_bound",
    "slack_80": "v2_sq_max",
    "slack_82_eta_c1": "c1",
    "slack_82_c1_c2": "c2",
    "slack_91_c2_length": "c2",
    "slack_91_length_ot": "length_bound",
}


def violated(values: dict, errors: dict, rtol: float) -> list:
    """Names of the inequalities violated beyond round-off and the computation's own error:
    ``slack < -(rtol × |scale| + error of the slack)``, the scale being the larger side of the
    inequality (`SCALE_OF`). ``values`` and ``errors`` map names to floats."""
    out = []
    for s, scale in SCALE_OF.items():
        err = errors.get(s, 0.0)
        err = err if np.isfinite(err) else 0.0
        if values[s] < -(rtol * abs(values[scale]) + err):
            out.append(s)
    return out


def tolerance_of(values: dict, rtol: float) -> dict:
    r"""Error allowed for each scalar: ``rtol × |value|``; for ``delta_W1`` also
    ``1e-3 rtol × W₁`` (a difference far below W₁ is known absolutely), so that η is held to
    about ``2 rtol`` relative, or absolutely where $|\Delta W_1| < 10^{-3} W_1$; for ``c1``
    and ``eta`` (which follow ``delta_W1``) also ``1e-3 rtol × c₂``."""
    tol = {k: rtol * jnp.abs(v) for k, v in values.items()}
    w1 = jnp.maximum(jnp.abs(values["W1_q_p"]), jnp.abs(values["W1_init"]))
    tol["delta_W1"] = tol["delta_W1"] + 1e-3 * rtol * w1
    floor = 1e-3 * rtol * jnp.abs(values["c2"])
    tol["eta"] = jnp.where(jnp.isfinite(values["D0"]), tol["eta"] + floor, jnp.inf)
    tol["c1"] = tol["c1"] + floor
    tol["D0"] = jnp.where(jnp.isfinite(values["D0"]), tol["D0"], jnp.inf)
    return tol
