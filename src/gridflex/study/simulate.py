"""The ``gridflex simulate`` pipeline: load a feeder, solve a time series, write the result folder.

One function, :func:`run_simulation`, does what the command does (the command only parses
arguments and prints): import the network (``import_s``), solve (``solve_s``), detect
violations against the limit set (ANSI C84.1 Range A by default), write the files of the
result-folder contract (``write_s``, see :mod:`gridflex.powerflow.io`) and a plot.

Time semantics (issue 2, "The command"):

* ``hours`` is simulated time; the step is the model's own profile step (hourly for OpenDSS
  yearly shapes, 15 minutes for SimBench) unless ``step`` is given, so
  ``steps = hours / step``.
* ``start`` defaults to 1 January 00:00 local time; load-shape hour 0 is that instant. Local
  time is the profile's own: SimBench profiles are German standard time (UTC+1, no DST) of 2016;
  OpenDSS models carry no time zone, so they are taken as UTC, and with no year in their shapes
  the current year is used. A ``start`` without an offset is read in that local time.
"""

from __future__ import annotations

import math
import platform
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from gridflex.errors import InputError
from gridflex.powerflow.result import value_array

if TYPE_CHECKING:
    from gridflex.network.model import Network
    from gridflex.powerflow.result import TimeSeriesResult
    from gridflex.powerflow.violations import Limits

#: The embedded default feeder: a SimBench LV grid that ships with the ``simbench`` package,
#: with one year of 15-minute load and PV profiles.
DEFAULT_FEEDER = "simbench:1-LV-rural1--0-sw"

#: Simulated hours when ``--hours`` is not given and the model has no profile longer than this.
DEFAULT_HOURS = 8760.0

Controls = Literal["static", "off"]
CONTROLS: tuple[str, ...] = ("static", "off")

ProgressCallback = Callable[[int, int], None]


def parse_step(text: str | timedelta | None) -> timedelta | None:
    """Parse ``--step`` (``1h``, ``15min``, ``30s``, ``0.5h``) into a positive timedelta.

    Raises
    ------
    InputError
        Not a duration, zero or negative.
    """
    if text is None or isinstance(text, timedelta):
        step = text
    else:
        raw = str(text).strip()
        try:
            step = pd.Timedelta(raw).to_pytimedelta()
        except (ValueError, TypeError):
            step = None
        if step is None or pd.isna(step):
            raise InputError(
                f"--step {raw!r} is not a duration",
                "give a number and a unit, e.g. 1h, 15min, 30s",
            ) from None
    if step is not None and step <= timedelta(0):
        raise InputError(f"--step {step} is not positive", "give a positive step, e.g. 1h")
    return step


def local_tz(network: Network) -> tzinfo:
    """The local time of a model's profiles (SimBench: UTC+1; OpenDSS: UTC)."""
    if network.kind == "pandapower":
        from gridflex.network.pandapower_import import SIMBENCH_PROFILE_START

        tz = SIMBENCH_PROFILE_START.tzinfo
        assert tz is not None
        return tz
    return UTC


def default_start(network: Network, now: datetime | None = None) -> datetime:
    """1 January 00:00 local time: the profile year for SimBench, else the current year."""
    if network.kind == "pandapower":
        from gridflex.network.pandapower_import import SIMBENCH_PROFILE_START

        return SIMBENCH_PROFILE_START
    year = (now or datetime.now(UTC)).year
    return datetime(year, 1, 1, tzinfo=local_tz(network))


def parse_start(text: str | datetime | None, network: Network) -> datetime:
    """Parse ``--start`` (ISO 8601); without an offset it is the model's local time.

    Raises
    ------
    InputError
        Not an ISO 8601 date or date-time.
    """
    if text is None:
        return default_start(network)
    if isinstance(text, datetime):
        ts = pd.Timestamp(text)
    else:
        raw = str(text).strip()
        try:
            parsed = pd.Timestamp(raw)
        except (ValueError, TypeError):
            parsed = None
        if parsed is None or pd.isna(parsed):
            raise InputError(
                f"--start {raw!r} is not an ISO 8601 date or date-time",
                "give e.g. 2016-06-01 or 2016-06-01T12:00 or 2016-06-01T12:00+01:00",
            )
        ts = parsed
    if ts.tzinfo is None:
        ts = ts.tz_localize(local_tz(network))
    return ts.to_pydatetime()


def year_offset_h(start: datetime, network: Network) -> float:
    """Hours from 1 January 00:00 local time of ``start``'s year to ``start`` (shape hour)."""
    local = pd.Timestamp(start).tz_convert(local_tz(network))
    jan1 = pd.Timestamp(year=local.year, month=1, day=1, tz=local_tz(network))
    return float((local - jan1) / pd.Timedelta(hours=1))


def shift_profiles(network: Network, offset_h: float) -> Network:
    """A shallow copy of ``network`` whose load shapes start ``offset_h`` hours later.

    The solver reads shapes from their hour 0 at the first step; rotating every shape (OpenDSS
    yearly shapes wrap around the same way) makes the first step read hour ``offset_h``.
    Fixed-interval shapes are rotated by whole points (``offset_h`` is rounded to the shape's
    interval); shapes with explicit hours are re-sampled at their own hours.
    """
    if offset_h == 0 or not network.loadshapes:
        return network
    import copy

    from gridflex.network.model import LoadShape

    shifted: dict[str, LoadShape] = {}
    for key, shape in network.loadshapes.items():
        if shape.npts <= 1:
            shifted[key] = shape
        elif shape.interval_h > 0:
            k = round(offset_h / shape.interval_h) % shape.npts
            shifted[key] = LoadShape(
                name=shape.name,
                p_mult=np.roll(shape.p_mult, -k),
                q_mult=None if shape.q_mult is None else np.roll(shape.q_mult, -k),
                interval_h=shape.interval_h,
                hours=shape.hours,
                use_actual=shape.use_actual,
            )
        else:
            h = shape.hours if shape.hours is not None else np.arange(shape.npts, dtype=float)
            span = float(h[-1])
            at = np.mod(h + offset_h, span) if span > 0 else h
            shifted[key] = LoadShape(
                name=shape.name,
                p_mult=np.interp(at, h, shape.p_mult),
                q_mult=None if shape.q_mult is None else np.interp(at, h, shape.q_mult),
                interval_h=shape.interval_h,
                hours=shape.hours,
                use_actual=shape.use_actual,
            )
    out = copy.copy(network)
    out.loadshapes = shifted
    return out


def profile_hours(network: Network) -> float:
    """Length in hours of the longest load shape of the model (0 when it has none)."""
    best = 0.0
    for shape in network.loadshapes.values():
        if shape.interval_h > 0:
            best = max(best, shape.npts * shape.interval_h)
        elif shape.hours is not None and len(shape.hours):
            best = max(best, float(shape.hours[-1]))
    return best


def resolve_steps(
    network: Network, hours: float | None, step: timedelta | None
) -> tuple[int, timedelta]:
    """Number of steps and the step for ``hours`` of simulated time.

    Raises
    ------
    InputError
        ``hours`` not positive, or not a whole number of steps.
    """
    step_td = step if step is not None else timedelta(hours=float(network.profile_step_h))
    step_h = step_td.total_seconds() / 3600.0
    if hours is None:
        hours = profile_hours(network) if profile_hours(network) >= 24.0 else DEFAULT_HOURS
    if not hours > 0 or not math.isfinite(hours):
        raise InputError(f"--hours {hours} is not a positive number of hours", "give e.g. 24")
    n = hours / step_h
    steps = round(n)
    if steps < 1 or abs(n - steps) > 1e-9 * max(1.0, n):
        raise InputError(
            f"--hours {hours:g} is not a whole number of {step_td} steps",
            f"give a multiple of {step_h:g} h, or another --step",
        )
    return steps, step_td


@dataclass
class SimulationRun:
    """What :func:`run_simulation` produced: the result, ``run.json`` and the files.

    The violations themselves are in ``paths["violations"]`` (read them with
    :func:`gridflex.powerflow.io.read_violations_csv`; no such file with ``violations="summary"``);
    ``run_info["violations_detail"]`` holds
    per kind the rows, elements, steps and the worst row.
    """

    feeder: str
    network: Network
    result: TimeSeriesResult
    run_info: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)


def _convergence(result: TimeSeriesResult) -> dict[str, Any]:
    converged = np.asarray(result.converged, dtype=bool)
    failures = [
        {
            "step": int(f.step),
            "time": pd.Timestamp(f.time).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
            "cause": f.cause,
            "max_dv_pu": float(f.max_dv_pu),
        }
        for f in getattr(result, "failures", [])
    ]
    iterations = np.asarray(result.iterations)
    return {
        "all_converged": bool(converged.all()),
        "converged_steps": int(converged.sum()),
        "failed_steps": int((~converged).sum()),
        "max_iterations": int(iterations.max()) if iterations.size else 0,
        "mean_iterations": round(float(iterations.mean()), 3) if iterations.size else 0.0,
        "failures": failures,
    }


def run_simulation(
    feeder: str | Path | None,
    out_dir: str | Path,
    *,
    hours: float | None = None,
    start: str | datetime | None = None,
    step: str | timedelta | None = None,
    controls: str = "static",
    limits: Limits | None = None,
    plot: bool = True,
    progress: ProgressCallback | None = None,
    on_imported: Callable[[Network], None] | None = None,
    network: Network | None = None,
    max_control_iter: int = 10,
    violations: str = "csv",
) -> SimulationRun:
    """Run ``gridflex simulate``: import, solve, find violations, write the result folder.

    Parameters
    ----------
    feeder:
        OpenDSS master file, ``simbench:<code>``, or None for :data:`DEFAULT_FEEDER`.
    out_dir:
        Result folder (created; result files in it are replaced).
    hours, start, step:
        Simulated hours, first instant (ISO 8601) and step (``1h``, ``15min``); see the module.
    controls:
        ``static`` (regulators and capacitors respond per step, OpenDSS ``controlmode=static``)
        or ``off`` (frozen at the states a snapshot solve with controls on leaves).
    limits:
        Violation limits; default ANSI C84.1 Range A (``powerflow/data/limits_ansi_c84_1.yaml``).
    plot:
        Also write ``voltage_envelope.png``.
    progress:
        ``progress(done, total)`` while solving.
    on_imported:
        Called with the network once imported (the command prints its size).
    network:
        An already imported network (``feeder`` is then only its label).
    max_control_iter:
        Control iterations per step (OpenDSS ``set maxcontroliter``; default 10 as OpenDSS).
    violations:
        ``csv`` (the contract's ``violations.csv``, default), ``parquet``
        (``violations.parquet``) or ``summary`` (counts and worst rows in ``run.json`` only).

    Returns
    -------
    SimulationRun
    """
    from gridflex import __version__
    from gridflex.network import load_network
    from gridflex.powerflow import simulate
    from gridflex.powerflow.io import VIOLATION_FORMATS, release_files, write_results
    from gridflex.powerflow.violations import load_limits

    if max_control_iter < 1:
        raise InputError(
            f"--max-control-iter {max_control_iter} must be at least 1",
            "give e.g. --max-control-iter 100 (OpenDSS: set maxcontroliter=100)",
        )
    if controls not in CONTROLS:
        raise InputError(f"--controls {controls!r} is not one of {', '.join(CONTROLS)}",
                         "give --controls static or --controls off")  # fmt: skip
    if violations not in VIOLATION_FORMATS:
        raise InputError(
            f"--violations {violations!r} is not one of {', '.join(VIOLATION_FORMATS)}",
            "give --violations csv (default), parquet or summary",
        )
    step_td = parse_step(step)
    label = str(feeder) if feeder is not None else DEFAULT_FEEDER
    if network is None:
        source = label
        if not source.lower().startswith("simbench:"):
            path = Path(source)
            if not path.exists():
                raise InputError(
                    f"feeder {source!r} does not exist",
                    "give the path of an OpenDSS master file (.dss) or simbench:<code>",
                )
            source = str(path.resolve())
        t0 = _time.perf_counter()
        network = load_network(source)
        import_s = _time.perf_counter() - t0
    else:
        import_s = 0.0
    if on_imported is not None:
        on_imported(network)
    first = parse_start(start, network)
    steps, step_td = resolve_steps(network, hours, step_td)
    lim = limits if limits is not None else load_limits()

    t0 = _time.perf_counter()
    # load-shape hour 0 is 1 January 00:00 local time: a later start reads later shape hours
    solve_network = shift_profiles(network, year_offset_h(first, network))
    result = simulate(
        solve_network,
        start=first,
        steps=steps,
        step=step_td,
        controls=controls,  # type: ignore[arg-type]
        progress=progress,
        max_control_iter=max_control_iter,
    )
    solve_s = _time.perf_counter() - t0

    from gridflex.study.simulate_plot import envelope

    # per-step extremes in one compiled pass each (np.nanmin would copy the arrays whole)
    v_lo, v_hi = envelope(result.v_pu)
    load_hi = envelope(result.branch_loading_pct)[1]
    step_h = step_td.total_seconds() / 3600.0
    run_info: dict[str, Any] = {
        "gridflex_version": __version__,
        "feeder": label,
        "network": network.name,
        "model_kind": network.kind,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(),
        "start": pd.Timestamp(result.time[0]).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        if len(result.time)
        else None,
        "start_local": first.isoformat(),
        "profile_offset_h": year_offset_h(first, network),
        "step_s": step_td.total_seconds(),
        "hours": steps * step_td.total_seconds() / 3600.0,
        "steps": int(result.n_steps),
        "nodes": len(result.node_names),
        "branches": len(result.branch_names),
        "regulators": len(result.regulator_names),
        "capacitors": len(getattr(result, "capacitor_names", [])),
        "loads": len(network.loads),
        "pv": len(network.pv),
        "controls": controls,
        "max_control_iter": max_control_iter,
        "limits": {
            "name": lim.name,
            "undervoltage_pu": lim.undervoltage_pu,
            "overvoltage_pu": lim.overvoltage_pu,
            "thermal_normal_pct": lim.thermal_normal_pct,
            "thermal_emergency_pct": lim.thermal_emergency_pct,
            "reverse_min_p_kw": lim.reverse_min_p_kw,
            "sources": list(lim.sources),
        },
        "timings": {
            "import_s": round(import_s, 4),
            "solve_s": round(solve_s, 4),
            **{
                k: round(float(val), 4)
                for k, val in (result.timings or {}).items()
                if k not in ("import_s", "solve_s")
            },
        },
        "convergence": _convergence(result),
        "violations": {},  # filled by write_results
        "summary": {
            "v_min_pu": _nanmin(v_lo),
            "v_max_pu": _nanmax(v_hi),
            "max_loading_pct": _nanmax(load_hi),
            "energy_source_kwh": float(np.nansum(result.source_p_kw)) * step_h,
            "energy_losses_kwh": float(np.nansum(result.losses_kw)) * step_h,
            "e_curtailed_kwh": float(np.nansum(result.e_curtailed_kwh)),
        },
        "notes": list(network.notes),
    }
    from gridflex.study.simulate_plot import PLOT_FILE, plot_voltage_envelope

    side_jobs: dict[str, Callable[[], Path]] = {}
    if plot:
        extremes = (v_lo, v_hi, np.sort(load_hi[np.isfinite(load_hi)])[::-1])
        side_jobs["plot"] = lambda: plot_voltage_envelope(
            result, Path(out_dir), limits=lim, title=label, extremes=extremes
        )
    else:
        # a plot left from an earlier run into this folder would no longer match its files
        release_files([Path(out_dir) / PLOT_FILE])
    # violations are found and written in one compiled pass over the arrays while the Parquet
    # files are encoded and the plot drawn on other threads; the summary lands in run.json
    paths = write_results(
        result,
        out_dir,
        run_info=run_info,
        limits=lim,
        source_name=network.source.name,
        violations_format=violations,
        side_jobs=side_jobs,
    )
    run_info = _read_back(paths["run"], run_info)
    return SimulationRun(
        feeder=label,
        network=network,
        result=result,
        run_info=run_info,
        paths=paths,
    )


def _nanmax(a: Any) -> float | None:
    arr = value_array(a)
    if not arr.size or np.all(np.isnan(arr)):
        return None
    return float(np.nanmax(arr))


def _nanmin(a: Any) -> float | None:
    arr = value_array(a)
    if not arr.size or np.all(np.isnan(arr)):
        return None
    return float(np.nanmin(arr))


def _read_back(path: Path, info: dict[str, Any]) -> dict[str, Any]:
    """``run_info`` with what the writer added (timings, violation counts, files)."""
    import json

    written = json.loads(path.read_text(encoding="utf-8"))
    merged = dict(info)
    for key in ("timings", "violations", "violations_detail", "violations_format", "files"):
        merged[key] = written[key]
    merged["layout_version"] = written["layout_version"]
    return merged
