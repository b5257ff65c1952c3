"""Registry tables: aggregators, sites, service points, DER, programs, terms, lifecycle, API users.

Revision ID: 0001_registry
Revises: (none)
Create Date: 2026-11-22

``connection_terms`` rows are immutable: triggers abort UPDATE and DELETE on SQLite and PostgreSQL
(``seeds/001_9847d8232b845ab9.txt``, "Scheduled", *Stakeholder Feedback*: agreed schedules are
documented and not changed to further limit the customer; a change is a new version).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_registry"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aggregator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("lfdi", sa.String(length=40), nullable=True),
        sa.Column("sfdi", sa.BigInteger(), nullable=True),
        sa.Column("contact", sa.String(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aggregator")),
        sa.UniqueConstraint("lfdi", name=op.f("uq_aggregator_lfdi")),
        sa.UniqueConstraint("name", name=op.f("uq_aggregator_name")),
    )
    op.create_table(
        "connection_terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("agreed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("agreed_override", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_connection_terms_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_terms")),
        sa.UniqueConstraint(
            "connection_id", "version", name=op.f("uq_connection_terms_connection_id_version")
        ),
    )
    with op.batch_alter_table("connection_terms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_connection_terms_connection_id"), ["connection_id"], unique=False
        )

    op.create_table(
        "program",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("constraint_kind", sa.String(length=16), nullable=False),
        sa.Column("constraint_element", sa.String(length=128), nullable=False),
        sa.Column("capacity_kw", sa.Float(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "constraint_kind IN ('feeder', 'transformer', 'substation')",
            name=op.f("ck_program_constraint_kind"),
        ),
        sa.CheckConstraint(
            "capacity_kw IS NULL OR capacity_kw >= 0", name=op.f("ck_program_capacity_kw")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program")),
        sa.UniqueConstraint("name", name=op.f("uq_program_name")),
    )
    op.create_table(
        "site",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=400), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("customer", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "latitude IS NULL OR (latitude >= -90 AND latitude <= 90)", name=op.f("ck_site_lat")
        ),
        sa.CheckConstraint(
            "longitude IS NULL OR (longitude >= -180 AND longitude <= 180)",
            name=op.f("ck_site_lon"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site")),
    )
    op.create_table(
        "api_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("aggregator_id", sa.Integer(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(role = 'aggregator') = (aggregator_id IS NOT NULL)",
            name=op.f("ck_api_user_aggregator_scope"),
        ),
        sa.CheckConstraint(
            "role IN ('operator', 'read_only', 'aggregator')", name=op.f("ck_api_user_role")
        ),
        sa.ForeignKeyConstraint(
            ["aggregator_id"],
            ["aggregator.id"],
            name=op.f("fk_api_user_aggregator_id_aggregator"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_user")),
        sa.UniqueConstraint("name", name=op.f("uq_api_user_name")),
    )
    with op.batch_alter_table("api_user", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_user_aggregator_id"), ["aggregator_id"], unique=False
        )

    op.create_table(
        "service_point",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("meter_number", sa.String(length=64), nullable=False),
        sa.Column("service_voltage_ll_v", sa.Float(), nullable=True),
        sa.Column("phases", sa.String(length=8), nullable=False),
        sa.Column("feeder", sa.String(length=128), nullable=False),
        sa.Column("transformer", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_service_point_site_id_site"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_point")),
        sa.UniqueConstraint("number", name=op.f("uq_service_point_number")),
    )
    with op.batch_alter_table("service_point", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_point_site_id"), ["site_id"], unique=False)

    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["api_user.id"],
            name=op.f("fk_api_key_user_id_api_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("key_sha256", name=op.f("uq_api_key_key_sha256")),
    )
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_key_user_id"), ["user_id"], unique=False)

    op.create_table(
        "der",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("service_point_id", sa.Integer(), nullable=True),
        sa.Column("aggregator_id", sa.Integer(), nullable=True),
        sa.Column("lfdi", sa.String(length=40), nullable=True),
        sa.Column("sfdi", sa.BigInteger(), nullable=True),
        sa.Column("der_type", sa.String(length=32), nullable=False),
        sa.Column("nameplate_kw", sa.Float(), nullable=False),
        sa.Column("nameplate_kva", sa.Float(), nullable=True),
        sa.Column("energy_kwh", sa.Float(), nullable=True),
        sa.Column("inverter_settings", sa.JSON(), nullable=False),
        sa.Column("telemetry", sa.JSON(), nullable=False),
        sa.Column("feeder", sa.String(length=128), nullable=False),
        sa.Column("transformer", sa.String(length=128), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=False),
        sa.Column("connection_id", sa.String(length=128), nullable=True),
        sa.Column("lifecycle_state", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "der_type IN ('pv', 'storage', 'pv_storage', 'wind', 'ev_charger', "
            "'synchronous_generator', 'flexible_load', 'other')",
            name=op.f("ck_der_der_type"),
        ),
        sa.CheckConstraint(
            "lifecycle_state IN ('applied', 'approved', 'registered', 'eligible', 'enrolled', "
            "'operating', 'withdrawn', 'decommissioned')",
            name=op.f("ck_der_lifecycle_state"),
        ),
        sa.CheckConstraint("energy_kwh IS NULL OR energy_kwh >= 0", name=op.f("ck_der_energy_kwh")),
        sa.CheckConstraint(
            "nameplate_kva IS NULL OR nameplate_kva > 0", name=op.f("ck_der_nameplate_kva")
        ),
        sa.CheckConstraint("nameplate_kw > 0", name=op.f("ck_der_nameplate_kw_positive")),
        sa.ForeignKeyConstraint(
            ["aggregator_id"],
            ["aggregator.id"],
            name=op.f("fk_der_aggregator_id_aggregator"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["service_point_id"],
            ["service_point.id"],
            name=op.f("fk_der_service_point_id_service_point"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["site.id"], name=op.f("fk_der_site_id_site"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_der")),
        sa.UniqueConstraint("lfdi", name=op.f("uq_der_lfdi")),
    )
    with op.batch_alter_table("der", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_der_aggregator_id"), ["aggregator_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_der_connection_id"), ["connection_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_der_feeder"), ["feeder"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_der_service_point_id"), ["service_point_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_der_sfdi"), ["sfdi"], unique=False)
        batch_op.create_index(batch_op.f("ix_der_site_id"), ["site_id"], unique=False)

    op.create_table(
        "lifecycle_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("der_id", sa.Integer(), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=True),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["der_id"], ["der.id"], name=op.f("fk_lifecycle_event_der_id_der"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_event")),
    )
    with op.batch_alter_table("lifecycle_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lifecycle_event_der_id"), ["der_id"], unique=False)

    op.create_table(
        "program_member",
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("der_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["der_id"], ["der.id"], name=op.f("fk_program_member_der_id_der"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["program.id"],
            name=op.f("fk_program_member_program_id_program"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("program_id", "der_id", name=op.f("pk_program_member")),
    )
    with op.batch_alter_table("program_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_program_member_der_id"), ["der_id"], unique=False)

    _create_immutability_triggers()


IMMUTABLE_MESSAGE = "connection_terms rows are immutable: add a new version instead"


def _create_immutability_triggers() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER trg_connection_terms_no_{verb.lower()} BEFORE {verb} "
                f"ON connection_terms BEGIN SELECT RAISE(ABORT, '{IMMUTABLE_MESSAGE}'); END"
            )
    elif bind.dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION connection_terms_immutable() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{IMMUTABLE_MESSAGE}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER trg_connection_terms_immutable BEFORE UPDATE OR DELETE "
            "ON connection_terms FOR EACH ROW EXECUTE FUNCTION connection_terms_immutable()"
        )


def _drop_immutability_triggers() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS trg_connection_terms_no_update")
        op.execute("DROP TRIGGER IF EXISTS trg_connection_terms_no_delete")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS trg_connection_terms_immutable ON connection_terms")
        op.execute("DROP FUNCTION IF EXISTS connection_terms_immutable()")


def downgrade() -> None:
    _drop_immutability_triggers()
    with op.batch_alter_table("program_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_program_member_der_id"))

    op.drop_table("program_member")
    with op.batch_alter_table("lifecycle_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lifecycle_event_der_id"))

    op.drop_table("lifecycle_event")
    with op.batch_alter_table("der", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_der_site_id"))
        batch_op.drop_index(batch_op.f("ix_der_sfdi"))
        batch_op.drop_index(batch_op.f("ix_der_service_point_id"))
        batch_op.drop_index(batch_op.f("ix_der_feeder"))
        batch_op.drop_index(batch_op.f("ix_der_connection_id"))
        batch_op.drop_index(batch_op.f("ix_der_aggregator_id"))

    op.drop_table("der")
    with op.batch_alter_table("api_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_key_user_id"))

    op.drop_table("api_key")
    with op.batch_alter_table("service_point", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_point_site_id"))

    op.drop_table("service_point")
    with op.batch_alter_table("api_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_user_aggregator_id"))

    op.drop_table("api_user")
    op.drop_table("site")
    op.drop_table("program")
    with op.batch_alter_table("connection_terms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connection_terms_connection_id"))

    op.drop_table("connection_terms")
    op.drop_table("aggregator")
