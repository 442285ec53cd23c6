"""One self-contained results page for a ``jaxsa reproduce`` output directory.

[`write_index`][jaxsa.results.html.write_index] reads whatever ``*.json`` and ``*.png`` files a run left in a directory and
writes ``DIR/index.html``: every figure embedded as a base64 PNG, for every JSON file a table of
its ``records`` (the scalar fields: η, c₁, c₂, D₀, the bounds and slacks of the inequalities, …;
arrays are left to the JSON) and its ``provenance`` (versions, device, settings, seeds, timings).
It knows nothing about particular figures, so results of new experiments appear without changes
here. The page needs no network access (no scripts, fonts or styles from elsewhere).
"""

from __future__ import annotations

import base64
import datetime
import glob
import html
import json
import os

__all__ = ["write_index", "PREFERRED_COLUMNS"]

# columns shown first when present (identifiers, then the paper's quantities and bounds)
PREFERRED_COLUMNS = (
    "schedule", "perturbation", "g", "dim", "name", "eta", "c1", "c2", "entropy_bound",
    "length_bound", "ot_bound", "D0", "delta_W1", "W1_q_p", "W1_init", "W2_sq", "path_length",
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:1em 0;display:block;overflow-x:auto}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td.s{text-align:left}img{max-width:100%;height:auto}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}
.bad{color:#b00;font-weight:bold}
"""


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _is_scalar(v) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None


def _columns(records) -> list:
    cols = []
    for r in records:
        for k, v in r.items():
            if k not in cols and (_is_scalar(v) or k == "violations"):
                cols.append(k)
    first = [c for c in PREFERRED_COLUMNS if c in cols]
    return first + [c for c in cols if c not in first]


def _cell(key, v) -> str:
    if key == "violations":
        if not v:
            return '<td class="s">none</td>'
        return f'<td class="s bad">{html.escape(json.dumps(v))}</td>'
    cls = ' class="s"' if isinstance(v, str) else ""
    return f"<td{cls}>{html.escape(_fmt(v))}</td>"


def _records_table(stem: str, records: list) -> str:
    cols = _columns(records)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = "".join("<tr>" + "".join(_cell(c, r.get(c, "")) for c in cols) + "</tr>\n"
                   for r in records)
    return (f'<table id="table-{html.escape(stem)}" data-source="{html.escape(stem)}.json">'
            f"<thead><tr>{head}</tr></thead><tbody>\n{rows}</tbody></table>")


def _provenance(stem: str, prov) -> str:
    text = html.escape(json.dumps(prov, indent=2, sort_keys=True, default=str))
    return f'<details id="provenance-{html.escape(stem)}"><summary>provenance</summary><pre>{text}</pre></details>'


def write_index(out_dir: str, title: str = "jaxsa results") -> str:
    """Write ``out_dir/index.html`` from the ``*.json`` and ``*.png`` files there; return its path.

    Each figure ``NAME.png`` becomes ``<figure id="fig-NAME">`` with an embedded image; each
    ``NAME.json`` with a list ``records`` of dicts becomes ``<table id="table-NAME">`` (one row
    per record, scalar fields as columns), and its ``provenance`` a collapsible block. JSON files
    that cannot be read are listed with the error rather than stopping the page.
    """
    if not os.path.isdir(out_dir):
        raise ValueError(f"write_index: `out_dir` must be an existing directory, got {out_dir!r}.")
    pngs = sorted(glob.glob(os.path.join(out_dir, "*.png")))
    jsons = sorted(glob.glob(os.path.join(out_dir, "*.json")))
    stems = sorted({os.path.splitext(os.path.basename(p))[0] for p in pngs + jsons})
    toc, body = [], []
    for stem in stems:
        png = os.path.join(out_dir, stem + ".png")
        js = os.path.join(out_dir, stem + ".json")
        sec = [f'<section id="{html.escape(stem)}"><h2>{html.escape(stem)}</h2>']
        if os.path.exists(png):
            with open(png, "rb") as f:
                b64 = base64.b64encode(f.read()).decode("ascii")
            sec.append(f'<figure id="fig-{html.escape(stem)}"><img alt="{html.escape(stem)}" '
                       f'src="data:image/png;base64,{b64}"><figcaption>{html.escape(stem)}.png'
                       "</figcaption></figure>")
        if os.path.exists(js):
            try:
                with open(js) as f:
                    obj = json.load(f)
            except (OSError, ValueError) as e:
                sec.append(f'<p class="bad">could not read {html.escape(stem)}.json: {html.escape(str(e))}</p>')
                obj = None
            if isinstance(obj, dict):
                recs = obj.get("records")
                if isinstance(recs, list) and recs and all(isinstance(r, dict) for r in recs):
                    sec.append(f"<p>{len(recs)} records from <code>{html.escape(stem)}.json</code>; "
                               "array-valued fields are in the JSON file.</p>")
                    sec.append(_records_table(stem, recs))
                if "provenance" in obj:
                    sec.append(_provenance(stem, obj["provenance"]))
        sec.append("</section>")
        body.append("\n".join(sec))
        toc.append(f'<li><a href="#{html.escape(stem)}">{html.escape(stem)}</a></li>')
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            f"<h1>{html.escape(title)}</h1><p>Generated {now} from the files in "
            f"<code>{html.escape(os.path.abspath(out_dir))}</code>.</p>\n"
            f"<nav><ul>{''.join(toc)}</ul></nav>\n" + "\n".join(body) + "\n</body></html>\n")
    path = os.path.join(out_dir, "index.html")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)
    return path
