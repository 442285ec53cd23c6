r"""The step-grid benchmark in d dimensions: learned models of the Swiss roll (2D) and of the
digits (64D), one per schedule (issue 15; [spec §4][spec-4]).

A trained field $u_\theta$ defines its own flow $T$ from $P_\tau = \mathcal N(0, I)$ at
$t = \tau$ to its output $p_\infty = T_\# P_\tau$ at $t = 0$. What a grid of ``N`` steps
changes is the sampler's map $T_N$ and its output $p_N = (T_N)_\# P_\tau$; the model's own
error against the data is the same for every grid (it is the audit's ``model_error``, not a
property of the steps). So the error measured here is that of the sampler against the
model's converged flow, from the same prior points $z_i$ (common random numbers):

$$
e_N = \mathbb E_{z\sim P_\tau}\,|T_N(z) - T(z)| \;\ge\; W_1(p_\infty, p_N) \;\ge\;
\big|\mathbb E\,[T_N(z) - T(z)]\big| ,
$$

the upper bound because $(T_N(z), T(z))$ is a coupling, the lower one by Kantorovich–Rubinstein
with the 1-Lipschitz linear potential along the mean displacement. ``W1`` is the sample mean of
$|T_N(z_i) - T(z_i)|$ over ``n_particles`` points and ``W1_err`` its 95% half-width
($1.96\,s/\sqrt n$); ``W1_lower`` is the lower bound less its own 95% half-width
($1.96\,(\mathrm{tr}\,\widehat{\mathrm{Cov}}/n)^{1/2}$, clipped at 0). The pathwise error
$e_N$ is the usual measure of an ODE sampler's discretisation error; it bounds the
distributional one from above.

$T$ is an adaptive diffrax solve (Dopri8, rtol = atol = 1e-7: the networks run in float32,
so tighter tolerances only chase round-off); ``W1_floor`` is $\mathbb E|T' - T|$ against a
solve at 1e-5, an upper estimate of the reference's own error, and for the noise-level rules
when their grids stop at ``t_min`` (``noise_to_zero=False``), at least the error of the
converged flow stopped there, $\mathbb E|T_{t_{min}}(z) - T(z)|$: the part of their error that
no step count removes.

The thermodynamic rules need $v_2(t)^2 = \mathbb E_{P_t}|u_\theta(t, x)|^2$ along the
model's flow: [`learned_flow`][jaxsa.studies.steps_dd.learned_flow] tabulates it by Monte
Carlo on the flow of ``v2_particles`` prior points at ``v2_times`` uniform times (linear
interpolation between them). The noise-level rules use the training path's schedule
($\sigma_t/m_t$); OT-CFM has none, so only ``"uniform"`` and the thermodynamic rules run
there (unlike the exact 1D OT path, a learned OT field is not exactly constant-speed).
The AYS tan law takes ``data_std`` $= (\mathrm{tr}\,\mathrm{Cov}(q)/d)^{1/2}$, the
isotropic Gaussian with the data's mean variance (its closed form is for $\mathcal N(0, c^2 I)$).
"""

from __future__ import annotations

import math
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsa.processes.base import AbstractVelocityField
from jaxsa.processes.learned import CFMSettings, data_digest, path_schedule, train_cfm_family
from jaxsa.solvers.flow import ODESettings, integrate
from jaxsa.solvers.samplers import sample

__all__ = ["LearnedFlow", "learned_flow", "sampler_error"]

DD_DATA = ("swiss-roll", "digits")
DD_SCHEDULES = ("cosine", "cond-ot", "vp", "ot")  # the learned paths (no c2-opt model)
_REFERENCE = ODESettings(rtol=1e-7, atol=1e-7, solver="Dopri8", max_steps=20_000)
_CHECK = ODESettings(rtol=1e-5, atol=1e-5, solver="Dopri8", max_steps=20_000)


class LearnedFlow(AbstractVelocityField):
    r"""A velocity field with what the step-grid rules need: ``schedule`` (the training path's
    $(m_t, \sigma_t)$, ``None`` for OT-CFM) and ``v2_sq(t)``, $v_2(t)^2$ of the field's own
    flow, linearly interpolated from a Monte Carlo table (``t_table`` increasing, ``(K,)``;
    ``v2_sq_table`` and its standard errors ``v2_sq_se``, length²/time²)."""

    field: AbstractVelocityField
    schedule: object
    t_table: jax.Array
    v2_sq_table: jax.Array
    v2_sq_se: jax.Array

    @property
    def tau(self):
        return self.field.tau

    @property
    def event_shape(self):
        return self.field.event_shape

    def velocity(self, t, x):
        return self.field.velocity(t, x)

    def v2_sq(self, t):
        return jnp.interp(t, self.t_table, self.v2_sq_table)


def learned_flow(field, schedule, key, n_particles: int = 1024, n_times: int = 129) -> LearnedFlow:
    r"""Tabulate $v_2(t)^2 = \mathbb E|u(t, x_t)|^2$ along the flow of ``field`` from
    ``n_particles`` points of $\mathcal N(0, I)$ at τ (adaptive solve at rtol 1e-5), at
    ``n_times`` uniform times of $[0, \tau]$, with the Monte Carlo standard error of each mean.
    ``field``: points of shape ``(d,)``."""
    if int(n_particles) < 16 or int(n_times) < 3:
        raise ValueError(f"learned_flow: need `n_particles` >= 16 and `n_times` >= 3; got "
                         f"{n_particles}, {n_times}.")
    (d,) = field.event_shape
    dt = jnp.result_type(float)
    tau = jnp.asarray(field.tau, dt)
    z = jax.random.normal(key, (int(n_particles), d), dt)
    ts = tau * jnp.linspace(1.0, 0.0, int(n_times), dtype=dt)
    xs, _, ok = integrate(field.velocity, z, tau, 0.0 * tau, ts, _CHECK)
    if not bool(ok):
        raise RuntimeError("learned_flow: the flow's ODE solve did not succeed (max_steps).")
    sq = jax.vmap(lambda t, x: jnp.sum(field.velocity(t, x) ** 2, -1))(ts, xs)  # (K, n)
    mean, se = jnp.mean(sq, 1), jnp.std(sq, 1, ddof=1) / math.sqrt(int(n_particles))
    return LearnedFlow(field, schedule, ts[::-1], mean[::-1], se[::-1])


def reference_flow(field, z, t_end=0.0):
    """The converged flow ``T(z)`` from τ to ``t_end`` (default 0), the estimate of its error
    (module docstring) and whether both solves succeeded."""
    tau = jnp.asarray(field.tau, z.dtype)
    end = jnp.full((1,), t_end, z.dtype)
    ref, _, ok = integrate(field.velocity, z, tau, end[0], end, _REFERENCE)
    chk, _, ok2 = integrate(field.velocity, z, tau, end[0], end, _CHECK)
    floor = float(jnp.mean(jnp.linalg.norm(chk[0] - ref[0], axis=-1)))
    return ref[0], floor, bool(ok) and bool(ok2)


@eqx.filter_jit
def sampler_error(field, z, reference, grid, method: str):
    r"""The sampler's pathwise error against ``reference`` $= T(z)$ (module docstring).

    Args:
        field: velocity field (points ``(d,)``). z: ``(n, d)`` prior points at ``grid[0]``.
        reference: ``(n, d)`` converged end points of the same ``z``. grid: ``(N + 1,)``
            decreasing times. method: ``"euler"``, ``"heun"`` or ``"dpm2"`` (static).

    Returns:
        ``(e, e_halfwidth, lower)``: the mean of $|T_N(z_i) - T(z_i)|$, its 95% half-width, and
        the 95% lower bound of $W_1(p_\infty, p_N)$ from the mean displacement. Data units.
    """
    out = sample(field, z, grid, method)
    diff = out - reference
    dist = jnp.linalg.norm(diff, axis=-1)
    n = z.shape[0]
    e = jnp.mean(dist)
    half = 1.96 * jnp.std(dist, ddof=1) / math.sqrt(n)
    mean_shift = jnp.linalg.norm(jnp.mean(diff, 0))
    noise = 1.96 * jnp.sqrt(jnp.sum(jnp.var(diff, 0, ddof=1)) / n)
    return e, half, jnp.maximum(mean_shift - noise, 0.0)


def dd_data(name: str) -> np.ndarray:
    """The d-D data sets: ``"swiss-roll"`` (Fig. 3's 2,000 points) or ``"digits"`` (the 1,797
    scikit-learn digits in ``[-1, 1]^{64}``), as ``(N, d)`` float64."""
    if name == "swiss-roll":
        from jaxsa.experiments.fig3 import Fig3Settings, swiss_roll

        f = Fig3Settings()
        return swiss_roll(f.n_data, f.noise, f.seed)
    if name == "digits":
        from jaxsa.experiments.images import load_digits_data

        return load_digits_data(None)
    raise ValueError(f"dd_data: unknown data {name!r}; choose one of {DD_DATA}.")


def _default_cfm(name):
    if name == "swiss-roll":
        from jaxsa.experiments.fig3 import Fig3Settings

        return Fig3Settings().cfm
    from jaxsa.experiments.images import ImagesSettings

    return ImagesSettings().cfm


def dd_models(name: str, schedules, cfm: CFMSettings | None = None, cache_dir: str | None = None,
              key=None, v2_particles: int = 1024, v2_times: int = 129) -> dict:
    """One [`LearnedFlow`][jaxsa.studies.steps_dd.LearnedFlow] per schedule of ``schedules``
    (from `DD_SCHEDULES`) on data ``name``: the models of ``jaxsa reproduce fig3`` (Swiss roll)
    or ``jaxsa reproduce images`` (digits) at ``cfm=None``, trained or loaded from the same
    cache. Returns ``({schedule: LearnedFlow}, {schedule: training info}, data_std)``."""
    bad = [s for s in schedules if s not in DD_SCHEDULES]
    if bad:
        raise ValueError(f"dd_models: unknown schedules {bad}; learned models exist for {DD_SCHEDULES}.")
    data = dd_data(name)
    n, d = data.shape
    cfm = _default_cfm(name) if cfm is None else cfm
    cache = cache_dir or os.environ.get("JAXSA_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "jaxsa")
    tag = "swiss-roll" if name == "swiss-roll" else "digits"  # the experiments' data ids
    models = train_cfm_family(
        lambda k, m: jnp.asarray(data)[jax.random.randint(k, (m,), 0, n)],
        lambda k, m: jax.random.normal(k, (m, d)), d, cfm, paths=tuple(schedules),
        data_id=f"{tag}:{data_digest(data)}:N(0,I)", cache_dir=os.path.join(cache, "cfm"))
    key = jax.random.PRNGKey(0) if key is None else key
    flows = {p: learned_flow(m, None if p == "ot" else path_schedule(p, cfm.tau),
                             jax.random.fold_in(key, i), v2_particles, v2_times)
             for i, (p, (m, _)) in enumerate(models.items())}
    info = {p: dict(inf) for p, (_, inf) in models.items()}
    return flows, info, float(np.sqrt(np.mean(np.var(data, 0))))


def run_dd(name: str, settings, progress=None) -> tuple:
    """The benchmark's rows for d-D data ``name`` under ``settings``
    ([`StepsSettings`][jaxsa.studies.steps.StepsSettings]): every learned schedule of
    ``settings.schedules`` × rule × NFE. Returns ``(records, info)``; each record's ``W1`` is
    the pathwise error $e_N$ with ``W1_err`` (95%) and ``W1_lower`` (module docstring)."""
    from jaxsa.solvers.steps import step_grid

    s = settings
    per = 2 if s.method == "heun" else 1
    scheds = [p for p in s.schedules if p in DD_SCHEDULES]
    key = jax.random.PRNGKey(s.seed)
    flows, cfm_info, c = dd_models(name, scheds, s.cfm, s.cache_dir, jax.random.fold_in(key, 1),
                                   s.v2_particles)
    if progress:
        progress(f"{name}/models")
    records, cutoffs = [], {}
    for i, (sname, flow) in enumerate(flows.items()):
        (d,) = flow.event_shape
        z = jax.random.normal(jax.random.fold_in(key, 100 + i), (int(s.n_particles), d),
                              jnp.result_type(float))
        ref, floor, ok = reference_flow(flow.field, z)
        cut, _, ok_cut = reference_flow(flow.field, z, s.t_min)
        cutoff = cutoffs[sname] = float(jnp.mean(jnp.linalg.norm(cut - ref, axis=-1)))
        rules = [r for r in s.rules if sname != "ot" or r in ("uniform", "thermo_length", "thermo_cost")]
        for nfe in s.nfe:
            n = int(nfe) // per
            for rule in rules:
                noise = rule in ("log_snr", "edm", "ays_gaussian")
                kw = {"t_min": s.t_min, "to_zero": s.noise_to_zero} if noise else {}
                if rule == "ays_gaussian":
                    kw["data_std"] = c
                grid = step_grid(flow, n, rule, **kw)
                e, half, lower = sampler_error(flow.field, z, ref, grid, s.method)
                records.append({"data": name, "schedule": sname, "rule": rule, "nfe": int(nfe),
                                "n_steps": n, "method": s.method, "W1": float(e),
                                "W1_err": float(half), "W1_lower": float(lower),
                                "W1_floor": (max(floor, cutoff) if noise and not s.noise_to_zero
                                             else floor),
                                "floor_ode_ok": ok and ok_cut, "field": "learned",
                                "metric": "pathwise E|T_N(z) - T(z)| (upper bound of W1)",
                                "n_particles": int(s.n_particles),
                                "grid": np.asarray(grid).tolist()})
            if progress:
                progress(f"{name}/{sname}/NFE {nfe}")
    v2 = {p: {"t": np.asarray(f.t_table).tolist(), "v2_sq": np.asarray(f.v2_sq_table).tolist(),
              "v2_sq_se": np.asarray(f.v2_sq_se).tolist()} for p, f in flows.items()}
    return records, {"cfm": cfm_info, "data_std": c, "v2_sq": v2, "W1_cutoff_t_min": cutoffs}
