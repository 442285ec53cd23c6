"""The ``jaxsa`` command.

    jaxsa reproduce [FIGURE ...] [--out DIR]   reproduce the paper's figures (default: all)
    jaxsa benchmark [--repeats N]              time the fig4 computation (compile vs steady)

Runs in float64 (set for this process only). Results are JSON plus PNG, written
atomically (a file is either complete or absent), with provenance: versions, device, dtype,
settings, seeds, compile and run times.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import tempfile
import time

__all__ = ["main"]


def _enable_x64():
    import jax

    jax.config.update("jax_enable_x64", True)


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
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["jaxsa"] + sys.argv[1:]),
    }
    if settings is not None:
        out["settings"] = dataclasses.asdict(settings)
    out.update(extra)
    return out


def write_json(path: str, obj) -> None:
    """Write JSON atomically: to a temporary file in the same folder, then rename."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, allow_nan=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _save_figure(draw, path, *args) -> None:
    """Draw to a temporary file, then rename (atomic)."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".png")
    os.close(fd)
    try:
        draw(*args, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _settings_from_args(args):
    from jaxsa.flow import ODESettings
    from jaxsa.relations import Settings

    s = Settings()
    if args.refine > 1:
        s = s.refined(args.refine)
    if args.n_quantiles:
        s = dataclasses.replace(s, n_quantiles=args.n_quantiles)
    if args.rtol:
        s = dataclasses.replace(s, ode=ODESettings(rtol=args.rtol, atol=args.rtol))
    return s


def reproduce_fig4(out_dir: str, settings) -> dict:
    """Run Fig. 4/5 and write ``fig4.json``, ``fig5.json``, ``fig4.png``, ``fig5.png``."""
    from tqdm.auto import tqdm

    from jaxsa.experiments import fig4
    from jaxsa.plot import plot_fig4, plot_fig5

    t_start = time.perf_counter()
    bar = tqdm(total=len(fig4.SCHEDULE_NAMES) + 1, desc="fig4: compile+solve", unit="schedule",
               file=sys.stderr)

    def progress(name):
        bar.set_postfix_str(name)
        bar.update(1)

    reports, timing = fig4.run_fig4(settings, progress=progress)
    records = fig4.fig4_records(reports)
    f5 = fig4.fig5_records(reports)
    bar.set_description("fig4: plotting")
    prov = provenance(
        settings,
        seeds={"note": "deterministic quadrature: no random numbers are drawn"},
        timing={
            "per_schedule": timing,
            "compile_s": sum(v["compile_s"] for v in timing.values()),
            "run_s": sum(v["run_s"] for v in timing.values()),
        },
    )
    os.makedirs(out_dir, exist_ok=True)
    _save_figure(plot_fig4, os.path.join(out_dir, "fig4.png"), records, f5)
    _save_figure(plot_fig5, os.path.join(out_dir, "fig5.png"), f5)
    prov["timing"]["total_s"] = time.perf_counter() - t_start
    write_json(os.path.join(out_dir, "fig5.json"), {"provenance": prov, **f5})
    write_json(os.path.join(out_dir, "fig4.json"), {"provenance": prov, "records": records})
    bar.update(1)
    bar.close()
    bad = [(r["schedule"], r["perturbation"], r["violations"]) for r in records if r["violations"]]
    print(f"fig4: {len(records)} configurations, compile {prov['timing']['compile_s']:.2f} s, "
          f"run {prov['timing']['run_s']:.3f} s; inequality violations: {bad or 'none'}")
    for r in records:
        print(f"  {r['schedule']:8s} {r['perturbation']:9s} eta={r['eta']:.6f} c1={r['c1']:.6f} "
              f"c2={r['c2']:.6f} D0={r['D0']:.6f}")
    print(f"wrote {out_dir}/fig4.json, fig5.json, fig4.png, fig5.png")
    return {"records": records, "provenance": prov}


def reproduce_nonconservative(out_dir: str, settings) -> dict:
    """Run the non-conservative sweep (SPEC §6); write ``nonconservative.json`` and ``.png``.

    ``settings`` (the 1D :class:`jaxsa.Settings`) does not apply; the experiment uses
    :class:`jaxsa.experiments.nonconservative.NCSettings` defaults.
    """
    from tqdm.auto import tqdm

    from jaxsa.experiments import nonconservative as nc
    from jaxsa.plot_nonconservative import plot_nonconservative

    t_start = time.perf_counter()
    s = nc.NCSettings()
    bar = tqdm(total=2, desc="nonconservative: compile+solve", file=sys.stderr)
    out, grid, timing = nc.run_nonconservative(s)
    bar.update(1)
    records = nc.nonconservative_records(out)
    prov = provenance(s, seeds={"note": "deterministic grid solve: no random numbers"},
                      timing=timing)
    os.makedirs(out_dir, exist_ok=True)
    dens = {"axis": out["grid_axis"], "data": out["data_density"],
            "generated": out["generated_density"]}
    _save_figure(plot_nonconservative, os.path.join(out_dir, "nonconservative.png"), records, dens)
    prov["timing"]["total_s"] = time.perf_counter() - t_start
    write_json(os.path.join(out_dir, "nonconservative.json"), {"provenance": prov, "records": records})
    bar.update(1)
    bar.close()
    for r in records:
        print(f"  g={r['g']:<4g} eta={r['eta']:.5f} entropy_bound={r['entropy_bound']:.4f} "
              f"c2={r['c2']:.4f} D0={r['D0']:.4f} Eq.77 {'holds' if r['eq77_holds'] else 'VIOLATED'}")
    print(f"wrote {out_dir}/nonconservative.json, nonconservative.png")
    return {"records": records, "provenance": prov}


FIGURES = {"fig4": reproduce_fig4, "nonconservative": reproduce_nonconservative}  # fig4 also writes fig5 (the same computation)
ALIASES = {"fig5": "fig4"}


def _cmd_reproduce(args) -> int:
    names = args.figures or list(FIGURES)
    todo = []
    for n in names:
        n = ALIASES.get(n, n)
        if n not in FIGURES:
            print(f"jaxsa reproduce: unknown figure {n!r}; available: "
                  f"{', '.join(list(FIGURES) + list(ALIASES))}", file=sys.stderr)
            return 2
        if n not in todo:
            todo.append(n)
    settings = _settings_from_args(args)
    for n in todo:
        FIGURES[n](args.out, settings)
    return 0


def _cmd_benchmark(args) -> int:
    from jaxsa.experiments.benchmark import benchmark_fig4, format_table

    settings = _settings_from_args(args)
    res = benchmark_fig4(settings, repeats=args.repeats)
    print(format_table(res))
    if args.out:
        write_json(os.path.join(args.out, "benchmark_fig4.json"),
                   {"provenance": provenance(settings), **res})
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxsa", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    def resolution(sp):
        sp.add_argument("--refine", type=int, default=1,
                        help="refine every resolution by this factor (default 1)")
        sp.add_argument("--n-quantiles", type=int, default=None, help="quantile nodes per process")
        sp.add_argument("--rtol", type=float, default=None, help="ODE tolerance (rtol = atol)")

    r = sub.add_parser("reproduce", help="reproduce the paper's figures (JSON + PNG)")
    r.add_argument("figures", nargs="*", help=f"figures to run (default: all of {list(FIGURES)})")
    r.add_argument("--out", default="results", help="output folder (default: ./results)")
    resolution(r)
    r.set_defaults(func=_cmd_reproduce)

    b = sub.add_parser("benchmark", help="time the fig4 computation (compile vs steady state)")
    b.add_argument("--repeats", type=int, default=10)
    b.add_argument("--out", default=None, help="also write benchmark_fig4.json here")
    resolution(b)
    b.set_defaults(func=_cmd_benchmark)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _enable_x64()
    try:
        return args.func(args)
    except ValueError as e:
        print(f"jaxsa: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
