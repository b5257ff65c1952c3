"""Which cached answers of this worker are still the database's state: PostgreSQL LISTEN/NOTIFY.

Migration ``0003_sep2_change_feed`` makes every committed write that can change a device's
DERControlList (its controls, its EndDevice row) send ``d:<EndDevice id>`` on the channel
:data:`CHANNEL`, and every write to the registry rows the lists and access checks read (terms,
DER, aggregator) or any TRUNCATE of them send ``*``. :class:`ChangeFeed` listens on a dedicated
connection in a background thread and keeps a sequence number per device.

How a cache uses it: take :meth:`ChangeFeed.token` *before* reading the database, store the
answer with it, and serve the answer later only while :meth:`ChangeFeed.fresh` holds for it. A
notification is received after its transaction committed, so a read that starts after the token
was taken sees every change notified before it; a change committed later arrives as a
notification with a larger sequence number and invalidates the answer. An answer is therefore
never older than a committed change by more than the notification's delivery time (a loopback
round trip). While the listening connection is down (and until it listens again) ``token`` is
None, so callers fall back to checking the database on every request, and every answer stored
before the outage is invalid.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from typing import Any

from sqlalchemy import Engine, text

log = logging.getLogger("gridflex.sep2.changes")

CHANNEL = "gridflex_sep2"
"""The NOTIFY channel of migration ``0003_sep2_change_feed``."""
RECONNECT_S = 1.0
"""Wait between attempts to listen again after the connection was lost (s)."""
POLL_S = 0.5
"""How often the listening thread checks whether it should stop (s)."""
PING_S = 5.0
"""How often the listening connection is checked with a query when no notification came (s): a
connection that broke silently is noticed within this time."""


class ChangeFeed:
    """Per-process view of committed changes, from PostgreSQL notifications.

    Thread-safe for one writer (the listening thread) and any number of readers: every update
    is a single dictionary or attribute assignment under the GIL, and the sequence number is
    raised before the entry that carries it is written.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._seq = 0
        self._all = 0
        """Sequence number of the last change that concerns every device."""
        self._devices: dict[int, int] = {}
        """Sequence number of the last change of each EndDevice."""
        self._listening = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        self.received = 0
        """Notifications received (for tests and diagnostics)."""
        self._synced: set[str] = set()
        self._markers = itertools.count(1)

    # -- readers ---------------------------------------------------------------------------------
    def token(self) -> int | None:
        """The current sequence number while listening (take it before reading), else None."""
        return self._seq if self._listening else None

    def fresh(self, edev_id: int, token: int) -> bool:
        """True when nothing concerning ``edev_id`` was notified after ``token`` was taken and
        the feed has listened without interruption since."""
        return self._listening and self._all <= token and self._devices.get(edev_id, 0) <= token

    @property
    def listening(self) -> bool:
        return self._listening

    @property
    def all_seq(self) -> int:
        """Sequence number of the last change that concerns every device (a ``*``
        notification, or listening (re)started): bulk-loaded answers older than it are void."""
        return self._all

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> ChangeFeed:
        """Start listening in a background thread (returns at once; :meth:`wait_listening`)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="sep2-changes", daemon=True)
            self._thread.start()
        return self

    def wait_listening(self, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while not self._listening and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._listening

    def sync(self, timeout_s: float = 10.0) -> bool:
        """Wait until every change committed before this call has been applied: send a marker
        on the channel and wait for it (notifications arrive in commit order). False when not
        listening or the marker did not come back in time."""
        if not self._listening:
            return False
        marker = f"sync:{os.getpid()}:{threading.get_ident()}:{next(self._markers)}"
        with self.engine.connect() as conn:
            conn.execute(
                text("SELECT pg_notify(:channel, :marker)"), {"channel": CHANNEL, "marker": marker}
            )
            conn.commit()
        deadline = time.monotonic() + timeout_s
        while marker not in self._synced:
            if not self._listening or time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        self._synced.discard(marker)
        return True

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(10)
        self._invalidate_all()
        self._listening = False

    # -- the listening thread --------------------------------------------------------------------
    def _bump(self) -> int:
        self._seq += 1
        return self._seq

    def _invalidate_all(self) -> None:
        self._all = self._bump()

    def apply(self, payload: str) -> None:
        """Record one notification (``d:<id>`` or ``*``; anything else invalidates all)."""
        self.received += 1
        if payload.startswith("sync:"):
            if len(self._synced) > 10_000:  # markers nobody waited for
                self._synced.clear()
            self._synced.add(payload)
            return
        if payload.startswith("d:"):
            try:
                edev_id = int(payload[2:])
            except ValueError:
                self._invalidate_all()
                return
            self._devices[edev_id] = self._bump()
            if len(self._devices) > 1_000_000:  # bound memory: forget, conservatively
                self._devices.clear()
                self._invalidate_all()
            return
        self._invalidate_all()

    def _connect(self) -> Any:
        raw = self.engine.raw_connection()
        conn: Any = raw.driver_connection
        raw.detach()  # ours alone, never back in the pool
        try:
            conn.autocommit = True
            conn.execute(f"LISTEN {CHANNEL}")
        except Exception:
            conn.close()
            raise
        return conn

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn = self._connect()
            except Exception as exc:
                log.warning("cannot listen for changes (%s); checking the database instead", exc)
                self._stop.wait(RECONNECT_S)
                continue
            self._conn = conn
            # whatever was committed before LISTEN took effect was not notified to us
            self._invalidate_all()
            self._listening = True
            try:
                pinged = time.monotonic()
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=POLL_S):
                        self.apply(note.payload)
                    if time.monotonic() - pinged > PING_S:
                        conn.execute("SELECT 1")
                        pinged = time.monotonic()
            except Exception as exc:
                log.warning("change notifications lost (%s); reconnecting", exc)
            finally:
                self._listening = False
                self._invalidate_all()
                self._conn = None
                try:
                    conn.close()
                except Exception:  # already broken
                    log.debug("closing the listening connection failed", exc_info=True)
            if not self._stop.is_set():
                self._stop.wait(RECONNECT_S)
