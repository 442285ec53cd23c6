"""Every script in examples/ runs to completion in its ``--fast`` mode (the docs' tutorials are
built from these scripts, so they must keep working), and a tutorial page shows its output."""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))
#: the marker of docs/_run_examples.py (the hook that runs a script when the site is built)
MARKER = re.compile(r"^<!--\s*run:\s*(examples/[\w-]+\.py)(?:[ \t]+--[\w-]+)*\s*-->[ \t]*$", re.M)


def test_examples_found():
    assert SCRIPTS, "no example scripts"
    for path in SCRIPTS:
        with open(path, encoding="utf-8") as f:
            assert "--fast" in f.read(), f"{os.path.basename(path)} must support --fast"


def test_tutorials_show_every_example():
    """Each script is run by a page's marker (its output and figures go on that page), and each
    marker names a script that exists."""
    named = set()
    for page in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True):
        with open(page, encoding="utf-8") as f:
            named |= set(MARKER.findall(f.read()))
    scripts = {os.path.relpath(p, ROOT).replace(os.sep, "/") for p in SCRIPTS}
    assert not scripts - named, f"no page shows the output of {sorted(scripts - named)}"
    assert not named - scripts, f"pages run scripts that do not exist: {sorted(named - scripts)}"


@pytest.mark.parametrize("path", SCRIPTS, ids=[os.path.basename(p) for p in SCRIPTS])
def test_example_runs_fast(path):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, path, "--fast"], capture_output=True, text=True,
                          timeout=600, cwd=ROOT, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip(), "an example prints its results"
