r"""Fig. 3: the 2D Swiss roll under the cosine, cond-OT and OT schedules ([spec §7][spec-7], [§5][spec-5], [§3][spec-3]).

Data $q$: ``n_data`` points of scikit-learn's Swiss roll
(`sklearn.datasets.make_swiss_roll`), the (x, z) coordinates, centred and divided by their
overall standard deviation. $P_\tau = \mathcal N(0, I_2)$, τ = 1.

* **cosine, cond-OT**: the exact forward process of the empirical data
  ([`jaxsa.processes.empirical.EmpiricalPath`][jaxsa.processes.empirical.EmpiricalPath]); forward samples are exact
  ($x_t = m_t y + \sigma_t\varepsilon$), the estimated process is the probability-flow ODE
  with the exact velocity ([`transport_particles`][jaxsa.processes.empirical.transport_particles]). (It memorises: the flow ends on data points.)
* **OT**: the velocity $u_\theta$ learned by OT conditional flow matching
  ([`jaxsa.processes.learned.train_cfm`][jaxsa.processes.learned.train_cfm], cached by configuration digest); forward samples are the data pushed
  forward by $u_\theta$ (RK4), the estimated process pulls the start back by $u_\theta$.

Quantities per schedule (``fig3.json``), for the mean-shift start $\tilde P_\tau = \mathcal
N(\delta, I)$:

* ``D0`` $=\chi^2(\tilde P_\tau\|P_\tau) = e^{|\delta|^2} - 1$ (Eq. 78, closed form);
* ``eta`` $= (W_1(q,p) - W_1(P_\tau,\tilde P_\tau))^2/(\tau D_0)$ (Eq. 77) with
  $W_1(P_\tau,\tilde P_\tau) = |\delta|$ exactly and $W_1(q, p)$ by
  [`jaxsa.w1_point_cloud`][jaxsa.metrics.w1_point_cloud] between ``n_particles`` data points and the generated cloud;
  ``W1_floor`` is the same estimator between the data and the cloud generated from the
  unperturbed start (sampling noise plus model error: η is meaningful only where
  $|\Delta W_1|$ exceeds it);
* ``delta_W1``, ``delta_W1_se``: $\Delta W_1 = W_1(q,p) - |\delta|$ and its bootstrap
  standard error (``n_bootstrap`` replicates, both clouds resampled with replacement);
  ``delta_W1_ci95``: ±1.96 SE widened by the half-width of the certified W1 bracket
  (``W1_0_bracket``); ``eta_ci95``: its image under $\Delta W_1^2/(\tau D_0)$;
  ``eta_resolved``: whether that interval of $\Delta W_1$ excludes 0. The bootstrap does
  not cover the training seed of the learned OT field;
* ``c1`` $=\int v_{loss}^2dt$ from $W_1(P_t,\tilde P_t)$ at t = 0, τ/3, 2τ/3, τ by
  finite differences, $\sum_k (\Delta W_1)_k^2/(\Delta t_k D_0)$ — coarse (three
  intervals; by Cauchy–Schwarz this underestimates the integral for exact W1 values);
* ``c2`` $=\int v_2^2 dt$ and ``entropy_bound`` $=\int T_t\dot S^{tot}_t dt$: equal for
  these conservative forces ([spec §3][spec-3]); cosine/cond-OT: stratified Monte Carlo over exact samples
  ([`dissipation_mc`][jaxsa.thermo.monte_carlo.dissipation_mc], 95% CI in ``entropy_bound_ci95``); OT: $\int
  \mathbb E\|u_\theta\|^2dt$ over the pushed-forward data (Simpson in time, no CI); the learned
  field is assumed (not checked) to be a gradient, so ``entropy_bound = c2`` there.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxsa.processes.learned import CFMSettings, data_digest, train_cfm
from jaxsa.experiments import eta_interval
from jaxsa.processes.empirical import EmpiricalPath, transport_particles
from jaxsa.thermo.monte_carlo import dissipation_mc
from jaxsa.solvers.flow import ODESettings, integrate
from jaxsa.metrics import w1_point_cloud
from jaxsa.schedules.standard import CondOT, Cosine

__all__ = ["SCHEDULES", "Fig3Settings", "run_fig3", "swiss_roll"]

SCHEDULES = ("cosine", "cond-ot", "ot")


@dataclasses.dataclass(frozen=True)
class Fig3Settings:
    r"""Static settings of Fig. 3 (defaults: a few minutes on a 2-core CPU, CFM cached).

    Attributes:
        n_data: Swiss-roll points (the empirical data). noise: generator noise (raw units).
        n_particles: particles per process and per start. shift: $|\delta|$ of the
            mean-shift start (δ along the diagonal). n_entropy, n_time: Monte-Carlo samples per
            stratum and strata. ode_tol: particle ODE tolerance. seed: PRNG/data seed.
        cfm: [`jaxsa.processes.learned.CFMSettings`][jaxsa.processes.learned.CFMSettings] of the OT velocity. cache_dir: checkpoint folder
            (default ``$JAXSA_CACHE`` or ``~/.cache/jaxsa``).
        n_bootstrap: bootstrap replicates of ΔW1 (both clouds resampled with
            replacement) for its standard error and the 95% interval of η.
    """

    n_data: int = 2000
    noise: float = 0.5
    n_particles: int = 1000
    shift: float = 0.5
    n_entropy: int = 256
    n_time: int = 32
    ode_tol: float = 1e-4
    rk4_steps: int = 60
    seed: int = 0
    cfm: CFMSettings = dataclasses.field(default_factory=CFMSettings)
    cache_dir: str | None = None
    n_bootstrap: int = 10

    def __post_init__(self):
        for name in ("n_data", "n_particles", "n_entropy", "n_time", "rk4_steps", "n_bootstrap"):
            v = getattr(self, name)
            if int(v) != v or v < (10 if name in ("n_data", "n_particles") else 2
                                   if name in ("n_entropy", "n_bootstrap") else 1):
                raise ValueError(f"Fig3Settings: `{name}` is too small or not an integer: {v!r}.")
        if not (self.shift > 0 and self.noise >= 0 and self.ode_tol > 0):
            raise ValueError("Fig3Settings: need `shift` > 0, `noise` >= 0, `ode_tol` > 0.")
        if self.n_particles > self.n_data:
            raise ValueError(f"Fig3Settings: `n_particles` ({self.n_particles}) must be <= `n_data` "
                             f"({self.n_data}) (the W1 reference is a data subsample).")


def swiss_roll(n: int, noise: float = 0.5, seed: int = 0) -> np.ndarray:
    """``(n, 2)`` Swiss roll: (x, z) of `sklearn.datasets.make_swiss_roll`, centred and
    divided by the overall standard deviation (dimensionless)."""
    from sklearn.datasets import make_swiss_roll

    x, _ = make_swiss_roll(n_samples=int(n), noise=float(noise), random_state=int(seed))
    x = x[:, [0, 2]]
    x = x - x.mean(0)
    return x / x.std()


def _w1(x, y) -> float:
    return float(w1_point_cloud(x, y, rtol=0.01).value)


def _delta_w1_noise(ref, gen, shift, key, n_boot):
    """ΔW1 = W1(ref, gen) - |δ|, its bootstrap standard
    error (``n_boot`` replicates, both clouds resampled with replacement) and the certified
    half-width of the W1 estimate itself."""
    r = w1_point_cloud(ref, gen, rtol=0.01)
    n, m = ref.shape[0], gen.shape[0]
    boot = []
    for k in jax.random.split(key, n_boot):
        ka, kb = jax.random.split(k)
        ia, ib = jax.random.randint(ka, (n,), 0, n), jax.random.randint(kb, (m,), 0, m)
        boot.append(_w1(ref[ia], gen[ib]))
    boot = np.asarray(boot)
    return {"delta_W1": float(r.value) - shift, "delta_W1_se": float(np.std(boot, ddof=1)),
            "W1_0_bracket": [float(r.lower), float(r.upper)],
            "W1_0_bootstrap_mean": float(np.mean(boot)), "n_bootstrap": int(n_boot)}


def rk4_path(model, x, t0, t1, steps):
    """Positions of ``x`` carried by ``model.velocity`` from ``t0`` to ``t1`` (RK4, equal steps,
    by [`jaxsa.solvers.flow.integrate`][jaxsa.solvers.flow.integrate])."""
    ys, _, _ = integrate(model.velocity, x, t0, t1, jnp.asarray([t1], x.dtype),
                         ODESettings(solver="RK4", fixed_steps=steps))
    return ys[0]


def _ot_forward(model, x0, ts, steps):
    """Data pushed forward to each of the increasing times ``ts`` (RK4 per interval)."""
    out, x, t_prev = [x0], x0, float(ts[0])
    for t in ts[1:]:
        x = rk4_path(model, x, t_prev, float(t), max(1, round(steps * (t - t_prev))))
        out.append(x)
        t_prev = float(t)
    return out


def _ot_c2(model, x0, tau, steps, n_nodes=13):
    r"""$\int_0^\tau \mathbb E\|u_\theta(t, x_t)\|^2dt$ along the pushed-forward data (Simpson)."""
    ts = np.linspace(0.0, tau, n_nodes)
    xs = _ot_forward(model, x0, ts, steps)
    rate = np.array([float(jnp.mean(jnp.sum(model.velocity(t, x) ** 2, -1))) for t, x in zip(ts, xs)])
    h = ts[1] - ts[0]
    return float(h / 3 * (rate[0] + rate[-1] + 4 * rate[1:-1:2].sum() + 2 * rate[2:-1:2].sum()))


def run_fig3(settings: Fig3Settings = Fig3Settings(), progress=None) -> dict:
    """Run Fig. 3; returns ``{"records", "samples", "timing", "cfm"}`` (samples: per schedule,
    forward and estimated ``(n, 2)`` clouds at t = 0, τ/3, 2τ/3, τ)."""
    s = settings
    t_all = time.perf_counter()
    tau = 1.0
    data = jnp.asarray(swiss_roll(s.n_data, s.noise, s.seed))
    key = jax.random.PRNGKey(s.seed)
    k_start, k_sub, k_fwd, k_ent = jax.random.split(key, 4)
    k_boot = jax.random.fold_in(key, 7)
    n = s.n_particles
    delta = jnp.full((2,), s.shift / math.sqrt(2.0), data.dtype)
    eps = jax.random.normal(k_start, (n, 2), data.dtype)
    starts = jnp.concatenate([eps, eps + delta])  # unperturbed | perturbed (common random numbers)
    ref = data[jax.random.choice(k_sub, s.n_data, (n,), replace=False)]
    D0 = math.expm1(s.shift**2)  # chi2(N(delta, I) || N(0, I)) in 2D
    times = np.array([0.0, tau / 3, 2 * tau / 3, tau])
    ode = ODESettings(rtol=s.ode_tol, atol=s.ode_tol, solver="Tsit5", max_steps=8192)

    cache = s.cache_dir or os.environ.get("JAXSA_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "jaxsa")
    t0 = time.perf_counter()
    data_np = np.asarray(data)

    def sample_data(k, m):
        return jnp.asarray(data_np)[jax.random.randint(k, (m,), 0, s.n_data)]

    def sample_prior(k, m):
        return jax.random.normal(k, (m, 2), data.dtype)

    model, cfm_info = train_cfm(sample_data, sample_prior, 2, s.cfm,
                                data_id=f"swiss-roll:{data_digest(data_np)}:N(0,I)",
                                cache_dir=os.path.join(cache, "cfm"))
    cfm_info = dict(cfm_info, seconds=time.perf_counter() - t0)
    if progress:
        progress("cfm")

    records, samples, timing = [], {}, {}
    for name in SCHEDULES:
        t0 = time.perf_counter()
        back_ts = jnp.asarray(times[::-1].copy())
        if name == "ot":
            back, x = [starts], starts
            for a, b in zip(times[::-1][:-1], times[::-1][1:]):
                x = rk4_path(model, x, float(a), float(b), max(1, round(s.rk4_steps * (a - b))))
                back.append(x)
            est = jnp.stack(back[::-1])  # (4, 2n, 2) at increasing times
            fwd = jnp.stack(_ot_forward(model, ref, times, s.rk4_steps))
            c2 = _ot_c2(model, ref, tau, s.rk4_steps)
            ent_val, ent_ci = c2, float("nan")
        else:
            sched = Cosine(tau) if name == "cosine" else CondOT(tau)
            path = EmpiricalPath(sched, data)
            sol = transport_particles(path, starts, back_ts, ode)
            est = sol.xs[::-1]
            keys = jax.random.split(k_fwd, len(times))
            fwd = jnp.stack([ref if t == 0 else path.sample(k, float(t), n) for t, k in zip(times, keys)])
            ent = dissipation_mc(path, k_ent, s.n_entropy, s.n_time)
            ent_val, ent_ci = float(ent.value), float(ent.ci95)
            c2 = ent_val
        unpert, pert = est[:, :n], est[:, n:]
        noise = _delta_w1_noise(fwd[0], pert[0], s.shift, jax.random.fold_in(k_boot, len(records)),
                                s.n_bootstrap)
        w1_t = [noise["delta_W1"] + s.shift] + [_w1(fwd[i], pert[i]) for i in range(1, len(times) - 1)]
        w1_t += [s.shift]
        w1_floor = _w1(ref, unpert[0])
        dW = w1_t[0] - s.shift
        eta = dW**2 / (tau * D0)
        # 95% interval of dW: bootstrap (normal approximation) widened by the certified W1 bracket
        half = 1.96 * noise["delta_W1_se"] + 0.5 * (noise["W1_0_bracket"][1] - noise["W1_0_bracket"][0])
        lo, hi = dW - half, dW + half
        eta_ci = [float(v) for v in eta_interval(lo, hi, tau, D0)]
        c1 = sum((w1_t[i + 1] - w1_t[i]) ** 2 / ((times[i + 1] - times[i]) * D0) for i in range(3))
        records.append({
            "schedule": name, "eta": eta, "c1": c1, "c2": c2, "entropy_bound": ent_val,
            "entropy_bound_ci95": ent_ci, "D0": D0, "W1_0": w1_t[0], "W1_tau": s.shift,
            "W1_t": w1_t, "times": times.tolist(), "W1_floor": w1_floor,
            "eq77_holds": bool(eta <= ent_val), "eta_above_floor": bool(abs(dW) > w1_floor),
            **noise, "delta_W1_ci95": [lo, hi], "eta_ci95": eta_ci, "eta_resolved": bool(abs(dW) > half),
        })
        samples[name] = {"forward": np.asarray(fwd), "estimated": np.asarray(unpert),
                         "estimated_perturbed": np.asarray(pert)}
        timing[name] = time.perf_counter() - t0
        if progress:
            progress(name)
    timing["total_s"] = time.perf_counter() - t_all
    return {"records": records, "samples": samples, "timing": timing, "cfm": cfm_info,
            "times": times.tolist()}
