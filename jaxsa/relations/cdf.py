r"""The CDF method of the 1D relations (``method="cdf"``, the default): quadrature in $x$ of the
CDF forms of every integral, on Gauss–Kronrod panels, with error estimates (see
[`jaxsa.relations.cdf_quadrature`][jaxsa.relations.cdf_quadrature] for the integrands and the rules)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxsa.quadrature import kronrod_integral, kronrod_panels, parabolic_vertex
from jaxsa.relations import cdf_quadrature as cq
from jaxsa.relations.report import Report, Settings, tolerance_of

__all__ = ["cdf_report", "batched_cdf_jit"]


def crossings(prior, pert, n_max: int, z_max: float, n_scan: int = 512):
    r"""Points $y_c$ where $F_{P_\tau}(y) - F_{\tilde P_\tau}(y)$ changes sign.

    Scanned on the union of both distributions' quantiles at ``n_scan`` normal scores in
    ``[-z_max, z_max]`` and refined by bisection. Returns ``(y_c (n_max,), count)``; unused
    slots repeat the first crossing (or the prior's median), which adds a harmless edge.
    ``count > n_max`` means crossings were left out (the result is flagged).
    """
    z = jnp.linspace(-z_max, z_max, n_scan, dtype=prior.means.dtype)
    y = jnp.sort(jnp.concatenate([cq.normal_score_quantile(prior, z), cq.normal_score_quantile(pert, z)]))

    def diff(v):
        fp, sp = cq.cdf_sf(prior, v)
        fq, sq = cq.cdf_sf(pert, v)
        return jnp.where(fp + fq < sp + sq, fp - fq, sq - sp)

    d = diff(y)
    s = jnp.sign(d)
    change = (s[:-1] * s[1:]) < 0
    count = jnp.sum(change)
    (idx,) = jnp.nonzero(change, size=n_max, fill_value=0)
    a, b = y[idx], y[idx + 1]
    da = diff(a)

    def body(_, ab):
        lo, hi = ab
        mid = 0.5 * (lo + hi)
        same = jnp.sign(diff(mid)) == jnp.sign(da)
        return jnp.where(same, mid, lo), jnp.where(same, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 64, body, (a, b))
    yc = 0.5 * (lo + hi)
    used = jnp.arange(n_max) < count
    fill = jnp.where(count > 0, yc[0], cq.normal_score_quantile(prior, jnp.zeros((), z.dtype)))
    return jnp.where(used, yc, fill), count


class QuantileTable:
    r"""$z \mapsto F_{P_\tau}^{-1}(\Phi(z))$ for many points: cubic Hermite interpolation
    on a uniform table in ``z`` (exact slopes $\varphi(z)/P_\tau$), then two Newton
    steps on the normal score, which leave float64 round-off. One safeguarded Newton solve per
    table node instead of one per point, and no loop in the per-point work."""

    def __init__(self, dens, n: int = 2048, z_lim: float = 37.0, newton: int = 1):
        self.dens, self.z_lim, self.newton = dens, z_lim, newton
        dt = dens.means.dtype if hasattr(dens, "means") else dens.low.dtype
        self.z = jnp.linspace(-z_lim, z_lim, n, dtype=dt)
        self.h = 2 * z_lim / (n - 1)
        self.y = cq.normal_score_quantile(dens, self.z)
        self.dy = jnp.exp(-0.5 * self.z**2 - 0.5 * np.log(2 * np.pi) - cq.log_density(dens, self.y))

    def __call__(self, z):
        dens = self.dens
        if not isinstance(dens, cq.Uniform) and dens.weights.shape[0] == 1:
            return dens.means[0] + dens.scales[0] * z
        z = jnp.clip(z, -self.z_lim, self.z_lim)
        n = self.z.shape[0]
        k = jnp.clip(jnp.floor((z - self.z[0]) / self.h).astype(jnp.int32), 0, n - 2)
        u = (z - self.z[k]) / self.h
        h00, h10 = (1 + 2 * u) * (1 - u) ** 2, u * (1 - u) ** 2
        h01, h11 = u * u * (3 - 2 * u), u * u * (u - 1)
        y = (h00 * self.y[k] + h10 * self.h * self.dy[k] + h01 * self.y[k + 1]
             + h11 * self.h * self.dy[k + 1])
        for _ in range(self.newton):
            zy = cq.normal_score(dens, y)
            slope = jnp.exp(-0.5 * zy**2 - 0.5 * np.log(2 * np.pi) - cq.log_density(dens, y))
            step = (zy - z) * slope
            y = y - jnp.where(jnp.isfinite(step), step, 0.0)
        return y


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
    tau = path.tau
    d = path.data
    s_min = jnp.min(jnp.where(d.weights > 0, d.scales, jnp.inf))
    sched = path.schedule
    rho_mid = jnp.sqrt(sched.sigma_sq(0.5 * tau)) / sched.m(0.5 * tau)
    rho_lo = jnp.minimum(settings.rho_lo * s_min, 0.5 * rho_mid)
    j = jnp.arange(settings.time_levels + 1, dtype=tau.dtype) / settings.time_levels
    targets = rho_lo * (rho_mid / rho_lo) ** j
    t_geo = _rho_times(sched, targets, tau)
    top = 0.5 * tau + 0.5 * tau * jnp.arange(1, settings.time_top + 1, dtype=tau.dtype) / settings.time_top
    edges = jnp.concatenate([jnp.zeros(1, tau.dtype), t_geo.at[-1].set(0.5 * tau), top])
    return kronrod_panels(edges, settings.time_order)  # (panels, 2n+1) each


def _snapshot_grid(lo_hi, settings):
    if settings.grid is not None:
        lo, hi, n = settings.grid
        return jnp.linspace(lo, hi, n + 1)
    lo, hi = lo_hi
    return jnp.linspace(lo, hi, settings.n_grid + 1)


def _maxima(t, g, eg, evaluate, iters: int = 3):
    r"""Maxima over $t$ of the rows of ``g`` ``(R, n)``, smooth functions sampled at the sorted
    times ``t`` ``(n,)`` (their quadrature errors ``eg``), refined between the samples by
    ``iters`` successive parabolic steps from the best sample; ``evaluate(t (R,))`` gives
    ``(values, errors)`` of the rows at new times. Returns ``(maxima, error estimates)`` ``(R,)``:
    the estimate is the last step's gain plus its value's distance from the parabola's
    prediction (the sampling error; zero where the maximum is a sample at an end) plus the
    quadrature error at the maximum."""
    n = t.shape[0]
    i = jnp.argmax(g, -1)
    idx = jnp.clip(i - 1, 0, n - 3)[:, None] + jnp.arange(3)[None, :]
    T, G = t[idx], jnp.take_along_axis(g, idx, -1)
    m = jnp.take_along_axis(g, i[:, None], -1)[:, 0]
    e = jnp.take_along_axis(eg, i[:, None], -1)[:, 0]

    def step(carry, _):
        T, G, m, e, _ = carry
        x, pred = parabolic_vertex(T, G)
        v, ev = evaluate(x)
        T4, G4 = jnp.concatenate([T, x[:, None]], -1), jnp.concatenate([G, v[:, None]], -1)
        o = jnp.argsort(T4, -1)
        T4, G4 = jnp.take_along_axis(T4, o, -1), jnp.take_along_axis(G4, o, -1)
        sel = jnp.clip(jnp.argmax(G4, -1) - 1, 0, 1)[:, None] + jnp.arange(3)[None, :]
        better = v > m
        sampling = jnp.maximum(v - m, 0.0) + jnp.abs(v - pred)
        return (jnp.take_along_axis(T4, sel, -1), jnp.take_along_axis(G4, sel, -1),
                jnp.where(better, v, m), jnp.where(better, ev, e), sampling), None

    (_, _, m, e, sampling), _ = jax.lax.scan(step, (T, G, m, e, jnp.zeros_like(m)), None, length=iters)
    return m, e + sampling


def _cdf_report(path, pert, settings: Settings) -> Report:
    """Core of the CDF method for one path and one perturbation (jittable, vmappable)."""
    dtype = jnp.result_type(float)
    tau = path.tau
    is_ot = path.is_geodesic
    p_tau = path.end_marginal()
    pert = cq.as_perturbation(pert)
    yc, n_cross = crossings(p_tau, pert, settings.n_cross, settings.z_max)
    y_breaks = jnp.concatenate([yc, cq.breakpoints(pert)])
    D0v, divergent = cq.chi2_start(p_tau, pert, settings)  # (2,): Kronrod, Gauss

    table = QuantileTable(p_tau)
    y_tails = cq.pert_tails(pert, settings.z_max)

    def xint(Pt, velocity, keys=cq.X_INTEGRALS):
        return cq.x_integrals(Pt, p_tau, pert, velocity, y_breaks, settings, table, y_tails, keys)

    def at(t, keys=cq.X_INTEGRALS):  # the x-integrals at time t (DiffusionPath)
        return xint(path.marginal(t), lambda x: path.velocity(t, x), keys)

    def over(f, times):  # ``time_batch`` times at once: a working set that stays in cache
        return jax.lax.map(f, times, batch_size=min(settings.time_batch, times.shape[0]))

    n_series = settings.n_time if settings.n_time > 2 else 0
    ts = jnp.linspace(0.0, 1.0, settings.n_time, dtype=dtype) * tau
    if is_ot:
        def nu0(x):  # OT velocity at t = 0: (T(x) - x)/τ
            return (path.transport_map(x) - x) / tau

        I0 = xint(path.data, nu0)
        It = xint(p_tau, None)
    else:
        tpan, twk, twg = _time_rule(path, settings)
        # the time-quadrature nodes need dW1 and v2_sq only; the ends and the series all
        Iq = over(lambda t: at(t, ("dW1", "v2_sq")), tpan.ravel())
        full_t = jnp.concatenate([jnp.zeros(1, dtype), tau[None]] + ([ts] if n_series else []))
        I_all = over(at, full_t)
        I0 = {k: v[0] for k, v in I_all.items()}
        It = {k: v[1] for k, v in I_all.items()}
        Is = {k: v[2:] for k, v in I_all.items()}

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

        def loss_sq(I):  # v_loss² = (∂_t W₁)² / D₀ (Eq. 80) and its error
            dw, edw = I["dW1"][..., 0], I["dW1"][..., 1]
            vl = jnp.where(divergent, 0.0, dw**2 / safeD0)
            return vl, jnp.where(divergent, 0.0, 2 * jnp.abs(dw) * edw / safeD0 + vl * eD0 / safeD0)

        vl, evl = loss_sq(Iq)
        sq = jnp.sqrt(jnp.maximum(v2, 0.0))
        esq = ev2 / (2 * jnp.maximum(sq, jnp.sqrt(ev2) + 1e-300))
        wflat = twk.ravel()

        def time_int(f, ef):  # ∫ f dt by Kronrod in time, + the integrand's own x-errors
            vt = kronrod_integral(f.reshape(P, N), twk, twg)
            return vt[0], vt[1] + jnp.sum(jnp.abs(wflat) * ef)

        c2, e_c2 = time_int(v2, ev2)
        c1, e_c1 = time_int(vl, evl)
        length, e_len = time_int(sq, esq)

        # max of v2² and min of v2² - v_loss² over [0, τ]: the samples (the nodes and both
        # ends), refined between them; row 0 is v2², row 1 is v_loss² - v2²
        def rows(I):
            v, ev = I["v2_sq"][..., 0], I["v2_sq"][..., 1]
            l, el = loss_sq(I)
            return jnp.stack([v, l - v]), jnp.stack([ev, el + ev])

        def evaluate(x):
            g, eg = rows(over(lambda t: at(t, ("dW1", "v2_sq")), x))
            return jnp.diagonal(g), jnp.diagonal(eg)

        g_end, eg_end = rows({k: jnp.stack([I0[k], It[k]]) for k in ("dW1", "v2_sq")})
        g_n, eg_n = rows(Iq)
        t_all = jnp.concatenate([jnp.zeros(1, dtype), tpan.ravel(), tau[None]])
        g_all = jnp.concatenate([g_end[:, :1], g_n, g_end[:, 1:]], -1)
        eg_all = jnp.concatenate([eg_end[:, :1], eg_n, eg_end[:, 1:]], -1)
        ext, e_ext = _maxima(t_all, g_all, eg_all, evaluate)
        v2_max, e_v2max = ext[0], e_ext[0]
        s80, e_s80 = -ext[1], e_ext[1]
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
            return path.transport_map(path.origin(t, x))

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
def cdf_report(path, start, settings: Settings) -> Report:
    r"""The CDF method's traceable core: every quantity and its error estimate for one forward
    process and one perturbed start (a 1D density or a
    [`Start`][jaxsa.relations.cdf_quadrature.Start]), at the one resolution ``settings`` gives. No input
    checks and no refinement: use [`speed_accuracy`][jaxsa.relations.speed_accuracy] for those.
    Jitted with static ``settings``; can be put under ``jit``, ``vmap``, ``shard_map`` and AOT
    compilation."""
    return _cdf_report(path, start, settings)


@functools.partial(jax.jit, static_argnames="settings")
def batched_cdf_jit(path, starts, settings: Settings) -> Report:
    """[`cdf_report`][jaxsa.relations.cdf.cdf_report] for one path and a batch of starts (a
    stacked [`Start`][jaxsa.relations.cdf_quadrature.Start]): one compiled program for starts of every
    kind; every leaf of the report gains the batch axis."""
    return jax.vmap(lambda s: _cdf_report(path, s, settings))(starts)
