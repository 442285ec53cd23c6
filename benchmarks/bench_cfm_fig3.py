"""OT-CFM on the Fig. 3 Swiss roll: training time and a structure metric (W1 to held-out data).

``python benchmarks/bench_cfm_fig3.py [--steps N] [--width W] ...`` trains one configuration
(no cache), generates ``n`` samples from N(0, I) by RK4 (``rk4`` steps) and prints

* W1(generated, held-out) with :func:`jaxsa.w1_point_cloud` (held-out: a fresh Swiss roll of
  the same generator, another seed);
* the floor W1(training subsample, held-out) (two samples of the same law);
* blur baselines W1(training subsample + N(0, σ²I), held-out) for σ = 0.1, 0.2, 0.3.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxsa.processes.learned import CFMSettings, data_digest, train_cfm  # noqa: E402
from jaxsa.experiments.fig3 import rk4_path, swiss_roll  # noqa: E402
from jaxsa.metrics import w1_point_cloud  # noqa: E402


def w1(x, y):
    """Certified (1%) W1 between two (n, 2) clouds, as a float."""
    return float(w1_point_cloud(x, y, rtol=0.01).value)


def main(argv=None):
    """Train one CFMSettings (command-line fields) and print its time and W1 figures."""
    p = argparse.ArgumentParser()
    defaults = CFMSettings()
    for f in dataclasses.fields(CFMSettings):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)),
                       default=getattr(defaults, f.name))
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--rk4", type=int, default=60)
    p.add_argument("--baselines", action="store_true")
    a = p.parse_args(argv)
    s = CFMSettings(**{f.name: getattr(a, f.name) for f in dataclasses.fields(CFMSettings)})
    data = swiss_roll(2000, 0.5, 0)
    held = jnp.asarray(swiss_roll(a.n, 0.5, 1))
    dj = jnp.asarray(data)

    def sd(k, m):
        return dj[jax.random.randint(k, (m,), 0, data.shape[0])]

    def sp(k, m):
        return jax.random.normal(k, (m, 2))

    t0 = time.perf_counter()
    model, info = train_cfm(sd, sp, 2, s, data_id=f"bench:{data_digest(data)}", cache_dir=None,
                            progress=lambda i, l: print(f"  step {i} loss {l:.4f} {time.perf_counter() - t0:.1f}s",
                                                        flush=True))
    t_train = time.perf_counter() - t0
    z = jax.random.normal(jax.random.PRNGKey(7), (a.n, 2))
    gen = rk4_path(model, z, 1.0, 0.0, a.rk4)
    res = {"settings": dataclasses.asdict(s), "train_s": round(t_train, 1),
           "steps_per_s": round(info["steps_per_s"], 1), "final_loss": round(info["loss"], 4),
           "W1_gen_heldout": round(w1(gen, held), 4)}
    if a.baselines:
        sub = dj[:a.n]
        res["W1_floor_train_vs_heldout"] = round(w1(sub, held), 4)
        for sig in (0.1, 0.2, 0.3):
            blur = sub + sig * jax.random.normal(jax.random.PRNGKey(3), sub.shape)
            res[f"W1_blur_{sig}"] = round(w1(blur, held), 4)
    print(res, flush=True)
    np.save("/tmp/gen.npy", np.asarray(gen))


if __name__ == "__main__":
    main()
