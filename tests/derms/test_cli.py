"""``gridflex registry`` / ``gridflex db`` commands (thin: they call the tested managers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gridflex.cli.main import app
from gridflex.errors import ConflictError, InputError

runner = CliRunner()


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    out = _run("registry", "init", "--db", url)
    assert "API key (shown once)" in out
    return url


def _terms_file(path: Path, export_kw: float) -> Path:
    path.write_text(
        "connection_id: app-1\nnameplate_kw: 500\n"
        f"export_limit_kw: {export_kw}\nagreed_at: 2026-01-05T00:00:00Z\n",
        encoding="utf-8",
    )
    return path


def test_registry_workflow(db: str, tmp_path: Path) -> None:
    assert _run("registry", "add-site", "Farm 1", "--db", db).strip() == "1"
    _run("registry", "add-aggregator", "Agg A", "--lfdi", "AB" * 20, "--db", db)
    der = _run(
        "registry", "add-der", "--site", "1", "--type", "pv", "--kw", "500", "--aggregator", "1",
        "--connection", "app-1", "--inverter", '{"category": "B"}', "--actor", "alice", "--db", db,
    ).strip()  # fmt: skip
    assert der == "1"
    assert "stored version 1" in _run(
        "registry", "add-terms", str(_terms_file(tmp_path / "t1.yaml", 250)), "--db", db
    )
    tighter = _terms_file(tmp_path / "t2.yaml", 200)
    with pytest.raises(ConflictError, match=r"static export limit lowered from 250\.0 to 200\.0"):
        _run("registry", "add-terms", str(tighter), "--db", db)
    out = _run("registry", "add-terms", str(tighter), "--agreed", "--db", db)
    assert "stored version 2 (agreed tightening)" in out
    _run("registry", "transition", "1", "approved", "--actor", "bob", "--db", db)
    assert "applied -> approved" in _run("registry", "history", "1", "--db", db)
    rows = json.loads(_run("registry", "list", "ders", "--json", "--db", db))
    assert rows[0]["state"] == "approved"
    assert rows[0]["aggregator"] == 1
    current = json.loads(_run("registry", "terms", "app-1", "--db", db))
    assert current["version"] == 2
    assert current["terms"]["export_limit_kw"] == 200
    history = json.loads(_run("registry", "terms", "app-1", "--history", "--db", db))
    assert [h["version"] for h in history] == [1, 2]
    token = _run("registry", "add-user", "agg", "--role", "aggregator", "--aggregator", "1",
                 "--db", db).strip()  # fmt: skip
    assert token.startswith("gfx_")


def test_unmigrated_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    with pytest.raises(InputError, match="run `gridflex db upgrade`"):
        _run("registry", "status", "--db", url)
    assert "0001_registry" in _run("db", "upgrade", "--db", url, "--revision", "0001_registry")
    with pytest.raises(InputError, match="add --yes"):
        _run("db", "downgrade", "base", "--db", url)
    assert "(empty)" in _run("db", "downgrade", "base", "--yes", "--db", url)


def test_openapi_command_writes_the_published_schema(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    _run("registry", "openapi", "-o", str(out))
    published = Path(__file__).parents[2] / "docs" / "schemas" / "registry_openapi.json"
    assert out.read_text(encoding="utf-8") == published.read_text(encoding="utf-8")


def test_exit_code_for_bad_input(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    proc = subprocess.run(
        [sys.executable, "-c", "from gridflex.cli.main import main; main()",
         "registry", "status", "--db", url],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "gridflex db upgrade" in proc.stderr


def test_import_command(db: str) -> None:
    example = Path(__file__).parents[2] / "docs" / "examples" / "registry" / "registry.yaml"
    out = _run("registry", "import", str(example), "--db", db)
    assert "2 ders" in out
    assert "2 terms" in out
    rows = json.loads(_run("registry", "list", "programs", "--json", "--db", db))
    assert rows[0]["ders"] == 2
