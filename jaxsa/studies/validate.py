r"""The theorem at scale: every inequality of [spec §4][spec-4] on many random configurations.

Each configuration draws (with an explicit PRNG key, reproducible) 1D Gaussian-mixture data
with 2–4 components (Dirichlet(2) weights, scales log-uniform in [0.05, 0.5], neighbouring
means 0.5–4 apart), a schedule from one of four families (by chunk:
[`Interpolated`][jaxsa.schedules.families.Interpolated] with λ ~ U[0, 1], [`PolarBernstein`][jaxsa.schedules.families.PolarBernstein]
with random logits and ρ coefficients, [`VPLinear`][jaxsa.schedules.standard.VPLinear] with
β_min ~ U[0.05, 0.5], β_max ~ U[5, 25], [`VEGeometric`][jaxsa.schedules.standard.VEGeometric] with
σ_min ~ U[0.005, 0.05], σ_max ~ U[5, 20]; τ ~ U[0.5, 2]) and a perturbed start, scaled by the
widest component S of $P_\tau$: a Gaussian $\mathcal N(\mu S, b^2S^2)$ with
μ ~ U[-1, 1] and $b^2$ ~ U[0.3, 1.96] (up to just below the χ² threshold 2), a
two-component mixture (means U[-1, 1]·S, scales U[0.3, 1.2]·S), or a uniform start (centre
U[-0.5, 0.5]·S, half-width U[0.5, 2]·S). Configurations are vmapped in chunks, written chunk
by chunk (resumable, like sweeps), computed by the CDF method with error estimates; records
that miss ``rtol`` are recomputed adaptively (a second pass), and violations are counted with
the one rule of [`jaxsa.relations.violated`][jaxsa.relations.violated] among converged records only (the others are
counted apart).
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jaxsa.relations.cdf_quadrature import Start
from jaxsa.densities import GaussianMixture
from jaxsa.schedules.families import Interpolated, PolarBernstein
from jaxsa.processes.diffusion import DiffusionPath
from jaxsa.relations import SCALE_OF, Report, Settings, cdf_report, speed_accuracy, violated
from jaxsa.schedules.standard import VEGeometric, VPLinear
from jaxsa.studies.sweep import (
    ERROR_KEYS,
    RECORD_KEYS,
    STATUS_KEYS,
    config_mesh,
    map_over_devices,
    report_record,
    run_chunks,
    sweep_settings,
    to_host,
    write_json_once,
)

__all__ = ["random_config", "run_validation", "FAMILY_NAMES"]

DEGREE, RHO_DEGREE = 6, 3
K_MAX = 4
FAMILY_NAMES = ("interpolated", "polar", "vp-linear", "ve-geometric")


def random_config(key):
    """One random configuration as a dict of arrays (vmappable over a batch of keys).

    The schedule family is not drawn here: chunk ``i`` uses family ``i % 4``
    (`FAMILY_NAMES`), so that a compiled evaluator never carries several branches."""
    k = jax.random.split(key, 18)
    u = lambda kk, lo, hi, shape=(): jax.random.uniform(kk, shape, minval=lo, maxval=hi)  # noqa: E731
    n_comp = jax.random.randint(k[0], (), 2, K_MAX + 1)
    active = jnp.arange(K_MAX) < n_comp
    w = jnp.where(active, jax.random.dirichlet(k[1], jnp.ones(K_MAX) * 2.0), 0.0)
    w = w / jnp.sum(w)
    gaps = u(k[2], 0.5, 4.0, (K_MAX,))
    mu = jnp.concatenate([jnp.zeros(1), jnp.cumsum(gaps[:-1])])
    mu = mu - jnp.sum(jnp.where(active, mu, 0.0)) / n_comp.astype(mu.dtype)
    return {
        "w": w, "mu": mu, "s": jnp.exp(u(k[3], np.log(0.05), np.log(0.5), (K_MAX,))),
        "tau": u(k[4], 0.5, 2.0),
        "lam": u(k[5], 0.0, 1.0),
        "theta_logits": 0.8 * jax.random.normal(k[6], (DEGREE,)),
        "rho_coeffs": 0.5 * jax.random.normal(k[7], (RHO_DEGREE,)),
        "beta": jnp.stack([u(k[8], 0.05, 0.5), u(k[9], 5.0, 25.0)]),
        "sigma": jnp.stack([u(k[10], 0.005, 0.05), u(k[11], 5.0, 20.0)]),
        "pert_kind": jax.random.randint(k[12], (), 0, 3),  # 0 gaussian, 1 mixture, 2 uniform
        "pert_mu": u(k[13], -1.0, 1.0, (2,)),
        "pert_s": jnp.concatenate([jnp.sqrt(u(k[14], 0.3, 1.96, (1,))), u(k[15], 0.3, 1.2, (2,))]),
        "pert_u": jnp.stack([u(k[16], -0.5, 0.5), u(k[17], 0.5, 2.0)]),
    }


def _schedule(c, family: int):
    tau = c["tau"]
    if family == 0:
        return Interpolated(c["lam"], tau)
    if family == 1:
        return PolarBernstein(c["theta_logits"], c["rho_coeffs"], tau)
    if family == 2:
        return VPLinear(c["beta"][0], c["beta"][1], tau)
    return VEGeometric(c["sigma"][0], c["sigma"][1], tau)


def _start(c, path):
    r"""The perturbed start of configuration ``c`` (a [`Start`][jaxsa.relations.cdf_quadrature.Start]), scaled by $P_\tau$."""
    p_tau = path.marginal(path.tau)
    S = jnp.max(jnp.where(p_tau.weights > 0, p_tau.scales, 0.0))
    kind = c["pert_kind"]
    mix = kind == 1
    weights = jnp.where(mix, jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0]))
    # Gaussian: N(mu S, b² S²) with b = pert_s[0]; mixture: scales pert_s[1:] × S
    scales = S * jnp.where(mix, c["pert_s"][1:], jnp.stack([c["pert_s"][0], 1.0]))
    means = S * c["pert_mu"]
    centre, half = S * c["pert_u"][0], S * c["pert_u"][1]
    alpha = (kind == 2).astype(means.dtype)
    return Start(weights, means, scales, alpha, centre - half, centre + half)


def _path(c, family):
    data = GaussianMixture.unchecked(c["w"], c["mu"], c["s"])
    return DiffusionPath(_schedule(c, family), data)


def _evaluate(settings: Settings, family: int, vmap_size: int = 1):
    """Evaluator of a chunk whose configurations all use family ``family`` (0–3)."""

    def one(c):
        path = _path(c, family)
        rep = cdf_report(path, _start(c, path), settings)
        out = {k: getattr(rep, k) for k in RECORD_KEYS + STATUS_KEYS}
        return out | {f"{k}_err": rep.errors[k] for k in ERROR_KEYS}

    return map_over_devices(one, vmap_size)


def violations_of(rec: dict, rtol: float) -> list:
    """Names of the inequalities a record violates beyond ``rtol`` and its own error estimate
    (the rule of [`jaxsa.relations.violated`][jaxsa.relations.violated])."""
    errs = {k: rec.get(f"{k}_err", 0.0) for k in SCALE_OF}
    return violated(rec, errs, rtol)


def run_validation(n=10_000, out_dir="validate", seed=0, chunk_size=64, rtol=1e-6,
                   settings: Settings | None = None, progress=None, max_chunks=None,
                   vmap_size: int = 4) -> dict:
    """Check the inequalities on ``n`` random configurations; write ``validate.json``.

    Returns the summary: number of violations per inequality beyond ``rtol`` among converged
    records, how many records were not converged (after the adaptive second pass) or had a
    divergent χ², the distribution (quantiles) of the tightness ratios η/c₁, c₁/c₂ and
    c₂/(W₂²/τ) and of the reported relative errors, and the violating configurations (if
    any), with their parameters for investigation.

    Each chunk is one compiled program per schedule family, ``vmap_size`` configurations
    vectorised together on each device (see
    [`map_over_devices`][jaxsa.studies.sweep.map_over_devices]; results do not depend on it).
    """
    if n < 1 or chunk_size < 1 or vmap_size < 1:
        raise ValueError("validate: `n`, `chunk_size` and `vmap_size` must be >= 1.")
    settings = settings or sweep_settings()
    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    n_dev = jax.device_count()
    chunk_size = int(np.ceil(chunk_size / n_dev) * n_dev)
    sharding = NamedSharding(config_mesh(), PartitionSpec("configs"))
    example = jax.device_put(jax.vmap(random_config)(keys[:1].repeat(chunk_size, 0)), sharding)
    t0 = time.perf_counter()
    evaluators = {}
    compile_s = 0.0
    digest = (f"validate-{n}-{seed}-{chunk_size}-"
              f"{hashlib.sha256(repr(settings).encode()).hexdigest()[:12]}")

    def evaluator(f):
        nonlocal compile_s
        if f not in evaluators:
            t = time.perf_counter()
            evaluators[f] = _evaluate(settings, f, vmap_size).lower(example).compile()
            compile_s += time.perf_counter() - t
        return evaluators[f]

    def compute(i, lo, hi):
        kk = keys[lo:hi]
        pad = chunk_size - kk.shape[0]
        if pad:
            kk = jnp.concatenate([kk, jnp.repeat(kk[-1:], pad, axis=0)])
        cfg = jax.vmap(random_config)(kk)
        fam = i % len(FAMILY_NAMES)
        res = jax.block_until_ready(evaluator(fam)(jax.device_put(cfg, sharding)))
        res = {k: to_host(v)[: hi - lo] for k, v in res.items()}
        cfg = {k: np.asarray(v)[: hi - lo] for k, v in cfg.items()}
        recs = []
        for a in range(hi - lo):
            rec = {"index": lo + a, "family": FAMILY_NAMES[fam],
                   "config": {k: v[a].tolist() for k, v in cfg.items()}}
            rec.update({k: float(res[k][a]) for k in RECORD_KEYS})
            rec.update({f"{k}_err": float(res[f"{k}_err"][a]) for k in ERROR_KEYS})
            rec.update({k: bool(res[k][a]) for k in STATUS_KEYS})
            rec["refined"] = False
            if not rec["converged"]:  # second pass: adaptive, from twice the resolution
                c = {k: jnp.asarray(v[a]) for k, v in cfg.items()}
                path = _path(c, fam)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    rep = speed_accuracy(path, _start(c, path), settings.refined(2))
                rec.update(report_record(rep) | {"refined": True})
            recs.append(rec)
        return recs

    records, stats = run_chunks(n, chunk_size, compute, out_dir, digest, progress, max_chunks)
    if records is None:
        return {"complete": False}
    return _summarise(records, rtol, stats | {"compile_s": compile_s, "setup_s": time.perf_counter() - t0},
                      settings, out_dir)


def _summarise(records, rtol, stats, settings, out_dir):
    from jaxsa.results import provenance

    finite = [r for r in records if r["D0_finite"]
              and all(np.isfinite(r[k]) for k in Report.SCALARS)]
    converged = [r for r in finite if r["converged"]]
    viol = {s: [] for s in SCALE_OF}
    for r in converged:
        for s in violations_of(r, rtol):
            viol[s].append(r["index"])
    arr = lambda k, rs=converged: np.array([r[k] for r in rs])  # noqa: E731
    ratios = {
        "eta_over_c1": arr("eta") / arr("c1"),
        "c1_over_c2": arr("c1") / arr("c2"),
        "c2_over_ot_bound": arr("c2") / arr("ot_bound"),
    }
    rel_err = {k: arr(f"{k}_err") / np.maximum(np.abs(arr(k)), 1e-300)
               for k in ("eta", "c1", "c2", "D0", "W1_q_p", "W1_init")}
    qs = [0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0]
    quant = lambda v: dict(zip(map(str, qs), np.quantile(v, qs).tolist())) if len(v) else {}  # noqa: E731
    summary = {
        "complete": True,
        "n": len(records),
        "n_finite": len(finite),
        "n_converged": len(converged),
        "n_not_converged": len(finite) - len(converged),
        "n_divergent_chi2": sum(not r["D0_finite"] for r in records),
        "n_refined": sum(r["refined"] for r in records),
        "not_converged_indices": [r["index"] for r in finite if not r["converged"]][:50],
        "rtol": rtol,
        "violations": {s: len(v) for s, v in viol.items()},
        "violating_indices": {s: v[:50] for s, v in viol.items() if v},
        "min_relative_slack": {
            s: float(np.min([r[s] / abs(r[SCALE_OF[s]]) for r in converged])) if converged else None
            for s in SCALE_OF
        },
        "tightness_quantiles": {k: quant(v) for k, v in ratios.items()},
        "relative_error_quantiles": {k: quant(v) for k, v in rel_err.items()},
        "throughput": stats,
        "provenance": provenance(settings),
    }
    write_json_once(os.path.join(out_dir, "validate.json"), summary | {"ratios": {
        k: v.tolist() for k, v in ratios.items()}})
    summary["ratios"] = ratios
    return summary
