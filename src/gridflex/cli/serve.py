"""``gridflex serve``: the IEEE 2030.5 server (mutual TLS) with the registry REST API at /admin.

No logic here: :mod:`gridflex.sep2.runner` prepares the database and certificates and runs the
server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="GRIDFLEX_DB_URL",
            help="Database URL (sqlite:///path or postgresql://...). Default: the embedded SQLite "
            "file ~/.local/share/gridflex/gridflex.sqlite.",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (HTTPS, client certificates required).")] = (
        8443
    ),
    certs: Annotated[
        Path | None,
        typer.Option(
            "--certs",
            help="Folder of TLS files: ca.pem + server.pem + server.key of your PKI, or (default "
            "~/.local/share/gridflex/sep2-certs) where a test CA and client certificates are "
            "generated on first start.",
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes sharing the port.")] = 1,
    csip_aus: Annotated[
        str, typer.Option("--csip-aus", help="CSIP-AUS namespace in responses: 1.2 or 1.3.")
    ] = "1.2",
    tz: Annotated[str, typer.Option(help="Zone reported by the Time resource.")] = (
        "America/Chicago"
    ),
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Register the generated test certificates in the registry (an aggregator, a "
            "direct PV with a seasonal schedule, PVs behind the aggregator) so clients see "
            "limits at once.",
        ),
    ] = False,
    inline_handlers: Annotated[
        bool,
        typer.Option(
            "--inline-handlers/--thread-handlers",
            help="Run request handlers on each worker's event loop (fastest with several "
            "workers) or in a thread pool (default).",
        ),
    ] = False,
) -> None:
    """Run the IEEE 2030.5 (CSIP / CSIP-AUS) server over mutual TLS, registry API at /admin."""
    from rich.console import Console

    from gridflex.errors import InputError
    from gridflex.sep2 import xml as sepxml
    from gridflex.sep2.app import Sep2Settings
    from gridflex.sep2.runner import prepare, run

    namespaces = {"1.2": sepxml.CSIP_AUS_NS_V12, "1.3": sepxml.CSIP_AUS_NS_V13}
    if csip_aus not in namespaces:
        raise InputError(f"--csip-aus {csip_aus!r} is not a CSIP-AUS version", "give 1.2 or 1.3")
    console = Console(soft_wrap=True)  # paths and LFDIs must stay whole for copy and paste
    prepared = prepare(db, certs)
    settings = Sep2Settings(
        csip_aus_ns=namespaces[csip_aus],
        tz=tz,
        inline_handlers=inline_handlers,
        notify_tls=prepared.files,
        notify_base_url=f"https://{host}:{port}",
    )
    folder = prepared.files.ca_cert.parent
    if prepared.generated:
        console.print(f"[bold]Test client certificates[/] in {folder} (also in clients.json):")
        for c in prepared.clients:
            console.print(
                f"  {c.name:<14} {c.role:<10} {c.cert.name} + {c.key.name}  "
                f"LFDI {c.lfdi.upper()}  SFDI {c.sfdi}",
                soft_wrap=True,
                highlight=False,
            )
        console.print(
            f"CA: {prepared.files.ca_cert}. Register these LFDIs in the registry (aggregator.lfdi "
            "/ der.lfdi, e.g. through /admin) so the server knows whose they are."
        )
    else:
        console.print(f"TLS files from {folder} (your PKI)")
    if demo:
        if not prepared.generated:
            raise InputError(
                "--demo registers the generated test certificates", "drop --demo with your PKI"
            )
        from gridflex.sep2.runner import seed_demo

        added = seed_demo(prepared.db_url, prepared.clients)
        console.print("demo registry: " + (", ".join(added) if added else "already in place"))

    def ready(bound: int) -> None:
        console.print(
            f"[bold green]IEEE 2030.5 server[/] on https://{host}:{bound}/dcap "
            f"(client certificate required), registry API on https://{host}:{bound}/admin/docs, "
            f"2030.5 operations API on https://{host}:{bound}/ops/docs; "
            f"database {prepared.db_url}; Ctrl-C stops"
        )

    run(prepared, host=host, port=port, workers=workers, settings=settings, on_ready=ready)
