"""The direct DERControlList writer (:func:`gridflex.sep2.app.render_derc_list`) produces the
same bytes as the pydantic-xml models it replaces on the polling path, for every combination of
the fields a control can carry, and defers to the models for text it does not write itself."""

from __future__ import annotations

import datetime as dt
import itertools
from types import SimpleNamespace
from typing import Any

import pytest
from envoy_schema.server.schema.sep2 import der as der_schema
from sqlalchemy import create_engine

from gridflex.sep2 import xml as sepxml
from gridflex.sep2.app import SUB, Sep2App, Sep2Settings, render_derc_list

NOW = dt.datetime(2026, 7, 1, 15, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def _row(i: int, **kw: Any) -> SimpleNamespace:
    fields: dict[str, Any] = {
        "id": 100 + i, "der_program_id": 7, "mrid": f"{i:032x}", "description": "terms v3",
        "version": i % 3, "creation_time": NOW - 2 * H, "start": NOW - H, "duration_s": 7200,
        "cancelled_at": None, "superseded_at": None, "randomize_start_s": None,
        "randomize_duration_s": None, "connect": None, "energize": None, "exp_lim_w": 8000.0,
        "imp_lim_w": None, "gen_lim_w": None, "load_lim_w": None,
    }  # fmt: skip
    fields.update(kw)
    return SimpleNamespace(**fields)


def _models(app: Sep2App, href: str, total: int, rows: list[Any]) -> bytes:
    items = [app._derc_model(SimpleNamespace(id=42), c, NOW) for c in rows]
    return sepxml.render(
        der_schema.DERControlListResponse(
            href=href, all_=total, results=len(items), subscribable=SUB, DERControl=items
        ),
        csip_aus_ns=app.settings.csip_aus_ns,
    )


VARIANTS: list[dict[str, Any]] = [
    {},
    {"description": ""},
    {"start": NOW + H},  # scheduled
    {"start": NOW - 3 * H, "duration_s": 3 * 3600 + 60},  # active, ends soon
    {"cancelled_at": NOW - dt.timedelta(minutes=5)},
    {"cancelled_at": NOW + H, "start": NOW + 2 * H},
    {"superseded_at": NOW - dt.timedelta(minutes=1)},
    {"superseded_at": NOW + H},  # potentially superseded
    {"randomize_start_s": 120},
    {"randomize_duration_s": -60, "cancelled_at": NOW},  # randomized cancellation
    {"randomize_start_s": 0, "randomize_duration_s": 30},
    {"connect": True, "exp_lim_w": None},
    {"connect": False, "energize": True, "exp_lim_w": None},
    {"imp_lim_w": 5.5, "exp_lim_w": 250_000.0},
    {"gen_lim_w": 32_768.0, "load_lim_w": 1_000_000.0, "exp_lim_w": 0.0},
    {"exp_lim_w": 123.456, "imp_lim_w": 0.001},
    {"version": 40_000, "description": "Op: event 12 (feeder F-3)"},
]


@pytest.mark.parametrize("csip_ns", [sepxml.CSIP_AUS_NS_V12, sepxml.CSIP_AUS_NS_V13])
def test_direct_render_equals_the_models(csip_ns: str) -> None:
    app = Sep2App(create_engine("sqlite://"), Sep2Settings(csip_aus_ns=csip_ns))
    href = "/edev/42/derp/7/derc"
    cases: list[list[Any]] = [[]] + [[_row(0, **v)] for v in VARIANTS]
    cases += [[_row(i, **a), _row(i + 1, **b)] for i, (a, b) in enumerate(
        itertools.combinations(VARIANTS, 2))]  # fmt: skip
    for rows in cases:
        fast = render_derc_list(href, len(rows) + 3, 42, rows, NOW, csip_ns)
        assert fast is not None
        assert fast == _models(app, href, len(rows) + 3, rows), rows
    assert len(cases) > 100


def test_text_needing_escapes_is_left_to_the_models() -> None:
    for text in ("a & b", "<b>", "café", 'say "x"'):
        rows = [_row(0, description=text)]
        assert render_derc_list("/edev/1/derp/7/derc", 1, 1, rows, NOW, "x") is None
    assert render_derc_list('/edev/1/derp/7/derc"x', 0, 1, [], NOW, "x") is None
