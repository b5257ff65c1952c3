"""Group commits of routine telemetry: readings of many POSTs stored in one transaction.

A MirrorMeterReading POST (IEEE 2030.5-2018 clause 10.10) is acknowledged only after its
readings are committed. With PostgreSQL's synchronous commit every transaction waits for its WAL
flush, so one transaction per POST makes telemetry cost a disk flush each. :class:`ReadingWriter`
collects the upserts that arrive within a few milliseconds on a background thread, stores them
in one transaction (one statement, one round trip, one flush) and only then completes each
POST's future. If the batch fails, each POST is retried in its own transaction so one bad post
cannot fail the others, and a failing post gets its own error.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import queue
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine

from gridflex.derms.db import session_factory
from gridflex.sep2 import manager
from gridflex.sep2.manager import ReadingInput


@dataclass
class _Job:
    items: list[tuple[int, int, tuple[ReadingInput, ...]]]
    """(MirrorMeterReading id, power of ten, readings) of one POST."""
    now: dt.datetime
    future: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)


class ReadingWriter:
    """A per-process background writer of readings in group commits.

    Parameters
    ----------
    engine
        The database.
    window_s
        How long the writer waits for more POSTs after the first of a batch (seconds); 0 takes
        what queued up while the previous batch was committing (no added latency).
    max_jobs
        Largest number of POSTs stored in one transaction.
    """

    def __init__(self, engine: Engine, *, window_s: float = 0.0, max_jobs: int = 256) -> None:
        self.engine = engine
        self.window_s = window_s
        self.max_jobs = max_jobs
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sessions = session_factory(engine)
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    def submit(
        self, items: list[tuple[int, int, tuple[ReadingInput, ...]]], now: dt.datetime
    ) -> concurrent.futures.Future[None]:
        """Queue one POST's readings; the future completes once they are committed."""
        self._ensure_started()
        job = _Job(items, now)
        self._queue.put(job)
        return job.future

    def close(self) -> None:
        """Store what is queued, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(30)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sep2-reading-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, closing = [first], False
            deadline = time.monotonic() + self.window_s
            while len(jobs) < self.max_jobs:
                # what queued up while the previous batch committed, plus the window's arrivals
                remaining = deadline - time.monotonic()
                try:
                    job = (
                        self._queue.get(timeout=remaining)
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
                if job is None:
                    closing = True
                    break
                jobs.append(job)
            self._store(jobs)
            if closing:
                return

    def _store(self, jobs: list[_Job]) -> None:
        try:
            self._write(jobs)
        except Exception as exc:
            if len(jobs) == 1:
                jobs[0].future.set_exception(exc)
                return
            for job in jobs:  # isolate the failing POST: each alone, with its own error
                try:
                    self._write([job])
                except Exception as one:
                    job.future.set_exception(one)
                else:
                    job.future.set_result(None)
            return
        for job in jobs:
            job.future.set_result(None)

    def _write(self, jobs: list[_Job]) -> None:
        rows: dict[tuple[object, object], dict[str, object]] = {}
        for job in jobs:
            for mmr_id, power_of_ten, readings in job.items:
                for row in manager.reading_rows(mmr_id, power_of_ten, readings, job.now):
                    # a later POST of the same interval wins, as it would one after another
                    rows[(row["meter_reading_id"], row["time_start"])] = row
        if not rows:
            return
        if self.engine.dialect.name == "postgresql":
            # one statement whose seven parameters are arrays (no per-row work in SQLAlchemy),
            # in autocommit: a single statement is its own transaction, committed (and its WAL
            # flushed) when it returns, in one round trip instead of BEGIN, INSERT, COMMIT
            columns = tuple([row[c] for row in rows.values()] for c in _COLUMNS)
            with self._autocommit.connect() as conn:
                conn.exec_driver_sql(_PG_UPSERT, columns)
            return
        with self._sessions.begin() as session:
            session.execute(manager.reading_upsert(session), list(rows.values()))


_COLUMNS = (
    "meter_reading_id", "time_start", "duration_s", "value", "value_si", "quality_flags",
    "received_at",
)  # fmt: skip
_PG_UPSERT = (
    "INSERT INTO sep2_reading (" + ", ".join(_COLUMNS) + ") "
    "SELECT * FROM unnest(%s::integer[], %s::timestamptz[], %s::integer[], %s::bigint[], "
    "%s::double precision[], %s::varchar[], %s::timestamptz[]) "
    "ON CONFLICT (meter_reading_id, time_start) DO UPDATE SET value = excluded.value, "
    "value_si = excluded.value_si, duration_s = excluded.duration_s, "
    "quality_flags = excluded.quality_flags, received_at = excluded.received_at"
)
""":func:`manager.reading_upsert` for PostgreSQL as one statement over arrays (the same
conflict target and updated columns)."""
