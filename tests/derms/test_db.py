"""Engines and URLs: defaults, drivers, SQLite pragmas, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from gridflex.derms import db
from gridflex.errors import InputError


def test_default_url_honours_env_and_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GRIDFLEX_DB_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert db.default_url() == f"sqlite:///{tmp_path / 'gridflex' / 'gridflex.sqlite'}"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert db.default_url().endswith("/.local/share/gridflex/gridflex.sqlite")
    monkeypatch.setenv("GRIDFLEX_DB_URL", "postgresql://u@h/d")
    assert db.default_url() == "postgresql://u@h/d"


def test_default_engine_creates_the_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GRIDFLEX_DB_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    engine = db.make_engine()
    try:
        db.upgrade(engine)
        assert (tmp_path / "data" / "gridflex" / "gridflex.sqlite").exists()
    finally:
        engine.dispose()


def test_postgres_urls_use_psycopg3() -> None:
    assert db.normalize_url("postgresql://u@h:5432/d").drivername == "postgresql+psycopg"
    assert db.normalize_url("postgresql+psycopg://u@h/d").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://u@h/d", "names backend 'mysql'"), ("not a url", "not a valid SQLAlchemy URL")],
)
def test_bad_urls_are_input_errors(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        db.make_engine(url)


def test_sqlite_has_foreign_keys_and_wal(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.sqlite'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(Exception, match=r"(?i)foreign key"), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO der (name, site_id, der_type, nameplate_kw, inverter_settings, "
                "telemetry, feeder, transformer, phase, lifecycle_state, created_at, updated_at) "
                "VALUES ('x', 999, 'pv', 1, '{}', '{}', '', '', '', 'applied', :t, :t)"
            ),
            {"t": "2026-01-01T00:00:00+00:00"},
        )
