"""Group commits of telemetry (gridflex.sep2.writer): every acknowledged POST is stored, many
POSTs share a transaction, and a bad one fails alone with its own error."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gridflex.derms.db import session_factory
from gridflex.sep2 import manager
from gridflex.sep2.persistence import MirrorMeterReading
from gridflex.sep2.writer import ReadingWriter
from tests.sep2.conftest import Server
from tests.sep2.docs import end_device_xml, mirror_usage_point_xml

T0 = dt.datetime(2026, 7, 1, 15, 0, tzinfo=dt.UTC)


def _mmr_id(server: Server) -> int:
    ident = server.ids["device-1"]
    start = int(T0.timestamp())
    with server.client("device-1") as c:
        assert c.post("/edev", content=end_device_xml(ident.lfdi)).status_code == 201
        r = c.post("/mup", content=mirror_usage_point_xml(ident.lfdi, start, [1]))
        assert r.status_code == 201, r.text
    with session_factory(server.engine)() as s:
        return int(s.scalars(select(MirrorMeterReading.id)).one())


def _job(mmr_id: int, minutes: int, value: int) -> list[tuple[int, int, tuple[Any, ...]]]:
    when = T0 + dt.timedelta(minutes=minutes)
    return [(mmr_id, 0, (manager.ReadingInput(when, 300, value),))]


def test_batched_posts_are_stored_and_a_bad_one_fails_alone(server: Server) -> None:
    mmr_id = _mmr_id(server)
    writer = ReadingWriter(server.engine, window_s=0.05)  # a wide window: one batch
    try:
        futures = [writer.submit(_job(mmr_id, 5 * k, k), T0) for k in range(1, 21)]
        bad = writer.submit(_job(10**9, 0, 1), T0)  # no such MirrorMeterReading
        # the same interval twice in one batch: the later POST wins, as one after another
        again = writer.submit(_job(mmr_id, 5, 99), T0)
        for f in [*futures, again]:
            assert f.result(30) is None
        with pytest.raises(IntegrityError):
            bad.result(30)
    finally:
        writer.close()
    with session_factory(server.engine)() as s:
        rows = manager.readings_for_der(s, server.registry.der_ids["device-1"])
    stored = {t: v for _, _, t, v in rows}
    assert len(stored) == 21  # the MirrorUsagePoint's first reading plus 20
    assert stored[T0 + dt.timedelta(minutes=5)] == 99
    assert stored[T0 + dt.timedelta(minutes=100)] == 20


def test_close_stores_what_is_queued(server: Server) -> None:
    mmr_id = _mmr_id(server)
    writer = ReadingWriter(server.engine, window_s=0.2)
    fut = writer.submit(_job(mmr_id, 60, 7), T0)
    writer.close()
    assert isinstance(fut, concurrent.futures.Future)
    assert fut.result(0) is None
