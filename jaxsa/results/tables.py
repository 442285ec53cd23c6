"""The record tables of the results page (used by [`write_index`][jaxsa.results.html.write_index]).

[`records_html`][jaxsa.results.tables.records_html] turns a JSON list of records (dicts) into
tables that fit a 1400 px wide window, however many fields the records have:

* a main table: the identifiers (short strings, ``g``, ``nfe``, the keys of ``params``, …), the
  paper's quantities η, c₁, c₂, D₀, ΔW₁ (or, for records without them, their first numbers),
  each with its error estimate ``<name>_err`` (as ±) or its interval ``<name>_ci`` /
  ``<name>_lower``, ``<name>_upper`` beneath, and the status flags (``converged``, …, the
  ``violations``); records that are not converged, or fail a check, are highlighted;
* an inequalities table: every ``slack_*`` field with its error estimate and its size relative
  to the side of the inequality that sets its scale; slacks within their own error estimate or
  within ``1000 ε`` of the scale are marked as round-off (the two sides agree to machine
  precision: the inequality is tight, not violated);
* folds with all other scalar fields, split into tables narrow enough to fit, and the long text
  fields as notes; array-valued fields are listed with their shapes (the numbers are in the JSON).

Every number links to the JSON file, its ``title`` giving its path (``records[3].eta``).
Records whose fields are all identifiers or arrays (Fig. 5's densities) get a short summary of
what the JSON holds instead of a table of labels.
"""

from __future__ import annotations

import html
import math
import re

__all__ = ["records_html", "flatten", "fmt", "link", "MAIN_QUANTITIES", "SLACKS", "STATUS_FLAGS"]

#: the paper's quantities shown in the main table when present
MAIN_QUANTITIES = ("eta", "c1", "c2", "D0", "delta_W1")
#: numbers that identify a record rather than measure something
ID_KEYS = ("g", "dim", "index", "nfe", "n_steps", "seed")
#: dicts whose entries identify a record (flattened to ``params.<name>``)
ID_DICTS = ("params", "config")
#: boolean fields that should be true (a false one flags its record)
STATUS_FLAGS = ("converged", "eta_resolved", "D0_finite", "ode_success", "sinkhorn_converged",
                "floor_ode_ok", "eq77_holds", "chain_holds", "grid_eta_in_audit_ci")
#: slack -> (equation, inequality, field setting its scale); the scale is the larger side, as in
#: ``jaxsa.relations.report.SCALE_OF`` (which this stage-0 module may not import)
SLACKS = {
    "slack_77": ("Eq. 77", "η ≤ entropy_bound", "entropy_bound"),
    "slack_80": ("Eq. 80", "v_loss² ≤ v₂² (min over t)", "v2_sq_max"),
    "slack_82_eta_c1": ("Eq. 82", "η ≤ c₁", "c1"),
    "slack_82_c1_c2": ("Eq. 82", "c₁ ≤ c₂", "c2"),
    "slack_91_c2_length": ("Eq. 91", "L²/τ ≤ c₂", "c2"),
    "slack_91_length_ot": ("Eq. 91", "W₂²/τ ≤ L²/τ", "length_bound"),
}
#: the order of the other fields (when present), then their order in the records
ORDER = ("entropy_bound", "W1", "W1_floor", "W1_q_p", "W1_init", "W1_init_exact", "path_length",
         "W2_sq", "length_bound", "ot_bound", "v2_sq_max", "model_error")
COMPANIONS = ("_err", "_ci", "_lower", "_upper")
MAX_ROWS = 500  # rows per table; larger files show the flagged records and the first ones
WIDTH = 1120  # px a table may take (the page's content is 1200 px wide)
PX_CHAR = 8.8  # px per character of the tables' text (wide digits, bold headers)
SHORT = 24  # longer strings are notes, not identifiers


def fmt(v, sig: int = 6) -> str:
    """A JSON value as short text: 6 significant digits, yes/no, ``inf``, lists joined."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else f"{v:.{sig}g}"
    if v is None:
        return "null"
    if isinstance(v, list):
        return ", ".join(fmt(x, sig) for x in v)
    return str(v)


def link(text: str, src: str, path: str, cls: str = "v") -> str:
    """``text`` (escaped) as a link to the JSON file ``src`` whose ``title`` names ``path``."""
    s, p = html.escape(src), html.escape(path)
    return f'<a class="{cls}" href="{s}" title="{s}: {p}" data-path="{p}">{html.escape(text)}</a>'


def _key(path: str, k: str) -> str:
    return f"{path}.{k}" if re.fullmatch(r"[A-Za-z_]\w*", k) else f"{path}[{k!r}]"


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _describe(v, values: bool) -> str:
    """An array's shape; with ``values``, for a short list of numbers its values, for a long one
    its range."""
    shape, x = [], v
    while isinstance(x, list):
        shape.append(len(x))
        x = x[0] if x else None
    text = "×".join(map(str, shape))
    if values and len(shape) == 1 and v and all(_is_num(e) for e in v):
        text += ": " + (", ".join(fmt(e, 3) for e in v) if len(v) <= 6 else f"{fmt(min(v), 3)} … {fmt(max(v), 3)}")
    return text


def flatten(obj: dict, path: str, depth: int = 2, values: bool = False):
    """``(fields, arrays)`` of a JSON object: ``fields`` maps a name (``audit.eta`` for nested
    dicts, up to ``depth`` levels) to ``(value, JSON path)`` for scalars, lists of strings and
    ``*_ci`` pairs, and ``violations`` as it is; ``arrays`` maps the other lists to their shapes
    (as text; with ``values`` also the values of short lists of numbers, the range of long ones)."""
    fields, arrays = {}, {}
    for k, v in obj.items():
        name, p = k, _key(path, k)
        if k == "violations" or _scalar(v):
            fields[name] = (v, p)
        elif isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            fields[name] = (v, p)
        elif (isinstance(v, list) and len(v) == 2 and k.endswith("_ci")
              and all(isinstance(x, (int, float)) for x in v)):
            fields[name] = (v, p)
        elif isinstance(v, dict) and depth > 1:
            f, a = flatten(v, p, depth - 1, values)
            fields.update({f"{k}.{n}": x for n, x in f.items()})
            arrays.update({f"{k}.{n}": x for n, x in a.items()})
        elif isinstance(v, (list, dict)):
            arrays[name] = _describe(v, values) if isinstance(v, list) else f"{len(v)} entries"
    return fields, arrays


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _classify(flats: list) -> dict:
    names = []
    for f in flats:
        names += [n for n in f if n not in names]
    vals = {n: [f[n][0] for f in flats if n in f] for n in names}
    comp = {}  # base -> {suffix: name}
    for n in names:
        for suf in COMPANIONS:
            base = n[: -len(suf)]
            if n.endswith(suf) and base in vals and all(_is_num(x) for x in vals[base]):
                comp.setdefault(base, {})[suf] = n
    taken = {n for c in comp.values() for n in c.values()}
    groups = {"ident": [], "main": [], "status": [], "slack": [], "other": [], "note": []}
    for n in names:
        vs = vals[n]
        if n in taken or n == "violations":
            continue
        if n in STATUS_FLAGS and all(isinstance(x, bool) for x in vs):
            groups["status"].append(n)
        elif n.startswith("slack") and all(_is_num(x) for x in vs):
            groups["slack"].append(n)
        elif all(isinstance(x, (str, list)) and len(fmt(x)) <= SHORT for x in vs) or (
                (n in ID_KEYS or n.split(".")[0] in ID_DICTS) and all(_is_num(x) or isinstance(x, str) for x in vs)):
            groups["ident"].append(n)
        elif any(isinstance(x, (str, list)) for x in vs):
            groups["note"].append(n)
        else:
            groups["other"].append(n)
    nums = [n for n in groups["other"] if all(_is_num(x) for x in vals[n])]
    main = [n for n in MAIN_QUANTITIES if n in nums] or [n for n in _ordered(nums) if n in comp][:5] or _ordered(nums)[:4]
    groups["main"] = main
    groups["other"] = _ordered([n for n in groups["other"] if n not in main])
    const = [n for n in groups["ident"] if len(flats) > 1 and len({fmt(x) for x in vals[n]}) == 1
             and len(vals[n]) == len(flats)]
    groups["const"] = const
    groups["ident"] = [n for n in groups["ident"] if n not in const]
    groups["comp"] = comp
    return groups


def _ordered(names: list) -> list:
    first = [n for n in ORDER if n in names]
    return first + [n for n in names if n not in first]


def _head(name: str, sub: str = "", cls: str = "") -> str:
    parts = [html.escape(p) for p in re.split(r"(?<=[_.])", name)]
    small = f"<br><small>{sub}</small>" if sub else ""
    c = f' class="{cls}"' if cls else ""
    return f'<th data-key="{html.escape(name)}"{c}>{"<wbr>".join(parts)}{small}</th>'


def _comp_text(f: dict, comp: dict) -> list:
    """The lines beneath a value (error, interval, bounds): lists of ``(text, JSON path or None)``."""
    out = []
    if "_err" in comp and comp["_err"] in f:
        e, p = f[comp["_err"]]
        out.append([(f"± {fmt(e, 2)}", p)])
    if "_ci" in comp and comp["_ci"] in f:
        (lo, hi), p = f[comp["_ci"]]
        out.append([(f"[{fmt(lo, 4)}, {fmt(hi, 4)}]", p)])
    lo, hi = (f.get(comp.get(k, ""), (None, "")) for k in ("_lower", "_upper"))
    if lo[0] is not None and hi[0] is not None:
        out.append([("[", None), (fmt(lo[0], 4), lo[1]), (", ", None), (fmt(hi[0], 4), hi[1]), ("]", None)])
    elif lo[0] is not None:
        out.append([("≥ ", None), (fmt(lo[0], 4), lo[1])])
    elif hi[0] is not None:
        out.append([("≤ ", None), (fmt(hi[0], 4), hi[1])])
    return out


def _line(pieces: list, src: str) -> str:
    return "".join(link(t, src, p) if p else html.escape(t) for t, p in pieces)


def _text(pieces: list) -> str:
    return "".join(t for t, _ in pieces)


def _value_cell(f: dict, name: str, comp: dict, src: str) -> str:
    if name not in f:
        return "<td></td>"
    v, p = f[name]
    cls = ' class="s"' if isinstance(v, (str, list)) else ""
    if isinstance(v, bool) and not v and name in STATUS_FLAGS:
        cls = ' class="bad"'
    text = "NO" if cls == ' class="bad"' else fmt(v)
    sub = "".join(f'<span class="e">{_line(ln, src)}</span>' for ln in _comp_text(f, comp))
    return f"<td{cls}>{link(text, src, p)}{sub}</td>"


def _checks_cell(f: dict, flags: list, src: str, ok: str = "ok") -> str:
    bad = [n for n in flags if n in f and f[n][0] is False]
    viol = f.get("violations", (None, ""))
    parts = [link(f"NOT {n}", src, f[n][1], "v bad") for n in bad]
    if isinstance(viol[0], dict) and viol[0]:
        parts.append(link("violates " + ", ".join(viol[0]), src, viol[1], "v bad"))
    if parts:
        return '<td class="s">' + "<br>".join(parts) + "</td>"
    paths = "; ".join(f[n][1] for n in flags if n in f) + ("; " + viol[1] if viol[1] else "")
    return f'<td class="s ok" title="{html.escape(paths)}">{ok}</td>'


def _roundoff(v: float, err, scale, eps: float) -> bool:
    err = err if isinstance(err, (int, float)) and math.isfinite(err) else 0.0
    tiny = 1000 * eps * abs(scale) if isinstance(scale, (int, float)) and math.isfinite(scale) else 0.0
    return abs(v) <= max(err, tiny)


def _slack_cell(f: dict, name: str, comp: dict, src: str, eps: float, stats: dict) -> str:
    if name not in f:
        return "<td></td>"
    v, p = f[name]
    err = f[comp["_err"]][0] if "_err" in comp and comp["_err"] in f else None
    scale_key = SLACKS.get(name, (None, None, None))[2]
    scale = f.get(scale_key, (None, ""))[0] if scale_key else None
    viol = f.get("violations", ({}, ""))[0]
    if isinstance(viol, dict) and name in viol:
        cls, mark = "bad", "violated"
    elif _is_num(v) and math.isfinite(v) and _roundoff(v, err, scale, eps):
        cls, mark = "ro", "≈ 0 round-off"
        stats["roundoff"] += 1
    elif _is_num(v) and v < 0:
        cls, mark = "neg" if isinstance(viol, dict) else "bad", "negative"
    else:
        cls, mark = "", ""
    sub = [_line(ln, src) for ln in _comp_text(f, comp)]
    if _is_num(scale) and scale and not mark:
        r = v / abs(scale)
        sub.append(link(f"{r:.0%}" if abs(r) >= 1e-3 else f"{r:.1e}", src, f"{p} / {f[scale_key][1]}")
                   + " of " + link(fmt(scale, 4), src, f[scale_key][1]))
    if mark:
        sub.append(f'<span class="mark">{html.escape(mark)}</span>')
    lines = "".join(f'<span class="e">{s}</span>' for s in sub)
    return f'<td class="{cls}">{link(fmt(v), src, p)}{lines}</td>'


def _width(texts, scale: float = 1.0) -> float:
    return max((len(t) for t in texts), default=0) * PX_CHAR * scale + 16


def _col_width(name: str, flats: list, comp: dict, sub: tuple = (), extra: int = 0) -> float:
    """Estimated px width of a column: its header (split at ``_`` and ``.``, small lines ``sub``)
    and its cells (the value, then the smaller lines beneath; ``extra`` characters more)."""
    if name == "_checks":
        return _width(["NOT converged"])
    first, small = [], ["x" * extra]
    for f in flats:
        if name in f:
            first.append(fmt(f[name][0]))
            small += [_text(ln) for ln in _comp_text(f, comp.get(name, {}))]
    heads = re.split(r"(?<=[_.])", name)
    return max(_width(heads, 1.05), _width(sub, 0.8), _width(first), _width(small, 0.8))


def _pack(names: list, widths: dict, budget: float) -> list:
    chunks, cur, used = [], [], 0.0
    for n in names:
        if cur and used + widths[n] > budget:
            chunks.append(cur)
            cur, used = [], 0.0
        cur.append(n)
        used += widths[n]
    return chunks + ([cur] if cur else [])


def _table(tid: str, src: str, idents: list, cols: list, heads: dict, rows: list, cell) -> str:
    head = "".join(_head(n, cls="s") for n in idents) + "".join(heads.get(c) or _head(c) for c in cols)
    body = []
    for i, f, rcls in rows:
        cells = "".join(_value_cell(f, n, {}, src) for n in idents) + "".join(cell(f, c) for c in cols)
        body.append(f'<tr id="{html.escape(tid)}-r{i}"{rcls}>{cells}</tr>')
    return (f'<table id="{html.escape(tid)}" data-source="{html.escape(src)}"><thead><tr>{head}'
            f"</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>")


def _labels_summary(stem: str, key: str, flats: list, groups: dict, arrays: dict) -> str:
    """For records of labels and arrays only: what the JSON holds, in a sentence."""
    labs = []
    for n in groups["const"] + groups["ident"]:
        seen = list(dict.fromkeys(fmt(f[n][0]) for f in flats if n in f))
        labs.append(f"{html.escape(n)} ∈ {{{html.escape(', '.join(seen[:12]))}{', …' if len(seen) > 12 else ''}}}")
    arr = ", ".join(f"<code>{html.escape(n)}</code> ({html.escape(s)})" for n, s in arrays.items())
    return (f'<p id="contents-{html.escape(stem)}{"" if key == "records" else "-" + html.escape(key)}">'
            f"<code>{html.escape(key)}</code>: {len(flats)} record{'s' * (len(flats) != 1)}, "
            f"labelled by {', '.join(labs) or 'position'}; each holds the arrays {arr or '(none)'}, "
            f"whose numbers are in <code>{html.escape(stem)}.json</code>.</p>")


def records_html(stem: str, key: str, records: list, eps: float = 2.220446049250313e-16):
    """HTML for the list ``records`` found under ``key`` in ``stem.json``; ``eps`` is the machine
    epsilon of the run (round-off marks). Returns ``(html, stats)``; ``stats`` counts the
    records (``n``), the not converged (``not_converged``), those failing any check or with
    violations (``flagged``), the violations and the round-off slacks."""
    src = f"{stem}.json"
    tid = f"table-{stem}" if key == "records" else f"table-{stem}-{key}"
    flat = [flatten(r, f"{key}[{i}]") for i, r in enumerate(records)]
    flats = [f for f, _ in flat]
    arrays = {}
    for _, a in flat:
        arrays.update({n: s for n, s in a.items() if n not in arrays})
    g = _classify(flats)
    comp = g["comp"]
    stats = {"n": len(records), "not_converged": 0, "flagged": 0, "violations": 0, "roundoff": 0,
             "table": bool(g["main"] or g["slack"] or g["status"] or g["other"])}
    if not stats["table"]:
        return _labels_summary(stem, key, flats, g, arrays), stats
    rows = []
    for i, f in enumerate(flats):
        nc = "converged" in f and f["converged"][0] is False
        viol = f.get("violations", (None, ""))[0]
        flagged = nc or any(f[n][0] is False for n in g["status"] if n in f) or bool(viol)
        stats["not_converged"] += nc
        stats["flagged"] += flagged
        stats["violations"] += len(viol) if isinstance(viol, dict) else 0
        rows.append((i, f, ' class="nc"' if nc else ' class="flag"' if flagged else "", flagged))
    shown = rows
    if len(rows) > MAX_ROWS:
        keep = {r[0] for r in rows if r[3]}
        keep = set(sorted(keep)[:MAX_ROWS])
        keep |= {r[0] for r in rows[: max(0, MAX_ROWS - len(keep))]}
        shown = [r for r in rows if r[0] in keep]
    shown = [r[:3] for r in shown]
    idw = sum(_col_width(n, flats, comp) for n in g["ident"])
    budget = max(WIDTH - idw, 3 * 110)
    status = [n for n in g["status"] if n == "converged"]
    checks = [n for n in g["status"] if n != "converged"]
    out = []
    if g["const"]:
        same = "; ".join(f"{html.escape(n)} = {link(fmt(flats[0][n][0]), src, flats[0][n][1])}" for n in g["const"])
        out.append(f'<p class="legend">The same in every record: {same}.</p>')
    if len(shown) < len(rows):
        out.append(f'<p class="legend">Showing {len(shown)} of {len(rows)} records (the flagged ones, '
                   f"then the first); every record is in <code>{html.escape(src)}</code>.</p>")

    def vcell(f, c):
        if c in ("_checks", "_viol"):
            return _checks_cell(f, checks if c == "_checks" else [], src, "ok" if c == "_checks" else "none")
        return _value_cell(f, c, comp.get(c, {}), src)

    has_viol = any("violations" in f for f in flats)
    widths = {n: _col_width(n, flats, comp) for n in g["main"] + g["other"] + g["status"]}
    widths["_checks"] = widths["_viol"] = _col_width("_checks", flats, comp)
    every = g["main"] + g["other"] + g["status"] + (["_viol"] if has_viol else [])
    if len(_pack(every, widths, budget)) == 1:  # everything fits: one table, a column per flag
        main, spill, g["other"], checks = every, [], [], []
    else:  # the quantities and `converged`; the other flags summed up in "checks"
        flags = status + (["_checks"] if checks or has_viol else [])
        chunks = _pack(g["main"], widths, budget - sum(widths[c] for c in flags))
        main = (chunks[0] if chunks else []) + flags
        spill = [c for ch in chunks[1:] for c in ch]
    heads = {"_checks": '<th data-key="checks" class="s" title="status flags and violations">checks</th>',
             "_viol": '<th data-key="violations" class="s">violations</th>'}
    out.append(_table(tid, src, g["ident"], main, heads, shown, vcell))
    if g["slack"]:
        sw, sh = {}, {}
        for n in g["slack"]:
            eq, ineq, scale = SLACKS.get(n, ("", "", ""))
            sh[n] = _head(n, "<br>".join(html.escape(x) for x in (eq, ineq) if x))
            sw[n] = _col_width(n, flats, comp, (eq, ineq), extra=len("100% of 0.1234") if scale else 0)
        parts = []
        for j, ch in enumerate(_pack(g["slack"], sw, budget)):
            parts.append(_table(f"ineq-{stem}{'' if key == 'records' else '-' + key}{'' if j == 0 else f'-{j}'}",
                                src, g["ident"], ch, sh,
                                shown, lambda f, c: _slack_cell(f, c, comp.get(c, {}), src, eps, stats)))
        out.append(f'<details open id="inequalities-{html.escape(stem)}"><summary>inequalities: '
                   f"{len(g['slack'])} slack{'s' * (len(g['slack']) != 1)} (≥ 0 when the inequality holds)</summary>" + "".join(parts)
                   + '<p class="legend">Each cell: the slack, ± its error estimate (<code>slack_*_err</code>) '
                   "and its size relative to the inequality's scale (its larger side). "
                   '<span class="ro">≈ 0 round-off</span>: |slack| ≤ its error estimate or ≤ 1000 ε '
                   f"({1000 * eps:.1e}) × the scale: the two sides agree to machine precision, so the "
                   "inequality holds with equality (as η = c₁ for the OT schedule); it is not violated. "
                   '<span class="bad">violated</span>: in the record\'s <code>violations</code> (slack below '
                   '−(rtol × scale + error)); <span class="neg">negative</span>: below zero beyond '
                   "round-off, yet not listed as a violation.</p></details>")
    other = spill + g["other"] + checks  # the checks again, one column each
    if other:
        parts = [_table(f"other-{stem}{'' if key == 'records' else '-' + key}-{j}", src, g["ident"], ch, {},
                        shown, vcell)
                 for j, ch in enumerate(_pack(other, {n: _col_width(n, flats, comp) for n in other}, budget))]
        out.append(f'<details id="other-{html.escape(stem)}{"" if key == "records" else "-" + html.escape(key)}">'
                   f"<summary>other fields ({len(other)}): {html.escape(', '.join(other[:8]))}"
                   f"{', …' if len(other) > 8 else ''}</summary>" + "".join(parts) + "</details>")
    notes = [(i, n, f[n]) for i, f, _ in shown for n in g["note"] if n in f and f[n][0] not in ("", None)]
    if notes:
        items = "".join(f"<li>{link(f'{key}[{i}].{n}', src, p)}: {html.escape(fmt(v))}</li>" for i, n, (v, p) in notes)
        out.append(f"<details open><summary>notes ({len(notes)})</summary><ul class=\"notes\">{items}</ul></details>")
    if arrays:
        arr = ", ".join(f"<code>{html.escape(n)}</code> ({html.escape(s)})" for n, s in arrays.items())
        out.append(f'<p class="legend">Arrays in each record (in <code>{html.escape(src)}</code>): {arr}.</p>')
    return "\n".join(out), stats
