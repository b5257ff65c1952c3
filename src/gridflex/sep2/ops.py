"""Operator REST API of the 2030.5 server (mounted at ``/ops``): publish and cancel DERControls,
read their status and the Responses clients sent, read telemetry.

Authentication and roles are the registry's (``gridflex.derms.api.current_scope``: an API key as
``Authorization: Bearer`` or ``X-API-Key``). Operators may publish and cancel; read-only users
read everything; aggregator users read only their own DER. Limits are in kW here (gridflex's
convention) and published in W on the wire (CSIP-AUS ``opModExpLimW`` etc.).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gridflex import __version__
from gridflex.derms import registry
from gridflex.derms.api import current_scope
from gridflex.derms.auth import Scope
from gridflex.derms.db import session_factory
from gridflex.errors import (
    ConflictError,
    GridflexError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
)
from gridflex.sep2 import manager, schedule
from gridflex.sep2.persistence import DerControl, EndDevice

ScopeDep = Annotated[Scope, Depends(current_scope)]
STATUS_NAMES = {0: "scheduled", 1: "active", 2: "cancelled", 3: "cancelled", 4: "superseded"}


class ControlIn(BaseModel):
    """A DERControl to publish to one DER's EndDevice."""

    model_config = ConfigDict(extra="forbid")

    der_id: int = Field(description="Registry DER whose EndDevice receives the control.")
    program_id: int | None = Field(
        default=None,
        description="Registry program the control belongs to (the DER must be a member); "
        "omitted: the device's operations program, which takes precedence over its terms "
        "windows for the event's duration.",
    )
    start: AwareDatetime
    duration_s: int = Field(gt=0, le=7 * 86400)
    export_limit_kw: float | None = Field(default=None, ge=0)
    import_limit_kw: float | None = Field(default=None, ge=0)
    generation_limit_kw: float | None = Field(default=None, ge=0)
    load_limit_kw: float | None = Field(default=None, ge=0)
    connect: bool | None = None
    energize: bool | None = None
    randomize_start_s: int | None = Field(default=None, ge=-3600, le=3600)
    randomize_duration_s: int | None = Field(default=None, ge=-3600, le=3600)
    description: str = Field(default="", max_length=32)


class ControlOut(BaseModel):
    id: int
    mrid: str
    der_id: int | None
    end_device_id: int
    der_program_id: int
    href: str
    source: str
    start: dt.datetime
    duration_s: int
    status: str
    status_since: dt.datetime
    potentially_superseded: bool
    export_limit_kw: float | None
    import_limit_kw: float | None
    generation_limit_kw: float | None
    load_limit_kw: float | None
    connect: bool | None
    energize: bool | None


class ResponseOut(BaseModel):
    end_device_lfdi: str
    status: int | None
    created_time: dt.datetime | None
    received_at: dt.datetime


class ReadingOut(BaseModel):
    meter_reading_mrid: str
    uom: int | None
    time_start: dt.datetime
    value_si: float


def _kw(w: float | None) -> float | None:
    return None if w is None else w / 1000.0


def _w(kw: float | None) -> float | None:
    return None if kw is None else kw * 1000.0


def create_ops_app(engine: Engine, clock: Callable[[], dt.datetime] | None = None) -> FastAPI:
    """The operator API on ``engine`` (mount it at ``/ops``)."""
    now_of = clock or (lambda: dt.datetime.now(dt.UTC))
    app = FastAPI(
        title="gridflex 2030.5 operations",
        version=__version__,
        description="Publish and cancel IEEE 2030.5 DERControls, read their status, client "
        "Responses and telemetry. Same API keys and roles as the registry API (/admin).",
    )
    app.state.sessions = session_factory(engine)

    @contextmanager
    def tx(request: Request) -> Iterator[Session]:
        with request.app.state.sessions.begin() as session:
            yield session

    def end_device_of(session: Session, der_id: int, scope: Scope, what: str) -> EndDevice:
        der = registry.get_der(session, der_id)
        scope.require_der(der, what)
        edev = session.scalars(select(EndDevice).where(EndDevice.der_id == der_id)).first()
        if edev is None:
            raise NotFoundError(
                f"DER {der_id} has no registered EndDevice yet; its device (or aggregator) must "
                "POST /edev first"
            )
        return edev

    def out(c: DerControl, edev: EndDevice, now: dt.datetime) -> ControlOut:
        status, since, pending = schedule.event_status(
            c.start,
            c.duration_s,
            now,
            cancelled_at=c.cancelled_at,
            superseded_at=c.superseded_at,
            randomized=bool(c.randomize_start_s or c.randomize_duration_s),
        )
        return ControlOut(
            id=c.id,
            mrid=c.mrid,
            der_id=edev.der_id,
            end_device_id=edev.id,
            der_program_id=c.der_program_id,
            href=f"/edev/{edev.id}/derp/{c.der_program_id}/derc/{c.id}",
            source=c.source,
            start=c.start,
            duration_s=c.duration_s,
            status=STATUS_NAMES[status],
            status_since=since,
            potentially_superseded=pending,
            export_limit_kw=_kw(c.exp_lim_w),
            import_limit_kw=_kw(c.imp_lim_w),
            generation_limit_kw=_kw(c.gen_lim_w),
            load_limit_kw=_kw(c.load_lim_w),
            connect=c.connect,
            energize=c.energize,
        )

    @app.post("/controls", status_code=201)
    def publish(body: ControlIn, request: Request, scope: ScopeDep) -> ControlOut:
        """Publish a DERControl (operators); overlapping older ones of the same program and
        controls become superseded from its start."""
        scope.require_write("publish DERControls")
        now = now_of()
        with tx(request) as session:
            edev = end_device_of(session, body.der_id, scope, "publish a DERControl")
            programs = manager.programs_for(session, edev)
            if body.program_id is None:
                derp = next(p for p in programs if p.key == manager.OPS_PROGRAM_KEY)
            else:
                found = [p for p in programs if p.program_id == body.program_id]
                if not found:
                    raise InputError(
                        f"DER {body.der_id} is not a member of program {body.program_id}",
                        "add it to the program in the registry, or omit program_id",
                    )
                derp = found[0]
            ctrl = manager.create_control(
                session,
                end_device_id=edev.id,
                der_program_id=derp.id,
                start=body.start,
                duration_s=body.duration_s,
                now=now,
                exp_lim_w=_w(body.export_limit_kw),
                imp_lim_w=_w(body.import_limit_kw),
                gen_lim_w=_w(body.generation_limit_kw),
                load_lim_w=_w(body.load_limit_kw),
                connect=body.connect,
                energize=body.energize,
                randomize_start_s=body.randomize_start_s,
                randomize_duration_s=body.randomize_duration_s,
                description=body.description,
            )
            return out(ctrl, edev, now)

    @app.post("/controls/{control_id}/cancel")
    def cancel(control_id: int, request: Request, scope: ScopeDep) -> ControlOut:
        """Cancel a DERControl now; it stays listed as cancelled until its original end."""
        scope.require_write("cancel DERControls")
        now = now_of()
        with tx(request) as session:
            ctrl = manager.cancel_control(session, control_id, now)
            edev = session.get(EndDevice, ctrl.end_device_id)
            assert edev is not None  # FK
            return out(ctrl, edev, now)

    @app.get("/controls")
    def listed(der_id: int, request: Request, scope: ScopeDep) -> list[ControlOut]:
        """The controls a DER's EndDevice currently sees, every program, with their status."""
        now = now_of()
        with tx(request) as session:
            edev = end_device_of(session, der_id, scope, "read DERControls")
            rows: list[ControlOut] = []
            for prog in manager.programs_for(session, edev):
                rows += [
                    out(c, edev, now) for c in manager.listed_controls(session, edev, prog, now)
                ]
            return rows

    @app.get("/controls/{control_id}/responses")
    def responses(control_id: int, request: Request, scope: ScopeDep) -> list[ResponseOut]:
        """Responses clients sent to a control (received, started, completed, ...)."""
        with tx(request) as session:
            ctrl = session.get(DerControl, control_id)
            if ctrl is None:
                raise NotFoundError(f"DERControl {control_id} does not exist")
            edev = session.get(EndDevice, ctrl.end_device_id)
            if edev is not None and edev.der_id is not None:
                scope.require_der(registry.get_der(session, edev.der_id), "read Responses")
            else:
                scope.require_everything("read Responses")
            return [
                ResponseOut(
                    end_device_lfdi=r.end_device_lfdi,
                    status=r.status,
                    created_time=r.created_time,
                    received_at=r.received_at,
                )
                for r in manager.responses_for_control(session, control_id)
            ]

    @app.get("/telemetry")
    def telemetry(der_id: int, request: Request, scope: ScopeDep) -> list[ReadingOut]:
        """Readings posted through MirrorUsagePoints for a DER, oldest first."""
        with tx(request) as session:
            scope.require_der(registry.get_der(session, der_id), "read telemetry")
            return [
                ReadingOut(meter_reading_mrid=m, uom=u, time_start=t, value_si=v)
                for m, u, t, v in manager.readings_for_der(session, der_id)
            ]

    def handler(code: int) -> Any:
        async def handle(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, code)

        return handle

    for exc_type, code in (
        (InputError, 422),
        (NotFoundError, 404),
        (ConflictError, 409),
        (PermissionDeniedError, 403),
        (GridflexError, 500),
    ):
        app.add_exception_handler(exc_type, handler(code))
    return app
