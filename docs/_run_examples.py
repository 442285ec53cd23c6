"""MkDocs hook: run the tutorials' example scripts when the site is built and put what they print
and draw on the page.

A page asks for the output of a script with a marker on a line of its own,

    <!-- run: examples/quickstart.py --fast -->

(the script, then its flags). When the site is built, every script named by a marker runs once,
``python SCRIPT FLAGS --out DIR`` from the repository root with ``MPLBACKEND=Agg`` and a fresh
temporary ``DIR``; the marker is replaced by a sentence naming the command and its mode, the
script's standard output as a code block (``DIR`` written as ``OUT``) and every PNG it wrote to
``DIR`` as an image (copied into the site under ``assets/examples/``). Nothing is stored in the
repository, so the pages cannot go stale; nothing is fetched from the network.

A script that exits with an error, prints nothing or runs past ``JAXSA_DOCS_TIMEOUT`` seconds
(default 600) stops the build with its command and the end of its standard error. Scripts run
``JAXSA_DOCS_JOBS`` at a time (default 2). ``mkdocs serve`` reruns a script only when it, the
files next to it or the ``jaxsa`` sources change. The scripts inherit the environment, so
``JAX_COMPILATION_CACHE_DIR`` (JAX's persistent compilation cache) keeps their compiled programs
between builds, which about halves a rebuild; the output is the same. ``JAXSA_DOCS_RUN=0`` skips
the runs for quick edits of the prose: each marker then becomes a note on the page and a warning,
which fails the build unless it runs with ``--no-strict`` (``mkdocs.yml`` sets ``strict: true``).
"""

from __future__ import annotations

import concurrent.futures
import glob
import hashlib
import logging
import os
import posixpath
import re
import subprocess
import sys
import tempfile
import time

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.run_examples")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: ``<!-- run: examples/NAME.py [--flag ...] -->`` on a line of its own
MARKER = re.compile(r"^<!--\s*run:\s*(examples/[\w-]+\.py(?:[ \t]+--[\w-]+)*)\s*-->[ \t]*$", re.M)
#: where the figures land in the site
DEST = "assets/examples"

_cache: dict = {}  # command -> (digest, result), kept across the rebuilds of ``mkdocs serve``
_results: dict = {}  # command -> result of this build


def commands(markdown: str) -> list[str]:
    """The commands (``examples/NAME.py --flag ...``) named by the markers of one page."""
    return [" ".join(m.group(1).split()) for m in MARKER.finditer(markdown)]


def _digest(script: str) -> str:
    h = hashlib.sha256()
    paths = sorted(glob.glob(os.path.join(ROOT, "examples", "*")))
    paths += sorted(glob.glob(os.path.join(ROOT, "jaxsa", "**", "*.py"), recursive=True))
    for path in [os.path.join(ROOT, script)] + paths:
        if os.path.isfile(path):
            h.update(path.encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def _folder(command: str) -> str:
    script, *flags = command.split()
    name = os.path.splitext(os.path.basename(script))[0]
    return "-".join([name] + [f.lstrip("-") for f in flags])


def run(command: str) -> dict:
    """Run one command; returns ``stdout``, ``figures`` (name -> PNG bytes) and ``seconds``.
    Raises `PluginError` when the script fails, times out or prints nothing."""
    script, *flags = command.split()
    if not os.path.isfile(os.path.join(ROOT, script)):
        raise PluginError(f"run_examples: a page asks for `{command}`, but {script} does not exist.")
    timeout = float(os.environ.get("JAXSA_DOCS_TIMEOUT", "600"))
    env = dict(os.environ, MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    with tempfile.TemporaryDirectory(prefix="jaxsa-docs-") as out:
        argv = [sys.executable, script, *flags, "--out", out]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            raise PluginError(f"run_examples: `python {command}` ran past {timeout:g} s "
                              "(JAXSA_DOCS_TIMEOUT).") from e
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise PluginError(f"run_examples: `python {command}` failed (exit {proc.returncode}); "
                              f"the end of its standard error:\n{proc.stderr[-4000:]}")
        stdout = proc.stdout.replace(out, "OUT").rstrip()
        if not stdout:
            raise PluginError(f"run_examples: `python {command}` printed nothing.")
        figures = {}
        for path in sorted(glob.glob(os.path.join(out, "**", "*.png"), recursive=True)):
            with open(path, "rb") as f:
                figures[os.path.relpath(path, out).replace(os.sep, "/")] = f.read()
    return {"stdout": stdout, "figures": figures, "seconds": seconds}


def on_files(files: Files, config) -> Files:
    wanted = []
    for f in files.documentation_pages():
        with open(f.abs_src_path, encoding="utf-8") as fh:
            wanted += [c for c in commands(fh.read()) if c not in wanted]
    _results.clear()
    if not wanted or os.environ.get("JAXSA_DOCS_RUN", "1") == "0":
        return files
    todo = []
    for command in wanted:
        digest = _digest(command.split()[0])
        cached = _cache.get(command)
        if cached and cached[0] == digest:
            _results[command] = cached[1]
        else:
            todo.append((command, digest))
    jobs = max(1, int(os.environ.get("JAXSA_DOCS_JOBS", "2")))
    t0 = time.perf_counter()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {pool.submit(run, c): (c, d) for c, d in todo}
        for fut in concurrent.futures.as_completed(futures):
            command, digest = futures[fut]
            result = fut.result()  # a PluginError stops the build here
            log.info(f"run_examples: python {command}: {result['seconds']:.0f} s")
            _results[command] = result
            _cache[command] = (digest, result)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # scripts not started yet never start
        raise
    pool.shutdown()
    if todo:
        log.info(f"run_examples: {len(todo)} scripts in {time.perf_counter() - t0:.0f} s "
                 f"({jobs} at a time)")
    for command, result in _results.items():
        for name, data in result["figures"].items():
            dest = f"{DEST}/{_folder(command)}/{name}"
            if files.get_file_from_path(dest) is None:
                files.append(File.generated(config, dest, content=data))
    return files


def _block(command: str, page_dir: str) -> str:
    mode = "the `--fast` mode" if "--fast" in command.split() else "the default mode"
    if command not in _results:
        log.warning(f"run_examples: JAXSA_DOCS_RUN=0: `{command}` was not run; its output is "
                    "missing from the page.")
        return (f'!!! warning "Not run"\n    This build skipped `python {command}` '
                "(`JAXSA_DOCS_RUN=0`); its output belongs here.\n")
    res = _results[command]
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", res["stdout"])), default=0))
    lines = [f"Output of `python {command}` ({mode}), run when this page was built, in "
             f"{res['seconds']:.0f} s:", "",
             f"{fence}text", res["stdout"], fence, ""]
    for name in res["figures"]:
        link = posixpath.relpath(f"{DEST}/{_folder(command)}/{name}", page_dir or ".")
        lines += [f"![{name}, drawn by python {command}]({link})", ""]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    page_dir = posixpath.dirname(page.file.src_uri)
    return MARKER.sub(lambda m: _block(" ".join(m.group(1).split()), page_dir), markdown)
