"""Notifications: a subscriber's endpoint receives the changed DERControlList over mutual TLS
(the server presents its own certificate), as the envoy-schema Notification model."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from envoy_schema.server.schema.sep2.pub_sub import Notification
from sqlalchemy import Engine

from gridflex.derms.db import session_factory
from gridflex.sep2 import manager
from gridflex.sep2 import xml as sepxml
from gridflex.sep2.app import Sep2App, Sep2Settings
from gridflex.sep2.persistence import Notification as NotificationRow
from gridflex.sep2.server import ServerThread
from tests.sep2.conftest import Server
from tests.sep2.docs import end_device_xml, subscription_xml


class Receiver:
    """A subscriber's notification endpoint (mutual TLS, records what it is sent)."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str | None, bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = (await receive())["body"]
        self.bodies.append((scope["extensions"]["tls"]["client_lfdi"], body))
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_subscriber_receives_the_changed_control_list(server: Server, engine: Engine) -> None:
    receiver = Receiver()
    endpoint = ServerThread(receiver, server.files).start()  # type: ignore[arg-type]
    try:
        with server.client("device-1") as c:
            href = c.post("/edev", content=end_device_xml(server.ids["device-1"].lfdi)).headers[
                "location"
            ]
            derc = href + "/derp/1/derc"
            r = c.post(href + "/sub", content=subscription_xml(derc, endpoint.url + "/ntfy"))
            assert r.status_code == 201, r.text
        now = dt.datetime.now(dt.UTC)
        with session_factory(engine).begin() as s:
            ctrl = manager.create_control(
                s, end_device_id=int(href.rsplit("/", 1)[1]), der_program_id=1, start=now,
                duration_s=900, now=now, exp_lim_w=42_000,
            )  # fmt: skip
            mrid = ctrl.mrid
        app = Sep2App(engine, Sep2Settings(notify_tls=server.files, notify_interval_s=0.1))

        # the notifier runs in the application's lifespan
        async def run_briefly() -> None:
            async with app.lifespan(app.asgi):
                deadline = time.monotonic() + 10
                while not receiver.bodies and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)

        asyncio.run(run_briefly())
    finally:
        endpoint.stop()
    assert len(receiver.bodies) == 1
    presenter, body = receiver.bodies[0]
    assert presenter is not None  # the server authenticated with its certificate
    note = sepxml.validate_response(Notification, body)
    assert note.subscribedResource == derc
    assert note.resource is not None
    assert note.resource.type == "DERControlList"
    assert mrid in [d.mRID for d in note.resource.DERControl or []]
    with session_factory(engine)() as s:
        rows = s.query(NotificationRow).all()
    assert [(n.delivered_at is not None, n.attempts) for n in rows] == [(True, 1)]


def test_failed_delivery_is_counted_and_kept(server: Server, engine: Engine) -> None:
    with server.client("device-1") as c:
        href = c.post("/edev", content=end_device_xml(server.ids["device-1"].lfdi)).headers[
            "location"
        ]
        unreachable = "https://127.0.0.1:9/ntfy"
        assert (
            c.post(
                href + "/sub", content=subscription_xml(href + "/derp/1/derc", unreachable)
            ).status_code
            == 201
        )
    now = dt.datetime.now(dt.UTC)
    with session_factory(engine).begin() as s:
        manager.create_control(
            s, end_device_id=int(href.rsplit("/", 1)[1]), der_program_id=1, start=now,
            duration_s=900, now=now, exp_lim_w=1_000,
        )  # fmt: skip
    app = Sep2App(engine, Sep2Settings(notify_tls=server.files))
    with app.notify_client() as client:
        assert app.deliver_pending(client) == 0
    with session_factory(engine)() as s:
        (row,) = s.query(NotificationRow).all()
    assert row.delivered_at is None
    assert row.attempts == 1
    assert "ConnectError" in row.last_error
