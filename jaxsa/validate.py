r"""The theorem at scale: every inequality of SPEC §4 on many random configurations.

Each configuration draws (with an explicit PRNG key, reproducible) 1D Gaussian-mixture data
(2 components: Dirichlet weights, means in [-1.5, 1.5], scales in [0.15, 0.8]), a schedule from
a family (alternating by chunk: :class:`~jaxsa.families.Interpolated` with λ ~ U[0, 1], or
:class:`~jaxsa.families.PolarBernstein` with random logits and ρ coefficients; both end at
:math:`P_\tau = \mathcal N(0, 1)`), and a perturbed start: a Gaussian
:math:`\mathcal N(\mu, s^2)` with μ ~ U[-1, 1] and s ~ U[0.6, 1.3] (so :math:`s^2 < 2` and
:math:`D_0` is finite), or a two-component mixture of such Gaussians. Configurations are
vmapped in chunks, written chunk by chunk (resumable, like sweeps), and every slack of
Eqs. 77, 80, 82 and 91 is compared with ``-rtol`` times the scale of its inequality.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxsa.densities import GaussianMixture
from jaxsa.families import Interpolated, PolarBernstein
from jaxsa.forward import DiffusionPath
from jaxsa.relations import Report, Settings, _speed_accuracy, quantile_nodes
from jax.sharding import NamedSharding, PartitionSpec

from jaxsa.sweep import (
    RECORD_KEYS,
    _atomic_json,
    _mesh,
    _to_host,
    map_over_devices,
    run_chunks,
    sweep_settings,
)

__all__ = ["random_config", "run_validation", "SCALE_OF"]

DEGREE, RHO_DEGREE = 6, 3

# slack -> the side of its inequality that sets the tolerance scale
SCALE_OF = {
    "slack_77": "entropy_bound",
    "slack_80": "c2",
    "slack_82_eta_c1": "c1",
    "slack_82_c1_c2": "c2",
    "slack_91_c2_length": "c2",
    "slack_91_length_ot": "length_bound",
}


def random_config(key):
    """One random configuration as a dict of arrays (vmappable over a batch of keys).

    The schedule family is not drawn here: chunk ``i`` uses family ``i % 2`` (0 interpolated,
    1 polar), so that a compiled evaluator never carries both branches."""
    k = jax.random.split(key, 10)
    u = lambda kk, lo, hi, shape=(): jax.random.uniform(kk, shape, minval=lo, maxval=hi)  # noqa: E731
    return {
        "w": jax.random.dirichlet(k[0], jnp.ones(2) * 2.0),
        "mu": u(k[1], -1.5, 1.5, (2,)),
        "s": u(k[2], 0.15, 0.8, (2,)),
        "lam": u(k[4], 0.0, 1.0),
        "theta_logits": 0.8 * jax.random.normal(k[5], (DEGREE,)),
        "rho_coeffs": 0.5 * jax.random.normal(k[6], (RHO_DEGREE,)),
        "pert_mixture": (jax.random.uniform(k[7]) < 0.5).astype(jnp.int32),
        "pert_mu": u(k[8], -1.0, 1.0, (2,)),
        "pert_s": u(k[9], 0.6, 1.3, (2,)),
    }


def _evaluate(settings: Settings, family: int, vmap_size: int = 1):
    """Evaluator of a chunk whose configurations all use family ``family`` (0 or 1)."""
    z, _ = quantile_nodes(settings.n_quantiles, settings.z_max)

    def one(c):
        data = GaussianMixture.unchecked(c["w"], c["mu"], c["s"])
        # a single Gaussian is the mixture with weights (1, 0): the same shapes in both cases
        pw = jnp.where(c["pert_mixture"] == 1, jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0]))
        pert = GaussianMixture.unchecked(pw, c["pert_mu"], c["pert_s"])
        zz = jnp.asarray(z, jnp.result_type(float))
        x = pert.normal_score_quantile(zz)
        start = (x, pert.log_density(x))

        def run(schedule):
            rep = _speed_accuracy(DiffusionPath(schedule, data), start, settings)
            return {k: getattr(rep, k) for k in RECORD_KEYS}

        if family == 0:
            return run(Interpolated(c["lam"]))
        return run(PolarBernstein(c["theta_logits"], c["rho_coeffs"]))

    return map_over_devices(one, vmap_size)


def violations_of(rec: dict, rtol: float) -> list:
    """Names of the inequalities a record violates beyond ``rtol`` (relative)."""
    return [s for s, scale in SCALE_OF.items() if rec[s] < -rtol * abs(rec[scale])]


def run_validation(n=10_000, out_dir="validate", seed=0, chunk_size=64, rtol=1e-6,
                   settings: Settings | None = None, progress=None, max_chunks=None) -> dict:
    """Check the inequalities on ``n`` random configurations; write ``validate.json``.

    Returns the summary: number of violations per inequality beyond ``rtol``, the
    distribution (quantiles) of the tightness ratios η/c₁, c₁/c₂ and c₂/(W₂²/τ), and the
    configurations that violate (if any), with their parameters for investigation.
    """
    if n < 1 or chunk_size < 1:
        raise ValueError("validate: `n` and `chunk_size` must be >= 1.")
    settings = settings or sweep_settings(n_quantiles=512, n_gauss=24, fixed_steps=16)
    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    n_dev = jax.device_count()
    chunk_size = int(np.ceil(chunk_size / n_dev) * n_dev)
    sharding = NamedSharding(_mesh(), PartitionSpec("configs"))
    example = jax.device_put(jax.vmap(random_config)(keys[:1].repeat(chunk_size, 0)), sharding)
    t0 = time.perf_counter()
    evaluators = [_evaluate(settings, f).lower(example).compile() for f in (0, 1)]
    compile_s = time.perf_counter() - t0
    digest = f"validate-{n}-{seed}-{chunk_size}-{hash(settings) & 0xFFFFFFFF:x}"

    def compute(i, lo, hi):
        kk = keys[lo:hi]
        pad = chunk_size - kk.shape[0]
        if pad:
            kk = jnp.concatenate([kk, jnp.repeat(kk[-1:], pad, axis=0)])
        cfg = jax.vmap(random_config)(kk)
        res = jax.block_until_ready(evaluators[i % 2](jax.device_put(cfg, sharding)))
        res = {k: _to_host(v)[: hi - lo] for k, v in res.items()}
        cfg = {k: np.asarray(v)[: hi - lo] for k, v in cfg.items()}
        recs = []
        for a in range(hi - lo):
            rec = {"index": lo + a, "family": ("interpolated", "polar")[i % 2],
                   "config": {k: v[a].tolist() for k, v in cfg.items()}}
            rec.update({k: float(res[k][a]) for k in RECORD_KEYS})
            recs.append(rec)
        return recs

    records, stats = run_chunks(n, chunk_size, compute, out_dir, digest, progress, max_chunks)
    if records is None:
        return {"complete": False}
    return _summarise(records, rtol, stats | {"compile_s": compile_s}, settings, out_dir)


def _summarise(records, rtol, stats, settings, out_dir):
    from jaxsa.cli import provenance

    finite = [r for r in records if all(np.isfinite(r[k]) for k in Report.SCALARS)]
    viol = {s: [] for s in SCALE_OF}
    for r in finite:
        for s in violations_of(r, rtol):
            viol[s].append(r["index"])
    arr = lambda k: np.array([r[k] for r in finite])  # noqa: E731
    ratios = {
        "eta_over_c1": arr("eta") / arr("c1"),
        "c1_over_c2": arr("c1") / arr("c2"),
        "c2_over_ot_bound": arr("c2") / arr("ot_bound"),
    }
    qs = [0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0]
    summary = {
        "complete": True,
        "n": len(records),
        "n_finite": len(finite),
        "rtol": rtol,
        "violations": {s: len(v) for s, v in viol.items()},
        "violating_indices": {s: v[:50] for s, v in viol.items() if v},
        "min_relative_slack": {
            s: float(np.min([r[s] / abs(r[SCALE_OF[s]]) for r in finite])) for s in SCALE_OF
        },
        "tightness_quantiles": {k: dict(zip(map(str, qs), np.quantile(v, qs).tolist()))
                                for k, v in ratios.items()},
        "throughput": stats,
        "provenance": provenance(settings),
    }
    _atomic_json(os.path.join(out_dir, "validate.json"), summary | {"ratios": {
        k: v.tolist() for k, v in ratios.items()}})
    summary["ratios"] = ratios
    return summary
