"""Business rules of the 2030.5 server, called with a scope and a session; no HTTP here.

Every function that touches a device takes the caller's scope (:mod:`gridflex.sep2.identity`) and
checks it: a device certificate reaches only its own EndDevice, an aggregator certificate only the
EndDevices of its own DER plus its own aggregator EndDevice; anything else raises
``PermissionDeniedError`` (logged), which the edge maps to 403.

Transactions: functions flush but never commit; the caller owns the transaction (the registry's
convention, ``gridflex.derms.db``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import secrets
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from sqlalchemy import Engine, Select, Table, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from gridflex.derms import registry
from gridflex.derms.models import Aggregator, ConnectionTermsRow, Der, Program, ProgramMember
from gridflex.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from gridflex.sep2 import schedule
from gridflex.sep2.identity import (
    AggregatorScope,
    CertificateScope,
    ClientScope,
    DeviceScope,
    normalise_lfdi,
    sfdi_from_lfdi,
    sfdi_is_valid,
)
from gridflex.sep2.persistence import (
    SITE_PROGRAM_KEY,
    ControlResponse,
    DerControl,
    DerInfo,
    DerProgram,
    EndDevice,
    MirrorMeterReading,
    MirrorUsagePoint,
    Notification,
    Reading,
    Registration,
    Subscription,
)
from gridflex.terms import ConnectionTerms

log = logging.getLogger("gridflex.sep2.access")

SITE_PROGRAM_PRIMACY = 10
"""Primacy of the site program (agreed terms, the baseline). Registry programs (network
constraints) get :data:`CONSTRAINT_PROGRAM_PRIMACY`, a higher priority (lower number), so dynamic
events relax or tighten the baseline (seed 001, "Real-Time Dynamic Management": static
limited-export values as a baseline, real-time control relaxing them)."""
CONSTRAINT_PROGRAM_PRIMACY = 1
OPS_PROGRAM_KEY = "ops"
OPS_PROGRAM_PRIMACY = 5
"""The operations program: site-level operator events (not tied to a network-constraint
program) take precedence over the terms windows (primacy 5 < 10) without superseding them, so
when such an event ends or is cancelled the device is back on its published terms at once
(IEEE 2030.5-2018 clause 12.1.3.2: among programs, the lower primacy value wins)."""


def _mrid(*parts: object) -> str:
    """A stable 128-bit mRID (32 hex digits) from the given parts."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:32]


def new_mrid() -> str:
    return secrets.token_hex(16)


# ---- scope ------------------------------------------------------------------------------------
def resolve_scope(session: Session, lfdi: str) -> ClientScope:
    """The scope of a client certificate: aggregator, known device, or just a certificate."""
    key = normalise_lfdi(lfdi)
    sfdi = sfdi_from_lfdi(key)
    agg = registry.find_aggregator_by_lfdi(session, key)
    if agg is not None:
        return AggregatorScope(lfdi=key, sfdi=sfdi, aggregator_id=agg.id)
    der = registry.find_der_by_lfdi(session, key)
    if der is not None:
        return DeviceScope(lfdi=key, sfdi=sfdi, der_id=der.id)
    return CertificateScope(lfdi=key, sfdi=sfdi)


def _deny(scope: ClientScope, what: str) -> PermissionDeniedError:
    log.warning("403: certificate %s (%s) asked for %s", scope.lfdi, type(scope).__name__, what)
    return PermissionDeniedError(f"certificate {scope.lfdi} may not access {what}")


def may_access(scope: ClientScope, edev: EndDevice | Any) -> bool:
    """True when ``scope`` may read and write ``edev``.

    ``edev.aggregator_id`` is the registry's aggregator of the device's DER, copied at each
    registration (an aggregator reaches its DER's EndDevice whoever registered it first).
    """
    if isinstance(scope, AggregatorScope):
        return edev.aggregator_id == scope.aggregator_id
    return edev.lfdi == scope.lfdi


def visible_devices_stmt(scope: ClientScope) -> Select[EndDevice]:
    """SELECT of the EndDevices ``scope`` may see (ordered as the EndDeviceList is)."""
    stmt = select(EndDevice)
    if isinstance(scope, AggregatorScope):
        stmt = stmt.where(EndDevice.aggregator_id == scope.aggregator_id)
    else:
        stmt = stmt.where(EndDevice.lfdi == scope.lfdi)
    # IEEE 2030.5: EndDeviceList ordered by sFDI ascending (then id for stability)
    return stmt.order_by(EndDevice.sfdi, EndDevice.id)


def get_end_device(session: Session, scope: ClientScope, edev_id: int) -> EndDevice:
    """The EndDevice ``edev_id`` if ``scope`` may see it (NotFound and PermissionDenied else)."""
    edev = session.get(EndDevice, edev_id)
    if edev is None:
        raise NotFoundError(f"EndDevice {edev_id} does not exist")
    if not may_access(scope, edev):
        raise _deny(scope, f"EndDevice {edev_id}")
    if isinstance(scope, DeviceScope) and scope.der_id is not None and edev.der_id is None:
        # registered before the registry knew its certificate: link it to its DER now
        edev.der_id = scope.der_id
        session.flush()
    return edev


@dataclass(frozen=True)
class EndDeviceInput:
    """The fields of an EndDevice a client POSTs (already parsed from XML)."""

    lfdi: str | None
    sfdi: int
    device_category: str | None = None
    enabled: bool = True
    post_rate_s: int | None = None


def register_end_device(
    session: Session, scope: ClientScope, data: EndDeviceInput, now: dt.datetime
) -> tuple[EndDevice, bool]:
    """Register (or update) an EndDevice; returns it and whether it was created.

    A device certificate registers itself (the LFDI, when given, must be its own). An aggregator
    registers the EndDevices of DER it fronts: the LFDI must be a DER of this aggregator in the
    registry, or the aggregator's own LFDI (its aggregator EndDevice). The SFDI must carry a valid
    check digit and, when an LFDI is given, match it.
    """
    if not sfdi_is_valid(data.sfdi):
        raise InputError(
            f"EndDevice.sFDI {data.sfdi} has a wrong check digit",
            "send the SFDI of IEEE 2030.5-2018 clause 6.3.3 (36 bits + check digit)",
        )
    lfdi = normalise_lfdi(data.lfdi) if data.lfdi else None
    if lfdi is not None and sfdi_from_lfdi(lfdi) != data.sfdi:
        raise InputError(
            f"EndDevice.sFDI {data.sfdi} does not belong to lFDI {lfdi}",
            f"the SFDI of that LFDI is {sfdi_from_lfdi(lfdi)}",
        )
    der: Der | None = None
    aggregator_id: int | None = None
    is_aggregator = False
    if isinstance(scope, AggregatorScope):
        if lfdi is None:
            raise InputError(
                "EndDevice.lFDI is required when an aggregator registers a device",
                "send the device's lFDI",
            )
        aggregator_id = scope.aggregator_id
        if lfdi == scope.lfdi:
            is_aggregator = True
        else:
            der = registry.find_der_by_lfdi(session, lfdi)
            if der is None or der.aggregator_id != scope.aggregator_id:
                raise _deny(scope, f"registering EndDevice {lfdi} (not one of its DER)")
    else:
        if lfdi is None:
            lfdi = scope.lfdi
        if lfdi != scope.lfdi or data.sfdi != scope.sfdi:
            raise _deny(scope, f"registering EndDevice {lfdi} (a device registers only itself)")
        if isinstance(scope, DeviceScope) and scope.der_id is not None:
            der = session.get(Der, scope.der_id)
            # a DER behind an aggregator may also talk directly; its aggregator keeps access
            aggregator_id = der.aggregator_id if der is not None else None
    edev = session.scalars(select(EndDevice).where(EndDevice.lfdi == lfdi)).one_or_none()
    created = edev is None
    if edev is None:
        edev = EndDevice(lfdi=lfdi, sfdi=data.sfdi)
        session.add(edev)
    # (re-)registration is authorised above from the registry (the DER's aggregator, or the
    # device's own certificate), not from who registered the EndDevice first
    edev.der_id = der.id if der is not None else edev.der_id
    edev.aggregator_id = aggregator_id
    edev.is_aggregator = is_aggregator
    edev.device_category = data.device_category
    edev.enabled = data.enabled
    edev.post_rate_s = data.post_rate_s
    edev.changed_time = now
    session.flush()
    if created:
        session.add(Registration(end_device_id=edev.id, pin=_pin(lfdi), registered_at=now))
        session.flush()
    return edev, created


def _pin(lfdi: str) -> int:
    """A 6-digit registration PIN (5 digits + check digit, IEEE 2030.5-2018 clause 6.3.5)."""
    head = int(lfdi[-8:], 16) % 100_000
    return head * 10 + (10 - sum(int(d) for d in f"{head:05d}") % 10) % 10


def registration(session: Session, edev: EndDevice) -> Registration:
    reg = session.get(Registration, edev.id)
    if reg is None:
        raise NotFoundError(f"EndDevice {edev.id} has no Registration")
    return reg


# ---- programs and terms -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProgramRef:
    """The fields of a DERProgram row handlers need; rows never change once created, so these
    are cached per engine (no query for them on the hot path)."""

    id: int
    key: str
    program_id: int | None
    mrid: str
    description: str
    primacy: int


_PROGRAMS: weakref.WeakKeyDictionary[Any, dict[str, ProgramRef]] = weakref.WeakKeyDictionary()
"""Program rows per database, keyed by the engine's connection pool (shared by the engine and its
``execution_options`` copies, e.g. the autocommit one of the polling hot path)."""


def _program_ref(
    session: Session, key: str, program_id: int | None, description: str, primacy: int
) -> ProgramRef:
    engine = session.get_bind()
    cache = _PROGRAMS.setdefault(engine.pool, {}) if isinstance(engine, Engine) else {}
    ref = cache.get(key)
    if ref is not None:
        return ref
    row = session.scalars(select(DerProgram).where(DerProgram.key == key)).first()
    if row is None:
        row = DerProgram(
            key=key,
            program_id=program_id,
            mrid=_mrid("derp", key),
            description=description[:32],
            primacy=primacy,
        )
        session.add(row)
        session.flush()
    ref = ProgramRef(row.id, row.key, row.program_id, row.mrid, row.description, row.primacy)
    cache[key] = ref
    return ref


def _site_program(session: Session) -> ProgramRef:
    return _program_ref(session, SITE_PROGRAM_KEY, None, "connection terms", SITE_PROGRAM_PRIMACY)


def programs_for(session: Session, edev: EndDevice) -> list[ProgramRef]:
    """The DERPrograms an EndDevice sees, by priority: its registry programs (network
    constraints), the operations program (site-level operator events), its site program (its
    own terms).

    An aggregator's own EndDevice has no program (it controls nothing itself).
    """
    if edev.is_aggregator:
        return []
    out = [
        _site_program(session),
        _program_ref(session, OPS_PROGRAM_KEY, None, "operator events", OPS_PROGRAM_PRIMACY),
    ]
    if edev.der_id is not None:
        rows = session.execute(
            select(Program.id, Program.name)
            .join(ProgramMember, ProgramMember.program_id == Program.id)
            .where(ProgramMember.der_id == edev.der_id)
            .order_by(Program.id)
        ).all()
        out += [
            _program_ref(session, f"program-{pid}", pid, name, CONSTRAINT_PROGRAM_PRIMACY)
            for pid, name in rows
        ]
    return sorted(out, key=lambda p: (p.primacy, p.id))


def program_for(session: Session, edev: EndDevice, derp_id: int) -> ProgramRef:
    for prog in programs_for(session, edev):
        if prog.id == derp_id:
            return prog
    raise NotFoundError(f"DERProgram {derp_id} is not assigned to EndDevice {edev.id}")


def terms_for(session: Session, edev: EndDevice) -> tuple[ConnectionTerms, int] | None:
    """The registry's current terms of the device's connection, with the stored version."""
    if edev.der_id is None:
        return None
    der = session.get(Der, edev.der_id)
    if der is None or not der.connection_id:
        return None
    row = registry.current_terms_row(session, der.connection_id)
    if row is None:
        return None
    return registry.row_to_terms(row), row.version


def current_terms_version(session: Session, der_id: int) -> int | None:
    """The newest terms version of a DER's connection (one query; None without terms)."""
    return session.scalar(
        select(func.max(ConnectionTermsRow.version))
        .join(Der, Der.connection_id == ConnectionTermsRow.connection_id)
        .where(Der.id == der_id)
    )


@dataclass(frozen=True)
class DefaultLimits:
    """The fallback a device applies with no active event (DefaultDERControl), in W."""

    mrid: str
    version: int
    exp_lim_w: float | None
    imp_lim_w: float | None


def default_limits(session: Session, edev: EndDevice, prog: ProgramRef) -> DefaultLimits:
    """The DefaultDERControl of a program for a device: its terms' fallback limits.

    Export: ``ConnectionTerms.effective_fallback_export_kw``; import: ``fallback_import_kw`` when
    the terms give one. Without terms the device gets a zero-export default (the conservative
    choice for a DER the registry does not know terms for).
    """
    found = terms_for(session, edev)
    if found is None:
        return DefaultLimits(_mrid("dderc", edev.id, prog.id, 0), 0, 0.0, None)
    terms, version = found
    imp = terms.fallback_import_kw
    return DefaultLimits(
        mrid=_mrid("dderc", edev.id, prog.id, version),
        version=version,
        exp_lim_w=terms.effective_fallback_export_kw * 1000.0,
        imp_lim_w=None if imp is None else imp * 1000.0,
    )


def publish_terms_controls(session: Session, edev: EndDevice, now: dt.datetime) -> int:
    """Keep the device's site program stocked with controls from its terms; returns how many new.

    Controls cover at least :data:`schedule.MIN_COVER` ahead (topped up to
    :data:`schedule.PUBLISH_HORIZON` when less than :data:`schedule.REFILL_BELOW` is left). When the
    terms version changes, controls of the old version that have not started are cancelled, the
    running one is superseded now by the new version's first control.
    """
    if edev.is_aggregator or edev.der_id is None:
        return 0
    latest = current_terms_version(session, edev.der_id)
    if latest is None:
        return 0
    if (
        edev.published_terms_version == latest
        and edev.published_until is not None
        and edev.published_until - now >= schedule.REFILL_BELOW
    ):
        return 0  # the hot path: one indexed query, no terms parsing
    found = terms_for(session, edev)
    if found is None:
        return 0
    terms, version = found
    grid_now = schedule.floor_to_grid(now)
    site = _site_program(session)
    superseding_running: DerControl | None = None
    start = grid_now
    if edev.published_terms_version == version and edev.published_until is not None:
        if edev.published_until - now >= schedule.REFILL_BELOW:
            return 0
        start = max(edev.published_until, grid_now)
    elif edev.published_terms_version is not None:
        old = session.scalars(
            select(DerControl).where(
                DerControl.end_device_id == edev.id,
                DerControl.der_program_id == site.id,
                DerControl.source == "terms",
                DerControl.cancelled_at.is_(None),
                DerControl.superseded_at.is_(None),
            )
        ).all()
        for c in old:
            end = c.start + dt.timedelta(seconds=c.duration_s)
            if c.start > now:
                c.cancelled_at = now
                c.version += 1
            elif end > now:
                superseding_running = c
        start = now.replace(microsecond=0)
    end = grid_now + schedule.PUBLISH_HORIZON
    windows = schedule.limit_windows(terms, schedule.floor_to_grid(start), end)
    created = []
    for i, w in enumerate(windows):
        w_start = start if i == 0 else w.start
        ctrl = DerControl(
            end_device_id=edev.id,
            der_program_id=site.id,
            mrid=new_mrid(),
            source="terms",
            terms_version=version,
            description=f"terms v{version}"[:32],
            creation_time=now,
            start=w_start,
            duration_s=int((w.end - w_start).total_seconds()),
            exp_lim_w=w.export_limit_kw * 1000.0,
            imp_lim_w=None if w.import_limit_kw is None else w.import_limit_kw * 1000.0,
        )
        if ctrl.duration_s > 0:
            session.add(ctrl)
            created.append(ctrl)
    session.flush()
    if superseding_running is not None and created:
        superseding_running.superseded_at = created[0].start
        superseding_running.superseded_by_id = created[0].id
        superseding_running.version += 1
    edev.published_until = end
    edev.published_terms_version = version
    session.flush()
    if created:
        _notify(session, edev, f"/edev/{edev.id}/derp/{site.id}/derc")
    return len(created)


# ---- controls -----------------------------------------------------------------------------------
_CONTROL_FIELDS = ("exp_lim_w", "imp_lim_w", "gen_lim_w", "load_lim_w", "connect", "energize")


def create_control(
    session: Session,
    *,
    end_device_id: int,
    der_program_id: int,
    start: dt.datetime,
    duration_s: int,
    now: dt.datetime,
    exp_lim_w: float | None = None,
    imp_lim_w: float | None = None,
    gen_lim_w: float | None = None,
    load_lim_w: float | None = None,
    connect: bool | None = None,
    energize: bool | None = None,
    randomize_start_s: int | None = None,
    randomize_duration_s: int | None = None,
    description: str = "",
) -> DerControl:
    """Publish an operator DERControl; overlapping older events of the same program and the same
    set of controls are marked superseded from the new event's start (IEEE 2030.5-2018 clause
    12.1.3.1)."""
    if not 0 < duration_s <= MAX_CONTROL_DURATION_S:
        raise InputError(
            f"DERControl duration {duration_s} s is outside 1..{MAX_CONTROL_DURATION_S} s",
            "publish long periods as several controls (lists keep a control until its end)",
        )
    for name, value in (
        ("randomize_start_s", randomize_start_s),
        ("randomize_duration_s", randomize_duration_s),
    ):
        if value is not None and abs(value) > 3600:
            raise InputError(
                f"DERControl {name} = {value} s is outside -3600..3600",
                "IEEE 2030.5 OneHourRangeType: at most one hour either way",
            )
    if start.tzinfo is None:
        raise InputError("DERControl start has no time zone", "give an aware UTC datetime")
    values = {
        "exp_lim_w": exp_lim_w,
        "imp_lim_w": imp_lim_w,
        "gen_lim_w": gen_lim_w,
        "load_lim_w": load_lim_w,
        "connect": connect,
        "energize": energize,
    }
    kinds = {k for k, v in values.items() if v is not None}
    if not kinds:
        raise InputError("DERControl sets no control", "give at least one opMod value")
    for k in ("exp_lim_w", "imp_lim_w", "gen_lim_w", "load_lim_w"):
        v = values[k]
        if v is not None and (not isinstance(v, int | float) or v < 0):
            raise InputError(f"DERControl {k} = {v} is not >= 0 W", "give a non-negative limit")
    edev = session.get(EndDevice, end_device_id)
    if edev is None:
        raise NotFoundError(f"EndDevice {end_device_id} does not exist")
    program_for(session, edev, der_program_id)
    ctrl = DerControl(
        end_device_id=end_device_id,
        der_program_id=der_program_id,
        mrid=new_mrid(),
        source="operator",
        description=description[:32],
        creation_time=now,
        start=start,
        duration_s=duration_s,
        randomize_start_s=randomize_start_s,
        randomize_duration_s=randomize_duration_s,
        **values,
    )
    session.add(ctrl)
    session.flush()
    end = start + dt.timedelta(seconds=duration_s)
    for old in session.scalars(
        select(DerControl).where(
            DerControl.end_device_id == end_device_id,
            DerControl.der_program_id == der_program_id,
            DerControl.id != ctrl.id,
            DerControl.cancelled_at.is_(None),
            DerControl.superseded_at.is_(None),
        )
    ):
        old_end = old.start + dt.timedelta(seconds=old.duration_s)
        old_kinds = {k for k in _CONTROL_FIELDS if getattr(old, k) is not None}
        if old_kinds == kinds and old.start < end and start < old_end:
            old.superseded_at = max(start, now) if old.start >= start else start
            old.superseded_by_id = ctrl.id
            old.version += 1
    session.flush()
    _notify(session, edev, f"/edev/{edev.id}/derp/{der_program_id}/derc")
    return ctrl


def cancel_control(session: Session, control_id: int, now: dt.datetime) -> DerControl:
    """Cancel a control now; it stays listed, Cancelled, until its original end."""
    ctrl = session.get(DerControl, control_id)
    if ctrl is None:
        raise NotFoundError(f"DERControl {control_id} does not exist")
    if ctrl.cancelled_at is not None:
        raise ConflictError(f"DERControl {control_id} was already cancelled at {ctrl.cancelled_at}")
    ctrl.cancelled_at = now
    ctrl.version += 1
    session.flush()
    edev = session.get(EndDevice, ctrl.end_device_id)
    if edev is not None:
        _notify(session, edev, f"/edev/{edev.id}/derp/{ctrl.der_program_id}/derc")
    return ctrl


MAX_CONTROL_DURATION_S = 7 * 86400
"""Longest DERControl accepted; list queries look back this far plus the publication horizon."""


def listed_controls_stmt(
    edev_id: int, derp_id: int, now: dt.datetime, *, active_only: bool = False
) -> Select[DerControl]:
    """Controls still listed at ``now`` (not yet past their original end), in list order.

    IEEE 2030.5-2018 clause 12.1.3: DERControlList is ordered by interval.start ascending, then
    creationTime descending, then mRID descending. Ended controls are dropped; cancelled and
    superseded ones stay until their original end (the standard's retention rule).
    """
    # end > now  <=>  start > now - duration ; evaluated portably in Python-side filtering is
    # slower, so store-side we bound by the longest control (48 h) and filter exactly afterwards.
    stmt = select(DerControl).where(
        DerControl.end_device_id == edev_id,
        DerControl.der_program_id == derp_id,
        DerControl.start
        > now - schedule.PUBLISH_HORIZON - dt.timedelta(seconds=MAX_CONTROL_DURATION_S),
    )
    if active_only:
        stmt = stmt.where(
            DerControl.start <= now,
            DerControl.cancelled_at.is_(None),
        )
    return stmt.order_by(DerControl.start, DerControl.creation_time.desc(), DerControl.mrid.desc())


class _Scheduled(Protocol):
    """What :func:`still_listed` reads of a control (a ``DerControl`` or a plain row)."""

    @property
    def start(self) -> dt.datetime: ...
    @property
    def duration_s(self) -> int: ...
    @property
    def cancelled_at(self) -> dt.datetime | None: ...
    @property
    def superseded_at(self) -> dt.datetime | None: ...


C = TypeVar("C", bound=_Scheduled)


def still_listed(rows: Iterable[C], now: dt.datetime, *, active_only: bool = False) -> list[C]:
    """The controls (entities or plain rows) of ``rows`` a DERControlList shows at ``now``: not
    yet ended; with ``active_only``, only those whose EventStatus is active."""
    out = []
    for c in rows:
        if c.start + dt.timedelta(seconds=c.duration_s) <= now:
            continue
        if active_only:
            status, _, _ = schedule.event_status(
                c.start,
                c.duration_s,
                now,
                cancelled_at=c.cancelled_at,
                superseded_at=c.superseded_at,
            )
            if status != schedule.ACTIVE:
                continue
        out.append(c)
    return out


def listed_controls(
    session: Session,
    edev: EndDevice,
    prog: ProgramRef,
    now: dt.datetime,
    *,
    active_only: bool = False,
) -> list[DerControl]:
    rows = session.scalars(listed_controls_stmt(edev.id, prog.id, now, active_only=active_only))
    return still_listed(rows, now, active_only=active_only)


def get_control(session: Session, edev: EndDevice, prog: ProgramRef, derc_id: int) -> DerControl:
    ctrl = session.get(DerControl, derc_id)
    if ctrl is None or ctrl.end_device_id != edev.id or ctrl.der_program_id != prog.id:
        raise NotFoundError(f"DERControl {derc_id} not found in this program")
    return ctrl


# ---- responses --------------------------------------------------------------------------------
def record_response(
    session: Session,
    scope: ClientScope,
    *,
    end_device_lfdi: str,
    subject: str,
    status: int | None,
    created_time: dt.datetime | None,
    now: dt.datetime,
) -> ControlResponse:
    """Record a client Response to a DERControl (subject = the control's mRID)."""
    lfdi = normalise_lfdi(end_device_lfdi)
    edev = session.scalars(select(EndDevice).where(EndDevice.lfdi == lfdi)).one_or_none()
    if edev is None:
        raise NotFoundError(f"no EndDevice with lFDI {lfdi} is registered")
    if not may_access(scope, edev):
        raise _deny(scope, f"responding for EndDevice {edev.id}")
    ctrl = session.scalars(
        select(DerControl).where(
            func.lower(DerControl.mrid) == subject.lower(), DerControl.end_device_id == edev.id
        )
    ).one_or_none()
    if ctrl is None:
        raise NotFoundError(f"no DERControl with mRID {subject} for EndDevice {edev.id}")
    resp = ControlResponse(
        der_control_id=ctrl.id,
        end_device_id=edev.id,
        end_device_lfdi=lfdi,
        subject=subject.lower(),
        status=status,
        created_time=created_time,
        received_at=now,
    )
    session.add(resp)
    session.flush()
    return resp


def responses_for_control(session: Session, control_id: int) -> list[ControlResponse]:
    return list(
        session.scalars(
            select(ControlResponse)
            .where(ControlResponse.der_control_id == control_id)
            .order_by(ControlResponse.id)
        )
    )


# ---- DER information written by clients ---------------------------------------------------------
DER_INFO_KINDS = ("dercap", "derg", "ders", "dera")


def put_der_info(session: Session, edev: EndDevice, kind: str, xml: str, now: dt.datetime) -> None:
    info = session.scalars(
        select(DerInfo).where(DerInfo.end_device_id == edev.id, DerInfo.kind == kind)
    ).one_or_none()
    if info is None:
        session.add(DerInfo(end_device_id=edev.id, kind=kind, xml=xml, updated_at=now))
    else:
        info.xml = xml
        info.updated_at = now
    session.flush()


def get_der_info(session: Session, edev: EndDevice, kind: str) -> DerInfo | None:
    return session.scalars(
        select(DerInfo).where(DerInfo.end_device_id == edev.id, DerInfo.kind == kind)
    ).one_or_none()


# ---- mirror usage points and readings -----------------------------------------------------------
@dataclass(frozen=True)
class ReadingInput:
    time_start: dt.datetime
    duration_s: int | None
    value: int
    quality_flags: str | None = None


@dataclass(frozen=True)
class MeterReadingInput:
    mrid: str
    description: str
    uom: int | None
    kind: int | None
    flow_direction: int | None
    phase: int | None
    data_qualifier: int | None
    power_of_ten: int
    interval_length_s: int | None
    readings: tuple[ReadingInput, ...]


def upsert_mirror_usage_point(
    session: Session,
    scope: ClientScope,
    *,
    device_lfdi: str,
    mrid: str,
    description: str,
    role_flags: str,
    service_category: int,
    status: int,
    post_rate_s: int | None,
    meter_readings: tuple[MeterReadingInput, ...],
    now: dt.datetime,
) -> tuple[MirrorUsagePoint, bool]:
    """Create or update a MirrorUsagePoint for a device in scope and store its readings."""
    lfdi = normalise_lfdi(device_lfdi)
    edev = session.scalars(select(EndDevice).where(EndDevice.lfdi == lfdi)).one_or_none()
    if edev is None:
        raise NotFoundError(
            f"MirrorUsagePoint.deviceLFDI {lfdi} is not a registered EndDevice; register it first"
        )
    if not may_access(scope, edev):
        raise _deny(scope, f"MirrorUsagePoint for EndDevice {edev.id}")
    mup = session.scalars(
        select(MirrorUsagePoint).where(
            MirrorUsagePoint.poster_lfdi == scope.lfdi, MirrorUsagePoint.mrid == mrid.lower()
        )
    ).one_or_none()
    created = mup is None
    if mup is None:
        mup = MirrorUsagePoint(poster_lfdi=scope.lfdi, mrid=mrid.lower(), created_at=now)
        session.add(mup)
    elif mup.end_device_id != edev.id:
        raise ConflictError(f"MirrorUsagePoint mRID {mrid} already mirrors another device")
    mup.end_device_id = edev.id
    mup.der_id = edev.der_id
    mup.description = description[:32]
    mup.role_flags = role_flags
    mup.service_category = service_category
    mup.status = status
    mup.post_rate_s = post_rate_s
    session.flush()
    for mmr in meter_readings:
        add_meter_reading(session, mup, mmr, now)
    return mup, created


def get_mirror_usage_point(session: Session, scope: ClientScope, mup_id: int) -> MirrorUsagePoint:
    found = session.execute(
        select(MirrorUsagePoint, EndDevice)
        .join(EndDevice, EndDevice.id == MirrorUsagePoint.end_device_id)
        .where(MirrorUsagePoint.id == mup_id)
    ).first()
    if found is None:
        raise NotFoundError(f"MirrorUsagePoint {mup_id} does not exist")
    mup, edev = found
    if not may_access(scope, edev):
        raise _deny(scope, f"MirrorUsagePoint {mup_id}")
    return mup


def visible_mups_stmt(scope: ClientScope) -> Select[MirrorUsagePoint]:
    stmt = select(MirrorUsagePoint).join(EndDevice, EndDevice.id == MirrorUsagePoint.end_device_id)
    if isinstance(scope, AggregatorScope):
        stmt = stmt.where(EndDevice.aggregator_id == scope.aggregator_id)
    else:
        stmt = stmt.where(EndDevice.lfdi == scope.lfdi)
    return stmt.order_by(MirrorUsagePoint.id)


@dataclass(frozen=True, slots=True)
class MeterReadingRef:
    """What storing readings needs of a MirrorMeterReading; cached per worker so a device's
    routine 5-minute POST skips loading it (see :meth:`accepts`)."""

    id: int
    power_of_ten: int
    description: str
    uom: int | None
    kind: int | None
    flow_direction: int | None
    phase: int | None
    data_qualifier: int | None
    interval_length_s: int | None

    def accepts(self, data: MeterReadingInput) -> bool:
        """True when ``data`` changes none of the stored metadata (only adds readings)."""
        if data.power_of_ten != self.power_of_ten:
            return False
        if data.description and data.description[:32] != self.description:
            return False
        for name in ("uom", "kind", "flow_direction", "phase", "data_qualifier"):
            value = getattr(data, name)
            if value is not None and value != getattr(self, name):
                return False
        return data.interval_length_s is None or data.interval_length_s == self.interval_length_s


def add_meter_reading(
    session: Session, mup: MirrorUsagePoint, data: MeterReadingInput, now: dt.datetime
) -> MeterReadingRef:
    """Create or update a MirrorMeterReading and store its readings, one row per interval start
    (a re-posted interval replaces the stored value)."""
    find = select(MirrorMeterReading).where(
        MirrorMeterReading.usage_point_id == mup.id,
        MirrorMeterReading.mrid == data.mrid.lower(),
    )
    mmr = session.scalars(find).one_or_none()
    if mmr is None:
        # two connections of one aggregator may post a new meter reading at once: insert-or-keep
        dialect = session.get_bind().dialect.name
        insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert_fn(MirrorMeterReading)
            .values(usage_point_id=mup.id, mrid=data.mrid.lower(), description="", power_of_ten=0)
            .on_conflict_do_nothing(index_elements=["usage_point_id", "mrid"])
        )
        mmr = session.scalars(find).one()
    for name in ("uom", "kind", "flow_direction", "phase", "data_qualifier", "interval_length_s"):
        value = getattr(data, name)
        if value is not None:
            setattr(mmr, name, value)
    mmr.description = data.description[:32] or mmr.description or ""
    mmr.power_of_ten = data.power_of_ten
    session.flush()
    upsert_readings(session, mmr.id, mmr.power_of_ten, data.readings, now)
    return MeterReadingRef(
        mmr.id, mmr.power_of_ten, mmr.description, mmr.uom, mmr.kind, mmr.flow_direction,
        mmr.phase, mmr.data_qualifier, mmr.interval_length_s,
    )  # fmt: skip


def reading_rows(
    meter_reading_id: int,
    power_of_ten: int,
    readings: tuple[ReadingInput, ...],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Parameter rows of :func:`reading_upsert` for one MirrorMeterReading's readings (a repeated
    start inside one document: the last one wins)."""
    scale = 10.0**power_of_ten
    rows = {
        r.time_start: {
            "meter_reading_id": meter_reading_id,
            "time_start": r.time_start,
            "duration_s": r.duration_s,
            "value": r.value,
            "value_si": r.value * scale,
            "quality_flags": r.quality_flags,
            "received_at": now,
        }
        for r in readings
    }
    return list(rows.values())


def reading_upsert(session: Session) -> Any:
    """The compiled-once reading upsert of the session's database."""
    return _reading_upsert(session.get_bind().dialect.name)


def upsert_readings(
    session: Session,
    meter_reading_id: int,
    power_of_ten: int,
    readings: tuple[ReadingInput, ...],
    now: dt.datetime,
) -> int:
    """Store readings of one MirrorMeterReading; returns how many the document carried."""
    params = reading_rows(meter_reading_id, power_of_ten, readings, now)
    if params:
        session.execute(reading_upsert(session), params[0] if len(params) == 1 else params)
    return len(params)


def meter_reading_ref(session: Session, mup_id: int, mrid: str) -> MeterReadingRef | None:
    """The stored metadata of a MirrorMeterReading as a :class:`MeterReadingRef` (one query, no
    entity); None when the MirrorUsagePoint has no reading with this mRID yet."""
    m = MirrorMeterReading
    row = session.execute(
        select(
            m.id, m.power_of_ten, m.description, m.uom, m.kind, m.flow_direction, m.phase,
            m.data_qualifier, m.interval_length_s,
        ).where(m.usage_point_id == mup_id, m.mrid == mrid.lower())
    ).first()  # fmt: skip
    return None if row is None else MeterReadingRef(*row)


def mirror_usage_point_owner(session: Session, mup_id: int) -> Any:
    """(id, end_device_id, lfdi, aggregator_id) of a MirrorUsagePoint and its EndDevice, in one
    query without loading entities (the hot path of telemetry POSTs); None when absent."""
    return session.execute(
        select(
            MirrorUsagePoint.id,
            MirrorUsagePoint.end_device_id,
            EndDevice.lfdi,
            EndDevice.aggregator_id,
        )
        .join(EndDevice, EndDevice.id == MirrorUsagePoint.end_device_id)
        .where(MirrorUsagePoint.id == mup_id)
    ).first()


class MupOwner(NamedTuple):
    """What :func:`mirror_usage_point_owner` reads, as a plain tuple (bulk loads keep many)."""

    id: int
    end_device_id: int
    lfdi: str
    aggregator_id: int | None


def all_scopes(session: Session, limit: int) -> list[tuple[str, ClientScope]]:
    """(LFDI, scope) of every certificate the registry knows, as :func:`resolve_scope` gives it
    (an aggregator's LFDI is an aggregator, before a DER with the same LFDI), at most ``limit``
    DER ones: two queries for a whole fleet."""
    out: dict[str, ClientScope] = {}
    ders = select(Der.id, Der.lfdi).where(Der.lfdi.is_not(None)).order_by(Der.id).limit(limit)
    for der_id, lfdi in session.execute(ders):
        if lfdi:
            out[lfdi] = DeviceScope(lfdi=lfdi, sfdi=sfdi_from_lfdi(lfdi), der_id=der_id)
    aggs = select(Aggregator.id, Aggregator.lfdi).where(Aggregator.lfdi.is_not(None))
    for agg_id, lfdi in session.execute(aggs):
        if lfdi:
            out[lfdi] = AggregatorScope(lfdi=lfdi, sfdi=sfdi_from_lfdi(lfdi), aggregator_id=agg_id)
    return list(out.items())


def all_mup_owners(session: Session, limit: int) -> list[MupOwner]:
    """:func:`mirror_usage_point_owner` of every MirrorUsagePoint (at most ``limit``), one query."""
    rows = session.execute(
        select(
            MirrorUsagePoint.id,
            MirrorUsagePoint.end_device_id,
            EndDevice.lfdi,
            EndDevice.aggregator_id,
        )
        .join(EndDevice, EndDevice.id == MirrorUsagePoint.end_device_id)
        .order_by(MirrorUsagePoint.id)
        .limit(limit)
    )
    return [MupOwner(*r) for r in rows]


def all_meter_reading_refs(session: Session, limit: int) -> list[tuple[int, str, MeterReadingRef]]:
    """(MirrorUsagePoint id, mRID, :func:`meter_reading_ref`) of every MirrorMeterReading (at
    most ``limit``), one query."""
    m = MirrorMeterReading
    rows = session.execute(
        select(
            m.usage_point_id, m.mrid, m.id, m.power_of_ten, m.description, m.uom, m.kind,
            m.flow_direction, m.phase, m.data_qualifier, m.interval_length_s,
        ).order_by(m.id).limit(limit)
    )  # fmt: skip
    return [(r[0], r[1], MeterReadingRef(*r[2:])) for r in rows]


def device_snapshot(session: Session, edev_id: int, derp_id: int | None = None) -> Any:
    """The EndDevice fields the DERControlList hot path needs plus its newest terms version, in
    one query without loading entities; None when absent.

    With ``derp_id`` the row also carries the program's control generation for this device:
    ``n_controls``, ``max_control_id`` and ``sum_control_version``. Every write to a device's
    controls changes one of them (a new control raises the count and the largest id, a removed one
    lowers the count, a cancellation or supersession increments the row's ``version``), so a
    rendered DERControlList cached with these values is still the stored state when they match.
    """
    params = {"edev_id": edev_id, "derp_id": derp_id}
    # Core on the session's connection: the statement is built once and its compiled form cached,
    # without the ORM's per-execution compile state (the polling hot path runs this every time)
    return session.connection().execute(_snapshot_stmt(derp_id is not None), params).first()


@functools.cache
def _snapshot_stmt(with_generation: bool) -> Any:
    terms_version = (
        select(func.max(ConnectionTermsRow.version))
        .join(Der, Der.connection_id == ConnectionTermsRow.connection_id)
        .where(Der.id == EndDevice.der_id)
        .scalar_subquery()
    )
    cols: list[Any] = [
        EndDevice.id,
        EndDevice.lfdi,
        EndDevice.aggregator_id,
        EndDevice.is_aggregator,
        EndDevice.der_id,
        EndDevice.published_until,
        EndDevice.published_terms_version,
        terms_version.label("terms_version"),
    ]
    if with_generation:
        mine = (
            DerControl.end_device_id == EndDevice.id,
            DerControl.der_program_id == bindparam("derp_id"),
        )
        for label, agg in (
            ("n_controls", func.count(DerControl.id)),
            ("max_control_id", func.max(DerControl.id)),
            ("sum_control_version", func.sum(DerControl.version)),
        ):
            cols.append(select(agg).where(*mine).scalar_subquery().label(label))
    return select(*cols).where(EndDevice.id == bindparam("edev_id"))


def polled_program_keys(session: Session) -> dict[int, str]:
    """Ids → keys of the site and operations programs, the ones field devices poll (read only:
    none when no device has been served yet; program rows never change once created)."""
    rows = session.execute(
        select(DerProgram.id, DerProgram.key).where(
            DerProgram.key.in_([SITE_PROGRAM_KEY, OPS_PROGRAM_KEY])
        )
    )
    return {int(r.id): str(r.key) for r in rows}


def all_device_lists(
    session: Session, derp_ids: list[int], now: dt.datetime, max_devices: int, max_rows: int
) -> tuple[dict[int, Any], dict[tuple[int, int], list[Any]]]:
    """The DERControlList inputs of many devices in two queries: :func:`device_snapshot`
    (without the generation) of at most ``max_devices`` EndDevices, and their controls in the
    programs ``derp_ids`` as :func:`listed_control_rows` lists them (before the end-time filter,
    which the caller applies at its own ``now``), at most ``max_rows`` rows. Lists come back
    only for devices whose every row was read (an empty list: no control in that program)."""
    snaps = {
        r.id: r for r in session.connection().execute(_all_snapshots_stmt(), {"limit": max_devices})
    }
    if not snaps or not derp_ids:
        return snaps, {}
    table = cast(Table, DerControl.__table__)
    c = table.c
    since = now - schedule.PUBLISH_HORIZON - dt.timedelta(seconds=MAX_CONTROL_DURATION_S)
    rows = (
        session.connection()
        .execute(
            select(*table.columns)
            .where(c.der_program_id.in_(derp_ids), c.start > since, c.end_device_id <= max(snaps))
            .order_by(
                c.end_device_id, c.der_program_id, c.start, c.creation_time.desc(), c.mrid.desc()
            )
            .limit(max_rows + 1)
        )
        .all()
    )
    covered_below = None  # devices with a smaller id have all their rows here
    if len(rows) > max_rows:
        covered_below = rows[max_rows].end_device_id
        rows = rows[:max_rows]
    lists: dict[tuple[int, int], list[Any]] = {}
    for edev_id, snap in snaps.items():
        if snap.is_aggregator or (covered_below is not None and edev_id >= covered_below):
            continue
        for derp_id in derp_ids:
            lists[(edev_id, derp_id)] = []
    for r in rows:
        group = lists.get((r.end_device_id, r.der_program_id))
        if group is not None:
            group.append(r)
    return snaps, lists


@functools.cache
def _all_snapshots_stmt() -> Any:
    base = _snapshot_stmt(False)
    cols = list(base.selected_columns)
    return select(*cols).order_by(EndDevice.id).limit(bindparam("limit"))


def needs_publish(snapshot: Any, now: dt.datetime) -> bool:
    """True when the terms controls of a device (a :func:`device_snapshot`) must be topped up
    or republished for a new terms version."""
    if snapshot.terms_version is None:
        return False
    if snapshot.published_terms_version != snapshot.terms_version:
        return True
    until = snapshot.published_until
    return until is None or until - now < schedule.REFILL_BELOW


def cached_programs(session: Session) -> list[ProgramRef]:
    """The site and operations programs if this worker already knows their rows (no query)."""
    engine = session.get_bind()
    return known_programs(engine) if isinstance(engine, Engine) else []


def known_programs(engine: Engine) -> list[ProgramRef]:
    """:func:`cached_programs` of an engine."""
    cache = _PROGRAMS.get(engine.pool)
    if not cache:
        return []
    return [r for k in (SITE_PROGRAM_KEY, OPS_PROGRAM_KEY) if (r := cache.get(k)) is not None]


def listed_control_rows(
    session: Session, edev_id: int, derp_id: int, now: dt.datetime, *, active_only: bool = False
) -> list[Any]:
    """:func:`listed_controls` as plain rows (no entities): the polling hot path. A Core
    statement built once (its compiled form cached) run on the session's connection, without
    the ORM's per-execution compile state; the same rows as :func:`listed_controls_stmt`."""
    params = {
        "edev_id": edev_id,
        "derp_id": derp_id,
        "since": now - schedule.PUBLISH_HORIZON - dt.timedelta(seconds=MAX_CONTROL_DURATION_S),
        "now": now,
    }
    rows = session.connection().execute(_listed_rows_stmt(active_only), params).all()
    return still_listed(rows, now, active_only=active_only)


@functools.cache
def _listed_rows_stmt(active_only: bool) -> Any:
    """:func:`listed_controls_stmt` over the table's columns with bound parameters ``edev_id``,
    ``derp_id``, ``since`` (the earliest start still possibly listed) and ``now``."""
    table = cast(Table, DerControl.__table__)
    c = table.c
    stmt = select(*table.columns).where(
        c.end_device_id == bindparam("edev_id"),
        c.der_program_id == bindparam("derp_id"),
        c.start > bindparam("since", type_=DerControl.start.type),
    )
    if active_only:
        stmt = stmt.where(
            c.start <= bindparam("now", type_=DerControl.start.type), c.cancelled_at.is_(None)
        )
    return stmt.order_by(c.start, c.creation_time.desc(), c.mrid.desc())


@functools.cache
def _reading_upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (meter reading, start) DO UPDATE, built once per dialect so its
    compiled form is cached (a re-posted interval replaces the stored value: clients re-send
    after a lost answer)."""
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    # the Table, not the mapped class: a Core insert skips the ORM's bulk-persistence layer
    stmt = insert_fn(cast(Table, Reading.__table__))
    return stmt.on_conflict_do_update(
        index_elements=["meter_reading_id", "time_start"],
        set_={
            "value": stmt.excluded.value,
            "value_si": stmt.excluded.value_si,
            "duration_s": stmt.excluded.duration_s,
            "quality_flags": stmt.excluded.quality_flags,
            "received_at": stmt.excluded.received_at,
        },
    )


def readings_for_der(
    session: Session, der_id: int
) -> list[tuple[str, int | None, dt.datetime, float]]:
    """Telemetry stored for a registry DER: (meter reading mRID, uom, start, value in SI units)."""
    rows = session.execute(
        select(
            MirrorMeterReading.mrid, MirrorMeterReading.uom, Reading.time_start, Reading.value_si
        )
        .join(Reading, Reading.meter_reading_id == MirrorMeterReading.id)
        .join(MirrorUsagePoint, MirrorUsagePoint.id == MirrorMeterReading.usage_point_id)
        .where(MirrorUsagePoint.der_id == der_id)
        .order_by(Reading.time_start)
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


# ---- subscriptions ------------------------------------------------------------------------------
def add_subscription(
    session: Session,
    scope: ClientScope,
    edev: EndDevice,
    *,
    subscribed_resource: str,
    notification_uri: str,
    limit: int,
    encoding: int,
    now: dt.datetime,
) -> Subscription:
    """Subscribe to a resource the caller may read (the path must be under a visible device)."""
    if not notification_uri.lower().startswith("https://"):
        raise InputError(
            f"Subscription.notificationURI {notification_uri!r} is not https",
            "give an https:// URI (IEEE 2030.5 notifications go over TLS)",
        )
    parts = subscribed_resource.split("/")
    if len(parts) >= 3 and parts[1] == "edev":
        try:
            target_id = int(parts[2])
        except ValueError as exc:
            raise InputError(
                f"subscribedResource {subscribed_resource!r} is not a resource", ""
            ) from exc
        get_end_device(session, scope, target_id)
    elif subscribed_resource not in ("/edev", "/mup"):
        raise InputError(
            f"subscribedResource {subscribed_resource!r} cannot be subscribed to",
            "subscribe to an /edev/... list (DERControlList, DefaultDERControl, EndDeviceList)",
        )
    sub = Subscription(
        end_device_id=edev.id,
        subscribed_resource=subscribed_resource,
        notification_uri=notification_uri,
        limit=limit,
        encoding=encoding,
        created_at=now,
    )
    session.add(sub)
    session.flush()
    return sub


def _notify(session: Session, edev: EndDevice, href: str) -> None:
    """Queue a Notification for every subscription to ``href``."""
    subs = session.scalars(select(Subscription).where(Subscription.subscribed_resource == href))
    for sub in subs:
        session.add(Notification(subscription_id=sub.id, resource_href=href))
    session.flush()


def pending_notifications(session: Session, limit: int = 100) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.delivered_at.is_(None), Notification.attempts < 5)
            .order_by(Notification.id)
            .limit(limit)
            # several worker processes run notifiers: each row goes to one of them
            .with_for_update(skip_locked=True)
        )
    )
