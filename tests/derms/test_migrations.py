"""Alembic migrations: upgrade to head and downgrade to base on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text

from gridflex.derms import db

REGISTRY_TABLES = {
    "aggregator", "site", "service_point", "der", "program", "program_member",
    "connection_terms", "lifecycle_event", "api_user", "api_key",
}  # fmt: skip


def test_upgrade_head_then_downgrade_base(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        assert db.current_revision(engine) is None
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert db.table_names(engine) >= REGISTRY_TABLES
        db.downgrade(engine, "base")
        assert db.current_revision(engine) is None
        assert db.table_names(engine) <= {"alembic_version"}
        # and back up again: the downgrade left nothing behind that blocks a fresh upgrade
        db.upgrade(engine)
        assert db.table_names(engine) >= REGISTRY_TABLES
    finally:
        engine.dispose()


def test_registry_revision_is_first_and_chain_is_linear() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(db.MIGRATIONS_DIR))
    heads = script.get_heads()
    assert len(heads) == 1, f"migration chain has several heads: {heads}"
    bases = script.get_bases()
    assert bases == ["0001_registry"]


def test_terms_rows_cannot_be_updated_or_deleted_in_sql(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO connection_terms (connection_id, version, terms, agreed_at, "
                "created_at, created_by, agreed_override, note) VALUES ('c1', 1, '{}', "
                ":t, :t, 'test', false, '')"
            ),
            {"t": "2026-01-01T00:00:00+00:00"},
        )
    for sql in (
        "UPDATE connection_terms SET created_by = 'mallory'",
        "DELETE FROM connection_terms",
    ):
        with pytest.raises(Exception, match="immutable"), engine.begin() as conn:
            conn.execute(text(sql))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT created_by FROM connection_terms")).scalar_one() == "test"
