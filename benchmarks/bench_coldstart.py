"""Cold and warm start of the command line: ``jaxsa reproduce fig4`` as a user runs it.

    python benchmarks/bench_coldstart.py [--repeats 3]

Each repeat runs the whole command in a fresh process twice: first with an empty cache folder
(``XDG_CACHE_HOME`` pointing at a new temporary directory: no compiled and no stored programs,
what a fresh install sees), then again with the cache the first run left (the second run a
user sees). Printed: wall seconds of each run (median, min, max over the repeats), the
command's own split of the time (``compile_s``: tracing or loading the stored programs and
compiling; ``run_s``: executing; from ``fig4.json``'s provenance), the origin of its programs,
and the machine's load average, since on a shared machine the wall time moves with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def _jaxsa():
    script = os.path.join(os.path.dirname(sys.executable), "jaxsa")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "jaxsa"]


def one_run(cache: str, out: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("JAXSA_NO_CACHE", "JAXSA_CACHE")}
    env.update(XDG_CACHE_HOME=cache, MPLBACKEND="Agg")
    t0 = time.perf_counter()
    proc = subprocess.run(_jaxsa() + ["reproduce", "fig4", "--out", out], env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    timing = json.load(open(os.path.join(out, "fig4.json")))["provenance"]["timing"]
    return {"wall_s": wall, "compile_s": timing["compile_s"], "run_s": timing["run_s"],
            "programs": sorted({v.get("program", "?") for v in timing["per_schedule"].values()})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    runs = {"cold": [], "warm": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            cache, out = os.path.join(tmp, "cache"), os.path.join(tmp, "out")
            runs["cold"].append(one_run(cache, out))
            runs["warm"].append(one_run(cache, out))
    print(f"jaxsa reproduce fig4, {args.repeats} repeats, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}")
    for name, rs in runs.items():
        w = [r["wall_s"] for r in rs]
        print(f"  {name}: wall median {statistics.median(w):.2f} s (min {min(w):.2f}, max {max(w):.2f}); "
              f"compile {statistics.median(r['compile_s'] for r in rs):.2f} s, "
              f"run {statistics.median(r['run_s'] for r in rs):.2f} s; programs {rs[0]['programs']}")


if __name__ == "__main__":
    main()
