"""Stored programs (jaxsa.results.programs): a second run loads the traced program instead of
tracing it, gets the same numbers, and never reuses a program whose key changed."""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
import pytest

from jaxsa import results
from jaxsa.results import programs

pytest.importorskip("flatbuffers")


def _fn(scale):
    traced = []

    def fn(x, tree):
        traced.append(1)  # counts Python executions of the body: tracing
        return {"y": jnp.sin(x) * scale + tree["b"], "s": jnp.sum(tree["a"] ** 2)}

    return fn, traced


@pytest.fixture
def store(tmp_path):
    results.set_compilation_cache(str(tmp_path / "jax"))
    yield tmp_path / "programs"
    results.set_compilation_cache(None)


def _args():
    return (jnp.linspace(0.0, 1.0, 5), {"a": jnp.arange(3.0), "b": jnp.asarray(2.0)})


def test_without_a_cache_it_traces():
    ARGS = _args()
    results.set_compilation_cache(None)
    fn, traced = _fn(3.0)
    call, origin = programs.compiled(fn, *ARGS, name="t", static="3")
    assert origin == "traced" and traced
    out = call(*ARGS)
    np.testing.assert_allclose(out["y"], np.sin(np.linspace(0, 1, 5)) * 3 + 2)


def test_second_run_loads_without_tracing(store):
    ARGS = _args()
    fn, traced = _fn(3.0)
    call, origin = programs.compiled(fn, *ARGS, name="t", static="3")
    assert origin == "stored" and len(traced) == 1
    files = os.listdir(store)
    assert len(files) == 1 and files[0].startswith("t-") and files[0].endswith(".jaxexport")
    first = call(*ARGS)

    fn2, traced2 = _fn(3.0)  # a new process would build the same function again
    call2, origin2 = programs.compiled(fn2, *ARGS, name="t", static="3")
    assert origin2 == "loaded" and traced2 == []
    second = call2(*ARGS)
    for k in first:
        np.testing.assert_array_equal(first[k], second[k])
    # new values of the same shapes run through the loaded program
    other = (ARGS[0] + 1.0, {"a": ARGS[1]["a"] * 2, "b": jnp.asarray(-1.0)})
    np.testing.assert_allclose(call2(*other)["s"], np.sum((np.arange(3.0) * 2) ** 2))
    with pytest.raises(ValueError, match="structure"):
        call2(ARGS[0], {"a": ARGS[1]["a"]})


def test_a_changed_key_traces_again(store, monkeypatch):
    ARGS = _args()
    fn, _ = _fn(3.0)
    programs.compiled(fn, *ARGS, name="t", static="3")
    # another static description (settings), other shapes, other jaxsa source: no reuse
    fn4, traced4 = _fn(4.0)
    call4, origin = programs.compiled(fn4, *ARGS, name="t", static="4")
    assert origin == "stored" and traced4
    np.testing.assert_allclose(call4(*ARGS)["y"], np.sin(np.linspace(0, 1, 5)) * 4 + 2)
    _, origin = programs.compiled(fn, jnp.zeros(6), ARGS[1], name="t", static="3")
    assert origin == "stored"
    monkeypatch.setattr(programs, "_digest", "0" * 64)
    fn5, traced5 = _fn(3.0)
    _, origin = programs.compiled(fn5, *ARGS, name="t", static="3")
    assert origin == "stored" and traced5
    assert len(os.listdir(store)) == 4


def test_a_damaged_file_is_traced_again(store, capsys):
    ARGS = _args()
    fn, _ = _fn(3.0)
    programs.compiled(fn, *ARGS, name="t", static="3")
    (path,) = store.iterdir()
    path.write_bytes(path.read_bytes()[:100])
    fn2, traced2 = _fn(3.0)
    call, origin = programs.compiled(fn2, *ARGS, name="t", static="3")
    assert origin == "stored" and traced2
    assert "ignoring stored program" in capsys.readouterr().err
    np.testing.assert_allclose(call(*ARGS)["s"], 5.0)


def test_source_digest_covers_the_package():
    d = programs.source_digest()
    assert len(d) == 64 and d == programs.source_digest()
