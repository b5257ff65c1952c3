"""``gridflex simulate-many`` on a 2-worker Dask LocalCluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridflex.cli.main import app
from gridflex.errors import GridflexError, InputError, SharedDataMissingError
from gridflex.network.model import Network
from gridflex.powerflow.io import read_results
from gridflex.shared_data import shared_feeder
from gridflex.study.fanout import folder_name, make_scenarios

runner = CliRunner()


def test_scenario_folders_are_unique_and_safe() -> None:
    s = make_scenarios(
        ["simbench:1-LV-rural1--0-sw", "/x/IEEE13Nodeckt.dss", "/y/IEEE13Nodeckt.dss"],
        controls=["static", "off"],
    )
    assert [x.folder for x in s] == [
        "simbench_1-lv-rural1--0-sw__static", "simbench_1-lv-rural1--0-sw__off",
        "ieee13nodeckt__static", "ieee13nodeckt__off",
        "ieee13nodeckt__static_2", "ieee13nodeckt__off_2",
    ]  # fmt: skip
    assert folder_name("simbench:1-MV-urban--0-sw") == "simbench_1-mv-urban--0-sw"
    with pytest.raises(InputError, match="no feeder"):
        make_scenarios([])


def test_two_feeders_on_a_two_worker_local_cluster(
    tmp_path: Path, default_network: Network
) -> None:
    """Small feeders under two control modes, one feeder bad: the bad one is reported, the
    others run (IEEE 13 joins when ../shared is present)."""
    out = tmp_path / "batch"
    missing = tmp_path / "missing.dss"
    feeders = ["simbench:1-LV-rural1--0-sw", str(missing)]
    try:
        ieee13 = shared_feeder("ieee/13Bus/IEEE13Nodeckt.dss")
    except SharedDataMissingError:
        ieee13 = None
    else:
        feeders.append(str(ieee13))
    result = runner.invoke(
        app,
        ["simulate-many", *feeders, "--workers", "2", "--hours", "1",
         "--controls", "static", "--controls", "off", "--out", str(out)],
    )  # fmt: skip
    # one scenario pair failed: the command says so with a gridflex error (exit 3 in main())
    assert isinstance(result.exception, GridflexError)
    assert f"2 of {2 * len(feeders)} scenarios failed" in str(result.exception)
    batch = json.loads((out / "batch.json").read_text())
    assert batch["workers"] == 2
    by_folder = {s["folder"]: s for s in batch["scenarios"]}
    assert {
        "simbench_1-lv-rural1--0-sw__static", "simbench_1-lv-rural1--0-sw__off",
        "missing__static", "missing__off",
    } <= set(by_folder)  # fmt: skip
    assert "does not exist" in by_folder["missing__static"]["error"]
    for ctl in ("static", "off"):
        ok = by_folder[f"simbench_1-lv-rural1--0-sw__{ctl}"]
        assert ok["status"] == "ok"
        assert ok["steps"] == 4
        files = read_results(out / f"simbench_1-lv-rural1--0-sw__{ctl}")
        assert files.run["controls"] == ctl
        assert list(files.voltages_pu.columns[1:]) == default_network.node_names
    assert "ok simbench_1-lv-rural1--0-sw__static" in result.output
    if ieee13 is not None:
        dss = by_folder["ieee13nodeckt__static"]
        assert dss["status"] == "ok", dss
        assert dss["steps"] == 1  # hourly: the OpenDSS profile step
        files = read_results(out / "ieee13nodeckt__static")
        assert "671.1" in files.voltages_pu.columns


def test_unreachable_scheduler_is_an_input_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["simulate-many", "simbench:1-LV-rural1--0-sw", "--scheduler", "tcp://127.0.0.1:9",
         "--out", str(tmp_path / "b")],
    )  # fmt: skip
    assert isinstance(result.exception, InputError)
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in str(result.exception)
