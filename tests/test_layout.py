"""The package layout (issue 12): folders as the pipeline, imports only downwards, no private
names across modules, no module over 500 lines, every public name reachable from ``jaxsa``."""

import ast
import importlib
import pathlib

import jaxsa

ROOT = pathlib.Path(jaxsa.__file__).parent
# stage of every top-level part: a module may import only parts of a lower or equal stage
STAGE = {
    "_checks": 0, "quadrature": 1, "densities": 1, "schedules": 1, "metrics": 2, "solvers": 2,
    "processes": 3, "thermo": 4, "relations": 5, "studies": 6, "experiments": 6, "results": 0,
    "plot": 0, "cli": 7, "__main__": 8, "__init__": 7,
}


def _modules():
    for p in sorted(ROOT.rglob("*.py")):
        rel = p.relative_to(ROOT).with_suffix("")
        yield p, ".".join(("jaxsa",) + rel.parts).removesuffix(".__init__"), rel.parts[0]


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxsa"):
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("jaxsa"):
                    yield a.name, []


def test_imports_run_only_downwards_and_take_no_private_names():
    bad = []
    for path, mod, part in _modules():
        for target, names in _imports(path):
            tparts = target.split(".")
            tpart = tparts[1] if len(tparts) > 1 else "__init__"
            if tpart != part and STAGE[tpart] > STAGE[part]:
                bad.append(f"{mod} imports {target} (stage {STAGE[tpart]} > {STAGE[part]})")
            if target != mod and tpart != "_checks":
                bad += [f"{mod} imports private {target}.{n}" for n in names
                        if n.startswith("_") and n != "__version__"]
    assert not bad, "\n".join(bad)


def test_no_module_over_500_lines():
    long = {mod: n for path, mod, _ in _modules() if (n := len(path.read_text().splitlines())) > 500}
    assert not long, long


def test_every_public_name_is_reachable_from_the_package():
    missing = []
    for _, mod, part in _modules():
        if part in ("cli", "__main__", "__init__", "experiments", "plot", "results", "_checks"):
            continue
        if mod.rsplit(".", 1)[-1].startswith("_") or mod == "jaxsa.relations.cdf_quadrature":
            continue  # private modules; the CDF quadrature is reached as jaxsa.cdf_quadrature
        for n in getattr(importlib.import_module(mod), "__all__", []):
            if not hasattr(jaxsa, n):
                missing.append(f"{mod}.{n}")
    assert not missing, missing
    assert all(hasattr(jaxsa, n) for n in jaxsa.__all__)
    assert jaxsa.kronrod_panels is importlib.import_module("jaxsa.quadrature").kronrod_panels


def test_the_core_imports_no_optional_dependency():
    import subprocess
    import sys

    code = ("import sys, jaxsa, jaxsa.relations, jaxsa.studies.sweep; "
            "print([m for m in ('matplotlib', 'flax', 'sklearn', 'tqdm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
