"""``gridflex registry`` and ``gridflex db``: the DER registry from the command line.

No logic lives here: commands parse options, open a transaction and call
:mod:`gridflex.derms.registry` / :mod:`gridflex.derms.auth`. Heavy imports stay inside the
commands so ``gridflex --help`` is fast. Every command takes ``--db URL`` (default
``$GRIDFLEX_DB_URL`` or the embedded SQLite file).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

app = typer.Typer(
    help="DER registry: sites, DER, aggregators, programs, versioned connection terms, "
    "lifecycle, API users, the operator REST API.",
    no_args_is_help=True,
)
db_app = typer.Typer(help="Registry database: migrations.", no_args_is_help=True)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="GRIDFLEX_DB_URL",
        help="Database URL (sqlite:///path or postgresql://...). Default: the embedded SQLite "
        "file ~/.local/share/gridflex/gridflex.sqlite.",
    ),
]


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "cli"


ActorOpt = Annotated[
    str, typer.Option("--actor", help="Who makes the change (recorded).", show_default=False)
]


@contextmanager
def _session(db: str | None) -> Iterator[Session]:
    """One transaction on a migrated database; refuses to run on an unmigrated one."""
    from gridflex.derms.db import current_revision, head_revision, make_engine, session_factory
    from gridflex.errors import InputError

    engine = make_engine(db)
    try:
        rev = current_revision(engine)
        if rev != head_revision():
            where = engine.url.render_as_string(hide_password=True)
            raise InputError(
                f"the registry database {where} is at revision {rev or '(empty)'}, not "
                f"{head_revision()}",
                "run `gridflex db upgrade` (or `gridflex registry init`) first",
            )
        with session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()


def _print_rows(rows: list[dict[str, Any]], title: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    if not rows:
        Console().print(f"{title}: none")
        return
    for key in rows[0]:
        table.add_column(key)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    Console().print(table)


# ---- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    db: DbOpt = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply the registry (and 2030.5) migrations."""
    from gridflex.derms.db import current_revision, make_engine, upgrade

    engine = make_engine(db)
    try:
        upgrade(engine, revision)
        typer.echo(
            f"{engine.url.render_as_string(hide_password=True)}: at revision "
            f"{current_revision(engine)}"
        )
    finally:
        engine.dispose()


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision ('base' empties the db).")],
    db: DbOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: data in dropped tables is lost.")] = (
        False
    ),
) -> None:
    """Undo migrations down to REVISION (drops tables: needs --yes)."""
    from gridflex.derms.db import current_revision, downgrade, make_engine
    from gridflex.errors import InputError

    if not yes:
        raise InputError(
            f"downgrading to {revision} drops tables and their data",
            "add --yes if that is what you want",
        )
    engine = make_engine(db)
    try:
        downgrade(engine, revision)
        typer.echo(f"at revision {current_revision(engine) or '(empty)'}")
    finally:
        engine.dispose()


@db_app.command("current")
def db_current(db: DbOpt = None) -> None:
    """Print the database's revision and the newest one this gridflex ships."""
    from gridflex.derms.db import current_revision, head_revision

    typer.echo(f"database: {current_revision(db) or '(empty)'}; newest: {head_revision()}")


# ---- registry ---------------------------------------------------------------------------------


@app.command("init")
def init(
    db: DbOpt = None,
    operator: Annotated[str, typer.Option(help="Name of the first operator user.")] = "admin",
) -> None:
    """Create or migrate the registry; on an empty one create an operator and print its API key."""
    from sqlalchemy import func, select

    from gridflex.derms.auth import create_user, issue_key
    from gridflex.derms.db import make_engine, upgrade
    from gridflex.derms.models import ApiUser

    engine = make_engine(db)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    with _session(db) as s:
        where = s.get_bind().engine.url.render_as_string(hide_password=True)
        typer.echo(f"registry ready at {where}")
        if not s.scalar(select(func.count()).select_from(ApiUser)):
            user = create_user(s, name=operator, role="operator")
            token = issue_key(s, user.id)
            typer.echo(f"operator user {operator!r} created; its API key (shown once):")
            typer.echo(token)


@app.command("status")
def status(db: DbOpt = None) -> None:
    """Count what the registry holds."""
    from gridflex.derms import registry as reg

    with _session(db) as s:
        for key, n in reg.counts(s).items():
            typer.echo(f"{key:>15}: {n}")


@app.command("add-site")
def add_site(
    name: Annotated[str, typer.Argument()],
    db: DbOpt = None,
    address: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    customer: str = "",
) -> None:
    """Register a site; prints its id."""
    from gridflex.derms import registry as reg

    with _session(db) as s:
        site = reg.add_site(
            s, name=name, address=address, latitude=latitude, longitude=longitude,
            customer=customer,
        )  # fmt: skip
        typer.echo(site.id)


@app.command("add-service-point")
def add_service_point(
    site_id: Annotated[int, typer.Argument()],
    number: Annotated[str, typer.Argument(help="Utility service point number.")],
    db: DbOpt = None,
    meter_number: str = "",
    service_voltage_ll_v: float | None = None,
    phases: str = "",
    feeder: str = "",
    transformer: str = "",
) -> None:
    """Register a service point of a site; prints its id."""
    from gridflex.derms import registry as reg

    with _session(db) as s:
        sp = reg.add_service_point(
            s, site_id=site_id, number=number, meter_number=meter_number,
            service_voltage_ll_v=service_voltage_ll_v, phases=phases, feeder=feeder,
            transformer=transformer,
        )  # fmt: skip
        typer.echo(sp.id)


@app.command("add-aggregator")
def add_aggregator(
    name: Annotated[str, typer.Argument()],
    db: DbOpt = None,
    lfdi: Annotated[str | None, typer.Option(help="Certificate LFDI (40 hex digits).")] = None,
    sfdi: int | None = None,
    contact: str = "",
) -> None:
    """Register an aggregator; prints its id."""
    from gridflex.derms import registry as reg

    with _session(db) as s:
        typer.echo(reg.add_aggregator(s, name=name, lfdi=lfdi, sfdi=sfdi, contact=contact).id)


@app.command("add-der")
def add_der(
    site: Annotated[int, typer.Option("--site", help="Site id.")],
    der_type: Annotated[str, typer.Option("--type", help="pv, storage, pv_storage, wind, ...")],
    nameplate_kw: Annotated[float, typer.Option("--kw", help="AC nameplate, kW.")],
    db: DbOpt = None,
    name: str = "",
    nameplate_kva: Annotated[float | None, typer.Option("--kva")] = None,
    energy_kwh: Annotated[float | None, typer.Option("--kwh")] = None,
    aggregator: Annotated[int | None, typer.Option(help="Aggregator id.")] = None,
    service_point: Annotated[int | None, typer.Option(help="Service point id.")] = None,
    lfdi: str | None = None,
    sfdi: int | None = None,
    connection: Annotated[str | None, typer.Option(help="Connection id of its terms.")] = None,
    feeder: str = "",
    transformer: str = "",
    phase: str = "",
    inverter: Annotated[
        str | None, typer.Option(help='Inverter settings as JSON, e.g. \'{"category": "B"}\'.')
    ] = None,
    telemetry: Annotated[str | None, typer.Option(help="Telemetry capability as JSON.")] = None,
    actor: ActorOpt = "",
) -> None:
    """Register a DER (state 'applied'); prints its id."""
    from gridflex.derms import registry as reg

    with _session(db) as s:
        der = reg.add_der(
            s, site_id=site, der_type=der_type, nameplate_kw=nameplate_kw, name=name,
            nameplate_kva=nameplate_kva, energy_kwh=energy_kwh, aggregator_id=aggregator,
            service_point_id=service_point, lfdi=lfdi, sfdi=sfdi, connection_id=connection,
            feeder=feeder, transformer=transformer, phase=phase,
            inverter_settings=_json_option("--inverter", inverter),
            telemetry=_json_option("--telemetry", telemetry), actor=actor or _default_actor(),
        )  # fmt: skip
        typer.echo(der.id)


def _json_option(option: str, text: str | None) -> dict[str, Any]:
    from gridflex.errors import InputError

    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{option} is not valid JSON ({exc})", "quote it: '{\"key\": 1}'") from exc
    if not isinstance(value, dict):
        raise InputError(f"{option} must be a JSON object", "give key: value pairs in {...}")
    return value


@app.command("add-terms")
def add_terms(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Terms JSON/YAML.")],
    db: DbOpt = None,
    agreed: Annotated[
        bool,
        typer.Option(
            "--agreed",
            help="The customer agreed to terms that limit the connection further than now.",
        ),
    ] = False,
    note: str = "",
    actor: ActorOpt = "",
) -> None:
    """Store a new version of a connection's terms (refused if tighter, unless --agreed)."""
    from gridflex.cli.terms import read_terms_file
    from gridflex.derms import registry as reg

    terms = read_terms_file(path)
    with _session(db) as s:
        row = reg.add_terms(s, terms, actor=actor or _default_actor(), agreed=agreed, note=note)
        flag = " (agreed tightening)" if row.agreed_override else ""
        typer.echo(f"{row.connection_id}: stored version {row.version}{flag}")


@app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML/JSON file.")],
    db: DbOpt = None,
    actor: ActorOpt = "",
) -> None:
    """Register aggregators, sites, service points, DER, terms and programs from one file.

    All or nothing: a bad entry stores nothing and the error names its path in the file.
    """
    from gridflex.derms.importer import import_registry, read_registry_file

    read_registry_file(path)  # a malformed file fails before the database is opened
    with _session(db) as s:
        counts = import_registry(s, path, actor=actor or _default_actor())
    typer.echo(", ".join(f"{n} {k}" for k, n in counts.items()))


@app.command("terms")
def show_terms(
    connection_id: Annotated[str, typer.Argument()],
    db: DbOpt = None,
    history: Annotated[bool, typer.Option("--history", help="Every version.")] = False,
    version: Annotated[int | None, typer.Option(help="One stored version.")] = None,
) -> None:
    """Print a connection's current terms (or one version, or all) as JSON."""
    from gridflex.derms import registry as reg
    from gridflex.errors import NotFoundError

    with _session(db) as s:
        if version is not None:
            rows = [reg.terms_version(s, connection_id, version)]
        elif history:
            rows = reg.terms_rows(s, connection_id)
        else:
            row = reg.current_terms_row(s, connection_id)
            rows = [] if row is None else [row]
        if not rows:
            raise NotFoundError(f"connection {connection_id!r} has no terms")
        out = [
            {
                "version": r.version, "created_at": r.created_at.isoformat(),
                "created_by": r.created_by, "agreed_override": r.agreed_override,
                "note": r.note, "terms": r.terms,
            }
            for r in rows
        ]  # fmt: skip
        typer.echo(json.dumps(out if history else out[0], indent=2))


@app.command("transition")
def transition(
    der_id: Annotated[int, typer.Argument()],
    to_state: Annotated[str, typer.Argument(help="applied, approved, registered, ...")],
    db: DbOpt = None,
    note: str = "",
    actor: ActorOpt = "",
) -> None:
    """Move a DER to its next lifecycle state (recorded with who and when)."""
    from gridflex.derms import registry as reg

    with _session(db) as s:
        ev = reg.transition(s, der_id, to_state, actor=actor or _default_actor(), note=note)
        typer.echo(f"DER {der_id}: {ev.from_state} -> {ev.to_state} by {ev.actor} at {ev.at}")


@app.command("history")
def history(der_id: Annotated[int, typer.Argument()], db: DbOpt = None) -> None:
    """Print a DER's lifecycle transitions."""
    from gridflex.derms import registry as reg

    with _session(db) as s:
        for ev in reg.lifecycle_history(s, der_id):
            typer.echo(f"{ev.at.isoformat()}  {ev.from_state or '-':>10} -> {ev.to_state:<12} "
                       f"{ev.actor}  {ev.note}")  # fmt: skip


@app.command("list")
def list_objects(
    what: Annotated[str, typer.Argument(help="ders, sites, aggregators, programs, connections")],
    db: DbOpt = None,
    aggregator: Annotated[int | None, typer.Option(help="Only DER of this aggregator.")] = None,
    feeder: Annotated[str | None, typer.Option(help="Only DER on this feeder.")] = None,
    state: Annotated[str | None, typer.Option(help="Only DER in this lifecycle state.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List registry objects as a table (or JSON)."""
    from gridflex.derms import registry as reg
    from gridflex.errors import InputError

    with _session(db) as s:
        rows: list[dict[str, Any]]
        if what == "ders":
            rows = [
                {"id": d.id, "name": d.name, "type": d.der_type, "kw": d.nameplate_kw,
                 "site": d.site_id, "aggregator": d.aggregator_id, "lfdi": d.lfdi,
                 "feeder": d.feeder, "connection": d.connection_id, "state": d.lifecycle_state}
                for d in reg.list_ders(s, aggregator_id=aggregator, feeder=feeder, state=state)
            ]  # fmt: skip
        elif what == "sites":
            rows = [{"id": x.id, "name": x.name, "address": x.address, "customer": x.customer}
                    for x in reg.list_sites(s)]  # fmt: skip
        elif what == "aggregators":
            rows = [{"id": a.id, "name": a.name, "lfdi": a.lfdi, "ders": len(a.ders)}
                    for a in reg.list_aggregators(s)]  # fmt: skip
        elif what == "programs":
            rows = [{"id": p.id, "name": p.name, "constraint": p.constraint_kind,
                     "element": p.constraint_element, "capacity_kw": p.capacity_kw,
                     "ders": len(p.members)} for p in reg.list_programs(s)]  # fmt: skip
        elif what == "connections":
            rows = []
            for cid in reg.connection_ids(s):
                row = reg.current_terms_row(s, cid)
                assert row is not None
                rows.append({"connection": cid, "version": row.version,
                             "export_limit_kw": row.terms.get("export_limit_kw"),
                             "agreed_at": row.agreed_at.isoformat()})  # fmt: skip
        else:
            raise InputError(
                f"cannot list {what!r}", "use ders, sites, aggregators, programs or connections"
            )
        _print_rows(rows, what, as_json)


@app.command("add-program")
def add_program(
    name: Annotated[str, typer.Argument()],
    constraint_kind: Annotated[str, typer.Option("--kind", help="feeder, transformer, substation")],
    element: Annotated[str, typer.Option(help="The feeder/transformer/substation name.")],
    db: DbOpt = None,
    capacity_kw: float | None = None,
    description: str = "",
    der: Annotated[list[int] | None, typer.Option("--der", help="DER id to add (repeat).")] = None,
    actor: ActorOpt = "",
) -> None:
    """Create a program of DER behind one constraint; prints its id."""
    from gridflex.derms import registry as reg

    with _session(db) as s:
        prog = reg.add_program(
            s, name=name, constraint_kind=constraint_kind, constraint_element=element,
            capacity_kw=capacity_kw, description=description,
        )  # fmt: skip
        for der_id in der or []:
            reg.add_program_member(s, prog.id, der_id, actor=actor or _default_actor())
        typer.echo(prog.id)


@app.command("add-user")
def add_user(
    name: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Option(help="operator, read_only or aggregator")],
    db: DbOpt = None,
    aggregator: Annotated[int | None, typer.Option(help="Aggregator id (aggregator role).")] = None,
) -> None:
    """Create an API user and print its API key (shown once; only its hash is stored)."""
    from gridflex.derms.auth import create_user, issue_key

    with _session(db) as s:
        user = create_user(s, name=name, role=role, aggregator_id=aggregator)
        typer.echo(issue_key(s, user.id))


@app.command("issue-key")
def issue_key_cmd(name: Annotated[str, typer.Argument()], db: DbOpt = None) -> None:
    """Issue another API key for an existing user and print it."""
    from gridflex.derms.auth import find_user, issue_key

    with _session(db) as s:
        typer.echo(issue_key(s, find_user(s, name).id))


@app.command("revoke-keys")
def revoke_keys_cmd(name: Annotated[str, typer.Argument()], db: DbOpt = None) -> None:
    """Revoke every API key of a user."""
    from gridflex.derms.auth import find_user, revoke_keys

    with _session(db) as s:
        typer.echo(f"revoked {revoke_keys(s, find_user(s, name).id)} key(s) of {name}")


@app.command("openapi")
def openapi(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to a file.")] = None,
) -> None:
    """Print (or write) the OpenAPI document of the operator REST API."""
    from gridflex.derms.api import openapi_json

    text = openapi_json()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


@app.command("api")
def api(
    db: DbOpt = None,
    host: str = "127.0.0.1",
    port: int = 8480,
    certfile: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="TLS certificate (PEM).")
    ] = None,
    keyfile: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="TLS private key (PEM).")
    ] = None,
) -> None:
    """Serve the operator REST API alone (HTTPS with --certfile/--keyfile, else plain HTTP)."""
    # uvicorn, the same server `gridflex serve` runs the 2030.5 endpoints on: one server stack.
    import uvicorn

    from gridflex.derms.api import create_app
    from gridflex.derms.db import make_engine
    from gridflex.errors import InputError

    with _session(db):  # refuse an unmigrated database before binding the port
        pass
    if (certfile is None) != (keyfile is None):
        raise InputError("--certfile and --keyfile go together", "give both, or neither")
    scheme = "https" if certfile is not None else "http"
    typer.echo(f"operator REST API on {scheme}://{host}:{port} (OpenAPI at /docs)")
    uvicorn.run(
        create_app(make_engine(db)),
        host=host,
        port=port,
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
        proxy_headers=False,
        log_level="info",
    )
