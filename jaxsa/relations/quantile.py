r"""The quantile-transport methods of the 1D relations (``method="particles"`` and
``"flow_map"``).

**Quantile transport in normal-score coordinates.** A 1D flow map is monotone, so it
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
better (see ``tests/relations/test_convergence.py``). Time integrals use Gauss–Legendre nodes in
``[0, τ]``.

**Flow-map method** (``Settings(method="flow_map")``, the default of sweeps). In 1D the flow of
the probability-flow ODE from τ to t is the monotone map $F_{P_t}^{-1}\circ F_{P_\tau}$,
the same for forward and estimated particles. Only ``map_nodes`` forward particles at uniform
normal scores go through the ODE; every other particle is read off the map at its own level
by quintic Hermite interpolation whose slopes are closed forms (``_flow_map_trajectories``).
It agrees with the all-particle solve to ~1e-7 and is several times faster.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxsa.solvers.flow import transport
from jaxsa.quadrature import gauss_legendre, quantile_nodes, sampled_maximum
from jaxsa.relations.report import Report, Settings, tolerance_of

__all__ = ["abs_quadrature", "perturbation_start", "quantile_report"]


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
    lead = (None,) * (d.ndim - 1)  # the leading axes of d: explicit broadcasting of (n,) arrays
    wl, sl, phil = w[lead], sign[lead], phi[lead]
    value = jnp.sum(wl * sl * d, axis=-1)
    rate = jnp.sum(wl * sl * d_dot, axis=-1)
    idx = jnp.arange(n - 1)
    flip = ((sign[:-1] * sign[1:]) < 0) & (idx >= 2) & (idx <= n - 4)  # kink cells [i, i+1]
    flip = flip[lead]
    F = sl * d * phil  # |d| φ, shape (..., n)
    Fd = sl * d_dot * phil

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


def _time_layout(settings: Settings):
    """Static save-time fractions (decreasing, unique) and index maps of each group."""
    uni = np.linspace(0.0, 1.0, settings.n_time)
    gl, gw = gauss_legendre(settings.n_gauss)  # on [0, 1]
    snap = np.asarray(settings.snapshots, dtype=float)
    allf = np.concatenate([uni, gl, snap])
    key = np.round(allf, 14)
    uniq, inverse = np.unique(key, return_inverse=True)
    order = uniq[::-1]  # decreasing: the flow runs from τ to 0
    pos = len(uniq) - 1 - inverse
    n_u, n_g = len(uni), len(gl)
    return order, pos[:n_u], pos[n_u:n_u + n_g], gw, pos[n_u + n_g:]


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


def _quantile_report(path, start, settings: Settings) -> Report:
    """Core: the forward particles and every perturbed start (one ODE system, or the
    interpolated flow map), then per-start post-processing (vmapped; it holds no loop, so
    batching costs nothing extra)."""
    dtype = jnp.result_type(float)
    tau = path.tau
    z, w = quantile_nodes(settings.n_quantiles, settings.z_max)
    z, w = jnp.asarray(z, dtype), jnp.asarray(w, dtype)
    n = z.shape[0]
    p_tau = path.end_marginal()

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

    if settings.method == "flow_map" and not path.is_geodesic:
        xf, vf, ljf, xe, ve, lje, stats = _flow_map_trajectories(path, x_f0, x_e0, ts, rows, settings)
    else:  # every particle through the ODE (OTPath: its exact flow)
        xf, vf, ljf, xe, ve, lje, stats = _particle_trajectories(path, x_f0, x_e0, ts, rows, settings)

    gw = jnp.asarray(gw, dtype) * tau
    v2_sq = jnp.sum(w[None, :] * vf**2, axis=-1)  # (S,)
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
    forward_density = interp(xf[i_snap], jnp.exp(logp_f0[None, :] - ljf[r_snap]))
    out_f = jnp.max(jnp.sum(w[None, :] * ((xf[i_snap] < lo) | (xf[i_snap] > hi)).astype(dtype), axis=-1))
    # embedded coarse rule: every other level node (trapezoid with 2h), for the error estimate
    zc = z[::2]
    wc = 2.0 * (z[1] - z[0]) * jnp.exp(-0.5 * zc**2) / jnp.sqrt(2 * jnp.pi)
    wc = wc.at[0].multiply(0.5).at[-1].multiply(0.5)
    x_datac = x_data[::2]
    W2_sqc = jnp.sum(wc * (x_datac - x_f0[::2]) ** 2)
    v2_sqc = jnp.sum(wc[None, :] * vf[:, ::2] ** 2, axis=-1)

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
        # the extremes over t, between the save times, with their sampling errors
        up = ts[::-1]
        v2m, e_v2m = sampled_maximum(up, v2_sq[::-1])
        s80, e_s80 = sampled_maximum(up, (vloss_sq - v2_sq)[::-1])
        fine = fine | {"v2_sq_max": v2m, "slack_80": -s80}
        errors["v2_sq_max"] += e_v2m
        errors["slack_80"] += e_s80
        tol = tolerance_of({k: fine[k] for k in Report.SCALARS}, settings.rtol)
        ok = jnp.stack([errors[k] <= tol[k] for k in Report.CONVERGED]).all()
        # χ² along the flow: D_t = E_{P̃_t}[P̃_t/P_t] - 1, P̃_t carried by the log-Jacobian
        # and P_t evaluated independently (closed form)
        if path.is_geodesic:
            # every OT trajectory is a forward one (straight lines), so P_t(x̃_t) = P_τ(x̃_τ)/J̃
            # exactly and D_t = D_0 holds by construction; no independent evaluation exists
            logp_fwd = logp_e0[None, :] - lje[r_chi]
        else:
            logp_fwd = jax.vmap(path.log_density)(t_chi, xe[i_chi])
        chi2 = jnp.sum(w[None, :] * jnp.exp(logpt_e0[None, :] - lje[r_chi] - logp_fwd), axis=-1) - 1.0
        estimated_density = interp(xe[i_snap], jnp.exp(logpt_e0[None, :] - lje[r_snap]))
        out_e = jnp.max(jnp.sum(w[None, :] * ((xe[i_snap] < lo) | (xe[i_snap] > hi)).astype(dtype), axis=-1))
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


@functools.partial(jax.jit, static_argnames="settings")
def quantile_report(path, start, settings: Settings) -> Report:
    r"""The quantile method's traceable core: every quantity for one forward process and the
    perturbed start(s) ``start = (x, log_p)`` on the quantile nodes (as
    [`perturbation_start`][jaxsa.relations.quantile.perturbation_start] returns; any leading batch
    shape, solved as one ODE system). No input checks and no refinement: use
    [`speed_accuracy_from_start`][jaxsa.relations.speed_accuracy_from_start] for those. Jitted with
    static ``settings``; can be put under ``jit``, ``vmap`` and AOT compilation."""
    return _quantile_report(path, start, settings)
