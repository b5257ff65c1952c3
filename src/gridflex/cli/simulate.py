"""``gridflex simulate`` and ``gridflex simulate-many``: argument parsing and printing only.

The work is :func:`gridflex.study.simulate.run_simulation` and
:func:`gridflex.study.fanout.run_batch`; heavy modules are imported inside the commands so
``gridflex --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from gridflex.study.simulate import SimulationRun

FEEDER_HELP = (
    "OpenDSS master file (.dss) or simbench:<code>; default: the embedded SimBench grid "
    "simbench:1-LV-rural1--0-sw with its one-year 15-minute profiles."
)
HOURS_HELP = (
    "Hours of simulated time, at the model's own profile step (hourly for OpenDSS yearly shapes, "
    "15 min for SimBench) unless --step is given. Default: the whole profile (one year)."
)
START_HELP = (
    "First instant, ISO 8601 (2016-06-01, 2016-06-01T12:00, ...+01:00); default 1 January "
    "00:00 local time, which is load-shape hour 0."
)
STEP_HELP = "Time step: 1h, 15min, 30s, ... (default: the model's profile step)."
VIOLATIONS_HELP = (
    "csv: violations.csv, one row per violation (the result contract); parquet: the same rows "
    "as violations.parquet; summary: no row file, per-kind counts and worst rows in run.json "
    "(for runs with tens of millions of rows)."
)
CONTROLS_HELP = (
    "static: regulator taps and capacitors respond every step (OpenDSS controlmode=static); "
    "off: frozen at the states one snapshot solve with controls on leaves."
)


def simulate(
    feeder: Annotated[str | None, typer.Argument(help=FEEDER_HELP, show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Result folder.")] = Path("gridflex-out"),
    hours: Annotated[float | None, typer.Option(help=HOURS_HELP, show_default=False)] = None,
    start: Annotated[str | None, typer.Option(help=START_HELP, show_default=False)] = None,
    step: Annotated[str | None, typer.Option(help=STEP_HELP, show_default=False)] = None,
    controls: Annotated[str, typer.Option(help=CONTROLS_HELP)] = "static",
    limits: Annotated[
        Path | None,
        typer.Option(help="Limits YAML (default: ANSI C84.1 Range A).", show_default=False),
    ] = None,
    plot: Annotated[bool, typer.Option(help="Write voltage_envelope.png.")] = True,
    max_control_iter: Annotated[
        int,
        typer.Option(help="Control iterations per step (OpenDSS set maxcontroliter)."),
    ] = 10,
    violations: Annotated[str, typer.Option(help=VIOLATIONS_HELP)] = "csv",
) -> None:
    """Simulate a feeder over time; write voltages, loadings, violations, run.json and a plot.

    Files in OUT (a contract, see README): voltages_pu.parquet, branch_loading.parquet,
    power.parquet, violations.csv, run.json, voltage_envelope.png.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from gridflex.powerflow.violations import load_limits
    from gridflex.study.simulate import run_simulation

    console = Console()
    lim = load_limits(limits) if limits is not None else None
    label = feeder or "the embedded default"
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"importing {label}", total=None)

        def imported(network: Any) -> None:
            bar.update(task, description=f"solving {network.name}")

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        run = run_simulation(
            feeder,
            out,
            hours=hours,
            start=start,
            step=step,
            controls=controls,
            limits=lim,
            plot=plot,
            progress=progress,
            on_imported=imported,
            max_control_iter=max_control_iter,
            violations=violations,
        )
    print_summary(console, run)


def print_summary(console: Console, run: SimulationRun) -> None:
    """The one-screen summary of a run."""
    from rich.table import Table

    info = run.run_info
    t = info["timings"]
    conv = info["convergence"]
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("feeder", f"{info['feeder']} ({info['model_kind']})")
    head.add_row(
        "size",
        f"{info['nodes']} nodes, {info['branches']} branches, {info['loads']} loads, "
        f"{info['pv']} PV, {info['regulators']} regulators, {info['capacitors']} capacitors",
    )
    head.add_row(
        "time",
        f"{info['steps']} steps of {info['step_s'] / 60:g} min from {info['start']} "
        f"({info['hours']:g} h), controls {info['controls']}",
    )
    head.add_row(
        "timings",
        f"import {t['import_s']:.2f} s, solve {t['solve_s']:.2f} s, write {t['write_s']:.2f} s",
    )
    status = (
        "[green]all steps converged[/]"
        if conv["all_converged"]
        else f"[red]{conv['failed_steps']} steps did not converge[/]"
    )
    head.add_row("convergence", f"{status} (max {conv['max_iterations']} iterations)")
    s = info["summary"]
    vmin, vmax = s["v_min_pu"], s["v_max_pu"]
    if vmin is not None:
        head.add_row("voltage", f"{vmin:.4f} .. {vmax:.4f} pu")
    if s["max_loading_pct"] is not None:
        head.add_row("max loading", f"{s['max_loading_pct']:.1f} % of normal rating")
    head.add_row(
        "energy",
        f"{s['energy_source_kwh']:,.0f} kWh from the source, {s['energy_losses_kwh']:,.0f} kWh "
        f"losses, {s['e_curtailed_kwh']:,.1f} kWh curtailed",
    )
    console.print(head)

    detail = info["violations_detail"]
    table = Table(title=f"violations ({info['limits']['name']})", title_justify="left")
    for col in ("kind", "rows", "elements", "steps", "worst", "value", "limit"):
        table.add_column(
            col,
            justify="right" if col in ("rows", "elements", "steps") else "left",
            no_wrap=col == "kind",
            overflow="fold",
        )
    for kind, d in detail.items():
        worst = d["worst"]
        if not d["rows"] or worst is None:
            table.add_row(kind, "0", "", "", "", "", "")  # an explicit zero reads better
            continue
        table.add_row(
            kind,
            f"{d['rows']:,}",
            f"{d['elements']:,}",
            f"{d['steps']:,}",
            str(worst["element"]),
            f"{worst['value']:.4g}",
            f"{worst['limit']:.4g}",
        )
    console.print(table)
    for failure in conv["failures"][:5]:
        console.print(f"[red]not converged[/] {failure['time']}: {failure['cause']}")
    console.print(f"[bold]results[/] {Path(run.paths['run']).parent}/: " + ", ".join(
        sorted(p.name for p in run.paths.values())
    ))  # fmt: skip


def simulate_many(
    feeders: Annotated[
        list[str], typer.Argument(help="OpenDSS master files and/or simbench:<code> values.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Batch folder: one sub-folder per scenario.")
    ] = Path("gridflex-batch"),
    workers: Annotated[int, typer.Option(help="Worker processes of the local cluster.")] = 2,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Address of a running Dask scheduler (tcp://host:8786).", show_default=False
        ),
    ] = None,
    hours: Annotated[float | None, typer.Option(help=HOURS_HELP, show_default=False)] = None,
    start: Annotated[str | None, typer.Option(help=START_HELP, show_default=False)] = None,
    step: Annotated[str | None, typer.Option(help=STEP_HELP, show_default=False)] = None,
    controls: Annotated[
        list[str] | None,
        typer.Option(
            help="Control mode(s); repeat for scenarios: --controls static --controls off."
        ),
    ] = None,
) -> None:
    """Simulate many feeders (or one feeder under several control modes) on a Dask cluster."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from gridflex.errors import GridflexError, InputError
    from gridflex.study.fanout import BATCH_FILE, make_scenarios, run_batch
    from gridflex.study.simulate import CONTROLS, parse_step

    modes = controls or ["static"]
    for m in modes:
        if m not in CONTROLS:
            raise InputError(f"--controls {m!r} is not one of {', '.join(CONTROLS)}",
                             "give --controls static or --controls off")  # fmt: skip
    parse_step(step)  # a bad --step fails here, before any worker starts
    scenarios = make_scenarios(feeders, controls=modes, hours=hours, start=start, step=step)
    console = Console()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"{len(scenarios)} scenarios on {scheduler or f'{workers} workers'}",
                            total=len(scenarios))  # fmt: skip

        def done(summary: dict[str, Any]) -> None:
            bar.advance(task)
            mark = "[green]ok[/]" if summary["status"] == "ok" else "[red]failed[/]"
            bar.console.print(f"{mark} {summary['folder']}")

        batch = run_batch(scenarios, out, workers=workers, scheduler=scheduler, on_done=done)
    table = Table(title=f"batch: {batch['wall_s']:.1f} s on {batch['scheduler']}",
                  title_justify="left")  # fmt: skip
    for col in ("scenario", "status", "steps", "nodes", "solve s", "violations"):
        table.add_column(col)
    for s in batch["scenarios"]:
        if s["status"] == "ok":
            table.add_row(s["folder"], "ok", str(s["steps"]), str(s["nodes"]),
                          f"{s['timings']['solve_s']:.2f}",
                          str(sum(s["violations"].values())))  # fmt: skip
        else:
            table.add_row(s["folder"], f"[red]failed[/]: {s['error']}", "", "", "", "")
    console.print(table)
    console.print(f"[bold]batch summary[/] {Path(out) / BATCH_FILE}")
    if batch["failed"]:
        raise GridflexError(f"{batch['failed']} of {len(scenarios)} scenarios failed (see above)")
