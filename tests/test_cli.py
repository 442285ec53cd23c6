"""End to end: `jaxsa reproduce fig4` writes the JSON records and both figures."""

import json
import os
import subprocess
import sys

import pytest

REQUIRED = {"schedule", "perturbation", "eta", "c1", "c2", "D0", "W1_q_p", "W1_init",
            "t", "v2_sq", "vloss_sq"}


@pytest.fixture(scope="module")
def fig4_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fig4")
    cmd = [sys.executable, "-m", "jaxsa.cli", "reproduce", "fig4", "--out", str(out),
           "--n-quantiles", "256"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_fig4_outputs(fig4_run):
    out, proc = fig4_run
    for name in ("fig4.json", "fig5.json", "fig4.png", "fig5.png"):
        assert os.path.getsize(out / name) > 1000, name
    with open(out / "fig4.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "fig4" in proc.stderr  # the progress bar was shown


def test_fig4_json_records(fig4_run):
    out, _ = fig4_run
    doc = json.loads((out / "fig4.json").read_text())
    recs = doc["records"]
    assert len(recs) == 12
    assert {(r["schedule"], r["perturbation"]) for r in recs} == {
        (s, p) for s in ("cosine", "cond-ot", "ot") for p in ("mean", "variance", "mixture", "uniform")
    }
    for r in recs:
        assert REQUIRED <= set(r)
        assert len(r["t"]) == len(r["v2_sq"]) == len(r["vloss_sq"]) > 10
        assert r["eta"] <= r["c1"] * (1 + 1e-6) and r["c1"] <= r["c2"]
        assert r["violations"] == {}
    prov = doc["provenance"]
    for key in ("jaxsa", "jax", "ott-jax", "diffrax", "device", "dtype", "settings", "seeds", "timing"):
        assert key in prov, key
    assert prov["dtype"] == "float64"
    assert prov["settings"]["n_quantiles"] == 256
    assert prov["timing"]["compile_s"] > 0 and prov["timing"]["run_s"] > 0


def test_unknown_figure_is_a_clear_error():
    proc = subprocess.run([sys.executable, "-m", "jaxsa.cli", "reproduce", "fig99", "--out", "/tmp/x"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "unknown figure" in proc.stderr and "fig4" in proc.stderr


def test_reproduce_writes_results_page(fig4_run):
    from test_report_html import check_index

    out, proc = fig4_run
    page = check_index(str(out))
    assert {"fig4", "fig5"} <= set(page.figures) and "table-fig4" in page.tables
    assert "index.html" in proc.stdout
