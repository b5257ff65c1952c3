"""Entry point of the ``gridflex`` command. Each stage registers its sub-commands here."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from gridflex import __version__
from gridflex.cli import check as check_cli
from gridflex.cli import meterdata as meterdata_cli
from gridflex.cli import registry as registry_cli
from gridflex.cli import serve as serve_cli
from gridflex.cli import simulate as simulate_cli
from gridflex.cli import terms as terms_cli
from gridflex.errors import GridflexError, InputError

app = typer.Typer(
    name="gridflex",
    help="Flexible interconnection and DER orchestration for distribution grids.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(terms_cli.app, name="terms")
app.command("simulate")(simulate_cli.simulate)
app.command("simulate-many")(simulate_cli.simulate_many)
app.add_typer(registry_cli.app, name="registry")
app.add_typer(registry_cli.db_app, name="db")
app.add_typer(meterdata_cli.app, name="meterdata")
app.command("check")(check_cli.check)
app.command("serve")(serve_cli.serve)

# Exit codes shared by every sub-command.
EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_FAILED = 3


@app.command()
def version() -> None:
    """Print the gridflex version."""
    typer.echo(__version__)


def main() -> None:
    """Run the command; turn gridflex errors into a one-line message and an exit code."""
    # soft_wrap: an error message is one line a user can grep, whatever the terminal width
    err = Console(stderr=True, soft_wrap=True)
    try:
        app()
    except InputError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(EXIT_BAD_INPUT)
    except GridflexError as exc:
        err.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}", highlight=False)
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    main()
