"""MkDocs hook: serve MathJax from the site itself, so formulas render offline.

MathJax 3 comes from the ``django-static-mathjax`` package (the ``docs`` extra), which ships the
MathJax distribution as plain files (its Python part is empty and never imported). At build
time this hook adds the files that the TeX-to-CommonHTML component needs (the component, its
on-demand TeX extensions, the CHTML fonts, the menu and the accessibility modules) to the site
under ``assets/mathjax/``; ``mkdocs.yml`` loads ``assets/mathjax/tex-chtml.js``. Nothing is
fetched from the network when the site is built or viewed, and no third-party JavaScript is
kept in this repository.
"""

from __future__ import annotations

import importlib.util
import os

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

#: where the files land in the built site (``mkdocs.yml`` points ``extra_javascript`` here)
DEST = "assets/mathjax"
#: paths under MathJax's ``es5/`` directory that are copied (files or whole folders)
PARTS = (
    "tex-chtml.js",
    "input/tex/extensions",
    "output/chtml",
    "ui",
    "a11y",
    "adaptors",
    "sre",
)


def mathjax_root() -> str:
    """The ``es5/`` directory of the installed MathJax distribution."""
    spec = importlib.util.find_spec("mathjax")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        root = os.path.join(loc, "static", "mathjax", "es5")
        if os.path.isfile(os.path.join(root, "tex-chtml.js")):
            return root
    raise PluginError(
        "MathJax not found: install the docs extra (pip install -e '.[docs]'), which brings "
        "the package django-static-mathjax."
    )


def on_files(files: Files, config) -> Files:
    root = mathjax_root()
    sources = []
    for part in PARTS:
        path = os.path.join(root, part)
        if os.path.isfile(path):
            sources.append((path, part))
        else:
            for dirpath, _, names in os.walk(path):
                for name in sorted(names):
                    full = os.path.join(dirpath, name)
                    sources.append((full, os.path.relpath(full, root)))
    license_file = os.path.join(os.path.dirname(root), "LICENSE")
    if os.path.isfile(license_file):
        sources.append((license_file, "LICENSE"))
    for src, rel in sources:
        dest = f"{DEST}/{rel.replace(os.sep, '/')}"
        if files.get_file_from_path(dest) is None:
            files.append(File.generated(config, dest, abs_src_path=src))
    return files
