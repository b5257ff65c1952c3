"""``gridflex simulate-many``: many feeders (or one feeder under many scenarios) on Dask.

Each scenario is one :func:`gridflex.study.simulate.run_simulation` call, run on a Dask worker
process; every scenario writes its own result folder (the same contract as ``gridflex simulate``)
under the batch folder, and the batch writes ``batch.json`` listing every scenario's folder,
status, timings and violation counts. A local cluster is started for the batch unless a
scheduler address is given (``tcp://host:8786``); with a remote scheduler the output folder must
be on a file system the workers share.

A failing scenario (bad feeder, solver error) is reported in ``batch.json`` with its error and
does not stop the others.
"""

from __future__ import annotations

import json
import re
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gridflex.errors import GridflexError, InputError

BATCH_FILE = "batch.json"


@dataclass(frozen=True)
class Scenario:
    """One run of a batch: the feeder, the time window, the control mode and its folder name."""

    feeder: str
    folder: str
    hours: float | None = None
    start: str | None = None
    step: str | None = None
    controls: str = "static"


def folder_name(feeder: str) -> str:
    """A file-system-safe folder name for a feeder (``simbench:1-LV-rural1--0-sw`` ->
    ``simbench_1-lv-rural1--0-sw``; ``.../IEEE13Nodeckt.dss`` -> ``ieee13nodeckt``)."""
    text = feeder.strip()
    if not text.lower().startswith("simbench:"):
        text = Path(text).stem or text
    return re.sub(r"[^a-z0-9._-]+", "_", text.lower()).strip("_") or "feeder"


def make_scenarios(
    feeders: Sequence[str],
    *,
    controls: Sequence[str] = ("static",),
    hours: float | None = None,
    start: str | None = None,
    step: str | None = None,
) -> list[Scenario]:
    """The scenarios of a batch: every feeder under every control mode, unique folder names.

    Raises
    ------
    InputError
        No feeder given.
    """
    if not feeders:
        raise InputError("simulate-many got no feeder", "give one or more FEEDER arguments")
    out: list[Scenario] = []
    used: dict[str, int] = {}
    for feeder in feeders:
        for ctl in controls:
            base = folder_name(feeder) + (f"__{ctl}" if len(controls) > 1 else "")
            n = used.get(base, 0)
            used[base] = n + 1
            name = base if n == 0 else f"{base}_{n + 1}"
            out.append(Scenario(feeder, name, hours, start, step, ctl))
    return out


def run_scenario(scenario: Scenario, out_root: str) -> dict[str, Any]:
    """Run one scenario (on a worker) and return its small summary (never the arrays)."""
    from gridflex.study.simulate import run_simulation

    started = _time.perf_counter()
    folder = Path(out_root) / scenario.folder
    summary: dict[str, Any] = {**asdict(scenario), "out": str(folder)}
    try:
        run = run_simulation(
            scenario.feeder,
            folder,
            hours=scenario.hours,
            start=scenario.start,
            step=scenario.step,
            controls=scenario.controls,
            plot=True,
        )
    except GridflexError as exc:
        summary.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    else:
        info = run.run_info
        summary.update(
            status="ok",
            steps=info["steps"],
            nodes=info["nodes"],
            timings=info["timings"],
            convergence={k: v for k, v in info["convergence"].items() if k != "failures"},
            violations=info["violations"],
        )
    summary["wall_s"] = round(_time.perf_counter() - started, 3)
    return summary


def run_batch(
    scenarios: Sequence[Scenario],
    out_dir: str | Path,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run every scenario on a Dask cluster and write ``out_dir/batch.json``.

    Parameters
    ----------
    scenarios:
        From :func:`make_scenarios`.
    out_dir:
        Batch folder; each scenario writes ``out_dir/<scenario.folder>/``.
    workers:
        Worker processes of the local cluster (one thread each: the solver is NumPy-bound).
    scheduler:
        Address of a running Dask scheduler; then no local cluster is started.
    on_done:
        Called with each scenario's summary as it finishes (the command's progress bar).

    Returns
    -------
    dict
        The ``batch.json`` content.
    """
    from distributed import Client, LocalCluster, as_completed

    if workers < 1:
        raise InputError(f"--workers {workers} must be at least 1", "give --workers 2")
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"output path {out} is a file", "give --out a folder path")
    out.mkdir(parents=True, exist_ok=True)
    started = _time.perf_counter()
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="10s")
            except OSError as exc:
                raise InputError(
                    f"cannot reach the Dask scheduler at {scheduler!r} ({exc})",
                    "start one (dask scheduler) or leave --scheduler out for a local cluster",
                ) from exc
        else:
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            client = Client(cluster)
        with client:
            futures = {
                client.submit(run_scenario, s, str(out), key=f"simulate-{s.folder}", pure=False): s
                for s in scenarios
            }
            results: dict[str, dict[str, Any]] = {}
            for fut in as_completed(futures):
                scenario = futures[fut]
                try:
                    summary = fut.result()
                except Exception as exc:  # a worker crash is one scenario's failure
                    summary = {
                        **asdict(scenario),
                        "out": str(out / scenario.folder),
                        "status": "failed",
                        "error": f"{type(exc).__name__}: {exc}",
                    }
                results[scenario.folder] = summary
                if on_done is not None:
                    on_done(summary)
    finally:
        if cluster is not None:
            cluster.close()
    batch = {
        "scheduler": scheduler or f"LocalCluster({workers} workers)",
        "workers": workers,
        "wall_s": round(_time.perf_counter() - started, 3),
        "scenarios": [results[s.folder] for s in scenarios],
        "failed": sum(1 for r in results.values() if r["status"] != "ok"),
    }
    (out / BATCH_FILE).write_text(json.dumps(batch, indent=2) + "\n", encoding="utf-8")
    return batch
