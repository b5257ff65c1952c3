"""The IEEE 2030.5 ASGI application: routes, status codes, XML in and out.

The edge of the server (envoy's ``api`` layer): it reads the client's LFDI from the ASGI ``tls``
extension (filled by :mod:`gridflex.sep2.server`), resolves the caller's scope, calls
:mod:`gridflex.sep2.manager` inside one transaction, renders the envoy-schema model, and maps
domain errors to status codes (InputError 400, PermissionDenied 403, NotFound 404, Conflict 409,
oversized XML 413).

Resource hrefs follow envoy's site-scoped layout (``envoy_schema.server.schema.uri``):
``/dcap``, ``/tm``, ``/edev``, ``/edev/{id}``, ``/edev/{id}/rg``, ``/edev/{id}/fsa``,
``/edev/{id}/fsa/1``, ``/edev/{id}/derp``, ``/edev/{id}/derp/{p}``, ``.../derc``, ``.../derc/{c}``,
``.../actderc``, ``.../dderc``, ``/edev/{id}/der``, ``/edev/{id}/der/1`` with ``dercap``, ``derg``,
``ders``, ``dera``, ``/edev/{id}/sub``, ``/mup``, ``/mup/{id}``, and ``/rsps/derc/rsp`` where
clients POST Responses.

List paging (IEEE 2030.5-2018 clause 8.3.4.2): ``s`` start index (default 0), ``l`` limit
(default 1, at most :data:`MAX_PAGE`), ``a`` "after" (epoch seconds; lists of time-stamped items
keep those at or after it). ``all`` is the list's size, ``results`` the items returned.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import logging
import re
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from envoy_schema.server.schema.csip_aus.connection_point import (
    ConnectionPointLink,
    ConnectionPointRequest,
    ConnectionPointResponse,
)
from envoy_schema.server.schema.sep2 import der as der_schema
from envoy_schema.server.schema.sep2.der_control_types import ActivePower
from envoy_schema.server.schema.sep2.device_capability import DeviceCapabilityResponse
from envoy_schema.server.schema.sep2.end_device import (
    EndDeviceListResponse,
    EndDeviceRequest,
    EndDeviceResponse,
    RegistrationResponse,
)
from envoy_schema.server.schema.sep2.error import ErrorResponse
from envoy_schema.server.schema.sep2.event import EventStatus
from envoy_schema.server.schema.sep2.function_set_assignments import (
    FunctionSetAssignmentsListResponse,
    FunctionSetAssignmentsResponse,
)
from envoy_schema.server.schema.sep2.identification import Link, ListLink
from envoy_schema.server.schema.sep2.metering_mirror import (
    MirrorMeterReading,
    MirrorMeterReadingListRequest,
    MirrorMeterReadingRequest,
    MirrorUsagePoint,
    MirrorUsagePointListResponse,
    MirrorUsagePointRequest,
)
from envoy_schema.server.schema.sep2.pub_sub import Notification as NotificationModel
from envoy_schema.server.schema.sep2.pub_sub import (
    NotificationResourceCombined,
    NotificationStatus,
    SubscriptionEncoding,
    SubscriptionListResponse,
)
from envoy_schema.server.schema.sep2.pub_sub import Subscription as SubscriptionModel
from envoy_schema.server.schema.sep2.response import DERControlResponse as ResponseModel
from envoy_schema.server.schema.sep2.time import TimeResponse
from envoy_schema.server.schema.sep2.types import (
    DateTimeIntervalType,
    ReasonCodeType,
    ServiceKind,
    SubscribableType,
    TimeQualityType,
)
from lxml import etree  # type: ignore[import-untyped]
from pydantic_xml import BaseXmlModel
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gridflex.derms.db import session_factory
from gridflex.errors import (
    ConflictError,
    GridflexError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
)
from gridflex.sep2 import manager, schedule
from gridflex.sep2 import xml as sepxml
from gridflex.sep2.certs import TlsFiles
from gridflex.sep2.changes import ChangeFeed
from gridflex.sep2.identity import ClientScope, DeviceScope
from gridflex.sep2.persistence import DerControl, EndDevice
from gridflex.sep2.persistence import MirrorUsagePoint as MupRow
from gridflex.sep2.persistence import Notification as NotificationRow
from gridflex.sep2.persistence import Subscription as SubscriptionRow
from gridflex.sep2.writer import ReadingWriter

log = logging.getLogger("gridflex.sep2.app")

MAX_PAGE = 500
DEFAULT_POLL_RATE_S = 300
"""Poll rate advertised to clients (CSIP-AUS deployments poll DERControlLists every 5 minutes)."""
DEFAULT_POST_RATE_S = 300
RESPONSE_REQUIRED = "03"
"""responseRequired on DERControls: bit 0 message received, bit 1 specific response (CSIP)."""
RESPONSE_HREF = "/rsps/derc/rsp"
NOSUB = SubscribableType.resource_does_not_support_subscriptions
SUB = SubscribableType.resource_supports_non_conditional_subscriptions
ACCESS_CACHE_MAX = 400_000
"""Most entries each per-worker access cache holds (certificate scopes, MirrorUsagePoint
owners, MirrorMeterReading types); a cache that would grow past it is cleared (then refilled on
demand). Sized for the issue's fleet of 300,000 devices, bulk-loaded at start
(:meth:`Sep2App.preload_access`): about 1 kB per device and worker for the three caches
(measured with tracemalloc, ``docs/sep2.md``), so about 300 MB per worker for 300,000 devices
that each have their own certificate."""
DERC_PRELOAD_MAX_ROWS = 100_000
"""Most control rows a worker bulk-loads for first DERControlList polls (about 0.6 kB each as
SQLAlchemy rows: some 60 MB); devices past the bound are read on their first poll as before."""
PRELOAD_MIN_INTERVAL_S = 30.0
"""Least time between two bulk loads of the access caches (s): a ``*`` notification (any write
of terms, DER or aggregator rows) voids every cached access fact, and the next bulk load after
it waits at least this long since the previous one, so a burst of registry writes costs one
reload, not one per write (meanwhile first requests look their facts up one by one)."""
DER_INFO_MODELS: dict[str, type[BaseXmlModel]] = {
    "dercap": der_schema.DERCapability,
    "derg": der_schema.DERSettings,
    "ders": der_schema.DERStatus,
    "dera": der_schema.DERAvailability,
}
"""What clients write about their DER, by path segment (IEEE 2030.5-2018 clause 10.10)."""


@dataclass(frozen=True)
class Sep2Settings:
    """Deployment choices of the 2030.5 server."""

    csip_aus_ns: str = sepxml.CSIP_AUS_NS_V12
    """CSIP-AUS namespace written in responses (v1.2 by default; :data:`xml.CSIP_AUS_NS_V13`)."""
    tz: str = "America/Chicago"
    """Zone the Time resource reports local time and DST rules for."""
    poll_rate_s: int = DEFAULT_POLL_RATE_S
    post_rate_s: int = DEFAULT_POST_RATE_S
    max_xml_bytes: int = sepxml.DEFAULT_MAX_XML_BYTES
    scope_cache_s: float = 30.0
    """How long a certificate's resolved scope (and a MirrorUsagePoint's owner) is reused (s)
    when no change notifications arrive (SQLite, or a PostgreSQL worker not listening): a
    registry change of who owns a certificate (a DER moved to another aggregator, an aggregator
    removed) takes effect within this time. While a worker listens (PostgreSQL), a cached one is
    dropped when such a change is notified, whatever this says. 0 resolves on every request."""
    group_commit: bool = True
    """Store routine telemetry POSTs of one worker in shared transactions (one commit, one WAL
    flush for all the POSTs that arrive while the previous commit runs); each POST is answered
    only after its readings are committed (:mod:`gridflex.sep2.writer`)."""
    preload_access: bool = True
    """PostgreSQL: each worker loads every certificate scope, MirrorUsagePoint owner and
    MirrorMeterReading type, and the DERControlList rows of the site and operations programs,
    in bulk when it starts listening for changes (and again after a change that voids them all),
    so first telemetry POSTs and first polls need no lookup (:meth:`Sep2App.preload_access`)."""
    handler_threads: int = 8
    """Threads per worker process running handlers (when not inline)."""
    inline_handlers: bool = False
    """Run handlers on the event loop instead of a thread pool: the fastest mode for worker
    processes (each handler is a few short indexed queries); the default thread pool keeps one
    slow query from stalling other connections of the same process."""
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    notify_tls: TlsFiles | None = None
    """Certificate and key the server presents when it POSTs Notifications to subscribers, and
    the CA their endpoints chain to; None keeps notifications in the outbox undelivered."""
    notify_interval_s: float = 5.0
    notify_base_url: str = "https://localhost"
    """How the server names itself in Notification.subscriptionURI (an AbsoluteUri)."""


def _epoch(t: dt.datetime) -> int:
    return int(t.timestamp())


def _from_epoch(s: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(s, dt.UTC)


ACTIVE_POWER_VALUE_MAX = 32767
"""sep.xsd types ActivePower/value as Int16: larger powers take a bigger power-of-ten multiplier."""


def _watts(w: float | None) -> ActivePower | None:
    """A power in W as value × 10^multiplier with an Int16 value: exact for whole W up to
    32767 W; above, the least multiplier that fits, the value cut toward zero (a limit is never
    published above the agreed one, and less than 0.04 % below it)."""
    if w is None:
        return None
    value, multiplier = (int(w), 0) if float(w).is_integer() else (round(w * 1000), -3)
    while abs(value) > ACTIVE_POWER_VALUE_MAX:
        value = value // 10 if value >= 0 else -(-value // 10)
        multiplier += 1
    return ActivePower(multiplier=multiplier, value=value)


def watts_of(p: ActivePower | None) -> float | None:
    """The W of an ActivePower (value × 10^multiplier)."""
    return None if p is None else p.value * 10.0**p.multiplier


@dataclass(frozen=True)
class Deferred:
    """A handler's answer to send once ``future`` completes (its error, if any, is the answer)."""

    future: concurrent.futures.Future[None]
    response: Response


# ---- paging -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Page:
    start: int
    limit: int
    after: dt.datetime | None


def page_of(request: Request) -> Page:
    q = request.query_params

    def integer(name: str, default: int, lo: int, hi: int) -> int:
        raw = q.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise InputError(f"query parameter {name}={raw!r} is not an integer", "") from exc
        if not lo <= value <= hi:
            raise InputError(f"query parameter {name}={value} is outside {lo}..{hi}", "")
        return value

    after = integer("a", -1, 0, 2**40)
    return Page(
        start=integer("s", 0, 0, 2**31),
        limit=integer("l", 1, 0, MAX_PAGE),
        after=None if after < 0 else _from_epoch(after),
    )


# ---- the app ------------------------------------------------------------------------------------
class Sep2App:
    """Holds the engine, settings and session factory; ``asgi`` is the Starlette application."""

    def __init__(self, engine: Engine, settings: Sep2Settings | None = None) -> None:
        self.engine = engine
        self.settings = settings or Sep2Settings()
        self.sessions: sessionmaker[Session] = session_factory(engine)
        self._autocommit_sessions: sessionmaker[Session] | None = (
            session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
            if engine.dialect.name == "postgresql"
            else None
        )
        self.changes: ChangeFeed | None = (
            ChangeFeed(engine) if engine.dialect.name == "postgresql" else None
        )
        """Committed changes by notification (PostgreSQL; started with the application's
        lifespan): cached answers are served without a database check while it listens."""
        self._scopes: dict[str, tuple[ClientScope, float, int | None]] = {}
        """Resolved scopes: LFDI → (scope, expiry on the monotonic clock, change token)."""
        self._mmr_refs: dict[tuple[int, str], manager.MeterReadingRef] = {}
        self._derc_cache: dict[tuple[str, str, bytes, bool], tuple[Any, dt.datetime, bytes]] = {}
        """Rendered DERControlLists: key → (control generation, valid until, body)."""
        self._derc_hot: dict[tuple[str, str, bytes], tuple[int, int, dt.datetime, bytes]] = {}
        """The same lists for answering without the database while :attr:`changes` listens:
        (client LFDI as the TLS layer gives it, path, query) → (EndDevice id, change token taken
        before the rows were read, valid until, body)."""
        self._mup_owners: dict[int, tuple[Any, float, int | None]] = {}
        self._pre_programs: dict[int, str] = {}
        """Site and operations program ids → keys, as the last bulk load read them."""
        self._derc_pre: dict[tuple[int, int], tuple[int, Any, list[Any]]] = {}
        """Bulk-loaded DERControlList inputs (:meth:`preload_access`): (EndDevice id, program
        id) → (change token taken before the read, device snapshot, control rows)."""
        self.writer = ReadingWriter(engine)
        self.preloads = 0
        """Bulk loads of the access facts the background thread has run (diagnostics, tests)."""
        self.asgi = Starlette(routes=self.routes(), lifespan=self.lifespan)

    # -- plumbing --------------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return self.settings.clock()

    def xml(
        self, entity: BaseXmlModel, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        return Response(
            sepxml.render(entity, csip_aus_ns=self.settings.csip_aus_ns),
            status_code=status,
            media_type=sepxml.CONTENT_TYPE,
            headers=headers,
        )

    def error(self, status: int, message: str, reason: int = 1) -> Response:
        return self.xml(ErrorResponse(reasonCode=ReasonCodeType(reason), message=message), status)

    @contextmanager
    def transaction(
        self, request: Request, *, read_only: bool = False
    ) -> Iterator[tuple[Session, ClientScope]]:
        """A session and the client's scope. ``read_only`` handlers whose statements are each
        consistent on their own run them in autocommit on PostgreSQL: one round trip per
        statement instead of BEGIN, statement, COMMIT."""
        tls = request.scope.get("extensions", {}).get("tls", {})
        lfdi = tls.get("client_lfdi")
        if not lfdi:
            raise PermissionDeniedError("no client certificate was presented")
        if read_only and self._autocommit_sessions is not None:
            with self._autocommit_sessions() as session:
                yield session, self._scope(session, lfdi)
            return
        with self.sessions.begin() as session:
            yield session, self._scope(session, lfdi)

    def _token(self) -> int | None:
        return self.changes.token() if self.changes is not None else None

    def _still_valid(self, expires: float, token: int | None, edev_id: int) -> bool:
        """Whether a cached access fact holds: while change notifications are received, until
        a change of the device (or of the registry, ``edev_id`` 0) is notified; otherwise until
        ``expires`` (:attr:`Sep2Settings.scope_cache_s`)."""
        if self.changes is not None and self.changes.listening:
            return token is not None and self.changes.fresh(edev_id, token)
        return expires > time.monotonic()

    def cached_scope(self, lfdi: str) -> ClientScope | None:
        """The certificate's scope if this worker resolved it and it still holds (no query)."""
        hit = self._scopes.get(lfdi)
        if hit is not None and self._still_valid(hit[1], hit[2], 0):
            return hit[0]
        return None

    def _scope(self, session: Session, lfdi: str) -> ClientScope:
        ttl = self.settings.scope_cache_s
        if ttl <= 0:
            return manager.resolve_scope(session, lfdi)
        hit = self.cached_scope(lfdi)
        if hit is not None:
            return hit
        token = self._token()
        scope = manager.resolve_scope(session, lfdi)
        if len(self._scopes) > ACCESS_CACHE_MAX:  # bound the memory of a long-running worker
            self._scopes.clear()
        self._scopes[lfdi] = (scope, time.monotonic() + ttl, token)
        return scope

    def _mup_owner(self, session: Session, mup_id: int) -> Any:
        """:func:`manager.mirror_usage_point_owner`, reused for ``scope_cache_s`` like the
        certificate scopes: who owns a MirrorUsagePoint changes only with the registry (a DER
        moved to another aggregator), which this server already applies within that time."""
        ttl = self.settings.scope_cache_s
        if ttl <= 0:
            return manager.mirror_usage_point_owner(session, mup_id)
        hit = self.cached_mup_owner(mup_id)
        if hit is not None:
            return hit
        token = self._token()
        owner = manager.mirror_usage_point_owner(session, mup_id)
        if owner is not None:
            if len(self._mup_owners) > ACCESS_CACHE_MAX:
                self._mup_owners.clear()
            self._mup_owners[mup_id] = (owner, time.monotonic() + ttl, token)
        return owner

    def cached_mup_owner(self, mup_id: int) -> Any:
        """:meth:`_mup_owner` if this worker knows it and it still holds (no query), else None."""
        if self.settings.scope_cache_s <= 0:
            return None
        hit = self._mup_owners.get(mup_id)
        if hit is not None and self._still_valid(hit[1], hit[2], hit[0].end_device_id):
            return hit[0]
        return None

    def preload_access(self) -> int:
        """Load the access facts of the whole fleet into this worker's caches in bulk: every
        certificate's scope, every MirrorUsagePoint's owner, every MirrorMeterReading's type
        (three queries; at most :data:`ACCESS_CACHE_MAX` of each), so a device's first telemetry
        POST in this worker needs no lookup and takes the event-loop path at once; and every
        device's snapshot with its site and operations control rows (two queries, at most
        :data:`DERC_PRELOAD_MAX_ROWS` rows), so its first DERControlList poll is rendered
        without the database (:meth:`_derc_from_preload`). PostgreSQL
        while the change feed listens only: each fact is stored with the feed's token taken
        before its rows were read, so a change committed after the read (``d:<EndDevice>`` or
        ``*``) voids it exactly as it voids one looked up alone. Returns how many facts were
        stored (0 when not listening)."""
        if self.changes is None or self._autocommit_sessions is None:
            return 0
        token = self.changes.token()
        if token is None:
            return 0
        ttl = self.settings.scope_cache_s
        if ttl <= 0:
            return 0
        expires = time.monotonic() + ttl
        with self._autocommit_sessions() as session:
            scopes = manager.all_scopes(session, ACCESS_CACHE_MAX)
            owners = manager.all_mup_owners(session, ACCESS_CACHE_MAX)
            refs = manager.all_meter_reading_refs(session, ACCESS_CACHE_MAX)
            programs = manager.polled_program_keys(session)
            snaps, lists = manager.all_device_lists(
                session, list(programs), self.now(), ACCESS_CACHE_MAX, DERC_PRELOAD_MAX_ROWS
            )
        self._pre_programs = programs
        self._derc_pre = {key: (token, snaps[key[0]], rows) for key, rows in lists.items()}
        if len(self._scopes) + len(scopes) > ACCESS_CACHE_MAX:
            self._scopes.clear()
        self._scopes.update((lfdi, (scope, expires, token)) for lfdi, scope in scopes)
        if len(self._mup_owners) + len(owners) > ACCESS_CACHE_MAX:
            self._mup_owners.clear()
        self._mup_owners.update((o.id, (o, expires, token)) for o in owners)
        if len(self._mmr_refs) + len(refs) > ACCESS_CACHE_MAX:
            self._mmr_refs.clear()
        self._mmr_refs.update(((mup, mrid.lower()), ref) for mup, mrid, ref in refs)
        log.info(
            "access facts loaded: %d scopes, %d owners, %d reading types",
            len(scopes),
            len(owners),
            len(refs),
        )
        return len(scopes) + len(owners) + len(refs)

    def _preload_loop(self, stop: threading.Event) -> None:
        """Background thread: :meth:`preload_access` once the feed listens, and again after
        every change that voids all facts (a ``*`` notification, listening restarted), at most
        every :data:`PRELOAD_MIN_INTERVAL_S`."""
        assert self.changes is not None
        loaded_at = -1  # the feed's all_seq the last load covered
        last = -PRELOAD_MIN_INTERVAL_S
        while not stop.wait(0.2):
            if not self.changes.listening or self.changes.all_seq == loaded_at:
                continue
            if time.monotonic() - last < PRELOAD_MIN_INTERVAL_S:
                continue
            seq = self.changes.all_seq
            try:
                self.preload_access()
            except Exception:  # the facts are then looked up one by one, as without it
                log.exception("bulk load of access facts failed")
            loaded_at = seq
            last = time.monotonic()
            self.preloads += 1

    def endpoint(
        self, fn: Callable[..., Response], *, executor: concurrent.futures.Executor | None = None
    ) -> Callable[[Request], Any]:
        """Wrap a handler: errors → status codes; the handler runs in a worker thread (anyio's,
        or ``executor``'s) unless :attr:`Sep2Settings.inline_handlers`."""
        from starlette.concurrency import run_in_threadpool

        inline = self.settings.inline_handlers

        async def call(request: Request, body: bytes) -> Response:
            if inline:
                return fn(request, body)
            if executor is not None:
                return await asyncio.get_running_loop().run_in_executor(executor, fn, request, body)
            return await run_in_threadpool(fn, request, body)

        async def run(request: Request) -> Response:
            body = await request.body() if request.method in ("POST", "PUT") else b""
            try:
                result = await call(request, body)
                if isinstance(result, Deferred):
                    await asyncio.wrap_future(result.future)
                    return result.response
                return result
            except Exception as exc:
                answer = self.error_answer(exc)
                if answer is None:
                    raise
                return answer

        return run

    def error_answer(self, exc: Exception) -> Response | None:
        """The answer to a handler's error (None: not a domain error, the server answers 500)."""
        if isinstance(exc, sepxml.XmlRejectedError):
            return self.error(exc.status, str(exc), 0)
        if isinstance(exc, PermissionDeniedError):
            return self.error(403, str(exc))
        if isinstance(exc, NotFoundError):
            return self.error(404, str(exc))
        if isinstance(exc, ConflictError):
            return self.error(409, str(exc))
        if isinstance(exc, IntegrityError):
            # two requests created the same resource at once; nothing was stored by this one
            log.info("concurrent write refused: %s", exc.orig)
            return self.error(409, "a concurrent request changed this resource; retry")
        if isinstance(exc, InputError):
            return self.error(400, str(exc))
        if isinstance(exc, GridflexError):
            log.exception("2030.5 request failed", exc_info=exc)
            return self.error(500, f"{type(exc).__name__}: {exc}", 16384)
        return None

    def routes(self) -> list[BaseRoute]:
        e = self.endpoint
        edev = "/edev/{edev_id:int}"
        derp = edev + "/derp/{derp_id:int}"
        der = edev + "/der/{der_id:int}"
        return [
            Route("/dcap", e(self.get_dcap), methods=["GET"]),
            Route("/tm", e(self.get_time), methods=["GET"]),
            Route("/edev", e(self.get_edev_list), methods=["GET"]),
            Route("/edev", e(self.post_edev), methods=["POST"]),
            Route(edev, e(self.get_edev), methods=["GET"]),
            Route(edev + "/rg", e(self.get_registration), methods=["GET"]),
            Route(edev + "/cp", e(self.get_connection_point), methods=["GET"]),
            Route(edev + "/cp", e(self.put_connection_point), methods=["PUT", "POST"]),
            Route(edev + "/fsa", e(self.get_fsa_list), methods=["GET"]),
            Route(edev + "/fsa/{fsa_id:int}", e(self.get_fsa), methods=["GET"]),
            Route(edev + "/fsa/{fsa_id:int}/derp", e(self.get_derp_list), methods=["GET"]),
            Route(edev + "/derp", e(self.get_derp_list), methods=["GET"]),
            Route(derp, e(self.get_derp), methods=["GET"]),
            Route(derp + "/derc", e(self.get_derc_list), methods=["GET"]),
            Route(derp + "/actderc", e(self.get_actderc_list), methods=["GET"]),
            Route(derp + "/derc/{derc_id:int}", e(self.get_derc), methods=["GET"]),
            Route(derp + "/dderc", e(self.get_dderc), methods=["GET"]),
            Route(edev + "/der", e(self.get_der_list), methods=["GET"]),
            Route(der, e(self.get_der), methods=["GET"]),
            Route(der + "/{kind:str}", e(self.get_der_info), methods=["GET"]),
            Route(der + "/{kind:str}", e(self.put_der_info), methods=["PUT"]),
            Route(edev + "/sub", e(self.get_sub_list), methods=["GET"]),
            Route(edev + "/sub", e(self.post_sub), methods=["POST"]),
            Route(edev + "/sub/{sub_id:int}", e(self.get_sub), methods=["GET"]),
            Route(edev + "/sub/{sub_id:int}", e(self.delete_sub), methods=["DELETE"]),
            Route("/mup", e(self.get_mup_list), methods=["GET"]),
            Route("/mup", e(self.post_mup), methods=["POST"]),
            Route("/mup/{mup_id:int}", e(self.get_mup), methods=["GET"]),
            Route("/mup/{mup_id:int}", e(self.post_mmr), methods=["POST"]),
            Route(RESPONSE_HREF, e(self.post_response), methods=["POST"]),
        ]

    # -- function set: device capability and time -----------------------------------------------
    def get_dcap(self, request: Request, _body: bytes) -> Response:
        with self.transaction(request) as (session, scope):
            n_edev = session.scalar(
                select(func.count()).select_from(manager.visible_devices_stmt(scope).subquery())
            )
            n_mup = session.scalar(
                select(func.count()).select_from(manager.visible_mups_stmt(scope).subquery())
            )
        return self.xml(
            DeviceCapabilityResponse(
                href="/dcap",
                pollRate=self.settings.poll_rate_s,
                TimeLink=Link(href="/tm"),
                EndDeviceListLink=ListLink(href="/edev", all_=n_edev or 0),
                MirrorUsagePointListLink=ListLink(href="/mup", all_=n_mup or 0),
            )
        )

    def get_time(self, request: Request, _body: bytes) -> Response:
        with self.transaction(request):
            pass  # only authenticated clients
        now = self.now()
        tz = ZoneInfo(self.settings.tz)
        dst_start, dst_end, dst_offset_s = _dst_rules(self.settings.tz, now.year)
        local = now.astimezone(tz)
        std_offset = (local.utcoffset() or dt.timedelta()) - (local.dst() or dt.timedelta())
        return self.xml(
            TimeResponse(
                href="/tm",
                currentTime=_epoch(now),
                dstEndTime=dst_end,
                dstOffset=dst_offset_s,
                dstStartTime=dst_start,
                localTime=_epoch(now) + int((local.utcoffset() or dt.timedelta()).total_seconds()),
                quality=TimeQualityType.level_3_source,  # an NTP-synchronised host
                tzOffset=int(std_offset.total_seconds()),
            )
        )

    # -- end devices -------------------------------------------------------------------------------
    def _edev_model(self, session: Session, edev: EndDevice) -> EndDeviceResponse:
        base = f"/edev/{edev.id}"
        n_subs = session.scalar(
            select(func.count()).where(SubscriptionRow.end_device_id == edev.id)
        )
        return EndDeviceResponse(
            href=base,
            lFDI=edev.lfdi.upper(),
            sFDI=edev.sfdi,
            changedTime=_epoch(edev.changed_time),
            enabled=edev.enabled,
            postRate=edev.post_rate_s or self.settings.post_rate_s,
            deviceCategory=edev.device_category,
            RegistrationLink=Link(href=base + "/rg"),
            SubscriptionListLink=ListLink(href=base + "/sub", all_=n_subs or 0),
            FunctionSetAssignmentsListLink=None
            if edev.is_aggregator
            else ListLink(href=base + "/fsa", all_=1),
            DERListLink=None if edev.is_aggregator else ListLink(href=base + "/der", all_=1),
            ConnectionPointLink=None
            if edev.is_aggregator
            else ConnectionPointLink(href=base + "/cp"),
        )

    def get_edev_list(self, request: Request, _body: bytes) -> Response:
        page = page_of(request)
        with self.transaction(request) as (session, scope):
            stmt = manager.visible_devices_stmt(scope)
            if page.after is not None:
                stmt = stmt.where(EndDevice.changed_time >= page.after)
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = session.scalars(stmt.offset(page.start).limit(page.limit)).all()
            items = [self._edev_model(session, r) for r in rows]
        return self.xml(
            EndDeviceListResponse(
                href="/edev",
                all_=total,
                results=len(items),
                pollRate=self.settings.poll_rate_s,
                subscribable=NOSUB,
                EndDevice=items,
            )
        )

    def post_edev(self, request: Request, body: bytes) -> Response:
        req = sepxml.parse(EndDeviceRequest, body, max_bytes=self.settings.max_xml_bytes)
        with self.transaction(request) as (session, scope):
            edev, created = manager.register_end_device(
                session,
                scope,
                manager.EndDeviceInput(
                    lfdi=req.lFDI,
                    sfdi=req.sFDI,
                    device_category=req.deviceCategory,
                    enabled=req.enabled if req.enabled is not None else True,
                    post_rate_s=req.postRate,
                ),
                self.now(),
            )
            href = f"/edev/{edev.id}"
        return Response(status_code=201 if created else 204, headers={"Location": href})

    def get_edev(self, request: Request, _body: bytes) -> Response:
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            model = self._edev_model(session, edev)
        return self.xml(model)

    def get_registration(self, request: Request, _body: bytes) -> Response:
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            reg = manager.registration(session, edev)
            model = RegistrationResponse(
                href=f"/edev/{edev.id}/rg",
                pollRate=self.settings.poll_rate_s,
                dateTimeRegistered=_epoch(reg.registered_at),
                pIN=reg.pin,
            )
        return self.xml(model)

    # -- CSIP-AUS connection point (the NMI of the site) ---------------------------------------
    def get_connection_point(self, request: Request, _body: bytes) -> Response:
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            if edev.is_aggregator or not edev.nmi:
                raise NotFoundError(f"EndDevice {edev.id} has no ConnectionPoint yet")
            model = ConnectionPointResponse(href=f"/edev/{edev.id}/cp", id=edev.nmi)
        return self.xml(model)

    def put_connection_point(self, request: Request, body: bytes) -> Response:
        """CSIP-AUS clients PUT their connection point identifier (the NMI) after registering;
        both the v1.1 ``id`` and the later ``connectionPointId`` element are accepted."""
        req = sepxml.parse(ConnectionPointRequest, body, max_bytes=self.settings.max_xml_bytes)
        nmi = (req.id or req.id_v11 or "").strip()
        if not nmi or len(nmi) > 32:
            raise InputError(
                f"ConnectionPoint id {nmi!r} is empty or longer than 32 characters",
                "send the site's connection point identifier (NMI) in connectionPointId",
            )
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            if edev.is_aggregator:
                raise InputError("an aggregator's own EndDevice has no connection point", "")
            edev.nmi = nmi
            edev.changed_time = self.now()
        return Response(status_code=204)

    # -- function set assignments and programs --------------------------------------------------
    def _fsa_model(self, edev: EndDevice, n_programs: int) -> FunctionSetAssignmentsResponse:
        base = f"/edev/{edev.id}/fsa/1"
        return FunctionSetAssignmentsResponse(
            href=base,
            mRID=manager._mrid("fsa", edev.id),
            description="gridflex",
            subscribable=NOSUB,
            DERProgramListLink=ListLink(href=base + "/derp", all_=n_programs),
            TimeLink=Link(href="/tm"),
        )

    def get_fsa_list(self, request: Request, _body: bytes) -> Response:
        page = page_of(request)
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            n = len(manager.programs_for(session, edev))
            items = [self._fsa_model(edev, n)] if not edev.is_aggregator else []
        shown = items[page.start : page.start + page.limit]
        return self.xml(
            FunctionSetAssignmentsListResponse(
                href=f"/edev/{edev.id}/fsa",
                all_=len(items),
                results=len(shown),
                pollRate=self.settings.poll_rate_s,
                subscribable=NOSUB,
                FunctionSetAssignments=shown,
            )
        )

    def get_fsa(self, request: Request, _body: bytes) -> Response:
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            if request.path_params["fsa_id"] != 1 or edev.is_aggregator:
                raise NotFoundError("FunctionSetAssignments not found")
            n = len(manager.programs_for(session, edev))
        return self.xml(self._fsa_model(edev, n))

    def _derp_model(
        self, session: Session, edev: EndDevice, prog: manager.ProgramRef, now: dt.datetime
    ) -> der_schema.DERProgramResponse:
        base = f"/edev/{edev.id}/derp/{prog.id}"
        listed = manager.listed_controls(session, edev, prog, now)
        active = manager.listed_controls(session, edev, prog, now, active_only=True)
        return der_schema.DERProgramResponse(
            href=base,
            mRID=prog.mrid,
            description=prog.description,
            subscribable=NOSUB,
            primacy=prog.primacy,
            DefaultDERControlLink=Link(href=base + "/dderc"),
            DERControlListLink=ListLink(href=base + "/derc", all_=len(listed)),
            ActiveDERControlListLink=ListLink(href=base + "/actderc", all_=len(active)),
        )

    def get_derp_list(self, request: Request, _body: bytes) -> Response:
        page = page_of(request)
        now = self.now()
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            manager.publish_terms_controls(session, edev, now)
            progs = manager.programs_for(session, edev)
            shown = progs[page.start : page.start + page.limit]
            items = [self._derp_model(session, edev, p, now) for p in shown]
        return self.xml(
            der_schema.DERProgramListResponse(
                href=request.url.path,
                all_=len(progs),
                results=len(items),
                pollRate=self.settings.poll_rate_s,
                subscribable=NOSUB,
                DERProgram=items,
            )
        )

    def get_derp(self, request: Request, _body: bytes) -> Response:
        now = self.now()
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            prog = manager.program_for(session, edev, request.path_params["derp_id"])
            model = self._derp_model(session, edev, prog, now)
        return self.xml(model)

    # -- controls --------------------------------------------------------------------------------
    def _derc_model(
        self, edev: EndDevice | Any, ctrl: DerControl | Any, now: dt.datetime
    ) -> der_schema.DERControlResponse:
        status, when, pending = schedule.event_status(
            ctrl.start,
            ctrl.duration_s,
            now,
            cancelled_at=ctrl.cancelled_at,
            superseded_at=ctrl.superseded_at,
            randomized=bool(ctrl.randomize_start_s or ctrl.randomize_duration_s),
        )
        return der_schema.DERControlResponse(
            href=f"/edev/{edev.id}/derp/{ctrl.der_program_id}/derc/{ctrl.id}",
            mRID=ctrl.mrid,
            description=ctrl.description or None,
            version=ctrl.version,
            subscribable=NOSUB,
            replyTo=RESPONSE_HREF,
            responseRequired=RESPONSE_REQUIRED,
            creationTime=_epoch(ctrl.creation_time),
            EventStatus_=EventStatus(
                currentStatus=status,
                dateTime=_epoch(when),
                potentiallySuperseded=pending,
                potentiallySupersededTime=_epoch(ctrl.creation_time) if pending else None,
            ),
            interval=DateTimeIntervalType(start=_epoch(ctrl.start), duration=ctrl.duration_s),
            randomizeStart=ctrl.randomize_start_s,
            randomizeDuration=ctrl.randomize_duration_s,
            DERControlBase_=der_schema.DERControlBase(
                opModConnect=ctrl.connect,
                opModEnergize=ctrl.energize,
                opModExpLimW=_watts(ctrl.exp_lim_w),
                opModImpLimW=_watts(ctrl.imp_lim_w),
                opModGenLimW=_watts(ctrl.gen_lim_w),
                opModLoadLimW=_watts(ctrl.load_lim_w),
            ),
        )

    def _derc_list(self, request: Request, *, active_only: bool) -> Response:
        page = page_of(request)
        now = self.now()
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            prog = manager.program_for(session, edev, request.path_params["derp_id"])
            if prog.key == manager.SITE_PROGRAM_KEY:
                manager.publish_terms_controls(session, edev, now)
            rows = manager.listed_controls(session, edev, prog, now, active_only=active_only)
            if page.after is not None:
                rows = [r for r in rows if r.start >= page.after]
            shown = rows[page.start : page.start + page.limit]
            items = [self._derc_model(edev, c, now) for c in shown]
        return self.xml(
            der_schema.DERControlListResponse(
                href=request.url.path,
                all_=len(rows),
                results=len(items),
                subscribable=SUB,
                DERControl=items,
            )
        )

    def _derc_list_fast(self, request: Request, *, active_only: bool) -> Response | None:
        """The polling hot path: one entity-free query when nothing needs publishing and the
        program is one this worker knows; None sends the request down the full path (which
        also produces every error answer).

        The rendered list is cached per (client certificate, path, query) with the device's
        control generation (:func:`manager.device_snapshot`) and the earliest instant any listed
        control changes status or ends (or the terms controls need topping up): a hit needs
        both to hold, so a new terms version, an operator control, a cancellation or the clock
        passing an event boundary is visible on the next poll, in every worker process (the
        generation is read from the database on every request, like the access check).
        """
        now = self.now()
        edev_id = request.path_params["edev_id"]
        derp_id = request.path_params["derp_id"]
        if not active_only and (pre := self._derc_pre.get((edev_id, derp_id))) is not None:
            answer = self._derc_from_preload(request, pre, now)
            if answer is not None:
                return answer
        token = self._token()  # before any read: a change notified later invalidates the answer
        # read only: the generation is read before the rows, so a list rendered from rows newer
        # than its generation is only ever re-rendered, never served stale
        with self.transaction(request, read_only=True) as (session, scope):
            snap = manager.device_snapshot(session, edev_id, derp_id)
            if snap is None or snap.is_aggregator or not manager.may_access(scope, snap):
                return None
            if isinstance(scope, DeviceScope) and scope.der_id is not None and snap.der_id is None:
                return None
            prog = next((p for p in manager.cached_programs(session) if p.id == derp_id), None)
            if prog is None:
                return None
            if prog.key == manager.SITE_PROGRAM_KEY and manager.needs_publish(snap, now):
                return None
            key = (scope.lfdi, request.url.path, request.scope["query_string"], active_only)
            generation = (
                snap.terms_version,
                snap.published_terms_version,
                snap.published_until,
                snap.n_controls,
                snap.max_control_id,
                snap.sum_control_version,
            )
            hit = self._derc_cache.get(key)
            if hit is not None and hit[0] == generation and now < hit[1]:
                self._remember_hot(request, active_only, edev_id, token, hit[1], hit[2])
                return Response(hit[2], media_type=sepxml.CONTENT_TYPE)
            page = page_of(request)
            rows = manager.listed_control_rows(
                session, edev_id, derp_id, now, active_only=active_only
            )
        valid_until = _next_change(rows, now, snap.published_until)
        if page.after is not None:
            rows = [r for r in rows if r.start >= page.after]
        shown = rows[page.start : page.start + page.limit]
        body = render_derc_list(
            request.url.path, len(rows), snap.id, shown, now, self.settings.csip_aus_ns
        )
        if body is None:
            items = [self._derc_model(snap, c, now) for c in shown]
            body = sepxml.render(
                der_schema.DERControlListResponse(
                    href=request.url.path,
                    all_=len(rows),
                    results=len(items),
                    subscribable=SUB,
                    DERControl=items,
                ),
                csip_aus_ns=self.settings.csip_aus_ns,
            )
        if len(self._derc_cache) > 100_000:  # bound the memory of a long-running worker
            self._derc_cache.clear()
        self._derc_cache[key] = (generation, valid_until, body)
        self._remember_hot(request, active_only, edev_id, token, valid_until, body)
        return Response(body, media_type=sepxml.CONTENT_TYPE)

    def _derc_from_preload(
        self, request: Request, pre: tuple[int, Any, list[Any]], now: dt.datetime
    ) -> Response | None:
        """A first poll answered from the bulk-loaded rows (:meth:`preload_access`) with the
        same checks and render as the database path, while no change of the device (or of the
        registry) was notified since they were read; None sends it to the database path."""
        token, snap, loaded = pre
        if self.changes is None or not self.changes.fresh(snap.id, token):
            return None
        lfdi = request.scope.get("extensions", {}).get("tls", {}).get("client_lfdi")
        scope = self.cached_scope(lfdi) if lfdi else None
        if scope is None or snap.is_aggregator or not manager.may_access(scope, snap):
            return None
        if isinstance(scope, DeviceScope) and scope.der_id is not None and snap.der_id is None:
            return None
        key = self._pre_programs.get(request.path_params["derp_id"])
        if key is None:
            return None
        if key == manager.SITE_PROGRAM_KEY and manager.needs_publish(snap, now):
            return None
        page = page_of(request)
        rows = manager.still_listed(loaded, now)
        valid_until = _next_change(rows, now, snap.published_until)
        if page.after is not None:
            rows = [r for r in rows if r.start >= page.after]
        shown = rows[page.start : page.start + page.limit]
        body = render_derc_list(
            request.url.path, len(rows), snap.id, shown, now, self.settings.csip_aus_ns
        )
        if body is None:
            return None  # descriptions that need the models: the database path renders them
        self._remember_hot(request, False, snap.id, token, valid_until, body)
        return Response(body, media_type=sepxml.CONTENT_TYPE)

    def _remember_hot(
        self,
        request: Request,
        active_only: bool,
        edev_id: int,
        token: int | None,
        valid_until: dt.datetime,
        body: bytes,
    ) -> None:
        """Keep a list just read from the database (with the token taken before the read) for
        :meth:`cached_derc_list`, the answer without a database round trip."""
        if token is None or active_only or request.scope.get("root_path"):
            return  # HotRoutes answers only GET .../derc without a root_path
        lfdi = request.scope.get("extensions", {}).get("tls", {}).get("client_lfdi")
        if not lfdi:
            return
        if len(self._derc_hot) > 100_000:  # bound the memory of a long-running worker
            self._derc_hot.clear()
        key = (lfdi, request.scope["path"], request.scope["query_string"])
        self._derc_hot[key] = (edev_id, token, valid_until, body)

    def cached_derc_list(self, lfdi: str, path: str, query: bytes) -> bytes | None:
        """The DERControlList this certificate got for this path and query, if no change of the
        device or of the registry has been notified since it was read and no listed control has
        changed status since (:func:`_next_change`); None otherwise. No database access: only
        while :attr:`changes` listens (PostgreSQL), and only lists this certificate was allowed
        to read (the access check ran when the list was read; a change of ownership is a
        notified change)."""
        hit = self._derc_hot.get((lfdi, path, query))
        if hit is None or self.changes is None:
            return None
        edev_id, token, valid_until, body = hit
        if not self.changes.fresh(edev_id, token) or not self.now() < valid_until:
            return None
        return body

    def get_derc_list(self, request: Request, _body: bytes) -> Response:
        fast = self._derc_list_fast(request, active_only=False)
        return fast if fast is not None else self._derc_list(request, active_only=False)

    def get_actderc_list(self, request: Request, _body: bytes) -> Response:
        fast = self._derc_list_fast(request, active_only=True)
        return fast if fast is not None else self._derc_list(request, active_only=True)

    def get_derc(self, request: Request, _body: bytes) -> Response:
        now = self.now()
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            prog = manager.program_for(session, edev, request.path_params["derp_id"])
            ctrl = manager.get_control(session, edev, prog, request.path_params["derc_id"])
            model = self._derc_model(edev, ctrl, now)
        return self.xml(model)

    def get_dderc(self, request: Request, _body: bytes) -> Response:
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            prog = manager.program_for(session, edev, request.path_params["derp_id"])
            limits = manager.default_limits(session, edev, prog)
        return self.xml(
            der_schema.DefaultDERControl(
                href=f"/edev/{edev.id}/derp/{prog.id}/dderc",
                mRID=limits.mrid,
                description="fallback from terms",
                version=limits.version,
                subscribable=NOSUB,
                DERControlBase_=der_schema.DERControlBase(
                    opModExpLimW=_watts(limits.exp_lim_w),
                    opModImpLimW=_watts(limits.imp_lim_w),
                ),
            )
        )

    def post_response(self, request: Request, body: bytes) -> Response:
        req = sepxml.parse(ResponseModel, body, max_bytes=self.settings.max_xml_bytes)
        with self.transaction(request) as (session, scope):
            resp = manager.record_response(
                session,
                scope,
                end_device_lfdi=req.endDeviceLFDI,
                subject=req.subject,
                status=int(req.status) if req.status is not None else None,
                created_time=_from_epoch(req.createdDateTime) if req.createdDateTime else None,
                now=self.now(),
            )
            href = f"{RESPONSE_HREF}/{resp.id}"
        return Response(status_code=201, headers={"Location": href})

    # -- DER information written by clients ------------------------------------------------------
    def _der_model(self, edev: EndDevice) -> der_schema.DER:
        base = f"/edev/{edev.id}/der/1"
        return der_schema.DER(
            href=base,
            DERCapabilityLink=Link(href=base + "/dercap"),
            DERSettingsLink=Link(href=base + "/derg"),
            DERStatusLink=Link(href=base + "/ders"),
            DERAvailabilityLink=Link(href=base + "/dera"),
        )

    def get_der_list(self, request: Request, _body: bytes) -> Response:
        page = page_of(request)
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            items = [] if edev.is_aggregator else [self._der_model(edev)]
        shown = items[page.start : page.start + page.limit]
        return self.xml(
            der_schema.DERListResponse(
                href=f"/edev/{edev.id}/der",
                all_=len(items),
                results=len(shown),
                pollRate=self.settings.poll_rate_s,
                DER_=shown,
            )
        )

    def _der_path(self, session: Session, scope: ClientScope, request: Request) -> EndDevice:
        edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
        if request.path_params["der_id"] != 1 or edev.is_aggregator:
            raise NotFoundError(f"DER {request.path_params['der_id']} of EndDevice {edev.id}")
        return edev

    def get_der(self, request: Request, _body: bytes) -> Response:
        with self.transaction(request) as (session, scope):
            edev = self._der_path(session, scope, request)
        return self.xml(self._der_model(edev))

    def _info_kind(self, request: Request) -> type[BaseXmlModel]:
        kind = request.path_params["kind"]
        if kind not in DER_INFO_MODELS:
            raise NotFoundError(f"DER resource {kind!r} does not exist")
        return DER_INFO_MODELS[kind]

    def get_der_info(self, request: Request, _body: bytes) -> Response:
        model = self._info_kind(request)
        with self.transaction(request) as (session, scope):
            edev = self._der_path(session, scope, request)
            info = manager.get_der_info(session, edev, request.path_params["kind"])
            if info is None:
                raise NotFoundError(
                    f"EndDevice {edev.id} has not written its {model.__xml_tag__} yet"
                )
            stored = info.xml.encode()
        return Response(
            stored_der_info(model, stored, request.url.path, self.settings.csip_aus_ns),
            media_type=sepxml.CONTENT_TYPE,
        )

    def put_der_info(self, request: Request, body: bytes) -> Response:
        model = self._info_kind(request)
        entity = sepxml.parse(model, body, max_bytes=self.settings.max_xml_bytes)
        entity.href = request.url.path  # type: ignore[attr-defined]
        stored = sepxml.render(entity, csip_aus_ns=sepxml.CSIP_AUS_NS_V13).decode()
        with self.transaction(request) as (session, scope):
            edev = self._der_path(session, scope, request)
            manager.put_der_info(session, edev, request.path_params["kind"], stored, self.now())
        return Response(status_code=204)

    # -- subscriptions ---------------------------------------------------------------------------
    def _sub_model(self, edev: EndDevice, sub: SubscriptionRow) -> SubscriptionModel:
        return SubscriptionModel(
            href=f"/edev/{edev.id}/sub/{sub.id}",
            subscribedResource=sub.subscribed_resource,
            encoding=SubscriptionEncoding(sub.encoding),
            level="-S1",
            limit=sub.limit,
            notificationURI=sub.notification_uri,
        )

    def get_sub_list(self, request: Request, _body: bytes) -> Response:
        page = page_of(request)
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            stmt = (
                select(SubscriptionRow)
                .where(SubscriptionRow.end_device_id == edev.id)
                .order_by(SubscriptionRow.id)
            )
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = session.scalars(stmt.offset(page.start).limit(page.limit)).all()
            items = [self._sub_model(edev, s) for s in rows]
        return self.xml(
            SubscriptionListResponse(
                href=f"/edev/{edev.id}/sub", all_=total, results=len(items), subscriptions=items
            )
        )

    def post_sub(self, request: Request, body: bytes) -> Response:
        req = sepxml.parse(SubscriptionModel, body, max_bytes=self.settings.max_xml_bytes)
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            sub = manager.add_subscription(
                session,
                scope,
                edev,
                subscribed_resource=str(req.subscribedResource),
                notification_uri=str(req.notificationURI),
                limit=req.limit,
                encoding=int(req.encoding),
                now=self.now(),
            )
            href = f"/edev/{edev.id}/sub/{sub.id}"
        return Response(status_code=201, headers={"Location": href})

    def _sub_row(self, session: Session, edev: EndDevice, sub_id: int) -> SubscriptionRow:
        sub = session.get(SubscriptionRow, sub_id)
        if sub is None or sub.end_device_id != edev.id:
            raise NotFoundError(f"Subscription {sub_id} of EndDevice {edev.id}")
        return sub

    def get_sub(self, request: Request, _body: bytes) -> Response:
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            model = self._sub_model(
                edev, self._sub_row(session, edev, request.path_params["sub_id"])
            )
        return self.xml(model)

    def delete_sub(self, request: Request, _body: bytes) -> Response:
        with self.transaction(request) as (session, scope):
            edev = manager.get_end_device(session, scope, request.path_params["edev_id"])
            session.delete(self._sub_row(session, edev, request.path_params["sub_id"]))
        return Response(status_code=204)

    # -- metering mirror -------------------------------------------------------------------------
    def _mup_model(self, mup: MupRow, device_lfdi: str) -> MirrorUsagePoint:
        return MirrorUsagePointRequest(
            href=f"/mup/{mup.id}",
            mRID=mup.mrid,
            description=mup.description or None,
            roleFlags=mup.role_flags,
            serviceCategoryKind=ServiceKind(mup.service_category),
            status=mup.status,
            deviceLFDI=device_lfdi.upper(),
            postRate=mup.post_rate_s or self.settings.post_rate_s,
        )

    def get_mup_list(self, request: Request, _body: bytes) -> Response:
        page = page_of(request)
        with self.transaction(request) as (session, scope):
            stmt = manager.visible_mups_stmt(scope)
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = session.scalars(stmt.offset(page.start).limit(page.limit)).all()
            items = []
            for m in rows:
                dev = session.get(EndDevice, m.end_device_id)
                items.append(self._mup_model(m, dev.lfdi if dev else m.poster_lfdi))
        return self.xml(
            MirrorUsagePointListResponse(
                href="/mup",
                all_=total,
                results=len(items),
                pollRate=self.settings.poll_rate_s,
                mirrorUsagePoints=items,
            )
        )

    def get_mup(self, request: Request, _body: bytes) -> Response:
        with self.transaction(request) as (session, scope):
            mup = manager.get_mirror_usage_point(session, scope, request.path_params["mup_id"])
            dev = session.get(EndDevice, mup.end_device_id)
            model = self._mup_model(mup, dev.lfdi if dev else mup.poster_lfdi)
        return self.xml(model)

    def post_mup(self, request: Request, body: bytes) -> Response:
        req = sepxml.parse(MirrorUsagePointRequest, body, max_bytes=self.settings.max_xml_bytes)
        readings = tuple(_meter_reading_input(m) for m in req.mirrorMeterReadings or [])
        with self.transaction(request) as (session, scope):
            mup, created = manager.upsert_mirror_usage_point(
                session,
                scope,
                device_lfdi=req.deviceLFDI,
                mrid=req.mRID,
                description=req.description or "",
                role_flags=str(req.roleFlags),
                service_category=int(req.serviceCategoryKind),
                status=int(req.status),
                post_rate_s=req.postRate,
                meter_readings=readings,
                now=self.now(),
            )
            href = f"/mup/{mup.id}"
        return Response(status_code=201 if created else 204, headers={"Location": href})

    def post_mmr(self, request: Request, body: bytes) -> Response:
        root = sepxml.parse_tree(body, max_bytes=self.settings.max_xml_bytes)
        if etree.QName(root).localname == "MirrorMeterReadingList":
            lst = sepxml.model_from_tree(MirrorMeterReadingListRequest, root)
            mmrs = list(lst.mirrorMeterReadings or [])
        else:
            mmrs = [sepxml.model_from_tree(MirrorMeterReadingRequest, root)]
        mup_id = request.path_params["mup_id"]
        inputs = [_meter_reading_input(m) for m in mmrs]
        now = self.now()
        refs = [self._mmr_refs.get((mup_id, d.mrid.lower())) for d in inputs]
        items: list[tuple[int, int, tuple[manager.ReadingInput, ...]]] = []
        if self.settings.group_commit:
            # routine telemetry only reads here (the writer stores the readings): the owner and
            # the reading types in autocommit on PostgreSQL, one round trip each
            with self.transaction(request, read_only=True) as (session, scope):
                owner = self._mup_owner(session, mup_id)
                if owner is not None and manager.may_access(scope, owner):
                    refs = [
                        r if r is not None else manager.meter_reading_ref(session, mup_id, d.mrid)
                        for r, d in zip(refs, inputs, strict=True)
                    ]
                    for r, d in zip(refs, inputs, strict=True):
                        if r is None or not r.accepts(d):
                            items = []
                            break
                        items.append((r.id, d.power_of_ten, d.readings))
            if items:
                for r, d in zip(refs, inputs, strict=True):
                    assert r is not None
                    self._remember_mmr(mup_id, d.mrid, r)
                created = Response(status_code=201, headers={"Location": f"/mup/{mup_id}"})
                # answered once the writer has committed the readings (never before)
                return Deferred(self.writer.submit(items, now), created)  # type: ignore[return-value]
        with self.transaction(request) as (session, scope):
            owner = self._mup_owner(session, mup_id)
            fast = owner is not None and manager.may_access(scope, owner)
            if fast:  # a worker's first post of this reading: its metadata in one query
                refs = [
                    r if r is not None else manager.meter_reading_ref(session, mup_id, d.mrid)
                    for r, d in zip(refs, inputs, strict=True)
                ]
            if fast and all(
                r is not None and r.accepts(d) for r, d in zip(refs, inputs, strict=True)
            ):
                # routine telemetry: readings only, metadata unchanged
                for r, d in zip(refs, inputs, strict=True):
                    assert r is not None
                    items.append((r.id, d.power_of_ten, d.readings))
                    self._remember_mmr(mup_id, d.mrid, r)
                if not self.settings.group_commit:
                    for mmr_id, p10, readings in items:
                        manager.upsert_readings(session, mmr_id, p10, readings, now)
            else:
                mup = manager.get_mirror_usage_point(session, scope, mup_id)
                for d in inputs:
                    ref = manager.add_meter_reading(session, mup, d, now)
                    self._remember_mmr(mup_id, d.mrid, ref)
        created = Response(status_code=201, headers={"Location": f"/mup/{mup_id}"})
        if items and self.settings.group_commit:
            # answered once the writer has committed the readings (never before)
            return Deferred(self.writer.submit(items, now), created)  # type: ignore[return-value]
        return created

    def routine_mmr(
        self, lfdi: str, mup_id: int, body: bytes
    ) -> concurrent.futures.Future[None] | None:
        """A routine telemetry POST handled without the database or a thread hand-off: the same
        strict parse as :meth:`post_mmr`, the certificate's scope and the MirrorUsagePoint's
        owner from this worker's caches (:meth:`cached_scope`, :meth:`cached_mup_owner`), the
        reading types already known and unchanged; the readings go to the group-commit writer
        and the future completes after their commit. None when any of that does not hold (and
        for every document :meth:`post_mmr` would refuse): the caller takes the full path, which
        answers it exactly as before."""
        if not self.settings.group_commit:
            return None
        scope = self.cached_scope(lfdi)
        owner = self.cached_mup_owner(mup_id)
        if scope is None or owner is None or not manager.may_access(scope, owner):
            return None
        try:
            root = sepxml.parse_tree(body, max_bytes=self.settings.max_xml_bytes)
            if etree.QName(root).localname == "MirrorMeterReadingList":
                lst = sepxml.model_from_tree(MirrorMeterReadingListRequest, root)
                mmrs = list(lst.mirrorMeterReadings or [])
            else:
                mmrs = [sepxml.model_from_tree(MirrorMeterReadingRequest, root)]
            inputs = [_meter_reading_input(m) for m in mmrs]
        except GridflexError:
            return None  # refused on the full path, with its answer
        items: list[tuple[int, int, tuple[manager.ReadingInput, ...]]] = []
        for d in inputs:
            ref = self._mmr_refs.get((mup_id, d.mrid.lower()))
            if ref is None or not ref.accepts(d):
                return None
            items.append((ref.id, d.power_of_ten, d.readings))
        return self.writer.submit(items, self.now())

    def _remember_mmr(self, mup_id: int, mrid: str, ref: manager.MeterReadingRef) -> None:
        if len(self._mmr_refs) > ACCESS_CACHE_MAX:  # bound the memory of a long-running worker
            self._mmr_refs.clear()
        self._mmr_refs[(mup_id, mrid.lower())] = ref

    # -- notifications ---------------------------------------------------------------------------
    def _notification(self, session: Session, note: NotificationRow, sub: SubscriptionRow) -> bytes:
        """The Notification for an outbox row: the subscribed DERControlList as it is now."""
        parts = note.resource_href.strip("/").split("/")
        now = self.now()
        edev = session.get(EndDevice, int(parts[1]))
        if edev is None:
            raise NotFoundError(f"EndDevice of {note.resource_href} no longer exists")
        prog = manager.program_for(session, edev, int(parts[3]))
        rows = manager.listed_controls(session, edev, prog, now)[: max(1, sub.limit)]
        items = [self._derc_model(edev, c, now) for c in rows]
        combined = NotificationResourceCombined(
            type="DERControlList",
            href=note.resource_href,
            all_=len(rows),
            results=len(items),
            DERControl=items,
        )
        entity = NotificationModel(
            subscribedResource=note.resource_href,
            resource=combined,
            status=NotificationStatus.DEFAULT,
            subscriptionURI=f"{self.settings.notify_base_url}/edev/{sub.end_device_id}/sub/{sub.id}",
        )
        return sepxml.render(entity, csip_aus_ns=self.settings.csip_aus_ns)

    def deliver_pending(self, client: httpx.Client, limit: int = 100) -> int:
        """POST pending Notifications to their subscribers; returns how many were delivered.

        Failures are counted on the row (``attempts``, ``last_error``); a row is retried on later
        rounds until it has failed five times (IEEE 2030.5-2018 clause 9.2.4 leaves retry policy
        to the server).
        """
        delivered = 0
        with self.sessions.begin() as session:
            for note in manager.pending_notifications(session, limit):
                sub = session.get(SubscriptionRow, note.subscription_id)
                if sub is None:
                    continue
                note.attempts += 1
                try:
                    body = self._notification(session, note, sub)
                    r = client.post(
                        sub.notification_uri,
                        content=body,
                        headers={"Content-Type": sepxml.CONTENT_TYPE},
                    )
                    if r.status_code >= 300:
                        raise GridflexError(f"subscriber answered {r.status_code}")
                except (httpx.HTTPError, GridflexError) as exc:
                    note.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    log.warning(
                        "notification %s to %s failed: %s", note.id, sub.notification_uri, exc
                    )
                    continue
                note.delivered_at = self.now()
                delivered += 1
        return delivered

    def notify_client(self) -> httpx.Client:
        """An HTTPS client presenting the server's certificate to subscribers."""
        files = self.settings.notify_tls
        if files is None:
            raise InputError("no notify_tls configured", "give Sep2Settings.notify_tls")
        ctx = ssl.create_default_context(cafile=str(files.ca_cert))
        ctx.load_cert_chain(str(files.server_cert), str(files.server_key))
        return httpx.Client(verify=ctx, timeout=10)

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        """Run the notifier in the background while the application serves; on shutdown the
        round in progress finishes (its outcome is recorded) before the notifier stops."""
        import anyio.to_thread

        # fewer handler threads than connections: short DB-bound handlers gain nothing from
        # dozens of threads contending for the GIL
        anyio.to_thread.current_default_thread_limiter().total_tokens = (
            self.settings.handler_threads
        )
        stop = asyncio.Event()
        task: asyncio.Task[None] | None = None
        preload_stop = threading.Event()
        preload: threading.Thread | None = None
        if self.changes is not None:
            self.changes.start()
            if self.settings.preload_access:
                preload = threading.Thread(
                    target=self._preload_loop,
                    args=(preload_stop,),
                    name="sep2-preload",
                    daemon=True,
                )
                preload.start()
        if self.settings.notify_tls is not None:
            task = asyncio.create_task(self._notifier(stop))
        try:
            yield
        finally:
            preload_stop.set()
            if preload is not None:
                await asyncio.get_running_loop().run_in_executor(None, preload.join, 30)
            await asyncio.get_running_loop().run_in_executor(None, self.writer.close)
            if self.changes is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.changes.stop)
            if task is not None:
                stop.set()
                try:
                    await asyncio.wait_for(task, 30)
                except TimeoutError:
                    log.warning("notifier did not stop within 30 s")

    async def _notifier(self, stop: asyncio.Event) -> None:
        from starlette.concurrency import run_in_threadpool

        with self.notify_client() as client:
            while not stop.is_set():
                try:
                    await run_in_threadpool(self.deliver_pending, client)
                except Exception:  # keep notifying after a database hiccup
                    log.exception("notification round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.notify_interval_s)


def stored_der_info(model: type[BaseXmlModel], stored: bytes, href: str, csip_aus_ns: str) -> bytes:
    """A DER document as stored by :meth:`Sep2App.put_der_info`, answered at ``href``.

    It was validated (strictly) when the client wrote it, so it is read back without the strict
    check: a document stored before a stricter rule existed must not turn a GET into a 400 for a
    client that did nothing wrong. The hardened parse still runs (the bytes come from the
    database, not the network, but the size cap and the DTD refusal cost nothing), then the
    lenient pydantic-xml model, rendered as every answer is; when even that fails (a model
    library that changed its types since), the stored bytes are served with the root's ``href``
    rewritten and the CSIP-AUS namespace of this server."""
    root = sepxml.parse_tree(stored, max_bytes=len(stored) + 1)
    try:
        entity = model.from_xml_tree(root)
    except Exception:  # pydantic ValidationError, pydantic-xml ParsingError: see the docstring
        log.warning(
            "stored %s no longer fits its model; served as stored",
            model.__xml_tag__ or model.__name__,
        )
        raw = etree.fromstring(stored, sepxml._parser())
        raw.set("href", href)
        data: bytes = etree.tostring(raw)
        for ns in (sepxml.CSIP_AUS_NS_V13, sepxml.CSIP_AUS_NS_V12):
            if ns != csip_aus_ns:
                data = data.replace(b'"' + ns.encode() + b'"', b'"' + csip_aus_ns.encode() + b'"')
        return data
    entity.href = href  # type: ignore[attr-defined]
    return sepxml.render(entity, csip_aus_ns=csip_aus_ns)


def _next_change(
    rows: list[Any], now: dt.datetime, published_until: dt.datetime | None
) -> dt.datetime:
    """The earliest instant after ``now`` at which a listed control's EventStatus, dateTime or
    presence changes (its start, end, cancellation or supersession), or the terms controls need
    topping up: a rendered list is exact until then."""
    edges = [dt.datetime.max.replace(tzinfo=dt.UTC)]
    if published_until is not None:
        edges.append(published_until - schedule.REFILL_BELOW)
    for c in rows:
        edges.append(c.start)
        edges.append(c.start + dt.timedelta(seconds=c.duration_s))
        if c.cancelled_at is not None:
            edges.append(c.cancelled_at)
        if c.superseded_at is not None:
            edges.append(c.superseded_at)
    return min((e for e in edges if e > now), default=now)


def _meter_reading_input(m: MirrorMeterReading) -> manager.MeterReadingInput:
    rt = m.readingType
    readings: list[manager.ReadingInput] = []
    sources = [m.reading] if m.reading is not None else []
    for rs in m.mirrorReadingSets or []:
        sources += list(rs.readings or [])
    for r in sources:
        if r.value is None:
            continue
        if r.timePeriod is None:
            raise InputError(
                f"MirrorMeterReading {m.mRID}: a Reading has no timePeriod",
                "give each Reading a timePeriod (start, duration)",
            )
        readings.append(
            manager.ReadingInput(
                time_start=_from_epoch(r.timePeriod.start),
                duration_s=r.timePeriod.duration,
                value=int(r.value),
                quality_flags=str(r.qualityFlags) if r.qualityFlags is not None else None,
            )
        )
    return manager.MeterReadingInput(
        mrid=m.mRID,
        description=m.description or "",
        uom=int(rt.uom) if rt and rt.uom is not None else None,
        kind=int(rt.kind) if rt and rt.kind is not None else None,
        flow_direction=int(rt.flowDirection) if rt and rt.flowDirection is not None else None,
        phase=int(rt.phase) if rt and rt.phase is not None else None,
        data_qualifier=int(rt.dataQualifier) if rt and rt.dataQualifier is not None else None,
        power_of_ten=int(rt.powerOfTenMultiplier) if rt and rt.powerOfTenMultiplier else 0,
        interval_length_s=int(rt.intervalLength) if rt and rt.intervalLength else None,
        readings=tuple(readings),
    )


@lru_cache(maxsize=64)
def _dst_rules(tz_name: str, year: int) -> tuple[int, int, int]:
    """(DST start, DST end, DST offset s) of a zone in a year (0, 0, 0 for zones without DST)."""
    tz = ZoneInfo(tz_name)
    t = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    end_of_year = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    step = dt.timedelta(hours=1)
    start = end = 0
    offset = 0
    prev = t.astimezone(tz).dst() or dt.timedelta()
    while t < end_of_year:
        t += step
        cur = t.astimezone(tz).dst() or dt.timedelta()
        if cur != prev:
            if cur > prev:
                start = _epoch(t)
                offset = int(cur.total_seconds())
            else:
                end = _epoch(t)
            prev = cur
    return start, end, offset


_PLAIN_TEXT = re.compile(r"[A-Za-z0-9 .,:;_()/+#=*-]*")
"""Descriptions written as they are (no escaping or encoding question); others are rendered by
pydantic-xml."""
_PLAIN_PATH = re.compile(r"[/A-Za-z0-9._~-]*")
_BASE_FIELDS = (
    ("opModConnect", "connect", False),
    ("opModEnergize", "energize", False),
    ("csipaus:opModImpLimW", "imp_lim_w", True),
    ("csipaus:opModExpLimW", "exp_lim_w", True),
    ("csipaus:opModGenLimW", "gen_lim_w", True),
    ("csipaus:opModLoadLimW", "load_lim_w", True),
)
"""DERControlBase elements gridflex publishes, in the schema's order (envoy-schema's
``DERControlBase`` fields: opModConnect, opModEnergize, …, opModImpLimW, opModExpLimW,
opModGenLimW, opModLoadLimW), with the control row's column and whether it is an ActivePower."""


def render_derc_list(
    href: str, all_: int, edev_id: int, rows: list[Any], now: dt.datetime, csip_aus_ns: str
) -> bytes | None:
    """The DERControlList :meth:`Sep2App._derc_model` + :func:`sepxml.render` produce, written
    directly (a cold poll's render is most of its cost through pydantic-xml); None for a list
    with a description outside :data:`_PLAIN_TEXT` (then the caller renders the models).
    ``tests/sep2/test_render.py`` compares the bytes with the pydantic-xml render over every
    combination of the optional fields."""
    if not _PLAIN_PATH.fullmatch(href):
        return None
    head = (
        f'<DERControlList xmlns="urn:ieee:std:2030.5:ns" xmlns:csipaus="{csip_aus_ns}" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" href="{href}" '
        f'subscribable="{int(SUB)}" all="{all_}" results="{len(rows)}"'
    )
    if not rows:
        return (head + "/>").encode()
    out = [head, ">"]
    for c in rows:
        if c.description and not _PLAIN_TEXT.fullmatch(c.description):
            return None
        status, when, pending = schedule.event_status(
            c.start,
            c.duration_s,
            now,
            cancelled_at=c.cancelled_at,
            superseded_at=c.superseded_at,
            randomized=bool(c.randomize_start_s or c.randomize_duration_s),
        )
        out.append(
            f'<DERControl href="/edev/{edev_id}/derp/{c.der_program_id}/derc/{c.id}" '
            f'replyTo="{RESPONSE_HREF}" responseRequired="{RESPONSE_REQUIRED}" '
            f'subscribable="{int(NOSUB)}"><mRID>{c.mrid}</mRID>'
        )
        if c.description:
            out.append(f"<description>{c.description}</description>")
        out.append(
            f"<version>{c.version}</version><creationTime>{_epoch(c.creation_time)}"
            f"</creationTime><EventStatus><currentStatus>{int(status)}</currentStatus>"
            f"<dateTime>{_epoch(when)}</dateTime><potentiallySuperseded>"
            f"{'true' if pending else 'false'}</potentiallySuperseded>"
        )
        if pending:
            out.append(
                f"<potentiallySupersededTime>{_epoch(c.creation_time)}</potentiallySupersededTime>"
            )
        out.append(
            f"</EventStatus><interval><duration>{c.duration_s}</duration>"
            f"<start>{_epoch(c.start)}</start></interval>"
        )
        if c.randomize_duration_s is not None:
            out.append(f"<randomizeDuration>{c.randomize_duration_s}</randomizeDuration>")
        if c.randomize_start_s is not None:
            out.append(f"<randomizeStart>{c.randomize_start_s}</randomizeStart>")
        base = []
        for tag, column, is_power in _BASE_FIELDS:
            v = getattr(c, column)
            if v is None:
                continue
            if is_power:
                p = _watts(v)
                assert p is not None
                base.append(
                    f"<{tag}><multiplier>{p.multiplier}</multiplier><value>{p.value}</value>"
                    f"</{tag}>"
                )
            else:
                base.append(f"<{tag}>{'true' if v else 'false'}</{tag}>")
        if not base:
            return None  # a control without values: not published by gridflex; the models say
        out.append("<DERControlBase>" + "".join(base) + "</DERControlBase></DERControl>")
    out.append("</DERControlList>")
    return "".join(out).encode()


_HOT_DERC = re.compile(r"/edev/([0-9]+)/derp/([0-9]+)/derc")
_HOT_MMR = re.compile(r"/mup/([0-9]+)")
_SEP_XML = sepxml.CONTENT_TYPE.encode()


async def _read_body(receive: Receive) -> bytes:
    """The whole request body (the server has already refused oversized ones)."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then whatever the connection sends next."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return dict(await receive())

    return replay


class HotRoutes:
    """Raw-ASGI front for the two requests a fleet sends all day: GET DERControlList and POST
    MirrorMeterReading. They go straight to the same wrapped handlers Starlette would call
    (:meth:`Sep2App.endpoint`: the same per-request scope check, the same XML validation, the
    same error answers), skipping Starlette's middleware stack and its walk over every route;
    everything else (other paths, methods, lifespan) goes to ``app`` unchanged.

    The handlers run in a plain :class:`concurrent.futures.ThreadPoolExecutor` of
    :attr:`Sep2Settings.handler_threads` threads (its hand-off is a C queue and one
    ``call_soon_threadsafe``; anyio's, which Starlette uses, costs several lock round trips a
    request, a sizeable share of a cached poll). Blocking database reads stay off the event
    loop: on a busy machine a round trip to PostgreSQL can wait milliseconds for a core.

    The patterns are Starlette's for ``/edev/{edev_id:int}/derp/{derp_id:int}/derc`` and
    ``/mup/{mup_id:int}`` (the ``int`` convertor is ``[0-9]+``), so a request is answered by the
    same handler with the same path parameters either way.
    """

    def __init__(self, sep2: Sep2App, app: ASGIApp) -> None:
        self.sep2 = sep2
        self.app = app
        self.executor = concurrent.futures.ThreadPoolExecutor(
            sep2.settings.handler_threads, thread_name_prefix="sep2-hot"
        )
        self._derc = sep2.endpoint(sep2.get_derc_list, executor=self.executor)
        self._mmr = sep2.endpoint(sep2.post_mmr, executor=self.executor)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            method = scope["method"]
            if method == "GET" and (m := _HOT_DERC.fullmatch(scope["path"])) is not None:
                lfdi = scope.get("extensions", {}).get("tls", {}).get("client_lfdi")
                body = (
                    self.sep2.cached_derc_list(lfdi, scope["path"], scope["query_string"])
                    if lfdi
                    else None
                )
                if body is not None:  # no database, no thread hand-off, no Starlette objects
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-length", str(len(body)).encode()),
                                (b"content-type", _SEP_XML),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
                scope["path_params"] = {"edev_id": int(m[1]), "derp_id": int(m[2])}
                response = await self._derc(Request(scope, receive))
                await response(scope, receive, send)
                return
            if method == "POST" and (m := _HOT_MMR.fullmatch(scope["path"])) is not None:
                mup_id = int(m[1])
                lfdi = scope.get("extensions", {}).get("tls", {}).get("client_lfdi")
                body = await _read_body(receive)
                stored = self.sep2.routine_mmr(lfdi, mup_id, body) if lfdi else None
                if stored is not None:
                    try:
                        await asyncio.wrap_future(stored)
                    except Exception as exc:
                        answer = self.sep2.error_answer(exc)
                        if answer is None:
                            raise
                        await answer(scope, receive, send)
                        return
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 201,
                            "headers": [
                                (b"content-length", b"0"),
                                (b"location", f"/mup/{mup_id}".encode()),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": b""})
                    return
                scope["path_params"] = {"mup_id": mup_id}
                replay = _replay(body, receive)
                response = await self._mmr(Request(scope, replay))
                await response(scope, replay, send)
                return
        await self.app(scope, receive, send)


def create_sep2_asgi(engine: Engine, settings: Sep2Settings | None = None) -> ASGIApp:
    """The 2030.5 application alone (no /admin)."""
    sep2 = Sep2App(engine, settings)
    return HotRoutes(sep2, sep2.asgi)


def create_app(
    engine: Engine, settings: Sep2Settings | None = None, *, with_admin: bool = True
) -> HotRoutes:
    """The whole server application: 2030.5 at the root, the registry REST API under /admin,
    the 2030.5 operations API (:mod:`gridflex.sep2.ops`) under /ops."""
    sep2 = Sep2App(engine, settings)
    routes: list[BaseRoute] = list(sep2.routes())
    if with_admin:
        from gridflex.derms.api import create_app as create_admin
        from gridflex.sep2.ops import create_ops_app

        routes.append(Mount("/admin", app=create_admin(engine)))
        routes.append(Mount("/ops", app=create_ops_app(engine, sep2.settings.clock)))
    return HotRoutes(sep2, Starlette(routes=routes, lifespan=sep2.lifespan))
