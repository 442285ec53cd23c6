"""Check a built documentation site for reST markup that Markdown leaves raw.

    python docs/check_site.py SITE_DIR

Docstrings and pages are Markdown (math as ``$...$`` / ``$$...$$``, cross-references as
mkdocstrings links). A reST role (``:math:``, ``:class:``, ``:func:``, ...) or directive
(``.. math::``, ``Example::``) that slipped through shows as literal text on the page. This
script scans every HTML page of the site outside code blocks, prints each hit with its file,
the documented object it belongs to (on the API page) and a snippet, and exits 1 if there is
any (0 otherwise). CI runs it after ``mkdocs build``.
"""

from __future__ import annotations

import html
import os
import re
import sys

#: raw reST that must not reach a page
PATTERNS = re.compile(
    r":(?:py:)?(?:math|class|func|meth|mod|data|attr|exc|obj|const|ref|doc|term):(?=`|<code>)"
    r"|\.\. (?:math|code-block|code|note|warning|seealso|versionadded|autofunction)::"
    r"|\bExamples?::"
)
_PRE = re.compile(r"<pre\b.*?</pre>", re.S | re.I)
_SCRIPT = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
_ANCHOR = re.compile(r'id="((?:jaxsa)[\w.]*)"')
_TAG = re.compile(r"<[^>]+>")


def _blank(match: re.Match) -> str:
    """Same length, no content: positions (and so anchors) stay where they were."""
    return " " * (match.end() - match.start())


def scan_page(text: str) -> list[tuple[str | None, str]]:
    """(object, snippet) for each raw-markup hit in one HTML page."""
    visible = _SCRIPT.sub(_blank, _PRE.sub(_blank, text))
    anchors = [(m.start(), m.group(1)) for m in _ANCHOR.finditer(text)]
    hits = []
    for m in PATTERNS.finditer(visible):
        owner = None
        for pos, name in anchors:
            if pos > m.start():
                break
            owner = name
        raw = visible[max(0, m.start() - 60): m.end() + 80]
        snippet = " ".join(html.unescape(_TAG.sub("", raw)).split())
        hits.append((owner, snippet))
    return hits


def scan_site(site_dir: str) -> list[tuple[str, str | None, str]]:
    found = []
    for dirpath, dirnames, names in os.walk(site_dir):
        dirnames.sort()
        for name in sorted(names):
            if not name.endswith(".html"):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            rel = os.path.relpath(path, site_dir)
            found += [(rel, owner, snippet) for owner, snippet in scan_page(text)]
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not os.path.isdir(args[0]):
        print(__doc__.strip().split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    found = scan_site(args[0])
    for rel, owner, snippet in found:
        where = f"{rel} [{owner}]" if owner else rel
        print(f"{where}: ...{snippet}...")
    if found:
        by_file = {}
        for rel, owner, _ in found:
            key = (rel, ".".join(owner.split(".")[:2]) if owner else None)
            by_file[key] = by_file.get(key, 0) + 1
        print(f"\n{len(found)} raw reST roles/directives in the built site:", file=sys.stderr)
        for (rel, owner), n in sorted(by_file.items(), key=lambda kv: -kv[1]):
            print(f"  {n:5d}  {rel}" + (f"  {owner}" if owner else ""), file=sys.stderr)
        return 1
    print(f"check_site: no raw reST markup in {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
