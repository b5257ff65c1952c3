"""The operator REST API of the registry (FastAPI): ``create_app(engine)``.

The edge of the ``derms`` layers: it authenticates the caller (API key as ``Authorization: Bearer``
or ``X-API-Key``), builds a frozen :class:`~gridflex.derms.auth.Scope`, calls the managers of
:mod:`gridflex.derms.registry` inside one transaction per request, and maps domain errors to HTTP:
``InputError`` 422, ``NotFoundError`` 404, ``ConflictError`` 409, ``PermissionDeniedError`` 403
(every 403 is logged on ``gridflex.derms.audit``). A request that fails changes nothing.

Roles: ``operator`` reads and writes; ``read_only`` reads; ``aggregator`` reads only the DER it
fronts, their lifecycle history and their connections' terms. The OpenAPI schema is published as
``docs/schemas/registry_openapi.json`` (``gridflex registry openapi`` regenerates it). The 2030.5
server mounts this app under ``/admin``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gridflex import __version__
from gridflex.derms import registry as reg
from gridflex.derms.auth import Scope, authenticate, create_user, find_user, issue_key
from gridflex.derms.db import session_factory
from gridflex.derms.lifecycle import lifecycle
from gridflex.derms.models import ApiUser, ConnectionTermsRow, Der, LifecycleState, Role
from gridflex.derms.schemas import (
    AggregatorIn,
    AggregatorOut,
    ApiKeyOut,
    DerIn,
    DerOut,
    DerPatch,
    ErrorOut,
    LifecycleEventOut,
    LifecycleOut,
    LifecycleStateOut,
    ProgramIn,
    ProgramOut,
    ServicePointIn,
    ServicePointOut,
    SiteIn,
    SiteOut,
    TermsVersionOut,
    TransitionIn,
    UserIn,
    UserOut,
    WhoAmI,
)
from gridflex.errors import (
    ConflictError,
    GridflexError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
)
from gridflex.terms import ConnectionTerms

#: Domain error -> HTTP status (most specific first).
STATUS_OF_ERROR: tuple[tuple[type[GridflexError], int], ...] = (
    (InputError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (ConflictError, status.HTTP_409_CONFLICT),
    (PermissionDeniedError, status.HTTP_403_FORBIDDEN),
)

#: DER fields an aggregator may report for the DER it fronts.
AGGREGATOR_EDITABLE = frozenset({"inverter_settings", "telemetry"})

#: Page sizes of ``GET /ders`` (a fleet can hold hundreds of thousands of DER).
DEFAULT_PAGE = 1000
MAX_PAGE = 10000

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, unknown or revoked API key."},
    403: {"model": ErrorOut, "description": "Outside the caller's role or aggregator scope."},
    404: {"model": ErrorOut, "description": "No such object."},
    409: {"model": ErrorOut, "description": "Conflicts with stored state."},
    422: {"description": "Invalid input (names the field and the fix)."},
}

_bearer = HTTPBearer(auto_error=False, description="API key sent as a bearer token.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key header.")


@contextmanager
def _tx(request: Request) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any exception."""
    factory: sessionmaker[Session] = request.app.state.sessions
    with factory.begin() as session:
        yield session


def current_scope(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Scope:
    """Authenticate the caller from its API key."""
    token = bearer.credentials if bearer is not None else api_key
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
            "(create one with `gridflex registry add-user`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    with _tx(request) as session:
        scope = authenticate(session, token)
    if scope is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "unknown or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return scope


ScopeDep = Annotated[Scope, Depends(current_scope)]
router = APIRouter(responses=ERROR_RESPONSES)


# ---- helpers ------------------------------------------------------------------------------------


def _terms_out(row: ConnectionTermsRow) -> TermsVersionOut:
    return TermsVersionOut(
        connection_id=row.connection_id,
        version=row.version,
        agreed_at=row.agreed_at,
        created_at=row.created_at,
        created_by=row.created_by,
        agreed_override=row.agreed_override,
        note=row.note,
        terms=reg.row_to_terms(row),
    )


def _visible_der(session: Session, scope: Scope, der_id: int, what: str) -> Der:
    der = reg.get_der(session, der_id)
    scope.require_der(der, what)
    return der


def _require_connection(session: Session, scope: Scope, connection_id: str, what: str) -> None:
    """Aggregators see a connection's terms only when one of their DER uses it."""
    if scope.sees_everything:
        return
    ders = reg.ders_for_connection(session, connection_id)
    if not any(d.aggregator_id == scope.aggregator_id for d in ders):
        raise scope.deny(f"{what} (connection {connection_id!r} has none of its DER)")


# ---- identity ---------------------------------------------------------------------------------


@router.get("/whoami", tags=["auth"])
def whoami(scope: ScopeDep) -> WhoAmI:
    """The caller's user name, role and aggregator scope."""
    return WhoAmI(user=scope.user, role=scope.role, aggregator_id=scope.aggregator_id)


@router.post("/users", status_code=201, tags=["auth"])
def post_user(body: UserIn, request: Request, scope: ScopeDep) -> UserOut:
    """Create an API user (operator only)."""
    scope.require_write("create users")
    with _tx(request) as s:
        user = create_user(s, name=body.name, role=body.role, aggregator_id=body.aggregator_id)
        return UserOut.model_validate(user)


@router.get("/users", tags=["auth"])
def get_users(request: Request, scope: ScopeDep) -> list[UserOut]:
    """Every API user (operator only)."""
    scope.require_write("list users")
    from sqlalchemy import select

    with _tx(request) as s:
        return [UserOut.model_validate(u) for u in s.scalars(select(ApiUser).order_by(ApiUser.id))]


@router.post("/users/{name}/keys", status_code=201, tags=["auth"])
def post_user_key(name: str, request: Request, scope: ScopeDep) -> ApiKeyOut:
    """Issue an API key for a user (operator only); the token is shown once."""
    scope.require_write("issue API keys")
    with _tx(request) as s:
        user = find_user(s, name)
        return ApiKeyOut(user=user.name, token=issue_key(s, user.id))


# ---- aggregators ------------------------------------------------------------------------------


@router.get("/aggregators", tags=["aggregators"])
def get_aggregators(request: Request, scope: ScopeDep) -> list[AggregatorOut]:
    """Every aggregator (an aggregator user sees only itself)."""
    with _tx(request) as s:
        aggs = reg.list_aggregators(s)
        if not scope.sees_everything:
            aggs = [a for a in aggs if a.id == scope.aggregator_id]
        return [AggregatorOut.model_validate(a) for a in aggs]


@router.post("/aggregators", status_code=201, tags=["aggregators"])
def post_aggregator(body: AggregatorIn, request: Request, scope: ScopeDep) -> AggregatorOut:
    """Register an aggregator."""
    scope.require_write("register aggregators")
    with _tx(request) as s:
        agg = reg.add_aggregator(
            s, name=body.name, lfdi=body.lfdi, sfdi=body.sfdi, contact=body.contact
        )
        return AggregatorOut.model_validate(agg)


@router.get("/aggregators/{aggregator_id}", tags=["aggregators"])
def get_aggregator(aggregator_id: int, request: Request, scope: ScopeDep) -> AggregatorOut:
    """One aggregator."""
    if not scope.sees_everything and aggregator_id != scope.aggregator_id:
        raise scope.deny(f"read aggregator {aggregator_id}")
    with _tx(request) as s:
        return AggregatorOut.model_validate(reg.get_aggregator(s, aggregator_id))


@router.get("/aggregators/{aggregator_id}/ders", tags=["aggregators"])
def get_aggregator_ders(aggregator_id: int, request: Request, scope: ScopeDep) -> list[DerOut]:
    """The DER an aggregator fronts."""
    if not scope.sees_everything and aggregator_id != scope.aggregator_id:
        raise scope.deny(f"list the DER of aggregator {aggregator_id}")
    with _tx(request) as s:
        reg.get_aggregator(s, aggregator_id)
        return [DerOut.model_validate(d) for d in reg.ders_for_aggregator(s, aggregator_id)]


# ---- sites and service points -------------------------------------------------------------------


@router.get("/sites", tags=["sites"])
def get_sites(request: Request, scope: ScopeDep) -> list[SiteOut]:
    """Every site."""
    scope.require_everything("list sites")
    with _tx(request) as s:
        return [SiteOut.model_validate(x) for x in reg.list_sites(s)]


@router.post("/sites", status_code=201, tags=["sites"])
def post_site(body: SiteIn, request: Request, scope: ScopeDep) -> SiteOut:
    """Register a site."""
    scope.require_write("register sites")
    with _tx(request) as s:
        return SiteOut.model_validate(reg.add_site(s, **body.model_dump()))


@router.get("/sites/{site_id}", tags=["sites"])
def get_site(site_id: int, request: Request, scope: ScopeDep) -> SiteOut:
    """One site (an aggregator sees the sites of its own DER)."""
    with _tx(request) as s:
        site = reg.get_site(s, site_id)
        if not scope.sees_everything and not any(
            d.aggregator_id == scope.aggregator_id for d in site.ders
        ):
            raise scope.deny(f"read site {site_id}")
        return SiteOut.model_validate(site)


@router.get("/service-points", tags=["sites"])
def get_service_points(
    request: Request, scope: ScopeDep, site_id: int | None = None
) -> list[ServicePointOut]:
    """Service points, optionally of one site."""
    scope.require_everything("list service points")
    with _tx(request) as s:
        return [ServicePointOut.model_validate(x) for x in reg.list_service_points(s, site_id)]


@router.post("/service-points", status_code=201, tags=["sites"])
def post_service_point(body: ServicePointIn, request: Request, scope: ScopeDep) -> ServicePointOut:
    """Register a service point of a site."""
    scope.require_write("register service points")
    with _tx(request) as s:
        return ServicePointOut.model_validate(reg.add_service_point(s, **body.model_dump()))


@router.get("/service-points/{service_point_id}", tags=["sites"])
def get_service_point(service_point_id: int, request: Request, scope: ScopeDep) -> ServicePointOut:
    """One service point."""
    scope.require_everything(f"read service point {service_point_id}")
    with _tx(request) as s:
        return ServicePointOut.model_validate(reg.get_service_point(s, service_point_id))


# ---- DER ----------------------------------------------------------------------------------------


@router.get("/ders", tags=["ders"])
def get_ders(
    request: Request,
    scope: ScopeDep,
    aggregator_id: int | None = None,
    site_id: int | None = None,
    feeder: str | None = None,
    state: LifecycleState | None = None,
    connection_id: str | None = None,
    offset: Annotated[int, Query(ge=0, description="DER to skip (ordered by id).")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")] = DEFAULT_PAGE,
) -> list[DerOut]:
    """DER matching the filters, by id, one page at a time (an aggregator sees only its own)."""
    if not scope.sees_everything:
        if aggregator_id is not None and aggregator_id != scope.aggregator_id:
            raise scope.deny(f"list the DER of aggregator {aggregator_id}")
        aggregator_id = scope.aggregator_id
    with _tx(request) as s:
        ders = reg.list_ders(
            s,
            aggregator_id=aggregator_id,
            site_id=site_id,
            feeder=feeder,
            state=None if state is None else state.value,
            connection_id=connection_id,
            offset=offset,
            limit=limit,
        )
        return [DerOut.model_validate(d) for d in ders]


@router.post("/ders", status_code=201, tags=["ders"])
def post_der(body: DerIn, request: Request, scope: ScopeDep) -> DerOut:
    """Register a DER; it starts in the lifecycle's initial state (``applied``)."""
    scope.require_write("register DER")
    with _tx(request) as s:
        data = body.model_dump()
        data["der_type"] = body.der_type.value
        der = reg.add_der(s, actor=scope.user, **data)
        return DerOut.model_validate(der)


@router.get("/ders/by-lfdi/{lfdi}", tags=["ders"])
def get_der_by_lfdi(lfdi: str, request: Request, scope: ScopeDep) -> DerOut:
    """The DER with this certificate LFDI (any case)."""
    with _tx(request) as s:
        der = reg.find_der_by_lfdi(s, lfdi)
        if der is None:
            raise NotFoundError(f"no DER has LFDI {lfdi.lower()}")
        scope.require_der(der, f"read DER with LFDI {lfdi.lower()}")
        return DerOut.model_validate(der)


@router.get("/ders/{der_id}", tags=["ders"])
def get_der(der_id: int, request: Request, scope: ScopeDep) -> DerOut:
    """One DER."""
    with _tx(request) as s:
        return DerOut.model_validate(_visible_der(s, scope, der_id, f"read DER {der_id}"))


@router.patch("/ders/{der_id}", tags=["ders"])
def patch_der(der_id: int, body: DerPatch, request: Request, scope: ScopeDep) -> DerOut:
    """Change a DER's registration data (not its lifecycle state).

    Operators change any field. An aggregator may report the current ``inverter_settings`` and
    ``telemetry`` capability of a DER it fronts (seed 001, "The Role of a DERMS": visibility
    through aggregator APIs of "current settings"), nothing else.
    """
    changes = body.model_dump(exclude_unset=True)
    if not scope.can_write:
        if scope.role is not Role.AGGREGATOR:
            raise scope.deny(f"change DER {der_id}")
        extra = sorted(set(changes) - AGGREGATOR_EDITABLE)
        if extra:
            raise scope.deny(
                f"change DER {der_id} fields {extra} (aggregators may change only "
                f"{sorted(AGGREGATOR_EDITABLE)})"
            )
    if "der_type" in changes and changes["der_type"] is not None:
        changes["der_type"] = changes["der_type"].value
    with _tx(request) as s:
        _visible_der(s, scope, der_id, f"change DER {der_id}")
        return DerOut.model_validate(reg.update_der(s, der_id, actor=scope.user, **changes))


@router.post("/ders/{der_id}/transitions", status_code=201, tags=["lifecycle"])
def post_transition(
    der_id: int, body: TransitionIn, request: Request, scope: ScopeDep
) -> LifecycleEventOut:
    """Move a DER to its next lifecycle state (recorded with who and when)."""
    scope.require_write(f"change the lifecycle state of DER {der_id}")
    with _tx(request) as s:
        event = reg.transition(s, der_id, body.to_state, actor=scope.user, note=body.note)
        return LifecycleEventOut.model_validate(event)


@router.get("/ders/{der_id}/lifecycle", tags=["lifecycle"])
def get_der_lifecycle(der_id: int, request: Request, scope: ScopeDep) -> list[LifecycleEventOut]:
    """Every lifecycle transition of a DER, oldest first."""
    with _tx(request) as s:
        _visible_der(s, scope, der_id, f"read the lifecycle of DER {der_id}")
        return [LifecycleEventOut.model_validate(e) for e in reg.lifecycle_history(s, der_id)]


@router.get("/ders/{der_id}/terms", tags=["terms"])
def get_der_terms(der_id: int, request: Request, scope: ScopeDep) -> TermsVersionOut:
    """The current terms of the DER's connection."""
    with _tx(request) as s:
        der = _visible_der(s, scope, der_id, f"read the terms of DER {der_id}")
        if der.connection_id is None:
            raise NotFoundError(f"DER {der_id} has no connection_id, so no terms")
        row = reg.current_terms_row(s, der.connection_id)
        if row is None:
            raise NotFoundError(f"connection {der.connection_id!r} of DER {der_id} has no terms")
        return _terms_out(row)


@router.get("/ders/{der_id}/programs", tags=["programs"])
def get_der_programs(der_id: int, request: Request, scope: ScopeDep) -> list[ProgramOut]:
    """The programs a DER belongs to."""
    with _tx(request) as s:
        _visible_der(s, scope, der_id, f"read the programs of DER {der_id}")
        return [ProgramOut.model_validate(p) for p in reg.programs_for_der(s, der_id)]


@router.get("/lifecycle", tags=["lifecycle"])
def get_lifecycle(scope: ScopeDep) -> LifecycleOut:
    """The lifecycle states, their allowed next states and the source they follow."""
    table = lifecycle()
    return LifecycleOut(
        source=table.source,
        initial=table.initial,
        states=[
            LifecycleStateOut(
                state=r.state,
                description=r.description,
                next=list(r.next),
                requires_terms=r.requires_terms,
            )
            for r in table.states.values()
        ],
    )


# ---- programs ---------------------------------------------------------------------------------


@router.get("/programs", tags=["programs"])
def get_programs(request: Request, scope: ScopeDep) -> list[ProgramOut]:
    """Every program."""
    scope.require_everything("list programs")
    with _tx(request) as s:
        return [ProgramOut.model_validate(p) for p in reg.list_programs(s)]


@router.post("/programs", status_code=201, tags=["programs"])
def post_program(body: ProgramIn, request: Request, scope: ScopeDep) -> ProgramOut:
    """Create a program (DER behind one feeder, transformer or substation constraint)."""
    scope.require_write("create programs")
    with _tx(request) as s:
        data = body.model_dump()
        data["constraint_kind"] = body.constraint_kind.value
        return ProgramOut.model_validate(reg.add_program(s, **data))


@router.get("/programs/{program_id}", tags=["programs"])
def get_program(program_id: int, request: Request, scope: ScopeDep) -> ProgramOut:
    """One program."""
    scope.require_everything(f"read program {program_id}")
    with _tx(request) as s:
        return ProgramOut.model_validate(reg.get_program(s, program_id))


@router.get("/programs/{program_id}/ders", tags=["programs"])
def get_program_ders(program_id: int, request: Request, scope: ScopeDep) -> list[DerOut]:
    """The DER in a program."""
    scope.require_everything(f"list the DER of program {program_id}")
    with _tx(request) as s:
        return [DerOut.model_validate(d) for d in reg.program_ders(s, program_id)]


@router.put("/programs/{program_id}/ders/{der_id}", status_code=204, tags=["programs"])
def put_program_der(program_id: int, der_id: int, request: Request, scope: ScopeDep) -> None:
    """Put a DER in a program (idempotent)."""
    scope.require_write(f"change program {program_id}")
    with _tx(request) as s:
        reg.add_program_member(s, program_id, der_id, actor=scope.user)


@router.delete("/programs/{program_id}/ders/{der_id}", status_code=204, tags=["programs"])
def delete_program_der(program_id: int, der_id: int, request: Request, scope: ScopeDep) -> None:
    """Take a DER out of a program."""
    scope.require_write(f"change program {program_id}")
    with _tx(request) as s:
        reg.remove_program_member(s, program_id, der_id)


# ---- connection terms -------------------------------------------------------------------------


@router.get("/connections", tags=["terms"])
def get_connections(request: Request, scope: ScopeDep) -> list[str]:
    """Every connection id that has terms (an aggregator sees those of its DER)."""
    with _tx(request) as s:
        ids = reg.connection_ids(s)
        if not scope.sees_everything:
            mine = {d.connection_id for d in reg.ders_for_aggregator(s, scope.aggregator_id or -1)}
            ids = [c for c in ids if c in mine]
        return ids


@router.post("/connections/{connection_id}/terms", status_code=201, tags=["terms"])
def post_terms(
    connection_id: str,
    body: ConnectionTerms,
    request: Request,
    scope: ScopeDep,
    agreed: Annotated[
        bool,
        Query(
            description="The customer agreed to this version although it limits the connection "
            "further than the current one (stored with agreed_override)."
        ),
    ] = False,
    note: str = "",
) -> TermsVersionOut:
    """Store a new version of a connection's terms (never edits a stored one).

    A version that limits the connection further than the current one is refused with 409 unless
    ``agreed=true`` (seed 001, "Scheduled", stakeholder feedback).
    """
    scope.require_write(f"add terms to connection {connection_id!r}")
    if body.connection_id != connection_id:
        raise InputError(
            f"terms body names connection {body.connection_id!r} but the URL names "
            f"{connection_id!r}",
            "post the terms to /connections/<their connection_id>/terms",
        )
    with _tx(request) as s:
        row = reg.add_terms(s, body, actor=scope.user, agreed=agreed, note=note)
        return _terms_out(row)


@router.get("/connections/{connection_id}/terms", tags=["terms"])
def get_current_terms(connection_id: str, request: Request, scope: ScopeDep) -> TermsVersionOut:
    """The current (newest) terms of a connection."""
    with _tx(request) as s:
        _require_connection(s, scope, connection_id, "read terms")
        row = reg.current_terms_row(s, connection_id)
        if row is None:
            raise NotFoundError(f"connection {connection_id!r} has no terms")
        return _terms_out(row)


@router.get("/connections/{connection_id}/terms/history", tags=["terms"])
def get_terms_history(
    connection_id: str, request: Request, scope: ScopeDep
) -> list[TermsVersionOut]:
    """Every version of a connection's terms, oldest first."""
    with _tx(request) as s:
        _require_connection(s, scope, connection_id, "read terms history")
        rows = reg.terms_rows(s, connection_id)
        if not rows:
            raise NotFoundError(f"connection {connection_id!r} has no terms")
        return [_terms_out(r) for r in rows]


@router.get("/connections/{connection_id}/terms/{version}", tags=["terms"])
def get_terms_version(
    connection_id: str, version: int, request: Request, scope: ScopeDep
) -> TermsVersionOut:
    """One stored version of a connection's terms."""
    with _tx(request) as s:
        _require_connection(s, scope, connection_id, "read terms")
        return _terms_out(reg.terms_version(s, connection_id, version))


# ---- the app ----------------------------------------------------------------------------------


def _error_handler(code: int) -> Any:
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=code)

    return handle


def create_app(engine: Engine) -> FastAPI:
    """The operator REST API on ``engine`` (migrate it first: :func:`gridflex.derms.db.upgrade`)."""
    app = FastAPI(
        title="gridflex registry",
        version=__version__,
        description=(
            "Operator REST API of the gridflex DER registry: sites, service points, DER, "
            "aggregators, programs, versioned connection terms and DER lifecycle. Authenticate "
            "with an API key (`Authorization: Bearer <key>` or `X-API-Key`). Roles: operator "
            "(read/write), read_only, aggregator (its own DER only)."
        ),
    )
    app.state.sessions = session_factory(engine)
    for exc_type, code in STATUS_OF_ERROR:
        app.add_exception_handler(exc_type, _error_handler(code))
    app.include_router(router)
    return app


def openapi_json(app: FastAPI | None = None) -> str:
    """The published OpenAPI document (stable text: sorted keys, 2-space indent)."""
    if app is None:
        from gridflex.derms.db import make_engine

        app = create_app(make_engine("sqlite://"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


__all__ = ["Role", "create_app", "openapi_json", "router"]
