"""The operator REST API through the ASGI test client: roles, aggregator scoping, error mapping."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridflex.derms.api import create_app, openapi_json
from gridflex.derms.db import make_engine
from tests.derms.conftest import DER_A1_LFDI, Seeded, auth, make_terms

OPENAPI_FILE = Path(__file__).parents[2] / "docs" / "schemas" / "registry_openapi.json"


def _terms_body(connection_id: str, **kw: object) -> dict[str, object]:
    return make_terms(connection_id, **kw).model_dump(mode="json")


def test_authentication_is_required(client: TestClient, seeded: Seeded) -> None:
    r = client.get("/ders")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "missing API key" in r.json()["detail"]
    assert client.get("/ders", headers=auth("gfx_not-a-key")).status_code == 401
    assert client.get("/ders", headers=auth(seeded.tokens["viewer"] + "x")).status_code == 401
    ok = client.get("/whoami", headers={"X-API-Key": seeded.tokens["agg-a"]})
    assert ok.json() == {"user": "agg-a", "role": "aggregator", "aggregator_id": seeded.agg_a}


def test_operator_builds_a_registry(client: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["operator"])
    site = client.post("/sites", json={"name": "Solar 2", "latitude": 38.6}, headers=h)
    assert site.status_code == 201, site.text
    agg = client.post("/aggregators", json={"name": "C", "lfdi": "AA" * 20}, headers=h).json()
    assert agg["lfdi"] == "aa" * 20
    sp = client.post(
        "/service-points", json={"site_id": site.json()["id"], "number": "SP-9"}, headers=h
    )
    assert sp.status_code == 201, sp.text
    der = client.post(
        "/ders",
        json={
            "site_id": site.json()["id"], "der_type": "pv_storage", "nameplate_kw": 5000,
            "nameplate_kva": 5200, "energy_kwh": 10000, "aggregator_id": agg["id"],
            "service_point_id": sp.json()["id"], "connection_id": "app-9", "feeder": "F7",
            "phase": "ABC", "inverter_settings": {"ieee1547_category": "B"},
            "telemetry": {"protocol": "IEEE 2030.5", "interval_s": 300},
        },
        headers=h,
    )  # fmt: skip
    assert der.status_code == 201, der.text
    der_id = der.json()["id"]
    assert der.json()["lifecycle_state"] == "applied"
    # approval needs terms: refused with 409 until they exist
    r = client.post(f"/ders/{der_id}/transitions", json={"to_state": "approved"}, headers=h)
    assert r.status_code == 409
    assert "has no terms yet" in r.json()["detail"]
    body = _terms_body("app-9", nameplate_kw=5000, export_limit_kw=2500)
    r = client.post("/connections/app-9/terms", json=body, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1
    assert r.json()["created_by"] == "operator"
    for state in ("approved", "registered"):
        r = client.post(
            f"/ders/{der_id}/transitions", json={"to_state": state, "note": "ok"}, headers=h
        )
        assert r.status_code == 201, r.text
        assert r.json()["actor"] == "operator"
    history = client.get(f"/ders/{der_id}/lifecycle", headers=h).json()
    assert [e["to_state"] for e in history] == ["applied", "approved", "registered"]
    assert client.get(f"/ders/{der_id}/terms", headers=h).json()["terms"]["export_limit_kw"] == 2500
    prog = client.post(
        "/programs",
        json={"name": "F7", "constraint_kind": "feeder", "constraint_element": "F7"},
        headers=h,
    ).json()
    assert client.put(f"/programs/{prog['id']}/ders/{der_id}", headers=h).status_code == 204
    assert [d["id"] for d in client.get(f"/programs/{prog['id']}/ders", headers=h).json()] == [
        der_id
    ]
    r = client.patch(f"/ders/{der_id}", json={"feeder": "F8", "lfdi": "BB" * 20}, headers=h)
    assert r.json()["feeder"] == "F8"
    assert client.get(f"/ders/by-lfdi/{'Bb' * 20}", headers=h).json()["id"] == der_id


def test_terms_versions_over_http(client: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["operator"])
    tighter = _terms_body("app-a", export_limit_kw=200)
    r = client.post("/connections/app-a/terms", json=tighter, headers=h)
    assert r.status_code == 409
    assert r.json()["error"] == "ConflictError"
    assert "static export limit lowered from 250.0 to 200.0 kW" in r.json()["detail"]
    history = client.get("/connections/app-a/terms/history", headers=h).json()
    assert [v["version"] for v in history] == [1]  # refused change stored nothing
    r = client.post("/connections/app-a/terms?agreed=true&note=signed", json=tighter, headers=h)
    assert r.status_code == 201
    assert r.json()["agreed_override"] is True
    assert r.json()["version"] == 2
    current = client.get("/connections/app-a/terms", headers=h).json()
    assert current["terms"]["export_limit_kw"] == 200
    assert (
        client.get("/connections/app-a/terms/1", headers=h).json()["terms"]["export_limit_kw"]
        == 250
    )
    r = client.get("/connections/app-a/terms/7", headers=h)
    assert r.status_code == 404
    assert "versions: [1, 2]" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "url", "status", "fragment"),
    [
        (_terms_body("app-z"), "/connections/app-a/terms", 422, "URL names 'app-a'"),
        ({"connection_id": "app-a", "nameplate_kw": 10, "export_limit_kw": 20,
          "agreed_at": "2026-01-01T00:00:00Z"}, "/connections/app-a/terms", 422, "nameplate"),
        ({"site_id": 1, "der_type": "pv", "nameplate_kw": 1, "lfdi": "zz"}, "/ders", 422,
         "not an IEEE 2030.5 LFDI"),
        ({"site_id": 999, "der_type": "pv", "nameplate_kw": 1}, "/ders", 404, "site 999"),
        ({"name": "Aggregator A"}, "/aggregators", 409, "conflicts with stored data"),
    ],
)  # fmt: skip
def test_domain_errors_map_to_http(
    client: TestClient, seeded: Seeded, body: dict[str, object], url: str, status: int,
    fragment: str,
) -> None:  # fmt: skip
    r = client.post(url, json=body, headers=auth(seeded.tokens["operator"]))
    assert r.status_code == status, r.text
    assert fragment in json.dumps(r.json())


def test_read_only_reads_everything_and_writes_nothing(client: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["viewer"])
    assert len(client.get("/ders", headers=h).json()) == 3
    assert client.get("/sites", headers=h).status_code == 200
    assert client.get("/connections/app-b/terms", headers=h).status_code == 200
    for method, url, body in (
        ("POST", "/sites", {"name": "x"}),
        ("POST", f"/ders/{seeded.der_a}/transitions", {"to_state": "approved"}),
        ("POST", "/connections/app-a/terms", _terms_body("app-a", export_limit_kw=300)),
        ("PATCH", f"/ders/{seeded.der_a}", {"feeder": "F9"}),
        ("POST", "/users", {"name": "evil", "role": "operator"}),
    ):
        r = client.request(method, url, json=body, headers=h)
        assert r.status_code == 403, (method, url, r.text)
        assert r.json()["error"] == "PermissionDeniedError"
    assert client.get(f"/ders/{seeded.der_a}", headers=h).json()["feeder"] == "F1"


def test_aggregator_sees_only_its_own_der(client: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["agg-a"])
    assert [d["id"] for d in client.get("/ders", headers=h).json()] == [seeded.der_a]
    assert client.get(f"/ders/{seeded.der_a}", headers=h).status_code == 200
    assert client.get(f"/ders/by-lfdi/{DER_A1_LFDI.upper()}", headers=h).status_code == 200
    assert client.get("/connections", headers=h).json() == ["app-a"]
    assert client.get("/connections/app-a/terms", headers=h).status_code == 200
    assert client.get(f"/ders/{seeded.der_a}/lifecycle", headers=h).status_code == 200
    assert client.get(f"/sites/{seeded.site_id}", headers=h).status_code == 200
    assert [a["id"] for a in client.get("/aggregators", headers=h).json()] == [seeded.agg_a]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/ders/{der_b}"),
        ("GET", "/ders/{der_free}"),
        ("GET", "/ders/{der_b}/lifecycle"),
        ("GET", "/ders/{der_b}/terms"),
        ("GET", "/ders?aggregator_id={agg_b}"),
        ("GET", "/aggregators/{agg_b}"),
        ("GET", "/aggregators/{agg_b}/ders"),
        ("GET", "/connections/app-b/terms"),
        ("GET", "/connections/app-b/terms/history"),
        ("GET", "/connections/app-b/terms/1"),
        ("GET", "/sites"),
        ("GET", "/programs"),
        ("GET", "/service-points"),
        ("PATCH", "/ders/{der_a}"),
        ("POST", "/ders/{der_a}/transitions"),
        ("POST", "/sites"),
    ],
)
def test_aggregator_cross_access_is_403_and_logged(
    client: TestClient, seeded: Seeded, caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    url = path.format(**vars(seeded))
    body = {"to_state": "approved"} if "transitions" in url else {"name": "x"}
    with caplog.at_level(logging.WARNING, logger="gridflex.derms.audit"):
        r = client.request(
            method, url, json=body if method != "GET" else None,
            headers=auth(seeded.tokens["agg-a"]),
        )  # fmt: skip
    assert r.status_code == 403, r.text
    denied = [rec for rec in caplog.records if rec.name == "gridflex.derms.audit"]
    assert len(denied) == 1
    assert "user=agg-a role=aggregator" in denied[0].getMessage()


def test_keys_can_be_issued_over_http_and_are_stored_hashed(
    client: TestClient, seeded: Seeded
) -> None:
    h = auth(seeded.tokens["operator"])
    r = client.post("/users", json={"name": "agg-b2", "role": "aggregator",
                                    "aggregator_id": seeded.agg_b}, headers=h)  # fmt: skip
    assert r.status_code == 201, r.text
    token = client.post("/users/agg-b2/keys", headers=h).json()["token"]
    assert client.get("/ders", headers=auth(token)).json()[0]["id"] == seeded.der_b
    r = client.post("/users", json={"name": "bad", "role": "aggregator"}, headers=h)
    assert r.status_code == 422
    assert "needs aggregator_id" in r.json()["detail"]


def test_published_openapi_matches_the_app() -> None:
    engine = make_engine("sqlite://")
    try:
        current = openapi_json(create_app(engine))
    finally:
        engine.dispose()
    assert OPENAPI_FILE.exists(), "run `gridflex registry openapi -o docs/schemas/...` first"
    assert OPENAPI_FILE.read_text(encoding="utf-8") == current, (
        "docs/schemas/registry_openapi.json is stale: regenerate it with "
        "`gridflex registry openapi -o docs/schemas/registry_openapi.json`"
    )
    doc = json.loads(current)
    assert {"/ders", "/connections/{connection_id}/terms", "/ders/{der_id}/transitions"} <= set(
        doc["paths"]
    )
    assert "HTTPBearer" in doc["components"]["securitySchemes"]


def test_der_list_pages(client: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["viewer"])
    first = client.get("/ders?limit=2", headers=h).json()
    rest = client.get("/ders?limit=2&offset=2", headers=h).json()
    assert [d["id"] for d in first + rest] == [seeded.der_a, seeded.der_b, seeded.der_free]
    assert client.get("/ders?limit=0", headers=h).status_code == 422


def test_aggregator_reports_settings_of_its_own_der_only(
    client: TestClient, seeded: Seeded
) -> None:
    h = auth(seeded.tokens["agg-a"])
    settings = {"inverter_settings": {"volt_var": "enabled", "firmware": "4.2"}}
    r = client.patch(f"/ders/{seeded.der_a}", json=settings, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["inverter_settings"]["firmware"] == "4.2"
    r = client.patch(f"/ders/{seeded.der_a}", json={"nameplate_kw": 900}, headers=h)
    assert r.status_code == 403
    assert "may change only ['inverter_settings', 'telemetry']" in r.json()["detail"]
    assert client.patch(f"/ders/{seeded.der_b}", json=settings, headers=h).status_code == 403
    viewer = auth(seeded.tokens["viewer"])
    assert client.patch(f"/ders/{seeded.der_a}", json=settings, headers=viewer).status_code == 403
    assert client.get(f"/ders/{seeded.der_b}", headers=viewer).json()["inverter_settings"] == {}


def test_programs_of_a_der(client: TestClient, seeded: Seeded) -> None:
    h = auth(seeded.tokens["operator"])
    prog = client.post(
        "/programs",
        json={"name": "T1", "constraint_kind": "transformer", "constraint_element": "T1"},
        headers=h,
    ).json()
    client.put(f"/programs/{prog['id']}/ders/{seeded.der_a}", headers=h)
    mine = client.get(f"/ders/{seeded.der_a}/programs", headers=auth(seeded.tokens["agg-a"]))
    assert [p["name"] for p in mine.json()] == ["T1"]
    theirs = client.get(f"/ders/{seeded.der_a}/programs", headers=auth(seeded.tokens["agg-b"]))
    assert theirs.status_code == 403
