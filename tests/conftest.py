"""Shared fixtures.

* ``_x64`` (session, autouse) switches JAX to float64 for the whole test session and restores
  the previous setting afterwards; nothing is enabled at import time of jaxsa or of the tests.
* ``paper`` builds the paper's data, perturbations and paths (SPEC §7) inside float64.
* ``paper_reports`` computes the 12 reports (3 paths x 4 perturbations) once, with default
  ``Settings``, through the batched ``speed_accuracy_from_start`` (one call per path).
* ``JAXSA_NO_CACHE=1`` is set (unless already set) at import time, so that tests calling
  ``jaxsa.cli.main`` in this process, and the ``jaxsa`` subprocesses they start, never write
  JAX's persistent compilation cache into the user's ``~/.cache``. Tests of the cache
  (tests/test_cli_cache.py) remove it from their own environments.
"""

from __future__ import annotations

import os

import jax
import pytest
from tests.helpers import PATH_NAMES, PERT_NAMES, stack_starts, unbatch

# no persistent compilation cache for `jaxsa.cli.main` run by the tests (see the docstring)
os.environ.setdefault("JAXSA_NO_CACHE", "1")


@pytest.fixture(scope="module", autouse=True)
def _free_compiled_programs():
    """Drop JAX's compiled programs after every test module. Each XLA CPU executable holds
    memory mappings; a whole session of ~400 tests kept every one of them and crossed the
    kernel's limit (vm.max_map_count = 65530 mappings a process), after which LLVM's
    allocations fail and the compiler segfaults (seen 92 % into the suite)."""
    yield
    jax.clear_caches()


@pytest.fixture(autouse=True)
def _no_compilation_cache_left_on(request):
    """No test may leave JAX's persistent compilation cache switched on for the tests after it."""
    yield
    if jax.config.jax_compilation_cache_dir is not None:
        import sys

        print(f"\nconftest: {request.node.nodeid} left the compilation cache on "
              f"({jax.config.jax_compilation_cache_dir}); switched off", file=sys.stderr)
        jax.config.update("jax_compilation_cache_dir", None)


@pytest.fixture(scope="session", autouse=True)
def _x64():
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture(scope="session", autouse=True)
def _strict_promotion():
    """Strict dtype promotion and no implicit rank promotion for the whole session (as
    diffrax's tests): int + float arrays, bool * float arrays, float32 + float64 arrays and
    implicit broadcasting of arrays of different ranks raise, so that the package's code states
    its promotions and broadcasts. Python scalars (weak types) still mix freely. Users may run
    with JAX's default ("standard", "allow"); the code must work under both. The previous
    settings are restored afterwards."""
    previous = (jax.config.jax_numpy_dtype_promotion, jax.config.jax_numpy_rank_promotion)
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    yield
    jax.config.update("jax_numpy_dtype_promotion", previous[0])
    jax.config.update("jax_numpy_rank_promotion", previous[1])


@pytest.fixture
def float32():
    """Run one test with float64 disabled (restored afterwards)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture(scope="session")
def paper(_x64):
    import jaxsa

    data = jaxsa.paper_data()
    perts = jaxsa.paper_perturbations()
    paths = {
        "cosine": jaxsa.DiffusionPath(jaxsa.Cosine(1.0), data),
        "cond-ot": jaxsa.DiffusionPath(jaxsa.CondOT(1.0), data),
        "ot": jaxsa.OTPath(data, jaxsa.paper_prior(), 1.0),
    }
    return data, perts, paths


@pytest.fixture(scope="session")
def default_settings(_x64):
    import jaxsa

    return jaxsa.Settings()


@pytest.fixture(scope="session")
def paper_batched(paper, default_settings):
    """{path name: batched Report over PERT_NAMES} with default Settings (computed once)."""
    import jaxsa

    _, perts, paths = paper
    starts = stack_starts(perts, PERT_NAMES, default_settings)
    out = {}
    for name in PATH_NAMES:
        rep = jaxsa.speed_accuracy_from_start(paths[name], starts, default_settings)
        out[name] = jax.block_until_ready(rep)
    return out


@pytest.fixture(scope="session")
def paper_reports(paper_batched):
    """{(path name, perturbation name): Report} for the 12 paper cases."""
    return {
        (p, k): unbatch(paper_batched[p], i) for p in PATH_NAMES for i, k in enumerate(PERT_NAMES)
    }
