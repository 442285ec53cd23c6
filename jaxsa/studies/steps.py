r"""Where to put a fixed budget of sampling steps: grid rules against each other on exact 1D
references, and grids optimised by gradient descent (issue 15; [spec §4][spec-4]).

For 1D data the error of an ``N``-step sampler is computable to quadrature accuracy: the
sampler maps the prior's normal-score nodes $z_i = \Phi^{-1}((i - \frac12)/n)$ to points whose
sorted values are the quantiles of its output $p_N$ at the levels $(i - \frac12)/n$, so

$$
W_1(q, p_N) = \int_0^1 |F_q^{-1}(u) - F_{p_N}^{-1}(u)|\,du
\approx \frac1n\sum_i \big|F_q^{-1}(\Phi(z_i)) - \mathrm{sort}(T_N(z))_i\big| ,
$$

with $F_q^{-1}(\Phi(z))$ the data's normal-score quantile (closed-form mixture CDF, inverted to
round-off). The midpoint rule's error is estimated by the same sum on ``n/2`` nodes
(``W1_err``). The sort makes the error differentiable in the grid, which
[`optimise_grid`][jaxsa.studies.steps.optimise_grid] uses.

``W1_floor`` is the error of the converged flow (an adaptive diffrax solve at tolerance 1e-10
from the same nodes): the part of $W_1(q, p_N)$ that no grid removes (the prior/end-marginal
mismatch of VP, the ``t_min`` cut-off of the noise-level rules).
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsa._checks import library_promotion
from jaxsa.densities import GaussianMixture, paper_data
from jaxsa.processes.diffusion import DiffusionPath
from jaxsa.processes.ot import OTPath
from jaxsa.schedules.standard import CondOT, Cosine, VPLinear
from jaxsa.studies.optimize import optimize_schedule
from jaxsa.solvers.flow import ODESettings, integrate
from jaxsa.solvers.samplers import sample
from jaxsa.solvers.steps import step_grid

__all__ = ["StepsSettings", "step_data", "sampler_w1", "optimise_grid", "run_steps",
           "STEP_SCHEDULES"]

STEP_SCHEDULES = ("cosine", "cond-ot", "vp", "c2-opt", "ot")
_NOISE_RULES = ("log_snr", "edm", "ays_gaussian")  # need sigma/m: not defined for OT


@dataclasses.dataclass(frozen=True)
class StepsSettings:
    r"""Static settings of the step-grid benchmark.

    Attributes:
        nfe: velocity evaluations per sample (the budget; steps = NFE / evaluations per step).
        rules: grid rules of [`step_grid`][jaxsa.solvers.steps.step_grid].
        schedules: from `STEP_SCHEDULES` (``"ot"``: the exact 1D OT path, whose straight,
            constant-speed trajectories any grid integrates exactly — a reference; its
            thermodynamic grids are the uniform one and σ/m is undefined, so only ``"uniform"``
            runs there). ``"c2-opt"``: the paper's optimal-dissipation schedule for each data
            set, the [`PolarBernstein`][jaxsa.schedules.families.PolarBernstein] schedule of
            least $c_2 = \int v_2^2dt$ found by
            [`optimize_schedule`][jaxsa.studies.optimize.optimize_schedule]
            (``c2_opt_steps`` Adam steps from the cosine schedule).
        data: ``"paper"`` (the paper's two-mode mixture) and/or ``"multimodal"`` (three narrow,
            separated modes, s = 0.05–0.1).
        method: sampler (``"euler"``, ``"heun"``, ``"dpm2"``).
        n_nodes: normal-score nodes of the W1 quadrature.
        optimise_nfe: budgets at which a grid is optimised (empty: none); optimise_steps: its
            Adam steps; learning_rate: their rate.
        t_min: where the noise-level rules stop (time units of τ).
    """

    nfe: tuple = (6, 10, 20, 50)
    rules: tuple = ("uniform", "thermo_length", "thermo_cost", "log_snr", "edm", "ays_gaussian")
    schedules: tuple = STEP_SCHEDULES
    data: tuple = ("paper", "multimodal")
    method: str = "heun"
    n_nodes: int = 2048
    optimise_nfe: tuple = (10,)
    optimise_steps: int = 150
    learning_rate: float = 0.05
    t_min: float = 1e-3
    c2_opt_steps: int = 400

    def __post_init__(self):
        bad = [s for s in self.schedules if s not in STEP_SCHEDULES]
        bad += [d for d in self.data if d not in ("paper", "multimodal")]
        if bad:
            raise ValueError(f"StepsSettings: unknown schedules/data {bad}.")
        if self.method not in ("euler", "heun", "dpm2"):
            raise ValueError(f"StepsSettings: `method` must be euler, heun or dpm2, got {self.method!r}.")
        per = 2 if self.method == "heun" else 1
        if any(int(n) < per or int(n) % per for n in self.nfe + self.optimise_nfe):
            raise ValueError(f"StepsSettings: every `nfe` must be a positive multiple of {per} "
                             f"(evaluations per {self.method} step), got {self.nfe}, {self.optimise_nfe}.")
        if self.n_nodes < 64 or self.n_nodes % 2:
            raise ValueError(f"StepsSettings: `n_nodes` must be even and >= 64, got {self.n_nodes}.")


def step_data(name: str) -> GaussianMixture:
    """The 1D data sets of the benchmark: ``"paper"`` or ``"multimodal"``."""
    if name == "paper":
        return paper_data()
    return GaussianMixture(jnp.array([0.3, 0.45, 0.25]), jnp.array([-2.0, 0.3, 2.4]),
                           jnp.array([0.05, 0.1, 0.07]))


def _process(schedule: str, data, c2_opt=None):
    prior = GaussianMixture(jnp.ones(1), jnp.zeros(1), jnp.ones(1))
    if schedule == "ot":
        return OTPath(data, prior, 1.0)
    if schedule == "c2-opt":
        return DiffusionPath(c2_opt["schedule"], data)
    return DiffusionPath({"cosine": Cosine, "cond-ot": CondOT, "vp": VPLinear}[schedule](1.0), data)


def _nodes(n, dtype):
    from jax.scipy.special import ndtri

    return ndtri((jnp.arange(n, dtype=dtype) + 0.5) / n)


@eqx.filter_jit
def sampler_w1(process, grid, method: str, n_nodes: int):
    r"""$W_1(q, p_N)$ of the sampler on ``grid`` (module docstring) and its quadrature error
    estimate (the same sum at ``n_nodes/2`` nodes). ``grid``: ``(N + 1,)`` decreasing times;
    traceable and differentiable in ``grid``. Lengths in data units."""
    def w1(n):
        z = _nodes(n, grid.dtype)
        out = sample(process, z, grid, method)
        return jnp.mean(jnp.abs(jnp.sort(out) - process.data.normal_score_quantile(z)))

    v = w1(n_nodes)
    return v, jnp.abs(v - w1(n_nodes // 2))


def _floor(process, n_nodes):
    z = _nodes(n_nodes, jnp.result_type(float))
    ode = ODESettings(rtol=1e-10, atol=1e-10, solver="Dopri8", max_steps=20_000)
    xs, _, ok = integrate(process.velocity, z, process.tau, 0.0 * process.tau,
                          jnp.zeros((1,), z.dtype), ode)
    return float(jnp.mean(jnp.abs(jnp.sort(xs[-1]) - process.data.normal_score_quantile(z)))), bool(ok)


def optimise_grid(process, n_steps: int, method: str, n_nodes: int, init, steps: int = 150,
                  learning_rate: float = 0.05, progress=None):
    r"""A grid of ``n_steps`` steps minimising $W_1(q, p_N)$ by Adam (optax) over the softmax
    logits of the step lengths, from the grid ``init`` ``(n_steps + 1,)`` (decreasing from τ to
    ``init[-1]``, which stays fixed). Returns ``(grid, W1 history)``."""
    import optax

    tau, t_end = init[0], init[-1]
    theta0 = jnp.log(jnp.maximum(-jnp.diff(init), 1e-12))

    def grid_of(theta):
        frac = jnp.concatenate([jnp.zeros(1, theta.dtype), jnp.cumsum(jax.nn.softmax(theta))])
        return tau - (tau - t_end) * frac

    loss = jax.jit(jax.value_and_grad(lambda th: sampler_w1(process, grid_of(th), method, n_nodes)[0]))
    opt = optax.adam(learning_rate)
    theta, state, hist = theta0, opt.init(theta0), []
    best = (jnp.inf, theta0)
    for i in range(int(steps)):
        val, g = loss(theta)
        hist.append(float(val))
        if val < best[0]:
            best = (val, theta)
        with library_promotion():  # implicit promotions inside optax's Adam
            upd, state = opt.update(g, state)
        theta = optax.apply_updates(theta, upd)
        if progress:
            progress(i, float(val))
    return grid_of(best[1]), hist


def run_steps(settings: StepsSettings = StepsSettings(), progress=None) -> dict:
    """Run the benchmark; returns ``{"records", "winners", "timing"}`` (one record per data ×
    schedule × rule × NFE with ``W1``, ``W1_err``, ``W1_floor``; ``rule = "optimised"`` for the
    optimised grids)."""
    s = settings
    per = 2 if s.method == "heun" else 1
    t0 = time.perf_counter()
    records, optimal = [], {}
    for dname in s.data:
        data = step_data(dname)
        if "c2-opt" in s.schedules:
            optimal[dname] = optimize_schedule(data, 1.0, steps=s.c2_opt_steps)
            if progress:
                progress(f"{dname}/c2-opt schedule")
        for sname in s.schedules:
            proc = _process(sname, data, optimal.get(dname))
            floor, ok = _floor(proc, s.n_nodes)
            # OT: σ/m is not defined and v₂ is constant (the W₂ geodesic), so the thermodynamic
            # grids are the uniform one; only "uniform" is run
            rules = [r for r in s.rules if sname != "ot" or r == "uniform"]
            for nfe in s.nfe:
                n = int(nfe) // per
                for rule in rules:
                    kw = {"t_min": s.t_min} if rule in _NOISE_RULES else {}
                    grid = step_grid(proc, n, rule, **kw)
                    w1, err = sampler_w1(proc, grid, s.method, s.n_nodes)
                    records.append({"data": dname, "schedule": sname, "rule": rule, "nfe": int(nfe),
                                    "n_steps": n, "method": s.method, "W1": float(w1),
                                    "W1_err": float(err), "W1_floor": floor, "floor_ode_ok": ok,
                                    "grid": np.asarray(grid).tolist()})
                if progress:
                    progress(f"{dname}/{sname}/NFE {nfe}")
            for nfe in s.optimise_nfe:
                n = int(nfe) // per
                cands = [r for r in records if r["data"] == dname and r["schedule"] == sname
                         and r["nfe"] == int(nfe)]
                start = min(cands, key=lambda r: r["W1"]) if cands else None
                init = (jnp.asarray(start["grid"]) if start else step_grid(proc, n, "uniform"))
                grid, hist = optimise_grid(proc, n, s.method, s.n_nodes, init, s.optimise_steps,
                                           s.learning_rate)
                w1, err = sampler_w1(proc, grid, s.method, s.n_nodes)
                records.append({"data": dname, "schedule": sname, "rule": "optimised", "nfe": int(nfe),
                                "n_steps": n, "method": s.method, "W1": float(w1), "W1_err": float(err),
                                "W1_floor": floor, "floor_ode_ok": ok, "grid": np.asarray(grid).tolist(),
                                "initial_rule": start["rule"] if start else "uniform",
                                "loss_history": hist[:: max(1, len(hist) // 30)]})
                if progress:
                    progress(f"{dname}/{sname}/optimised NFE {nfe}")
    winners = []
    for dname in s.data:
        for sname in s.schedules:
            for nfe in s.nfe:
                rs = [r for r in records if r["data"] == dname and r["schedule"] == sname
                      and r["nfe"] == int(nfe) and r["rule"] != "optimised"]
                best = min(rs, key=lambda r: r["W1"])
                # a win counts only beyond both error estimates
                close = [r["rule"] for r in rs if r["W1"] - r["W1_err"] <= best["W1"] + best["W1_err"]]
                winners.append({"data": dname, "schedule": sname, "nfe": int(nfe), "best": best["rule"],
                                "W1_best": best["W1"], "tied_within_error": close})
    c2 = {d: {k: o[k] for k in ("c2_opt", "c2_cosine", "c2_cond_ot", "ot_bound", "length_bound")}
          for d, o in optimal.items()}
    return {"records": records, "winners": winners, "c2_opt_schedule": c2,
            "timing": {"total_s": time.perf_counter() - t0}}
