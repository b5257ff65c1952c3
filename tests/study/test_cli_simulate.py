"""``gridflex simulate`` on the embedded default: files, time semantics, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gridflex.cli.main import app
from gridflex.errors import InputError
from gridflex.network.model import Network
from gridflex.powerflow.io import read_results

runner = CliRunner()


@pytest.fixture(scope="module")
def two_hours(tmp_path_factory: pytest.TempPathFactory, default_network: Network) -> Path:
    """``gridflex simulate --hours 2`` on the embedded default."""
    out = tmp_path_factory.mktemp("sim") / "out"
    result = runner.invoke(app, ["simulate", "--hours", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_file_layout(two_hours: Path, default_network: Network) -> None:
    names = sorted(p.name for p in two_hours.iterdir())
    assert names == [
        "branch_loading.parquet", "power.parquet", "run.json", "violations.csv",
        "voltage_envelope.png", "voltages_pu.parquet",
    ]  # fmt: skip
    files = read_results(two_hours)
    v = files.voltages_pu
    assert list(v.columns) == ["time", *default_network.node_names]
    assert str(v["time"].dt.tz) == "UTC"
    assert len(v) == 8  # 2 h at the SimBench 15-minute step
    assert ((v.iloc[:, 1:] > 0.9) & (v.iloc[:, 1:] < 1.1)).all().all()
    b = files.branch_loading_pct
    assert b.columns[0] == "time"
    assert all(c.startswith(("line.", "transformer.")) for c in b.columns[1:])
    assert files.violations is not None
    assert list(files.violations.columns) == ["time", "element", "kind", "value", "limit"]
    run = files.run
    for key in ("import_s", "solve_s", "write_s", "violations_s", "plot_s"):
        assert run["timings"][key] >= 0
    assert run["violations_format"] == "csv"
    assert run["files"]["plot"] == "voltage_envelope.png"
    assert run["steps"] == 8
    assert run["nodes"] == len(default_network.node_names)
    assert run["convergence"]["all_converged"] is True
    assert run["feeder"] == "simbench:1-LV-rural1--0-sw"


def test_default_start_is_january_first_local_time(two_hours: Path) -> None:
    run = json.loads((two_hours / "run.json").read_text())
    # SimBench local time is CET (UTC+1, no DST): 1 Jan 2016 00:00 local = 31 Dec 23:00 UTC
    assert run["start"] == "2015-12-31T23:00:00Z"
    t = pd.read_parquet(two_hours / "voltages_pu.parquet", columns=["time"])["time"]
    assert t.iloc[1] - t.iloc[0] == pd.Timedelta(minutes=15)


def test_summary_on_stdout(tmp_path: Path, default_network: Network) -> None:
    result = runner.invoke(app, ["simulate", "--hours", "1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    for text in ("simbench:1-LV-rural1--0-sw", "4 steps of 15 min", "all steps converged",
                 "undervoltage", "reverse_power", "voltages_pu.parquet"):  # fmt: skip
        assert text in result.output


def test_step_and_start(tmp_path: Path, default_network: Network) -> None:
    out = tmp_path / "o"
    out.mkdir()
    (out / "voltage_envelope.png").write_bytes(b"a plot of an earlier run")
    result = runner.invoke(
        app,
        ["simulate", "simbench:1-LV-rural1--0-sw", "--hours", "3", "--step", "1h",
         "--start", "2016-07-01T10:00", "--out", str(out), "--no-plot"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    v = pd.read_parquet(out / "voltages_pu.parquet")
    assert list(v["time"]) == list(pd.date_range("2016-07-01T09:00Z", periods=3, freq="h"))
    assert not (out / "voltage_envelope.png").exists()
    run = json.loads((out / "run.json").read_text())
    assert run["profile_offset_h"] == (31 + 29 + 31 + 30 + 31 + 30) * 24 + 10
    assert run["step_s"] == 3600


def test_start_shifts_the_profiles(tmp_path: Path, default_network: Network) -> None:
    """Starting at 01:00 gives the same voltages as the 5th step of a run starting at 00:00."""
    a, b = tmp_path / "a", tmp_path / "b"
    for out, args in ((a, ["--hours", "2"]), (b, ["--hours", "1", "--start", "2016-01-01T01:00"])):
        result = runner.invoke(app, ["simulate", *args, "--out", str(out), "--no-plot"])
        assert result.exit_code == 0, result.output
    va = pd.read_parquet(a / "voltages_pu.parquet")
    vb = pd.read_parquet(b / "voltages_pu.parquet")
    assert vb["time"].iloc[0] == va["time"].iloc[4]
    # the files hold float32: solutions equal to ~1e-12 may round one float32 step apart
    got, want = vb.iloc[:, 1:].to_numpy(), va.iloc[4:, 1:].to_numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=np.spacing(np.float32(1.1)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--step", "1 parsec"], "--step '1 parsec' is not a duration"),
        (["--step", "-15min"], "is not positive"),
        (["--hours", "1", "--step", "7min"], "is not a whole number of 0:07:00 steps"),
        (["--hours", "0"], "is not a positive number of hours"),
        (["--start", "next tuesday"], "--start 'next tuesday' is not an ISO 8601"),
        (["--controls", "auto"], "--controls 'auto' is not one of static, off"),
        (["--violations", "xlsx"], "--violations 'xlsx' is not one of csv, parquet, summary"),
    ],
)
def test_bad_arguments_name_the_option(
    tmp_path: Path, default_network: Network, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["simulate", *args, "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, InputError)
    assert message in str(result.exception)
    assert not (tmp_path / "o" / "run.json").exists()


def test_violations_summary_writes_counts_only(
    tmp_path: Path, two_hours: Path, default_network: Network
) -> None:
    out = tmp_path / "sum"
    args = ["simulate", "--hours", "2", "--violations", "summary", "--no-plot", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert not (out / "violations.csv").exists()
    files = read_results(out)
    assert files.violations is None
    full = read_results(two_hours)
    assert full.violations is not None
    # the same run with the default CSV: the counts are those of its rows
    assert files.run["violations"] == full.run["violations"]
    assert sum(files.run["violations"].values()) == len(full.violations)
    assert files.run["violations_detail"] == full.run["violations_detail"]


def test_unknown_simbench_code_names_close_matches(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["simulate", "simbench:1-LV-rural7--0-sw", "--out", str(tmp_path / "o")]
    )
    assert isinstance(result.exception, InputError)
    assert "unknown SimBench code '1-LV-rural7--0-sw'" in str(result.exception)
    assert "did you mean 1-LV-rural3--0-sw, 1-LV-rural2--0-sw, 1-LV-rural1--0-sw?" in str(
        result.exception
    )


def test_missing_feeder_exits_2_with_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "Master.dss"
    proc = subprocess.run(
        [sys.executable, "-c", "from gridflex.cli.main import main; main()",
         "simulate", str(missing), "--hours", "1", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    text = " ".join(proc.stderr.split())
    assert f"feeder '{missing}' does not exist" in text
    assert "Fix: give the path of an OpenDSS master file (.dss) or simbench:<code>" in text
    assert not (tmp_path / "o").exists()
