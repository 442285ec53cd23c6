"""Compiled programs that a second run loads instead of tracing again.

JAX's persistent compilation cache (`enable_compilation_cache`) spares the XLA compiler on a
second run, but not the Python work before it: tracing a report's program (diffrax solves,
quadrature rules, error checks) and lowering it take 1–3 s each on a CPU, longer than the
cached compilation itself. [`compiled`][jaxsa.results.programs.compiled] keeps, beside the
compilation cache, the traced program in `jax.export`'s serialized form, keyed by everything
that decides it, and on a later run deserializes it (milliseconds) and compiles it (read
from the compilation cache) without running the Python that built it.

The key is a SHA-256 over: the program's name and its static description (the caller's
``static``: settings and anything else closed over), the tree structure, shapes and dtypes of
the arguments, the source of every module of the installed jaxsa, the versions of jax,
jaxlib, equinox, diffrax, ott-jax and numpy, the x64 flag, the platform and device kind,
``EQX_ON_ERROR`` and ``XLA_FLAGS``. A changed line of jaxsa or an upgraded library therefore
never reuses an old program: it traces and stores a new one. Files are written atomically;
an unreadable file is treated as absent.

Only active while the compilation cache is on (the CLI's default; ``--no-cache`` or
``JAXSA_NO_CACHE=1`` turn both off) and when `jax.export` can serialize (the ``flatbuffers``
package); otherwise `compiled` traces as usual.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import sys

__all__ = ["compiled", "program_dir", "source_digest"]

#: bump when the key or file layout changes
_FORMAT = "jaxsa-program-v1"
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_digest: str | None = None


def program_dir() -> str | None:
    """The folder of stored programs (``programs/`` beside the compilation cache in use), or
    None while no compilation cache is in use."""
    from jaxsa.results import compilation_cache_in_use

    cache = compilation_cache_in_use()
    if cache is None:
        return None
    return os.path.join(os.path.dirname(os.path.abspath(cache)), "programs")


def source_digest() -> str:
    """SHA-256 of the source of every ``.py`` file of the installed jaxsa package (computed
    once per process; about 70 files, a few milliseconds)."""
    global _digest
    if _digest is None:
        h = hashlib.sha256()
        for root, dirs, files in os.walk(_PACKAGE):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    h.update(os.path.relpath(path, _PACKAGE).encode())
                    with open(path, "rb") as f:
                        h.update(f.read())
        _digest = h.hexdigest()
    return _digest


def _version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def _key(name: str, static: str, treedef, leaves) -> str:
    import jax

    dev = jax.devices()[0]
    parts = [
        _FORMAT, name, static, str(treedef),
        repr([(tuple(x.shape), str(x.dtype), bool(getattr(x, "weak_type", False)))
              for x in leaves]),
        source_digest(),
        repr([_version(p) for p in ("jax", "jaxlib", "equinox", "diffrax", "ott-jax", "numpy")]),
        repr((bool(jax.config.jax_enable_x64), dev.platform, getattr(dev, "device_kind", ""),
              jax.device_count())),
        os.environ.get("EQX_ON_ERROR", ""), os.environ.get("XLA_FLAGS", ""),
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _exporter():
    """``jax.export`` when it can serialize here, else None."""
    try:
        import flatbuffers  # noqa: F401  (jax.export's serializer needs it)
        from jax import export
    except ImportError:
        return None
    return export


def compiled(fn, *args, name: str, static: str = ""):
    """An ahead-of-time compiled ``fn`` for arguments shaped like ``args``, loaded from a
    stored program when an earlier run with the same key stored one.

    Args:
        fn: a pure function of ``args`` (pytrees of arrays); everything else it depends on
            must be described by ``name`` and ``static``. Its output must be a pytree of
            dicts, lists, tuples and arrays (`jax.export` serializes no other node types;
            convert modules to dicts and back around the call).
        args: example arguments (the same structure, shapes and dtypes as the later calls).
        name: what the program computes (part of the key and of the file name).
        static: a description of every value ``fn`` closes over (for example ``repr`` of
            its settings); part of the key.

    Returns:
        ``(call, origin)``: ``call(*args)`` runs the compiled program; ``origin`` is
        ``"traced"`` (no store in use), ``"stored"`` (traced now and stored) or
        ``"loaded"`` (from the store, not traced).
    """
    import jax

    leaves, treedef = jax.tree.flatten(args)
    directory = program_dir()
    export = _exporter() if directory is not None else None
    if export is None:
        return jax.jit(fn).lower(*args).compile(), "traced"
    path = os.path.join(directory, f"{name}-{_key(name, static, treedef, leaves)[:32]}.jaxexport")
    exported, origin = None, "loaded"
    if os.path.exists(path):
        try:
            with open(path, "rb") as f:
                exported = export.deserialize(bytearray(f.read()))
        except Exception as e:  # a truncated or foreign file: trace again
            print(f"jaxsa: ignoring stored program {path} ({type(e).__name__})", file=sys.stderr)
            exported = None
    if exported is None:
        origin = "stored"

        def flat(*xs):
            return fn(*jax.tree.unflatten(treedef, xs))

        exported = export.export(jax.jit(flat))(*leaves)
        try:
            from jaxsa.results import atomic_write

            blob = exported.serialize()

            def write(tmp):
                with open(tmp, "wb") as f:
                    f.write(blob)

            atomic_write(path, ".jaxexport", write)
        except OSError as e:
            print(f"jaxsa: program not stored ({e})", file=sys.stderr)
            origin = "traced"
    program = jax.jit(exported.call).lower(*leaves).compile()

    def call(*xs):
        xs_leaves, xs_tree = jax.tree.flatten(xs)
        if xs_tree != treedef:
            raise ValueError(f"compiled program {name!r}: arguments have structure {xs_tree}, "
                             f"expected {treedef}")
        return program(*xs_leaves)

    return call, origin
