"""The `jaxsa` commands besides `reproduce fig4`: optimize-schedule, benchmark, reproduce images
and the resolution flags (--refine, --n-quantiles, --rtol). Each test checks the values the
command writes (JSON, PNG, results page), not only its exit code.

Fast tests call :func:`jaxsa.cli.main` in this process (the whole CLI path: parser, command,
computation, plots, atomic JSON writes, results page) at reduced sizes; where the CLI has no flag
for a size, the library default is narrowed with ``monkeypatch``. ``slow`` tests run the real
command in a subprocess at its default sizes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

PNG = b"\x89PNG\r\n\x1a\n"


def _png(path):
    assert os.path.getsize(path) > 1000, path
    with open(path, "rb") as f:
        assert f.read(8) == PNG, path


def _jaxsa(*args, timeout=1800):
    """Run ``python -m jaxsa.cli ARGS`` with float64 left to the CLI (``JAX_ENABLE_X64`` cleared)."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run([sys.executable, "-m", "jaxsa.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _as_json(obj):
    """What ``obj`` looks like after a JSON round trip (tuples become lists)."""
    return json.loads(json.dumps(obj))


# --------------------------------------------------------------------------- optimize-schedule
def _check_optimize(out, degree, steps, n_gauss=64, n_hermite=256):
    """``optimize_schedule.json``: the optimum beats its start (cosine) and respects Eq. 91;
    its parameters reproduce its c2; the curves are valid schedules whose ∫v2² is c2."""
    import jax.numpy as jnp

    import jaxsa
    from jaxsa.thermo.dissipation import speed_cost
    from jaxsa.schedules.families import PolarBernstein

    doc = json.loads((out / "optimize_schedule.json").read_text())
    _png(out / "optimize_schedule.png")
    assert doc["provenance"]["dtype"] == "float64"
    hist = doc["history"]
    assert len(hist) == steps and all(math.isfinite(c) for c in hist)
    # the optimisation starts at the cosine schedule (zero parameters) and improves on it
    assert hist[0] == pytest.approx(doc["c2_cosine"], rel=1e-9)
    assert doc["c2_opt"] < 0.99 * doc["c2_cosine"] and doc["c2_opt"] < hist[0]
    assert doc["c2_opt"] < doc["c2_interp_best"]  # beats the whole cond-OT–cosine family
    # Eq. 91: c2 >= L^2/tau >= W2^2/tau, the OT bound; nothing goes below it
    tol = 1 - 1e-9
    assert doc["c2_opt"] >= doc["length_bound"] * tol
    assert doc["length_bound"] >= doc["ot_bound"] * tol and doc["ot_bound"] > 0
    for k in ("c2_cosine", "c2_cond_ot", "c2_interp_best"):
        assert doc[k] >= doc["ot_bound"] * tol, k
    # the interpolation grid contains both ends: lam = 0 (cond-OT) and lam = 1 (cosine)
    assert 0.0 <= doc["lam_interp_best"] <= 1.0
    assert doc["c2_interp_best"] <= min(doc["c2_cosine"], doc["c2_cond_ot"]) * (1 + 1e-9)
    # the written parameters are the reported optimum, and a valid schedule
    p = doc["parameters"]
    assert len(p["theta_logits"]) == degree and len(p["rho_coeffs"]) == 4 and p["tau"] == 1.0
    sched = PolarBernstein(jnp.asarray(p["theta_logits"]), jnp.asarray(p["rho_coeffs"]), p["tau"])
    jaxsa.check_schedule(sched)
    c2, length = speed_cost(jaxsa.DiffusionPath(sched, jaxsa.paper_data()), n_gauss, n_hermite)
    assert float(c2) == pytest.approx(doc["c2_opt"], rel=1e-9)
    assert float(length) ** 2 == pytest.approx(doc["length_bound"], rel=1e-9)
    # curves: m_0 = 1, sigma_0 = 0, m_tau = 0, sigma_tau = 1; trapezoid of v2^2 is c2
    c2_of = {"optimised": doc["c2_opt"], "cosine": doc["c2_cosine"], "cond-ot": doc["c2_cond_ot"]}
    assert set(doc["curves"]) == set(c2_of)
    for name, c in doc["curves"].items():
        t, v2 = np.asarray(c["t"]), np.asarray(c["v2_sq"])
        assert len(t) == len(c["m"]) == len(c["sigma"]) == len(v2) > 100
        assert t[0] == 0.0 and t[-1] == pytest.approx(1.0)
        np.testing.assert_allclose([c["m"][0], c["sigma"][0], c["m"][-1], c["sigma"][-1]],
                                   [1, 0, 0, 1], atol=1e-12, err_msg=name)
        assert np.all(v2 >= 0)
        assert np.trapezoid(v2, t) == pytest.approx(c2_of[name], rel=2e-3), name
    return doc


def test_optimize_schedule_command(tmp_path, monkeypatch):
    """`jaxsa optimize-schedule` in this process, with the quadratures of c2 and of the plotted
    curves narrowed (the CLI has no flag for them) so that compiling stays short; --steps and
    --degree reach the run."""
    import jaxsa.studies.optimize
    from jaxsa.cli import main

    small = {"optimize_schedule": {"n_gauss": 32, "n_hermite": 24}, "schedule_curves": {"n_hermite": 24}}
    for name, kw in small.items():
        monkeypatch.setattr(jaxsa.studies.optimize, name, functools.partial(getattr(jaxsa.studies.optimize, name), **kw))
    out = tmp_path / "opt"
    assert main(["optimize-schedule", "--steps", "25", "--degree", "4", "--lr", "0.05",
                 "--out", str(out)]) == 0
    _check_optimize(out, degree=4, steps=25, n_gauss=32, n_hermite=24)


@pytest.mark.slow  # 25-40 s on 2 cores: compile-dominated at the default quadrature
def test_optimize_schedule_command_subprocess(tmp_path):
    out = tmp_path / "opt"
    proc = _jaxsa("optimize-schedule", "--steps", 30, "--out", out)
    doc = _check_optimize(out, degree=8, steps=30)
    assert doc["provenance"]["command"] == f"jaxsa optimize-schedule --steps 30 --out {out}"
    assert f"c2 = {doc['c2_opt']:.6f}" in proc.stdout


# --------------------------------------------------------------------------- resolution flags
def _expected_settings(refine=1, n_quantiles=None, rtol=None):
    """The documented meaning of the flags: every resolution refined by ``refine``, then the
    number of quantile nodes, then the ODE tolerances (rtol = atol), the rest untouched."""
    from jaxsa import Settings

    s = Settings()
    if refine > 1:
        s = s.refined(refine)
    if n_quantiles:
        s = dataclasses.replace(s, n_quantiles=n_quantiles)
    if rtol:
        s = dataclasses.replace(s, ode=dataclasses.replace(s.ode, rtol=rtol, atol=rtol))
    return s


FLAG_CASES = [
    ([], {}),
    (["--refine", "2"], {"refine": 2}),
    (["--rtol", "1e-8"], {"rtol": 1e-8}),
    (["--n-quantiles", "128"], {"n_quantiles": 128}),
    (["--refine", "3", "--n-quantiles", "96", "--rtol", "1e-7"],
     {"refine": 3, "n_quantiles": 96, "rtol": 1e-7}),
]


@pytest.mark.parametrize("flags, expected", FLAG_CASES,
                         ids=[" ".join(f) or "no-flags" for f, _ in FLAG_CASES])
def test_reproduce_flags_reach_the_settings(tmp_path, monkeypatch, flags, expected):
    """`jaxsa reproduce fig4 fig5 FLAGS`: the figure function is called once (fig5 is fig4's
    computation) with the settings the flags describe, and the provenance written from them
    records exactly those settings. The figure computation itself is replaced by a recorder."""
    from jaxsa import cli

    calls = []

    def record(out_dir, settings):
        calls.append(settings)
        cli.write_json(os.path.join(out_dir, "fig4.json"),
                       {"provenance": cli.provenance(settings), "records": []})

    monkeypatch.setattr(cli, "FIGURES", {**cli.FIGURES, "fig4": record})
    out = tmp_path / "res"
    assert cli.main(["reproduce", "fig4", "fig5", "--out", str(out), *flags]) == 0
    want = _expected_settings(**expected)
    assert calls == [want]
    prov = json.loads((out / "fig4.json").read_text())["provenance"]
    assert prov["settings"] == _as_json(dataclasses.asdict(want))
    assert (out / "index.html").exists()


@pytest.mark.slow  # one real fig4 run (three compiles) at a refined resolution: ~35 s on 2 cores
def test_reproduce_refine_and_rtol_are_recorded_in_the_json(tmp_path):
    """The flags go all the way through the real `reproduce fig4` into fig4.json's and
    fig5.json's provenance (the numbers are not checked here: see test_cli.py)."""
    out = tmp_path / "res"
    _jaxsa("reproduce", "fig4", "--refine", 2, "--n-quantiles", 64, "--rtol", 1e-7, "--out", out)
    want = _as_json(dataclasses.asdict(_expected_settings(refine=2, n_quantiles=64, rtol=1e-7)))
    for name in ("fig4.json", "fig5.json"):
        prov = json.loads((out / name).read_text())["provenance"]
        assert prov["settings"] == want, name
        assert prov["settings"]["ode"]["rtol"] == prov["settings"]["ode"]["atol"] == 1e-7
        assert "--refine 2" in prov["command"] and "--rtol 1e-07" in prov["command"]
    recs = json.loads((out / "fig4.json").read_text())["records"]
    assert len(recs) == 12
    # the refined time series: n_time = (151 - 1) * 2 + 1 time samples in every record
    assert all(len(r["t"]) == want["n_time"] for r in recs)


# --------------------------------------------------------------------------- benchmark
@pytest.mark.slow  # three fig4 compiles: ~30 s on 2 cores whatever the resolution
def test_benchmark_command(tmp_path):
    """`jaxsa benchmark --out`: every timing it claims is in the JSON, positive and finite,
    min <= median, the totals add up, and the flags are in its provenance."""
    out = tmp_path / "bench"
    proc = _jaxsa("benchmark", "--repeats", 3, "--n-quantiles", 64, "--rtol", 1e-8, "--out", out)
    doc = json.loads((out / "benchmark_fig4.json").read_text())
    names = {"cosine", "cond-ot", "ot"}
    assert doc["repeats"] == 3 and doc["configurations"] == 12 and doc["n_quantiles"] == 64
    for k in ("compile_s", "steady_min_s", "steady_median_s"):
        assert set(doc[k]) == names, k
        for v in doc[k].values():
            assert math.isfinite(v) and v > 0, (k, v)
    for name in names:
        assert doc["steady_min_s"][name] <= doc["steady_median_s"][name]
    assert doc["compile_total_s"] == pytest.approx(sum(doc["compile_s"].values()))
    assert 0 < doc["total_min_s"] <= doc["total_median_s"] and math.isfinite(doc["total_median_s"])
    # one pass over the three schedules takes at least the sum of their fastest times
    assert doc["total_min_s"] >= sum(doc["steady_min_s"].values()) * (1 - 1e-9)
    # compiling is much slower than running the compiled computation
    assert doc["compile_total_s"] > doc["total_median_s"]
    want = _as_json(dataclasses.asdict(_expected_settings(n_quantiles=64, rtol=1e-8)))
    assert doc["provenance"]["settings"] == want
    assert f"{doc['compile_total_s']:12.2f}" in proc.stdout  # the table shows the JSON's numbers


# --------------------------------------------------------------------------- reproduce images
def _check_images(out, s):
    from tests.helpers.images import check_images_doc
    from tests.helpers.results_page import check_index

    doc = json.loads((out / "images.json").read_text())
    check_images_doc(s, doc)
    _png(out / "images.png")
    prov = doc["provenance"]
    assert prov["settings"] == _as_json(dataclasses.asdict(s))  # the settings that ran
    assert prov["seeds"] == {"seed": s.seed} and prov["dtype"] == "float64"
    # generated images: the unperturbed and both perturbed starts for every field, 64 pixels
    keys = {f"{a}:learned" for a in s.schedules} | {f"{a}:exact" for a in s.exact}
    assert set(doc["images"]) == keys
    for k in keys:
        assert set(doc["images"][k]) == {"none", "mean", "variance"}
        for ims in doc["images"][k].values():
            assert np.asarray(ims).shape[1:] == (64,) and np.all(np.isfinite(ims))
    page = check_index(str(out))
    assert "images" in page.figures and "table-images" in page.tables
    return doc


def test_reproduce_images_command_tiny(tmp_path, monkeypatch):
    """`jaxsa reproduce images` in this process. The CLI has no size flags for this experiment
    (it always runs ImagesSettings()), so its default is replaced by the tiny setting of
    tests/experiments/test_images.py."""
    import jaxsa.experiments.images as images
    from jaxsa.cli import main

    from jaxsa.processes.learned import CFMSettings
    from jaxsa.relations.audit import AuditSettings

    tiny = images.ImagesSettings(schedules=("cond-ot",), exact=("cond-ot",), n_data=120,
                                 cfm=CFMSettings(width=16, depth=2, steps=20, batch=32),
                                 audit=AuditSettings(n_particles=64, n_replicates=3, n_times=4,
                                                     n_curve=16),
                                 n_images=2, cache_dir=str(tmp_path / "cache"))
    monkeypatch.setattr(images, "ImagesSettings", lambda: tiny)
    out = tmp_path / "res"
    assert main(["reproduce", "images", "--out", str(out)]) == 0
    _check_images(out, tiny)
