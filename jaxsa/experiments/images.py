r"""Real images (issue 5, item 7): the speed-accuracy relation on scikit-learn's handwritten digits.

Data: the 1,797 8×8 digit images shipped with scikit-learn (`sklearn.datasets.load_digits`,
no download), flattened to $\mathbb R^{64}$ and scaled from the pixel range ``[0, 16]`` to
``[-1, 1]`` (``x/8 - 1``), as image diffusion models do. $q$ is the empirical measure on
these points, so the forward process ([`jaxsa.processes.empirical.EmpiricalPath`][jaxsa.processes.empirical.EmpiricalPath]) and its velocity are
exact: no network is learned.

For the cond-OT and cosine schedules (τ = 1, $P_\tau = \mathcal N(0, I)$ exactly) and two
perturbed starts, a mean shift $\tilde P_\tau = \mathcal N(\delta, I)$ (``|δ| = shift``,
δ along the diagonal) and a variance change $\tilde P_\tau = \mathcal N(0, s^2 I)$
(``s = std``), it computes

* the estimated process on ``n_samples`` particles per start ([`transport_particles`][jaxsa.processes.empirical.transport_particles]) with
  common random numbers: the starts are $\varepsilon$, $\varepsilon + \delta$ and
  $s\varepsilon$ for the same $\varepsilon \sim \mathcal N(0, I)$;
* $W_1(P_\tau, \tilde P_\tau)$ (``W1_tau``: ott-jax on the start clouds; ``W1_tau_exact``:
  $|\delta|$ and $|1 - s|\,\mathbb E\|Z\|$, the closed forms — a translation and
  a radial scaling are W1-optimal maps) and $W_1(q, p)$ (``W1_0``: ott-jax,
  [`jaxsa.w1_point_cloud`][jaxsa.metrics.w1_point_cloud], between the generated clouds of the unperturbed and perturbed
  starts — the unperturbed flow reproduces $q$);
* $\eta = (W_1(q,p) - W_1(P_\tau,\tilde P_\tau))^2/(\tau D_0)$ (Eq. 77) with both
  $W_1$ s from the same estimator and sample size;
* $D_0 = \chi^2(\tilde P_\tau\|P_\tau)$ in closed form ([`chi2_isotropic_gaussian`][jaxsa.thermo.monte_carlo.chi2_isotropic_gaussian]);
* ``entropy_bound`` $= \int_0^\tau T_t\dot S_t^{tot}dt = \int \mathbb E_{P_t}\|\nu_t\|^2dt$
  by stratified Monte Carlo over exact samples ([`dissipation_mc`][jaxsa.thermo.monte_carlo.dissipation_mc]) with its 95% CI;
  the forces are conservative, so ``c2`` $=\int v_2^2 dt$ is the same number ([spec §3][spec-3]);
* Eq. 77 check: ``eta <= entropy_bound``.

Caveats, stated in the JSON too:

* **Memorisation.** With the exact empirical velocity the flow near ``t = 0`` collapses onto the
  data points: every generated image is a training image (the flow stops at ``t_min`` and the
  last step is the denoiser $\mathbb E[y|x_{t_{min}}]$). This is the exact process of the
  theory, not a trained model.
* **Same images for both schedules.** The probability-flow map from $P_\tau$ to
  $q$ depends on the schedule only through $\sigma_t/m_t$ (DDIM coordinates, [spec §3][spec-3] Eqs. 33–35), which runs over $[0, \infty)$ for cond-OT and cosine alike, so both
  schedules generate the same images from the same start (to the ODE tolerance) and η is the
  same; only the cost of the path, ``entropy_bound``, differs.
* **Sampling noise of W1 in 64 dimensions.** The empirical $W_1$ of ``n`` samples is
  biased upward (slowly, like $n^{-1/d}$); ``W1_noise_floor`` is $W_1$ between two
  independent ``n``-samples of $q$ itself — the size of that bias at this ``n``. η is a
  difference of two such estimates from common random numbers, so much of that bias cancels;
  the noise that remains is ``delta_W1_se``, a bootstrap over the coupled particles, with
  ``delta_W1_ci95``, ``eta_ci95`` and ``eta_resolved`` (|ΔW₁| > 1.96 SE). ``W1_0_crn`` is the
  cost of the common-random-number coupling, an upper bound on the sample $W_1$.
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxsa.densities import GaussianMixture
from jaxsa.processes.empirical import PARTICLE_ODE, EmpiricalPath, transport_particles
from jaxsa.thermo.monte_carlo import chi2_divergence, dissipation_mc
from jaxsa.solvers.flow import ODESettings
from jaxsa.experiments import eta_interval
from jaxsa.metrics import w1_point_cloud
from jaxsa.schedules.standard import CondOT, Cosine

__all__ = ["PERTURBATIONS", "SCHEDULES", "ImagesSettings", "load_digits_data", "run_images"]

SCHEDULES = {"cond-ot": CondOT, "cosine": Cosine}
PERTURBATIONS = ("mean", "variance")


@dataclasses.dataclass(frozen=True)
class ImagesSettings:
    r"""Settings of the digits experiment (all static).

    Attributes:
        schedules: names from `SCHEDULES`.
        shift: $|\delta|$ of the mean-shift start $\mathcal N(\delta, I)$
            (pixel units of the [-1, 1] scale). D0 = exp(shift²) - 1.
        std: $s$ of the variance start $\mathcal N(0, s^2 I)$.
        n_samples: particles per start (generated images per start; W1 sample size).
        n_entropy, n_time: Monte-Carlo samples per time stratum and strata for ``entropy_bound``.
        n_data: use the first ``n_data`` images (``None``: all 1,797).
        t_min: where the ODE stops (the empirical velocity is singular at t = 0).
        chunk_size: data chunk of the online log-sum-exp (``None``: all at once).
        ode: particle ODE settings.
        seed: PRNG seed.
        n_bootstrap: bootstrap replicates of ΔW₁ for its standard error (``delta_W1_se``):
            the ``n_samples`` coupled (start, generated) quadruples are resampled with
            replacement and both W₁ recomputed, so the common-random-number design is kept.
    """

    schedules: tuple = ("cond-ot", "cosine")
    shift: float = 1.0
    std: float = 0.9
    n_samples: int = 200
    n_entropy: int = 256
    n_time: int = 16
    n_data: int | None = None
    t_min: float = 1e-3
    chunk_size: int | None = None
    ode: ODESettings = PARTICLE_ODE
    seed: int = 0
    tau: float = 1.0
    n_bootstrap: int = 20


def load_digits_data(n_data: int | None = None) -> np.ndarray:
    """The digits as ``(N, 64)`` float64 in ``[-1, 1]`` (pixels ``0..16`` mapped by ``x/8 - 1``)."""
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float64) / 8.0 - 1.0
    return x if n_data is None else x[:n_data]


def _mean_norm_gaussian(d: int) -> float:
    r"""$\mathbb E\|Z\|$ for $Z\sim\mathcal N(0, I_d)$: √2 Γ((d+1)/2)/Γ(d/2)."""
    return math.sqrt(2.0) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))


def _w1(x, y):
    out = w1_point_cloud(x, y)
    return float(out[0]), bool(out[1])


def _delta_w1_se(start0, start1, gen0, gen1, key, n_boot) -> float:
    """Bootstrap standard error of ΔW₁ = W₁(gen0, gen1) − W₁(start0, start1): the ``n`` coupled
    rows (particle i starts at ``start*[i]`` and ends at ``gen*[i]``) are resampled together."""
    n = start0.shape[0]
    reps = []
    for k in jax.random.split(key, n_boot):
        i = np.asarray(jax.random.randint(k, (n,), 0, n))
        reps.append(_w1(np.asarray(gen0)[i], np.asarray(gen1)[i])[0]
                    - _w1(np.asarray(start0)[i], np.asarray(start1)[i])[0])
    return float(np.std(reps, ddof=1))


def _check(s: ImagesSettings):
    for name in s.schedules:
        if name not in SCHEDULES:
            raise ValueError(f"images: unknown schedule {name!r}; choose from {list(SCHEDULES)}.")
    if s.n_samples < 2:
        raise ValueError(f"images: `n_samples` must be >= 2 for a W1 between clouds; got {s.n_samples}.")
    if not (0 < s.std < math.sqrt(2)):
        raise ValueError(f"images: `std` must be in (0, sqrt 2) for a finite D0; got {s.std}.")
    if s.shift < 0:
        raise ValueError(f"images: `shift` must be >= 0; got {s.shift}.")
    if int(s.n_bootstrap) != s.n_bootstrap or s.n_bootstrap < 2:
        raise ValueError(f"images: `n_bootstrap` must be an integer >= 2; got {s.n_bootstrap}.")


def run_images(settings: ImagesSettings = ImagesSettings(), progress=None) -> dict:
    """Run the experiment (float64 expected); returns a JSON-ready dict with ``records`` (one
    per schedule and perturbation), generated ``images`` (first 8 per start, for the plot) and
    timings. See the module docstring for the quantities."""
    s = settings
    _check(s)
    data = load_digits_data(s.n_data)
    n_data, d = data.shape
    if s.n_samples > 4 * n_data:
        raise ValueError("images: `n_samples` larger than 4x the data set is not useful here.")
    key = jax.random.PRNGKey(s.seed)
    k_eps, k_floor, k_ent = jax.random.split(key, 3)
    k_boot = jax.random.fold_in(key, 11)
    eps = jax.random.normal(k_eps, (s.n_samples, d), jnp.float64)
    delta = jnp.full((d,), s.shift / math.sqrt(d))
    starts = {"none": eps, "mean": eps + delta, "variance": s.std * eps}
    pert = {"mean": GaussianMixture(jnp.ones(1), delta[None], jnp.ones(1)),
            "variance": GaussianMixture(jnp.ones(1), jnp.zeros((1, d)), jnp.array([s.std]))}
    w1_tau_exact = {"mean": s.shift, "variance": abs(1 - s.std) * _mean_norm_gaussian(d)}

    t0 = time.perf_counter()
    # noise floor: W1 between two independent n-samples of q itself
    ia, ib = jax.random.choice(k_floor, n_data, (2, s.n_samples), replace=True)
    floor, _ = _w1(data[np.asarray(ia)], data[np.asarray(ib)])
    timing = {"w1_noise_floor_s": time.perf_counter() - t0}

    records, images, curves = [], {}, {}
    ts = jnp.array([s.tau, 2 * s.tau / 3, s.tau / 3, 0.0])
    for name in s.schedules:
        sched = SCHEDULES[name](s.tau)
        path = EmpiricalPath(sched, jnp.asarray(data), chunk_size=s.chunk_size)
        p_tau = path.end_marginal()
        t1 = time.perf_counter()
        x_all = jnp.concatenate([starts["none"], starts["mean"], starts["variance"]])
        sol = transport_particles(path, x_all, ts, s.ode, t_min=s.t_min)
        jax.block_until_ready(sol.xs)
        t_transport = time.perf_counter() - t1
        n = s.n_samples
        gen = {k: np.asarray(sol.xs[-1, i * n:(i + 1) * n]) for i, k in enumerate(starts)}
        images[name] = {k: v[:8].tolist() for k, v in gen.items()}
        t1 = time.perf_counter()
        ent = dissipation_mc(path, k_ent, s.n_entropy, s.n_time)
        jax.block_until_ready(ent.value)
        t_ent = time.perf_counter() - t1
        curves[name] = {"t": np.asarray(ent.rate_t).tolist(), "rate": np.asarray(ent.rate).tolist()}
        # distinct generated images: memorisation diagnostic
        dist_data = float(np.max(np.min(
            np.sum((gen["none"][:, None] - data[None]) ** 2, -1), 1)) ** 0.5)
        for p in PERTURBATIONS:
            t1 = time.perf_counter()
            w1_0, conv0 = _w1(gen["none"], gen[p])
            w1_tau, conv_tau = _w1(np.asarray(starts["none"]), np.asarray(starts[p]))
            se = _delta_w1_se(starts["none"], starts[p], gen["none"], gen[p],
                              jax.random.fold_in(k_boot, len(records)), s.n_bootstrap)
            t_w1 = time.perf_counter() - t1
            crn = float(np.mean(np.linalg.norm(gen[p] - gen["none"], axis=-1)))
            d0 = float(chi2_divergence(pert[p], p_tau).value)
            eta = (w1_0 - w1_tau) ** 2 / (s.tau * d0)
            eb = float(ent.value)
            dw = w1_0 - w1_tau
            lo, hi = dw - 1.96 * se, dw + 1.96 * se  # normal approximation
            eta_ci = [float(v) for v in eta_interval(lo, hi, s.tau, d0)]
            records.append({
                "schedule": name, "perturbation": p,
                "eta": eta, "entropy_bound": eb, "entropy_bound_stderr": float(ent.stderr),
                "entropy_bound_ci95": float(ent.ci95), "c2": eb, "D0": d0,
                "W1_0": w1_0, "W1_tau": w1_tau, "W1_tau_exact": w1_tau_exact[p],
                "eta_exact_W1_tau": (w1_0 - w1_tau_exact[p]) ** 2 / (s.tau * d0),
                "delta_W1": dw, "delta_W1_se": se, "delta_W1_ci95": [lo, hi], "eta_ci95": eta_ci,
                "eta_resolved": bool(abs(dw) > 1.96 * se), "n_bootstrap": int(s.n_bootstrap),
                "W1_0_crn": crn, "W1_noise_floor": floor,
                "W1_converged": conv0 and conv_tau,
                "eq77_holds": eta <= eb,
                "bound_ratio": eta / eb,
                "n_samples": n, "n_data": n_data, "dim": d,
                "n_entropy": s.n_entropy * s.n_time, "n_time": s.n_time,
                "ode_steps": int(sol.num_steps), "ode_success": bool(sol.success),
                "max_distance_generated_to_data": dist_data,
                "time_s": {"transport": t_transport, "entropy": t_ent, "w1": t_w1},
            })
            if progress is not None:
                progress(f"{name}/{p}")
    timing["total_s"] = time.perf_counter() - t0
    notes = ("Exact empirical velocity: the flow memorises (generated images are training "
             "images, max_distance_generated_to_data ~ 0). W1 from n samples in 64-D is biased "
             "upward; W1_noise_floor is W1 between two independent n-samples of q. c2 equals "
             "entropy_bound (conservative force). Data scaled to [-1, 1] by x/8 - 1.")
    return {"records": records, "images": images, "entropy_rate": curves, "timing": timing,
            "notes": notes, "image_shape": [8, 8], "scaling": "x/8 - 1 (pixels 0..16 -> [-1, 1])"}
