"""The non-conservative experiment (SPEC §6) end to end at a small resolution, through the
function behind ``jaxsa reproduce nonconservative`` (about 25 s on 2 cores)."""

import functools
import json
import os

import numpy as np
import pytest

from jaxsa.experiments import nonconservative as nc


def test_reproduce_nonconservative_writes_records_and_physics_holds(tmp_path, monkeypatch):
    import jax.numpy as jnp
    import ot

    from jaxsa.cli import reproduce_nonconservative

    small = functools.partial(nc.NCSettings, gs=(0.0, 1.0), n_cells=40, n_time=8, n_v2=1)
    monkeypatch.setattr(nc, "NCSettings", small)
    from jaxsa.relations.audit import AuditSettings

    monkeypatch.setattr(nc, "AUDIT", AuditSettings(n_particles=1024, n_replicates=4, n_times=8,
                                                   n_curve=128))
    runs = []
    run = nc.run_nonconservative
    monkeypatch.setattr(nc, "run_nonconservative", lambda s: runs.append(run(s)) or runs[-1])
    reproduce_nonconservative(str(tmp_path), None)
    assert os.path.getsize(tmp_path / "nonconservative.png") > 1000
    with open(tmp_path / "nonconservative.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    recs = json.loads((tmp_path / "nonconservative.json").read_text())["records"]
    assert [r["g"] for r in recs] == [0.0, 1.0]
    for r in recs:
        assert {"g", "eta", "c2", "entropy_bound", "D0"} <= set(r)
    v2 = [r["v2_sq_projected"][0] for r in recs]
    # v2 (projected from the rotated flux) unchanged; RESULTS.md: to 0.3 % at 48² and t = 0.25,
    # 0.75 (here 40², one time: measured 0.28 %)
    assert abs(v2[1] - v2[0]) < 0.003 * v2[0], v2
    assert recs[1]["entropy_bound"] > 2 * recs[0]["entropy_bound"]  # grows like g^2
    assert recs[1]["eta"] > recs[0]["eta"]  # the estimated process responds to g
    assert all(r["eq77_holds"] and r["eta_upper"] < r["entropy_bound"] for r in recs)
    # the certified η bracket holds η, is tight enough to tell g = 0 from g = 1, and holds the
    # η of POT's exact emd2 on the same coarse clouds (an independent solver)
    assert all(r["eta_lower"] <= r["eta"] <= r["eta_upper"] for r in recs)
    assert recs[0]["eta_upper"] < recs[1]["eta_lower"]
    assert all(r["W1_q_p"] <= r["W1_q_p_upper"] < 1.02 * r["W1_q_p"] for r in recs)
    out, grid, _ = runs[0]
    xs, a = nc.coarse_cloud(grid, jnp.asarray(out["data_density"]), 2)
    xs, a = np.asarray(xs), np.asarray(a)
    cost = ot.dist(xs, xs, metric="euclidean")
    for r, p_gen in zip(recs, out["generated_density"]):
        b = np.asarray(nc.coarse_cloud(grid, jnp.asarray(p_gen), 2)[1])
        w1 = ot.emd2(a / a.sum(), b / b.sum(), cost, numItermax=10**7)
        assert r["W1_q_p"] <= w1 * (1 + 1e-9) and w1 <= r["W1_q_p_upper"] * (1 + 1e-9)
        assert w1 == pytest.approx(r["W1_q_p"], rel=1e-3)  # the dual estimate
        eta_emd = (w1 - r["W1_init"]) ** 2 / r["D0"]
        # RESULTS.md: on this 40² grid η is within 0.5 % of η from emd2 (measured 0.49 % at
        # g = 0, 0.32 % at g = 1)
        assert r["eta"] == pytest.approx(eta_emd, rel=0.005), (r["eta"], eta_emd)
    # the particle audit of each rotated field (no grid) against the grid solver: the kinetic
    # energy ∫E|ν^g|² dt to the audit's error plus 2% (midpoint rule in time, 40² grid), and η
    # to the audit's error plus 15% (the grid's η moves by ~10% between 40² and 96², NCSettings)
    for r in recs:
        a = r["audit"]
        eb_err = 0.5 * (a["entropy_bound_ci"][1] - a["entropy_bound_ci"][0])
        assert abs(a["entropy_bound"] - r["entropy_bound"]) <= eb_err + 0.02 * r["entropy_bound"], (a, r)
        eta_err = 0.5 * (a["eta_ci"][1] - a["eta_ci"][0])
        assert abs(a["eta"] - r["eta"]) <= eta_err + 0.15 * r["eta"], (a["eta"], a["eta_ci"], r["eta"])
    assert recs[1]["audit"]["eta"] > recs[0]["audit"]["eta"]  # the response to g, seen by particles
    assert all(r["forward_error"] < 0.1 for r in recs)  # marginals unchanged (grid accuracy)
    assert all(r["mass_error"] < 1e-12 and r["min_density"] >= 0 for r in recs)
    assert all(r["max_cfl"] <= 0.5 for r in recs)


def test_eta_interval_is_the_image_of_the_delta_w1_interval():
    from jaxsa.experiments import eta_interval

    for lo, hi, want in [(0.1, 0.3, (0.01, 0.09)), (-0.3, -0.1, (0.01, 0.09)),
                         (-0.2, 0.3, (0.0, 0.09)), (-0.4, 0.1, (0.0, 0.16))]:
        got = eta_interval(lo, hi, 2.0, 0.5)  # τ D0 = 1
        assert np.allclose([float(g) for g in got], want, rtol=1e-12), (lo, hi, got)
