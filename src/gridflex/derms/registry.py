"""Registry managers: functions over a SQLAlchemy ``Session`` (the domain layer of ``derms``).

Every function flushes but never commits: the caller owns the transaction
(``with session_factory(engine).begin() as session:``), so an operation that raises leaves the
database as it was. Errors are gridflex domain errors (``InputError``, ``NotFoundError``,
``ConflictError``); the REST edge maps them to HTTP status codes.

References
----------
.. [1] Ameren Illinois, *Flexible Interconnection and DER Orchestration Report, Phase 1*
   (Sept. 2025), ``seeds/001_9847d8232b845ab9.txt``: "The Role of a DER Management System (DERMS)
   in DER Orchestration" (what registration collects), "Utility Process Elements Impacted by DER
   Orchestration" (the lifecycle), "Scheduled", *Stakeholder Feedback & Discussion Focus Areas*
   ("the schedule will not be updated to further limit customer system operations").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from gridflex.derms.lifecycle import lifecycle
from gridflex.derms.models import (
    Aggregator,
    ConnectionTermsRow,
    ConstraintKind,
    Der,
    DerType,
    LifecycleEvent,
    LifecycleState,
    Program,
    ProgramMember,
    ServicePoint,
    Site,
    normalize_lfdi,
    utcnow,
)
from gridflex.errors import ConflictError, InputError, NotFoundError
from gridflex.terms import ConnectionTerms

# ---- helpers --------------------------------------------------------------------------------


def _need_actor(actor: str) -> str:
    if not actor or not actor.strip():
        raise InputError("actor is empty", "name who makes the change (a user or system name)")
    return actor.strip()


def _enum(value: str, enum: type[Any], field: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InputError(f"{field} {value!r} is not known", f"use one of: {allowed}") from None


def _flush(session: Session, what: str, *new: Any) -> None:
    """Add ``new`` objects and flush inside a savepoint.

    A constraint violation rolls back only the savepoint (objects added in it are expunged), so
    the caller's session stays usable, and becomes a ``ConflictError``.
    """
    try:
        with session.begin_nested():
            session.add_all(new)
            session.flush()
    except IntegrityError as exc:
        detail = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        raise ConflictError(f"{what} conflicts with stored data: {detail}") from exc


def _get(session: Session, model: type[Any], ident: int, label: str) -> Any:
    obj = session.get(model, ident)
    if obj is None:
        raise NotFoundError(f"{label} {ident} does not exist")
    return obj


# ---- aggregators ------------------------------------------------------------------------------


def add_aggregator(
    session: Session,
    *,
    name: str,
    lfdi: str | None = None,
    sfdi: int | None = None,
    contact: str = "",
) -> Aggregator:
    """Register an aggregator (``lfdi``: its certificate identity, 40 hex digits, any case)."""
    if not name.strip():
        raise InputError("aggregator.name is empty", "give the aggregator's name")
    agg = Aggregator(name=name.strip(), lfdi=lfdi, sfdi=sfdi, contact=contact)
    _flush(session, f"aggregator {name!r}", agg)
    return agg


def get_aggregator(session: Session, aggregator_id: int) -> Aggregator:
    """The aggregator with this id (``NotFoundError`` otherwise)."""
    agg: Aggregator = _get(session, Aggregator, aggregator_id, "aggregator")
    return agg


def find_aggregator_by_lfdi(session: Session, lfdi: str) -> Aggregator | None:
    """The aggregator whose certificate has this LFDI (compared case-insensitively)."""
    key = normalize_lfdi(lfdi)
    return session.scalars(select(Aggregator).where(Aggregator.lfdi == key)).one_or_none()


def list_aggregators(session: Session) -> list[Aggregator]:
    """Every aggregator, by id."""
    return list(session.scalars(select(Aggregator).order_by(Aggregator.id)))


def ders_for_aggregator(session: Session, aggregator_id: int) -> list[Der]:
    """The DER an aggregator fronts, by id."""
    return list(
        session.scalars(select(Der).where(Der.aggregator_id == aggregator_id).order_by(Der.id))
    )


# ---- sites and service points -------------------------------------------------------------------


def add_site(
    session: Session,
    *,
    name: str,
    address: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    customer: str = "",
) -> Site:
    """Register a site (customer premises)."""
    if not name.strip():
        raise InputError("site.name is empty", "give the site a name")
    if latitude is not None and not -90 <= latitude <= 90:
        raise InputError(f"site.latitude {latitude} is outside -90..90", "give degrees north")
    if longitude is not None and not -180 <= longitude <= 180:
        raise InputError(f"site.longitude {longitude} is outside -180..180", "give degrees east")
    site = Site(
        name=name.strip(), address=address, latitude=latitude, longitude=longitude,
        customer=customer,
    )  # fmt: skip
    _flush(session, f"site {name!r}", site)
    return site


def get_site(session: Session, site_id: int) -> Site:
    """The site with this id (``NotFoundError`` otherwise)."""
    site: Site = _get(session, Site, site_id, "site")
    return site


def list_sites(session: Session) -> list[Site]:
    """Every site, by id."""
    return list(session.scalars(select(Site).order_by(Site.id)))


def add_service_point(
    session: Session,
    *,
    site_id: int,
    number: str,
    meter_number: str = "",
    service_voltage_ll_v: float | None = None,
    phases: str = "",
    feeder: str = "",
    transformer: str = "",
) -> ServicePoint:
    """Register a service point (the utility's service point number is unique)."""
    get_site(session, site_id)
    if not number.strip():
        raise InputError("service_point.number is empty", "give the service point number")
    if service_voltage_ll_v is not None and service_voltage_ll_v <= 0:
        raise InputError(
            f"service_point.service_voltage_ll_v {service_voltage_ll_v} is not positive",
            "give the nominal service voltage in volts, e.g. 240 or 12470",
        )
    sp = ServicePoint(
        site_id=site_id, number=number.strip(), meter_number=meter_number,
        service_voltage_ll_v=service_voltage_ll_v, phases=phases, feeder=feeder,
        transformer=transformer,
    )  # fmt: skip
    _flush(session, f"service point {number!r}", sp)
    return sp


def get_service_point(session: Session, service_point_id: int) -> ServicePoint:
    """The service point with this id (``NotFoundError`` otherwise)."""
    sp: ServicePoint = _get(session, ServicePoint, service_point_id, "service point")
    return sp


def list_service_points(session: Session, site_id: int | None = None) -> list[ServicePoint]:
    """Service points, optionally of one site, by id."""
    stmt = select(ServicePoint).order_by(ServicePoint.id)
    if site_id is not None:
        stmt = stmt.where(ServicePoint.site_id == site_id)
    return list(session.scalars(stmt))


# ---- DER ----------------------------------------------------------------------------------------

#: DER fields an operator may change after creation (lifecycle state changes via ``transition``).
DER_EDITABLE_FIELDS = frozenset(
    {
        "name", "service_point_id", "aggregator_id", "lfdi", "sfdi", "der_type", "nameplate_kw",
        "nameplate_kva", "energy_kwh", "inverter_settings", "telemetry", "feeder", "transformer",
        "phase", "connection_id",
    }
)  # fmt: skip


_CONNECTION_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")  # the ConnectionTerms.connection_id rule


def _check_der_fields(session: Session, fields: dict[str, Any], site_id: int) -> None:
    if "der_type" in fields:
        fields["der_type"] = _enum(fields["der_type"], DerType, "der.der_type").value
    for name in ("nameplate_kw", "nameplate_kva", "energy_kwh"):
        value = fields.get(name)
        if value is None:
            if name == "nameplate_kw" and name in fields:
                raise InputError("der.nameplate_kw is missing", "give the AC nameplate in kW")
            continue
        if not math.isfinite(value) or value < 0 or (value == 0 and name != "energy_kwh"):
            raise InputError(
                f"der.{name} = {value} is not a positive number",
                f"give {name} as a positive finite number",
            )
    if fields.get("connection_id") is not None:
        cid = fields["connection_id"]
        if not isinstance(cid, str) or not _CONNECTION_ID.fullmatch(cid):
            raise InputError(
                f"der.connection_id {cid!r} is not a valid connection id",
                "use 1-128 letters, digits, '_', '.', ':' or '-' (as in the connection terms)",
            )
    if fields.get("service_point_id") is not None:
        sp = get_service_point(session, fields["service_point_id"])
        if sp.site_id != site_id:
            raise InputError(
                f"der.service_point_id {sp.id} belongs to site {sp.site_id}, not to the DER's "
                f"site {site_id}",
                "give a service point of the DER's own site",
            )
    if fields.get("aggregator_id") is not None:
        get_aggregator(session, fields["aggregator_id"])
    for name in ("inverter_settings", "telemetry"):
        if name in fields and fields[name] is None:
            fields[name] = {}
        if name in fields and not isinstance(fields[name], dict):
            raise InputError(f"der.{name} must be a mapping", f"give {name} as key: value pairs")


def add_der(
    session: Session,
    *,
    site_id: int,
    der_type: str,
    nameplate_kw: float,
    actor: str,
    name: str = "",
    service_point_id: int | None = None,
    aggregator_id: int | None = None,
    lfdi: str | None = None,
    sfdi: int | None = None,
    nameplate_kva: float | None = None,
    energy_kwh: float | None = None,
    inverter_settings: dict[str, Any] | None = None,
    telemetry: dict[str, Any] | None = None,
    feeder: str = "",
    transformer: str = "",
    phase: str = "",
    connection_id: str | None = None,
) -> Der:
    """Register a DER in the initial lifecycle state (``applied``) and record that event.

    What is collected follows the seed's *DER Registration* [1]_: location (site, feeder,
    transformer, phase), type, capacity (kW, kVA, kWh), inverter settings and telemetry
    capability, plus its certificate identity (``lfdi``/``sfdi``) and its ``connection_id``.
    """
    who = _need_actor(actor)
    get_site(session, site_id)
    fields: dict[str, Any] = {
        "name": name, "service_point_id": service_point_id, "aggregator_id": aggregator_id,
        "lfdi": lfdi, "sfdi": sfdi, "der_type": der_type, "nameplate_kw": nameplate_kw,
        "nameplate_kva": nameplate_kva, "energy_kwh": energy_kwh,
        "inverter_settings": inverter_settings or {}, "telemetry": telemetry or {},
        "feeder": feeder, "transformer": transformer, "phase": phase,
        "connection_id": connection_id,
    }  # fmt: skip
    _check_der_fields(session, fields, site_id)
    if nameplate_kva is not None and nameplate_kva < nameplate_kw:
        raise InputError(
            f"der.nameplate_kva = {nameplate_kva} is below nameplate_kw = {nameplate_kw}",
            "apparent power rating (kVA) is at least the active power rating (kW)",
        )
    initial = lifecycle().initial
    der = Der(site_id=site_id, lifecycle_state=initial.value, **fields)
    _flush(session, f"DER {name or lfdi or ''!r}".strip(), der)
    event = LifecycleEvent(der_id=der.id, from_state=None, to_state=initial.value, actor=who)
    _flush(session, f"lifecycle event of DER {der.id}", event)
    return der


def update_der(session: Session, der_id: int, *, actor: str, **changes: Any) -> Der:
    """Change registration data of a DER (not its lifecycle state: use :func:`transition`)."""
    _need_actor(actor)
    der = get_der(session, der_id)
    unknown = set(changes) - DER_EDITABLE_FIELDS
    if unknown:
        raise InputError(
            f"cannot change DER field(s) {sorted(unknown)}",
            f"editable fields are {sorted(DER_EDITABLE_FIELDS)}; lifecycle_state changes "
            "through a transition",
        )
    _check_der_fields(session, changes, der.site_id)
    for key, value in changes.items():
        setattr(der, key, value)
    kva, kw = der.nameplate_kva, der.nameplate_kw
    if kva is not None and kva < kw:
        raise InputError(
            f"der.nameplate_kva = {kva} is below nameplate_kw = {kw}",
            "apparent power rating (kVA) is at least the active power rating (kW)",
        )
    _flush(session, f"DER {der_id}")
    return der


def get_der(session: Session, der_id: int) -> Der:
    """The DER with this id (``NotFoundError`` otherwise)."""
    der: Der = _get(session, Der, der_id, "DER")
    return der


def find_der_by_lfdi(session: Session, lfdi: str) -> Der | None:
    """The DER whose device certificate has this LFDI (compared case-insensitively)."""
    key = normalize_lfdi(lfdi)
    return session.scalars(select(Der).where(Der.lfdi == key)).one_or_none()


def find_ders_by_sfdi(session: Session, sfdi: int) -> list[Der]:
    """DER with this SFDI (SFDIs are short and may collide; the LFDI is the unique key)."""
    return list(session.scalars(select(Der).where(Der.sfdi == int(sfdi)).order_by(Der.id)))


def list_ders(
    session: Session,
    *,
    aggregator_id: int | None = None,
    site_id: int | None = None,
    feeder: str | None = None,
    state: str | None = None,
    connection_id: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[Der]:
    """DER matching every given filter, by id (``offset``/``limit`` page through large fleets)."""
    if offset < 0 or (limit is not None and limit < 1):
        raise InputError(f"offset {offset} / limit {limit} out of range", "offset >= 0, limit >= 1")
    stmt = select(Der).order_by(Der.id).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    if aggregator_id is not None:
        stmt = stmt.where(Der.aggregator_id == aggregator_id)
    if site_id is not None:
        stmt = stmt.where(Der.site_id == site_id)
    if feeder is not None:
        stmt = stmt.where(Der.feeder == feeder)
    if state is not None:
        stmt = stmt.where(Der.lifecycle_state == _enum(state, LifecycleState, "state").value)
    if connection_id is not None:
        stmt = stmt.where(Der.connection_id == connection_id)
    return list(session.scalars(stmt))


def ders_for_connection(session: Session, connection_id: str) -> list[Der]:
    """The DER operating under one connection's terms."""
    return list_ders(session, connection_id=connection_id)


# ---- lifecycle --------------------------------------------------------------------------------


def allowed_transitions(state: str | LifecycleState) -> list[str]:
    """States a DER in ``state`` may move to next."""
    return [s.value for s in lifecycle().allowed_from(state)]


def transition(
    session: Session,
    der_id: int,
    to_state: str | LifecycleState,
    *,
    actor: str,
    note: str = "",
    at: dt.datetime | None = None,
) -> LifecycleEvent:
    """Move a DER to its next lifecycle state and record who did it and when [1]_.

    Raises
    ------
    ConflictError
        The transition is not allowed from the DER's state (the message names the allowed ones),
        or the target state needs connection terms the DER's connection does not have yet.
    """
    who = _need_actor(actor)
    target = _enum(str(to_state), LifecycleState, "to_state")
    der = get_der(session, der_id)
    current = LifecycleState(der.lifecycle_state)
    allowed = lifecycle().allowed_from(current)
    if target not in allowed:
        nxt = ", ".join(s.value for s in allowed) or "none (terminal state)"
        raise ConflictError(
            f"DER {der_id} is '{current.value}' and cannot move to '{target.value}'; allowed "
            f"next states: {nxt}"
        )
    if lifecycle().states[target].requires_terms:
        if der.connection_id is None:
            raise ConflictError(
                f"DER {der_id} cannot be '{target.value}' without connection terms: it has no "
                "connection_id; set it and add the connection's terms first"
            )
        if current_terms(session, der.connection_id) is None:
            raise ConflictError(
                f"DER {der_id} cannot be '{target.value}': connection {der.connection_id!r} "
                "has no terms yet; add them first (gridflex registry add-terms)"
            )
    when = at or utcnow()
    if when.tzinfo is None:
        raise InputError("transition time is naive", "give a timezone-aware time (UTC)")
    event = LifecycleEvent(
        der_id=der_id, from_state=current.value, to_state=target.value, actor=who, at=when,
        note=note,
    )  # fmt: skip
    der.lifecycle_state = target.value
    _flush(session, f"transition of DER {der_id}", event)
    return event


def lifecycle_history(session: Session, der_id: int) -> list[LifecycleEvent]:
    """Every recorded transition of a DER, oldest first."""
    get_der(session, der_id)
    return list(
        session.scalars(
            select(LifecycleEvent)
            .where(LifecycleEvent.der_id == der_id)
            .order_by(LifecycleEvent.id)
        )
    )


# ---- programs -------------------------------------------------------------------------------


def add_program(
    session: Session,
    *,
    name: str,
    constraint_kind: str,
    constraint_element: str,
    capacity_kw: float | None = None,
    description: str = "",
) -> Program:
    """A group of DER behind one constraint (a feeder, transformer or substation)."""
    if not name.strip():
        raise InputError("program.name is empty", "give the program a name")
    kind = _enum(constraint_kind, ConstraintKind, "program.constraint_kind")
    if not constraint_element.strip():
        raise InputError(
            "program.constraint_element is empty",
            f"name the {kind.value} the program's DER sit behind",
        )
    if capacity_kw is not None and (not math.isfinite(capacity_kw) or capacity_kw < 0):
        raise InputError(f"program.capacity_kw {capacity_kw} is not >= 0", "give kW >= 0")
    program = Program(
        name=name.strip(), constraint_kind=kind.value, constraint_element=constraint_element,
        capacity_kw=capacity_kw, description=description,
    )  # fmt: skip
    _flush(session, f"program {name!r}", program)
    return program


def get_program(session: Session, program_id: int) -> Program:
    """The program with this id (``NotFoundError`` otherwise)."""
    program: Program = _get(session, Program, program_id, "program")
    return program


def find_program(session: Session, name: str) -> Program | None:
    """The program with this name."""
    return session.scalars(select(Program).where(Program.name == name)).one_or_none()


def list_programs(session: Session) -> list[Program]:
    """Every program, by id."""
    return list(session.scalars(select(Program).order_by(Program.id)))


def add_program_member(session: Session, program_id: int, der_id: int, *, actor: str) -> None:
    """Put a DER in a program (idempotent)."""
    who = _need_actor(actor)
    get_program(session, program_id)
    get_der(session, der_id)
    if session.get(ProgramMember, (program_id, der_id)) is None:
        member = ProgramMember(program_id=program_id, der_id=der_id, added_by=who)
        _flush(session, f"membership of DER {der_id} in program {program_id}", member)


def remove_program_member(session: Session, program_id: int, der_id: int) -> None:
    """Take a DER out of a program (``NotFoundError`` if it is not a member)."""
    member = session.get(ProgramMember, (program_id, der_id))
    if member is None:
        raise NotFoundError(f"DER {der_id} is not a member of program {program_id}")
    session.delete(member)
    _flush(session, f"membership of DER {der_id} in program {program_id}")


def program_ders(session: Session, program_id: int) -> list[Der]:
    """The DER in a program, by id."""
    get_program(session, program_id)
    return list(
        session.scalars(
            select(Der)
            .join(ProgramMember, ProgramMember.der_id == Der.id)
            .where(ProgramMember.program_id == program_id)
            .order_by(Der.id)
        )
    )


def programs_for_der(session: Session, der_id: int) -> list[Program]:
    """The programs a DER belongs to, by id."""
    return list(
        session.scalars(
            select(Program)
            .join(ProgramMember, ProgramMember.program_id == Program.id)
            .where(ProgramMember.der_id == der_id)
            .order_by(Program.id)
        )
    )


# ---- connection terms -------------------------------------------------------------------------


def row_to_terms(row: ConnectionTermsRow) -> ConnectionTerms:
    """The ``ConnectionTerms`` stored in a row."""
    return ConnectionTerms.model_validate(row.terms)


def _latest_row(session: Session, connection_id: str) -> Any:
    stmt = (
        select(ConnectionTermsRow)
        .where(ConnectionTermsRow.connection_id == connection_id)
        .order_by(ConnectionTermsRow.version.desc())
        .limit(1)
    )
    return session.scalars(stmt).one_or_none()


def _lock_connection(session: Session, connection_id: str) -> None:
    """Serialise writers of one connection's terms until the transaction ends.

    Two operators adding a version at once must not both number it N+1, and each new version
    must be compared with the one really in force. PostgreSQL: a transaction-scoped advisory lock
    keyed by the connection id (the next SELECT then sees the other writer's committed version).
    SQLite: take the database write lock before reading (a no-op write), waiting up to the busy
    timeout; if this transaction already read an older snapshot, SQLite refuses and we report a
    conflict to retry.
    """
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(connection_id.encode("utf-8")).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        return
    try:
        session.execute(text("UPDATE connection_terms SET id = id WHERE 1 = 0"))
    except OperationalError as exc:
        raise ConflictError(
            f"connection {connection_id!r}: the registry is busy with another change; retry "
            f"({str(exc.orig).strip()})"
        ) from exc


def add_terms(
    session: Session,
    terms: ConnectionTerms | dict[str, Any],
    *,
    actor: str,
    agreed: bool = False,
    note: str = "",
) -> ConnectionTermsRow:
    """Store a new version of a connection's terms; earlier versions stay as they are.

    The registry numbers versions: the first is 1, each later one the previous + 1.
    ``terms.version`` may be left at its default (1) or set to the expected next number; anything
    else is refused.

    A version that limits the connection further than the current one (per
    :meth:`ConnectionTerms.restricts_more_than`) is refused unless ``agreed=True``: the seed's
    stakeholders recommended that an agreed schedule "will not be updated to further limit customer
    system operations" [1]_. An agreed tightening is stored with ``agreed_override=True`` and the
    reasons in its note.

    Raises
    ------
    InputError
        ``terms`` is not valid ``ConnectionTerms`` or ``actor`` is empty.
    ConflictError
        The change further limits the connection and is not marked agreed (names each reason), or
        the version number clashes.
    """
    who = _need_actor(actor)
    if not isinstance(terms, ConnectionTerms):
        try:
            terms = ConnectionTerms.model_validate(terms)
        except ValidationError as exc:
            raise InputError(f"connection terms are not valid: {exc}") from exc
    cid = terms.connection_id
    _lock_connection(session, cid)
    latest = _latest_row(session, cid)
    next_version = 1 if latest is None else latest.version + 1
    if terms.version not in (1, next_version):
        raise ConflictError(
            f"terms for connection {cid!r} carry version {terms.version} but the next version "
            f"is {next_version}; leave version out and the registry numbers it"
        )
    stored = terms.model_copy(update={"version": next_version})
    reasons: list[str] = []
    if latest is not None:
        reasons = stored.restricts_more_than(row_to_terms(latest))
        if reasons and not agreed:
            raise ConflictError(
                f"new terms for connection {cid!r} (version {next_version}) further limit the "
                f"connection compared with version {latest.version}: "
                + "; ".join(reasons)
                + ". Agreed schedules are not tightened without the customer's agreement; if "
                "the customer agreed, mark the change as agreed (--agreed / ?agreed=true)"
            )
    payload = stored.model_dump(mode="json")
    try:
        json.dumps(payload, allow_nan=False)
    except ValueError as exc:
        raise InputError(
            f"terms for connection {cid!r} contain an infinite or NaN number",
            "leave a limit empty for 'unlimited' instead of giving infinity",
        ) from exc
    full_note = note
    if reasons:
        full_note = (note + "\n" if note else "") + "agreed tightening: " + "; ".join(reasons)
    row = ConnectionTermsRow(
        connection_id=cid, version=next_version, terms=payload, agreed_at=stored.agreed_at,
        created_by=who, agreed_override=bool(reasons), note=full_note,
    )  # fmt: skip
    _flush(session, f"terms version {next_version} of connection {cid!r}", row)
    return row


def current_terms(session: Session, connection_id: str) -> ConnectionTerms | None:
    """The newest version of a connection's terms (``None`` if it has none)."""
    row = _latest_row(session, connection_id)
    return None if row is None else row_to_terms(row)


def current_terms_row(session: Session, connection_id: str) -> ConnectionTermsRow | None:
    """The stored row of the newest terms version (with who/when metadata)."""
    row: ConnectionTermsRow | None = _latest_row(session, connection_id)
    return row


def terms_rows(session: Session, connection_id: str) -> list[ConnectionTermsRow]:
    """Every stored version of a connection's terms with its metadata, oldest first."""
    return list(
        session.scalars(
            select(ConnectionTermsRow)
            .where(ConnectionTermsRow.connection_id == connection_id)
            .order_by(ConnectionTermsRow.version)
        )
    )


def terms_history(session: Session, connection_id: str) -> list[ConnectionTerms]:
    """Every version of a connection's terms, oldest first."""
    return [row_to_terms(r) for r in terms_rows(session, connection_id)]


def terms_version(session: Session, connection_id: str, version: int) -> ConnectionTermsRow:
    """One stored version (``NotFoundError`` naming the versions that exist)."""
    row = session.scalars(
        select(ConnectionTermsRow).where(
            ConnectionTermsRow.connection_id == connection_id,
            ConnectionTermsRow.version == version,
        )
    ).one_or_none()
    if row is None:
        have = [r.version for r in terms_rows(session, connection_id)]
        raise NotFoundError(
            f"connection {connection_id!r} has no terms version {version}"
            + (f"; versions: {have}" if have else "; it has no terms at all")
        )
    return row


def connection_ids(session: Session) -> list[str]:
    """Every connection id that has terms, sorted."""
    stmt = select(ConnectionTermsRow.connection_id).distinct()
    return sorted(session.scalars(stmt))


def terms_for_der(session: Session, der: Der) -> ConnectionTerms | None:
    """The current terms of a DER's connection (``None`` without connection or terms)."""
    return None if der.connection_id is None else current_terms(session, der.connection_id)


def counts(session: Session) -> dict[str, int]:
    """Number of rows per registry object (for ``gridflex registry status``)."""
    out: dict[str, int] = {}
    for label, model in (
        ("aggregators", Aggregator), ("sites", Site), ("service_points", ServicePoint),
        ("ders", Der), ("programs", Program), ("terms_versions", ConnectionTermsRow),
    ):  # fmt: skip
        out[label] = int(session.scalar(select(func.count()).select_from(model)) or 0)
    return out


__all__: Sequence[str] = [
    "add_aggregator", "add_der", "add_program", "add_program_member", "add_service_point",
    "add_site", "add_terms", "allowed_transitions", "connection_ids", "counts", "current_terms",
    "current_terms_row", "ders_for_aggregator", "ders_for_connection", "find_aggregator_by_lfdi",
    "find_der_by_lfdi", "find_ders_by_sfdi", "find_program", "get_aggregator", "get_der",
    "get_program", "get_service_point", "get_site", "lifecycle_history", "list_aggregators",
    "list_ders", "list_programs", "list_service_points", "list_sites", "program_ders",
    "programs_for_der", "remove_program_member", "row_to_terms", "terms_for_der", "terms_history",
    "terms_rows", "terms_version", "transition", "update_der",
]  # fmt: skip
