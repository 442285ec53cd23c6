"""The results page in a headless Chromium 1400 px wide: every table is found, has rows and fits
(no horizontal scrolling, of a table or of the page), with every fold opened.

The page itself has no script: the test appends one to a copy, which opens the folds, measures
each table's ``scrollWidth`` against its ``clientWidth`` and writes the result into the DOM that
``--dump-dom`` prints. Skipped where no Chromium is installed."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess

import pytest

from tests.helpers.results_page import parse_index, synthetic_run

_MEASURE = """<script>
(function () {
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
  var root = document.documentElement, out = {page: {scrollWidth: root.scrollWidth,
    clientWidth: root.clientWidth}, tables: []};
  document.querySelectorAll('table').forEach(function (t) {
    out.tables.push({id: t.id, rows: t.querySelectorAll('tbody tr').length,
                     scrollWidth: t.scrollWidth, clientWidth: t.clientWidth});
  });
  out.page.scrollWidth = root.scrollWidth;  // again, with the folds open
  var pre = document.createElement('pre');
  pre.id = 'measure';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def measure(page_path, tmp_path, width=1400):
    """Open a copy of ``page_path`` with the measuring script in headless Chromium ``width`` px
    wide; return the measurements (``page`` and one entry per table)."""
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium (chromium, chromium-browser or google-chrome) on PATH: "
                    "the layout of the results page is not checked in a browser here")
    with open(page_path, encoding="utf-8") as f:
        text = f.read()
    copy = tmp_path / "measured.html"  # beside the page: the same relative links
    copy.write_text(text.replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--window-size={width},1000",
           "--dump-dom", copy.as_uri()]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("headless Chromium did not finish within 60 s")
    m = re.search(r'<pre id="measure">(.*?)</pre>', res.stdout, re.S)
    assert m, f"no measurements from Chromium (rc {res.returncode}): {res.stderr[-2000:]}"
    return json.loads(html.unescape(m.group(1)))


def test_every_table_fits_at_1400px(tmp_path):
    out = tmp_path / "run"
    os.makedirs(out)
    path = synthetic_run(out)
    expected = parse_index(path).tables
    got = measure(path, out)
    found = {t["id"]: t for t in got["tables"]}
    assert set(found) == set(expected)  # every table is found
    assert len(found) >= 10
    for tid, t in found.items():
        assert t["rows"] == expected[tid]["rows"] > 0, tid
        assert t["clientWidth"] > 0, f"{tid} is not displayed"
        assert t["scrollWidth"] <= t["clientWidth"], f"{tid} scrolls sideways at 1400 px: {t}"
    assert got["page"]["scrollWidth"] <= got["page"]["clientWidth"], got["page"]
