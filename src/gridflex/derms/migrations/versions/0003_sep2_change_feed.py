"""Change notifications for the 2030.5 server's caches (PostgreSQL only).

Every committed write that can change what a device's DERControlList shows, or who may read it,
sends ``NOTIFY gridflex_sep2`` in the writing transaction (PostgreSQL delivers it at commit, and
drops it on rollback): ``d:<EndDevice id>`` for a device's controls or EndDevice row, ``*`` for
the registry rows the lists and access checks depend on (connection terms, DER, aggregator) and
for any TRUNCATE. Triggers rather than calls in Python, so that every writer (the registry's API
and CLI, the operations API, other processes, plain SQL) is covered.
:mod:`gridflex.sep2.changes` listens on the channel in each server worker. SQLite has no
notifications; this revision does nothing there (the server checks the database on every poll).

Revision ID: 0003_sep2_change_feed
Revises: 0002_sep2
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_sep2_change_feed"
down_revision: str | None = "0002_sep2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "gridflex_sep2"
DEVICE_TABLES = {"sep2_der_control": "end_device_id", "sep2_end_device": "id"}
"""Tables whose rows belong to one EndDevice, with the column naming it."""
GLOBAL_TABLES = ("connection_terms", "der", "aggregator")
"""Registry tables read by the lists (terms version) and the access checks (ownership)."""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in DEVICE_TABLES.items():
        op.execute(
            f"""
            CREATE FUNCTION gridflex_sep2_notify_{table}() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'DELETE' THEN
                    PERFORM pg_notify('{CHANNEL}', 'd:' || OLD.{column});
                    RETURN OLD;
                END IF;
                PERFORM pg_notify('{CHANNEL}', 'd:' || NEW.{column});
                IF TG_OP = 'UPDATE' AND OLD.{column} IS DISTINCT FROM NEW.{column} THEN
                    PERFORM pg_notify('{CHANNEL}', 'd:' || OLD.{column});
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            f"CREATE TRIGGER gridflex_sep2_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION gridflex_sep2_notify_{table}()"
        )
    op.execute(
        f"""
        CREATE FUNCTION gridflex_sep2_notify_all() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '*');
            RETURN NULL;
        END $$ LANGUAGE plpgsql
        """
    )
    for table in GLOBAL_TABLES:
        op.execute(
            f"CREATE TRIGGER gridflex_sep2_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION gridflex_sep2_notify_all()"
        )
    for table in (*DEVICE_TABLES, *GLOBAL_TABLES):
        op.execute(
            f"CREATE TRIGGER gridflex_sep2_notify_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION gridflex_sep2_notify_all()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in (*DEVICE_TABLES, *GLOBAL_TABLES):
        op.execute(f"DROP TRIGGER IF EXISTS gridflex_sep2_notify_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS gridflex_sep2_notify ON {table}")
    for table in DEVICE_TABLES:
        op.execute(f"DROP FUNCTION IF EXISTS gridflex_sep2_notify_{table}()")
    op.execute("DROP FUNCTION IF EXISTS gridflex_sep2_notify_all()")
