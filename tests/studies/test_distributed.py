"""Multi-process JAX (jax.distributed) on one machine: a sweep across two CPU processes ends
with the same outcome and exit code on both, gives the same records as a single-process run,
and resumes after one process is killed, without gaps or duplicates."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from jaxsa.studies.sweep import SweepSpec, run_sweep

SMALL = {"n_quantiles": 128, "n_gauss": 8, "fixed_steps": 8}
KEYS = ("eta", "c1", "c2", "D0", "W1_q_p", "slack_80")

# run_sweep in one process of a two-process run, set up as `jaxsa sweep` does; argv: config,
# out, port, process id, max_chunks
_API = textwrap.dedent("""
    import json, sys, types
    from jaxsa.cli import _enable_x64, _init_distributed
    from jaxsa.studies.sweep import load_spec, run_sweep
    cfg, out, port, pid, max_chunks = sys.argv[1:]
    _enable_x64()
    _init_distributed(types.SimpleNamespace(coordinator=f"127.0.0.1:{port}", num_processes=2,
                                            process_id=int(pid)))
    doc = run_sweep(load_spec(cfg), out, max_chunks=int(max_chunks))
    print("RESULT", json.dumps({"complete": doc["complete"], "n": len(doc.get("records", []))}))
""")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(cfg, out, port, i):
    return [sys.executable, "-m", "jaxsa.cli", "sweep", str(cfg), "--out", str(out),
            "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)]


def _start(argv_of):
    """Start the two processes ``argv_of(0)``, ``argv_of(1)``."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device each
    return [subprocess.Popen(argv_of(i), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env) for i in range(2)]


def _finish(procs):
    """[(exit code, stdout, stderr)] of both processes."""
    outs = []
    for p in procs:
        try:
            o, e = p.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        outs.append((p.returncode, o, e))
    return outs


def _write_spec(tmp_path, spec):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(spec.to_json()))
    return cfg


def _values(doc):
    return np.array([[r[k] for k in KEYS] for r in doc["records"]])


def _chunk_files(out):
    d = out / "chunks"
    return sorted(f for f in os.listdir(d) if f.startswith("chunk_")) if d.exists() else []


def test_two_process_sweep_matches_single_process(tmp_path):
    """The README's command on two processes: both exit 0 and report the same sweep."""
    spec = SweepSpec(family="interpolated", grid={"lam": [0.0, 0.3, 0.6, 1.0]},
                     perturbations=["mean", "mixture"], chunk_size=2, settings=SMALL)
    cfg = _write_spec(tmp_path, spec)
    out, port = tmp_path / "multi", _free_port()
    res = _finish(_start(lambda i: _cli(cfg, out, port, i)))
    for i, (rc, o, e) in enumerate(res):
        assert rc == 0, f"process {i} exited {rc}:\n{o}\n{e[-3000:]}"
        assert "sweep: 8 configurations (8 new) on 2 device(s)" in o, o
        assert ("wrote" if i == 0 else "process 0 wrote") + f" {out}/sweep.json" in o, o
    multi = json.loads((out / "sweep.json").read_text())
    assert multi["complete"] and multi["throughput"]["devices"] == 2
    single = run_sweep(spec, str(tmp_path / "single"))
    assert [r["index"] for r in multi["records"]] == list(range(8))
    assert [(r["params"], r["perturbation"]) for r in multi["records"]] == [
        (r["params"], r["perturbation"]) for r in single["records"]]
    np.testing.assert_allclose(_values(multi), _values(single), rtol=1e-12)


@pytest.mark.slow  # three two-process runs and a single-process one: ~40 s on 2 cores
def test_killed_two_process_sweep_resumes_without_gaps_or_duplicates(tmp_path):
    """Process 0 (the writer, and the coordinator) is killed once its first chunk is on disk:
    the other one fails too, nothing claims success; a partial re-run says incomplete on both
    processes; the README command then completes on both, with the single-process records."""
    n_lam, n_pert = 48, 2
    spec = SweepSpec(family="interpolated", grid={"lam": list(np.linspace(0, 1, n_lam))},
                     perturbations=["mean", "uniform"], chunk_size=2, settings=SMALL)
    n_chunks, per_chunk = n_lam // 2, 2 * n_pert  # 2 devices: chunks of 2 schedules
    cfg = _write_spec(tmp_path, spec)
    out = tmp_path / "killed"

    port = _free_port()
    procs = _start(lambda i: _cli(cfg, out, port, i))
    while not _chunk_files(out):  # synchronise on the first chunk written, not on a clock
        if any(p.poll() is not None for p in procs):
            pytest.fail(f"a process ended before the first chunk: {_finish(procs)}")
        time.sleep(0.005)
    procs[0].send_signal(signal.SIGKILL)
    (rc0, _, _), (rc1, o1, e1) = _finish(procs)
    assert rc0 == -signal.SIGKILL
    assert rc1 != 0 and "sweep.json" not in o1, (rc1, o1, e1[-2000:])  # no false success
    assert not (out / "sweep.json").exists()
    before = _chunk_files(out)
    assert 1 <= len(before) < n_chunks

    # a re-run cut short (one more chunk): incomplete, and both processes say so
    port = _free_port()
    res = _finish(_start(lambda i: [sys.executable, "-c", _API, str(cfg), str(out), str(port),
                                    str(i), "1"]))
    for i, (rc, o, e) in enumerate(res):
        assert rc == 0, f"process {i} exited {rc}:\n{o}\n{e[-3000:]}"
        assert 'RESULT {"complete": false, "n": 0}' in o, o
    assert len(_chunk_files(out)) == len(before) + 1
    assert not (out / "sweep.json").exists()

    # the same command again completes, on both processes, reusing every chunk on disk
    port = _free_port()
    res = _finish(_start(lambda i: _cli(cfg, out, port, i)))
    n_new = (n_chunks - len(before) - 1) * per_chunk
    for i, (rc, o, e) in enumerate(res):
        assert rc == 0, f"process {i} exited {rc}:\n{o}\n{e[-3000:]}"
        assert f"sweep: {n_lam * n_pert} configurations ({n_new} new)" in o, o
    resumed = json.loads((out / "sweep.json").read_text())
    assert resumed["complete"] and resumed["throughput"]["new_configurations"] == n_new
    assert [r["index"] for r in resumed["records"]] == list(range(n_lam * n_pert))
    single = run_sweep(spec, str(tmp_path / "single"))
    np.testing.assert_allclose(_values(resumed), _values(single), rtol=1e-12)
