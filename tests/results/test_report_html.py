"""The results page ``DIR/index.html`` (jaxsa.results.html): every figure and table it names is
there, every scalar field of every record is shown and linked to its JSON path, the statuses,
error estimates and round-off slacks are marked. The layout at 1400 px is checked in a browser
by tests/results/test_report_browser.py, on the same synthetic run (`synthetic_run`)."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers.results_page import check_index, parse_index, synthetic_run


def test_index_from_synthetic_run(tmp_path):
    path = synthetic_run(tmp_path)
    page = check_index(str(tmp_path))
    assert set(page.figures) == {"fig4", "fig5", "figonly"}
    main = page.tables["table-fig4"]
    assert main["columns"] == ["schedule", "perturbation", "eta", "c1", "c2", "D0", "delta_W1",
                               "converged", "checks"]  # identifiers, the paper's quantities, status
    assert main["row_classes"][5] == "nc" and main["row_classes"][6] == "flag"  # not converged; violation
    assert main["row_classes"].count("") == 10
    ineq = page.tables["ineq-fig4"]
    assert [c for c in ineq["columns"] if c.startswith("slack")] == [
        "slack_77", "slack_80", "slack_82_eta_c1", "slack_82_c1_c2", "slack_91_c2_length", "slack_91_length_ot"]
    n = 6
    cells = [ineq["cell_classes"][i:i + 8][2:] for i in range(0, len(ineq["cell_classes"]), 8)]
    assert len(cells) == 12 and all(len(c) == n for c in cells)
    assert cells[8][2] == "ro" and cells[8][5] == "ro"  # -6.9e-17 and 0.0: round-off
    assert cells[9][2] == "neg" and cells[6][1] == "bad"  # tolerated negative; listed violation
    assert sum(c.count("ro") for c in cells) == 2
    for tid, t in page.tables.items():  # none of the ~30 columns of old (the fit: test_report_browser)
        assert t["rows"] > 0 and len(t["columns"]) <= 16, (tid, t["columns"])
    assert "chi2_residual" not in main["columns"]  # in the "other fields" fold
    assert any("chi2_residual" in t["columns"] for k, t in page.tables.items() if k.startswith("other-fig4"))
    assert "t" not in {c for t in page.tables.values() for c in t["columns"]}  # arrays stay in the JSON
    assert "contents-fig5" in page.ids and not any(k.endswith("fig5") for k in page.tables)
    assert {"table-steps-winners", "summary-validate", "summary-images"} <= set(page.tables) | page.ids
    assert "table-steps-grids" not in page.tables and "contents-steps-grids" in page.ids
    sweep = page.tables["table-sweep"]
    assert sweep["columns"][:3] == ["index", "params.a", "perturbation"]
    nc = page.tables["table-nonconservative"]
    assert nc["columns"][0] == "g" and "grid_eta_in_audit_ci" not in nc["columns"]  # in "checks"
    assert nc["row_classes"] == ["", "", "flag"]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert "could not read broken.json" in text and "round-off" in text
    assert "why_unresolved" in text and "violates slack_80" in text
    img = page.tables["table-images"]  # few fields: one table, a column per status flag
    assert "eta_resolved" in img["columns"] and img["row_classes"] == ["", "flag"]
    assert not any(k.startswith("other-images") for k in page.tables)
    plain = re.sub(r"<[^>]+>", "", text)
    assert "[0.049, 0.051]" in plain and "[0.04, 0.06]" in plain  # intervals beneath their values
    assert "1 not converged" in text and "1 violation<" in text  # the table of contents says so


def test_index_truncates_long_tables_keeping_flagged_records(tmp_path):
    from jaxsa.results.html import write_index
    from jaxsa.results.tables import MAX_ROWS

    recs = [{"index": i, "eta": 0.1, "eta_err": 1e-9, "converged": i != MAX_ROWS + 50}
            for i in range(MAX_ROWS + 100)]
    (tmp_path / "sweep.json").write_text(json.dumps({"records": recs}))
    page = parse_index(write_index(str(tmp_path)))
    tab = page.tables["table-sweep"]
    assert tab["rows"] == MAX_ROWS and tab["row_classes"].count("nc") == 1
    assert any(ln["path"] == f"records[{MAX_ROWS + 50}].converged" for ln in page.links)


def test_index_bad_directory(tmp_path):
    from jaxsa.results.html import write_index

    with pytest.raises(ValueError, match="out_dir"):
        write_index(str(tmp_path / "missing"))
