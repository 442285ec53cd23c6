"""The ``jaxsa`` command.

    jaxsa reproduce [FIGURE ...] [--out DIR]   reproduce the paper's figures (default: all)
    jaxsa sweep CONFIG --out DIR               a resumable, sharded sweep (JSON config)
    jaxsa validate [--n 10000] --out DIR       check spec §4's inequalities on random configs
    jaxsa optimize-schedule --out DIR          minimise c₂ over a monotone schedule family
    jaxsa benchmark [--repeats N]              time the fig4 computation (compile vs steady)

Runs in float64 (set for this process only). Results are JSON plus PNG, written
atomically (a file is either complete or absent), with provenance: versions, device, dtype,
settings, seeds, compile and run times.

Compiled programs are kept in JAX's persistent compilation cache, so a second run does not
compile again: ``$JAXSA_CACHE/jax`` if ``JAXSA_CACHE`` is set, else
``$XDG_CACHE_HOME/jaxsa/jax`` (``~/.cache/jaxsa/jax``). ``--no-cache`` or ``JAXSA_NO_CACHE=1``
turns it off (``jaxsa benchmark``, which times the compiler, never uses it); deleting the
folder is always safe.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

from jaxsa import results
from jaxsa.results import (  # noqa: F401 (re-exported: the CLI's cache switches and writers)
    cache_disabled,
    compilation_cache_dir,
    enable_compilation_cache,
    provenance,
    save_figure,
    write_json,
)

__all__ = ["main"]

def _enable_x64():
    import jax

    jax.config.update("jax_enable_x64", True)


def _version() -> str:
    """The installed package's version (from its metadata; no JAX import)."""
    import importlib.metadata as md

    try:
        return md.version("jaxsa")
    except md.PackageNotFoundError:  # a source tree that was not installed
        from jaxsa import __version__

        return __version__





def _settings_from_args(args):
    from jaxsa.solvers.flow import ODESettings
    from jaxsa.relations import Settings

    s = Settings()
    if args.refine > 1:
        s = s.refined(args.refine)
    if args.n_quantiles:
        s = dataclasses.replace(s, n_quantiles=args.n_quantiles)
    if args.rtol:
        s = dataclasses.replace(s, ode=ODESettings(rtol=args.rtol, atol=args.rtol))
    return s


def _import_pyplot_meanwhile() -> None:
    """Import matplotlib's pyplot in a background thread while JAX compiles and runs (which
    releases the interpreter lock), so that the figures do not wait for it afterwards."""
    import threading

    from jaxsa.plot import pyplot

    threading.Thread(target=pyplot, name="jaxsa-import-pyplot", daemon=True).start()


def reproduce_fig4(out_dir: str, settings) -> dict:
    """Run Fig. 4/5 and write ``fig4.json``, ``fig5.json``, ``fig4.png``, ``fig5.png``."""
    from tqdm.auto import tqdm

    from jaxsa.experiments import fig4
    from jaxsa.plot import plot_fig4, plot_fig5

    t_start = time.perf_counter()
    _import_pyplot_meanwhile()
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
    save_figure(plot_fig4, os.path.join(out_dir, "fig4.png"), records, f5)
    save_figure(plot_fig5, os.path.join(out_dir, "fig5.png"), f5)
    prov["timing"]["total_s"] = time.perf_counter() - t_start
    write_json(os.path.join(out_dir, "fig5.json"), {"provenance": prov, **f5})
    write_json(os.path.join(out_dir, "fig4.json"), {"provenance": prov, "records": records})
    bar.update(1)
    bar.close()
    bad = [(r["schedule"], r["perturbation"], r["violations"]) for r in records if r["violations"]]
    print(f"fig4: {len(records)} configurations, compile {prov['timing']['compile_s']:.2f} s, "
          f"run {prov['timing']['run_s']:.3f} s; inequality violations: {bad or 'none'}")
    for r in records:
        status = "converged" if r.get("converged", True) else "NOT CONVERGED"
        print(f"  {r['schedule']:8s} {r['perturbation']:9s} eta={r['eta']:.6f} c1={r['c1']:.6f} "
              f"c2={r['c2']:.6f} D0={r['D0']:.6f} (eta error {r.get('eta_err', float('nan')):.1e}, "
              f"{status})")
    print(f"wrote {out_dir}/fig4.json, fig5.json, fig4.png, fig5.png")
    return {"records": records, "provenance": prov}


def reproduce_nonconservative(out_dir: str, settings) -> dict:
    """Run the non-conservative sweep (spec §6); write ``nonconservative.json`` and ``.png``.

    ``settings`` (the 1D `jaxsa.Settings`) does not apply; the experiment uses
    `jaxsa.experiments.nonconservative.NCSettings` defaults.
    """
    from tqdm.auto import tqdm

    from jaxsa.experiments import nonconservative as nc
    from jaxsa.plot.nonconservative import plot_nonconservative

    t_start = time.perf_counter()
    s = nc.NCSettings()
    bar = tqdm(total=2, desc="nonconservative: compile+solve", file=sys.stderr)
    out, grid, timing = nc.run_nonconservative(s)
    bar.update(1)
    records = nc.nonconservative_records(out)
    # the independent particle route: the audit of each rotated field's own flow
    t_audit = time.perf_counter()
    for r, a in zip(records, nc.audit_rotated(s, nc.AUDIT)):
        r["audit"] = a
        lo, hi = a["eta_ci"]
        r["grid_eta_in_audit_ci"] = bool(lo <= r["eta"] <= hi)
    timing["audit_s"] = time.perf_counter() - t_audit
    prov = provenance(s, seeds={"grid": "deterministic grid solve: no random numbers",
                                "audit": 0}, timing=timing)
    os.makedirs(out_dir, exist_ok=True)
    dens = {"axis": out["grid_axis"], "data": out["data_density"],
            "generated": out["generated_density"]}
    save_figure(plot_nonconservative, os.path.join(out_dir, "nonconservative.png"), records, dens)
    prov["timing"]["total_s"] = time.perf_counter() - t_start
    write_json(os.path.join(out_dir, "nonconservative.json"), {"provenance": prov, "records": records})
    bar.update(1)
    bar.close()
    for r in records:
        print(f"  g={r['g']:<4g} eta={r['eta']:.5f} entropy_bound={r['entropy_bound']:.4f} "
              f"c2={r['c2']:.4f} D0={r['D0']:.4f} Eq.77 {'holds' if r['eq77_holds'] else 'VIOLATED'}")
        a = r["audit"]
        print(f"         particle audit: eta={a['eta']:.5f} [{a['eta_ci'][0]:.5f}, {a['eta_ci'][1]:.5f}] "
              f"entropy_bound={a['entropy_bound']:.4f} [{a['entropy_bound_ci'][0]:.4f}, "
              f"{a['entropy_bound_ci'][1]:.4f}]")
    print(f"wrote {out_dir}/nonconservative.json, nonconservative.png")
    return {"records": records, "provenance": prov}


def reproduce_fig3(out_dir: str, settings=None, fig3_settings=None) -> dict:
    """Run Fig. 3 (Swiss roll, spec §7) and write ``fig3.json`` and ``fig3.png``.

    The 1D ``settings`` do not apply; `jaxsa.experiments.fig3.Fig3Settings` defaults are
    used (the OT-CFM network is cached under ``$JAXSA_CACHE`` or ``~/.cache/jaxsa``).
    """
    from jaxsa.experiments import fig3
    from jaxsa.plot.fig3 import plot_fig3

    s = fig3_settings or fig3.Fig3Settings()
    out = fig3.run_fig3(s, progress=lambda name: print(f"fig3: {name} done", file=sys.stderr))
    prov = provenance(s, seeds={"seed": s.seed}, timing=out["timing"], cfm=out["cfm"])
    os.makedirs(out_dir, exist_ok=True)
    save_figure(plot_fig3, os.path.join(out_dir, "fig3.png"), out["records"], out["samples"],
                 out["times"], out["data"])
    write_json(os.path.join(out_dir, "fig3.json"), {"provenance": prov, "records": out["records"]})
    for r in out["records"]:
        lo, hi = r["eta_ci"]
        print(f"  {r['schedule']:8s} {r['field']:7s} eta={r['eta']:.5f} [{lo:.5f}, {hi:.5f}] "
              f"{'resolved' if r['eta_resolved'] else 'UNRESOLVED'} c1={r['c1']:.5f} c2={r['c2']:.5f} "
              f"D0={r['D0']:.5f} model_error={r['model_error']:.4f} (floor {r['W1_floor']:.4f})")
    print(f"wrote {out_dir}/fig3.json, fig3.png")
    return {"records": out["records"], "provenance": prov}


def reproduce_images(out_dir: str, settings) -> dict:
    """Run the digits experiment (real images); write ``images.json`` and ``images.png``.

    ``settings`` (the 1D `jaxsa.Settings`) does not apply; the experiment uses
    `jaxsa.experiments.images.ImagesSettings` defaults.
    """
    from tqdm.auto import tqdm

    from jaxsa.experiments import images
    from jaxsa.plot.images import plot_images

    s = images.ImagesSettings()
    bar = tqdm(total=1 + (len(s.schedules) + len(s.exact)) * len(images.PERTURBATIONS),
               desc="images", file=sys.stderr)

    def progress(name):
        bar.set_postfix_str(name)
        bar.update(1)

    doc = images.run_images(s, progress=progress)
    bar.close()
    prov = provenance(s, seeds={"seed": s.seed}, timing=doc.pop("timing"))
    doc = {"provenance": prov, **doc}
    os.makedirs(out_dir, exist_ok=True)
    save_figure(plot_images, os.path.join(out_dir, "images.png"), doc)
    write_json(os.path.join(out_dir, "images.json"), doc)
    for r in doc["records"]:
        lo, hi = r["eta_ci"]
        print(f"  {r['schedule']:8s} {r['field']:7s} {r['perturbation']:9s} eta={r['eta']:.4g} "
              f"[95% {lo:.3g}, {hi:.3g}] {'resolved' if r['eta_resolved'] else 'UNRESOLVED'} "
              f"entropy_bound={r['entropy_bound']:.4g} D0={r['D0']:.4g} "
              f"model_error={r['model_error']:.4g} (floor {r['W1_noise_floor']:.3g}) "
              f"Eq.77 {'holds' if r['eq77_holds'] else 'VIOLATED'}")
    print(f"wrote {out_dir}/images.json, images.png")
    return doc


FIGURES = {"fig4": reproduce_fig4, "nonconservative": reproduce_nonconservative}
FIGURES["images"] = reproduce_images  # fig4 also writes fig5 (the same computation)
FIGURES["fig3"] = reproduce_fig3
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
    from jaxsa.results.html import write_index  # the results page: figures, tables, provenance
    print(f"wrote {write_index(args.out)}")
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


def _init_distributed(args) -> None:
    """``jax.distributed.initialize`` for multi-process (multi-host) sweeps."""
    if args.num_processes and args.num_processes > 1:
        import jax

        try:
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        except (AttributeError, ValueError):  # option absent in this jax version
            pass
        jax.distributed.initialize(coordinator_address=args.coordinator,
                                   num_processes=args.num_processes, process_id=args.process_id)


def _cmd_sweep(args) -> int:
    from tqdm.auto import tqdm

    from jaxsa.studies.sweep import load_spec, run_sweep

    _init_distributed(args)

    spec = load_spec(args.config)
    bar = tqdm(total=None, desc="sweep", unit="cfg", file=sys.stderr, smoothing=0.1, mininterval=0.5)

    def progress(n):
        bar.update(n)

    from jaxsa.studies.sweep import sweep_points

    bar.total = len(sweep_points(spec)) * len(spec.perturbations)
    bar.refresh()
    doc = run_sweep(spec, args.out, progress=progress)
    bar.close()
    if not doc.get("complete"):
        print("sweep: incomplete (interrupted); run the same command again to resume")
        return 1
    import jax

    th = doc["throughput"]
    # multi-process: every process gets the same records; process 0 alone writes the file
    wrote = "wrote" if jax.process_index() == 0 else "process 0 wrote"
    print(f"sweep: {doc['n_configurations']} configurations ({th['new_configurations']} new) on "
          f"{th['devices']} device(s); compile {th['compile_s']:.1f} s, "
          f"{th['configs_per_s'] or float('nan'):.1f} configurations/s; {wrote} {args.out}/sweep.json")
    return 0


def _cmd_validate(args) -> int:
    from tqdm.auto import tqdm

    from jaxsa.plot import plot_validation
    from jaxsa.studies.validate import run_validation

    bar = tqdm(total=args.n, desc="validate", unit="cfg", file=sys.stderr, smoothing=0.1, mininterval=0.5)
    s = run_validation(n=args.n, out_dir=args.out, seed=args.seed, chunk_size=args.chunk_size,
                       rtol=args.rtol, progress=bar.update)
    bar.close()
    save_figure(plot_validation, os.path.join(args.out, "validate.png"), s["ratios"], s)
    print(f"validate: {s['n']} configurations: {s['n_converged']} converged to rtol="
          f"{s['rtol']:g} ({s['n_refined']} after a refined second pass), "
          f"{s['n_not_converged']} not converged, {s['n_divergent_chi2']} with divergent chi^2")
    print(f"  violations among converged records: {s['violations']}")
    print(f"  smallest relative slack per inequality: {s['min_relative_slack']}")
    for k, q in s["tightness_quantiles"].items():
        print(f"  {k}: median {q['0.5']:.4f}, 1% {q['0.01']:.4f}, 99% {q['0.99']:.4f}")
    print(f"wrote {args.out}/validate.json and validate.png")
    return 1 if sum(s["violations"].values()) else 0


def _cmd_optimize(args) -> int:
    from tqdm.auto import tqdm

    from jaxsa.densities import paper_data
    from jaxsa.studies.optimize import optimize_schedule, schedule_curves
    from jaxsa.plot import plot_optimized
    from jaxsa.schedules.standard import CondOT, Cosine

    bar = tqdm(total=args.steps, desc="optimize-schedule", unit="step", file=sys.stderr,
               mininterval=0.5)

    def progress(i, c2):
        bar.set_postfix_str(f"c2={c2:.5f}")
        bar.update(1)

    data = paper_data()
    res = optimize_schedule(data, steps=args.steps, learning_rate=args.lr, degree=args.degree,
                            progress=progress)
    bar.close()
    sched = res.pop("schedule")
    curves = {"optimised": schedule_curves(sched, data), "cosine": schedule_curves(Cosine(), data),
              "cond-ot": schedule_curves(CondOT(), data)}
    doc = {"provenance": provenance(), **res,
           "parameters": {"theta_logits": [float(v) for v in sched.theta_logits],
                          "rho_coeffs": [float(v) for v in sched.rho_coeffs], "tau": float(sched.tau)},
           "curves": curves}
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "optimize_schedule.json"), doc)
    save_figure(plot_optimized, os.path.join(args.out, "optimize_schedule.png"), curves, res)
    print(f"optimize-schedule: c2 = {res['c2_opt']:.6f} (cosine {res['c2_cosine']:.6f}, cond-OT "
          f"{res['c2_cond_ot']:.6f}, best interpolation {res['c2_interp_best']:.6f} at "
          f"lam={res['lam_interp_best']:.2f}); bounds L^2/tau = {res['length_bound']:.6f} >= "
          f"W2^2/tau = {res['ot_bound']:.6f}")
    print(f"wrote {args.out}/optimize_schedule.json and optimize_schedule.png")
    return 0


def _cmd_steps(args) -> int:
    from tqdm.auto import tqdm

    from jaxsa.plot.steps import plot_steps
    from jaxsa.studies.steps import StepsSettings, run_steps

    s = (StepsSettings(nfe=(6,), data=("paper",), optimise_nfe=(6,), optimise_steps=10, n_nodes=1024,
                       c2_opt_steps=20)
         if args.fast else StepsSettings())
    bar = tqdm(desc="steps", file=sys.stderr, unit="case")

    def progress(name):
        bar.set_postfix_str(name)
        bar.update(1)

    out = run_steps(s, progress=progress)
    bar.close()
    prov = provenance(s, seeds={"seed": s.seed, "note": "1D: quadrature nodes; d-D: PRNGKey(seed), "
                                "models: their CFMSettings seed"}, timing=out["timing"])
    os.makedirs(args.out, exist_ok=True)
    table = [{k: v for k, v in r.items() if k not in ("grid", "loss_history")} for r in out["records"]]
    write_json(os.path.join(args.out, "steps.json"),
               {"provenance": prov, "records": table, "winners": out["winners"],
                "c2_opt_schedule": out["c2_opt_schedule"], "learned": out["learned"],
                "grids": [{k: r[k] for k in ("data", "schedule", "rule", "nfe", "grid")}
                          for r in out["records"]]})
    save_figure(plot_steps, os.path.join(args.out, "steps.png"), out["records"])
    from jaxsa.results.html import write_index

    for w in out["winners"]:
        print(f"  {w['data']:10s} {w['schedule']:8s} NFE {w['nfe']:3d}: best {w['best']:14s} "
              f"W1 = {w['W1_best']:.3e} (tied within error: {', '.join(w['tied_within_error'])})")
    print(f"wrote {args.out}/steps.json, steps.png; {write_index(args.out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    # options accepted before or after the command: `jaxsa --no-cache reproduce` and
    # `jaxsa reproduce --no-cache` (SUPPRESS: a subcommand's default does not hide the other)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--no-cache", action="store_true", default=argparse.SUPPRESS,
                        help="do not use the persistent compilation cache (also JAXSA_NO_CACHE=1)")
    p = argparse.ArgumentParser(prog="jaxsa", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.strip().split("\n\n")[-1].replace("``", ""),
                                parents=[common])
    p.add_argument("--version", action="version", version=f"jaxsa {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    def add_parser(name, **kw):
        return sub.add_parser(name, parents=[common], **kw)

    def resolution(sp):
        sp.add_argument("--refine", type=int, default=1,
                        help="refine every resolution by this factor (default 1)")
        sp.add_argument("--n-quantiles", type=int, default=None, help="quantile nodes per process")
        sp.add_argument("--rtol", type=float, default=None, help="ODE tolerance (rtol = atol)")

    r = add_parser("reproduce", help="reproduce the paper's figures (JSON + PNG)")
    r.add_argument("figures", nargs="*", help=f"figures to run (default: all of {list(FIGURES)})")
    r.add_argument("--out", default="results", help="output folder (default: ./results)")
    resolution(r)
    r.set_defaults(func=_cmd_reproduce)

    sw = add_parser("sweep", help="run or resume a sweep described by a JSON config")
    sw.add_argument("config", help="sweep configuration (JSON; see examples/sweep_interpolated.json)")
    sw.add_argument("--out", required=True, help="output folder (chunks/ and sweep.json)")
    sw.add_argument("--coordinator", default=None, help="multi-process: coordinator HOST:PORT")
    sw.add_argument("--num-processes", type=int, default=None, help="multi-process: process count")
    sw.add_argument("--process-id", type=int, default=None, help="multi-process: this process's id")
    sw.set_defaults(func=_cmd_sweep)

    v = add_parser("validate", help="check every inequality on random configurations")
    v.add_argument("--n", type=int, default=10_000, help="number of configurations (default 10000)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--chunk-size", type=int, default=64)
    v.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance of a violation")
    v.add_argument("--out", default="validate", help="output folder (default ./validate)")
    v.set_defaults(func=_cmd_validate)

    o = add_parser("optimize-schedule", help="minimise c2 over the PolarBernstein family")
    o.add_argument("--steps", type=int, default=400)
    o.add_argument("--lr", type=float, default=0.05)
    o.add_argument("--degree", type=int, default=8)
    o.add_argument("--out", default="optimize", help="output folder (default ./optimize)")
    o.set_defaults(func=_cmd_optimize)

    st = add_parser("steps", help="sampling-step grids: rules vs each other on exact 1D references "
                    "and learned 2D/64D models, and optimised grids (JSON + PNG)")
    st.add_argument("--out", default="steps", help="output folder (default ./steps)")
    st.add_argument("--fast", action="store_true", help="a tiny configuration (what CI runs)")
    st.set_defaults(func=_cmd_steps)

    b = add_parser("benchmark", help="time the fig4 computation (compile vs steady state; "
                   "never uses the compilation cache)")
    b.add_argument("--repeats", type=int, default=10)
    b.add_argument("--out", default=None, help="also write benchmark_fig4.json here")
    resolution(b)
    b.set_defaults(func=_cmd_benchmark)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    # before anything is compiled: the cache must be configured ahead of the first program
    # (`jaxsa benchmark` times the compiler, so it never reads compiled programs from the cache)
    results.set_compilation_cache(None)
    if not (getattr(args, "no_cache", False) or cache_disabled() or args.command == "benchmark"):
        results.set_compilation_cache(enable_compilation_cache())
    _enable_x64()
    try:
        return args.func(args)
    except ValueError as e:
        print(f"jaxsa: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
