"""``gridflex serve`` with no database or certificate options: embedded SQLite, a generated test
CA, client certificates in a folder it prints, 2030.5 over mutual TLS and the registry at /admin."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_gridflex_serve_starts_everything_with_one_command(tmp_path: Path) -> None:
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path), GRIDFLEX_DB_URL="")
    env.pop("GRIDFLEX_DB_URL")
    # only --port 0 (a free port: parallel test runs must not collide on 8443)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from gridflex.cli.main import main; main()",
            "serve",
            "--port",
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = ""
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out += line
            if "Ctrl-C" in line:
                break
        m = re.search(r"https://127\.0\.0\.1:(\d+)/dcap", out)
        assert m, out
        folder = tmp_path / "gridflex" / "sep2-certs"
        assert str(folder) in out
        assert (tmp_path / "gridflex" / "gridflex.sqlite").exists()
        ctx = ssl.create_default_context(cafile=str(folder / "ca.pem"))
        ctx.load_cert_chain(str(folder / "device-1.pem"), str(folder / "device-1.key"))
        with httpx.Client(verify=ctx, base_url=f"https://127.0.0.1:{m.group(1)}") as c:
            r = c.get("/dcap")
            assert r.status_code == 200
            assert b"<DeviceCapability" in r.content
            assert c.get("/admin/openapi.json").json()["info"]["title"] == "gridflex registry"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            out += proc.stdout.read()
            proc.stdout.close()
    assert proc.returncode in (0, -signal.SIGINT, 130), out


def test_demo_registry_gives_clients_limits_at_once(tmp_path: Path) -> None:
    import datetime as dt

    from gridflex.derms.db import make_engine
    from gridflex.sep2.app import create_app, watts_of
    from gridflex.sep2.runner import prepare, seed_demo
    from gridflex.sep2.server import ServerThread
    from tests.sep2.client import walk
    from tests.sep2.docs import end_device_xml

    prepared = prepare(f"sqlite:///{tmp_path / 'demo.sqlite'}", tmp_path / "certs")
    added = seed_demo(prepared.db_url, prepared.clients)
    assert len(added) == 4  # the aggregator and three devices
    assert seed_demo(prepared.db_url, prepared.clients) == []  # idempotent
    engine = make_engine(prepared.db_url)
    srv = ServerThread(create_app(engine, with_admin=False), prepared.files).start()
    try:
        ids = {c.name: c for c in prepared.clients}
        ctx = ssl.create_default_context(cafile=str(prepared.files.ca_cert))
        ctx.load_cert_chain(str(ids["device-1"].cert), str(ids["device-1"].key))
        with httpx.Client(verify=ctx, base_url=srv.url) as c:
            assert c.post("/edev", content=end_device_xml(ids["device-1"].lfdi)).status_code == 201
            _, view = walk(c, lfdi=ids["device-1"].lfdi)
        now = dt.datetime.now(dt.UTC)
        summer = now.month in (6, 7, 8, 9)
        assert view.export_limit_w_at(now) == (60_000 if summer else 80_000)
        assert view.default is not None
        assert view.default.DERControlBase_.opModExpLimW is not None
        assert watts_of(view.default.DERControlBase_.opModExpLimW) == 40_000
    finally:
        srv.stop()
        engine.dispose()
