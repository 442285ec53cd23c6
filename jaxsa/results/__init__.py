"""Results on disk: provenance, atomic JSON and figure files, and the compilation cache.

Everything a run writes goes through here, so every command records the same provenance
(versions, device, dtype, settings, host, the compilation cache in use) and no reader ever sees
a half-written file. Imported by the CLI, the sweeps and the validation; it imports no other
jaxsa module.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import sys
import tempfile

__all__ = ["atomic_write", "cache_disabled", "compilation_cache_dir", "compilation_cache_in_use",
           "enable_compilation_cache",
           "provenance", "save_figure", "set_compilation_cache", "write_json"]


#: the folder of JAX's persistent compilation cache in use (set by the CLI), or None
_compilation_cache: str | None = None


def set_compilation_cache(path: str | None) -> None:
    """Record the cache folder in use (``None``: off), as every later provenance reports it."""
    global _compilation_cache
    _compilation_cache = path


def compilation_cache_in_use() -> str | None:
    """The folder of the persistent compilation cache in use (`set_compilation_cache`), or None."""
    return _compilation_cache


def compilation_cache_dir() -> str:
    """Where the CLI keeps JAX's persistent compilation cache.

    ``$JAXSA_CACHE/jax`` when ``JAXSA_CACHE`` is set (the folder that also holds the trained
    OT-CFM networks), otherwise ``$XDG_CACHE_HOME/jaxsa/jax``, by default ``~/.cache/jaxsa/jax``.
    """
    root = os.environ.get("JAXSA_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "jaxsa")
    return os.path.join(root, "jax")


def cache_disabled() -> bool:
    """True when ``JAXSA_NO_CACHE`` is set to anything but ``""``, ``0``, ``false`` or ``no``."""
    return os.environ.get("JAXSA_NO_CACHE", "").strip().lower() not in ("", "0", "false", "no")


def enable_compilation_cache(path: str | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache in ``path`` (default `compilation_cache_dir`).

    Every compiled program is stored, however small or quick to compile (JAX's defaults skip
    programs that compile in under a second, which on a CPU are most of them). Must run before
    the first compilation. Returns the folder, or None (with a note on stderr) when it cannot
    be created or written, in which case nothing is cached and everything still runs.
    """
    import jax

    path = path or compilation_cache_dir()
    try:
        os.makedirs(path, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"{path} is not writable")
    except OSError as e:
        print(f"jaxsa: compilation cache off ({e})", file=sys.stderr)
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size floor
    return path


def provenance(settings=None, **extra) -> dict:
    """Versions, device, dtype, settings and host of this run."""
    import importlib.metadata as md

    import jax

    def version(name):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    dev = jax.devices()[0]
    out = {
        "jaxsa": version("jaxsa"),
        "jax": jax.__version__,
        "jaxlib": version("jaxlib"),
        "ott-jax": version("ott-jax"),
        "diffrax": version("diffrax"),
        "equinox": version("equinox"),
        "numpy": version("numpy"),
        "python": platform.python_version(),
        "device": {"platform": dev.platform, "kind": getattr(dev, "device_kind", str(dev)),
                   "count": jax.device_count()},
        "host": {"machine": platform.machine(), "cpus": os.cpu_count()},
        "dtype": "float64" if jax.config.jax_enable_x64 else "float32",
        "compilation_cache": _compilation_cache,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["jaxsa"] + sys.argv[1:]),
    }
    if settings is not None:
        out["settings"] = dataclasses.asdict(settings)
    out.update(extra)
    return out


def atomic_write(path: str, suffix: str, write) -> None:
    """``write(tmp_path)`` to a temporary file beside ``path``, then rename it onto ``path``:
    a reader sees either the complete old file, the complete new one, or none."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path: str, obj) -> None:
    """Write JSON atomically (temporary file in the same folder, then rename)."""

    def dump(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, allow_nan=True)

    atomic_write(path, ".json", dump)


def save_figure(draw, path, *args) -> None:
    """``draw(*args, tmp_path)`` to a PNG written atomically at ``path``."""
    atomic_write(path, ".png", lambda tmp: draw(*args, tmp))
