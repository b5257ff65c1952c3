"""The compiled violations pass: same rows, order and summary as the pandas reference."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numba as nb
import numpy as np
import pandas as pd
import pytest

from gridflex.errors import InputError
from gridflex.powerflow.io import (
    VIOLATIONS_PARQUET_FILE,
    read_results,
    read_violations_csv,
    write_results,
    write_violations_parquet,
)
from gridflex.powerflow.result import TimeSeriesResult
from gridflex.powerflow.violations import (
    Limits,
    ViolationSummary,
    find_violations,
    iter_violation_arrays,
    iter_violations,
    load_limits,
)
from gridflex.powerflow.violations_csv import _put_float, write_violations_from_result


def _result(n: int = 50, seed: int = 3) -> TimeSeriesResult:
    """Every kind of violation, a NaN step, values exactly on limits, names needing quotes."""
    time = pd.date_range("2026-03-29T00:00Z", periods=n, freq="15min")
    rng = np.random.default_rng(seed)
    nodes = ["src.1", "bus,a.1", 'bus"b.2', "bus_c.3", "bus_d.1"]
    v = 1.0 + 0.12 * (rng.random((n, len(nodes))) - 0.5)
    v[3, :] = np.nan  # a step that did not converge is never flagged
    v[4, 0] = 1.05  # exactly on the limit: not a violation
    v[4, 1] = 0.95
    load = 140 * rng.random((n, 3))
    load[5, 0] = 100.0
    emerg = load * 0.8
    return TimeSeriesResult(
        time=time,
        node_names=nodes,
        v_pu=v,
        branch_names=["line.l1", "transformer.t1", "line.l,2"],
        branch_loading_pct=load,
        branch_loading_emerg_pct=emerg,
        source_p_kw=rng.normal(size=n) * 500,
        source_q_kvar=rng.normal(size=n),
        regulator_names=["regcontrol.r1", "regcontrol.r2"],
        regulator_taps=rng.integers(-16, 16, size=(n, 2)),
        regulator_p_kw=rng.normal(size=(n, 2)) * 1e-3,
        capacitor_names=[],
        capacitor_states=np.zeros((n, 0), dtype=np.int64),
        losses_kw=rng.random(n),
        pv_names=[],
        pv_available_kw=np.zeros((n, 0)),
        pv_p_kw=np.zeros((n, 0)),
        pv_curtailed_kw=np.zeros((n, 0)),
        e_curtailed_kwh=np.zeros(0),
        converged=np.ones(n, dtype=bool),
        iterations=np.ones(n, dtype=np.int64),
    )


@pytest.mark.parametrize("buffer_bytes", [1, 1 << 20])
def test_compiled_csv_equals_the_reference_table_and_summary(
    tmp_path: Path, buffer_bytes: int
) -> None:
    # 400 steps in 1-byte buffers (grown to two steps' bound): parts stop early and resume
    res = _result(400)
    lim = Limits(0.95, 1.05, 100.0, 100.0, 0.0, name="t")
    path = tmp_path / "v.csv"
    scan = write_violations_from_result(res, path, lim, buffer_bytes=buffer_bytes)
    ref = find_violations(res, lim)
    back = read_violations_csv(path)
    # every kind occurs, so the comparison covers each branch of the kernel
    assert set(ref["kind"].astype(str)) == {
        "undervoltage",
        "overvoltage",
        "thermal_normal",
        "thermal_emergency",
        "reverse_power",
    }
    assert len(back) == len(ref) > 0
    assert (back["time"].to_numpy() == ref["time"].to_numpy()).all()
    assert back["element"].tolist() == ref["element"].astype(str).tolist()
    assert back["kind"].tolist() == ref["kind"].astype(str).tolist()
    # 12 significant digits
    np.testing.assert_allclose(back["value"], ref["value"], rtol=1e-11, atol=0)
    np.testing.assert_allclose(back["limit"], ref["limit"], rtol=1e-11, atol=0)
    summary = ViolationSummary()
    for chunk in iter_violations(res, lim):
        summary.add(chunk)
    assert scan.rows == summary.rows
    assert scan.detail == summary.as_dict()


@pytest.mark.parametrize("threads", [1, 3])
def test_formatting_threads_do_not_change_the_file(tmp_path: Path, threads: int) -> None:
    # write_results formats with fewer threads than Numba has (cores left to the Parquet
    # encoders); the file and summary are the same bytes as the default's
    res = _result(400)
    ref = write_violations_from_result(res, tmp_path / "default.csv", buffer_bytes=1)
    got = write_violations_from_result(
        res, tmp_path / "threads.csv", buffer_bytes=1, threads=threads
    )
    assert (tmp_path / "threads.csv").read_bytes() == (tmp_path / "default.csv").read_bytes()
    assert got.rows == ref.rows
    assert got.detail == ref.detail


def test_emergency_loading_from_a_per_branch_scale_gives_the_same_rows(tmp_path: Path) -> None:
    """``simulate`` keeps normal/emergency rating ratios, not a second T x B array: the CSV pass
    and the pandas reference find the same rows from them as from the array itself."""
    res = _result(200)
    scale = np.array([0.8, 0.5, np.nan])  # the last branch has no emergency rating
    res.branch_loading_emerg_pct = res.branch_loading_pct * scale[None, :]
    lim = Limits(0.95, 1.05, 100.0, 100.0, 0.0, name="t")
    with_array = write_violations_from_result(res, tmp_path / "a.csv", lim)
    ref = find_violations(res, lim)
    res.branch_loading_emerg_pct = None
    res.branch_emerg_scale = scale
    with_scale = write_violations_from_result(res, tmp_path / "s.csv", lim)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()
    assert with_scale.rows == with_array.rows
    assert with_scale.rows["thermal_emergency"] > 0
    pd.testing.assert_frame_equal(find_violations(res, lim), ref)
    np.testing.assert_array_equal(res.loading_emerg_pct(), res.branch_loading_pct * scale)
    res.branch_emerg_scale = None
    assert write_violations_from_result(res, None, lim).rows["thermal_emergency"] == 0
    with pytest.raises(ValueError, match="no emergency loading"):
        res.loading_emerg_pct()


def test_float32_results_are_judged_and_printed_as_the_numbers_they_hold(tmp_path: Path) -> None:
    """``simulate`` keeps voltages and loadings in float32: float32(0.95) = 0.949999988 is
    below 0.95 (an undervoltage), float32(1.05) = 1.04999995 is not above 1.05; both paths
    compare and print the exact stored number."""
    res = _result(200)
    res.v_pu = res.v_pu.astype(np.float32)
    res.branch_loading_pct = res.branch_loading_pct.astype(np.float32)
    res.branch_loading_emerg_pct = None
    res.branch_emerg_scale = np.array([0.8, 0.5, np.nan])
    lim = Limits(0.95, 1.05, 100.0, 100.0, 0.0, name="t")
    path = tmp_path / "v.csv"
    scan = write_violations_from_result(res, path, lim)
    ref = find_violations(res, lim)
    back = read_violations_csv(path)
    assert len(back) == len(ref) == sum(scan.rows.values())
    assert back["element"].tolist() == ref["element"].astype(str).tolist()
    np.testing.assert_allclose(back["value"], ref["value"], rtol=1e-11, atol=0)
    at_4 = ref[ref["time"] == res.time[4]]
    under = at_4[at_4["kind"] == "undervoltage"]
    assert "bus,a.1" in under["element"].astype(str).tolist()
    assert under["value"].iloc[0] == float(np.float32(0.95))
    assert not ((at_4["kind"] == "overvoltage") & (at_4["element"] == "src.1")).any()
    # the CSV holds the float32 value's 12 significant digits
    row = back[(back["time"] == res.time[4]) & (back["element"] == "bus,a.1")]
    assert row["value"].iloc[0] == float(f"{np.float32(0.95):.12g}")


def test_names_are_quoted_only_when_needed(tmp_path: Path) -> None:
    res = _result()
    path = tmp_path / "v.csv"
    write_violations_from_result(res, path)
    text = path.read_text(encoding="utf-8")
    assert '"bus,a.1"' in text
    assert '"bus""b.2"' in text
    assert '"src.1"' not in text
    assert text.splitlines()[0] == "time,element,kind,value,limit"


def test_summary_only_writes_nothing_and_counts_the_same(tmp_path: Path) -> None:
    res = _result()
    with_file = write_violations_from_result(res, tmp_path / "v.csv")
    counts = write_violations_from_result(res, None)
    assert counts.rows == with_file.rows
    assert counts.detail == with_file.detail


def test_no_violation_gives_a_header_only_file(tmp_path: Path) -> None:
    res = _result()
    res.v_pu[:] = 1.0
    res.branch_loading_pct[:] = 50.0
    res.branch_loading_emerg_pct[:] = 40.0
    res.source_p_kw[:] = 10.0
    res.regulator_p_kw[:] = 10.0
    path = tmp_path / "v.csv"
    scan = write_violations_from_result(res, path)
    assert path.read_text() == "time,element,kind,value,limit\n"
    assert sum(scan.rows.values()) == 0
    assert all(d["worst"] is None for d in scan.detail.values())
    assert read_violations_csv(path).empty


@nb.njit
def _fmt(x: float) -> np.ndarray:
    buf = np.empty(64, np.uint8)
    n = _put_float(buf, 0, x)
    return buf[:n].copy()


def test_numbers_print_as_percent_12g() -> None:
    rng = np.random.default_rng(11)
    xs = np.concatenate(
        [
            rng.standard_normal(3000) * 10.0 ** rng.integers(-30, 30, 3000),
            [1.0, 100.0, 1.05, 0.95, 9.9999999999995, 99.99999999999951, 1e12, 1e-4],
            [9.99999999999e-5, 123456789012.4, 1e300, 5e-324, -1e-7, 1e20, 1e-20, 0.1],
            [np.nan, np.inf, -np.inf, -0.0, 1099511627776.5],
            # the product x * 10**k rounds onto a half while x lies just beside it: the exact
            # product decides (these printed one unit off in the last digit before)
            [1.034341766105, 1.072117318735, 1.087098658055, 43.45040978695, 95.98110422135],
            # voltages in pu and loadings in % as the violation rows hold them
            1.0 + 0.2 * (rng.random(100_000) - 0.5),
            150.0 * rng.random(100_000),
        ]
    )
    got = [bytes(_fmt(float(x))).decode() for x in xs]
    assert got == [f"{x:.12g}" for x in xs]


def test_write_results_finds_violations_itself_in_each_format(tmp_path: Path) -> None:
    res = _result()
    ref = find_violations(res, load_limits())
    for fmt in ("csv", "parquet", "summary"):
        out = tmp_path / fmt
        paths = write_results(res, out, run_info={"timings": {}}, violations_format=fmt)
        run = json.loads(paths["run"].read_text())
        assert run["violations_format"] == fmt
        assert sum(run["violations"].values()) == len(ref)
        assert run["timings"]["violations_s"] >= 0
        back = read_results(out)
        if fmt == "summary":
            assert back.violations is None
            assert "violations" not in paths
            assert not (out / "violations.csv").exists()
        else:
            assert back.violations is not None
            assert len(back.violations) == len(ref)
            assert back.violations["kind"].astype(str).tolist() == ref["kind"].astype(str).tolist()
            assert str(back.violations["time"].dt.tz) == "UTC"
    assert (tmp_path / "parquet" / VIOLATIONS_PARQUET_FILE).is_file()


def _plain(table: pd.DataFrame) -> pd.DataFrame:
    out = table.reset_index(drop=True).copy()
    out["element"] = out["element"].astype(str)
    out["kind"] = out["kind"].astype(str)
    out["time"] = pd.DatetimeIndex(out["time"]).tz_convert("UTC").as_unit("us")
    return out


def test_parquet_rows_equal_the_reference_from_codes_and_from_tables(tmp_path: Path) -> None:
    res = _result(n=40)
    ref = _plain(find_violations(res, load_limits()))
    # the codes path in slices of 3 steps (names sorted once, times merged across kinds) and
    # the table path give the same file content, names read back as plain strings
    sliced = list(iter_violation_arrays(res, chunk_values=3 * 5))
    assert len(sliced) == 14
    from_codes = tmp_path / "codes.parquet"
    from_tables = tmp_path / "tables.parquet"
    assert write_violations_parquet(sliced, from_codes) == len(ref)
    assert write_violations_parquet(iter_violations(res, chunk_values=7 * 5), from_tables) == len(
        ref
    )
    for path in (from_codes, from_tables):
        back = pd.read_parquet(path)
        assert list(back.columns) == ["time", "element", "kind", "value", "limit"]
        assert back["element"].dtype == object
        assert back["kind"].dtype == object
        pd.testing.assert_frame_equal(_plain(back), ref)


def test_run_json_is_the_same_for_csv_and_parquet(tmp_path: Path) -> None:
    res = _result()
    runs = {}
    for fmt in ("csv", "parquet"):
        paths = write_results(res, tmp_path / fmt, run_info={"timings": {}}, violations_format=fmt)
        runs[fmt] = json.loads(paths["run"].read_text())
    assert runs["csv"]["violations"] == runs["parquet"]["violations"]
    assert runs["csv"]["violations_detail"] == runs["parquet"]["violations_detail"]


def test_a_rerun_in_another_format_removes_the_old_row_file(tmp_path: Path) -> None:
    res = _result()
    write_results(res, tmp_path, run_info={"timings": {}})
    assert (tmp_path / "violations.csv").is_file()
    write_results(res, tmp_path, run_info={"timings": {}}, violations_format="summary")
    assert not (tmp_path / "violations.csv").exists()


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--violations 'xml'"):
        write_results(_result(), tmp_path, run_info={"timings": {}}, violations_format="xml")


def test_direct_and_buffered_writes_give_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 400 steps in buffers of two steps' bound: many batches, each part's partial last block
    # carried into the next part (direct writes take whole 4096-byte blocks only)
    from gridflex.powerflow import violations_csv

    res = _result(400)
    monkeypatch.setattr(violations_csv, "DIRECT_IO", False)
    write_violations_from_result(res, tmp_path / "buffered.csv", buffer_bytes=1)
    monkeypatch.setattr(violations_csv, "DIRECT_IO", True)
    write_violations_from_result(res, tmp_path / "direct.csv", buffer_bytes=1)
    buffered = (tmp_path / "buffered.csv").read_bytes()
    assert len(buffered) > 3 * 4096
    assert (tmp_path / "direct.csv").read_bytes() == buffered

    # a file system that refuses direct writes (EINVAL) gets ordinary ones, same bytes
    if not hasattr(os, "O_DIRECT"):
        return
    real_write = violations_csv.os.write
    refused: list[int] = []

    def refuse_once(fd: int, data: memoryview) -> int:
        if not refused:
            refused.append(fd)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(violations_csv.os, "write", refuse_once)
    write_violations_from_result(res, tmp_path / "fallback.csv", buffer_bytes=1)
    assert (tmp_path / "fallback.csv").read_bytes() == buffered
