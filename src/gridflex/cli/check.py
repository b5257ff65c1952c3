"""``gridflex check``: requirement checks of an application, each finding citing its rule."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


class OutputFormat(StrEnum):
    """Output formats of ``gridflex check``."""

    text = "text"
    json = "json"
    html = "html"


EXAMPLES = {"campus": "example.yaml", "level1": "example_level1.yaml"}


def check(
    application: Annotated[
        Path | None,
        typer.Argument(
            help="Application file (YAML or JSON). Omitted: the embedded example application.",
            show_default=False,
        ),
    ] = None,
    ruleset: Annotated[
        list[str] | None,
        typer.Option(
            "--ruleset",
            "-r",
            help="Rule set name or YAML path (repeatable). Default: every built-in rule set.",
        ),
    ] = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.text,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the report to this file instead of stdout."),
    ] = None,
    example: Annotated[
        str,
        typer.Option(help="Embedded example to check when no file is given: campus or level1."),
    ] = "campus",
    show_example: Annotated[
        bool, typer.Option("--show-example", help="Print the example application YAML and exit.")
    ] = False,
    hide_not_applicable: Annotated[
        bool, typer.Option("--hide-na", help="Text output: leave out not-applicable rules.")
    ] = False,
    list_rulesets: Annotated[
        bool, typer.Option("--list-rulesets", help="List the built-in rule sets and exit.")
    ] = False,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the application JSON Schema and exit.")
    ] = False,
) -> None:
    """Check an application against rule sets: every rule evaluated, with value, limit and source.

    Exit code 0 when nothing fails, 1 when a rule fails, 2 for bad input.
    """
    import io
    from importlib import resources

    import yaml
    from rich.console import Console

    from gridflex.application import parse_application, read_application
    from gridflex.errors import InputError
    from gridflex.rules import builtin_names, check, load_ruleset
    from gridflex.rules.render import print_text, to_html, to_json

    if schema:
        import json

        from gridflex.application import application_json_schema

        typer.echo(json.dumps(application_json_schema(), indent=2, sort_keys=True))
        return
    if list_rulesets:
        for name in builtin_names():
            rs = load_ruleset(name)
            typer.echo(f"{name:26s} {rs.version:14s} {len(rs.rules):3d} rules  {rs.title}")
        return
    if application is None or show_example:
        if example not in EXAMPLES:
            raise InputError(f"unknown example {example!r}", f"use one of {', '.join(EXAMPLES)}")
        res = resources.files("gridflex.application") / "data" / EXAMPLES[example]
        text = res.read_text(encoding="utf-8")
        if show_example:
            typer.echo(text, nl=False)
            return
        app = parse_application(yaml.safe_load(text), f"embedded example {example!r}")
    else:
        app = read_application(application)
    report = check(app, ruleset or None)
    if fmt is OutputFormat.text and output is None:
        print_text(report, Console(), show_not_applicable=not hide_not_applicable)
    else:
        if fmt is OutputFormat.text:
            console = Console(record=True, width=160, file=io.StringIO())
            print_text(report, console, show_not_applicable=not hide_not_applicable)
            body = console.export_text()
        else:
            body = to_json(report) if fmt is OutputFormat.json else to_html(report)
        if output is None:
            typer.echo(body)
        else:
            output.write_text(body if body.endswith("\n") else body + "\n", encoding="utf-8")
            Console(stderr=True).print(f"wrote {output}")
    if not report.ok:
        raise typer.Exit(code=1)
