"""The operator API (/ops): publish and cancel DERControls that devices then read over 2030.5,
with the registry's API keys and roles; responses and telemetry read back."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from gridflex.derms import auth
from gridflex.derms.db import session_factory
from gridflex.sep2.ops import create_ops_app
from tests.sep2.client import walk
from tests.sep2.conftest import Server
from tests.sep2.docs import end_device_xml


def _keys(server: Server) -> dict[str, str]:
    with session_factory(server.engine).begin() as s:
        op = auth.create_user(s, name="op", role="operator")
        ro = auth.create_user(s, name="viewer", role="read_only")
        ag = auth.create_user(
            s, name="agg2", role="aggregator",
            aggregator_id=server.registry.aggregator_ids["aggregator-2"],
        )  # fmt: skip
        return {u.name: auth.issue_key(s, u.id) for u in (op, ro, ag)}


def test_operator_publishes_a_control_the_device_then_executes(server: Server) -> None:
    keys = _keys(server)
    with server.client("device-1") as c:
        assert (
            c.post("/edev", content=end_device_xml(server.ids["device-1"].lfdi)).status_code == 201
        )
    der_id = server.registry.der_ids["device-1"]
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    body = {"der_id": der_id, "start": start.isoformat(), "duration_s": 3600,
            "export_limit_kw": 42.5}  # fmt: skip
    with TestClient(create_ops_app(server.engine)) as api:
        assert api.post("/controls", json=body).status_code == 401
        denied = api.post("/controls", json=body, headers={"X-API-Key": keys["viewer"]})
        assert denied.status_code == 403
        r = api.post("/controls", json=body, headers={"Authorization": f"Bearer {keys['op']}"})
        assert r.status_code == 201, r.text
        ctrl = r.json()
        assert ctrl["status"] == "active"
        assert ctrl["export_limit_kw"] == 42.5

        with server.client("device-1") as c:
            _, view = walk(c, lfdi=server.ids["device-1"].lfdi)
        # the operations program outranks the terms windows: the device applies 42.5 kW
        assert view.export_limit_w_at(dt.datetime.now(dt.UTC)) == 42_500

        listed = api.get(
            "/controls", params={"der_id": der_id}, headers={"X-API-Key": keys["viewer"]}
        )
        assert ctrl["mrid"] in [x["mrid"] for x in listed.json()]
        other = api.get("/controls", params={"der_id": der_id}, headers={"X-API-Key": keys["agg2"]})
        assert other.status_code == 403

        r = api.post(f"/controls/{ctrl['id']}/cancel", headers={"X-API-Key": keys["op"]})
        assert r.json()["status"] == "cancelled"
        again = api.post(f"/controls/{ctrl['id']}/cancel", headers={"X-API-Key": keys["op"]})
        assert again.status_code == 409
        bad = dict(body, program_id=999_999)
        r = api.post("/controls", json=bad, headers={"X-API-Key": keys["op"]})
        assert r.status_code == 422
        assert "not a member" in r.json()["detail"]

    with server.client("device-1") as c:
        _, view = walk(c, lfdi=server.ids["device-1"].lfdi)
    assert view.export_limit_w_at(dt.datetime.now(dt.UTC)) == 250_000  # back to the terms
