"""``gridflex meterdata``: EDI 867 interval usage read / write, billing windows, loss factors."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Meter data: EDI 867 interval usage (read / write), billing windows, loss factors.",
    no_args_is_help=True,
)


@app.command("read")
def read(
    path: Annotated[Path, typer.Argument(help="X12 867 interchange file.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    zone: Annotated[
        str | None, typer.Option(help="IANA zone of stamps without a daylight/standard code.")
    ] = None,
    interval_minutes: Annotated[
        int | None, typer.Option(help="Interval length (default: hourly, or finer if seen).")
    ] = None,
    check_totals: Annotated[
        bool, typer.Option(help="Check PTD*SU / MEA totals against the intervals.")
    ] = True,
    plot: Annotated[bool, typer.Option(help="Also write intervals.png.")] = True,
    production_meter: Annotated[
        list[str] | None,
        typer.Option(help="Production meter to sign-check (repeatable); exit 1 on a sign error."),
    ] = None,
) -> None:
    """Read an 867 into DIR/intervals.parquet (+ meters.csv, transactions.csv, summary.csv)."""
    from rich.console import Console
    from rich.table import Table

    from gridflex.meterdata import read_867

    result = read_867(path, zone=zone, interval_minutes=interval_minutes, check_totals=check_totals)
    out.mkdir(parents=True, exist_ok=True)
    result.intervals.to_parquet(out / "intervals.parquet", index=False)
    result.meters.to_csv(out / "meters.csv", index=False)
    result.transactions.to_csv(out / "transactions.csv", index=False)
    summary = result.summary()
    summary.to_csv(out / "summary.csv", index=False)
    console = Console()
    table = Table(title=f"{path.name}: {len(result.transactions)} transaction(s)")
    for col in (
        "service point",
        "meter",
        "role",
        "first start (UTC)",
        "last end (UTC)",
        "intervals",
        "kWh",
    ):
        table.add_column(col, justify="right" if col in ("intervals", "kWh") else "left")
    for row in summary.itertuples(index=False):
        table.add_row(
            str(row.service_point),
            str(row.meter),
            str(row.role),
            f"{row.first_start:%Y-%m-%d %H:%M}",
            f"{row.last_end:%Y-%m-%d %H:%M}",
            str(row.intervals),
            f"{row.kwh:,.3f}",
        )
    console.print(table)
    ignored = result.transactions.get("ignored_loops")
    if ignored is not None and (ignored != "").any():
        console.print(
            f"[yellow]ignored PTD loop types:[/] {', '.join(sorted(set(ignored) - {''}))}"
        )
    if plot and len(result.intervals):
        from gridflex.meterdata.plot import plot_intervals

        plot_intervals(result.intervals, out / "intervals.png", title=path.name)
    console.print(f"wrote {out / 'intervals.parquet'} ({len(result.intervals)} intervals)")
    if production_meter:
        from gridflex.meterdata.sign import check_production_sign

        signs = check_production_sign(result.intervals, production_meter)
        signs.to_csv(out / "sign_check.csv", index=False)
        for row in signs.itertuples(index=False):
            if row.sign_error:
                console.print(f"[bold red]sign error:[/] {row.finding}")
            else:
                console.print(
                    f"production meter {row.meter}: {row.generated_kwh:,.3f} kWh generated, "
                    "reads negative as required"
                )
        if signs["sign_error"].any():
            raise typer.Exit(code=1)


@app.command("write")
def write(
    intervals: Annotated[Path, typer.Argument(help="Intervals table (.parquet or .csv).")],
    out: Annotated[Path, typer.Option("--out", help="X12 file to write.")],
    meters: Annotated[
        Path | None, typer.Option(help="service_point, meter, role (A/S), channel table.")
    ] = None,
    periods: Annotated[
        Path | None, typer.Option(help="service_point, period_start, period_end table.")
    ] = None,
    time_codes: Annotated[
        str, typer.Option(help="'daylight-standard' (CD/CS) or 'elapsed' (elapsed-hour labels).")
    ] = "daylight-standard",
    zone: Annotated[str | None, typer.Option(help="IANA zone of the local stamps.")] = None,
    sender: Annotated[str, typer.Option(help="ISA06 / GS02 sender id.")] = "GRIDFLEX",
    receiver: Annotated[str, typer.Option(help="ISA08 / GS03 receiver id.")] = "RECEIVER",
    report_type: Annotated[str, typer.Option(help="BPT04: DD (PA baseline) or C1 (IL).")] = "DD",
    utility_name: Annotated[str, typer.Option(help="N1*8S utility name.")] = "AMEREN ILLINOIS",
    supplier_name: Annotated[str, typer.Option(help="N1*SJ supplier name.")] = "",
) -> None:
    """Write an 867 interval usage interchange from a tidy intervals table."""
    from datetime import UTC, datetime

    from gridflex.errors import InputError
    from gridflex.meterdata import Edi867Header, Envelope, write_867
    from gridflex.meterdata.edi867 import read_table

    if time_codes not in ("daylight-standard", "elapsed"):
        raise InputError(
            f"--time-codes {time_codes!r} is not known", "use daylight-standard or elapsed"
        )
    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    payload = write_867(
        read_table(intervals),
        read_table(meters) if meters else None,
        read_table(periods) if periods else None,
        header=Edi867Header(
            ldc_name=utility_name,
            esp_name=supplier_name,
            report_type=report_type,
            report_date=now,
        ),
        envelope=Envelope(sender_id=sender, receiver_id=receiver, created=now),
        time_codes=time_codes,  # type: ignore[arg-type]
        zone=zone,
    )
    out.write_bytes(payload)
    typer.echo(f"wrote {out} ({payload.count(b'ST*867*')} transaction(s))")


@app.command("window")
def window(
    scheduled_read: Annotated[str, typer.Argument(help="Scheduled meter reading date, ISO.")],
    calendar: Annotated[str | None, typer.Option(help="Holiday calendar: nerc or us-il.")] = None,
) -> None:
    """Print the billing window (two business days before to one after the read date)."""
    from gridflex.errors import InputError
    from gridflex.meterdata.billing import billing_window

    try:
        day = date.fromisoformat(scheduled_read)
    except ValueError as exc:
        raise InputError(f"{scheduled_read!r} is not a date", "write YYYY-MM-DD") from exc
    w = billing_window(day, calendar)  # type: ignore[arg-type]
    typer.echo(" ".join(d.isoformat() for d in w.days))


@app.command("loss-factor")
def loss_factor(
    system_load_mw: Annotated[list[float], typer.Argument(help="Ameren Illinois load, MW.")],
) -> None:
    """Print secondary / primary / high-voltage distribution loss factors (FAQ 26)."""
    from gridflex.meterdata.losses import loss_factors

    table = loss_factors(system_load_mw)
    table.insert(0, "system_load_mw", system_load_mw)
    typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.6f}"))
