r"""The speed-accuracy relations of diffusion models in 1D: one call, one report ([spec §4][spec-4]).

[`speed_accuracy`][jaxsa.relations.speed_accuracy] takes a forward process ([`DiffusionPath`][jaxsa.forward.DiffusionPath] or
[`OTPath`][jaxsa.ot_schedule.OTPath]), a perturbed start $\tilde P_\tau$ and static
[`Settings`][jaxsa.relations.Settings], and returns a [`Report`][jaxsa.relations.Report] pytree with

* $D_0 = \int(\tilde P_\tau - P_\tau)^2/P_\tau$ (Eq. 78) and its conservation along the flow
  (Appendix E);
* $\Delta W_1 = W_1(q,p) - W_1(P_\tau,\tilde P_\tau)$, $\eta = \Delta W_1^2/(\tau D_0)$;
* $v_2(t)^2 = T_t\dot S^{tot}_t = \int \nu_t^2 P_t$ (Eqs. 36, 67; every 1D velocity field is a
  gradient, so the equality holds), $v_{loss}(t)^2 = (\partial_t W_1(P_t,\tilde P_t))^2/D_0$;
* $c_1 = \int v_{loss}^2$, $c_2 = \int v_2^2$, $L_\tau = \int v_2$,
  $W_2(q,P_\tau)^2/\tau$ (Eqs. 79–82, 91);
* the slack of each inequality: Eq. 77, Eq. 80 (pointwise, its minimum), Eq. 82 (both
  halves), Eq. 91 (both halves); non-negative when the theorem holds.

**Method (quantile transport in normal-score coordinates).** A 1D flow map is monotone, so it
carries quantiles to quantiles. Levels are parameterised by the normal score
$u = \Phi(z)$ on a uniform grid $z_i \in [-z_{max}, z_{max}]$ with weights
$h\,\varphi(z_i)$ (the trapezoid rule on $\mathbb R$, spectrally accurate for smooth
integrands). Forward particles start at $F_{P_\tau}^{-1}(\Phi(z_i))$, estimated ones at
$F_{\tilde P_\tau}^{-1}(\Phi(z_i))$, and one probability-flow ODE (diffrax) carries both,
with their log-Jacobians, from ``t = τ`` to 0. Then at any saved time
$W_1(P_t,\tilde P_t) = \sum_i w_i |x_i(t) - \tilde x_i(t)|$.

**Time derivative of** $W_1$ **(exact, no finite differences).** Because both flows are
the same monotone map, the sign $s_i$ of $x_i(t)-\tilde x_i(t)$ never changes
along the flow (it is fixed at ``t = τ``), so
$\partial_t W_1 = \sum_i w_i s_i [\nu_t(x_i) - \nu_t(\tilde x_i)]$: the derivative of
the quadrature itself, exact up to the ODE tolerance. The kinks of $|x - \tilde x|$ sit
in the same cells at all times and are integrated exactly for a linear integrand
([`abs_quadrature`][jaxsa.relations.abs_quadrature]), so $W_1$ and $\partial_t W_1$ converge at third order or
better (see ``tests/test_convergence.py``). Time integrals use Gauss–Legendre nodes in
``[0, τ]``.

**Flow-map method** (``Settings(method="flow_map")``, the default of sweeps). In 1D the flow of
the probability-flow ODE from τ to t is the monotone map $F_{P_t}^{-1}\circ F_{P_\tau}$,
the same for forward and estimated particles. Only ``map_nodes`` forward particles at uniform
normal scores go through the ODE; every other particle is read off the map at its own level
by quintic Hermite interpolation whose slopes are closed forms (``_flow_map_trajectories``).
It agrees with the all-particle solve to ~1e-7 and is several times faster.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsa._checks import DivergenceWarning, check, is_concrete, warn_if_float32
from jaxsa.flow import ODESettings, transport
from jaxsa.forward import DiffusionPath
from jaxsa.ot_schedule import OTPath
from jaxsa.schedules import check_schedule

__all__ = [
    "Settings",
    "Report",
    "speed_accuracy",
    "speed_accuracy_from_start",
    "perturbation_start",
    "quantile_nodes",
    "end_marginal",
    "abs_quadrature",
]


@dataclasses.dataclass(frozen=True)
class Settings:
    r"""Static resolution and accuracy of [`speed_accuracy`][jaxsa.relations.speed_accuracy] (hashable; fixes array shapes).

    Accuracy (every method):
        rtol: requested relative accuracy of every reported scalar (default 1e-6). A report
            whose error estimates exceed it has ``converged = False``; [`speed_accuracy`][jaxsa.relations.speed_accuracy]
            first refines the resolution up to ``max_refine`` times to meet it.
        max_refine: how many times [`speed_accuracy`][jaxsa.relations.speed_accuracy] may double the resolution.

    ``method="cdf"`` (default; quadrature in $x$ of the CDF form,
    [`jaxsa.cdf_quadrature`][jaxsa.cdf_quadrature]):
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
    ``length_bound`` ($L_\tau^2/\tau$), ``ot_bound`` ($W_2^2/\tau$).

    Slacks (≥ 0 when the inequality holds): ``slack_77`` = entropy_bound − η,
    ``slack_80`` = min over t of $v_2^2 - v_{loss}^2$, ``slack_82_eta_c1`` = c₁ − η,
    ``slack_82_c1_c2`` = c₂ − c₁, ``slack_91_c2_length`` = c₂ − L²/τ,
    ``slack_91_length_ot`` = (L² − W₂²)/τ.

    Series ``(n_time,)``: ``t``, ``v2_sq`` (= $T_t\dot S_t^{tot}$), ``vloss_sq``,
    ``W1_t``, ``dW1_dt``. χ² along the flow: ``chi2_t``, ``chi2`` and ``chi2_residual``
    (max relative deviation from $D_0$). Snapshots: ``snapshot_t`` ``(S,)``, ``x_grid``
    ``(G,)``, ``forward_density`` and ``estimated_density`` ``(S, G)``.

    Accuracy: ``errors`` maps every name of ``SCALARS`` and ``SLACKS`` to its error estimate
    (same units; from the embedded second resolution of the method, see
    [`jaxsa.cdf_quadrature`][jaxsa.cdf_quadrature]); ``converged`` is true when every estimate is within the
    requested ``Settings.rtol`` ([`tolerances`][jaxsa.relations.Report.tolerances]; every scalar but ``path_length`` and
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


# ----------------------------------------------------------------------------------------
def quantile_nodes(n: int, z_max: float, dtype=None):
    r"""Normal-score nodes ``z`` ``(n,)`` on ``[-z_max, z_max]`` and trapezoid weights
    $h\varphi(z_i)$ (static numpy arrays; sum to 1 − 2Φ(−z_max) up to round-off)."""
    z = np.linspace(-z_max, z_max, n)
    h = z[1] - z[0]
    w = h * np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    w[0] *= 0.5
    w[-1] *= 0.5
    return z, w


def abs_quadrature(d, d_dot, sign, z, w):
    r"""$\int |d(z)|\varphi(z)dz$ and its time derivative on the normal-score nodes.

    ``d``: ``(..., n)`` differences of quantiles $x(z_i) - \tilde x(z_i)$; ``d_dot``:
    their time derivatives; ``sign``: ``(n,)`` the time-invariant sign of ``d``; ``z, w``:
    nodes and trapezoid weights ([`quantile_nodes`][jaxsa.relations.quantile_nodes]).

    The trapezoid rule is spectrally accurate for smooth integrands, but only second order
    across a kink of $|d|$. The kinks sit where ``sign`` flips, in the same cells at every
    time, and are corrected there: with $F = |d|\varphi$ and the kink in cell
    $[z_i, z_{i+1}]$,

    * the cell is integrated exactly for a linear $g = d\varphi$ (trapezoid value
      $h(F_i+F_{i+1})/2$ replaced by $h(F_i^2+F_{i+1}^2)/(2(F_i+F_{i+1}))$);
    * the two smooth pieces either side get their Euler–Maclaurin end terms,
      $\tfrac{h^2}{12}[F'(z_{i+1}^+) - F'(z_i^-)]$, with one-sided second-order
      differences for $F'$,

    which leaves an $O(h^3)$ error. The derivative returned is the exact time
    derivative of the corrected rule (it is linear in ``d_dot`` given ``d``), not a finite
    difference in time. Sign changes must be at least three nodes apart.
    """
    phi = jnp.exp(-0.5 * z**2) / jnp.sqrt(2 * jnp.pi)
    h = z[1] - z[0]
    n = z.shape[0]
    value = jnp.sum(w * sign * d, axis=-1)
    rate = jnp.sum(w * sign * d_dot, axis=-1)
    idx = jnp.arange(n - 1)
    flip = ((sign[:-1] * sign[1:]) < 0) & (idx >= 2) & (idx <= n - 4)  # kink cells [i, i+1]
    F = sign * d * phi  # |d| φ, shape (..., n)
    Fd = sign * d_dot * phi

    pad = [(0, 0)] * (d.ndim - 1) + [(2, 3)]

    def at(A, k):  # A[..., i + k] for every cell i, clamped at the ends (static slices)
        return jax.lax.slice_in_dim(jnp.pad(A, pad, mode="edge"), 2 + k, 2 + k + n - 1, axis=-1)

    a, b, da, db = at(F, 0), at(F, 1), at(Fd, 0), at(Fd, 1)
    s = a + b
    ok = flip & (s > 0)
    safe = jnp.where(ok, s, 1.0)
    cell = jnp.where(ok, -h * a * b / safe, 0.0)
    dcell = jnp.where(ok, -h * (b**2 * da + a**2 * db) / safe**2, 0.0)

    def end_terms(A):  # (h^2/12)[F'(z_{i+1}+) - F'(z_i-)], one-sided 2nd-order differences
        right = -3 * at(A, 1) + 4 * at(A, 2) - at(A, 3)
        left = 3 * at(A, 0) - 4 * at(A, -1) + at(A, -2)
        return jnp.where(flip, (h / 24.0) * (right - left), 0.0)

    return (value + jnp.sum(cell + end_terms(F), axis=-1),
            rate + jnp.sum(dcell + end_terms(Fd), axis=-1))


def end_marginal(path):
    r"""$P_\tau$, the end density of the forward process, as a density object."""
    if isinstance(path, OTPath):
        return path.prior
    return path.marginal(path.tau)


def _end_density(path):
    r"""$P_\tau$; a single Gaussian where the schedule ends at $m_\tau = 0$ by its
    construction (cosine, cond-OT and the families ending at N(0, 1)): every component of the
    marginal is then $\mathcal N(0, \sigma_\tau^2)$, and one component is exact and
    cheaper (closed-form quantiles)."""
    from jaxsa.families import Interpolated, PolarBernstein
    from jaxsa.schedules import CondOT, Cosine

    p = end_marginal(path)
    if isinstance(path, DiffusionPath) and type(path.schedule) in (Cosine, CondOT, Interpolated,
                                                                   PolarBernstein):
        one = jnp.ones(1, p.means.dtype)
        return type(p).unchecked(one, jnp.zeros(1, p.means.dtype), p.scales[:1])
    return p


def _time_layout(settings: Settings):
    """Static save-time fractions (decreasing, unique) and index maps of each group."""
    uni = np.linspace(0.0, 1.0, settings.n_time)
    g, gw = np.polynomial.legendre.leggauss(settings.n_gauss)
    gl = 0.5 * (g + 1.0)
    snap = np.asarray(settings.snapshots, dtype=float)
    allf = np.concatenate([uni, gl, snap])
    key = np.round(allf, 14)
    uniq, inverse = np.unique(key, return_inverse=True)
    order = uniq[::-1]  # decreasing: the flow runs from τ to 0
    pos = len(uniq) - 1 - inverse
    n_u, n_g = len(uni), len(gl)
    return order, pos[:n_u], pos[n_u:n_u + n_g], 0.5 * gw, pos[n_u + n_g:]


def _mass_message(settings, name, mass):
    return (f"speed_accuracy: `settings.grid` = {settings.grid} does not hold the mass of the "
            f"{name}: {_fmt(jnp.max(mass))} lies outside (> mass_tol = {settings.mass_tol:g}); "
            "widen the grid.")


def _check_inputs(path, settings, perturbation_cdf):
    """Structural checks (ValueError now) and value checks (now, or at run time if traced)."""
    if not isinstance(path, (DiffusionPath, OTPath)):
        raise ValueError(
            f"speed_accuracy: `path` must be a DiffusionPath or OTPath, got {type(path).__name__}."
        )
    if path.data.means.ndim != 1:
        raise ValueError("speed_accuracy: this is the 1D method; `path.data` must be 1D.")
    if settings.grid is not None:
        lo, hi, n = settings.grid
        if not (lo < hi and n >= 2):
            raise ValueError(f"speed_accuracy: `settings.grid` must be (x_min < x_max, n >= 2), "
                             f"got {settings.grid}.")
    if settings.n_time < 2 or settings.n_grid < 2:
        raise ValueError("speed_accuracy: `settings.n_time` and `settings.n_grid` must be >= 2.")
    if settings.method not in ("cdf", "particles", "flow_map"):
        raise ValueError(f"speed_accuracy: `settings.method` must be 'cdf', 'particles' or "
                         f"'flow_map', got {settings.method!r}.")
    if not settings.rtol > 0:
        raise ValueError(f"speed_accuracy: `settings.rtol` must be > 0, got {settings.rtol}.")
    if settings.method == "cdf":
        if (settings.n_comp < 4 or settings.n_span < 4 or settings.order < 2
                or settings.time_levels < 1 or settings.time_top < 1 or settings.time_order < 2
                or settings.n_cross < 1):
            raise ValueError("speed_accuracy: `settings` resolution too coarse for the cdf method "
                             "(n_comp >= 4, n_span >= 4, order >= 2, time_levels >= 1, "
                             "time_top >= 1, time_order >= 2, n_cross >= 1).")
    elif settings.n_quantiles < 16 or settings.n_gauss < 2:
        raise ValueError("speed_accuracy: `settings` resolution too coarse (n_quantiles >= 16, "
                         "n_gauss >= 2).")
    if settings.method == "flow_map" and not (settings.map_nodes >= 16
                                              and settings.map_z_max >= settings.z_max):
        raise ValueError("speed_accuracy: the flow map needs `settings.map_nodes` >= 16 and "
                         f"`settings.map_z_max` >= z_max = {settings.z_max}; got "
                         f"{settings.map_nodes}, {settings.map_z_max}.")
    if isinstance(path, DiffusionPath):
        path = eqx.tree_at(lambda p: p.schedule, path, check_schedule(path.schedule))
    else:
        tau = check(path.tau > 0, "OTPath: `tau` must be > 0.", path.tau)
        path = eqx.tree_at(lambda p: p.tau, path, tau)
    if settings.grid is None:
        return path
    # an explicit grid must hold the mass of q, P_τ and the perturbed start (by their CDFs)
    lo, hi, _ = settings.grid
    cdfs = [("data q", path.data.cdf), ("P_tau", end_marginal(path).cdf)]
    if perturbation_cdf is not None:
        cdfs.append(("perturbation", perturbation_cdf))
    for name, cdf in cdfs:
        mass = cdf(jnp.asarray(lo)) + 1.0 - cdf(jnp.asarray(hi))
        path = check(mass <= settings.mass_tol, _mass_message(settings, name, mass), path)
    return path


def speed_accuracy(path, perturbation, settings: Settings = Settings()) -> Report:
    r"""Every quantity of the speed-accuracy relations for one forward process and one
    perturbed start, each with its error estimate ([spec §4][spec-4], Eqs. 77–82, 91; [§2][spec-2] Eqs. 36,
    66–67; Appendix E).

    Args:
        path: the forward process with its velocity field: a [`jaxsa.DiffusionPath`][jaxsa.forward.DiffusionPath]
            (schedule + 1D Gaussian-mixture data; closed-form field) or a
            [`jaxsa.OTPath`][jaxsa.ot_schedule.OTPath] (exact 1D optimal transport).
        perturbation: the perturbed start $\tilde P_\tau$ of the estimated process, a
            1D [`jaxsa.GaussianMixture`][jaxsa.densities.GaussianMixture] or [`jaxsa.Uniform`][jaxsa.densities.Uniform].
        settings: static [`Settings`][jaxsa.relations.Settings] (method, requested accuracy, resolutions).

    Returns:
        A [`Report`][jaxsa.relations.Report] pytree: values, ``errors`` (estimates), ``converged`` and
        ``D0_finite``. With the default ``method="cdf"`` ([`jaxsa.cdf_quadrature`][jaxsa.cdf_quadrature]) the
        resolution is doubled up to ``settings.max_refine`` times until every estimate meets
        ``settings.rtol`` (outside ``jit``; under a transformation the one resolution given
        is used and ``converged`` tells). When $\chi^2(\tilde P_\tau\|P_\tau)$ diverges
        (a start with heavier tails than $P_\tau$) the report has ``D0 = inf``,
        ``eta = c1 = 0``, ``D0_finite = False`` and a `jaxsa.Float64Warning`-style
        `jaxsa.DivergenceWarning` is issued. Under ``jax.vmap`` over a batch of paths
        or perturbations of one kind every leaf gains a leading batch axis.

    Raises:
        ValueError: an invalid schedule (Eq. 24, end conditions), an explicit grid that does
            not hold the mass, or malformed inputs, before any heavy computation (at run time
            through ``equinox.error_if`` when the inputs are traced).

    Needs float64 (warns otherwise). Example:

    ```python
    with jaxsa.float64():
        path = jaxsa.DiffusionPath(jaxsa.CondOT(1.0), jaxsa.paper_data())
        rep = jaxsa.speed_accuracy(path, jaxsa.gaussian(1.0, 1.0))
        print(rep.eta, rep.errors["eta"], rep.converged)   # η ≤ c₁ ≤ c₂
    ```
    """
    from jaxsa.cdf_quadrature import Start

    warn_if_float32("speed_accuracy (η, c₁, c₂, D₀)", path, perturbation)
    if isinstance(perturbation, Start):
        if settings.method != "cdf":
            raise ValueError("speed_accuracy: a `Start` needs settings.method = 'cdf'.")
    elif not hasattr(perturbation, "normal_score_quantile") or not hasattr(perturbation, "cdf"):
        raise ValueError(
            "speed_accuracy: `perturbation` must be a 1D density with a quantile function "
            f"(GaussianMixture or Uniform), got {type(perturbation).__name__}."
        )
    if getattr(perturbation, "event_shape", ()) != ():
        raise ValueError("speed_accuracy: `perturbation` must be 1D.")
    path = _check_inputs(path, settings, perturbation.cdf)
    if settings.method != "cdf":
        start = perturbation_start(perturbation, settings)
        return _from_start_jit(path, start, settings)
    rep = _cdf_jit(path, perturbation, settings)
    if is_concrete(rep.converged):
        for _ in range(settings.max_refine):
            if bool(np.all(np.asarray(rep.converged))):
                break
            settings = settings.refined(2)
            rep = _cdf_jit(path, perturbation, settings)
        if not bool(np.all(np.asarray(rep.D0_finite))):
            warnings.warn(
                "speed_accuracy: chi^2(P~_tau || P_tau) diverges (the perturbed start has "
                "heavier tails than P_tau: its widest component variance is >= 2x that of "
                "P_tau); D0 = inf and eta = c1 = 0 -- the relations bound nothing here.",
                DivergenceWarning, stacklevel=2)
    return rep


def perturbation_start(perturbation, settings: Settings = Settings()):
    r"""The perturbed start on the quantile nodes: ``(x, log_p)``, each ``(n_quantiles,)``.

    ``x[i]`` = $F_{\tilde P_\tau}^{-1}(\Phi(z_i))$ and ``log_p[i]`` =
    $\ln\tilde P_\tau(x_i)$. Starts of perturbations of different kinds have the
    same shape, so they stack into one batch for [`speed_accuracy_from_start`][jaxsa.relations.speed_accuracy_from_start].
    """
    return _start_jit(perturbation, settings)


@functools.partial(jax.jit, static_argnames="settings")
def _start_jit(perturbation, settings):
    z, _ = quantile_nodes(settings.n_quantiles, settings.z_max)
    x = perturbation.normal_score_quantile(jnp.asarray(z, jnp.result_type(float)))
    return x, perturbation.log_density(x)


def speed_accuracy_from_start(path, start, settings: Settings = Settings()) -> Report:
    """[`speed_accuracy`][jaxsa.relations.speed_accuracy] for a perturbed start given on the quantile nodes.

    ``start = (x, log_p)`` as returned by [`perturbation_start`][jaxsa.relations.perturbation_start] (any 1D density whose
    quantiles and log-density you can evaluate at the normal-score nodes), with any leading
    batch shape: a batch of starts is solved as *one* ODE system (all particles together),
    which is much faster than ``jax.vmap`` over starts, and the report's leaves gain that
    batch shape. Also vmappable over ``path``.
    """
    warn_if_float32("speed_accuracy_from_start (η, c₁, c₂, D₀)", path, start)
    x, log_p = start
    if jnp.shape(x)[-1:] != (settings.n_quantiles,) or jnp.shape(log_p) != jnp.shape(x):
        raise ValueError(
            f"speed_accuracy_from_start: `start` must be two arrays of shape (..., "
            f"{settings.n_quantiles}) (settings.n_quantiles); got {jnp.shape(x)}, {jnp.shape(log_p)}."
        )
    settings = settings.quantile_method()
    path = _check_inputs(path, settings, None)
    if settings.grid is not None:
        _, w = quantile_nodes(settings.n_quantiles, settings.z_max)
        lo, hi, _ = settings.grid
        mass = jnp.sum(jnp.asarray(w) * ((x < lo) | (x > hi)), axis=-1)
        mass = check(mass <= settings.mass_tol, _mass_message(settings, "perturbation", mass), mass)
    return _from_start_jit(path, (x, log_p), settings)


@functools.partial(jax.jit, static_argnames="settings")
def _from_start_jit(path, start, settings):
    return _speed_accuracy(path, start, settings)


def _particle_trajectories(path, x_f0, x_e0, ts, rows, settings):
    """Every forward and estimated particle through one ODE system (``method="particles"``).

    Returns ``xf, vf`` ``(S, n)``, ``ljf`` ``(R, n)`` (log-Jacobians at the save-time ``rows``),
    ``xe, ve`` ``(B, S, n)``, ``lje`` ``(B, R, n)`` and the solver's stats."""
    n, n_batch = x_f0.shape[0], x_e0.shape[0]
    X, V, LJ, stats = transport(path, jnp.concatenate([x_f0, x_e0.ravel()]), ts, settings.ode)

    def per_start(a):  # (S, n_batch * n) -> (n_batch, S, n)
        return jnp.moveaxis(a[:, n:].reshape(a.shape[0], n_batch, n), 1, 0)

    return X[:, :n], V[:, :n], LJ[rows, :n], per_start(X), per_start(V), per_start(LJ)[:, rows], stats


def _hermite5(u):
    """Quintic Hermite basis on ``[0, 1]`` (value, slope, curvature at 0; the same at 1)."""
    u2, u3 = u * u, u * u * u
    u4, u5 = u3 * u, u3 * u2
    return (1 - 10 * u3 + 15 * u4 - 6 * u5, u - 6 * u3 + 8 * u4 - 3 * u5,
            0.5 * (u2 - 3 * u3 + 3 * u4 - u5), 10 * u3 - 15 * u4 + 6 * u5,
            -4 * u3 + 7 * u4 - 3 * u5, 0.5 * (u3 - 2 * u4 + u5))


def _flow_map_trajectories(path, x_f0, x_e0, ts, rows, settings):
    r"""Trajectories through the interpolated flow map (``method="flow_map"``; 1D only).

    In 1D the flow of the probability-flow ODE from τ to t is the monotone map
    $X_t = F_{P_t}^{-1}\circ F_{P_\tau}$: it keeps every particle's level
    $\zeta = \Phi^{-1}(F_{P_\tau}(x_\tau))$ (normal score). Forward and estimated particles
    ride the *same* map. Only ``map_nodes`` forward particles at uniform levels
    $\zeta_j \in [-Z, Z]$ go through the ODE (diffrax); every other particle is read off
    the map at its own level by quintic Hermite interpolation in $\zeta$, whose slopes
    are closed forms of the forward process along the flow:

    * $\partial_\zeta x = \varphi(\zeta)/P_t(x)$,
      $\partial^2_\zeta x = \partial_\zeta x\,(-\zeta - \partial_x\ln P_t\,\partial_\zeta x)$;
    * $\nu = \partial_t x$ with $\partial_\zeta\nu = \nu'\,\partial_\zeta x$ and
      $\partial^2_\zeta\nu = \nu''(\partial_\zeta x)^2 + \nu'\,\partial^2_\zeta x$
      ($\nu', \nu''$ spatial derivatives, by forward-mode AD);

    so the interpolation error is $O(h^6)$. The log-Jacobian is exact:
    $\partial x_t/\partial x_\tau = P_\tau(x_\tau)/P_t(x_t)$, hence $D_t = D_0$
    along the flow holds by construction in this method (it is checked independently only by
    ``method="particles"``).
    """
    dtype = jnp.result_type(float)
    m, Z = settings.map_nodes, settings.map_z_max
    zeta = jnp.linspace(-Z, Z, m, dtype=dtype)
    h = 2.0 * Z / (m - 1)
    p_tau = path.marginal(path.tau)
    x_tau = p_tau.normal_score_quantile(zeta)
    X, _, _, stats = transport(path, x_tau, ts, settings.ode)  # (S, m)
    log_phi = -0.5 * zeta**2 - 0.5 * jnp.log(2 * jnp.pi)

    def slopes(t, x):  # everything the interpolant needs at one save time, shape (6, m)
        def vel(y):
            return path.velocity(t, y)

        ones = jnp.ones_like(x)

        def v_dv(y):
            return jax.jvp(vel, (y,), (ones,))

        (v, dv), (_, d2v) = jax.jvp(v_dv, (x,), (ones,))
        post = path.marginal(t)
        xz = jnp.exp(log_phi - post.log_density(x))
        xzz = xz * (-zeta - post.score(x) * xz)
        return jnp.stack([x, h * xz, h * h * xzz, v, h * dv * xz, h * h * (d2v * xz**2 + dv * xzz)])

    G = jax.vmap(slopes)(ts, X)  # (S, 6, m)
    # node-major table: row j holds the data of both ends of cell j at every save time, so
    # each particle gathers one contiguous row (single-element gathers are slow on CPU)
    Gt = jnp.moveaxis(G, 2, 0)  # (m, S, 6)
    cells = jnp.concatenate([Gt[:-1], Gt[1:]], axis=-1)  # (m - 1, S, 12)

    def at_levels(q):
        """Positions and velocities ``(*q.shape, S)`` at normal-score levels ``q``."""
        qc = jnp.clip(q, -Z, Z)
        k = jnp.clip(jnp.floor((qc + Z) / h).astype(jnp.int32), 0, m - 2)
        b = [bj[..., None] for bj in _hermite5((qc - zeta[k]) / h)]
        beyond = ((q - qc) / h)[..., None]
        right = (q > 0)[..., None]  # beyond the range: continue with the end slope
        c = cells[k]  # (*q.shape, S, 12): one contiguous row per particle

        def interp(o):
            return (b[0] * c[..., o] + b[1] * c[..., o + 1] + b[2] * c[..., o + 2]
                    + b[3] * c[..., o + 6] + b[4] * c[..., o + 7] + b[5] * c[..., o + 8]
                    + beyond * jnp.where(right, c[..., o + 7], c[..., o + 1]))

        return interp(0), interp(3)

    z, _ = quantile_nodes(settings.n_quantiles, settings.z_max)
    # levels: the forward quadrature nodes, then the estimated starts under P_τ (log space
    # in both tails)
    lc, ls = p_tau.log_cdf(x_e0), p_tau.log_sf(x_e0)
    q = jnp.where(lc < ls, jax.scipy.special.ndtri(jnp.exp(lc)), -jax.scipy.special.ndtri(jnp.exp(ls)))
    q = jnp.concatenate([jnp.asarray(z, dtype)[None], q])  # (1 + B, n)
    # one set of levels at a time through lax.map: its outputs are materialised buffers,
    # which keeps XLA from fusing (and so repeating) the gathers into their many consumers
    x, v = jax.lax.map(at_levels, q)  # (1 + B, n, S)
    x, v = jnp.swapaxes(x, 1, 2), jnp.swapaxes(v, 1, 2)  # (1 + B, S, n)
    xf, vf, xe, ve = x[0].at[0].set(x_f0), v[0], x[1:].at[:, 0].set(x_e0), v[1:]  # t = τ exactly
    # exact log-Jacobians at the requested rows: ln P_τ(x_τ) - ln P_t(x_t)
    t_rows = ts[rows]
    log_p = jax.vmap(path.log_density)
    ljf = p_tau.log_density(x_f0)[None] - log_p(t_rows, xf[rows])
    lje = p_tau.log_density(x_e0)[:, None] - jax.vmap(lambda a: log_p(t_rows, a))(xe[:, rows])
    return xf, vf, ljf, xe, ve, lje, stats


def _speed_accuracy(path, start, settings: Settings) -> Report:
    """Core: the forward particles and every perturbed start (one ODE system, or the
    interpolated flow map), then per-start post-processing (vmapped; it holds no loop, so
    batching costs nothing extra)."""
    dtype = jnp.result_type(float)
    tau = path.tau
    z, w = quantile_nodes(settings.n_quantiles, settings.z_max)
    z, w = jnp.asarray(z, dtype), jnp.asarray(w, dtype)
    n = z.shape[0]
    p_tau = end_marginal(path)

    x_e0, logpt_e0 = start  # (..., n): estimated particles at t = τ and log P̃_τ there
    batch_shape = x_e0.shape[:-1]
    x_e0, logpt_e0 = x_e0.reshape(-1, n), logpt_e0.reshape(-1, n)
    x_f0 = p_tau.normal_score_quantile(z)  # forward particles at t = τ
    logp_f0 = p_tau.log_density(x_f0)

    fr, i_uni, i_gl, gw, i_snap = _time_layout(settings)
    ts = jnp.asarray(fr, dtype) * tau
    i_chi = np.asarray(i_uni)[:: settings.chi2_stride]
    if i_chi[-1] != i_uni[-1]:
        i_chi = np.append(i_chi, i_uni[-1])
    rows = np.concatenate([i_chi, np.asarray(i_snap)])  # rows whose log-Jacobians are used
    r_chi, r_snap = np.arange(len(i_chi)), len(i_chi) + np.arange(len(i_snap))
    t_chi = ts[i_chi]

    if settings.method == "flow_map" and isinstance(path, DiffusionPath):
        xf, vf, ljf, xe, ve, lje, stats = _flow_map_trajectories(path, x_f0, x_e0, ts, rows, settings)
    else:  # every particle through the ODE (OTPath: its exact flow)
        xf, vf, ljf, xe, ve, lje, stats = _particle_trajectories(path, x_f0, x_e0, ts, rows, settings)

    gw = jnp.asarray(gw, dtype) * tau
    v2_sq = jnp.sum(w * vf**2, axis=-1)  # (S,)
    x_data = path.data.normal_score_quantile(z)
    W2_sq = jnp.sum(w * (x_data - x_f0) ** 2)

    if settings.grid is not None:
        lo, hi, ng = settings.grid
    else:  # from the particles within normal scores ±6 at the snapshots
        keep = np.abs(quantile_nodes(settings.n_quantiles, settings.z_max)[0]) <= 6.0
        pos = jnp.concatenate([xf[i_snap][:, keep].ravel(), xe[:, i_snap][..., keep].ravel()])
        pad = 0.05 * (jnp.max(pos) - jnp.min(pos))
        lo, hi, ng = jnp.min(pos) - pad, jnp.max(pos) + pad, settings.n_grid
    xg = jnp.linspace(lo, hi, ng + 1, dtype=dtype)
    interp = jax.vmap(lambda xp, fp: jnp.interp(xg, xp, fp, left=0.0, right=0.0))
    forward_density = interp(xf[i_snap], jnp.exp(logp_f0 - ljf[r_snap]))
    out_f = jnp.max(jnp.sum(w * ((xf[i_snap] < lo) | (xf[i_snap] > hi)), axis=-1))
    # embedded coarse rule: every other level node (trapezoid with 2h), for the error estimate
    zc = z[::2]
    wc = 2.0 * (z[1] - z[0]) * jnp.exp(-0.5 * zc**2) / jnp.sqrt(2 * jnp.pi)
    wc = wc.at[0].multiply(0.5).at[-1].multiply(0.5)
    x_datac = x_data[::2]
    W2_sqc = jnp.sum(wc * (x_datac - x_f0[::2]) ** 2)
    v2_sqc = jnp.sum(wc * vf[:, ::2] ** 2, axis=-1)

    def scal(W1, dW1, D0, v2, W2, gw_):
        vl = dW1**2 / D0
        c1_, c2_ = jnp.sum(gw_ * vl[i_gl]), jnp.sum(gw_ * v2[i_gl])
        L = jnp.sum(gw_ * jnp.sqrt(v2[i_gl]))
        d = W1[-1] - W1[0]
        e = d**2 / (tau * D0)
        lb = L**2 / tau
        return dict(eta=e, c1=c1_, c2=c2_, entropy_bound=c2_, D0=D0, W1_q_p=W1[-1],
                    W1_init=W1[0], delta_W1=d, path_length=L, W2_sq=W2, length_bound=lb,
                    ot_bound=W2 / tau, v2_sq_max=jnp.max(v2), slack_77=c2_ - e,
                    slack_80=jnp.min(v2 - vl), slack_82_eta_c1=c1_ - e, slack_82_c1_c2=c2_ - c1_,
                    slack_91_c2_length=c2_ - lb, slack_91_length_ot=lb - W2 / tau)

    def one(xe, ve, lje, x_e0, logpt_e0):
        # χ² divergence at the start (Eq. 78): E_{P̃}[P̃/P] - 1
        logp_e0 = p_tau.log_density(x_e0)
        D0 = jnp.sum(w * jnp.exp(logpt_e0 - logp_e0)) - 1.0
        D0c = jnp.sum(wc * jnp.exp(logpt_e0 - logp_e0)[::2]) - 1.0
        sign = jnp.sign(x_f0 - x_e0)
        W1, dW1 = abs_quadrature(xf - xe, vf - ve, sign, z, w)
        W1c, dW1c = abs_quadrature((xf - xe)[:, ::2], (vf - ve)[:, ::2], sign[::2], zc, wc)
        vloss_sq = dW1**2 / D0
        fine = scal(W1, dW1, D0, v2_sq, W2_sq, gw)
        coarse = scal(W1c, dW1c, D0c, v2_sqc, W2_sqc, gw)
        errors = {k: jnp.abs(fine[k] - coarse[k]) for k in fine}
        tol = tolerance_of({k: fine[k] for k in Report.SCALARS}, settings.rtol)
        ok = jnp.stack([errors[k] <= tol[k] for k in Report.CONVERGED]).all()
        # χ² along the flow: D_t = E_{P̃_t}[P̃_t/P_t] - 1, P̃_t carried by the log-Jacobian
        # and P_t evaluated independently (closed form)
        if isinstance(path, OTPath):
            # every OT trajectory is a forward one (straight lines), so P_t(x̃_t) = P_τ(x̃_τ)/J̃
            # exactly and D_t = D_0 holds by construction; no independent evaluation exists
            logp_fwd = logp_e0 - lje[r_chi]
        else:
            logp_fwd = jax.vmap(path.log_density)(t_chi, xe[i_chi])
        chi2 = jnp.sum(w * jnp.exp(logpt_e0 - lje[r_chi] - logp_fwd), axis=-1) - 1.0
        estimated_density = interp(xe[i_snap], jnp.exp(logpt_e0 - lje[r_snap]))
        out_e = jnp.max(jnp.sum(w * ((xe[i_snap] < lo) | (xe[i_snap] > hi)), axis=-1))
        return Report(
            **fine,
            t=ts[i_uni], v2_sq=v2_sq[i_uni], vloss_sq=vloss_sq[i_uni], W1_t=W1[i_uni],
            dW1_dt=dW1[i_uni], chi2_t=t_chi, chi2=chi2,
            chi2_residual=jnp.max(jnp.abs(chi2 - D0)) / D0,
            snapshot_t=ts[i_snap], x_grid=xg,
            forward_density=forward_density, estimated_density=estimated_density,
            ode_steps=stats["num_steps"], ode_success=stats["success"],
            forward_endpoint_error=jnp.max(jnp.abs(xf[-1] - x_data)),
            mass_outside_grid=jnp.maximum(out_f, out_e),
            errors=errors, converged=ok, D0_finite=jnp.isfinite(D0),
            n_crossings=jnp.sum(sign[:-1] * sign[1:] < 0),
        )

    reports = jax.vmap(one)(xe, ve, lje, x_e0, logpt_e0)
    return jax.tree.map(lambda a: a.reshape(batch_shape + a.shape[1:]), reports)


def _fmt(x):
    return f"{float(x):.3g}" if is_concrete(x) else "<traced>"


# ---- the CDF method (default) -----------------------------------------------------------
def _rho_times(schedule, targets, tau):
    r"""Times in ``[0, τ/2]`` where $\sigma_t/m_t$ reaches each target (bisection;
    $\sigma/m$ is increasing by Eq. 24)."""
    def rho(t):
        return jnp.sqrt(schedule.sigma_sq(t)) / schedule.m(t)

    def body(_, ab):
        lo, hi = ab
        mid = 0.5 * (lo + hi)
        below = rho(mid) < targets
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    z = jnp.zeros_like(targets)
    lo, hi = jax.lax.fori_loop(0, 60, body, (z, z + 0.5 * tau))
    return 0.5 * (lo + hi)


def _time_rule(path, settings):
    r"""Composite Gauss–Kronrod nodes in time ``(N,)`` and Kronrod / Gauss weights: panels
    graded geometrically in $\sigma_t/m_t$ from ``rho_lo`` × the narrowest data scale
    to $\tau/2$, then uniform to τ."""
    from jaxsa.cdf_quadrature import _panels

    tau = path.tau
    d = path.data
    s_min = jnp.min(jnp.where(d.weights > 0, d.scales, jnp.inf))
    sched = path.schedule
    rho_mid = jnp.sqrt(sched.sigma_sq(0.5 * tau)) / sched.m(0.5 * tau)
    rho_lo = jnp.minimum(settings.rho_lo * s_min, 0.5 * rho_mid)
    j = jnp.arange(settings.time_levels + 1) / settings.time_levels
    targets = rho_lo * (rho_mid / rho_lo) ** j
    t_geo = _rho_times(sched, targets, tau)
    top = 0.5 * tau + 0.5 * tau * jnp.arange(1, settings.time_top + 1) / settings.time_top
    edges = jnp.concatenate([jnp.zeros(1, tau.dtype), t_geo.at[-1].set(0.5 * tau), top])
    return _panels(edges, settings.time_order)  # (panels, 2n+1) each


def _snapshot_grid(lo_hi, settings):
    if settings.grid is not None:
        lo, hi, n = settings.grid
        return jnp.linspace(lo, hi, n + 1)
    lo, hi = lo_hi
    return jnp.linspace(lo, hi, settings.n_grid + 1)


def _speed_accuracy_cdf(path, pert, settings: Settings) -> Report:
    """Core of the CDF method for one path and one perturbation (jittable, vmappable)."""
    from jaxsa import cdf_quadrature as cq

    dtype = jnp.result_type(float)
    tau = path.tau
    is_ot = isinstance(path, OTPath)
    p_tau = _end_density(path)
    pert = cq.as_start(pert)
    yc, n_cross = cq.crossings(p_tau, pert, settings.n_cross, settings.z_max)
    y_breaks = jnp.concatenate([yc, cq.breakpoints(pert)])
    D0v, divergent = cq.chi2_start(p_tau, pert, settings)  # (2,): Kronrod, Gauss

    table = cq.QuantileTable(p_tau)

    def at(t):  # every x-integral at time t (DiffusionPath)
        return cq.x_integrals(path.marginal(t), p_tau, pert, lambda x: path.velocity(t, x),
                              y_breaks, settings, table)

    n_series = settings.n_time if settings.n_time > 2 else 0
    ts = jnp.linspace(0.0, 1.0, settings.n_time, dtype=dtype) * tau
    if is_ot:
        def nu0(x):  # OT velocity at t = 0: (T(x) - x)/τ
            return (path.transport_map(x) - x) / tau

        I0 = cq.x_integrals(path.data, p_tau, pert, nu0, y_breaks, settings, table)
        It = cq.x_integrals(p_tau, p_tau, pert, None, y_breaks, settings, table)
    else:
        tpan, twk, twg = _time_rule(path, settings)
        tn = tpan.ravel()
        all_t = jnp.concatenate([jnp.zeros(1, dtype), tau[None], tn] + ([ts] if n_series else []))
        # one program for every time, ``time_batch`` times at once: a working set that stays
        # in cache is ~1.7x faster on CPU than all times vmapped together
        I_all = jax.lax.map(at, all_t, batch_size=min(settings.time_batch, all_t.shape[0]))
        nq = tn.shape[0]
        I0 = {k: v[0] for k, v in I_all.items()}
        It = {k: v[1] for k, v in I_all.items()}
        Iq = {k: v[2:2 + nq] for k, v in I_all.items()}
        Is = {k: v[2 + nq:] for k, v in I_all.items()}

    # values ([0]) and error estimates ([1]) of every integral, propagated to first order
    D0, eD0 = D0v[0], D0v[1]
    W1_q_p, W1_init = I0["W1"][0], It["W1"][0]
    eW1q, eW1i = I0["W1"][1], It["W1"][1]
    delta, e_delta = W1_q_p - W1_init, eW1q + eW1i
    W2_sq, eW2 = I0["W2_sq"][0], I0["W2_sq"][1]
    safeD0 = jnp.where(divergent, 1.0, D0)
    eta = jnp.where(divergent, 0.0, delta**2 / (tau * safeD0))
    e_eta = jnp.where(divergent, 0.0, 2 * jnp.abs(delta) * e_delta / (tau * safeD0)
                      + eta * eD0 / safeD0)
    if is_ot:  # straight lines: W₁ linear in t, constant speed (SPEC §5)
        v2 = W2_sq / tau**2
        c2, e_c2 = W2_sq / tau, eW2 / tau
        length, e_len = jnp.sqrt(W2_sq), 0.5 * eW2 / jnp.sqrt(W2_sq)
        c1, e_c1 = eta, e_eta
        vl = jnp.where(divergent, 0.0, delta**2 / (tau**2 * safeD0))
        v2_max, e_v2max = v2, eW2 / tau**2
        s80, e_s80 = v2 - vl, eW2 / tau**2 + e_eta / tau
    else:
        P, N = tpan.shape
        v2, ev2 = Iq["v2_sq"][:, 0], Iq["v2_sq"][:, 1]
        dW, edW = Iq["dW1"][:, 0], Iq["dW1"][:, 1]
        vl = jnp.where(divergent, 0.0, dW**2 / safeD0)
        evl = jnp.where(divergent, 0.0, 2 * jnp.abs(dW) * edW / safeD0 + vl * eD0 / safeD0)
        sq = jnp.sqrt(jnp.maximum(v2, 0.0))
        esq = ev2 / (2 * jnp.maximum(sq, jnp.sqrt(ev2) + 1e-300))
        wflat = twk.ravel()

        def time_int(f, ef):  # ∫ f dt by Kronrod in time, + the integrand's own x-errors
            vt = cq.integrate(f.reshape(P, N), twk, twg)
            return vt[0], vt[1] + jnp.sum(jnp.abs(wflat) * ef)

        c2, e_c2 = time_int(v2, ev2)
        c1, e_c1 = time_int(vl, evl)
        length, e_len = time_int(sq, esq)
        i_max = jnp.argmax(v2)
        v2_max, e_v2max = v2[i_max], ev2[i_max]
        i80 = jnp.argmin(v2 - vl)
        s80, e_s80 = (v2 - vl)[i80], (ev2 + evl)[i80]
    length_bound, e_lb = length**2 / tau, 2 * length * e_len / tau
    ot_bound, e_ot = W2_sq / tau, eW2 / tau
    fine = dict(
        eta=eta, c1=c1, c2=c2, entropy_bound=c2, D0=D0, W1_q_p=W1_q_p, W1_init=W1_init,
        delta_W1=delta, path_length=length, W2_sq=W2_sq, length_bound=length_bound,
        ot_bound=ot_bound, v2_sq_max=v2_max, slack_77=c2 - eta, slack_80=s80,
        slack_82_eta_c1=c1 - eta, slack_82_c1_c2=c2 - c1,
        slack_91_c2_length=c2 - length_bound, slack_91_length_ot=length_bound - ot_bound,
    )
    errors = dict(
        eta=e_eta, c1=e_c1, c2=e_c2, entropy_bound=e_c2, D0=jnp.where(divergent, 0.0, eD0),
        W1_q_p=eW1q, W1_init=eW1i, delta_W1=e_delta, path_length=e_len, W2_sq=eW2,
        length_bound=e_lb, ot_bound=e_ot, v2_sq_max=e_v2max, slack_77=e_c2 + e_eta,
        slack_80=e_s80, slack_82_eta_c1=e_c1 + e_eta, slack_82_c1_c2=e_c2 + e_c1,
        slack_91_c2_length=e_c2 + e_lb, slack_91_length_ot=e_lb + e_ot,
    )
    errors = {k: jnp.where(jnp.isnan(e), jnp.inf, e) for k, e in errors.items()}
    tol = tolerance_of({k: fine[k] for k in Report.SCALARS}, settings.rtol)
    ok = jnp.stack([errors[k] <= tol[k] for k in Report.CONVERGED]).all() & (n_cross <= settings.n_cross)

    # ---- series (uniform times) and density snapshots --------------------------------------
    D0 = fine["D0"]
    if is_ot:
        s = ts / tau
        W1_t = (1 - s) * fine["W1_q_p"] + s * fine["W1_init"]
        dW1 = jnp.full_like(ts, -fine["delta_W1"] / tau)
        v2_t = jnp.full_like(ts, fine["W2_sq"] / tau**2)
        chi2_t = jnp.full_like(ts[:: settings.chi2_stride], D0)
    elif n_series:
        W1_t, dW1, v2_t = Is["W1"][:, 0], Is["dW1"][:, 0], Is["v2_sq"][:, 0]
        chi2_t = Is["chi2"][:: settings.chi2_stride, 0]
    else:
        W1_t = jnp.stack([I0["W1"][0], It["W1"][0]])
        dW1 = jnp.stack([I0["dW1"][0], It["dW1"][0]])
        v2_t = jnp.stack([I0["v2_sq"][0], It["v2_sq"][0]])
        chi2_t = jnp.stack([I0["chi2"][0], It["chi2"][0]])[:: settings.chi2_stride]
    vloss_t = jnp.where(divergent, 0.0, dW1**2 / D0)
    t_chi = ts[:: settings.chi2_stride]
    chi2_res = jnp.where(divergent, 0.0, jnp.max(jnp.abs(chi2_t - D0)) / D0)

    snap_t = jnp.asarray(settings.snapshots, dtype) * tau
    z6 = jnp.asarray([-6.0, 6.0], dtype)
    if is_ot:
        def x_of(t, y):  # position at time t of the particle at y at τ
            s = t / tau
            return (1 - s) * path.inverse_map(y) + s * y

        def origin_y(t, x):  # its start y
            return path.transport_map(path._origin(t, x))

        def log_pt(t, x):
            return path.log_density(t, x)
    else:
        def x_of(t, y):
            return cq.normal_score_quantile(path.marginal(t), cq.normal_score(p_tau, y))

        def origin_y(t, x):
            return table(cq.normal_score(path.marginal(t), x))

        def log_pt(t, x):
            return path.marginal(t).log_density(x)

    ends = jnp.stack([cq.normal_score_quantile(p_tau, z6), cq.normal_score_quantile(pert, z6)]).ravel()
    ext = jax.vmap(lambda t: x_of(t, ends))(snap_t)
    pad = 0.05 * (jnp.max(ext) - jnp.min(ext))
    xg = _snapshot_grid((jnp.min(ext) - pad, jnp.max(ext) + pad), settings).astype(dtype)

    def densities(t):
        lp = log_pt(t, xg)
        Y = origin_y(t, xg)
        lr = pert.log_density(Y) - p_tau.log_density(Y)
        fe, se = cq.cdf_sf(pert, origin_y(t, xg[jnp.array([0, -1])]))
        fq, sq = cq.cdf_sf(p_tau, origin_y(t, xg[jnp.array([0, -1])]))
        out = jnp.maximum(fe[0] + se[1], fq[0] + sq[1])
        return jnp.exp(lp), jnp.exp(lp + lr), out

    fwd, est, out = jax.vmap(densities)(snap_t)
    zero = jnp.zeros((), jnp.int32)
    return Report(
        **fine, t=ts, v2_sq=v2_t, vloss_sq=vloss_t, W1_t=W1_t, dW1_dt=dW1, chi2_t=t_chi,
        chi2=chi2_t, chi2_residual=chi2_res, snapshot_t=snap_t, x_grid=xg,
        forward_density=fwd, estimated_density=est, ode_steps=zero,
        ode_success=jnp.ones((), bool), forward_endpoint_error=jnp.zeros((), dtype),
        mass_outside_grid=jnp.max(out), errors=errors, converged=ok,
        D0_finite=jnp.logical_not(divergent), n_crossings=n_cross,
    )


@functools.partial(jax.jit, static_argnames="settings")
def _cdf_jit(path, pert, settings):
    return _speed_accuracy_cdf(path, pert, settings)


@functools.partial(jax.jit, static_argnames="settings")
def batched_cdf_jit(path, starts, settings):
    """The CDF method for one path and a batch of starts (a stacked
    [`jaxsa.cdf_quadrature.Start`][jaxsa.cdf_quadrature.Start]): one compiled program for starts of every kind."""
    return jax.vmap(lambda s: _speed_accuracy_cdf(path, s, settings))(starts)
