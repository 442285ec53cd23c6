r"""Time grids for fixed-budget samplers of the probability-flow ODE ([spec §4][spec-4]).

[`step_grid`][jaxsa.solvers.steps.step_grid] returns ``n_steps + 1`` times, *decreasing* from
``t_max`` (default $\tau$, the noise end) to ``t_min`` (the data end), for the sampler that
runs from noise to data ([`sample`][jaxsa.solvers.samplers.sample]). The rules place the
steps uniformly in some reparametrisation $u(t)$ of time:

| rule | $u(t)$ | reference |
|---|---|---|
| ``"uniform"`` | $t$ | |
| ``"thermo_length"`` | $L(t) = \int_{t_{min}}^t v_2\,dt'$ | thermodynamic length, spec Eqs. 66–68 |
| ``"thermo_cost"`` | $C(t) = \int_{t_{min}}^t v_2^2\,dt'$ | cost, spec Eqs. 79–82 |
| ``"log_snr"`` | $\lambda(t) = \ln(m_t^2/\sigma_t^2)$ | Kingma et al. 2021; Lu et al. 2022 |
| ``"edm"`` | $\bar\sigma(t)^{1/\rho}$, $\bar\sigma = \sigma_t/m_t$ | Karras et al. 2022 (EDM), Sec. 3, Eq. 5 |
| ``"ays_gaussian"`` | $\arctan(\bar\sigma(t)/c)$ | Sabour et al. 2024 (Align Your Steps), Sec. 3.1 |

$\bar\sigma_t = \sigma_t/m_t$ is the noise level of the DDIM coordinates $\bar x = x/m_t$
(spec Eqs. 33–35); it increases in $t$ by the monotonicity condition Eq. 24, so every rule
maps back to time by a monotone inversion (bisection to round-off for the noise-level rules,
interpolation plus Newton steps for the cumulative integrals).

Near ``t = 0`` the signal-to-noise ratio diverges ($\bar\sigma\to 0$), so the noise-level
rules stop at ``t_min`` (default $10^{-3}\tau$). Where $\bar\sigma$ is infinite at ``t_max``
($m_\tau = 0$: cosine, cond-OT, schedules with ``ends_at_noise``, when ``t_max`` is within
``margin * tau`` of $\tau$), they take their largest level at ``tau * (1 - margin)``
(default ``margin = 1e-3``) and the grid still starts at ``t_max``
(the velocity is finite there): only the first step is longer than the rule's.

Time units are those of $\tau$ throughout.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxsa._checks import check, format_number
from jaxsa.quadrature import bisect_increasing, gauss_legendre
from jaxsa.schedules.standard import Schedule

__all__ = ["STEP_RULES", "step_grid"]

#: the rules of [`step_grid`][jaxsa.solvers.steps.step_grid] and the parameters each takes
STEP_RULES = {
    "uniform": ("t_min", "t_max"),
    "thermo_length": ("t_min", "t_max", "n_panels", "order"),
    "thermo_cost": ("t_min", "t_max", "n_panels", "order"),
    "log_snr": ("t_min", "t_max", "margin", "to_zero"),
    "edm": ("t_min", "t_max", "margin", "rho", "to_zero"),
    "ays_gaussian": ("t_min", "t_max", "margin", "data_std", "to_zero"),
}
_NOISE_RULES = ("log_snr", "edm", "ays_gaussian")


def step_grid(process, n_steps: int, rule: str = "uniform", **params) -> jax.Array:
    r"""Sampler time grid of shape ``(n_steps + 1,)``, decreasing from ``t_max`` to ``t_min``
    (to ``0`` with ``to_zero``).

    Args:
        process: what the rule needs. ``"uniform"``: anything with ``tau`` (a field, a process,
            a [`Schedule`][jaxsa.schedules.standard.Schedule]). ``"thermo_*"``: a process with a
            method ``v2_sq(t)`` $= v_2(t)^2 = \mathbb E_{P_t}|\nu_t|^2$ (length²/time², e.g.
            [`DiffusionPath`][jaxsa.processes.diffusion.DiffusionPath]). Noise-level rules: a
            ``Schedule`` or a process with a ``schedule`` attribute.
        n_steps: number of steps $N \ge 1$ (static Python int).
        rule: one of `STEP_RULES` (static).
        **params: the rule's parameters (scalars; may be traced under ``jit``):

            * ``t_min``: last time (default ``0`` for ``"uniform"``/``"thermo_*"``,
              ``1e-3 * tau`` for the noise-level rules, which need $\sigma_{t_{min}} > 0$);
            * ``t_max``: first time (default ``tau``);
            * ``n_panels`` (512), ``order`` (8): Gauss–Legendre panels of the cumulative
              integral of the ``"thermo_*"`` rules (static ints);
            * ``margin`` (``1e-3``): see the module text (fraction of $\tau$);
            * ``rho`` (7): the EDM exponent;
            * ``data_std`` $c$ (length units): the data's standard deviation for
              ``"ays_gaussian"``; default ``sqrt(process.data.variance())`` when the process
              has Gaussian-mixture ``data``.
            * ``to_zero`` (``False``; noise-level rules, a static Python bool): EDM's
              convention, Eq. 5's $\sigma_N = 0$ — the rule's levels take the first
              ``n_steps - 1`` steps, from ``t_max`` to ``t_min``, and the last step goes from
              ``t_min`` to ``0`` (needs ``n_steps >= 2`` and a field that is finite at
              ``t = 0``). The grid then ends at the data like the ``"uniform"`` and
              ``"thermo_*"`` ones, instead of at the cut-off ``t_min``.

    Rules ($t_0 = t_{max} > t_1 > \dots > t_N = t_{min}$, $i = 0..N$):

    * ``"uniform"``: $t_i = t_{max} + (i/N)(t_{min} - t_{max})$.
    * ``"thermo_length"``: $L(t_i) = (1 - i/N) L(t_{max})$ with the thermodynamic length
      $L(t) = \int_{t_{min}}^t v_2(t')\,dt'$ (length units), $v_2 = \sqrt{v_2^2}$ the speed of
      $P_t$ in $W_2$ space (spec Eq. 66): equal $W_2$ distance per step along the path.
    * ``"thermo_cost"``: the same with $C(t) = \int_{t_{min}}^t v_2^2\,dt'$ (length²/time),
      equal contribution to $c_2 = \int v_2^2 dt$ (spec Eq. 82) per step.
    * ``"log_snr"``: $\lambda(t_i) = \lambda_{hi} + (i/N)(\lambda(t_{min}) - \lambda_{hi})$,
      $\lambda(t) = \ln(m_t^2/\sigma_t^2) = -2\ln\bar\sigma_t$, uniform in log-SNR
      (Kingma et al. 2021, "Variational diffusion models"; the DPM-Solver grid, Lu et al. 2022).
    * ``"edm"``: Karras, Aittala, Aila, Laine 2022, "Elucidating the design space of
      diffusion-based generative models", Sec. 3, Eq. 5 (their $N$ levels before the final
      $\sigma_N = 0$ are our $N + 1$), with both ends included:
      $\bar\sigma_i = \big(\bar\sigma_{max}^{1/\rho} + \tfrac{i}{N}(\bar\sigma_{min}^{1/\rho}
      - \bar\sigma_{max}^{1/\rho})\big)^\rho$, $\bar\sigma_{max} = \bar\sigma(t_{hi})$,
      $\bar\sigma_{min} = \bar\sigma(t_{min})$ (EDM's extra level $\bar\sigma = 0$ is the last
      time with ``to_zero``). The paper's defaults are $\bar\sigma_{min} = 0.002$,
      $\bar\sigma_{max} = 80$, $\rho = 7$ (18 levels for CIFAR-10): pass them as ``t_min``,
      ``t_max`` for the schedule $m_t = 1$, $\sigma_t = t$, ``tau = 80``.
    * ``"ays_gaussian"``: Sabour, Fidler, Kreis 2024, "Align your steps: optimizing sampling
      schedules in diffusion models", Sec. 3.1 (Theorem 3.1): for data $\mathcal N(0, c^2 I)$,
      EDM's parametrisation $s(t) = 1$, $\sigma(t) = t$ and Euler steps of the
      probability-flow ODE between fixed ends, the levels that minimise the KL divergence
      between the Euler result and the true marginal at $\bar\sigma_{min}$:
      $\bar\sigma_i = c\tan\theta_i$, $\theta_i = (1 - i/N)\arctan(\bar\sigma_{max}/c)
      + (i/N)\arctan(\bar\sigma_{min}/c)$ (equal angles; $\bar x$ has variance
      $c^2 + \bar\sigma^2$, so $\theta$ is the angle of the signal/noise split). The
      optimality is that of Euler in $\bar\sigma$ on $\bar x$ (the DDIM step), which the
      ``"euler"`` sampler (in $t$ on $x$) is for $m_t = 1$, $\sigma_t = t$ and for cond-OT,
      not for cosine, VP or geometric VE schedules.

    Here $t_{hi} = t_{max}$ when $\bar\sigma(t_{max})$ is finite, otherwise (and for a
    schedule that ends at noise with $t_{max} > \tau(1 - \text{margin})$)
    $t_{hi} = \tau(1 - \text{margin})$; the noise-level rules map $\bar\sigma_i$ (or
    $\lambda_i$) back to $t_i$ by bisection of the monotone $\ln\bar\sigma(t)$ on
    $[t_{min}, t_{hi}]$, and $t_0 = t_{max}$, $t_N = t_{min}$ are set exactly.

    Returns:
        ``(n_steps + 1,)`` times (units of $\tau$), non-increasing (strictly decreasing where
        the rule's variable is strictly monotone), ``grid[0] = t_max``, ``grid[-1] = t_min``.

    Raises:
        ValueError: unknown ``rule``, ``n_steps`` not an integer ``>= 1``, a parameter the rule
            does not take, a ``process`` without what the rule needs (``v2_sq``, a schedule),
            or (concrete values) ``t_min``/``t_max``/``rho``/``data_std`` out of range.

    Example:
        ```python
        path = jaxsa.DiffusionPath(jaxsa.Cosine(), jaxsa.paper_data())
        grid = step_grid(path, 32, "thermo_length")  # (33,), from 1.0 down to 0.0
        x0 = jaxsa.sample(path, x_tau, grid, "heun")
        ```
    """
    if not isinstance(rule, str) or rule not in STEP_RULES:
        raise ValueError(f"step_grid: unknown `rule` {rule!r}; choose one of {sorted(STEP_RULES)}.")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"step_grid: `n_steps` must be a Python int >= 1; got {n_steps!r}.")
    extra = sorted(set(params) - set(STEP_RULES[rule]))
    if extra:
        raise ValueError(f"step_grid: rule {rule!r} takes the parameters {STEP_RULES[rule]}, "
                         f"not {', '.join('`' + k + '`' for k in extra)}.")
    tau = getattr(process, "tau", None)
    if tau is None:
        raise ValueError(f"step_grid: `process` must have a time horizon `tau`; got "
                         f"{type(process).__name__}.")
    dt = jnp.result_type(float)
    tau = jnp.asarray(tau, dt)
    noise = rule in _NOISE_RULES
    t_min = jnp.asarray(params.get("t_min", 1e-3 * tau if noise else 0.0), dt)
    t_max = jnp.asarray(params.get("t_max", tau), dt)
    lo_ok = (t_min > 0) if noise else (t_min >= 0)
    t_min, t_max = check(lo_ok & (t_min < t_max) & (t_max <= tau),
                         f"step_grid: need {'0 <' if noise else '0 <='} `t_min` < `t_max` <= tau "
                         f"(got t_min = {format_number(t_min)}, t_max = {format_number(t_max)}, "
                         f"tau = {format_number(tau)}).", t_min, t_max)

    if rule == "uniform":
        frac = jnp.arange(n_steps + 1, dtype=dt) / n_steps
        inner = t_max + frac * (t_min - t_max)
    elif rule in ("thermo_length", "thermo_cost"):
        v2_sq = getattr(process, "v2_sq", None)
        if not callable(v2_sq):
            raise ValueError(f"step_grid: rule {rule!r} needs `process` with a method v2_sq(t) "
                             f"(the squared W2 speed E|nu_t|^2); {type(process).__name__} has none.")
        n_panels, order = params.get("n_panels", 512), params.get("order", 8)
        for name, val in (("n_panels", n_panels), ("order", order)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"step_grid: `{name}` must be a Python int >= 1; got {val!r}.")
        inner = _thermo_grid(process, n_steps, t_min, t_max, n_panels, order,
                             jnp.asarray(rule == "thermo_length"))
    else:
        to_zero = params.get("to_zero", False)
        if not isinstance(to_zero, bool) or (to_zero and n_steps < 2):
            raise ValueError(f"step_grid: `to_zero` must be a Python bool, and needs n_steps >= 2 "
                             f"(one step is the last one, to t = 0); got {to_zero!r}, "
                             f"n_steps = {n_steps}.")
        noise = {k: v for k, v in params.items() if k != "to_zero"}
        inner = _noise_grid(process, n_steps - int(to_zero), rule, noise, tau, t_min, t_max, dt)
        inner = inner.at[0].set(t_max).at[-1].set(t_min)
        return jnp.concatenate([inner, jnp.zeros((1,), dt)]) if to_zero else inner
    return inner.at[0].set(t_max).at[-1].set(t_min)


# ---- cumulative integrals of v_2 ------------------------------------------------------------


@eqx.filter_jit
def _thermo_grid(process, n_steps, t_min, t_max, n_panels, order, length):
    r"""Invert $u(t) = \int_{t_{min}}^t g$, $g = v_2$ or $v_2^2$, at $u_i = (1 - i/N) u(t_{max})$.

    $u$ is tabulated at ``n_panels + 1`` uniform edges by ``order``-point Gauss–Legendre panels,
    inverted by linear interpolation, then refined by two Newton steps
    $t \leftarrow t - (u(t) - u_i)/g(t)$ with $u(t)$ from its panel's edge value and a
    Gauss–Legendre rule on $[e_j, t]$; a step that would leave the panel or meets $g = 0$ is
    not taken (so the result never leaves its bracket). ``length`` is a traced flag, so both
    rules share one compiled program per process structure."""
    length = jnp.asarray(length)

    def g(t):
        s = jnp.maximum(jax.vmap(process.v2_sq)(t.reshape(-1)).reshape(t.shape), 0.0)
        return jnp.where(length, jnp.sqrt(s), s)

    dt = t_min.dtype
    edges = t_min + (t_max - t_min) * jnp.arange(n_panels + 1, dtype=dt) / n_panels
    xi, w = gauss_legendre(order, dtype=dt)  # on [0, 1]
    h = edges[1] - edges[0]
    panels = jnp.sum(h * w[None, :] * g(edges[:-1, None] + h * xi[None, :]), axis=1)  # (n_panels,)
    cum = jnp.concatenate([jnp.zeros((1,), dt), jnp.cumsum(panels)])
    target = cum[-1] * (1.0 - jnp.arange(n_steps + 1, dtype=dt) / n_steps)  # decreasing
    t = jnp.interp(target, cum, edges)
    j = jnp.clip(jnp.searchsorted(edges, t, side="right") - 1, 0, n_panels - 1)
    a, b = edges[j], edges[j + 1]

    def newton(_, t):
        span = (t - a)[:, None]
        vals = g(jnp.concatenate([a[:, None] + span * xi[None, :], t[:, None]], axis=1))
        u = cum[j] + jnp.sum(span * w[None, :] * vals[:, :-1], axis=1)
        gt = vals[:, -1]
        ok = gt > 0
        new = t - (u - target) / jnp.where(ok, gt, 1.0)
        return jnp.where(ok & (new >= a) & (new <= b), new, t)

    return jax.lax.fori_loop(0, 2, newton, t)


# ---- noise-level rules ----------------------------------------------------------------------


def _schedule_of(process, rule):
    if isinstance(process, Schedule):
        return process
    sched = getattr(process, "schedule", None)
    if not isinstance(sched, Schedule):
        raise ValueError(f"step_grid: rule {rule!r} needs `process` to be a Schedule or to have "
                         f"a `schedule` attribute (m_t, sigma_t); {type(process).__name__} has none.")
    return sched


def _noise_grid(process, n_steps, rule, params, tau, t_min, t_max, dt):
    sched = _schedule_of(process, rule)
    log_sbar = lambda t: _log_sbar(sched, t)

    margin = jnp.asarray(params.get("margin", 1e-3), dt)
    margin = check(margin > 0, f"step_grid: `margin` must be > 0; got {format_number(margin)}.",
                   margin)
    # sigma_t/m_t is infinite at tau where the schedule ends at pure noise (m_tau = 0, possibly
    # only up to round-off, as cos(pi/2) = 6e-17): the rule's top level is then at tau(1 - margin)
    at_noise = ~jnp.isfinite(log_sbar(t_max))
    if type(sched).ends_at_noise:
        at_noise = at_noise | (t_max > tau * (1.0 - margin))
    t_hi = jnp.where(at_noise, jnp.minimum(t_max, tau * (1.0 - margin)), t_max)
    t_hi = check(t_hi > t_min, "step_grid: tau * (1 - `margin`) must exceed `t_min` where "
                 "sigma_t/m_t is infinite at t_max.", t_hi)
    l_hi, l_lo = log_sbar(t_hi), log_sbar(t_min)
    t_hi = check(jnp.isfinite(l_hi) & jnp.isfinite(l_lo) & (l_hi > l_lo),
                 "step_grid: sigma_t/m_t must be finite, positive and increasing between "
                 "`t_min` and `t_max` (Eq. 24); take t_min > 0.", t_hi)
    frac = jnp.arange(n_steps + 1, dtype=dt) / n_steps
    if rule == "log_snr":  # uniform in lambda = -2 ln(sbar), i.e. uniform in ln(sbar)
        levels = l_hi + frac * (l_lo - l_hi)
    elif rule == "edm":
        rho = jnp.asarray(params.get("rho", 7.0), dt)
        rho = check(rho > 0, f"step_grid: `rho` must be > 0; got {format_number(rho)}.", rho)
        s_max, s_min = jnp.exp(l_hi / rho), jnp.exp(l_lo / rho)  # sbar^(1/rho)
        levels = rho * jnp.log(s_max + frac * (s_min - s_max))
    else:  # "ays_gaussian"
        c = params.get("data_std")
        if c is None:
            data = getattr(process, "data", None)
            if data is None or not hasattr(data, "variance"):
                raise ValueError("step_grid: rule 'ays_gaussian' needs `data_std` (the data's "
                                 "standard deviation), or `process` with Gaussian-mixture `data`.")
            c = jnp.sqrt(data.variance())
        c = jnp.asarray(c, dt)
        c = check(c > 0, f"step_grid: `data_std` must be > 0; got {format_number(c)}.", c)
        th_max, th_min = jnp.arctan(jnp.exp(l_hi) / c), jnp.arctan(jnp.exp(l_lo) / c)
        levels = jnp.log(c * jnp.tan(th_max + frac * (th_min - th_max)))
    return _invert_log_sbar(sched, levels, t_min, t_hi)


def _log_sbar(sched, t):
    r"""$\ln\bar\sigma_t = \ln(\sigma_t/m_t) = -\lambda(t)/2$, non-decreasing in ``t`` (Eq. 24)."""
    return 0.5 * jnp.log(sched.sigma_sq(t)) - jnp.log(sched.m(t))


@eqx.filter_jit
def _invert_log_sbar(sched, y, lo, hi, iterations: int = 96):
    """Times ``t`` in ``[lo, hi]`` with ``ln sbar(t) = y``, by bisection of the non-decreasing
    ``ln sbar`` (``iterations`` halvings: to round-off in float64), clipped to the bracket."""
    return bisect_increasing(lambda t: _log_sbar(sched, t), y, lo, hi, iterations)
