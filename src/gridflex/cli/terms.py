"""``gridflex terms``: validate connection-terms files and print their JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from gridflex.terms import ConnectionTerms

app = typer.Typer(
    help="Connection terms: validate files, print the JSON Schema.", no_args_is_help=True
)


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of ConnectionTerms."""
    from gridflex.terms import ConnectionTerms

    typer.echo(json.dumps(ConnectionTerms.json_schema(), indent=2))


def read_terms_file(path: Path) -> ConnectionTerms:
    """Read a terms file (JSON or YAML); every problem becomes an InputError naming the field."""
    import yaml
    from pydantic import ValidationError

    from gridflex.errors import InputError, validation_problems
    from gridflex.terms import ConnectionTerms

    try:
        return ConnectionTerms.from_file(path)
    except ValidationError as exc:
        raise InputError(f"{path}: {validation_problems(exc)}", "correct the named fields") from exc
    except (ValueError, yaml.YAMLError) as exc:  # JSON / YAML syntax
        raise InputError(f"{path}: cannot be read as terms ({exc})", "fix the syntax") from exc


@app.command("validate")
def validate(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
) -> None:
    """Validate a terms file (JSON or YAML) and print a summary."""
    terms = read_terms_file(path)
    typer.echo(
        f"{terms.connection_id} v{terms.version}: nameplate {terms.nameplate_kw} kW, "
        f"export limit {terms.export_limit_kw} kW, fallback export "
        f"{terms.effective_fallback_export_kw} kW"
    )
