"""Migration 0002_sep2 applies on top of the registry's 0001 and reverts cleanly, on SQLite and
PostgreSQL."""

from __future__ import annotations

from gridflex.derms.db import current_revision, downgrade, make_engine, table_names, upgrade

SEP2_TABLES = {
    "sep2_end_device", "sep2_registration", "sep2_der_program", "sep2_der_control",
    "sep2_response", "sep2_der_info", "sep2_mirror_usage_point", "sep2_mirror_meter_reading",
    "sep2_reading", "sep2_subscription", "sep2_notification",
}  # fmt: skip


def test_upgrade_and_downgrade(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001_registry")
        assert not SEP2_TABLES & table_names(engine)
        upgrade(engine, "0002_sep2")
        assert current_revision(engine) == "0002_sep2"
        assert table_names(engine) >= SEP2_TABLES | {"der", "aggregator", "program"}
        downgrade(engine, "0001_registry")
        assert current_revision(engine) == "0001_registry"
        assert not SEP2_TABLES & table_names(engine)
        assert "der" in table_names(engine)
    finally:
        engine.dispose()
