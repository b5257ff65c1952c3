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
says why), in row groups of up to 320 MB (``ROW_GROUP_BYTES``): one for a year of the
8500-node feeder.
"""

from __future__ import annotations

import json
import os
import threading
import time as _time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numba as nb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gridflex.errors import InputError
from gridflex.powerflow.memory import result_array
from gridflex.powerflow.result import ValueArray, value_array
from gridflex.powerflow.runtime import heavy_section
from gridflex.powerflow.violations import (
    SOURCE_ELEMENT,
    VIOLATION_COLUMNS,
    Limits,
    ViolationArrays,
    empty_violations,
    iter_violation_arrays,
)
from gridflex.powerflow.violations_csv import ViolationScan, write_violations_from_result

T = TypeVar("T")

VOLTAGES_FILE = "voltages_pu.parquet"
BRANCH_LOADING_FILE = "branch_loading.parquet"
POWER_FILE = "power.parquet"
VIOLATIONS_FILE = "violations.csv"
VIOLATIONS_PARQUET_FILE = "violations.parquet"
#: The violation row file per ``violations_format`` (``summary`` writes none).
VIOLATIONS_FILES = {"csv": VIOLATIONS_FILE, "parquet": VIOLATIONS_PARQUET_FILE}
RUN_FILE = "run.json"

#: Layout version written into ``run.json`` (bump on any incompatible change of the files).
LAYOUT_VERSION = 1


def _time_array(time: Any) -> pa.Array:
    idx = pd.DatetimeIndex(time)
    if idx.tz is None:
        raise InputError(
            "result time stamps have no time zone", "pass timezone-aware UTC times to the writer"
        )
    return pa.array(idx.tz_convert("UTC"), type=pa.timestamp("us", tz="UTC"))


#: Bytes of the transposed copy one row group of a wide table is encoded from: the writer's
#: extra memory, and the row group's size on the way in. Arrow's cost per column chunk
#: dominates small groups (a year of the 8500-node feeder's 8531 voltage columns: one
#: ``pa.array`` per column and group, a column chunk each): in groups of 24 M values the
#: voltages took 1.6 s of CPU to encode (transposes 0.15 s, 4 x 8531 column chunks), in one
#: group 0.6 s; a year of that feeder's voltages (299 MB in float32) fits one group.
ROW_GROUP_BYTES = 320 * 2**20

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


@nb.njit(cache=True, nogil=True)
def _transpose_rows(a: Any, r0: int, out: Any) -> None:  # pragma: no cover - compiled
    """``out[j, i] = a[r0 + i, j]`` for ``out`` of shape ``(N, rows)``, in 8 x 8 tiles: the
    strided side of the copy stays within a few cache lines (NumPy's own transposed copy of a
    (8760, 8531) float32 array took 0.2-0.96 s, this 0.2 s)."""
    n, rows = out.shape
    for j0 in range(0, n, 8):
        j1 = min(n, j0 + 8)
        for i0 in range(0, rows, 8):
            i1 = min(rows, i0 + 8)
            for j in range(j0, j1):
                for i in range(i0, i1):
                    out[j, i] = a[r0 + i, j]


def write_wide_parquet(time: Any, names: Sequence[str], values: npt.ArrayLike, path: Path) -> None:
    """Write a wide ``(T, N)`` result as Parquet, in row groups of up to ``ROW_GROUP_BYTES``.

    Each group's rows are transposed into one reused node-major buffer whose rows become the
    Arrow columns without a copy.
    """
    arr = _check_wide(time, names, values)
    t_all = pd.DatetimeIndex(time)
    n_steps, n_cols = arr.shape
    rows = max(1, min(n_steps, ROW_GROUP_BYTES // max(1, n_cols * arr.dtype.itemsize)))
    schema = pa.schema(
        [pa.field("time", pa.timestamp("us", tz="UTC"))]
        + [pa.field(n, pa.from_numpy_dtype(arr.dtype)) for n in names]
    )
    # written once per group and read once by Arrow: small pages (memory.result_array)
    by_node = result_array((n_cols, rows), arr.dtype)
    with pq.ParquetWriter(path, schema, **_parquet_options(schema)) as writer:
        for r0 in range(0, max(n_steps, 1), rows):
            r1 = min(n_steps, r0 + rows)
            block = by_node[:, : r1 - r0]
            if block.size:
                _transpose_rows(arr, r0, block)
            columns = [_time_array(t_all[r0:r1]), *(pa.array(block[j]) for j in range(n_cols))]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


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
    # run.json is written last: a folder without it is an incomplete (or running) write; row
    # files of another format from an earlier run would contradict it
    release_files(
        [paths["run"], paths["voltages"], paths["branch_loading"], paths["power"]]
        + [out / name for name in VIOLATIONS_FILES.values()]
    )
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


def release_files(paths: Iterable[Path]) -> None:
    """Remove these files (those that exist); their disk blocks are freed on a thread.

    Truncating or unlinking a large file frees its blocks in the calling thread: the 3.9 GB
    ``violations.csv`` of an earlier 8500-node year took 0.63 s on ext4, at the start of a
    rewrite into the same folder. Each file is opened, then unlinked (only the name goes, at
    once); the last close, on a daemon thread, frees the blocks while the new files are
    written. Where an open file cannot be unlinked (Windows), it is closed and unlinked here.
    """
    held: list[int] = []
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.unlink(path)
        except IsADirectoryError:
            os.close(fd)
            raise InputError(
                f"{path} is a folder, where a result file goes",
                "remove or rename it, or give --out another folder",
            ) from None
        except PermissionError:
            os.close(fd)
            os.unlink(path)
            continue
        held.append(fd)
    if held:
        threading.Thread(
            target=_close_all, args=(held,), name="gridflex-release", daemon=True
        ).start()


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _timed(job: Callable[[], Path]) -> tuple[Path, float]:
    t0 = _time.perf_counter()
    return job(), _time.perf_counter() - t0


def _scan_violations(
    result: Any,
    path: Path | None,
    violations_format: str,
    limits: Limits | None,
    source_name: str,
) -> ViolationScan:
    """Violations of ``result`` in the chosen format, with their ``run.json`` summary."""
    if violations_format in ("csv", "summary"):
        # formatted on every Numba thread, beside the Parquet encoders and the plot: since the
        # wide files are encoded in one row group (ROW_GROUP_BYTES) they leave a core idle for
        # most of the CSV pass (docs/powerflow.md, session 6)
        return write_violations_from_result(result, path, limits, source_name=source_name)
    assert path is not None
    # the summary from the compiled scan the CSV is written by (the same run.json figures),
    # the rows as codes: no string per row is built (a year of the 8500-node feeder, 61.5 M
    # rows, took 17 s through pandas tables of names and Arrow string columns)
    scan = write_violations_from_result(result, None, limits, source_name=source_name)
    write_violations_parquet(iter_violation_arrays(result, limits, source_name=source_name), path)
    return scan


#: ``violations.parquet``'s columns: names and kinds are dictionaries in memory and on disk
#: (the file stores no Arrow schema, so readers see plain strings)
VIOLATIONS_PARQUET_SCHEMA = pa.schema(
    [
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("element", pa.dictionary(pa.int32(), pa.string())),
        pa.field("kind", pa.dictionary(pa.int32(), pa.string())),
        pa.field("value", pa.float64()),
        pa.field("limit", pa.float64()),
    ]
)


def _violation_batch(rows: ViolationArrays) -> pa.RecordBatch:
    def dictionary(codes: npt.NDArray[np.intp], names: Sequence[str]) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(
            pa.array(np.asarray(codes, dtype=np.int32)), pa.array(list(names), type=pa.string())
        )

    return pa.record_batch(
        [
            _time_array(rows.time),
            dictionary(rows.element_code, rows.elements),
            dictionary(rows.kind_code, rows.kinds),
            pa.array(np.asarray(rows.value, dtype=np.float64)),
            pa.array(np.asarray(rows.limit, dtype=np.float64)),
        ],
        schema=VIOLATIONS_PARQUET_SCHEMA,
    )


def write_violations_parquet(
    violations: pd.DataFrame | ViolationArrays | Iterable[pd.DataFrame | ViolationArrays],
    path: Path,
) -> int:
    """The violations table as Parquet (``--violations parquet``): the CSV's columns, ``time`` a
    UTC timestamp, ``element`` and ``kind`` strings (dictionary-encoded on disk).

    Parameters
    ----------
    violations:
        One table or :class:`~gridflex.powerflow.violations.ViolationArrays`, or consecutive
        slices of them (``iter_violation_arrays``: written without building a string per row).
    path:
        The Parquet file.

    Returns
    -------
    int
        Rows written.
    """
    chunks = [violations] if isinstance(violations, pd.DataFrame | ViolationArrays) else violations
    rows = 0
    # the next slice is prepared on a thread while Arrow encodes this one (both release the
    # GIL): the write phase of a frozen year of the 8500-node feeder (61.5 M rows) 9.2 -> 7.4-7.7 s
    with pq.ParquetWriter(path, VIOLATIONS_PARQUET_SCHEMA, compression=PARQUET_COMPRESSION,
                          store_schema=False, write_statistics=False) as writer:  # fmt: skip
        for chunk in _prefetched(iter(chunks)):
            if not len(chunk):
                continue
            arrays = (
                chunk if isinstance(chunk, ViolationArrays) else ViolationArrays.from_frame(chunk)
            )
            writer.write_batch(_violation_batch(arrays))
            rows += len(chunk)
    return rows


def _prefetched(items: Iterator[T]) -> Iterator[T]:
    """``items``, each next one computed on a thread while the caller works on the present."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridflex-prefetch") as pool:
        ahead = pool.submit(next, items, None)
        while (item := ahead.result()) is not None:
            ahead = pool.submit(next, items, None)
            yield item


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
