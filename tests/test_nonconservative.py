"""The non-conservative experiment (SPEC §6) end to end at a small resolution, through the
function behind ``jaxsa reproduce nonconservative`` (about 25 s on 2 cores)."""

import functools
import json
import os

import numpy as np
import pytest

from jaxsa.experiments import nonconservative as nc


@pytest.mark.slow  # fails since the merge of the certified w1_point_cloud (issue 5): a check in it fails; open in issue 3
def test_reproduce_nonconservative_writes_records_and_physics_holds(tmp_path, monkeypatch):
    from jaxsa.cli import reproduce_nonconservative

    small = functools.partial(nc.NCSettings, gs=(0.0, 1.0), n_cells=40, n_time=8, n_v2=1)
    monkeypatch.setattr(nc, "NCSettings", small)
    reproduce_nonconservative(str(tmp_path), None)
    assert os.path.getsize(tmp_path / "nonconservative.png") > 1000
    with open(tmp_path / "nonconservative.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    recs = json.loads((tmp_path / "nonconservative.json").read_text())["records"]
    assert [r["g"] for r in recs] == [0.0, 1.0]
    for r in recs:
        assert {"g", "eta", "c2", "entropy_bound", "D0"} <= set(r)
    v2 = [r["v2_sq_projected"][0] for r in recs]
    assert abs(v2[1] - v2[0]) < 0.02 * v2[0]  # v2 unchanged by the rotation
    assert abs(recs[1]["c2"] - recs[0]["c2"]) < 1e-9 * recs[0]["c2"]
    assert recs[1]["entropy_bound"] > 2 * recs[0]["entropy_bound"]  # grows like g^2
    assert recs[1]["eta"] > recs[0]["eta"]  # the estimated process responds to g
    assert all(r["eq77_holds"] and r["eta"] < r["entropy_bound"] for r in recs)
    assert all(r["forward_error"] < 0.1 for r in recs)  # marginals unchanged (grid accuracy)
    assert all(r["mass_error"] < 1e-12 and r["min_density"] >= 0 for r in recs)
    assert all(r["max_cfl"] <= 0.5 and r["sinkhorn_converged"] for r in recs)
    assert np.isclose(recs[0]["entropy_bound"], recs[0]["c2"])
