"""Fixtures of the registry tests: the shared database fixtures plus a seeded registry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from gridflex.derms import registry as reg
from gridflex.derms.api import create_app
from gridflex.derms.auth import create_user, issue_key
from gridflex.derms.db import session_factory
from gridflex.terms import ConnectionTerms
from tests.dbfixtures import _migrated_templates, db_backend, db_url, engine, session

__all__ = ["_migrated_templates", "db_backend", "db_url", "engine", "session"]

AGG_A_LFDI = "AB" * 20  # clients send upper case; the registry stores lower case
AGG_B_LFDI = "cd" * 20
DER_A1_LFDI = "0123456789ABCDEF0123456789ABCDEF01234567"
AGREED_AT = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


def make_terms(connection_id: str = "app-1", **kw: object) -> ConnectionTerms:
    """Terms of a 500 kW DER with a 250 kW export limit unless overridden."""
    data: dict[str, object] = {
        "connection_id": connection_id,
        "nameplate_kw": 500.0,
        "export_limit_kw": 250.0,
        "agreed_at": AGREED_AT,
    }
    data.update(kw)
    return ConnectionTerms.model_validate(data)


@dataclass
class Seeded:
    """Ids and API tokens of a small registry: two aggregators, one DER each, one orphan DER."""

    site_id: int
    agg_a: int
    agg_b: int
    der_a: int
    der_b: int
    der_free: int
    tokens: dict[str, str]


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    """Site, aggregators A and B with a DER each, a DER with no aggregator, terms for app-a, and
    users operator / viewer (read_only) / agg-a / agg-b with API keys."""
    with session_factory(engine).begin() as s:
        site = reg.add_site(s, name="Farm 1", latitude=39.8, longitude=-89.6)
        a = reg.add_aggregator(s, name="Aggregator A", lfdi=AGG_A_LFDI)
        b = reg.add_aggregator(s, name="Aggregator B", lfdi=AGG_B_LFDI)
        der_a = reg.add_der(
            s, site_id=site.id, der_type="pv", nameplate_kw=500, aggregator_id=a.id,
            lfdi=DER_A1_LFDI, connection_id="app-a", feeder="F1", actor="seed",
        )  # fmt: skip
        der_b = reg.add_der(
            s, site_id=site.id, der_type="storage", nameplate_kw=100, energy_kwh=200,
            aggregator_id=b.id, connection_id="app-b", feeder="F1", actor="seed",
        )  # fmt: skip
        free = reg.add_der(s, site_id=site.id, der_type="wind", nameplate_kw=50, actor="seed")
        reg.add_terms(s, make_terms("app-a"), actor="seed")
        reg.add_terms(s, make_terms("app-b", nameplate_kw=100, export_limit_kw=80), actor="seed")
        tokens = {}
        for name, role, agg in (
            ("operator", "operator", None),
            ("viewer", "read_only", None),
            ("agg-a", "aggregator", a.id),
            ("agg-b", "aggregator", b.id),
        ):
            user = create_user(s, name=name, role=role, aggregator_id=agg)
            tokens[name] = issue_key(s, user.id)
        return Seeded(site.id, a.id, b.id, der_a.id, der_b.id, free.id, tokens)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    """A test client of the REST API on the test database."""
    with TestClient(create_app(engine)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    """Bearer header for a token."""
    return {"Authorization": f"Bearer {token}"}
