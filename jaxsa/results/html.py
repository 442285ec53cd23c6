"""One self-contained results page for a ``jaxsa`` output directory.

[`write_index`][jaxsa.results.html.write_index] reads whatever ``*.json`` and ``*.png`` files a run left in a directory and
writes ``DIR/index.html``: every figure embedded as a base64 PNG; for every JSON file its lists of
records as tables that fit a 1400 px wide window ([`records_html`][jaxsa.results.tables.records_html]:
the identifiers and the paper's quantities with their error estimates and statuses, the
inequalities' slacks with round-off marked, all other fields in folds; every number linked to its
JSON path), its other top-level fields, and its ``provenance`` (versions, device, settings, seeds,
timings). It knows nothing about particular figures, so results of new experiments appear
without changes here. The page needs no network access and has no script (no fonts or styles
from elsewhere either).
"""

from __future__ import annotations

import base64
import datetime
import glob
import html
import json
import os

from jaxsa.results.tables import flatten, fmt, link, records_html

__all__ = ["write_index"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;
max-width:1200px;padding:0 1em;color:#222;line-height:1.35}
h1{font-size:1.6em;margin-bottom:.3em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0;display:block;overflow-x:auto;
max-width:100%;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:.2em .45em;text-align:right;vertical-align:top;white-space:nowrap}
th{background:#f4f4f4;font-weight:600;vertical-align:bottom;white-space:normal;line-height:1.15}
th small{font-weight:normal;color:#555}td.s,th.s{text-align:left}
td .e{display:block;font-size:.8em;color:#666}
a.v{color:inherit;text-decoration:none}a.v:hover{text-decoration:underline;color:#06c}
tr.nc td{background:#fde4e4}tr.flag td{background:#fff4d6}
td.ok{color:#176117}.bad,.bad a.v{color:#b00;font-weight:bold}.neg,.neg a.v{color:#c05a00}
td.ro,td.ro a.v,span.ro{color:#888}td.ro .mark{font-style:italic}
img{max-width:100%;height:auto}figure{margin:1em 0}figcaption{color:#555;font-size:.9em}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}
details{margin:.5em 0}summary{cursor:pointer;font-weight:600}
.legend{font-size:.85em;color:#444;max-width:60em}ul.notes{font-size:.85em}
nav li span{color:#555;font-size:.9em}dl.kv{font-size:.85em}
"""


def _eps(prov) -> float:
    """Machine epsilon of the run's dtype (its provenance), float64 unless it says float32."""
    dtype = prov.get("dtype") if isinstance(prov, dict) else None
    return 1.1920928955078125e-07 if dtype in ("float32", "bfloat16", "float16") else 2.220446049250313e-16


def _provenance(stem: str, prov) -> str:
    text = html.escape(json.dumps(prov, indent=2, sort_keys=True, default=str))
    line = ""
    if isinstance(prov, dict):
        dev = prov.get("device")
        bits = [f"jaxsa {prov['jaxsa']}" if prov.get("jaxsa") else "", f"jax {prov['jax']}" if prov.get("jax") else "",
                f"{dev.get('kind', '')} × {dev.get('count', '')}" if isinstance(dev, dict) else "",
                str(prov.get("dtype") or ""), str(prov.get("date") or "")]
        tot = (prov.get("timing") or {}).get("total_s") if isinstance(prov.get("timing"), dict) else None
        bits.append(f"{tot:.1f} s" if isinstance(tot, (int, float)) else "")
        line = html.escape(", ".join(b for b in bits if b))
        if prov.get("command"):
            line += f"; <code>{html.escape(str(prov['command']))}</code>"
    return (f'<details id="provenance-{html.escape(stem)}"><summary>provenance</summary>'
            f'<p class="legend">{line}</p><pre>{text}</pre></details>')


def _summary(stem: str, obj: dict, skip: set) -> str:
    """The other top-level fields of a JSON file: scalars and small dicts as a list, arrays by shape."""
    rest = {k: v for k, v in obj.items() if k not in skip}
    fields, arrays = flatten(rest, "", depth=4, values=True)
    src = f"{stem}.json"
    if not fields and not arrays:
        return ""
    items = [f"<dt>{html.escape(n)}</dt><dd>{link(fmt(v), src, p.lstrip('.'))}</dd>"
             for n, (v, p) in list(fields.items())[:80]]
    more = f"<p class=\"legend\">… {len(fields) - 80} more fields in the JSON.</p>" if len(fields) > 80 else ""
    arr = ", ".join(f"<code>{html.escape(n)}</code> ({html.escape(s)})" for n, s in list(arrays.items())[:40])
    arr = f'<p class="legend">Also in <code>{html.escape(src)}</code>: the arrays {arr}{", …" if len(arrays) > 40 else ""}.</p>' if arr else ""
    if not items:
        return arr
    return (f'<details {"open " if len(fields) <= 40 else ""}id="summary-{html.escape(stem)}"><summary>'
            f'other contents of {html.escape(src)}</summary><dl class="kv">{"".join(items)}</dl>{more}{arr}</details>')


def _status_text(stats: list, count: bool = True) -> str:
    n = sum(s["n"] for s in stats if s["table"])
    if not n:
        return ""
    nc, fl, vi = (sum(s[k] for s in stats) for k in ("not_converged", "flagged", "violations"))
    bits = [f"{n} record{'s' * (n != 1)}" if count else ""]
    bits.append(f'<b class="bad">{nc} not converged</b>' if nc else "")
    bits.append(f'<b class="bad">{vi} violation{"s" * (vi != 1)}</b>' if vi else "")
    bits.append(f'<b class="bad">{fl} failing a check</b>' if fl and not (nc or vi) else "")
    bits.append("all checks pass" if not fl else "")
    return ", ".join(b for b in bits if b)


def _json_section(stem: str, obj) -> tuple:
    """HTML of one JSON file's contents and the stats of its record tables."""
    out, stats = [], []
    if not isinstance(obj, dict):
        return "", stats
    eps = _eps(obj.get("provenance"))
    handled = {"provenance"}
    for key, v in obj.items():
        if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            handled.add(key)
            part, st = records_html(stem, key, v, eps)
            stats.append(st)
            if st["table"]:
                what = f"record{'s' * (st['n'] != 1)}" + ("" if key == "records" else f" in <code>{html.escape(key)}</code>")
                line = f"{st['n']} {what} from <code>{html.escape(stem)}.json</code>: {_status_text([st], False)}."
                out.append(f'<p class="count">{line}</p>')
            out.append(part)
    out.append(_summary(stem, obj, handled))
    if "provenance" in obj:
        out.append(_provenance(stem, obj["provenance"]))
    return "\n".join(o for o in out if o), stats


_READ = ("How to read the tables: each number links to its JSON file, and its tooltip gives its "
         "path there (e.g. <code>records[3].eta</code>); an error estimate (<code>±</code>, the "
         "field <code>NAME_err</code>) or an interval (<code>NAME_ci</code>, <code>NAME_lower</code>"
         "/<code>_upper</code>) stands beneath its value. "
         '<span style="background:#fde4e4">Red rows</span>: not converged; '
         '<span style="background:#fff4d6">yellow rows</span>: a check failed or an inequality is '
         "violated. The inequalities and all other fields are in the folds below each table; arrays "
         "stay in the JSON.")


def write_index(out_dir: str, title: str = "jaxsa results") -> str:
    """Write ``out_dir/index.html`` from the ``*.json`` and ``*.png`` files there; return its path.

    Each figure ``NAME.png`` becomes ``<figure id="fig-NAME">`` with an embedded image; each
    ``NAME.json`` with a list ``records`` of dicts becomes a main ``<table id="table-NAME">`` (one
    row per record), an ``ineq-NAME`` table of the slacks and ``other-NAME-*`` tables in a fold
    (other lists of dicts: ``table-NAME-KEY``, …; records of labels and arrays only: a summary
    ``contents-NAME``), its other top-level fields a list ``summary-NAME`` and its ``provenance``
    a collapsible block. JSON files that cannot be read are listed with the error rather than
    stopping the page.
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
        stats = []
        if os.path.exists(js):
            try:
                with open(js) as f:
                    obj = json.load(f)
            except (OSError, ValueError) as e:
                sec.append(f'<p class="bad">could not read {html.escape(stem)}.json: {html.escape(str(e))}</p>')
                obj = None
            part, stats = _json_section(stem, obj)
            sec.append(part)
        sec.append("</section>")
        body.append("\n".join(sec))
        st = _status_text(stats)
        toc.append(f'<li><a href="#{html.escape(stem)}">{html.escape(stem)}</a>'
                   f"{' <span>— ' + st + '</span>' if st else ''}</li>")
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
            f"<h1>{html.escape(title)}</h1><p>Generated {now} from the files in "
            f"<code>{html.escape(os.path.abspath(out_dir))}</code>.</p>\n"
            f'<p class="legend">{_READ}</p>\n'
            f"<nav><ul>{''.join(toc)}</ul></nav>\n" + "\n".join(body) + "\n</body></html>\n")
    path = os.path.join(out_dir, "index.html")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)
    return path
