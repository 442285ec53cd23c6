"""Multi-process JAX (jax.distributed) on one machine: a sweep across two CPU processes
gives the same records as a single-process run."""

import json
import socket
import subprocess
import sys

import numpy as np
import pytest

from jaxsa.sweep import SweepSpec, run_sweep

SMALL = {"n_quantiles": 128, "n_gauss": 8, "fixed_steps": 8}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two coordinated processes, each compiling: ~45 s
def test_two_process_sweep_matches_single_process(tmp_path):
    spec = SweepSpec(family="interpolated", grid={"lam": [0.0, 0.3, 0.6, 1.0]},
                     perturbations=["mean", "mixture"], chunk_size=2, settings=SMALL)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(spec.to_json()))
    out = tmp_path / "multi"
    port = _free_port()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "jaxsa.cli", "sweep", str(cfg), "--out", str(out),
         "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e[-3000:]
    multi = json.loads((out / "sweep.json").read_text())
    assert multi["throughput"]["devices"] == 2
    single = run_sweep(spec, str(tmp_path / "single"))
    keys = ("eta", "c1", "c2", "D0")
    a = np.array([[r[k] for k in keys] for r in multi["records"]])
    b = np.array([[r[k] for k in keys] for r in single["records"]])
    np.testing.assert_allclose(a, b, rtol=1e-12)
