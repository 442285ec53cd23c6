"""The results page ``DIR/index.html`` (jaxsa.results.html): every figure and table it names is there."""

from __future__ import annotations

import base64
import json
import os
from html.parser import HTMLParser

import matplotlib
import pytest

matplotlib.use("Agg")


class _IndexParser(HTMLParser):
    """Collects figures (id, alt, decoded image bytes), tables (id, header, row count) and links."""

    def __init__(self):
        super().__init__()
        self.figures, self.tables, self.anchors, self.ids = {}, {}, [], set()
        self._table = None
        self._in_head = False
        self._row_cells = 0

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
            self._table = a["id"]
            self.tables[self._table] = {"columns": [], "rows": 0, "source": a.get("data-source")}
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and self._table and not self._in_head:
            self.tables[self._table]["rows"] += 1
        elif tag == "a" and a.get("href", "").startswith("#"):
            self.anchors.append(a["href"][1:])
        elif tag in ("link", "script") and (a.get("href") or a.get("src")):
            raise AssertionError(f"external resource in the page: {a}")
        self._tag = tag

    def handle_endtag(self, tag):
        if tag == "thead":
            self._in_head = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in_head and self._table and self._tag == "th":
            self.tables[self._table]["columns"].append(data)


def parse_index(path):
    p = _IndexParser()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p


def check_index(out_dir):
    """Every PNG in ``out_dir`` is embedded and every JSON with records has a full table."""
    page = parse_index(os.path.join(out_dir, "index.html"))
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
            if doc.get("records"):
                tab = page.tables[f"table-{stem}"]
                assert tab["rows"] == len(doc["records"]) and tab["source"] == name
                for col in ("eta", "c1", "c2", "entropy_bound", "D0"):
                    if col in doc["records"][0]:
                        assert col in tab["columns"], (name, col)
            if "provenance" in doc:
                assert f"provenance-{stem}" in page.ids
    assert set(page.anchors) <= page.ids  # every link of the table of contents resolves
    return page


def test_index_from_synthetic_run(tmp_path):
    import matplotlib.pyplot as plt

    from jaxsa.results.html import write_index

    recs = [{"schedule": s, "perturbation": "mean", "eta": 0.01, "c1": 0.1, "c2": 0.5,
             "entropy_bound": 0.5, "D0": 1.2, "t": [0.0, 1.0], "violations": {}}
            for s in ("cosine", "cond-ot")]
    recs[1]["violations"] = {"eq80": 1e-3}
    for stem in ("figA", "figB"):
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1])
        fig.savefig(tmp_path / f"{stem}.png")
        plt.close(fig)
    (tmp_path / "figA.json").write_text(json.dumps({"provenance": {"jax": "x"}, "records": recs}))
    (tmp_path / "other.json").write_text(json.dumps({"provenance": {"seed": 1}, "x": [1, 2]}))
    (tmp_path / "broken.json").write_text("{not json")
    path = write_index(str(tmp_path))
    page = check_index(str(tmp_path))
    assert set(page.figures) == {"figA", "figB"}
    assert set(page.tables) == {"table-figA"}
    assert page.tables["table-figA"]["columns"][:3] == ["schedule", "perturbation", "eta"]
    assert "t" not in page.tables["table-figA"]["columns"]  # arrays stay in the JSON
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert "could not read broken.json" in text and "eq80" in text


def test_index_bad_directory(tmp_path):
    from jaxsa.results.html import write_index

    with pytest.raises(ValueError, match="out_dir"):
        write_index(str(tmp_path / "missing"))
