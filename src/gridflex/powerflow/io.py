"""Result files of a time-series run: the on-disk contract other tools read.

One folder per run (``docs/sim.md`` and the README state the contract):

``voltages_pu.parquet``
    One row per time step: ``time`` (timestamp, UTC) then one float32 column per node-phase,
    named as OpenDSS names it (``bus.phase``, lower case); value = |V| in pu of that node's base.
``branch_loading.parquet``
    Same layout, one column per branch named ``class.name`` (``line.l115``); value = max over
    phases and terminals of |I| / normal rating x 100.

    Both hold float32 values, as ``simulate`` keeps them (``TimeSeriesResult``); a result
    given in float64 is written in float64.
``power.parquet``
    ``time``, ``source_p_kw``, ``source_q_kvar``, ``losses_kw``, ``pv_curtailed_kw`` (feeder
    total),
    ``converged``, ``iterations``, then ``<regulator>:p_kw`` and ``<regulator>:tap`` per regulator.
``violations.csv``
    ``time`` (ISO-8601 UTC, ``...Z``), ``element``, ``kind``, ``value``, ``limit``.
``run.json``
    ``timings`` (``import_s``, ``solve_s``, ``write_s``), ``steps``, ``nodes``, ``branches``,
    ``convergence`` and the run's inputs (feeder, start, step, controls, limits).

Parquet floats are written with the BYTE_STREAM_SPLIT encoding and LZ4 (``PARQUET_COMPRESSION``
says why), in row groups of about 24 M values (``ROW_GROUP_VALUES``).
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gridflex.errors import InputError
from gridflex.powerflow.result import ValueArray, value_array
from gridflex.powerflow.runtime import heavy_section
from gridflex.powerflow.violations import (
    SOURCE_ELEMENT,
    VIOLATION_COLUMNS,
    Limits,
    ViolationSummary,
    empty_violations,
    iter_violations,
)
from gridflex.powerflow.violations_csv import ViolationScan, write_violations_from_result

VOLTAGES_FILE = "voltages_pu.parquet"
BRANCH_LOADING_FILE = "branch_loading.parquet"
POWER_FILE = "power.parquet"
VIOLATIONS_FILE = "violations.csv"
VIOLATIONS_PARQUET_FILE = "violations.parquet"
#: The violation row file per ``violations_format`` (``summary`` writes none).
VIOLATIONS_FILES = {"csv": VIOLATIONS_FILE, "parquet": VIOLATIONS_PARQUET_FILE}
RUN_FILE = "run.json"
PLOT_FILE = "voltage_envelope.png"

#: Layout version written into ``run.json`` (bump on any incompatible change of the files).
LAYOUT_VERSION = 1


def _time_array(time: Any) -> pa.Array:
    idx = pd.DatetimeIndex(time)
    if idx.tz is None:
        raise InputError(
            "result time stamps have no time zone", "pass timezone-aware UTC times to the writer"
        )
    return pa.array(idx.tz_convert("UTC"), type=pa.timestamp("us", tz="UTC"))


#: Values per Parquet row group of a wide table (about 190 MB of float64): bounds the extra
#: memory the writer needs to a slice of the result instead of a full transposed copy. Arrow's
#: cost per column chunk dominates small groups: a year of the 8500-node feeder's voltages
#: (8760 x 8531) wrote in 11.2 s with 1.5 M values a group, 3.3 s with 6 M and 1.6 s with 25 M
#: (in memory, LZ4; bench notes in docs/sim.md). One group for the whole year (80 M values)
#: saved 0.3 s of CPU on that file alone but nothing measurable in the whole write (6 runs
#: each, 2.6-4.3 s against 2.8-4.8 s) and cost 560 MB more peak memory, so it stays at 24 M.
ROW_GROUP_VALUES = 24_000_000

#: Parquet codec. Measured on that same table (BYTE_STREAM_SPLIT, in memory, 2 runs each):
#: zstd 6.3 s / 454 MB, LZ4 3.0-3.1 s / 459 MB, snappy 2.8-3.3 s / 488 MB, none 3.2-3.4 s /
#: 580 MB. Solved float64 voltages are mostly noise bits, so zstd buys 1 % of size for twice
#: the time; LZ4 keeps the size and the speed.
PARQUET_COMPRESSION = "lz4"


def _check_wide(time: Any, names: Sequence[str], values: npt.ArrayLike) -> ValueArray:
    arr = value_array(values)
    n_time = len(pd.DatetimeIndex(time))
    if arr.ndim != 2 or arr.shape != (n_time, len(names)):
        raise InputError(
            f"result array has shape {arr.shape}, expected ({n_time}, {len(names)})",
            "pass one row per time step and one column per name",
        )
    if len(set(names)) != len(names):
        dup = pd.Index(names)[pd.Index(names).duplicated()][0]
        raise InputError(f"column name '{dup}' appears twice", "give every element a unique name")
    return arr


def wide_table(time: Any, names: Sequence[str], values: npt.ArrayLike) -> pa.Table:
    """A ``time`` column then one float column per name (float32 or float64 as ``values``).

    Parameters
    ----------
    time:
        ``T`` timezone-aware time stamps.
    names:
        ``N`` unique column names.
    values:
        ``(T, N)`` values.
    """
    arr = _check_wide(time, names, values)
    t = _time_array(time)
    # one contiguous row per column makes each Arrow column a zero-copy view
    cols = np.ascontiguousarray(arr.T)
    arrays = [t, *(pa.array(cols[j]) for j in range(cols.shape[0]))]
    return pa.Table.from_arrays(arrays, names=["time", *names])


def _parquet_options(schema: pa.Schema) -> dict[str, Any]:
    float_cols = [f.name for f in schema if pa.types.is_floating(f.type)]
    return {
        "compression": PARQUET_COMPRESSION,
        "use_dictionary": False,
        "write_statistics": False,
        "column_encoding": dict.fromkeys(float_cols, "BYTE_STREAM_SPLIT"),
    }


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, **_parquet_options(table.schema))


def write_wide_parquet(time: Any, names: Sequence[str], values: npt.ArrayLike, path: Path) -> None:
    """Write a wide ``(T, N)`` result as Parquet, a slice of rows per row group."""
    arr = _check_wide(time, names, values)
    t_all = pd.DatetimeIndex(time)
    rows = max(1, ROW_GROUP_VALUES // max(1, arr.shape[1]))
    schema = pa.schema(
        [pa.field("time", pa.timestamp("us", tz="UTC"))]
        + [pa.field(n, pa.from_numpy_dtype(arr.dtype)) for n in names]
    )
    with pq.ParquetWriter(path, schema, **_parquet_options(schema)) as writer:
        for r0 in range(0, max(arr.shape[0], 1), rows):
            writer.write_table(wide_table(t_all[r0 : r0 + rows], names, arr[r0 : r0 + rows]))


def _iso_utc(idx: pd.DatetimeIndex | pd.Series) -> pd.Index | pd.Series:
    return pd.DatetimeIndex(idx).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def power_table(result: Any) -> pa.Table:
    """The ``power.parquet`` table of a result (substation, losses, curtailment, regulators)."""
    n = len(result.time)

    def col(name: str) -> npt.NDArray[np.float64]:
        value = getattr(result, name, None)
        if value is None:
            return np.full(n, np.nan)
        arr = np.asarray(value, dtype=np.float64).reshape(n, -1)
        # per-element columns (PV curtailment per system) are summed over the feeder
        return arr.sum(axis=1) if arr.shape[1] != 1 else arr[:, 0]

    table = pa.table(
        {
            "time": _time_array(result.time),
            "source_p_kw": col("source_p_kw"),
            "source_q_kvar": col("source_q_kvar"),
            "losses_kw": col("losses_kw"),
            "pv_curtailed_kw": col("pv_curtailed_kw"),
            "converged": np.asarray(result.converged, dtype=bool).reshape(n),
            "iterations": np.asarray(result.iterations, dtype=np.int32).reshape(n),
        }
    )
    reg_names = list(getattr(result, "regulator_names", []) or [])
    if reg_names:
        p = np.asarray(result.regulator_p_kw, dtype=np.float64).reshape(n, len(reg_names))
        taps = np.asarray(result.regulator_taps).reshape(n, len(reg_names))
        for j, name in enumerate(reg_names):
            table = table.append_column(f"{name}:p_kw", pa.array(p[:, j]))
            table = table.append_column(f"{name}:tap", pa.array(taps[:, j].astype(np.int32)))
    return table


def _violations_arrow(violations: pd.DataFrame) -> pa.Table:
    def dictionary_take(values: pd.Series) -> pa.Array:
        codes, uniques = pd.factorize(values, sort=False)
        return pa.array(np.asarray(uniques, dtype=object).astype(str), type=pa.string()).take(
            pa.array(codes, type=pa.int64())
        )

    times = pd.DatetimeIndex(violations["time"])
    t_codes, t_uniques = pd.factorize(times, sort=False)
    iso = pd.DatetimeIndex(t_uniques).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    return pa.table(
        {
            "time": pa.array(np.asarray(iso, dtype=object), type=pa.string()).take(
                pa.array(t_codes, type=pa.int64())
            ),
            "element": dictionary_take(violations["element"]),
            "kind": dictionary_take(violations["kind"]),
            "value": pa.array(violations["value"].to_numpy(dtype=np.float64)),
            "limit": pa.array(violations["limit"].to_numpy(dtype=np.float64)),
        }
    )


def write_violations_csv(violations: pd.DataFrame | Iterable[pd.DataFrame], path: Path) -> int:
    """Write the violations table with ISO-8601 UTC times (``2016-01-01T00:15:00Z``).

    Parameters
    ----------
    violations:
        One table, or consecutive slices of it (``violations.iter_violations``): a year of a
        large feeder can hold tens of millions of rows, streamed here slice by slice.
    path:
        The CSV file.

    Returns
    -------
    int
        Rows written.

    Notes
    -----
    Times and names are formatted once per distinct value and each slice is encoded by Arrow's
    multi-threaded writer; values are quoted only when they need it.
    """
    import pyarrow.csv as pacsv

    chunks = [violations] if isinstance(violations, pd.DataFrame) else violations
    rows = 0
    with pa.OSFile(str(path), "wb") as fh:
        fh.write(",".join(VIOLATION_COLUMNS).encode() + b"\n")
        for chunk in chunks:
            if not len(chunk):
                continue
            table = _violations_arrow(chunk)
            # quote only when a name needs it (a comma, a quote or a line break: rare)
            elem = chunk["element"]
            names = (
                [str(c) for c in elem.cat.categories]
                if isinstance(elem.dtype, pd.CategoricalDtype)
                else [str(c) for c in pd.unique(elem.to_numpy())]
            )
            needs = any(("," in n) or ('"' in n) or ("\n" in n) for n in names)
            style = "needed" if needs else "none"
            pacsv.write_csv(table, fh, write_options=pacsv.WriteOptions(
                include_header=False, quoting_style=style))  # fmt: skip
            rows += len(chunk)
    return rows


#: ``--violations`` choices: the contract's CSV (default), the same rows as Parquet, or counts
#: only (``run.json``), for runs whose violation rows would dominate the run.
VIOLATION_FORMATS: tuple[str, ...] = ("csv", "parquet", "summary")


@heavy_section()
def write_results(
    result: Any,
    out_dir: str | Path,
    *,
    violations: pd.DataFrame | Iterable[pd.DataFrame] | None = None,
    run_info: Mapping[str, Any],
    limits: Limits | None = None,
    source_name: str = SOURCE_ELEMENT,
    violations_format: str = "csv",
    side_jobs: Mapping[str, Callable[[], Path]] | None = None,
) -> dict[str, Path]:
    """Write a result's files into ``out_dir`` (created if needed) and ``run.json`` last.

    Parameters
    ----------
    result:
        A ``gridflex.powerflow.TimeSeriesResult``.
    out_dir:
        Output folder; existing result files in it are replaced.
    violations:
        None (default): found in the result's arrays against ``limits`` and written in one
        compiled pass (:mod:`gridflex.powerflow.violations_csv`), with their per-kind summary
        added to ``run.json`` (``violations``, ``violations_detail``, ``timings.violations_s``).
        Or a ready table (:func:`~gridflex.powerflow.violations.find_violations`) or its slices
        (:func:`~gridflex.powerflow.violations.iter_violations`), written as given.
    run_info:
        Everything else for ``run.json``; must hold ``timings`` (a mapping). The writer adds
        ``timings.write_s``, ``layout_version``, ``violations_format`` and the list of ``files``.
    limits, source_name:
        The limits (default ANSI C84.1 Range A) and the source's element name, when the
        violations are found here.
    violations_format:
        ``csv`` (the contract's ``violations.csv``, default), ``parquet``
        (``violations.parquet``: the same columns, ``time`` a UTC timestamp) or ``summary`` (no
        row file; the counts, elements, steps and worst rows in ``run.json`` only).
    side_jobs:
        More files to write alongside (``{"plot": draw}``): each callable runs on the writer's
        threads and returns its file's path; ``run.json`` lists it under its key, with its time
        as ``timings["<key>_s"]``.

    Returns
    -------
    dict
        File key (``voltages``, ``branch_loading``, ``power``, ``violations``, ``run``) -> path
        (no ``violations`` key with ``summary``).
    """
    start = _time.perf_counter()
    if violations_format not in VIOLATION_FORMATS:
        raise InputError(
            f"--violations {violations_format!r} is not one of {', '.join(VIOLATION_FORMATS)}",
            "give --violations csv (default), parquet or summary",
        )
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"output path {out} is a file", "give --out a folder path")
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "voltages": out / VOLTAGES_FILE,
        "branch_loading": out / BRANCH_LOADING_FILE,
        "power": out / POWER_FILE,
        "violations": out / VIOLATIONS_FILES.get(violations_format, VIOLATIONS_FILE),
        "run": out / RUN_FILE,
    }
    # run.json is written last: a folder without it is an incomplete (or running) write
    paths["run"].unlink(missing_ok=True)
    # row files of another format from an earlier run into this folder would contradict run.json
    for fmt, name in VIOLATIONS_FILES.items():
        if fmt != violations_format:
            (out / name).unlink(missing_ok=True)
    if violations_format == "summary":
        del paths["violations"]
    info = dict(run_info)
    timings = dict(info.get("timings", {}))
    # Arrow and the Numba violation scan release the GIL: the files are encoded in parallel
    # (and the disk writes of one overlap the encoding of the others).
    with ThreadPoolExecutor(max_workers=3 + len(side_jobs or {})) as pool:
        futures = [
            pool.submit(write_wide_parquet, result.time, list(result.node_names), result.v_pu,
                        paths["voltages"]),
            pool.submit(write_wide_parquet, result.time, list(result.branch_names),
                        result.branch_loading_pct, paths["branch_loading"]),
            pool.submit(_write_parquet, power_table(result), paths["power"]),
        ]  # fmt: skip
        side = {key: pool.submit(_timed, job) for key, job in (side_jobs or {}).items()}
        if violations is not None:
            if violations_format == "summary":
                raise InputError(
                    "violations_format='summary' summarises the result's own arrays",
                    "pass violations=None with violations_format='summary'",
                )
            if violations_format == "csv":
                write_violations_csv(violations, paths["violations"])
            else:
                write_violations_parquet(violations, paths["violations"])
        else:
            t_v = _time.perf_counter()
            scan = _scan_violations(result, paths.get("violations"), violations_format,
                                    limits, source_name)  # fmt: skip
            info["violations"] = dict(scan.rows)
            info["violations_detail"] = scan.detail
            timings["violations_s"] = round(_time.perf_counter() - t_v, 4)
        for f in futures:
            f.result()
        for key, fut in side.items():
            paths[key], seconds = fut.result()
            timings[f"{key}_s"] = round(seconds, 4)
    timings["write_s"] = round(_time.perf_counter() - start, 4)
    info["timings"] = timings
    info["layout_version"] = LAYOUT_VERSION
    info["violations_format"] = violations_format
    info["files"] = {k: p.name for k, p in paths.items()}
    paths["run"].write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    return paths


def _timed(job: Callable[[], Path]) -> tuple[Path, float]:
    t0 = _time.perf_counter()
    return job(), _time.perf_counter() - t0


#: Cores :func:`write_results` leaves to the two Parquet encoders (voltages, branch loadings)
#: and the side jobs while ``violations.csv`` is formatted.
PARQUET_CORES = 2


def csv_format_threads() -> int:
    """Threads that format ``violations.csv`` while the other files are encoded alongside.

    On the 2-vCPU EPYC VMs one formatting thread makes 1.8-1.9 GB/s of rows (34 ns a row) and
    the disk takes 1.4-1.8 GB/s of direct writes while it runs: the 8500-node frozen year's
    3.9 GB of CSV alone took 2.8-2.9 s with one thread, 2.2-2.45 s with two. Beside the two
    Parquet encoders and the plot, the second thread takes CPU they need: the whole write
    took 3.15-3.84 s with two formatting threads and 3.00-3.09 s with one, with 1-1.5 s less
    CPU (5 fresh runs each). Machines with more cores than the encoders need get the rest.
    """
    import numba

    return max(1, int(numba.get_num_threads()) - PARQUET_CORES)


def _scan_violations(
    result: Any,
    path: Path | None,
    violations_format: str,
    limits: Limits | None,
    source_name: str,
) -> ViolationScan:
    """Violations of ``result`` in the chosen format, with their ``run.json`` summary."""
    if violations_format == "csv":
        assert path is not None
        return write_violations_from_result(
            result, path, limits, source_name=source_name, threads=csv_format_threads()
        )
    if violations_format == "summary":
        return write_violations_from_result(result, None, limits, source_name=source_name)
    assert path is not None
    summary = ViolationSummary()

    def slices() -> Iterator[pd.DataFrame]:
        for chunk in iter_violations(result, limits, source_name=source_name):
            summary.add(chunk)
            yield chunk

    write_violations_parquet(slices(), path)
    return ViolationScan(rows=dict(summary.rows), detail=summary.as_dict(), seconds=0.0)


def write_violations_parquet(violations: pd.DataFrame | Iterable[pd.DataFrame], path: Path) -> int:
    """The violations table as Parquet (``--violations parquet``): the CSV's columns, ``time`` a
    UTC timestamp, ``element`` and ``kind`` strings (dictionary-encoded on disk).

    Returns
    -------
    int
        Rows written.
    """
    chunks = [violations] if isinstance(violations, pd.DataFrame) else violations
    schema = pa.schema(
        [
            pa.field("time", pa.timestamp("us", tz="UTC")),
            pa.field("element", pa.string()),
            pa.field("kind", pa.string()),
            pa.field("value", pa.float64()),
            pa.field("limit", pa.float64()),
        ]
    )
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=["element", "kind"],
                          write_statistics=False) as writer:  # fmt: skip
        for chunk in chunks:
            if not len(chunk):
                continue
            table = _violations_arrow(chunk)
            table = table.set_column(0, "time", _time_array(chunk["time"]))
            writer.write_table(table.cast(schema))
            rows += len(chunk)
    return rows


@dataclass(frozen=True)
class ResultFiles:
    """A run folder read back: the tables with a UTC ``time`` column, and ``run.json``.

    ``violations`` is None for a run written with ``--violations summary`` (no row file; the
    counts are in ``run["violations_detail"]``).
    """

    voltages_pu: pd.DataFrame
    branch_loading_pct: pd.DataFrame
    power: pd.DataFrame
    violations: pd.DataFrame | None
    run: dict[str, Any]


def read_violations_csv(path: str | Path) -> pd.DataFrame:
    """Read ``violations.csv`` back with a UTC ``time`` and ``element`` as strings."""
    table = pd.read_csv(path, dtype={"element": str, "kind": str}, engine="pyarrow")
    if not len(table):
        return empty_violations().astype({"kind": str})
    table["time"] = pd.to_datetime(table["time"], utc=True, format="ISO8601")
    return table


def read_results(out_dir: str | Path) -> ResultFiles:
    """Read a run folder written by :func:`write_results` (or ``gridflex simulate``)."""
    out = Path(out_dir)
    missing = [
        name
        for name in (VOLTAGES_FILE, BRANCH_LOADING_FILE, POWER_FILE, RUN_FILE)
        if not (out / name).is_file()
    ]
    run = json.loads((out / RUN_FILE).read_text(encoding="utf-8")) if not missing else {}
    fmt = str(run.get("violations_format", "csv"))
    row_file = VIOLATIONS_FILES.get(fmt)
    if row_file is not None and not (out / row_file).is_file():
        missing.append(row_file)
    if missing:
        raise InputError(
            f"result folder {out} lacks {', '.join(missing)}",
            "point at a folder written by `gridflex simulate --out`",
        )
    violations: pd.DataFrame | None = None
    if fmt == "csv":
        violations = read_violations_csv(out / VIOLATIONS_FILE)
    elif fmt == "parquet":
        violations = pd.read_parquet(out / VIOLATIONS_PARQUET_FILE)
    return ResultFiles(
        voltages_pu=pd.read_parquet(out / VOLTAGES_FILE),
        branch_loading_pct=pd.read_parquet(out / BRANCH_LOADING_FILE),
        power=pd.read_parquet(out / POWER_FILE),
        violations=violations,
        run=run,
    )
