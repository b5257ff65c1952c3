"""Tables of the 2030.5 server (names ``sep2_*``; units in column names, W and seconds).

They reference the registry (``der``, ``aggregator``, ``program``) and hold what the 2030.5
function sets need beyond it: registered EndDevices, the DERPrograms a device sees, published
DERControls with their lifecycle (cancelled / superseded), client Responses, what clients write
about their DER (capability, settings, status, availability), mirrored meter readings as a time
series, and subscriptions with their notification outbox.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridflex.derms.db import Base
from gridflex.derms.models import UtcDateTime, utcnow

SITE_PROGRAM_KEY = "site"
"""``DerProgram.key`` of the program that carries each site's own connection terms."""


class EndDevice(Base):
    """A registered EndDevice: a DER's communication client, or an aggregator's own device."""

    __tablename__ = "sep2_end_device"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lfdi: Mapped[str] = mapped_column(String(40), unique=True)
    sfdi: Mapped[int] = mapped_column(BigInteger, index=True)
    der_id: Mapped[int | None] = mapped_column(
        ForeignKey("der.id", ondelete="SET NULL"), index=True
    )
    aggregator_id: Mapped[int | None] = mapped_column(
        ForeignKey("aggregator.id", ondelete="SET NULL"), index=True
    )
    is_aggregator: Mapped[bool] = mapped_column(Boolean, default=False)
    device_category: Mapped[str | None] = mapped_column(String(8))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    post_rate_s: Mapped[int | None] = mapped_column(Integer)
    nmi: Mapped[str | None] = mapped_column(String(32))
    changed_time: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    published_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    published_terms_version: Mapped[int | None] = mapped_column(Integer)


class Registration(Base):
    """The Registration of an EndDevice (IEEE 2030.5-2018 clause 10.3: PIN, time registered)."""

    __tablename__ = "sep2_registration"

    end_device_id: Mapped[int] = mapped_column(
        ForeignKey("sep2_end_device.id", ondelete="CASCADE"), primary_key=True
    )
    pin: Mapped[int] = mapped_column(Integer)
    registered_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class DerProgram(Base):
    """A DERProgram: the site program (each connection's own terms) or one per registry program."""

    __tablename__ = "sep2_der_program"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    program_id: Mapped[int | None] = mapped_column(
        ForeignKey("program.id", ondelete="CASCADE"), unique=True
    )
    mrid: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(String(32), default="")
    primacy: Mapped[int] = mapped_column(Integer, default=1)


class DerControl(Base):
    """One published DERControl for one EndDevice in one DERProgram, with its lifecycle.

    Scheduled / Active are derived from the clock; Cancelled and Superseded are stored with the
    instant they took effect (IEEE 2030.5-2018 clause 12.1.3.1, EventStatus).
    """

    __tablename__ = "sep2_der_control"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    end_device_id: Mapped[int] = mapped_column(ForeignKey("sep2_end_device.id", ondelete="CASCADE"))
    der_program_id: Mapped[int] = mapped_column(
        ForeignKey("sep2_der_program.id", ondelete="CASCADE")
    )
    mrid: Mapped[str] = mapped_column(String(32), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # 'terms' (generated) or 'operator'
    terms_version: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(32), default="")
    creation_time: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    start: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    duration_s: Mapped[int] = mapped_column(Integer)
    randomize_start_s: Mapped[int | None] = mapped_column(Integer)
    randomize_duration_s: Mapped[int | None] = mapped_column(Integer)
    exp_lim_w: Mapped[float | None] = mapped_column(Float)
    imp_lim_w: Mapped[float | None] = mapped_column(Float)
    gen_lim_w: Mapped[float | None] = mapped_column(Float)
    load_lim_w: Mapped[float | None] = mapped_column(Float)
    connect: Mapped[bool | None] = mapped_column(Boolean)
    energize: Mapped[bool | None] = mapped_column(Boolean)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    superseded_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    superseded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("sep2_der_control.id", ondelete="SET NULL")
    )
    version: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index(
            "ix_sep2_der_control_device_program_start", "end_device_id", "der_program_id", "start"
        ),
    )


class ControlResponse(Base):
    """A client Response to a DERControl (IEEE 2030.5-2018 clause 12.2, ResponseType)."""

    __tablename__ = "sep2_response"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    der_control_id: Mapped[int | None] = mapped_column(
        ForeignKey("sep2_der_control.id", ondelete="CASCADE"), index=True
    )
    end_device_id: Mapped[int] = mapped_column(
        ForeignKey("sep2_end_device.id", ondelete="CASCADE"), index=True
    )
    end_device_lfdi: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(32))
    status: Mapped[int | None] = mapped_column(Integer)
    created_time: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class DerInfo(Base):
    """What a client wrote about one of its DER: DERCapability, DERSettings, DERStatus or
    DERAvailability, kept as the validated XML document (``kind`` = dercap/derg/ders/dera)."""

    __tablename__ = "sep2_der_info"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    end_device_id: Mapped[int] = mapped_column(ForeignKey("sep2_end_device.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    xml: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("end_device_id", "kind"),)


class MirrorUsagePoint(Base):
    """A MirrorUsagePoint a client created to post its readings (IEEE 2030.5-2018 clause 10.7)."""

    __tablename__ = "sep2_mirror_usage_point"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    end_device_id: Mapped[int] = mapped_column(
        ForeignKey("sep2_end_device.id", ondelete="CASCADE"), index=True
    )
    der_id: Mapped[int | None] = mapped_column(
        ForeignKey("der.id", ondelete="SET NULL"), index=True
    )
    poster_lfdi: Mapped[str] = mapped_column(String(40), index=True)
    mrid: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(32), default="")
    role_flags: Mapped[str] = mapped_column(String(4))
    service_category: Mapped[int] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(Integer)
    post_rate_s: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    readings: Mapped[list[MirrorMeterReading]] = relationship(
        back_populates="usage_point", cascade="all, delete-orphan"
    )

    __table_args__ = (UniqueConstraint("poster_lfdi", "mrid"),)


class MirrorMeterReading(Base):
    """One MirrorMeterReading: a quantity (its ReadingType) under a MirrorUsagePoint."""

    __tablename__ = "sep2_mirror_meter_reading"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    usage_point_id: Mapped[int] = mapped_column(
        ForeignKey("sep2_mirror_usage_point.id", ondelete="CASCADE"), index=True
    )
    mrid: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(32), default="")
    uom: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[int | None] = mapped_column(Integer)
    flow_direction: Mapped[int | None] = mapped_column(Integer)
    phase: Mapped[int | None] = mapped_column(Integer)
    data_qualifier: Mapped[int | None] = mapped_column(Integer)
    power_of_ten: Mapped[int] = mapped_column(Integer, default=0)
    interval_length_s: Mapped[int | None] = mapped_column(Integer)

    usage_point: Mapped[MirrorUsagePoint] = relationship(back_populates="readings")

    __table_args__ = (UniqueConstraint("usage_point_id", "mrid"),)


class Reading(Base):
    """One reading of a MirrorMeterReading: the time series of telemetry.

    ``value`` is the integer on the wire; ``value_si`` is ``value * 10**power_of_ten`` in the
    ReadingType's unit (W for uom 38, V for 29, Wh for 72).
    """

    __tablename__ = "sep2_reading"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meter_reading_id: Mapped[int] = mapped_column(
        ForeignKey("sep2_mirror_meter_reading.id", ondelete="CASCADE")
    )
    time_start: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    duration_s: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[int] = mapped_column(BigInteger)
    value_si: Mapped[float] = mapped_column(Float)
    quality_flags: Mapped[str | None] = mapped_column(String(4))
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("meter_reading_id", "time_start"),)


class Subscription(Base):
    """A client Subscription to a resource (IEEE 2030.5-2018 clause 9.2)."""

    __tablename__ = "sep2_subscription"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    end_device_id: Mapped[int] = mapped_column(
        ForeignKey("sep2_end_device.id", ondelete="CASCADE"), index=True
    )
    subscribed_resource: Mapped[str] = mapped_column(String(255), index=True)
    notification_uri: Mapped[str] = mapped_column(String(255))
    limit: Mapped[int] = mapped_column(Integer, default=1)
    encoding: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Notification(Base):
    """The outbox: a Notification due to a subscriber, delivered by the server's notifier."""

    __tablename__ = "sep2_notification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("sep2_subscription.id", ondelete="CASCADE"), index=True
    )
    resource_href: Mapped[str] = mapped_column(String(255))
    status: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
