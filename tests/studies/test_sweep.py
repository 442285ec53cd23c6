"""Sweeps: sharding-invariant results, resumption after a real kill, validation, families."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsa
from jaxsa.schedules.families import Interpolated, PolarBernstein
from jaxsa.studies.sweep import SweepSpec, run_sweep

SMALL = {"n_quantiles": 128, "n_gauss": 8, "fixed_steps": 8}


def _spec(n_lam=6, chunk=2):
    return SweepSpec(family="interpolated", grid={"lam": list(np.linspace(0, 1, n_lam))},
                     perturbations=["mean", "uniform"], chunk_size=chunk, settings=SMALL)


def _run_in_subprocess(spec_dict, out, devices=1, extra_env=None):
    code = textwrap.dedent(f"""
        import jax, json
        jax.config.update("jax_enable_x64", True)
        from jaxsa.studies.sweep import SweepSpec, run_sweep
        doc = run_sweep(SweepSpec(**json.loads({json.dumps(json.dumps(spec_dict))})), {str(out)!r})
        print("DEVICES", jax.device_count(), doc["complete"])
    """)
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env.update(extra_env or {})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"DEVICES {devices} True" in proc.stdout
    return json.loads((out / "sweep.json").read_text())


def _values(doc):
    keys = ("eta", "c1", "c2", "D0", "W1_q_p", "slack_80")
    return np.array([[r[k] for k in keys] for r in doc["records"]])


def test_sharded_sweep_equals_single_device(tmp_path):
    spec = _spec(n_lam=4, chunk=4).to_json()
    one = _run_in_subprocess(spec, tmp_path / "one", devices=1)
    four = _run_in_subprocess(spec, tmp_path / "four", devices=4)
    assert four["throughput"]["devices"] == 4
    assert [r["index"] for r in one["records"]] == [r["index"] for r in four["records"]]
    np.testing.assert_allclose(_values(one), _values(four), rtol=1e-12, atol=1e-14)


@pytest.mark.slow  # ~75 s: one compile per perturbation kind and schedule
def test_sweep_matches_direct_calls(tmp_path):
    # one chunk of 4 (3 schedules + 1 padding) at the default vmap_size = 4: the vmapped batch
    # must give what unbatched direct calls give
    doc = run_sweep(_spec(n_lam=3, chunk=4), str(tmp_path))
    assert doc["throughput"]["vmap_size"] == 4
    st = jaxsa.studies.sweep.sweep_settings(**SMALL)
    perts = jaxsa.paper_perturbations()
    for rec in doc["records"]:
        path = jaxsa.DiffusionPath(Interpolated(rec["params"]["lam"]), jaxsa.paper_data())
        rep = jaxsa.speed_accuracy(path, perts[rec["perturbation"]], st)
        for k in ("eta", "c1", "c2", "D0"):
            assert rec[k] == pytest.approx(float(getattr(rep, k)), rel=1e-10), k
    # lam = 0 is cond-OT and lam = 1 is cosine (same settings: identical up to round-off)
    c2 = {r["params"]["lam"]: r["c2"] for r in doc["records"]}
    for lam, sched in ((0.0, jaxsa.CondOT()), (1.0, jaxsa.Cosine())):
        rep = jaxsa.speed_accuracy(jaxsa.DiffusionPath(sched, jaxsa.paper_data()), perts["mean"], st)
        assert c2[lam] == pytest.approx(float(rep.c2), rel=1e-10)


def _finished_chunks(chunks):
    """Names of the chunk files on disk. A chunk is written to a ``.tmp-*`` file and renamed
    onto ``chunk_XXXXXX.json``, so every such name is a complete chunk."""
    if not chunks.is_dir():
        return []
    return sorted(f for f in os.listdir(chunks) if f.startswith("chunk_") and f.endswith(".json"))


def test_killed_sweep_resumes_without_gaps_or_duplicates(tmp_path):
    """SIGKILL a real ``jaxsa sweep`` right after its first chunk is on disk, then resume it.

    The kill is synchronised on the first chunk file appearing (not on a wall-clock guess of
    the compile time), and chunks take ~0.2 s each here (milliseconds on a fast machine, still
    far above the 1 ms polling), so it lands mid-run whatever the speed of the machine."""
    n_lam = 40
    spec = _spec(n_lam=n_lam, chunk=1)
    cfg = tmp_path / "sweep.json"
    cfg.write_text(json.dumps(spec.to_json()))
    out = tmp_path / "killed"
    chunks = out / "chunks"
    cmd = [sys.executable, "-m", "jaxsa.cli", "sweep", str(cfg), "--out", str(out)]
    log = tmp_path / "killed.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=err, stderr=err)
        try:
            # a safety net against a hung process only; the kill waits for the first chunk
            give_up = time.monotonic() + 1800
            while not _finished_chunks(chunks):
                if proc.poll() is not None:
                    pytest.fail(f"sweep exited (rc={proc.returncode}) before writing a chunk:\n"
                                f"{log.read_text()[-3000:]}")
                if time.monotonic() > give_up:
                    pytest.fail(f"no chunk written in 30 minutes:\n{log.read_text()[-3000:]}")
                time.sleep(0.001)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()  # no-op if already dead; never leave a sweep running
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, "sweep finished before it could be killed"
    assert not (out / "sweep.json").exists()
    done_before = _finished_chunks(chunks)
    assert 1 <= len(done_before) < n_lam
    before = {f: (chunks / f).read_bytes() for f in done_before}
    # resume with the same command: exactly the missing chunks are computed
    subprocess.run(cmd, check=True, capture_output=True, timeout=1200)
    resumed = json.loads((out / "sweep.json").read_text())
    assert resumed["complete"]
    assert resumed["throughput"]["new_configurations"] == 2 * (n_lam - len(done_before))
    assert {f: (chunks / f).read_bytes() for f in done_before} == before  # reused, not rewritten
    assert _finished_chunks(chunks) == [f"chunk_{i:06d}.json" for i in range(n_lam)]
    full = run_sweep(spec, str(tmp_path / "full"))
    idx = [r["index"] for r in resumed["records"]]
    assert idx == list(range(2 * n_lam))
    np.testing.assert_allclose(_values(resumed), _values(full), rtol=1e-12)


def test_bad_sweep_specs_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="family"):
        run_sweep(SweepSpec(family="nope"), str(tmp_path))
    with pytest.raises(ValueError, match=r"#1 .*sigma_t\^2 must be >= 0"):  # sigma_max < sigma_min
        run_sweep(SweepSpec(family="ve-geometric", points=[
            {"sigma_min": 0.01, "sigma_max": 10.0}, {"sigma_min": 1.0, "sigma_max": 0.5}],
            settings=SMALL), str(tmp_path))
    with pytest.raises(ValueError, match="chunk_size"):
        run_sweep(SweepSpec(grid={"lam": [0.5]}, chunk_size=0), str(tmp_path))
    with pytest.raises(ValueError, match="vmap_size"):
        run_sweep(SweepSpec(grid={"lam": [0.5]}, vmap_size=0), str(tmp_path))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_polar_family_is_always_a_valid_schedule(seed):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    s = PolarBernstein(2.0 * jax.random.normal(k1, (8,)), 2.0 * jax.random.normal(k2, (4,)))
    jaxsa.check_schedule(s)
    v = s.values(jnp.array([0.0, 1.0]))
    assert float(v.sigma[-1]) == pytest.approx(1.0) and abs(float(v.m[-1])) < 1e-12


def test_family_members_equal_named_schedules():
    t = jnp.linspace(0, 1, 17)
    for fam, ref in ((Interpolated(0.0), jaxsa.CondOT()), (Interpolated(1.0), jaxsa.Cosine()),
                     (PolarBernstein.cosine(), jaxsa.Cosine())):
        a, b = fam.values(t), ref.values(t)
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, atol=1e-12)


def _closed_form_c2_against(method, length_rtol):
    """docs/method.md: the closed-form c₂ of ``dissipation.speed_cost`` (Gauss–Legendre in t ×
    Gauss–Hermite in x, no ODE) agrees with the 1D methods to 1e-11 (measured: CDF quadrature
    in x ≤ 1.7e-12, particles ≤ 4.3e-12)."""
    from jaxsa.thermo.dissipation import speed_cost

    data = jaxsa.paper_data()
    for sched in (jaxsa.Cosine(), jaxsa.CondOT(), jaxsa.VPLinear(0.1, 12.0)):
        path = jaxsa.DiffusionPath(sched, data)
        c2, length = speed_cost(path)
        rep = jaxsa.speed_accuracy(path, jaxsa.gaussian(0.3, 0.9), jaxsa.Settings(method=method))
        assert float(c2) == pytest.approx(float(rep.c2), rel=1e-11), (sched, method)
        assert float(length) == pytest.approx(float(rep.path_length), rel=length_rtol), (sched, method)


def test_closed_form_c2_agrees_with_cdf_method():
    _closed_form_c2_against("cdf", 1e-10)  # L_τ: measured 1.5e-12


@pytest.mark.slow  # three adaptive all-particle ODE solves: ~25 s
def test_closed_form_c2_agrees_with_particle_method():
    _closed_form_c2_against("particles", 1e-7)  # L_τ: 8.1e-9 on cond-OT (kink where v₂ = 0)


def test_gradient_of_c2_matches_finite_differences():
    from jaxsa.thermo.dissipation import speed_cost

    data = jaxsa.paper_data()
    th = jnp.array([0.3, -0.2, 0.1, 0.5, -0.4, 0.0])
    rc = jnp.array([0.2, -0.1, 0.3])
    f = lambda th, rc: speed_cost(jaxsa.DiffusionPath(PolarBernstein(th, rc), data))[0]  # noqa: E731
    g_th, g_rc = jax.grad(f, argnums=(0, 1))(th, rc)
    h = 1e-5
    for i in range(th.shape[0]):
        e = jnp.zeros_like(th).at[i].set(h)
        fd = (f(th + e, rc) - f(th - e, rc)) / (2 * h)
        assert float(g_th[i]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9)
    for i in range(rc.shape[0]):
        e = jnp.zeros_like(rc).at[i].set(h)
        fd = (f(th, rc + e) - f(th, rc - e)) / (2 * h)
        assert float(g_rc[i]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9)


@pytest.mark.slow  # reverse mode through the diffrax solve: ~90 s of compilation on 2 cores
def test_eta_has_zero_gradient_and_c1_a_finite_one_along_a_family():
    """η is schedule independent in 1D (monotone rearrangement); c₁ is not."""
    data = jaxsa.paper_data()
    st = jaxsa.Settings(n_quantiles=256, n_gauss=16)
    start = jaxsa.perturbation_start(jaxsa.gaussian(1.0, 1.0), st)

    def eta_c1(lam):
        r = jaxsa.speed_accuracy_from_start(jaxsa.DiffusionPath(Interpolated(lam), data), start, st)
        return r.eta, r.c1

    # reverse mode through the diffrax solve (its checkpointed adjoint has no forward mode)
    g_eta = jax.grad(lambda lam: eta_c1(lam)[0])(0.4)
    g_c1 = jax.grad(lambda lam: eta_c1(lam)[1])(0.4)
    h = 1e-4
    (ep, cp), (em, cm) = eta_c1(0.4 + h), eta_c1(0.4 - h)
    assert abs(float(g_eta)) < 1e-7 and abs(float(ep - em)) < 1e-9
    assert float(g_c1) == pytest.approx(float((cp - cm) / (2 * h)), rel=1e-4)
    assert abs(float(g_c1)) > 1e-3


def test_optimised_schedule_beats_cosine_and_respects_the_ot_bound():
    from jaxsa.studies.optimize import optimize_schedule

    res = optimize_schedule(jaxsa.paper_data(), steps=60, n_gauss=32, n_hermite=24)
    jaxsa.check_schedule(res["schedule"])
    assert res["c2_opt"] < 0.95 * res["c2_cosine"]
    assert res["c2_opt"] >= res["length_bound"] * (1 - 1e-9) >= res["ot_bound"] * (1 - 1e-9)
    assert res["history"][-1] < res["history"][0]


def test_validation_finds_no_violation(tmp_path):
    from jaxsa.studies.sweep import sweep_settings
    from jaxsa.studies.validate import run_validation

    s = run_validation(n=12, out_dir=str(tmp_path), chunk_size=6,
                       settings=sweep_settings(n_quantiles=256, n_gauss=16, fixed_steps=12))
    assert s["complete"] and s["n"] == 12 and s["n_finite"] == 12
    assert sum(s["violations"].values()) == 0
    q = s["tightness_quantiles"]
    assert q["eta_over_c1"]["1.0"] <= 1 + 1e-6 and q["c1_over_c2"]["1.0"] <= 1 + 1e-6
    assert q["c2_over_ot_bound"]["0.0"] >= 1 - 1e-6
    doc = json.loads((tmp_path / "validate.json").read_text())
    assert len(doc["ratios"]["eta_over_c1"]) == 12


@pytest.mark.slow  # 256 configurations, four compiled families: ~1 min on a quiet 2-core CPU
def test_validation_at_its_defaults_finds_no_violation(tmp_path):
    """``jaxsa validate`` at its defaults (CDF method, the wide random distribution): every
    configuration converged and no inequality violated. benchmarks/RESULTS.md states this for
    n = 10,000 (a 15-minute CLI run); the test runs the first 256 of the same seed."""
    from jaxsa.studies.validate import run_validation

    s = run_validation(n=256, out_dir=str(tmp_path), seed=0)
    assert s["complete"] and s["n"] == 256
    assert s["n_converged"] == 256 and s["n_not_converged"] == 0 and s["n_divergent_chi2"] == 0
    assert set(s["violations"]) == {"slack_77", "slack_80", "slack_82_eta_c1", "slack_82_c1_c2",
                                    "slack_91_c2_length", "slack_91_length_ot"}
    assert sum(s["violations"].values()) == 0
