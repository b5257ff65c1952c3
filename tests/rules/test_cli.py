"""``gridflex check``: exit codes 0/1/2, the JSON shape, HTML and text output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gridflex.cli.main import main
from tests.rules.support import edit, example


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("sys.argv", ["gridflex", *args])
    with pytest.raises(SystemExit) as info:
        main()
    code = info.value.code
    return 0 if code is None else int(code)


def err_text(capsys: pytest.CaptureFixture[str]) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(capsys.readouterr().err.split())


def _write(tmp_path: Path, data: dict[str, object], name: str = "app.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_embedded_example_passes_with_exit_0_and_json_shape(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["check", "--format", "json"], monkeypatch) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["application_id"] == "EX-2026-0001"
    assert out["findings"]
    for f in out["findings"]:
        assert {"rule", "status", "value", "limit", "source", "message"} <= set(f)
        assert f["status"] in {"pass", "fail", "needs_review", "not_applicable"}
    assert {f["rule"].split(".")[0] for f in out["findings"]} == {
        "ameren_il_btm_metering",
        "bge_csr6",
        "ieee1547_2018",
        "il_part466_screens",
    }


def test_failing_rule_exits_1_and_offers_the_pilot(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(
        ["check", "--example", "level1", "--ruleset", "il_part466_screens", "-f", "json"],
        monkeypatch,
    )
    assert code == 1
    out = json.loads(capsys.readouterr().out)
    (screen,) = [f for f in out["findings"] if f["rule"].endswith("level1_shared_secondary")]
    assert screen["status"] == "fail"
    assert (screen["value"], screen["limit"]) == (24.0, 20.0)
    ids = [o["id"] for o in screen["options"]]
    assert ids == ["upgrade", "volt_watt_pilot"]
    pilot = screen["options"][1]["detail"]
    assert "avoid the $200 contribution" in pilot
    assert "opt out risk-free at any time after energization" in pilot


def test_opting_in_to_the_pilot_clears_the_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = edit(
        example("example_level1.yaml"),
        {
            "options.volt_watt_pilot": "opt_in",
            "resources.0.inverter.volt_watt": {"v_pu": [1.06, 1.10], "p_pct": [100, 20]},
        },
    )
    path = _write(tmp_path, data)
    assert run_cli(["check", str(path), "-r", "il_part466_screens", "-f", "json"], monkeypatch) == 0
    out = json.loads(capsys.readouterr().out)
    by_rule = {f["rule"]: f for f in out["findings"]}
    assert by_rule["il_part466_screens.volt_watt_pilot"]["status"] == "needs_review"
    assert "assumed" in by_rule["il_part466_screens.volt_watt_pilot"]["message"]


def test_bad_input_exits_2_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, edit(example("example.yaml"), {"service.voltage_ll_v": "480V"}))
    assert run_cli(["check", str(path)], monkeypatch) == 2
    err = err_text(capsys)
    assert "service.voltage_ll_v" in err
    assert "'480V' is not a number" in err


def test_missing_file_and_unknown_ruleset_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["check", str(tmp_path / "none.yaml")], monkeypatch) == 2
    assert "does not exist" in err_text(capsys)
    assert run_cli(["check", "--ruleset", "nonesuch"], monkeypatch) == 2
    assert "unknown rule set 'nonesuch'" in err_text(capsys)


def test_ruleset_by_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gridflex.rules import load_ruleset

    own = load_ruleset("bge_csr6").model_dump(mode="json", exclude={"path"})
    own["ruleset"] = "strict_bge"
    own["rules"]["thd"]["params"]["max_pct"] = 3.0
    rs_path = tmp_path / "strict.yaml"
    rs_path.write_text(yaml.safe_dump(own), encoding="utf-8")
    assert run_cli(["check", "--ruleset", str(rs_path), "-f", "json"], monkeypatch) == 1
    out = json.loads(capsys.readouterr().out)
    (thd,) = [f for f in out["findings"] if f["rule"] == "strict_bge.thd"]
    assert (thd["status"], thd["value"], thd["limit"]) == ("fail", 3.1, 3.0)


def test_html_is_a_standalone_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report.html"
    assert run_cli(["check", "--example", "level1", "-f", "html", "-o", str(out)], monkeypatch) == 1
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "il_part466_screens.level1_shared_secondary" in page
    assert 'class="fail"' in page
    assert "Volt/watt pilot (opt in, no upgrade)" in page


def test_text_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert run_cli(["check", "--hide-na", "-r", "bge_csr6"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert "bge_csr6.uv_fast" in out
    assert "CSR-6 section 4.3.3.1" in out
    assert "not applicable" in out


def test_show_example_and_list(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["check", "--show-example"], monkeypatch) == 0
    assert "application_id: EX-2026-0001" in capsys.readouterr().out
    assert run_cli(["check", "--list-rulesets"], monkeypatch) == 0
    assert "il_part466_screens" in capsys.readouterr().out
