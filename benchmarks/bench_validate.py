"""Steady-state cost of `jaxsa validate`: CPU milliseconds per configuration, by schedule family.

Compiles the chunk evaluator of `jaxsa.studies.validate` (``_evaluate``) for each family at
`sweep_settings()`, runs it once to warm up, then times ``--chunks`` chunks of ``--chunk``
random configurations (the same keys every run) and prints the CPU time
(`time.process_time`, all threads) and the wall time per configuration, and the compile time.

CPU time is the figure to compare on a shared machine; for a stable single-thread figure pin
one core and turn off XLA's intra-op threads::

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        taskset -c 0 python benchmarks/bench_validate.py --families 0,1,2,3

Alternate runs of the code being compared; a single wall time on a loaded machine means little.
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jaxsa.studies.validate as V  # noqa: E402
from jaxsa.studies.sweep import sweep_settings  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default="0,1,2,3", help="schedule families (0-3), comma-separated")
    ap.add_argument("--vmap", type=int, default=None, help="vmap_size (default: run_validation's)")
    ap.add_argument("--chunk", type=int, default=64, help="configurations a chunk")
    ap.add_argument("--chunks", type=int, default=3, help="timed chunks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-batch", type=int, default=None, help="Settings.time_batch override")
    a = ap.parse_args(argv)
    vmap = a.vmap if a.vmap is not None else V.run_validation.__defaults__[-1]
    settings = sweep_settings(**({} if a.time_batch is None else {"time_batch": a.time_batch}))
    keys = jax.random.split(jax.random.PRNGKey(a.seed), a.chunk * (a.chunks + 1))
    cfgs = [jax.vmap(V.random_config)(keys[a.chunk * i: a.chunk * (i + 1)]) for i in range(a.chunks + 1)]
    for fam in (int(f) for f in a.families.split(",")):
        t = time.perf_counter()
        ev = V._evaluate(settings, fam, vmap).lower(cfgs[0]).compile()
        compile_s = time.perf_counter() - t
        jax.block_until_ready(ev(cfgs[0]))
        cpu, wall = [], []
        for c in cfgs[1:]:
            t, t0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(ev(c))
            cpu.append(1e3 * (time.process_time() - t0) / a.chunk)
            wall.append(1e3 * (time.perf_counter() - t) / a.chunk)
        print(f"family {fam} ({V.FAMILY_NAMES[fam]}) vmap {vmap}: CPU ms/config min {min(cpu):.1f} "
              f"mean {sum(cpu) / len(cpu):.1f}, wall ms/config min {min(wall):.1f}, "
              f"compile {compile_s:.1f} s", flush=True)


if __name__ == "__main__":
    main()
