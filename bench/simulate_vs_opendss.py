"""OpenDSS's own yearly simulation and ``gridflex simulate`` side by side on the same feeders.

For each feeder and control mode, both tools run in their own fresh subprocess (so each one's
peak memory is its own) on the same model and the same hourly steps:

* OpenDSS (dss-python): ``compile``, energy meters and monitors disabled, one snapshot solve with
  ``controlmode=static`` (then ``controlmode=off`` when controls are frozen), then the yearly run.
  Its best of two ways counts: the native yearly mode (``set mode=yearly number=N``; one
  ``solve``) or a stepped loop (``number=1``, ``solve`` N times). Solve time = the yearly
  solve(s) after compile; end to end = compile + snapshot + yearly solve.
* gridflex: :func:`gridflex.study.simulate.run_simulation` exactly as ``gridflex simulate`` runs
  it (import, solve, violations, the result files and the plot). Solve time = ``solve_s`` from
  ``run.json``; end to end = the whole call.

Feeders (issue 2): IEEE 123 with ``loadshapes/LoadShape1.CSV`` on every load, EPRI ckt5 and ckt7
with their own yearly shapes, the IEEE 8500-node feeder with LoadShape1 and
``set maxcontroliter=100``. The two IEEE feeders get a small wrapper master file in a temporary
folder (``redirect`` of the original plus the load shape), as OpenDSS users run them over a year.
The feeders are read from ``../shared/feeders``; without it the script says so and exits.

Usage::

    python bench/simulate_vs_opendss.py                      # all feeders, 8760 h, both modes
    python bench/simulate_vs_opendss.py --feeders ieee123 --hours 168
    python bench/simulate_vs_opendss.py --feeders ieee8500 --controls frozen --json out.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FeederSpec:
    """A benchmark feeder: its master file and the yearly load shape it needs, if any."""

    key: str
    label: str
    master: str  # relative to shared/feeders
    loadshape: str | None = None  # relative to shared/feeders; assigned to every load
    max_control_iter: int = 10


FEEDERS: dict[str, FeederSpec] = {
    f.key: f
    for f in (
        FeederSpec(
            "ieee123",
            "IEEE 123 (LoadShape1)",
            "ieee/123Bus/IEEE123Master.dss",
            "loadshapes/LoadShape1.CSV",
        ),
        FeederSpec("ckt5", "EPRI ckt5", "epri/ckt5/Master_ckt5.dss"),
        FeederSpec("ckt7", "EPRI ckt7", "epri/ckt7/Master_ckt7.dss"),
        FeederSpec(
            "ieee8500",
            "IEEE 8500-node (LoadShape1)",
            "ieee/8500-Node/Master.dss",
            "loadshapes/LoadShape1.CSV",
            max_control_iter=100,
        ),
    )
}

#: control modes: (OpenDSS controlmode during the year, gridflex --controls)
MODES = {"frozen": ("off", "off"), "active": ("static", "static")}


def write_master(spec: FeederSpec, feeders_dir: Path, folder: Path) -> Path:
    """The master file both tools compile: the original, plus the yearly shape where needed."""
    master = (feeders_dir / spec.master).resolve()
    if spec.loadshape is None and spec.max_control_iter == 10:
        return master
    lines = [f"! gridflex benchmark wrapper for {spec.label}", f'redirect "{master}"']
    if spec.loadshape is not None:
        shape = (feeders_dir / spec.loadshape).resolve()
        lines += [
            f'New Loadshape.LS1 npts=8760 interval=1 mult=(file="{shape}") action=normalize',
            "batchedit load..* yearly=LS1",
        ]
    if spec.max_control_iter != 10:
        lines.append(f"set maxcontroliter={spec.max_control_iter}")
    path = folder / f"{spec.key}_master.dss"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------
# workers (run in a fresh interpreter; print one JSON line)


def _peak_rss_mb() -> float:
    import resource

    # Linux reports kilobytes
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker_opendss(
    master: str, hours: int, controlmode: str, method: str, max_iter: int
) -> dict[str, Any]:
    """OpenDSS yearly run; ``method`` is ``native`` (one solve) or ``loop`` (N solves)."""
    from dss import DSS  # dss-python

    text = DSS.Text
    t0 = time.perf_counter()
    text.Command = f'compile "{master}"'
    compile_s = time.perf_counter() - t0
    for cmd in (
        "batchedit energymeter..* enabled=no",
        "batchedit monitor..* enabled=no",
        "set overloadreport=no voltexceptionreport=no demandinterval=no",
        f"set maxcontroliter={max_iter}",
        "set controlmode=static",
        "set mode=snapshot",
        "solve",
    ):
        text.Command = cmd
    snapshot_converged = bool(DSS.ActiveCircuit.Solution.Converged)
    text.Command = f"set controlmode={controlmode}"
    t1 = time.perf_counter()
    if method == "native":
        text.Command = f"set mode=yearly number={hours} stepsize=1h hour=0"
        text.Command = "solve"
    else:
        text.Command = "set mode=yearly number=1 stepsize=1h hour=0"
        solve = DSS.ActiveCircuit.Solution.Solve
        for _ in range(hours):
            solve()
    solve_s = time.perf_counter() - t1
    return {
        "tool": "opendss",
        "method": method,
        "compile_s": compile_s,
        "solve_s": solve_s,
        "end_to_end_s": time.perf_counter() - t0,
        "peak_rss_mb": _peak_rss_mb(),
        "converged": bool(DSS.ActiveCircuit.Solution.Converged),
        "snapshot_converged": snapshot_converged,
        # proof the year ran: the solution clock ends at the last step
        "hour_end": float(DSS.ActiveCircuit.Solution.dblHour),
        "nodes": int(DSS.ActiveCircuit.NumNodes),
    }


def worker_gridflex(
    master: str, hours: int, controls: str, max_iter: int, out: str, violations: str = "csv"
) -> dict[str, Any]:
    """``gridflex simulate`` on the same master file (as the command runs it)."""
    import os

    from gridflex.study.simulate import run_simulation

    t0 = time.perf_counter()
    run = run_simulation(master, out, hours=float(hours), controls=controls,
                         max_control_iter=max_iter, violations=violations)  # fmt: skip
    end_to_end = time.perf_counter() - t0
    info = run.run_info
    timings = info["timings"]
    return {
        "tool": "gridflex",
        "violations_format": violations,
        "import_s": timings["import_s"],
        "solve_s": timings["solve_s"],
        "write_s": timings["write_s"],
        "violations_s": timings.get("violations_s"),
        "plot_s": timings.get("plot_s"),
        "violation_rows": sum(info["violations"].values()),
        "output_mb": sum(f.stat().st_size for f in Path(out).iterdir()) / 2**20,
        "cpu_count": os.cpu_count(),
        "end_to_end_s": end_to_end,
        "peak_rss_mb": _peak_rss_mb(),
        "converged": info["convergence"]["all_converged"],
        "failed_steps": info["convergence"]["failed_steps"],
        "nodes": info["nodes"],
        "steps": info["steps"],
    }


def _run_worker(args: list[str], timeout_s: float) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", *args],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit {proc.returncode}"}
    return dict(json.loads(lines[-1]))


# ----------------------------------------------------------------------------------------------


def _fmt(x: float | None, unit: str = "s") -> str:
    return "-" if x is None else f"{x:.2f} {unit}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.1f}x"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; ``--json`` also writes the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeders", default=",".join(FEEDERS),
                        help=f"comma-separated subset of {', '.join(FEEDERS)}")  # fmt: skip
    parser.add_argument("--hours", type=int, default=8760, help="hourly steps (default 8760)")
    parser.add_argument(
        "--controls", default="frozen,active", help="frozen, active or frozen,active (default)"
    )
    parser.add_argument(
        "--opendss-method",
        choices=("best", "native", "loop"),
        default="best",
        help="OpenDSS way(s) to run the year; best = both, the faster counts",
    )
    parser.add_argument(
        "--tools",
        default="opendss,gridflex",
        help="which side(s) to run: opendss, gridflex or both (default both, side by side)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="per run, seconds")
    parser.add_argument(
        "--violations",
        choices=("csv", "parquet", "summary"),
        default="csv",
        help="gridflex's violation output (default csv: the result contract, as "
        "`gridflex simulate` writes it)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        if kind == "opendss":
            out = worker_opendss(rest[0], int(rest[1]), rest[2], rest[3], int(rest[4]))
        else:
            out = worker_gridflex(rest[0], int(rest[1]), rest[2], int(rest[3]), rest[4], rest[5])
        print(json.dumps(out))
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from gridflex.errors import SharedDataMissingError
    from gridflex.shared_data import shared_dir

    try:
        feeders_dir = shared_dir() / "feeders"
    except SharedDataMissingError as exc:
        print(f"skipped: {exc}")
        return 0
    keys = [k.strip() for k in args.feeders.split(",") if k.strip()]
    unknown = [k for k in keys if k not in FEEDERS]
    if unknown:
        parser.error(f"unknown feeder(s) {unknown}; choose from {', '.join(FEEDERS)}")
    modes = [m.strip() for m in args.controls.split(",") if m.strip()]
    if any(m not in MODES for m in modes):
        parser.error("--controls takes frozen, active or frozen,active")
    methods: tuple[str, ...] = (
        ("native", "loop") if args.opendss_method == "best" else (args.opendss_method,)
    )
    tools = {t.strip() for t in args.tools.split(",") if t.strip()}
    if not tools or tools - {"opendss", "gridflex"}:
        parser.error("--tools takes opendss, gridflex or opendss,gridflex")
    if "opendss" not in tools:
        methods = ()

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gridflex-bench-") as tmp:
        for key in keys:
            spec = FEEDERS[key]
            if not (feeders_dir / spec.master).is_file():
                print(f"skipped {spec.label}: {feeders_dir / spec.master} is not present")
                continue
            master = write_master(spec, feeders_dir, Path(tmp))
            for mode in modes:
                dss_mode, gf_mode = MODES[mode]
                peer: dict[str, Any] = {}
                tried = {}
                for method in methods:
                    r = _run_worker(["opendss", str(master), str(args.hours), dss_mode, method,
                                     str(spec.max_control_iter)], args.timeout)  # fmt: skip
                    tried[method] = r
                    if "error" not in r and (not peer or r["solve_s"] < peer["solve_s"]):
                        peer = r
                out_dir = Path(tmp) / f"{key}_{mode}"
                gf: dict[str, Any] = {"error": "not run (--tools)"}
                if "gridflex" in tools:
                    cmd = ["gridflex", str(master), str(args.hours), gf_mode,
                           str(spec.max_control_iter), str(out_dir), args.violations]  # fmt: skip
                    gf = _run_worker(cmd, args.timeout)
                    # a year of the 8500-node feeder writes ~4.7 GB: free the disk before the next
                    shutil.rmtree(out_dir, ignore_errors=True)
                row = {"feeder": spec.label, "key": key, "controls": mode, "hours": args.hours,
                       "opendss": peer, "opendss_tried": tried, "gridflex": gf}  # fmt: skip
                rows.append(row)
                _print_row(row)
    _print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


def _print_row(row: dict[str, Any]) -> None:
    p, g = row["opendss"], row["gridflex"]
    msg = f"{row['feeder']} [{row['controls']}]: "
    if "error" in g:
        msg += f"gridflex: {g['error']}"
        if p:
            msg += f"; OpenDSS ({p['method']}) solve {p['solve_s']:.2f} s"
    elif not p:
        msg += f"gridflex solve {g['solve_s']:.2f} s; OpenDSS: {row['opendss_tried'] or 'not run'}"
    else:
        msg += (
            f"OpenDSS ({p['method']}) solve {p['solve_s']:.2f} s, gridflex solve "
            f"{g['solve_s']:.2f} s ({_ratio(p['solve_s'], g['solve_s'])})"
        )
    if "error" not in g:
        msg += (
            f"\n  gridflex: import {g['import_s']:.2f} s, solve {g['solve_s']:.2f} s, write "
            f"{g['write_s']:.2f} s (violations {g['violations_s'] or 0:.2f} s, plot "
            f"{g['plot_s'] or 0:.2f} s, in parallel), {g['violation_rows']:,} violation rows "
            f"({g['violations_format']}), {g['output_mb']:.0f} MB written"
        )
    print(msg, flush=True)


def _print_table(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'feeder':30} {'controls':8} {'nodes':>6} | {'OpenDSS solve':>13} {'gridflex solve':>14} "
        f"{'ratio':>6} | {'OpenDSS e2e':>11} {'gridflex e2e':>12} {'ratio':>6} | "
        f"{'OpenDSS RSS':>11} {'gridflex RSS':>12}"
    )
    print()
    print(head)
    print("-" * len(head))
    for row in rows:
        p, g = row["opendss"], row["gridflex"]
        if "error" in g and not p:
            print(f"{row['feeder']:30} {row['controls']:8} no result: {g['error']}")
            continue
        # one side may be missing (--tools, a failure): its cells read "-"
        p = p or dict.fromkeys(("solve_s", "end_to_end_s", "peak_rss_mb"))
        if "error" in g:
            g = {"nodes": "-", **dict.fromkeys(("solve_s", "end_to_end_s", "peak_rss_mb"))}
        print(
            f"{row['feeder']:30} {row['controls']:8} {g['nodes']:>6} | "
            f"{_fmt(p['solve_s']):>13} {_fmt(g['solve_s']):>14} "
            f"{_ratio(p['solve_s'], g['solve_s']):>6} | "
            f"{_fmt(p['end_to_end_s']):>11} {_fmt(g['end_to_end_s']):>12} "
            f"{_ratio(p['end_to_end_s'], g['end_to_end_s']):>6} | "
            f"{_fmt(p['peak_rss_mb'], 'MB'):>11} {_fmt(g['peak_rss_mb'], 'MB'):>12}"
        )
    print(
        "\nOpenDSS: best of native yearly mode and a stepped loop, meters and monitors disabled; "
        "solve = yearly solve after compile. gridflex: solve_s of run.json; end to end includes "
        "import, violations, Parquet/CSV/JSON and the plot. RSS = peak resident memory of each "
        "tool's own process."
    )


if __name__ == "__main__":
    raise SystemExit(main())
