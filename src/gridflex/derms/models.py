"""SQLAlchemy 2 models of the DER registry (table names singular snake_case).

What a DERMS registers about each DER follows the seed: "location, type, capacity, inverter
settings, and telemetry capabilities" (``seeds/001_9847d8232b845ab9.txt``, "The Role of a DER
Management System (DERMS) in DER Orchestration", *DER Registration, modelling and visibility*).
Connection terms are stored as immutable versions of :class:`gridflex.terms.ConnectionTerms`
(the same seed, "Scheduled", *Stakeholder Feedback*: the schedule is documented in the agreement
and not updated to further limit the customer without agreement).

Certificate identities: ``lfdi`` is stored as 40 lower-case hex digits (IEEE 2030.5 LFDI, first
160 bits of the SHA-256 of the certificate) and compared case-insensitively by normalising input;
``sfdi`` is the decimal short-form identity (at most 12 digits, fits a 64-bit integer).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from gridflex.derms.db import Base
from gridflex.errors import InputError

LFDI_HEX_DIGITS = 40


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset; we restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("gridflex stores timezone-aware datetimes only (UTC inside)")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    """Now, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def normalize_lfdi(lfdi: str | None, field: str = "lfdi") -> str | None:
    """Lower-case an LFDI after checking it is 40 hex digits (``None`` passes through).

    Raises
    ------
    InputError
        Naming ``field`` when the value is not 40 hexadecimal digits.
    """
    if lfdi is None:
        return None
    text = lfdi.strip().lower()
    if len(text) != LFDI_HEX_DIGITS or any(c not in "0123456789abcdef" for c in text):
        raise InputError(
            f"{field} {lfdi!r} is not an IEEE 2030.5 LFDI",
            f"give {LFDI_HEX_DIGITS} hexadecimal digits (the first 160 bits of the SHA-256 "
            "fingerprint of the certificate)",
        )
    return text


class LifecycleState(StrEnum):
    """DER lifecycle states, in the seed's order (see ``derms/data/lifecycle.yaml``)."""

    APPLIED = "applied"
    APPROVED = "approved"
    REGISTERED = "registered"
    ELIGIBLE = "eligible"
    ENROLLED = "enrolled"
    OPERATING = "operating"
    WITHDRAWN = "withdrawn"
    DECOMMISSIONED = "decommissioned"


class DerType(StrEnum):
    """Kinds of resource the registry knows."""

    PV = "pv"
    STORAGE = "storage"
    PV_STORAGE = "pv_storage"
    WIND = "wind"
    EV_CHARGER = "ev_charger"
    SYNCHRONOUS_GENERATOR = "synchronous_generator"
    FLEXIBLE_LOAD = "flexible_load"
    OTHER = "other"


class ConstraintKind(StrEnum):
    """The network element a program's DER sit behind."""

    FEEDER = "feeder"
    TRANSFORMER = "transformer"
    SUBSTATION = "substation"


class Role(StrEnum):
    """Roles of REST API users."""

    OPERATOR = "operator"
    READ_ONLY = "read_only"
    AGGREGATOR = "aggregator"


def _enum_check(column: str, enum: type[StrEnum]) -> str:
    values = ", ".join(f"'{m.value}'" for m in enum)
    return f"{column} IN ({values})"


class Aggregator(Base):
    """A third-party aggregator fronting many DER (one certificate: ``lfdi``)."""

    __tablename__ = "aggregator"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    lfdi: Mapped[str | None] = mapped_column(String(LFDI_HEX_DIGITS), unique=True)
    sfdi: Mapped[int | None] = mapped_column(BigInteger)
    contact: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    ders: Mapped[list[Der]] = relationship(back_populates="aggregator")

    @validates("lfdi")
    def _lfdi(self, _key: str, value: str | None) -> str | None:
        return normalize_lfdi(value, "aggregator.lfdi")


class Site(Base):
    """A customer premises where DER are installed."""

    __tablename__ = "site"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(400), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    customer: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    service_points: Mapped[list[ServicePoint]] = relationship(back_populates="site")
    ders: Mapped[list[Der]] = relationship(back_populates="site")

    __table_args__ = (
        CheckConstraint("latitude IS NULL OR (latitude >= -90 AND latitude <= 90)", name="lat"),
        CheckConstraint(
            "longitude IS NULL OR (longitude >= -180 AND longitude <= 180)", name="lon"
        ),
    )


class ServicePoint(Base):
    """A metered service point of a site (``seeds/003_bfb20267a3df903e.txt``: service points)."""

    __tablename__ = "service_point"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    meter_number: Mapped[str] = mapped_column(String(64), default="")
    service_voltage_ll_v: Mapped[float | None] = mapped_column(Float)
    phases: Mapped[str] = mapped_column(String(8), default="")
    feeder: Mapped[str] = mapped_column(String(128), default="")
    transformer: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    site: Mapped[Site] = relationship(back_populates="service_points")


class Der(Base):
    """One distributed energy resource: what it is, where it is, whose it is, where it stands."""

    __tablename__ = "der"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id", ondelete="RESTRICT"), index=True)
    service_point_id: Mapped[int | None] = mapped_column(
        ForeignKey("service_point.id", ondelete="SET NULL"), index=True
    )
    aggregator_id: Mapped[int | None] = mapped_column(
        ForeignKey("aggregator.id", ondelete="SET NULL"), index=True
    )
    lfdi: Mapped[str | None] = mapped_column(String(LFDI_HEX_DIGITS), unique=True)
    sfdi: Mapped[int | None] = mapped_column(BigInteger, index=True)
    der_type: Mapped[str] = mapped_column(String(32))
    nameplate_kw: Mapped[float] = mapped_column(Float)
    nameplate_kva: Mapped[float | None] = mapped_column(Float)
    energy_kwh: Mapped[float | None] = mapped_column(Float)
    inverter_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    telemetry: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    feeder: Mapped[str] = mapped_column(String(128), default="", index=True)
    transformer: Mapped[str] = mapped_column(String(128), default="")
    phase: Mapped[str] = mapped_column(String(8), default="")
    connection_id: Mapped[str | None] = mapped_column(String(128), index=True)
    lifecycle_state: Mapped[str] = mapped_column(String(32), default=LifecycleState.APPLIED)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    site: Mapped[Site] = relationship(back_populates="ders")
    aggregator: Mapped[Aggregator | None] = relationship(back_populates="ders")
    events: Mapped[list[LifecycleEvent]] = relationship(
        back_populates="der", order_by="LifecycleEvent.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("nameplate_kw > 0", name="nameplate_kw_positive"),
        CheckConstraint("nameplate_kva IS NULL OR nameplate_kva > 0", name="nameplate_kva"),
        CheckConstraint("energy_kwh IS NULL OR energy_kwh >= 0", name="energy_kwh"),
        CheckConstraint(_enum_check("der_type", DerType), name="der_type"),
        CheckConstraint(_enum_check("lifecycle_state", LifecycleState), name="lifecycle_state"),
    )

    @validates("lfdi")
    def _lfdi(self, _key: str, value: str | None) -> str | None:
        return normalize_lfdi(value, "der.lfdi")


class Program(Base):
    """A group of DER behind one network constraint (feeder, transformer or substation)."""

    __tablename__ = "program"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    constraint_kind: Mapped[str] = mapped_column(String(16))
    constraint_element: Mapped[str] = mapped_column(String(128))
    capacity_kw: Mapped[float | None] = mapped_column(Float)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    members: Mapped[list[ProgramMember]] = relationship(
        back_populates="program", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint(_enum_check("constraint_kind", ConstraintKind), name="constraint_kind"),
        CheckConstraint("capacity_kw IS NULL OR capacity_kw >= 0", name="capacity_kw"),
    )


class ProgramMember(Base):
    """Membership of one DER in one program."""

    __tablename__ = "program_member"

    program_id: Mapped[int] = mapped_column(
        ForeignKey("program.id", ondelete="CASCADE"), primary_key=True
    )
    der_id: Mapped[int] = mapped_column(
        ForeignKey("der.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    added_by: Mapped[str] = mapped_column(String(200), default="")

    program: Mapped[Program] = relationship(back_populates="members")
    der: Mapped[Der] = relationship()


class ConnectionTermsRow(Base):
    """One immutable version of a connection's terms (the full ``ConnectionTerms`` JSON).

    Rows are never updated or deleted: the migration installs a trigger that aborts UPDATE and
    DELETE on every backend, and a new agreement is a new version.
    """

    __tablename__ = "connection_terms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    agreed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    agreed_override: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        UniqueConstraint("connection_id", "version"),
        CheckConstraint("version >= 1", name="version_positive"),
    )


class LifecycleEvent(Base):
    """One recorded lifecycle transition of a DER: who moved it, from where to where, when."""

    __tablename__ = "lifecycle_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    der_id: Mapped[int] = mapped_column(ForeignKey("der.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")

    der: Mapped[Der] = relationship(back_populates="events")


class ApiUser(Base):
    """A REST API user with one role; aggregator users are tied to their aggregator."""

    __tablename__ = "api_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    aggregator_id: Mapped[int | None] = mapped_column(
        ForeignKey("aggregator.id", ondelete="CASCADE"), index=True
    )
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    keys: Mapped[list[ApiKey]] = relationship(back_populates="user", cascade="all, delete-orphan")

    __table_args__ = (
        CheckConstraint(_enum_check("role", Role), name="role"),
        CheckConstraint(
            "(role = 'aggregator') = (aggregator_id IS NOT NULL)", name="aggregator_scope"
        ),
    )


class ApiKey(Base):
    """An API key / bearer token; only its SHA-256 is stored (tokens carry 256 random bits)."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("api_user.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    user: Mapped[ApiUser] = relationship(back_populates="keys")


__all__ = [
    "Aggregator",
    "ApiKey",
    "ApiUser",
    "ConnectionTermsRow",
    "ConstraintKind",
    "Der",
    "DerType",
    "LifecycleEvent",
    "LifecycleState",
    "Program",
    "ProgramMember",
    "Role",
    "ServicePoint",
    "Site",
    "normalize_lfdi",
    "utcnow",
]
