"""``gridflex meterdata``: read to a directory, write back, billing window, loss factors."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from gridflex.cli.main import app
from gridflex.meterdata import read_867
from gridflex.meterdata.edi867 import INTERVAL_COLUMNS
from tests.meterdata.conftest import FIXTURES

runner = CliRunner()


def test_read_writes_parquet_summary_and_plot(tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(
        app, ["meterdata", "read", str(FIXTURES / "fall_back_codes.x12"), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(out / "intervals.parquet")
    assert list(frame.columns) == INTERVAL_COLUMNS
    assert str(frame["interval_start"].dtype) == "datetime64[ns, UTC]"
    assert len(frame) == 25
    assert (out / "intervals.png").stat().st_size > 10_000
    summary = pd.read_csv(out / "summary.csv", dtype={"meter": str})
    assert summary["intervals"].tolist() == [25]
    assert "SP1001" in res.output
    assert "53.250" in res.output


def test_write_from_csv_then_read_back(tmp_path):
    src = read_867(FIXTURES / "subtractive_unmetered.x12")
    src.intervals.to_csv(tmp_path / "intervals.csv", index=False)
    src.meters.to_csv(tmp_path / "meters.csv", index=False)
    target = tmp_path / "out.x12"
    res = runner.invoke(
        app,
        [
            "meterdata",
            "write",
            str(tmp_path / "intervals.csv"),
            "--out",
            str(target),
            "--meters",
            str(tmp_path / "meters.csv"),
            "--time-codes",
            "elapsed",
            "--report-type",
            "C1",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "2 transaction(s)" in res.output
    back = read_867(target)
    pd.testing.assert_frame_equal(back.intervals, src.intervals)
    assert (
        back.meters.set_index("meter")["role"].to_dict()
        == src.meters.set_index("meter")["role"].to_dict()
    )
    assert b"REF*JH*S" in target.read_bytes()
    assert b"PTD*BC***OZ*EL~\nREF*MG*99999999" in target.read_bytes()


def test_window_and_loss_factor_commands():
    res = runner.invoke(app, ["meterdata", "window", "2026-11-25"])
    assert res.exit_code == 0
    assert res.output.split() == ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"]
    res = runner.invoke(app, ["meterdata", "loss-factor", "10000"])
    assert res.exit_code == 0
    assert "1.082971" in res.output
    assert "1.048222" in res.output
    assert "1.018246" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["read", str(FIXTURES / "missing.x12"), "--out", "x"], "No such file"),
        (["window", "2026-11-26"], "Thanksgiving Day"),
    ],
)
def test_bad_input_exits_2_with_the_message(args, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "from gridflex.cli.main import main; main()", "meterdata", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr.replace("\n", " ")


def test_read_with_production_meter_sign_check(tmp_path, fixture_text):
    ok = runner.invoke(
        app,
        [
            "meterdata",
            "read",
            str(FIXTURES / "subtractive_unmetered.x12"),
            "--out",
            str(tmp_path / "a"),
            "--no-plot",
            "--production-meter",
            "PRD01",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "reads negative as required" in ok.output
    reversed_ct = tmp_path / "reversed.x12"
    reversed_ct.write_text(
        fixture_text("subtractive_unmetered.x12")
        .replace("QTY*87*", "QTY*QD*")
        .replace("QTY*QD*8.5*KH", "QTY*QD*18.5*KH")
    )
    bad = runner.invoke(
        app,
        [
            "meterdata",
            "read",
            str(reversed_ct),
            "--out",
            str(tmp_path / "b"),
            "--no-plot",
            "--production-meter",
            "PRD01",
        ],
    )
    assert bad.exit_code == 1
    assert "sign error" in bad.output
    assert pd.read_csv(tmp_path / "b" / "sign_check.csv")["sign_error"].tolist() == [True]
