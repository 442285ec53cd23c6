"""Benchmark: the fig4 computation (all 12 configurations), compile vs steady state.

    python benchmarks/bench_fig4.py [--repeats 10] [--refine 2]

Plotting is excluded. Target (issue 2): all 12 configurations in under 2 s of steady-state
time on a 2-core CPU at default settings.
"""

import argparse

import jax

jax.config.update("jax_enable_x64", True)

from jaxsa.experiments.benchmark import benchmark_fig4, format_table  # noqa: E402
from jaxsa.relations import Settings  # noqa: E402

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--refine", type=int, default=1)
    a = ap.parse_args()
    s = Settings() if a.refine == 1 else Settings().refined(a.refine)
    print(format_table(benchmark_fig4(s, repeats=a.repeats)))
