"""Sweeps: many (schedule, perturbation) configurations as one vmapped, sharded, resumable job.

A sweep is a grid (or list) of schedule parameters of one family × a list of perturbed starts,
on fixed 1D Gaussian-mixture data. Every schedule's starts travel in one ODE system (as in
[`jaxsa.speed_accuracy_from_start`][jaxsa.relations.speed_accuracy_from_start]), schedules are ``jax.vmap``-ed in chunks of
``chunk_size``, and each chunk's parameter axis is sharded over all devices with a
``jax.sharding.Mesh`` (one axis, ``"configs"``): the same code runs on one CPU, on several
(virtual) devices, or across hosts after ``jax.distributed.initialize()``.

Across hosts: call ``jax.distributed.initialize(...)`` first (``jaxsa sweep --coordinator
HOST:PORT --num-processes N --process-id I``, once per process). The mesh then spans every
process's devices, each process computes its shard, results are gathered with
``multihost_utils.process_allgather``, and process 0 alone writes the files. Process 0's view
of ``OUT`` is the one that counts: it tells the others which chunks are already done (so every
process runs the same chunks, and the same collectives), and when the chunks are finished it
sends them its verdict (complete or not) and the assembled records; the last step is a
barrier after ``sweep.json`` is written. So every process returns the same document and
``jaxsa sweep`` ends with the same message and exit code on every process, whether or not
``OUT`` is a shared folder (it only needs to persist on process 0's host to resume). On CPU
this needs ``jax_cpu_collectives_implementation = "gloo"`` (set by the CLI); two processes on
one machine are tested in ``tests/studies/test_distributed.py``.

Nothing is lost when a run is interrupted: each finished chunk is written atomically to
``OUT/chunks/chunk_XXXXXX.json`` (temporary file, then ``os.replace``) tagged with a hash of the
sweep's configuration. A re-run of the same command skips the chunks already on disk and the
final ``OUT/sweep.json`` is the ordered union of the chunks, without gaps or duplicates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxsa.densities import GaussianMixture, Uniform, gaussian, paper_data, paper_perturbations
from jaxsa.schedules.families import Interpolated, PolarBernstein
from jaxsa.solvers.flow import ODESettings
from jaxsa.processes.diffusion import DiffusionPath
from jaxsa.relations import (
    Report,
    Settings,
    quantile_report,
    cdf_report,
    perturbation_start,
    speed_accuracy,
)
from jaxsa.schedules.standard import CondOT, Cosine, VEGeometric, VPLinear, check_schedule

__all__ = [
    "FAMILIES",
    "SweepSpec",
    "sweep_settings",
    "load_spec",
    "make_evaluator",
    "run_sweep",
    "run_chunks",
    "map_over_devices",
    "sweep_points",
    "config_mesh",
    "to_host",
    "write_json_once",
    "report_record",
]

# family name -> (constructor from a dict of parameter arrays, parameter names)
FAMILIES = {
    "interpolated": (lambda p, tau: Interpolated(p["lam"], tau), ("lam",)),
    "cosine": (lambda p, tau: Cosine(tau), ()),
    "cond-ot": (lambda p, tau: CondOT(tau), ()),
    "vp-linear": (lambda p, tau: VPLinear(p["beta_min"], p["beta_max"], tau), ("beta_min", "beta_max")),
    "ve-geometric": (lambda p, tau: VEGeometric(p["sigma_min"], p["sigma_max"], tau),
                     ("sigma_min", "sigma_max")),
    "polar": (lambda p, tau: PolarBernstein(p["theta_logits"], p["rho_coeffs"], tau),
              ("theta_logits", "rho_coeffs")),
}

RECORD_KEYS = Report.SCALARS + Report.SLACKS + ("chi2_residual", "forward_endpoint_error")
ERROR_KEYS = Report.SCALARS + Report.SLACKS  # each record also carries "<key>_err"
STATUS_KEYS = ("converged", "D0_finite", "ode_success")


def sweep_settings(n_quantiles=1024, n_gauss=32, fixed_steps=8, method="cdf", **kw) -> Settings:
    """Settings for sweeps: the default accuracy of the quantities, no snapshots or series.

    Sweeps default to the CDF method ([`jaxsa.relations.cdf_quadrature`][jaxsa.relations.cdf_quadrature]) at the default resolution
    of [`jaxsa.Settings`][jaxsa.relations.Settings]; every record carries its error estimates and ``converged``,
    and records that miss ``rtol`` are recomputed adaptively in a second pass (see
    [`run_sweep`][jaxsa.studies.sweep.run_sweep]). ``method="flow_map"`` (8 equal Dopri8 steps, ``fixed_steps``) and
    ``method="particles"`` select the quantile methods, whose error estimate covers the
    quadrature over levels only.
    """
    base = dict(n_quantiles=n_quantiles, n_gauss=n_gauss, n_time=2, chi2_stride=1,
                snapshots=(0.0,), n_grid=8, method=method,
                ode=ODESettings(fixed_steps=fixed_steps))
    base.update(kw)
    return Settings(**base)


def report_record(rep) -> dict:
    """The scalars, slacks, their ``*_err`` estimates and the statuses of a (concrete,
    unbatched) [`Report`][jaxsa.relations.Report], as plain Python values."""
    rec = {k: float(getattr(rep, k)) for k in RECORD_KEYS}
    rec.update({f"{k}_err": float(rep.errors[k]) for k in ERROR_KEYS})
    rec.update({k: bool(getattr(rep, k)) for k in STATUS_KEYS})
    return rec


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A sweep: ``family`` with parameter ``grid`` (name -> list of values; the Cartesian
    product is taken, or pass ``points`` as a list of dicts), ``perturbations`` (names of
    the paper's Table I or dicts ``{"type": "gaussian", "mean", "std"}`` /
    ``{"type": "mixture", "weights", "means", "scales"}`` / ``{"type": "uniform", "low",
    "high"}``), ``data`` (``"paper"`` or a mixture dict), ``tau``, ``chunk_size``, and
    ``settings`` overrides (``n_quantiles``, ``n_gauss``, ``fixed_steps``, ``method``,
    ``map_nodes``); ``vmap_size``
    schedules are vmapped together inside the per-device scan (see [`map_over_devices`][jaxsa.studies.sweep.map_over_devices];
    the default ``None`` takes 4 for the CDF method, 1.6x faster than one at a time, and 1 for
    the quantile methods, whose adaptive solves run best one at a time)."""

    family: str = "interpolated"
    grid: dict = dataclasses.field(default_factory=dict)
    points: list = dataclasses.field(default_factory=list)
    perturbations: list = dataclasses.field(default_factory=lambda: ["mean", "variance", "mixture", "uniform"])
    data: object = "paper"
    tau: float = 1.0
    chunk_size: int = 16
    vmap_size: int | None = None
    settings: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]


def load_spec(path: str) -> SweepSpec:
    """Read a sweep specification (JSON) and check it (ValueError naming the bad field)."""
    with open(path) as f:
        raw = json.load(f)
    unknown = set(raw) - {f.name for f in dataclasses.fields(SweepSpec)}
    if unknown:
        raise ValueError(f"sweep config {path}: unknown fields {sorted(unknown)}")
    return _validated(SweepSpec(**raw))


def _validated(spec: SweepSpec) -> SweepSpec:
    if spec.family not in FAMILIES:
        raise ValueError(f"sweep: `family` must be one of {sorted(FAMILIES)}, got {spec.family!r}.")
    names = FAMILIES[spec.family][1]
    pts = sweep_points(spec)
    for p in pts:
        if set(p) != set(names):
            raise ValueError(f"sweep: family {spec.family!r} takes parameters {list(names)}; got {sorted(p)}.")
    if not pts:
        raise ValueError("sweep: no schedule parameters (`grid` or `points` is empty).")
    if not spec.perturbations:
        raise ValueError("sweep: `perturbations` is empty.")
    if spec.chunk_size < 1:
        raise ValueError(f"sweep: `chunk_size` must be >= 1, got {spec.chunk_size}.")
    if spec.vmap_size is not None and spec.vmap_size < 1:
        raise ValueError(f"sweep: `vmap_size` must be >= 1 (or None), got {spec.vmap_size}.")
    if not spec.tau > 0:
        raise ValueError(f"sweep: `tau` must be > 0, got {spec.tau}.")
    return spec


def sweep_points(spec: SweepSpec) -> list:
    """The parameter points of a sweep: ``spec.points``, or the Cartesian product of
    ``spec.grid`` over the family's parameter names (a list of dicts)."""
    if spec.points:
        return [dict(p) for p in spec.points]
    names = FAMILIES[spec.family][1]
    if not names:
        return [{}]
    missing = [n for n in names if n not in spec.grid]
    if missing:
        raise ValueError(f"sweep: `grid` lacks parameters {missing} of family {spec.family!r}.")
    values = [spec.grid[n] for n in names]
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def _data(spec):
    if spec.data == "paper":
        return paper_data()
    d = spec.data
    return GaussianMixture(d["weights"], d["means"], d["scales"])


def _perturbation(p):
    if isinstance(p, str):
        table = paper_perturbations()
        if p not in table:
            raise ValueError(f"sweep: unknown perturbation {p!r}; named ones are {sorted(table)}.")
        return p, table[p]
    kind = p.get("type")
    if kind == "gaussian":
        return p.get("name", f"N({p['mean']},{p['std']}^2)"), gaussian(p["mean"], p["std"])
    if kind == "mixture":
        return p.get("name", "mixture"), GaussianMixture(p["weights"], p["means"], p["scales"])
    if kind == "uniform":
        return p.get("name", f"U[{p['low']},{p['high']}]"), Uniform(p["low"], p["high"])
    raise ValueError(f"sweep: perturbation type must be gaussian, mixture or uniform; got {p!r}.")


def map_over_devices(fn, vmap_size: int = 1):
    """``params -> fn`` mapped over a leading axis, sharded across all devices.

    The leading axis of every leaf is split over a one-axis device mesh (``"configs"``) with
    `jax.shard_map`; on each device the local slice is processed by
    `jax.lax.map` in batches of ``vmap_size`` (``vmap_size = 1``: one at a time). An
    adaptive diffrax solve under ``vmap`` batches its while-loop predicate and then selects
    over the whole state and save buffer at every step; scanning over configurations avoids
    that, and ``vmap_size > 1`` trades it for wider vector work. Results do not depend on the
    number of devices.
    """
    mesh = config_mesh()
    spec = PartitionSpec("configs")

    def local(params):
        return jax.lax.map(fn, params, batch_size=vmap_size if vmap_size > 1 else None)

    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False))


def make_evaluator(family: str, data, perturbations, settings: Settings, tau: float = 1.0,
                   vmap_size: int = 1):
    """A jitted function ``params -> dict of (batch, n_perturbations) arrays`` for one family.

    ``params`` is a dict of arrays with a leading batch axis (one entry per schedule), whose
    length is a multiple of the device count. ``perturbations`` is a list of 1D densities
    (CDF method: each is its own program inside the one compiled function) or, for the
    quantile methods, stacked [`jaxsa.perturbation_start`][jaxsa.relations.perturbation_start] arrays
    ``(n_perturbations, n_quantiles)``, all solved in one ODE system per schedule. Keys:
    `RECORD_KEYS`, ``<key>_err`` for `ERROR_KEYS` and `STATUS_KEYS`.
    """
    build = FAMILIES[family][0]

    def fields(rep):
        out = {k: getattr(rep, k) for k in RECORD_KEYS + STATUS_KEYS}
        return out | {f"{k}_err": rep.errors[k] for k in ERROR_KEYS}

    def one(p):
        path = DiffusionPath(build(p, tau), data)
        if settings.method == "cdf":
            reps = [fields(cdf_report(path, d, settings)) for d in perturbations]
            return {k: jnp.stack([r[k] for r in reps]) for k in reps[0]}
        return fields(quantile_report(path, perturbations, settings))

    return map_over_devices(one, vmap_size)


def to_host(x):
    """A (possibly multi-process) sharded array as one numpy array on every process."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def config_mesh():
    """A one-axis mesh ``("configs",)`` over every device (of every process): configurations
    are sharded along it."""
    devices = np.asarray(jax.devices())
    return Mesh(devices, ("configs",))


def _chunk_path(out_dir, i):
    return os.path.join(out_dir, "chunks", f"chunk_{i:06d}.json")


def write_json_once(path, obj):
    """Atomic JSON write; in a multi-process run only process 0 writes (all compute)."""
    from jaxsa.results import write_json

    if jax.process_index() == 0:
        write_json(path, obj)


def _from_writer(obj):
    """Process 0's JSON-able ``obj``, on every process (the others' ``obj`` is ignored).

    A collective: every process must call it, and none returns before process 0 has called
    it, so it is also a barrier behind whatever process 0 did before (writing chunks). One
    process: ``obj`` itself."""
    if jax.process_count() == 1:
        return obj
    from jax.experimental import multihost_utils

    writer = jax.process_index() == 0
    data = json.dumps(obj, allow_nan=True).encode() if writer else b""
    # the length in base 2**30 (int32 digits: no overflow, with or without x64)
    hi, lo = multihost_utils.broadcast_one_to_all(np.array(divmod(len(data), 2**30), np.int32))
    n = int(hi) * 2**30 + int(lo)
    buf = np.frombuffer(data, np.uint8) if writer else np.zeros(n, np.uint8)
    buf = multihost_utils.broadcast_one_to_all(buf)
    return obj if writer else json.loads(np.asarray(buf, np.uint8).tobytes())


def _barrier(name):
    """Wait until every process of a multi-process run gets here (no-op for one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def run_chunks(n_items, chunk, compute, out_dir, digest, progress=None, max_chunks=None):
    """Generic resumable loop: ``compute(i, lo, hi) -> list of records`` for chunk ``i``
    (items ``lo:hi``), each chunk written atomically to ``out_dir/chunks``; chunks already on
    disk with the same ``digest`` are skipped. Returns ``(records or None, stats)``: the
    ordered union of all chunks once every chunk exists, else ``None``.

    ``progress(n)`` is called with the number of configurations finished (including those
    found on disk at the start).

    Multi-process: ``compute`` is collective and process 0 alone writes. Process 0 decides
    which chunks are done (its view of ``out_dir``, sent to all: every process computes the
    same chunks), and after the loop it sends every process its verdict and records, so the
    others wait for its last write and all return the same ``(records or None)``.
    """
    n_chunks = int(np.ceil(n_items / chunk))
    os.makedirs(os.path.join(out_dir, "chunks"), exist_ok=True)
    done, n_found = [], 0
    if jax.process_index() == 0:
        done = [i for i in range(n_chunks) if _valid_chunk(_chunk_path(out_dir, i), digest)]
        n_found = sum(_n_records(_chunk_path(out_dir, i)) for i in done)
    done, n_found = _from_writer([done, n_found])
    done = set(done)
    new, t_compute, n_computed = 0, 0.0, 0
    if progress is not None and done:
        progress(n_found)
    for i in range(n_chunks):
        if i in done:
            continue
        if max_chunks is not None and new >= max_chunks:
            break
        t0 = time.perf_counter()
        records = compute(i, i * chunk, min((i + 1) * chunk, n_items))
        t_compute += time.perf_counter() - t0
        write_json_once(_chunk_path(out_dir, i), {"digest": digest, "chunk": i, "records": records})
        new += 1
        n_computed += len(records)
        if progress is not None:
            progress(len(records))
    stats = {"new_configurations": n_computed, "compute_s": t_compute,
             "configs_per_s": (n_computed / t_compute) if t_compute > 0 else None}
    records = None
    if jax.process_index() == 0 and all(_valid_chunk(_chunk_path(out_dir, i), digest)
                                        for i in range(n_chunks)):
        records = []
        for i in range(n_chunks):
            with open(_chunk_path(out_dir, i)) as f:
                records.extend(json.load(f)["records"])
    # the others wait here for process 0's writes, then take its verdict and records
    return _from_writer(records), stats


def _n_records(path):
    with open(path) as f:
        return len(json.load(f)["records"])


def run_sweep(spec: SweepSpec, out_dir: str, progress=None, max_chunks=None) -> dict:
    """Run (or resume) a sweep and write ``out_dir/sweep.json``.

    Args:
        spec: the [`SweepSpec`][jaxsa.studies.sweep.SweepSpec].
        out_dir: output folder; ``chunks/`` inside holds the finished chunks.
        progress: optional ``progress(n_new_configurations)`` callback.
        max_chunks: stop after computing this many new chunks (used to test resumption).

    Returns:
        the document written to ``sweep.json`` once every chunk exists (``complete`` true),
        with ``records`` (one per schedule parameter × perturbation, in grid order),
        ``throughput`` and ``provenance``; otherwise ``complete`` is false.
    """
    spec = _validated(spec)
    settings = sweep_settings(**spec.settings)
    data = _data(spec)
    named = [_perturbation(p) for p in spec.perturbations]
    if settings.method == "cdf":
        starts = [d for _, d in named]
    else:
        starts = jax.tree.map(lambda *a: jnp.stack(a), *[perturbation_start(d, settings) for _, d in named])
    points = sweep_points(spec)
    n_dev = jax.device_count()
    chunk = int(np.ceil(spec.chunk_size / n_dev) * n_dev)  # a multiple of the device count

    # every schedule is checked (Eq. 24, end conditions) before any heavy computation
    build, names = FAMILIES[spec.family]
    for i, p in enumerate(points):
        try:
            check_schedule(build({k: jnp.asarray(v, jnp.result_type(float)) for k, v in p.items()}, spec.tau))
        except ValueError as e:
            raise ValueError(f"sweep: schedule parameters #{i} {p}: {e}") from None

    vmap_size = spec.vmap_size or (4 if settings.method == "cdf" else 1)
    evaluate = make_evaluator(spec.family, data, starts, settings, spec.tau, vmap_size)
    sharding = NamedSharding(config_mesh(), PartitionSpec("configs"))

    def batch(pts):
        padded = pts + [pts[-1]] * (chunk - len(pts))  # pad the last chunk; results dropped
        if names:
            params = {n: np.stack([np.asarray(p[n], dtype=np.float64) for p in padded]) for n in names}
        else:
            params = {"_": np.zeros(chunk)}
        return jax.device_put(params, sharding)

    t0 = time.perf_counter()
    compiled = evaluate.lower(batch(points[:chunk])).compile()  # ahead of time: timed apart
    compile_s = time.perf_counter() - t0

    def compute(i, lo, hi):
        pts = points[lo:hi]
        res = jax.block_until_ready(compiled(batch(pts)))
        res = {k: to_host(v)[: len(pts)] for k, v in res.items()}
        records = []
        for a, p in enumerate(pts):
            for b, (pname, _) in enumerate(named):
                rec = {"index": (lo + a) * len(named) + b,
                       "params": {k: np.asarray(v).tolist() for k, v in p.items()},
                       "perturbation": pname}
                rec.update({k: float(res[k][a, b]) for k in RECORD_KEYS})
                rec.update({f"{k}_err": float(res[f"{k}_err"][a, b]) for k in ERROR_KEYS})
                rec.update({k: bool(res[k][a, b]) for k in STATUS_KEYS})
                rec["refined"] = False
                if settings.method == "cdf" and not rec["converged"]:
                    # second pass: this configuration alone, refined until it meets rtol
                    rec.update(_refined_record(build(_as_arrays(p), spec.tau), data,
                                               named[b][1], settings))
                records.append(rec)
        return records

    records, stats = run_chunks(len(points), chunk, compute, out_dir, spec.digest(),
                                progress, max_chunks)
    doc = {"spec": spec.to_json(), "complete": records is not None,
           "n_configurations": len(points) * len(named)}
    if records is not None:
        from jaxsa.results import provenance

        doc["records"] = records
        doc["throughput"] = stats | {"compile_s": compile_s, "devices": n_dev, "chunk_size": chunk,
                                     "vmap_size": vmap_size}
        doc["provenance"] = provenance(settings)
        write_json_once(os.path.join(out_dir, "sweep.json"), doc)
        _barrier("jaxsa-sweep-written")  # no process reports success before the file exists
    return doc


def _as_arrays(p):
    return {k: jnp.asarray(v, jnp.result_type(float)) for k, v in p.items()} or {"_": jnp.zeros(())}


def _refined_record(schedule, data, perturbation, settings) -> dict:
    """A record recomputed by [`jaxsa.speed_accuracy`][jaxsa.relations.speed_accuracy] from twice the resolution, refined
    further up to ``settings.max_refine`` times until it meets ``settings.rtol``."""
    import warnings

    path = DiffusionPath(schedule, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = speed_accuracy(path, perturbation, settings.refined(2))
    return report_record(rep) | {"refined": True}


def _valid_chunk(path, digest) -> bool:
    if not os.path.exists(path):
        return False
    try:
        with open(path) as f:
            return json.load(f).get("digest") == digest
    except (OSError, ValueError):
        return False
