"""Result files: write, read back, layout (the contract in README / docs/sim.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from gridflex.errors import InputError
from gridflex.powerflow.io import (
    read_results,
    read_violations_csv,
    write_results,
    write_violations_csv,
)
from gridflex.powerflow.result import TimeSeriesResult
from gridflex.powerflow.violations import find_violations


def _result(n: int = 4) -> TimeSeriesResult:
    time = pd.date_range("2016-01-01T00:00+01:00", periods=n, freq="15min").tz_convert("UTC")
    rng = np.random.default_rng(7)
    return TimeSeriesResult(
        time=time,
        node_names=["src.1", "bus_a.1", "bus_b.1"],
        v_pu=1.0 + 0.06 * (rng.random((n, 3)) - 0.5),
        branch_names=["line.l1", "transformer.t1"],
        branch_loading_pct=100 * rng.random((n, 2)) + 20,
        branch_loading_emerg_pct=80 * rng.random((n, 2)),
        source_p_kw=rng.normal(size=n),
        source_q_kvar=rng.normal(size=n),
        regulator_names=["regcontrol.r1"],
        regulator_taps=rng.integers(-16, 16, size=(n, 1)),
        regulator_p_kw=rng.normal(size=(n, 1)),
        capacitor_names=[],
        capacitor_states=np.zeros((n, 0), dtype=np.int64),
        losses_kw=rng.random(n),
        pv_names=["pvsystem.a", "pvsystem.b"],
        pv_available_kw=np.ones((n, 2)),
        pv_p_kw=np.ones((n, 2)),
        pv_curtailed_kw=np.full((n, 2), 0.25),
        e_curtailed_kwh=np.ones(2),
        converged=np.array([True] * (n - 1) + [False]),
        iterations=np.arange(n),
    )


def test_round_trip_keeps_every_value(tmp_path: Path) -> None:
    res = _result()
    vio = find_violations(res)
    paths = write_results(
        res, tmp_path / "out", violations=vio, run_info={"timings": {"solve_s": 1.5}}
    )
    back = read_results(tmp_path / "out")
    assert list(back.voltages_pu.columns) == ["time", "src.1", "bus_a.1", "bus_b.1"]
    assert str(back.voltages_pu["time"].dt.tz) == "UTC"
    assert (back.voltages_pu["time"] == res.time).all()
    np.testing.assert_array_equal(back.voltages_pu.iloc[:, 1:].to_numpy(), res.v_pu)
    np.testing.assert_array_equal(
        back.branch_loading_pct[["line.l1", "transformer.t1"]].to_numpy(), res.branch_loading_pct
    )
    assert list(back.power.columns) == [
        "time", "source_p_kw", "source_q_kvar", "losses_kw", "pv_curtailed_kw", "converged",
        "iterations", "regcontrol.r1:p_kw", "regcontrol.r1:tap",
    ]  # fmt: skip
    np.testing.assert_allclose(back.power["pv_curtailed_kw"], 0.5)  # summed over PV systems
    np.testing.assert_array_equal(back.power["regcontrol.r1:tap"], res.regulator_taps[:, 0])
    assert back.violations is not None
    assert list(back.violations.columns) == ["time", "element", "kind", "value", "limit"]
    assert len(back.violations) == len(vio)
    assert (back.violations["time"].to_numpy() == vio["time"].to_numpy()).all()
    np.testing.assert_allclose(back.violations["value"], vio["value"], rtol=1e-9)
    assert back.run["timings"]["solve_s"] == 1.5
    assert back.run["timings"]["write_s"] >= 0
    assert back.run["files"]["voltages"] == "voltages_pu.parquet"
    assert set(paths) == {"voltages", "branch_loading", "power", "violations", "run"}


def test_csv_times_are_iso_8601_utc(tmp_path: Path) -> None:
    res = _result()
    write_results(res, tmp_path, violations=find_violations(res), run_info={"timings": {}})
    lines = (tmp_path / "violations.csv").read_text().splitlines()
    assert lines[0] == "time,element,kind,value,limit"
    assert lines[1].startswith("2015-12-31T23:")
    assert lines[1].split(",")[0].endswith("Z")


def test_parquet_time_column_is_a_utc_timestamp(tmp_path: Path) -> None:
    res = _result()
    write_results(res, tmp_path, violations=find_violations(res), run_info={"timings": {}})
    schema = pq.read_schema(tmp_path / "voltages_pu.parquet")
    assert str(schema.field("time").type) == "timestamp[us, tz=UTC]"
    assert json.loads((tmp_path / "run.json").read_text())["layout_version"] == 1


def test_reading_an_incomplete_folder_names_the_missing_files(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(InputError, match=r"lacks voltages_pu\.parquet, branch_loading\.parquet"):
        read_results(tmp_path)


def test_out_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("keep me")
    res = _result()
    with pytest.raises(InputError, match="is a file"):
        write_results(res, f, violations=find_violations(res), run_info={"timings": {}})
    assert f.read_text() == "keep me"


def test_names_with_commas_are_quoted_and_read_back(tmp_path: Path) -> None:
    t = pd.date_range("2026-01-01", periods=1, freq="h", tz="UTC")
    table = pd.DataFrame(
        {"time": t, "element": ['line.a,"b"'], "kind": ["thermal_normal"],
         "value": [101.5], "limit": [100.0]}
    )  # fmt: skip
    path = tmp_path / "violations.csv"
    write_violations_csv(table, path)
    back = read_violations_csv(path)
    assert back["element"].iloc[0] == 'line.a,"b"'
    assert back["time"].iloc[0] == t[0]


def test_many_row_groups_read_back_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gridflex.powerflow.io as gio

    res = _result(n=5)
    # 2 rows of 3 nodes per row group (and a 1-row last group)
    monkeypatch.setattr(gio, "ROW_GROUP_BYTES", 2 * 3 * res.v_pu.dtype.itemsize + 1)
    write_results(res, tmp_path, violations=find_violations(res), run_info={"timings": {}})
    assert pq.ParquetFile(tmp_path / "voltages_pu.parquet").num_row_groups == 3
    back = read_results(tmp_path)
    np.testing.assert_array_equal(back.voltages_pu.iloc[:, 1:].to_numpy(), res.v_pu)
    assert (back.voltages_pu["time"] == res.time).all()


@pytest.mark.parametrize("layout", ["F", "strided", "float32"])
def test_wide_parquet_of_any_array_layout_reads_back_exactly(tmp_path: Path, layout: str) -> None:
    from gridflex.powerflow.io import write_wide_parquet

    time = pd.date_range("2026-01-01", periods=11, freq="h", tz="UTC")
    base = np.random.default_rng(3).random((11, 14))
    values = {
        "F": np.asfortranarray(base[:, :5]),
        "strided": base[:, ::3],
        "float32": base[:, :5].astype(np.float32),
    }[layout]
    names = [f"n{j}.1" for j in range(values.shape[1])]
    write_wide_parquet(time, names, values, tmp_path / "w.parquet")
    back = pq.read_table(tmp_path / "w.parquet").to_pandas()
    assert list(back.columns) == ["time", *names]
    assert back[names].dtypes.unique().tolist() == [values.dtype]
    np.testing.assert_array_equal(back[names].to_numpy(), values)
    assert (back["time"] == time).all()


def test_wide_parquet_without_steps_keeps_its_columns(tmp_path: Path) -> None:
    from gridflex.powerflow.io import write_wide_parquet

    time = pd.DatetimeIndex([], tz="UTC")
    write_wide_parquet(time, ["a.1", "b.1"], np.zeros((0, 2), np.float32), tmp_path / "e.parquet")
    back = pq.read_table(tmp_path / "e.parquet")
    assert back.num_rows == 0
    assert back.column_names == ["time", "a.1", "b.1"]


def test_a_rewrite_replaces_every_file_of_the_earlier_run(tmp_path: Path) -> None:
    first, second = _result(n=6), _result(n=3)
    write_results(first, tmp_path, violations_format="parquet", run_info={"timings": {}})
    assert (tmp_path / "violations.parquet").exists()
    write_results(second, tmp_path, run_info={"timings": {}})
    # the earlier run's row file of the other format is gone; the rest hold the new run
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "branch_loading.parquet", "power.parquet", "run.json", "violations.csv",
        "voltages_pu.parquet",
    ]  # fmt: skip
    back = read_results(tmp_path)
    np.testing.assert_array_equal(back.voltages_pu.iloc[:, 1:].to_numpy(), second.v_pu)
    assert len(back.power) == 3
    assert back.violations is not None
    assert len(back.violations) == sum(back.run["violations"].values())


def test_release_files_frees_what_exists_and_skips_what_does_not(tmp_path: Path) -> None:
    from gridflex.powerflow.io import release_files

    kept = tmp_path / "keep.txt"
    kept.write_text("mine")
    big = tmp_path / "old.csv"
    big.write_bytes(b"x" * 100_000)
    release_files([big, tmp_path / "never-there.csv"])
    assert not big.exists()
    assert kept.read_text() == "mine"


def test_a_folder_where_a_result_file_goes_is_named(tmp_path: Path) -> None:
    (tmp_path / "voltages_pu.parquet").mkdir()
    res = _result()
    with pytest.raises(InputError, match=r"voltages_pu\.parquet is a folder"):
        write_results(res, tmp_path, run_info={"timings": {}})
