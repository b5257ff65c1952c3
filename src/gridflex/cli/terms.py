"""``gridflex terms``: validate connection-terms files and print their JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Connection terms: validate files, print the JSON Schema.", no_args_is_help=True
)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of ConnectionTerms."""
    from gridflex.terms import ConnectionTerms

    typer.echo(json.dumps(ConnectionTerms.json_schema(), indent=2))


@app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
) -> None:
    """Validate a terms file (JSON or YAML) and print a summary."""
    from pydantic import ValidationError

    from gridflex.errors import InputError
    from gridflex.terms import ConnectionTerms

    try:
        terms = ConnectionTerms.from_file(path)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
            for e in exc.errors()
        )
        raise InputError(f"{path}: {problems}", "correct the named fields") from exc
    typer.echo(
        f"{terms.connection_id} v{terms.version}: nameplate {terms.nameplate_kw} kW, "
        f"export limit {terms.export_limit_kw} kW, fallback export "
        f"{terms.effective_fallback_export_kw} kW"
    )
