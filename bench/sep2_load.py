"""Load on the IEEE 2030.5 server: devices polling DERControlLists and posting readings over TLS.

N simulated devices (default 1,000) behind A aggregators (default 10) each poll their site
DERControlList and post a 5-minute MirrorMeterReading, over mutual TLS with HTTP/1.1 keep-alive on
loopback, against PostgreSQL — the traffic of IEEE 2030.5 clients polling and posting every 5
minutes (issue 4: 300,000 such devices need about 2,000 requests/s). The load generator is a lean
asyncio client (raw TLS streams, one request in flight per connection) running in the same
machine, so it shares the CPU with the server, as the issue asks.

The peer for the ratio is the same TLS server stack (:mod:`gridflex.sep2.server`, same workers)
answering every request with a fixed, pre-rendered DERControlList: it measures what TLS + HTTP
parsing + the load generator cost by themselves, so the ratio is the share of the ceiling the
real server reaches with its database work.

Run: ``python bench/sep2_load.py [--devices 1000] [--aggregators 10] [--requests 20000]
[--connections 40] [--workers 2] [--db postgresql://...]`` (default database: a fresh one created
on ``$GRIDFLEX_TEST_POSTGRES_URL`` or ``postgresql://postgres@127.0.0.1:5432/postgres`` and dropped
afterwards). Loopback only; bounded in requests and in time (``--max-seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# ---- setup ------------------------------------------------------------------------------------
def _admin_url() -> str:
    return (
        os.environ.get("GRIDFLEX_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres"
    )


def _exec_admin(sql: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.pool import NullPool

    from gridflex.derms.db import make_engine

    eng = make_engine(_admin_url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with eng.connect() as conn:
        conn.execute(text(sql))
    eng.dispose()


@dataclass
class Fleet:
    db_url: str
    certs: Path
    aggregator_certs: list[str]
    # per aggregator: list of (edev_id, site derp id, mup id)
    devices: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)


def seed(db_url: str, certs: Path, n_devices: int, n_aggregators: int) -> Fleet:
    """Registry + 2030.5 state: aggregators with certificates, DER with terms, EndDevices,
    published controls and one MirrorUsagePoint per device."""
    from gridflex.derms import registry
    from gridflex.derms.db import make_engine, session_factory, upgrade
    from gridflex.sep2 import manager
    from gridflex.sep2.certs import ensure_test_pki
    from gridflex.sep2.identity import AggregatorScope, lfdi_from_certificate, sfdi_from_lfdi
    from gridflex.sep2.persistence import SITE_PROGRAM_KEY
    from gridflex.terms import ConnectionTerms

    names = tuple((f"aggregator-{i}", "aggregator") for i in range(n_aggregators))
    _, idents = ensure_test_pki(certs, clients=names)
    engine = make_engine(db_url)
    upgrade(engine)
    now = dt.datetime.now(dt.UTC)
    fleet = Fleet(db_url, certs, [i.name for i in idents])
    summer = ConnectionTerms.seasonal_schedule(summer_kw=6.0, winter_kw=8.0)
    # the MirrorMeterReading the devices post to, as their MirrorUsagePoint POST declared it
    # (a fleet in service: the load is routine telemetry, not first registrations)
    reading_type = manager.MeterReadingInput(
        mrid=READING_MRID, description="", uom=38, kind=37, flow_direction=1, phase=None,
        data_qualifier=2, power_of_ten=0, interval_length_s=300, readings=(),
    )  # fmt: skip
    with session_factory(engine).begin() as s:
        site = registry.add_site(s, name="bench site")
        per = max(1, n_devices // n_aggregators)
        k = 0
        for ident in idents:
            agg = registry.add_aggregator(s, name=ident.name, lfdi=ident.lfdi)
            scope = AggregatorScope(lfdi=ident.lfdi, sfdi=ident.sfdi, aggregator_id=agg.id)
            fleet.devices[ident.name] = []
            for _ in range(per):
                k += 1
                lfdi = lfdi_from_certificate(f"bench-device-{k}".encode())  # a synthetic identity
                conn = f"bench-{k}"
                registry.add_der(
                    s, site_id=site.id, der_type="pv", nameplate_kw=10.0, actor="bench",
                    lfdi=lfdi, sfdi=sfdi_from_lfdi(lfdi), aggregator_id=agg.id, connection_id=conn,
                )  # fmt: skip
                terms = ConnectionTerms(
                    connection_id=conn, nameplate_kw=10.0, export_limit_kw=8.0,
                    schedule_export_kw=summer if k % 2 else None, agreed_at=now,
                )  # fmt: skip
                registry.add_terms(s, terms, actor="bench")
                edev, _ = manager.register_end_device(
                    s, scope, manager.EndDeviceInput(lfdi=lfdi, sfdi=sfdi_from_lfdi(lfdi)), now
                )
                manager.publish_terms_controls(s, edev, now)
                site_derp = next(
                    p.id for p in manager.programs_for(s, edev) if p.key == SITE_PROGRAM_KEY
                )
                mup, _ = manager.upsert_mirror_usage_point(
                    s, scope, device_lfdi=lfdi, mrid=f"{k:032x}", description="site",
                    role_flags="49", service_category=0, status=1, post_rate_s=300,
                    meter_readings=(reading_type,), now=now,
                )  # fmt: skip
                fleet.devices[ident.name].append((edev.id, site_derp, mup.id))
    engine.dispose()
    return fleet


# ---- servers ----------------------------------------------------------------------------------
def start_gridflex(fleet: Fleet, port: int, workers: int, inline: bool) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from gridflex.cli.main import main; main()", "serve"]
    cmd += ["--db", fleet.db_url, "--certs", str(fleet.certs), "--port", str(port)]
    cmd += ["--workers", str(workers), "--inline-handlers" if inline else "--thread-handlers"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


STATIC_PEER = r"""
import sys
from gridflex.sep2.certs import TlsFiles
from gridflex.sep2.server import serve
from pathlib import Path
body = Path(sys.argv[2]).read_bytes()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/sep+xml"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
d = Path(sys.argv[1])
serve(lambda: app, TlsFiles(d / "server.pem", d / "server.key", d / "ca.pem"),
      port=int(sys.argv[3]), workers=int(sys.argv[4]))
"""


def start_static_peer(fleet: Fleet, port: int, workers: int, body: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", STATIC_PEER, str(fleet.certs), str(body), str(port), str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, ctx: ssl.SSLContext, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            _lat, errs = asyncio.run(_one(port, ctx, b"GET /dcap HTTP/1.1\r\nHost: x\r\n\r\n"))
            if not errs:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not start in 60 s")


async def _one(port: int, ctx: ssl.SSLContext, req: bytes) -> tuple[float, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    try:
        t0 = time.perf_counter()
        writer.write(req)
        status = await _read_response(reader)
        return time.perf_counter() - t0, 0 if status < 400 else 1
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


READING_MRID = "0700006CC8000000000000000000ABCD"


# ---- load -------------------------------------------------------------------------------------
def reading_doc(k: int, t: int) -> bytes:
    return (
        f'<MirrorMeterReading xmlns="urn:ieee:std:2030.5:ns"><mRID>{READING_MRID}'
        "</mRID><Reading><timePeriod><duration>300</duration>"
        f"<start>{t}</start></timePeriod><value>{k % 5000}</value></Reading><ReadingType>"
        "<dataQualifier>2</dataQualifier><flowDirection>1</flowDirection><intervalLength>300"
        "</intervalLength><kind>37</kind><powerOfTenMultiplier>0</powerOfTenMultiplier><uom>38"
        "</uom></ReadingType></MirrorMeterReading>"
    ).encode()


# ---- CPU accounting (Linux /proc; nothing elsewhere) ---------------------------------------------
def _proc_stats() -> dict[int, tuple[int, str, float]]:
    """pid → (parent pid, command name, user + system CPU seconds) of every process."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_split(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the server (its process tree), by PostgreSQL (every process
    named postgres: other users of the database server count too) and by this load generator."""
    stats = _proc_stats()
    tree = {server_pid}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _, _) in stats.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return {
        "server": sum(stats[p][2] for p in tree if p in stats),
        "postgres": sum(cpu for _, name, cpu in stats.values() if name == "postgres"),
        "client": time.process_time(),
    }


def cpu_line(before: dict[str, float], after: dict[str, float], n: int) -> str:
    per = {k: (after[k] - before[k]) / max(n, 1) * 1000 for k in before}
    return (
        f"{'':<34} CPU per request: server {per['server']:.2f} ms, PostgreSQL "
        f"{per['postgres']:.2f} ms, load generator {per['client']:.2f} ms"
    )


@dataclass
class Result:
    latencies_s: list[float]
    errors: int
    elapsed_s: float

    def line(self, label: str) -> str:
        n = len(self.latencies_s)
        lat = sorted(self.latencies_s)
        p50 = lat[n // 2] * 1000 if n else float("nan")
        p99 = lat[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan")
        return (
            f"{label:<34} {n / self.elapsed_s:8.0f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
            f"   errors {self.errors}   ({n} requests in {self.elapsed_s:.1f} s)"
        )

    @property
    def rate(self) -> float:
        return len(self.latencies_s) / self.elapsed_s


async def run_load(
    port: int,
    certs: Path,
    fleet: Fleet,
    *,
    total: int,
    connections: int,
    max_seconds: float,
) -> Result:
    """``connections`` keep-alive TLS connections spread over the aggregators; each walks its
    aggregator's devices: GET the device's DERControlList, then POST its reading."""
    ctxs = {}
    for name in fleet.aggregator_certs:
        ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        ctx.load_cert_chain(str(certs / f"{name}.pem"), str(certs / f"{name}.key"))
        ctxs[name] = ctx
    latencies: list[float] = []
    errors = 0
    issued = 0
    t_end = time.perf_counter() + max_seconds
    now = int(time.time()) // 300 * 300

    async def worker(i: int) -> None:
        nonlocal errors, issued
        name = fleet.aggregator_certs[i % len(fleet.aggregator_certs)]
        devices = fleet.devices[name]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctxs[name])
        j = i // len(fleet.aggregator_certs)
        try:
            while issued < total and time.perf_counter() < t_end:
                edev, derp, mup = devices[j % len(devices)]
                if issued % 2 == 0:
                    req = (
                        f"GET /edev/{edev}/derp/{derp}/derc?l=10 HTTP/1.1\r\nHost: bench\r\n"
                        "Accept: application/sep+xml\r\n\r\n"
                    ).encode()
                else:
                    j += 1
                    body = reading_doc(j, now - 300 * (j // len(devices)))
                    req = (
                        f"POST /mup/{mup} HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                        f"application/sep+xml\r\nContent-Length: {len(body)}\r\n\r\n"
                    ).encode() + body
                issued += 1
                t0 = time.perf_counter()
                writer.write(req)
                try:
                    status = await asyncio.wait_for(_read_response(reader), 30)
                except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", port, ssl=ctxs[name]
                    )
                    continue
                latencies.append(time.perf_counter() - t0)
                if status >= 400:
                    errors += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    return Result(latencies, errors, time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--aggregators", type=int, default=10)
    ap.add_argument("--requests", type=int, default=20000, help="requests of the warm phase")
    ap.add_argument(
        "--cold-requests",
        type=int,
        default=None,
        help="requests of the cold phase, first after start (default: 8 per device: every "
        "connection walks all its aggregator's devices once, so each worker has seen the "
        "devices its connections poll)",
    )
    ap.add_argument("--connections", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument(
        "--inline-handlers",
        action="store_true",
        help="run the server's handlers on each worker's event loop (default: thread pool)",
    )
    ap.add_argument("--db", default=None, help="PostgreSQL URL (default: a fresh database)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))

    dropped: str | None = None
    db_url = args.db
    if db_url is None:
        from sqlalchemy.engine import make_url

        name = f"gridflex_bench_{uuid.uuid4().hex[:12]}"
        _exec_admin(f'CREATE DATABASE "{name}"')
        dropped = name
        db_url = make_url(_admin_url()).set(database=name).render_as_string(hide_password=False)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            fleet = seed(db_url, Path(tmp) / "certs", args.devices, args.aggregators)
            print(
                f"seeded {args.devices} devices behind {args.aggregators} aggregators "
                f"in {time.perf_counter() - t0:.1f} s; {args.connections} TLS connections, "
                f"{args.workers} server workers, {os.cpu_count()} CPUs (load generator included)"
            )
            ctx = ssl.create_default_context(cafile=str(fleet.certs / "ca.pem"))
            first = fleet.aggregator_certs[0]
            ctx.load_cert_chain(
                str(fleet.certs / f"{first}.pem"), str(fleet.certs / f"{first}.key")
            )

            port = free_port()
            procs.append(start_gridflex(fleet, port, args.workers, args.inline_handlers))
            wait_ready(port, ctx, procs[-1])
            # a sample DERControlList as the static peer's fixed answer
            edev, derp, _ = fleet.devices[first][0]
            sample = Path(tmp) / "sample.xml"
            sample.write_bytes(
                asyncio.run(_fetch(port, ctx, f"/edev/{edev}/derp/{derp}/derc?l=10"))
            )
            load = {
                "total": args.requests,
                "connections": args.connections,
                "max_seconds": args.max_seconds,
            }
            cold_load = dict(load, total=args.cold_requests or 8 * args.devices)
            # cold: every device's first polls and posts in each worker (lists rendered, owners
            # and reading types looked up); warm: the fleet's steady state, polls every 5 min
            cpu0 = cpu_split(procs[-1].pid)
            cold = asyncio.run(run_load(port, fleet.certs, fleet, **cold_load))
            cpu1 = cpu_split(procs[-1].pid)
            ours = asyncio.run(run_load(port, fleet.certs, fleet, **load))
            cpu2 = cpu_split(procs[-1].pid)
            _stop(procs.pop())

            port = free_port()
            procs.append(start_static_peer(fleet, port, args.workers, sample))
            wait_ready(port, ctx, procs[-1])
            cpu3 = cpu_split(procs[-1].pid)
            peer = asyncio.run(run_load(port, fleet.certs, fleet, **load))
            cpu4 = cpu_split(procs[-1].pid)
            _stop(procs.pop())

            print(cold.line("gridflex sep2, cold (PostgreSQL)"))
            print(cpu_line(cpu0, cpu1, len(cold.latencies_s)))
            print(ours.line("gridflex sep2, warm (PostgreSQL)"))
            print(cpu_line(cpu1, cpu2, len(ours.latencies_s)))
            print(peer.line("peer: static TLS answer, same stack"))
            print(cpu_line(cpu3, cpu4, len(peer.latencies_s)))
            print(f"ratio gridflex warm / static peer: {ours.rate / peer.rate:.2f}")
            for phase, res in (("cold", cold), ("warm", ours)):
                lat = sorted(res.latencies_s)
                p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else float("inf")
                goal = res.rate >= 2000 and res.errors == 0 and p99 < 100
                print(
                    f"goal, {phase} phase (>= 2000 req/s, p99 < 100 ms, 0 errors): "
                    f"{'met' if goal else 'NOT met'}"
                )
    finally:
        for p in procs:
            _stop(p)
        if dropped:
            with contextlib.suppress(Exception):
                _exec_admin(f'DROP DATABASE IF EXISTS "{dropped}" WITH (FORCE)')


async def _fetch(port: int, ctx: ssl.SSLContext, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(
        next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:"))[15:]
    )
    body = await reader.readexactly(length)
    writer.close()
    return body


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
