"""Every script in examples/ runs to completion in its ``--fast`` mode (the docs' tutorials are
built from these scripts, so they must keep working)."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))


def test_examples_found():
    assert SCRIPTS, "no example scripts"
    for path in SCRIPTS:
        with open(path, encoding="utf-8") as f:
            assert "--fast" in f.read(), f"{os.path.basename(path)} must support --fast"


@pytest.mark.parametrize("path", SCRIPTS, ids=[os.path.basename(p) for p in SCRIPTS])
def test_example_runs_fast(path):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, path, "--fast"], capture_output=True, text=True,
                          timeout=600, cwd=ROOT, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), "an example prints its results"
