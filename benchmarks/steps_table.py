"""Markdown tables of a `jaxsa steps` run (issue 15): one row per data × schedule × NFE, one
column per grid rule, the best rule in bold, and for the d-D (learned-model) rows the 95%
half-width after ``±``. Ties within the error estimates are listed under each table.

    python benchmarks/steps_table.py steps/steps.json
"""

from __future__ import annotations

import json
import sys

RULES = ("uniform", "thermo_length", "thermo_cost", "log_snr", "edm", "ays_gaussian", "optimised")
HEAD = ("uniform", "thermo length", "thermo cost", "log-SNR", "EDM ρ=7", "AYS tan law", "optimised")
NAMES = {"cosine": "cosine", "cond-ot": "cond-OT", "vp": "VP", "c2-opt": "c₂-opt", "ot": "OT"}


def table(records, winners, dd: bool) -> str:
    rows = [r for r in records if ("metric" in r) == dd]
    keys = list(dict.fromkeys((r["data"], r["schedule"], r["nfe"]) for r in rows))
    best = {(w["data"], w["schedule"], w["nfe"]): w for w in winners}
    out = ["| data | schedule | NFE | " + " | ".join(HEAD) + " |", "|---" * (3 + len(HEAD)) + "|"]
    ties = []
    for k in keys:
        cell = {r["rule"]: r for r in rows if (r["data"], r["schedule"], r["nfe"]) == k}
        w = best.get(k)
        vals = []
        for rule in RULES:
            r = cell.get(rule)
            if r is None:
                vals.append("")
                continue
            v = f"{r['W1']:.2e}" + (f" ± {r['W1_err']:.0e}" if dd else "")
            vals.append(f"**{v}**" if w and w["best"] == rule else v)
        if w and len(w["tied_within_error"]) > 1:
            ties.append(f"{k[0]} {NAMES.get(k[1], k[1])} NFE {k[2]}: " + ", ".join(w["tied_within_error"]))
        out.append(f"| {k[0]} | {NAMES.get(k[1], k[1])} | {k[2]} | " + " | ".join(vals) + " |")
    if ties:
        out.append("\nTied within the error estimates: " + "; ".join(ties) + ".")
    return "\n".join(out)


def main(path):
    doc = json.load(open(path))
    recs, wins = doc["records"], doc["winners"]
    print("### 1D (exact W1(q, p_N))\n")
    print(table(recs, wins, dd=False))
    if any("metric" in r for r in recs):
        print("\n### d-D (learned models; pathwise error E|T_N - T| ± 95%)\n")
        print(table(recs, wins, dd=True))
    counts = {}
    for w in wins:
        counts.setdefault(w["data"], {}).setdefault(w["best"], 0)
        counts[w["data"]][w["best"]] += 1
    print("\nBest rule, counts per data set:", json.dumps(counts))
    print("Total time:", doc["provenance"].get("timing", {}))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "steps/steps.json")
