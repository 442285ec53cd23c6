"""The CLI's persistent compilation cache and ``--version`` (``jaxsa.cli``).

* ``jaxsa --version`` prints the installed package's version.
* Where the cache lives: ``$JAXSA_CACHE/jax``, else ``$XDG_CACHE_HOME/jaxsa/jax``, else
  ``~/.cache/jaxsa/jax`` (unit tests of `compilation_cache_dir`, no subprocess).
* A real ``jaxsa sweep`` (the cheapest CLI command that compiles: one configuration, one
  perturbation, tiny quadratures) fills ``$XDG_CACHE_HOME/jaxsa/jax`` and records that folder as
  the provenance's ``compilation_cache``; a second run reads its programs from there.
* ``JAXSA_NO_CACHE=1``, ``--no-cache`` before or after the command, and ``jaxsa benchmark``
  leave the cache off (nothing written, provenance ``null``); an unwritable cache folder turns
  it off with a note on stderr and the command still succeeds. These run the real `cli.main`
  (parser, environment, cache set-up, provenance, atomic JSON, results page) in a subprocess,
  with the figure computation replaced by one small jitted function (``_DRIVER``), so that each
  costs an import of JAX rather than a full compile.

The cache is process-global JAX configuration (and JAX initialises it once per process), so
everything that turns it on runs in a subprocess; in-process tests replace
`enable_compilation_cache` by a recorder. conftest.py sets ``JAXSA_NO_CACHE=1`` for the whole
session; every environment built here removes it (and ``JAXSA_CACHE``, ``XDG_CACHE_HOME``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

import pytest

SPEC = {"family": "interpolated", "grid": {"lam": [0.5]}, "perturbations": ["mean"],
        "chunk_size": 1, "settings": {"n_quantiles": 32, "n_gauss": 4, "fixed_steps": 4}}

#: `cli.main` with `reproduce fig4` replaced by one jitted function and a JSON with provenance
_DRIVER = r"""
import os, sys
import jax, jax.numpy as jnp
from jaxsa import cli

def fig4(out_dir, settings):
    y = jax.jit(lambda x: jnp.sin(x) * 3.0 + jnp.cos(x))(jnp.arange(7.0))  # one compilation
    cli.write_json(os.path.join(out_dir, "fig4.json"),
                   {"provenance": cli.provenance(settings), "records": [], "y": y.tolist()})
    return {}

def benchmark(args):
    cli.write_json(os.path.join(args.out, "benchmark_fig4.json"), {"provenance": cli.provenance()})
    return 0

cli.FIGURES = {"fig4": fig4}
cli._cmd_benchmark = benchmark
sys.exit(cli.main(sys.argv[1:]))
"""


def _env(tmp_path, **extra):
    """This environment without the cache variables and JAX_ENABLE_X64 (float64 is the CLI's
    business), with ``XDG_CACHE_HOME=tmp_path/xdg``, plus ``extra``."""
    drop = {"JAX_ENABLE_X64", "JAXSA_NO_CACHE", "JAXSA_CACHE", "XDG_CACHE_HOME"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(MPLBACKEND="Agg", XDG_CACHE_HOME=str(tmp_path / "xdg"), **extra)
    return env


def _run(cmd, env, timeout=600):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _jaxsa():
    """The installed ``jaxsa`` script (it exits with `main`'s return code), else ``-m jaxsa``.

    Not ``python -m jaxsa.cli``: there the CLI module runs as ``__main__``, a second copy of
    ``jaxsa.cli`` is imported by ``jaxsa.studies.sweep`` for its provenance, and that copy never saw
    the cache being set up."""
    script = os.path.join(os.path.dirname(sys.executable), "jaxsa")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "jaxsa"]


def _driver(tmp_path, *args, **env):
    """Run ``_DRIVER ARGS`` (``reproduce fig4 --out tmp_path/out`` unless ``args`` names the
    command); return (process, provenance written, the folder JAX caches in by default)."""
    out = tmp_path / "out"
    args = args or ("reproduce", "fig4", "--out", str(out))
    proc = _run([sys.executable, "-c", _DRIVER, *args], _env(tmp_path, **env))
    name = "benchmark_fig4.json" if "benchmark" in args else "fig4.json"
    doc = json.loads((out / name).read_text())
    return proc, doc["provenance"], tmp_path / "xdg" / "jaxsa"


def _files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder)
                  for d, _, fs in os.walk(folder) for f in fs)


# --------------------------------------------------------------------------- --version
def test_version_flag_prints_the_installed_version():
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    proc = subprocess.run([sys.executable, "-m", "jaxsa", "--version"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == f"jaxsa {importlib.metadata.version('jaxsa')}\n"


def test_version_helper_is_the_package_metadata():
    from jaxsa import __version__
    from jaxsa.cli import _version

    assert _version() == importlib.metadata.version("jaxsa") == __version__


# --------------------------------------------------------------------------- where the cache is
def test_cache_dir_precedence(tmp_path, monkeypatch):
    from jaxsa.cli import compilation_cache_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("JAXSA_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert compilation_cache_dir() == str(tmp_path / "home" / ".cache" / "jaxsa" / "jax")
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty: as if unset
    assert compilation_cache_dir() == str(tmp_path / "home" / ".cache" / "jaxsa" / "jax")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compilation_cache_dir() == str(tmp_path / "xdg" / "jaxsa" / "jax")
    # JAXSA_CACHE wins over XDG_CACHE_HOME (its programs go to a "jax" folder inside it)
    monkeypatch.setenv("JAXSA_CACHE", str(tmp_path / "mine"))
    assert compilation_cache_dir() == str(tmp_path / "mine" / "jax")
    monkeypatch.setenv("JAXSA_CACHE", "")  # empty: as if unset
    assert compilation_cache_dir() == str(tmp_path / "xdg" / "jaxsa" / "jax")


@pytest.mark.parametrize("value, disabled", [
    (None, False), ("", False), ("0", False), ("false", False), (" No ", False), ("FALSE", False),
    ("1", True), ("yes", True), ("true", True), ("on", True),
])
def test_cache_disabled_values(monkeypatch, value, disabled):
    from jaxsa.cli import cache_disabled

    if value is None:
        monkeypatch.delenv("JAXSA_NO_CACHE", raising=False)
    else:
        monkeypatch.setenv("JAXSA_NO_CACHE", value)
    assert cache_disabled() is disabled


def test_unwritable_cache_dir_is_a_note_not_an_error(tmp_path, capsys):
    """A path under a regular file cannot be created: None, a note, and JAX left alone."""
    import jax

    from jaxsa.cli import enable_compilation_cache

    (tmp_path / "file").write_text("")
    before = jax.config.jax_compilation_cache_dir
    assert enable_compilation_cache(str(tmp_path / "file" / "jax")) is None
    err = capsys.readouterr().err
    assert err.startswith("jaxsa: compilation cache off (") and str(tmp_path / "file") in err
    assert jax.config.jax_compilation_cache_dir == before
    assert not (tmp_path / "file" / "jax").exists()


# --------------------------------------------------------------------------- main() decides
@pytest.mark.parametrize("argv, env, enabled", [
    (["sweep", "c.json", "--out", "o"], {}, True),
    (["--no-cache", "sweep", "c.json", "--out", "o"], {}, False),
    (["sweep", "c.json", "--out", "o", "--no-cache"], {}, False),
    (["sweep", "c.json", "--out", "o"], {"JAXSA_NO_CACHE": "1"}, False),
    (["sweep", "c.json", "--out", "o"], {"JAXSA_NO_CACHE": "0"}, True),
    (["benchmark", "--repeats", "1"], {}, False),  # benchmark times the compiler: never cached
], ids=["default", "flag-before", "flag-after", "env-1", "env-0", "benchmark"])
def test_main_turns_the_cache_on_only_when_asked(monkeypatch, argv, env, enabled):
    """`main` calls `enable_compilation_cache` (here a recorder) before the command runs, and
    the provenance written by the command reports what it returned."""
    from jaxsa import cli

    from jaxsa import results

    monkeypatch.setattr(results, "_compilation_cache", None)  # restored after the test
    monkeypatch.delenv("JAXSA_NO_CACHE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    calls, seen = [], []
    monkeypatch.setattr(cli, "enable_compilation_cache", lambda: calls.append(1) or "/cache/jax")

    def command(args):
        seen.append(cli.provenance()["compilation_cache"])
        return 0

    # the parser binds the command functions when `main` builds it: replace them first
    monkeypatch.setattr(cli, "_cmd_sweep", command)
    monkeypatch.setattr(cli, "_cmd_benchmark", command)
    assert cli.main(argv) == 0
    assert calls == ([1] if enabled else [])
    assert seen == ["/cache/jax" if enabled else None]


# --------------------------------------------------------------------------- the real cache
@pytest.fixture(scope="module")
def sweep_runs(tmp_path_factory):
    """``jaxsa sweep`` twice with ``XDG_CACHE_HOME`` set: a cold run, then a warm one."""
    tmp = tmp_path_factory.mktemp("cache")
    cfg = tmp / "spec.json"
    cfg.write_text(json.dumps(SPEC))
    env = _env(tmp)
    runs = []
    for name in ("cold", "warm"):
        proc = _run([*_jaxsa(), "sweep", str(cfg), "--out", str(tmp / name)], env)
        runs.append((proc, json.loads((tmp / name / "sweep.json").read_text())))
    return tmp, runs


def test_sweep_fills_the_xdg_cache_and_records_it(sweep_runs):
    tmp, ((_, cold), (_, warm)) = sweep_runs
    folder = tmp / "xdg" / "jaxsa" / "jax"
    files = _files(folder)
    assert len(files) > 5 and all(f.endswith("-cache") for f in files), files
    assert all(os.path.getsize(folder / f) > 0 for f in files)
    assert _files(tmp / "xdg") == [os.path.join("jaxsa", "jax", f) for f in files]  # only there
    for doc in (cold, warm):
        assert doc["complete"] and doc["provenance"]["compilation_cache"] == str(folder)


def test_second_run_reads_the_cache(sweep_runs):
    """The warm run loads the sweep's program instead of compiling it, and gets the same numbers."""
    _, ((_, cold), (_, warm)) = sweep_runs
    assert warm["throughput"]["compile_s"] < 0.5 * cold["throughput"]["compile_s"], (
        cold["throughput"]["compile_s"], warm["throughput"]["compile_s"])
    keys = ("eta", "c1", "c2", "D0")
    assert [[r[k] for k in keys] for r in warm["records"]] == \
        [[r[k] for k in keys] for r in cold["records"]]


def test_driver_uses_the_cache(tmp_path):
    """The control for the tests below: the same driver, cache on, does write the cache."""
    proc, prov, cache = _driver(tmp_path)
    assert prov["compilation_cache"] == str(cache / "jax")
    assert any(f.startswith("jit_") for f in _files(cache / "jax"))
    assert "compilation cache off" not in proc.stderr


@pytest.mark.parametrize("args, env", [
    ((), {"JAXSA_NO_CACHE": "1"}),
    (("--no-cache", "reproduce", "fig4"), {}),
    (("reproduce", "fig4", "--no-cache"), {}),
], ids=["JAXSA_NO_CACHE=1", "--no-cache-before", "--no-cache-after"])
def test_no_cache_writes_nothing(tmp_path, args, env):
    if args:
        args = (*args, "--out", str(tmp_path / "out"))
    _, prov, cache = _driver(tmp_path, *args, **env)
    assert prov["compilation_cache"] is None
    assert not (tmp_path / "xdg").exists() or _files(tmp_path / "xdg") == []
    assert not cache.exists()


def test_benchmark_never_uses_the_cache(tmp_path):
    _, prov, cache = _driver(tmp_path, "benchmark", "--out", str(tmp_path / "out"))
    assert prov["compilation_cache"] is None and not cache.exists()


def test_unwritable_cache_still_runs(tmp_path):
    """``JAXSA_CACHE`` under a regular file: a note on stderr, the command succeeds, the
    provenance says no cache, and nothing goes to ``XDG_CACHE_HOME`` instead."""
    (tmp_path / "file").write_text("")
    proc, prov, cache = _driver(tmp_path, JAXSA_CACHE=str(tmp_path / "file" / "sub"))
    assert "jaxsa: compilation cache off (" in proc.stderr
    assert str(tmp_path / "file" / "sub") in proc.stderr  # the folder that cannot be made
    assert prov["compilation_cache"] is None
    assert not cache.exists() and (tmp_path / "file").read_text() == ""


@pytest.mark.slow
def test_fig4_second_run_loads_its_programs(tmp_path):
    """The real ``jaxsa reproduce fig4`` twice: the first run traces and stores its three
    programs (`jaxsa.results.programs`), the second loads them without tracing and writes
    the same numbers."""
    env = _env(tmp_path)
    docs = []
    for name in ("cold", "warm"):
        out = tmp_path / name
        _run(_jaxsa() + ["reproduce", "fig4", "--out", str(out)], env, timeout=900)
        docs.append(json.loads((out / "fig4.json").read_text()))
    origins = [{k: v["program"] for k, v in d["provenance"]["timing"]["per_schedule"].items()}
               for d in docs]
    assert origins[0] == {"cosine": "stored", "cond-ot": "stored", "ot": "stored"}, origins
    assert origins[1] == {"cosine": "loaded", "cond-ot": "loaded", "ot": "loaded"}, origins
    assert len(os.listdir(tmp_path / "xdg" / "jaxsa" / "programs")) == 3
    keys = ("eta", "c1", "c2", "D0", "eta_err", "converged")
    assert ([[r[k] for k in keys] for r in docs[0]["records"]]
            == [[r[k] for k in keys] for r in docs[1]["records"]])
