"""The results-page helpers shared by tests/results/test_report_html.py,
tests/results/test_report_browser.py, tests/test_cli.py and tests/test_cli_commands.py: a parser
of ``DIR/index.html`` (`parse_index`), the full check of a page against the JSON files of its
directory (`check_index`), and a synthetic run of every figure and table (`synthetic_run`)."""

from __future__ import annotations

import base64
import json
import math
import os
import re
from html.parser import HTMLParser

import matplotlib
import pytest

matplotlib.use("Agg")

class _IndexParser(HTMLParser):
    """Collects figures (id, alt, decoded image bytes), tables (id, column keys, rows, row and
    cell classes), links to JSON files (source, path, text) and ids."""

    def __init__(self):
        super().__init__()
        self.figures, self.tables, self.anchors, self.ids = {}, {}, [], set()
        self.links, self.scripts = [], 0
        self._table = self._link = None
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            src = a.get("src", "")
            prefix = "data:image/png;base64,"
            assert src.startswith(prefix), "figures must be embedded"
            self.figures[a["alt"]] = base64.b64decode(src[len(prefix):])
        elif tag == "table":
            self._table = self.tables[a["id"]] = {"columns": [], "rows": 0, "source": a.get("data-source"),
                                                  "row_classes": [], "cell_classes": []}
        elif tag == "thead":
            self._in_head = True
        elif tag == "th" and self._table is not None:
            self._table["columns"].append(a.get("data-key"))
        elif tag == "tr" and self._table is not None and not self._in_head:
            self._table["rows"] += 1
            self._table["row_classes"].append(a.get("class", ""))
        elif tag == "td" and self._table is not None:
            self._table["cell_classes"].append(a.get("class", ""))
        elif tag == "a" and a.get("href", "").startswith("#"):
            self.anchors.append(a["href"][1:])
        elif tag == "a" and "data-path" in a:
            assert a["title"] == f"{a['href']}: {a['data-path']}"  # the tooltip names the path
            self._link = {"href": a["href"], "path": a["data-path"], "text": "", "class": a.get("class")}
            self.links.append(self._link)
        elif tag in ("link", "script") and (a.get("href") or a.get("src")):
            raise AssertionError(f"external resource in the page: {a}")
        if tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag == "thead":
            self._in_head = False
        elif tag == "table":
            self._table = None
        elif tag == "a":
            self._link = None

    def handle_data(self, data):
        if self._link is not None:
            self._link["text"] += data


def parse_index(path):
    p = _IndexParser()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p


def resolve(doc, path):
    """The value at a JSON path such as ``records[3].audit.eta``."""
    for key, idx in re.findall(r"\.?(\w+)|\[(\d+)\]", path):
        doc = doc[int(idx)] if idx else doc[key]
    return doc


def _scalar_keys(rec, prefix=""):
    for k, v in rec.items():
        if isinstance(v, dict) and k != "violations":
            yield from _scalar_keys(v, f"{prefix}{k}.")
        elif v is None or isinstance(v, (bool, int, float, str)):
            yield prefix + k


def check_index(out_dir):
    """Every PNG in ``out_dir`` is embedded; every JSON list of records with scalar fields has
    a main table ``table-NAME`` with one row per record (the paper's quantities among its
    columns), every scalar field of every record is linked to its JSON path, and every link
    shows the value at its path."""
    page = parse_index(os.path.join(out_dir, "index.html"))
    assert page.scripts == 0  # the page reads without scripts
    for name in os.listdir(out_dir):
        stem, ext = os.path.splitext(name)
        if ext == ".png":
            with open(os.path.join(out_dir, name), "rb") as f:
                assert page.figures[stem] == f.read(), name
        elif ext == ".json":
            try:
                with open(os.path.join(out_dir, name)) as f:
                    doc = json.load(f)
            except ValueError:
                continue  # listed on the page as unreadable (checked by the caller)
            recs = doc.get("records")
            scalar = recs and any(k not in ("schedule", "perturbation") for r in recs for k in _scalar_keys(r))
            if scalar:
                tab = page.tables[f"table-{stem}"]
                assert tab["rows"] == len(recs) and tab["source"] == name
                for col in ("eta", "c1", "c2", "D0", "delta_W1"):
                    if col in recs[0]:
                        assert col in tab["columns"], (name, col)
                shown = {re.sub(r"^records\[\d+\]\.", "", ln["path"]) for ln in page.links
                         if ln["href"] == name}
                missing = {k for r in recs for k in _scalar_keys(r)} - shown
                assert not missing, (name, missing)  # no field is lost
            elif recs:
                assert f"contents-{stem}" in page.ids  # labels and arrays only: a summary
            if "provenance" in doc:
                assert f"provenance-{stem}" in page.ids
            for ln in (x for x in page.links if x["href"] == name and re.fullmatch(r"[\w.\[\]]+", x["path"])):
                v, text = resolve(doc, ln["path"]), ln["text"].removeprefix("± ")
                if isinstance(v, bool):
                    assert text in (("yes",) if v else ("no", "NO", f"NOT {ln['path'].rsplit('.', 1)[-1]}")), ln
                elif isinstance(v, (int, float)) and math.isfinite(v):
                    assert float(text) == pytest.approx(v, rel=0.06, abs=1e-300), ln
    assert set(page.anchors) <= page.ids  # every link of the table of contents resolves
    return page


def _fig4_record(schedule, perturbation, i):
    """A record with the keys of ``fig4.json`` (`jaxsa.experiments.fig4.fig4_records`)."""
    scalars = dict(eta=0.0898 + i / 100, c1=0.1089 + i / 100, c2=0.2025 + i / 100, entropy_bound=0.2025 + i / 100,
                   D0=1.718, W1_q_p=0.607, W1_init=1.0, delta_W1=-0.393, path_length=0.411, W2_sq=0.147,
                   length_bound=0.169, ot_bound=0.147, v2_sq_max=0.383)
    slacks = dict(slack_77=0.113, slack_80=7.7e-9, slack_82_eta_c1=0.019, slack_82_c1_c2=0.094,
                  slack_91_c2_length=0.0335, slack_91_length_ot=0.0218)
    rec = {"schedule": schedule, "perturbation": perturbation, **scalars, **slacks,
           "chi2_residual": 5e-14, "forward_endpoint_error": 0.0, "mass_outside_grid": 2.9e-7,
           "ode_steps": 0, "converged": True, "D0_finite": True, "n_crossings": 0}
    rec.update({f"{k}_err": 1e-14 for k in list(scalars) + list(slacks)})
    rec.update({"t": [0.0, 0.5, 1.0], "v2_sq": [0.0, 0.1, 0.2], "ode_success": True, "violations": {}})
    return rec


def synthetic_run(out):
    """A directory like the output of every ``jaxsa`` command that writes a page, without JAX:
    Fig. 4/5-like records (one not converged, one violation, round-off slacks), the
    non-conservative, image, sweep, validation and steps files' shapes, a figure-only PNG and
    an unreadable JSON file. Returns the path of ``index.html``."""
    import matplotlib.pyplot as plt

    from jaxsa.results.html import write_index

    prov = {"jaxsa": "0.1.0", "jax": "0.10", "device": {"kind": "cpu", "count": 1}, "dtype": "float64",
            "command": "jaxsa reproduce fig4", "timing": {"total_s": 1.5}}
    recs = [_fig4_record(s, p, i) for i, (s, p) in enumerate(
        (s, p) for s in ("cosine", "cond-ot", "ot") for p in ("mean", "variance", "mixture", "uniform"))]
    recs[8]["slack_82_eta_c1"] = -6.9e-17  # round-off: an equality (OT: eta = c1)
    recs[8]["slack_91_length_ot"] = 0.0
    recs[9]["slack_82_eta_c1"], recs[9]["slack_82_eta_c1_err"] = -1e-4, 1e-9  # negative, tolerated
    recs[5]["converged"] = False
    recs[6]["slack_80"], recs[6]["violations"] = -1e-3, {"slack_80": -1e-3}
    for stem in ("fig4", "fig5", "figonly"):
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1])
        fig.savefig(os.path.join(out, f"{stem}.png"))
        plt.close(fig)
    docs = {
        "fig4": {"provenance": prov, "records": recs},
        "fig5": {"provenance": prov, "x": [-1.0, 0.0, 1.0], "t": [0.0, 1.0], "records": [
            {"schedule": r["schedule"], "perturbation": r["perturbation"], "forward_density": [[0.1, 0.2, 0.1]] * 2}
            for r in recs]},
        "nonconservative": {"provenance": prov, "records": [
            {"g": g, "eta": 0.05, "eta_lower": 0.049, "eta_upper": 0.051, "c2": 0.4, "entropy_bound": 0.3 + g,
             "D0": 1.7, "W1_q_p": 0.6, "W1_init": 1.0, "W1_q_p_upper": 0.61, "W1_init_upper": 1.01,
             "slack_77": 0.25 + g, "forward_error": 1e-4, "mass_error": 1e-12, "min_density": 1e-30,
             "max_cfl": 0.4, "sinkhorn_converged": True, "eq77_holds": True, "v2_sq_projected": [0.1, 0.2],
             "audit": {"eta": 0.05, "eta_ci": [0.04, 0.06], "entropy_bound": 0.3, "n_particles": 4096},
             "grid_eta_in_audit_ci": g < 1} for g in (0.0, 0.5, 1.0)]},
        "images": {"provenance": prov, "notes": "Learned models: CFM networks.", "image_shape": [8, 8],
                   "images": {"cosine:learned": {"none": [[0.0] * 64] * 4}}, "records": [
            {"schedule": "cosine", "field": k, "perturbation": "mean", "dim": 64, "eta": 0.01,
             "eta_ci": [0.0, 0.02], "c1": 0.02, "c1_ci": [0.01, 0.03], "model_error": 1.2,
             "eta_resolved": k == "learned", "crn": True, "n_particles": 2048, "t": [0.0, 1.0],
             **({} if k == "learned" else {"why_unresolved": "eta interval [0.0, 0.02] (relative half-width 1.0)"})}
            for k in ("learned", "exact")]},
        "sweep": {"spec": {"family": "cosine-power", "grid": {"a": [0.5, 1.0]}}, "complete": True,
                  "provenance": prov, "records": [
            {"index": i, "params": {"a": a}, "perturbation": ("mean", "variance")[i], "eta": 0.1, "c1": 0.2, "c2": 0.3,
             "D0": 1.0, "delta_W1": -0.2, "slack_77": 0.2, "eta_err": 1e-12, "slack_77_err": 1e-12,
             "converged": True, "D0_finite": True, "ode_success": True, "refined": False}
            for i, a in enumerate((0.5, 1.0))]},
        "validate": {"complete": True, "n": 64, "n_converged": 63, "rtol": 1e-6,
                     "violations": {"slack_77": 0, "slack_80": 0}, "ratios": {"eta_over_c1": [0.5, 0.6]},
                     "provenance": prov},
        "steps": {"provenance": prov, "records": [
            {"data": "paper", "schedule": "cosine", "rule": r, "nfe": 6, "n_steps": 3, "method": "heun",
             "W1": 0.05, "W1_err": 4e-5, "W1_floor": 1e-12, "floor_ode_ok": True} for r in ("uniform", "edm")],
            "winners": [{"data": "paper", "schedule": "cosine", "nfe": 6, "best": "edm", "W1_best": 0.04,
                         "tied_within_error": ["edm"]}],
            "grids": [{"data": "paper", "rule": "edm", "grid": [0.0, 0.5, 1.0]}]},
    }
    for stem, doc in docs.items():
        with open(os.path.join(out, f"{stem}.json"), "w") as f:
            json.dump(doc, f)
    with open(os.path.join(out, "broken.json"), "w") as f:
        f.write("{not json")
    return write_index(str(out))
