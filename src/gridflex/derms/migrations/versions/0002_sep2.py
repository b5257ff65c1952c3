"""IEEE 2030.5 server tables (``gridflex.sep2.persistence``): end devices, registrations, DER
programs, DER controls with their lifecycle, client responses, DER information written by clients,
mirror usage points / meter readings / readings (telemetry time series), subscriptions and the
notification outbox.

Revision ID: 0002_sep2
Revises: 0001_registry
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_sep2"
down_revision: str | None = "0001_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sep2_der_program",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=True),
        sa.Column("mrid", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=32), nullable=False),
        sa.Column("primacy", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["program.id"],
            name=op.f("fk_sep2_der_program_program_id_program"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sep2_der_program")),
        sa.UniqueConstraint("key", name=op.f("uq_sep2_der_program_key")),
        sa.UniqueConstraint("mrid", name=op.f("uq_sep2_der_program_mrid")),
        sa.UniqueConstraint("program_id", name=op.f("uq_sep2_der_program_program_id")),
    )
    op.create_table(
        "sep2_end_device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lfdi", sa.String(length=40), nullable=False),
        sa.Column("sfdi", sa.BigInteger(), nullable=False),
        sa.Column("der_id", sa.Integer(), nullable=True),
        sa.Column("aggregator_id", sa.Integer(), nullable=True),
        sa.Column("is_aggregator", sa.Boolean(), nullable=False),
        sa.Column("device_category", sa.String(length=8), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("post_rate_s", sa.Integer(), nullable=True),
        sa.Column("nmi", sa.String(length=32), nullable=True),
        sa.Column("changed_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_terms_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["aggregator_id"],
            ["aggregator.id"],
            name=op.f("fk_sep2_end_device_aggregator_id_aggregator"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["der_id"], ["der.id"], name=op.f("fk_sep2_end_device_der_id_der"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sep2_end_device")),
        sa.UniqueConstraint("lfdi", name=op.f("uq_sep2_end_device_lfdi")),
    )
    with op.batch_alter_table("sep2_end_device", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sep2_end_device_aggregator_id"), ["aggregator_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sep2_end_device_der_id"), ["der_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sep2_end_device_sfdi"), ["sfdi"], unique=False)

    op.create_table(
        "sep2_der_control",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("end_device_id", sa.Integer(), nullable=False),
        sa.Column("der_program_id", sa.Integer(), nullable=False),
        sa.Column("mrid", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("terms_version", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(length=32), nullable=False),
        sa.Column("creation_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=False),
        sa.Column("randomize_start_s", sa.Integer(), nullable=True),
        sa.Column("randomize_duration_s", sa.Integer(), nullable=True),
        sa.Column("exp_lim_w", sa.Float(), nullable=True),
        sa.Column("imp_lim_w", sa.Float(), nullable=True),
        sa.Column("gen_lim_w", sa.Float(), nullable=True),
        sa.Column("load_lim_w", sa.Float(), nullable=True),
        sa.Column("connect", sa.Boolean(), nullable=True),
        sa.Column("energize", sa.Boolean(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_by_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["der_program_id"],
            ["sep2_der_program.id"],
            name=op.f("fk_sep2_der_control_der_program_id_sep2_der_program"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["end_device_id"],
            ["sep2_end_device.id"],
            name=op.f("fk_sep2_der_control_end_device_id_sep2_end_device"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by_id"],
            ["sep2_der_control.id"],
            name=op.f("fk_sep2_der_control_superseded_by_id_sep2_der_control"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sep2_der_control")),
        sa.UniqueConstraint("mrid", name=op.f("uq_sep2_der_control_mrid")),
    )
    with op.batch_alter_table("sep2_der_control", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sep2_der_control_device_program_start",
            ["end_device_id", "der_program_id", "start"],
            unique=False,
        )

    op.create_table(
        "sep2_der_info",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("end_device_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["end_device_id"],
            ["sep2_end_device.id"],
            name=op.f("fk_sep2_der_info_end_device_id_sep2_end_device"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sep2_der_info")),
        sa.UniqueConstraint(
            "end_device_id", "kind", name=op.f("uq_sep2_der_info_end_device_id_kind")
        ),
    )
    op.create_table(
        "sep2_mirror_usage_point",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("end_device_id", sa.Integer(), nullable=False),
        sa.Column("der_id", sa.Integer(), nullable=True),
        sa.Column("poster_lfdi", sa.String(length=40), nullable=False),
        sa.Column("mrid", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=32), nullable=False),
        sa.Column("role_flags", sa.String(length=4), nullable=False),
        sa.Column("service_category", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("post_rate_s", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["der_id"],
            ["der.id"],
            name=op.f("fk_sep2_mirror_usage_point_der_id_der"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["end_device_id"],
            ["sep2_end_device.id"],
            name=op.f("fk_sep2_mirror_usage_point_end_device_id_sep2_end_device"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sep2_mirror_usage_point")),
        sa.UniqueConstraint(
            "poster_lfdi", "mrid", name=op.f("uq_sep2_mirror_usage_point_poster_lfdi_mrid")
        ),
    )
    with op.batch_alter_table("sep2_mirror_usage_point", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sep2_mirror_usage_point_der_id"), ["der_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sep2_mirror_usage_point_end_device_id"), ["end_device_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sep2_mirror_usage_point_poster_lfdi"), ["poster_lfdi"], unique=False
        )

    op.create_table(
        "sep2_registration",
        sa.Column("end_device_id", sa.Integer(), nullable=False),
        sa.Column("pin", sa.Integer(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["end_device_id"],
            ["sep2_end_device.id"],
            name=op.f("fk_sep2_registration_end_device_id_sep2_end_device"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("end_device_id", name=op.f("pk_sep2_registration")),
    )
    op.create_table(
        "sep2_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("end_device_id", sa.Integer(), nullable=False),
        sa.Column("subscribed_resource", sa.String(length=255), nullable=False),
        sa.Column("notification_uri", sa.String(length=255), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["end_device_id"],
            ["sep2_end_device.id"],
            name=op.f("fk_sep2_subscription_end_device_id_sep2_end_device"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sep2_subscription")),
    )
    with op.batch_alter_table("sep2_subscription", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sep2_subscription_end_device_id"), ["end_device_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sep2_subscription_subscribed_resource"),
            ["subscribed_resource"],
            unique=False,
        )

    op.create_table(
        "sep2_mirror_meter_reading",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("usage_point_id", sa.Integer(), nullable=False),
        sa.Column("mrid", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=32), nullable=False),
        sa.Column("uom", sa.Integer(), nullable=True),
        sa.Column("kind", sa.Integer(), nullable=True),
        sa.Column("flow_direction", sa.Integer(), nullable=True),
        sa.Column("phase", sa.Integer(), nullable=True),
        sa.Column("data_qualifier", sa.Integer(), nullable=True),
        sa.Column("power_of_ten", sa.Integer(), nullable=False),
        sa.Column("interval_length_s", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["usage_point_id"],
            ["sep2_mirror_usage_point.id"],
            name=op.f("fk_sep2_mirror_meter_reading_usage_point_id_sep2_mirror_usage_point"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sep2_mirror_meter_reading")),
        sa.UniqueConstraint(
            "usage_point_id", "mrid", name=op.f("uq_sep2_mirror_meter_reading_usage_point_id_mrid")
        ),
    )
    with op.batch_alter_table("sep2_mirror_meter_reading", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sep2_mirror_meter_reading_usage_point_id"),
            ["usage_point_id"],
            unique=False,
        )

    op.create_table(
        "sep2_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("resource_href", sa.String(length=255), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["sep2_subscription.id"],
            name=op.f("fk_sep2_notification_subscription_id_sep2_subscription"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sep2_notification")),
    )
    with op.batch_alter_table("sep2_notification", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sep2_notification_subscription_id"), ["subscription_id"], unique=False
        )

    op.create_table(
        "sep2_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("der_control_id", sa.Integer(), nullable=True),
        sa.Column("end_device_id", sa.Integer(), nullable=False),
        sa.Column("end_device_lfdi", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("created_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["der_control_id"],
            ["sep2_der_control.id"],
            name=op.f("fk_sep2_response_der_control_id_sep2_der_control"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["end_device_id"],
            ["sep2_end_device.id"],
            name=op.f("fk_sep2_response_end_device_id_sep2_end_device"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sep2_response")),
    )
    with op.batch_alter_table("sep2_response", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sep2_response_der_control_id"), ["der_control_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_sep2_response_end_device_id"), ["end_device_id"], unique=False
        )

    op.create_table(
        "sep2_reading",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meter_reading_id", sa.Integer(), nullable=False),
        sa.Column("time_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_s", sa.Integer(), nullable=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("value_si", sa.Float(), nullable=False),
        sa.Column("quality_flags", sa.String(length=4), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meter_reading_id"],
            ["sep2_mirror_meter_reading.id"],
            name=op.f("fk_sep2_reading_meter_reading_id_sep2_mirror_meter_reading"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sep2_reading")),
        sa.UniqueConstraint(
            "meter_reading_id",
            "time_start",
            name=op.f("uq_sep2_reading_meter_reading_id_time_start"),
        ),
    )


def downgrade() -> None:
    op.drop_table("sep2_reading")
    with op.batch_alter_table("sep2_response", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sep2_response_end_device_id"))
        batch_op.drop_index(batch_op.f("ix_sep2_response_der_control_id"))

    op.drop_table("sep2_response")
    with op.batch_alter_table("sep2_notification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sep2_notification_subscription_id"))

    op.drop_table("sep2_notification")
    with op.batch_alter_table("sep2_mirror_meter_reading", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sep2_mirror_meter_reading_usage_point_id"))

    op.drop_table("sep2_mirror_meter_reading")
    with op.batch_alter_table("sep2_subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sep2_subscription_subscribed_resource"))
        batch_op.drop_index(batch_op.f("ix_sep2_subscription_end_device_id"))

    op.drop_table("sep2_subscription")
    op.drop_table("sep2_registration")
    with op.batch_alter_table("sep2_mirror_usage_point", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sep2_mirror_usage_point_poster_lfdi"))
        batch_op.drop_index(batch_op.f("ix_sep2_mirror_usage_point_end_device_id"))
        batch_op.drop_index(batch_op.f("ix_sep2_mirror_usage_point_der_id"))

    op.drop_table("sep2_mirror_usage_point")
    op.drop_table("sep2_der_info")
    with op.batch_alter_table("sep2_der_control", schema=None) as batch_op:
        batch_op.drop_index("ix_sep2_der_control_device_program_start")

    op.drop_table("sep2_der_control")
    with op.batch_alter_table("sep2_end_device", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sep2_end_device_sfdi"))
        batch_op.drop_index(batch_op.f("ix_sep2_end_device_der_id"))
        batch_op.drop_index(batch_op.f("ix_sep2_end_device_aggregator_id"))

    op.drop_table("sep2_end_device")
    op.drop_table("sep2_der_program")
