"""Small helpers shared by the test modules (jaxsa-side; the scipy references are in
tests/helpers/reference.py and tests/helpers/reference_1d.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

PATH_NAMES = ("cosine", "cond-ot", "ot")
PERT_NAMES = ("mean", "variance", "mixture", "uniform")


def stack_starts(perts, names, settings):
    import jaxsa

    starts = [jaxsa.perturbation_start(perts[k], settings) for k in names]
    return jax.tree.map(lambda *a: jnp.stack(a), *starts)


def unbatch(report, i):
    return jax.tree.map(lambda a: a[i], report)
