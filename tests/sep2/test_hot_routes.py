"""The raw-ASGI front (:class:`gridflex.sep2.app.HotRoutes`) takes the two fleet requests itself
and answers exactly as the Starlette application does: the same list to its owner, the same 403
to every other certificate (also after the owner's list is cached), the same refusals of hostile
and schema-invalid telemetry; every other request reaches Starlette untouched."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from gridflex.derms.db import session_factory
from gridflex.sep2 import manager
from gridflex.sep2.app import HotRoutes, Sep2App, Sep2Settings
from gridflex.sep2.persistence import SITE_PROGRAM_KEY, EndDevice, MirrorUsagePoint
from tests.sep2.conftest import Server
from tests.sep2.docs import end_device_xml, mirror_meter_reading_xml, mirror_usage_point_xml
from tests.sep2.test_wire import BILLION_LAUGHS, EXTERNAL_ENTITY

T0 = dt.datetime(2026, 7, 1, 15, 0, tzinfo=dt.UTC)


class _Recorder:
    """Stands in front of the Starlette app and records what reaches it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[tuple[str, str]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.paths.append((scope["method"], scope["path"]))
        await self.app(scope, receive, send)


async def _call(
    app: Any, method: str, path: str, lfdi: str, body: bytes = b"", query: bytes = b""
) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 443),
        "extensions": {"tls": {"client_lfdi": lfdi}},
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    out: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    await app(scope, receive, send)
    return out[0]["status"], b"".join(m.get("body", b"") for m in out[1:])


@pytest.mark.parametrize("inline", [False, True])
def test_hot_routes_answer_as_starlette_does(server: Server, inline: bool) -> None:
    server.clock.fixed = T0
    start = int(T0.timestamp())
    owner = server.ids["aggregator-1"].lfdi
    with server.client("aggregator-1") as c:
        r = c.post("/edev", content=end_device_xml(server.ids["device-2"].lfdi))
        assert r.status_code == 201, r.text
        edev_id = int(r.headers["location"].rsplit("/", 1)[1])
        r = c.post("/mup", content=mirror_usage_point_xml(server.ids["device-2"].lfdi, start, [1]))
        assert r.status_code == 201, r.text
        mup = r.headers["location"]
    with session_factory(server.engine).begin() as s:
        edev = s.get(EndDevice, edev_id)
        assert edev is not None
        derp = next(p.id for p in manager.programs_for(s, edev) if p.key == SITE_PROGRAM_KEY)
        assert s.scalar(select(MirrorUsagePoint.id).where(MirrorUsagePoint.id == int(mup[5:])))
    derc = f"/edev/{edev_id}/derp/{derp}/derc"

    sep2 = Sep2App(server.engine, Sep2Settings(clock=server.clock, inline_handlers=inline))
    recorder = _Recorder(sep2.asgi)
    hot = HotRoutes(sep2, recorder)
    plain = sep2.asgi
    others = [server.ids[n].lfdi for n in ("aggregator-2", "device-1", "stranger")]
    good = mirror_meter_reading_xml(start + 300, [2])
    invalid = good.replace(b"<uom>38</uom>", b"<uom>not a number</uom>")

    async def scenario() -> None:
        try:
            for query in (b"l=100", b"l=100", b"l=0", b"s=1&l=1"):  # second poll: a cache hit
                hot_answer = await _call(hot, "GET", derc, owner, query=query)
                assert hot_answer == await _call(plain, "GET", derc, owner, query=query)
                assert hot_answer[0] == 200
            assert b"</DERControl>" in (await _call(hot, "GET", derc, owner, query=b"l=100"))[1]
            for lfdi in others:  # the owner's list is cached now: never served to them
                status, body = await _call(hot, "GET", derc, lfdi, query=b"l=100")
                assert (status, body) == await _call(plain, "GET", derc, lfdi, query=b"l=100")
                assert status == 403
                assert b"</DERControl>" not in body
            assert (await _call(hot, "GET", derc, "", query=b"l=100"))[0] == 403  # no cert
            missing = f"/edev/{edev_id + 999}/derp/{derp}/derc"
            assert await _call(hot, "GET", missing, owner) == await _call(
                plain, "GET", missing, owner
            )
            for doc in (BILLION_LAUGHS, EXTERNAL_ENTITY, invalid):
                status, body = await _call(hot, "POST", mup, owner, doc)
                assert (status, body) == await _call(plain, "POST", mup, owner, doc)
                assert status == 400, body
            for lfdi in others:
                status, body = await _call(hot, "POST", mup, lfdi, good)
                assert (status, body) == await _call(plain, "POST", mup, lfdi, good)
                assert status == 403
            assert (await _call(hot, "POST", mup, owner, good))[0] == 201
            assert recorder.paths == []  # every request above was the front's own
            assert (await _call(hot, "GET", "/dcap", owner))[0] == 200
            assert (await _call(hot, "POST", derc, owner, good))[0] == 405
            assert recorder.paths == [("GET", "/dcap"), ("POST", derc)]
        finally:
            sep2.writer.close()

    asyncio.run(scenario())


def test_routine_telemetry_skips_the_database_and_refuses_what_the_full_path_refuses(
    server: Server,
) -> None:
    """Once a worker knows the certificate, the MirrorUsagePoint's owner and the reading type,
    a routine POST is parsed (strictly) on the event loop and handed to the group-commit writer
    (:meth:`Sep2App.routine_mmr`); every document the full path refuses or must store
    differently (hostile, invalid, another certificate, a changed reading type) goes to the
    full path and gets its answer."""
    server.clock.fixed = T0
    start = int(T0.timestamp())
    owner = server.ids["aggregator-1"].lfdi
    with server.client("aggregator-1") as c:
        r = c.post("/edev", content=end_device_xml(server.ids["device-2"].lfdi))
        assert r.status_code == 201, r.text
        r = c.post("/mup", content=mirror_usage_point_xml(server.ids["device-2"].lfdi, start, [1]))
        assert r.status_code == 201, r.text
        mup = r.headers["location"]
    mup_id = int(mup[5:])
    sep2 = Sep2App(server.engine, Sep2Settings(clock=server.clock))
    hot = HotRoutes(sep2, sep2.asgi)
    plain = sep2.asgi
    good = mirror_meter_reading_xml(start + 300, [2])
    invalid = good.replace(b"<uom>38</uom>", b"<uom>not a number</uom>")
    unknown = good.replace(b"<kind>37</kind>", b"<kind>37</kind><colour>red</colour>")
    rescaled = mirror_meter_reading_xml(start + 900, [4]).replace(
        b"<powerOfTenMultiplier>3<", b"<powerOfTenMultiplier>0<"
    )

    async def scenario() -> None:
        try:
            assert sep2.routine_mmr(owner, mup_id, good) is None  # nothing known yet
            assert (await _call(hot, "POST", mup, owner, good))[0] == 201  # full path, primes
            for doc in (BILLION_LAUGHS, EXTERNAL_ENTITY, invalid, unknown, rescaled, b"<a"):
                assert sep2.routine_mmr(owner, mup_id, doc) is None, doc
            for doc in (BILLION_LAUGHS, EXTERNAL_ENTITY, invalid, unknown, b"<a"):
                status, body = await _call(hot, "POST", mup, owner, doc)
                assert (status, body) == await _call(plain, "POST", mup, owner, doc)
                assert status == 400, body
            for name in ("aggregator-2", "device-1", "stranger"):
                lfdi = server.ids[name].lfdi
                assert sep2.routine_mmr(lfdi, mup_id, good) is None
                status, _ = await _call(hot, "POST", mup, lfdi, good)
                assert status == 403
            routine = sep2.routine_mmr(owner, mup_id, mirror_meter_reading_xml(start + 600, [3]))
            assert routine is not None  # the routine path: no query, no thread
            await asyncio.wrap_future(routine)
            assert await _call(hot, "POST", mup, owner, rescaled) == (201, b"")  # full path
        finally:
            sep2.writer.close()

    asyncio.run(scenario())
    with session_factory(server.engine).begin() as s:
        der_id = s.scalar(select(MirrorUsagePoint.der_id).where(MirrorUsagePoint.id == mup_id))
        assert der_id is not None
        stored = {(t, v) for _, _, t, v in manager.readings_for_der(s, der_id)}
    at = lambda k: dt.datetime.fromtimestamp(start + 300 * k, dt.UTC)  # noqa: E731
    # kW readings (10^3) until the reading type changed to W (10^0)
    assert stored >= {(at(1), 2000.0), (at(2), 3000.0), (at(3), 4.0)}
