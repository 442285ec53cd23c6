"""Input validation and precision warnings shared by the public API.

Two tiers, as in diffrax: structural and value problems on *concrete* inputs raise a
``ValueError`` naming the argument and the violated constraint, at Python level and before
any heavy computation. Inside ``jit``/``vmap`` the same values are tracers; there the checks
go through `equinox.error_if`, which raises at run time (never a silent NaN).
"""

from __future__ import annotations

import contextlib
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


__all__ = ["Float64Warning", "DivergenceWarning", "float64", "check", "is_concrete", "format_number", "as_float",
           "warn_if_float32", "promoted_dtype", "library_promotion"]


class Float64Warning(UserWarning):
    """A quantity that needs float64 for a precise answer was computed in float32."""


class DivergenceWarning(UserWarning):
    """A quantity of the relations is infinite (e.g. a χ² divergence), so a bound is vacuous."""


def as_float(x):
    """``x`` as a JAX array of the default floating dtype (float64 under ``jax_enable_x64``,
    float32 otherwise); shape and units unchanged. Python numbers become arrays, so that
    ``jit``-compiled functions see them as traced values, not static ones."""
    return jnp.asarray(x, jnp.result_type(float))


def promoted_dtype(*xs):
    """The dtype that JAX's standard promotion gives ``xs`` together (weak Python numbers
    included), so that an explicit cast to it computes what implicit promotion did, also under
    ``jax_numpy_dtype_promotion="strict"`` (where float32 with float64 raises)."""
    with jax.numpy_dtype_promotion("standard"):
        return jnp.result_type(*xs)


@contextlib.contextmanager
def library_promotion():
    """Standard dtype promotion and allowed rank promotion for the duration of a call into a
    library that promotes implicitly inside (ott-jax's Sinkhorn raises an error array to an int
    exponent of shape ``(n, 1)``; optax mixes its int32 step count with Python floats), whatever
    the caller's ``jax_numpy_dtype_promotion`` / ``jax_numpy_rank_promotion`` settings. The
    package's own code runs under strict promotion in the tests (``tests/conftest.py``)."""
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield


def format_number(x, spec: str = ".3g") -> str:
    """Text of a number for an error message: the largest element of ``x`` (a scalar or an
    array) formatted with the format ``spec``, or ``"<traced>"`` when ``x`` is a tracer (inside
    ``jit``/``vmap``, where the message is built before the value exists)."""
    return format(float(np.max(np.asarray(x))), spec) if is_concrete(x) else "<traced>"


def is_concrete(*trees) -> bool:
    """True when no leaf of ``trees`` is a tracer (so values can be checked in Python)."""
    leaves = jax.tree_util.tree_leaves(trees)
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in leaves)


def check(ok, message: str, *operands):
    """Raise ``ValueError(message)`` if ``ok`` is false.

    With concrete ``ok`` the error is raised immediately. With a traced ``ok`` the check is
    attached to ``operands`` through `equinox.error_if` (returned unchanged otherwise),
    so a jitted or vmapped computation fails loudly at run time instead of producing NaN.
    """
    if is_concrete(ok):
        if not bool(np.all(np.asarray(ok))):
            raise ValueError(message)
        return operands if len(operands) != 1 else operands[0]
    bad = jnp.logical_not(jnp.all(ok))
    out = tuple(eqx.error_if(op, bad, message) for op in operands)
    return out if len(out) != 1 else out[0]


def warn_if_float32(quantity: str, *arrays) -> None:
    """Warn (once per call site) when ``quantity`` is computed without float64."""
    dtypes = [jnp.result_type(a) for a in jax.tree_util.tree_leaves(arrays)]
    floats = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]
    if not jax.config.jax_enable_x64 or any(d != jnp.float64 for d in floats):
        warnings.warn(
            f"{quantity} needs float64 for a precise answer (densities near zero, χ² "
            "ratios, differences of Wasserstein distances); it is being computed in "
            "float32. Enable it with jax.config.update('jax_enable_x64', True) or run "
            "inside jaxsa.float64().",
            Float64Warning,
            stacklevel=3,
        )


class float64:
    """Context manager enabling JAX float64 for its body and restoring the setting after.

    Importing jaxsa never flips JAX's global float64 switch; use this (or
    ``jax.config.update('jax_enable_x64', True)`` in your own program) around the calls
    that need it.
    """

    def __enter__(self):
        self._previous = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)
        return self

    def __exit__(self, *exc):
        jax.config.update("jax_enable_x64", self._previous)
        return False
