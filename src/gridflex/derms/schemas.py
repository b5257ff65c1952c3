"""Request and response bodies of the operator REST API (pydantic; units in field names)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gridflex.derms.models import ConstraintKind, DerType, LifecycleState, Role
from gridflex.terms import ConnectionTerms


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


LFDI_FIELD = Field(
    default=None,
    description="IEEE 2030.5 LFDI of the certificate: 40 hex digits, any case (stored lower).",
    examples=["3e4f45ab31edfe5b67e343e5e4562e31984e23e5"],
)


class AggregatorIn(_In):
    """A new aggregator."""

    name: str = Field(min_length=1, max_length=200)
    lfdi: str | None = LFDI_FIELD
    sfdi: int | None = Field(default=None, ge=0, description="Short-form device identifier.")
    contact: str = ""


class AggregatorOut(_Out):
    """A stored aggregator."""

    id: int
    name: str
    lfdi: str | None
    sfdi: int | None
    contact: str
    created_at: dt.datetime


class SiteIn(_In):
    """A new site."""

    name: str = Field(min_length=1, max_length=200)
    address: str = ""
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    customer: str = ""


class SiteOut(_Out):
    """A stored site."""

    id: int
    name: str
    address: str
    latitude: float | None
    longitude: float | None
    customer: str
    created_at: dt.datetime


class ServicePointIn(_In):
    """A new service point."""

    site_id: int
    number: str = Field(min_length=1, max_length=64, description="Utility service point number.")
    meter_number: str = ""
    service_voltage_ll_v: float | None = Field(
        default=None, gt=0, description="Nominal line-to-line service voltage, V (240, 12470)."
    )
    phases: str = ""
    feeder: str = ""
    transformer: str = ""


class ServicePointOut(_Out):
    """A stored service point."""

    id: int
    site_id: int
    number: str
    meter_number: str
    service_voltage_ll_v: float | None
    phases: str
    feeder: str
    transformer: str
    created_at: dt.datetime


class DerIn(_In):
    """A new DER (registered in state ``applied``)."""

    site_id: int
    der_type: DerType
    nameplate_kw: float = Field(gt=0, allow_inf_nan=False, description="AC nameplate, kW.")
    name: str = ""
    service_point_id: int | None = None
    aggregator_id: int | None = None
    lfdi: str | None = LFDI_FIELD
    sfdi: int | None = Field(default=None, ge=0)
    nameplate_kva: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    energy_kwh: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    inverter_settings: dict[str, Any] = Field(
        default_factory=dict, description="Inverter settings (e.g. IEEE 1547 category, curves)."
    )
    telemetry: dict[str, Any] = Field(
        default_factory=dict, description="Telemetry capability (protocol, interval_s, ...)."
    )
    feeder: str = ""
    transformer: str = ""
    phase: str = ""
    connection_id: str | None = Field(default=None, max_length=128)


class DerPatch(_In):
    """Registration data to change (lifecycle state changes through a transition)."""

    name: str | None = None
    service_point_id: int | None = None
    aggregator_id: int | None = None
    lfdi: str | None = None
    sfdi: int | None = Field(default=None, ge=0)
    der_type: DerType | None = None
    nameplate_kw: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    nameplate_kva: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    energy_kwh: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    inverter_settings: dict[str, Any] | None = None
    telemetry: dict[str, Any] | None = None
    feeder: str | None = None
    transformer: str | None = None
    phase: str | None = None
    connection_id: str | None = Field(default=None, max_length=128)


class DerOut(_Out):
    """A stored DER."""

    id: int
    name: str
    site_id: int
    service_point_id: int | None
    aggregator_id: int | None
    lfdi: str | None
    sfdi: int | None
    der_type: DerType
    nameplate_kw: float
    nameplate_kva: float | None
    energy_kwh: float | None
    inverter_settings: dict[str, Any]
    telemetry: dict[str, Any]
    feeder: str
    transformer: str
    phase: str
    connection_id: str | None
    lifecycle_state: LifecycleState
    created_at: dt.datetime
    updated_at: dt.datetime


class TransitionIn(_In):
    """A lifecycle transition request."""

    to_state: LifecycleState
    note: str = ""


class LifecycleEventOut(_Out):
    """One recorded lifecycle transition."""

    id: int
    der_id: int
    from_state: LifecycleState | None
    to_state: LifecycleState
    actor: str
    at: dt.datetime
    note: str


class LifecycleStateOut(BaseModel):
    """One state of the lifecycle table."""

    state: LifecycleState
    description: str
    next: list[LifecycleState]
    requires_terms: bool


class LifecycleOut(BaseModel):
    """The lifecycle table with its source."""

    source: str
    initial: LifecycleState
    states: list[LifecycleStateOut]


class ProgramIn(_In):
    """A new program: DER behind one constraint."""

    name: str = Field(min_length=1, max_length=200)
    constraint_kind: ConstraintKind
    constraint_element: str = Field(min_length=1, max_length=128)
    capacity_kw: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    description: str = ""


class ProgramOut(_Out):
    """A stored program."""

    id: int
    name: str
    constraint_kind: ConstraintKind
    constraint_element: str
    capacity_kw: float | None
    description: str
    created_at: dt.datetime


class TermsVersionOut(BaseModel):
    """One stored version of a connection's terms, with who stored it and when."""

    connection_id: str
    version: int
    agreed_at: dt.datetime
    created_at: dt.datetime
    created_by: str
    agreed_override: bool = Field(
        description="True when this version limits the connection further and was stored "
        "because the change was marked agreed."
    )
    note: str
    terms: ConnectionTerms


class UserIn(_In):
    """A new API user."""

    name: str = Field(min_length=1, max_length=200)
    role: Role
    aggregator_id: int | None = None


class UserOut(_Out):
    """A stored API user."""

    id: int
    name: str
    role: Role
    aggregator_id: int | None
    disabled: bool
    created_at: dt.datetime


class ApiKeyOut(BaseModel):
    """A freshly issued API key: shown once, stored only as a hash."""

    user: str
    token: str


class WhoAmI(BaseModel):
    """The caller's identity and scope."""

    user: str
    role: Role
    aggregator_id: int | None


class ErrorOut(BaseModel):
    """Body of every error response."""

    error: str = Field(description="Error class, e.g. ConflictError.")
    detail: str
