"""Present a :class:`Report`: a rich table for terminals, a standalone HTML page, JSON."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING

from gridflex.rules.findings import Finding, Report, Status

if TYPE_CHECKING:
    from rich.console import Console

_STYLE = {
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.NEEDS_REVIEW: "yellow",
    Status.NOT_APPLICABLE: "dim",
}
_LABEL = {
    Status.PASS: "pass",
    Status.FAIL: "FAIL",
    Status.NEEDS_REVIEW: "review",
    Status.NOT_APPLICABLE: "n/a",
}


def _fmt(x: float | str | None, unit: str = "") -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        text = f"{round(x, 3):g}" if abs(x) < 1e6 else f"{x:g}"
    else:
        text = str(x)
    return f"{text} {unit}".strip() if unit and unit not in {"ratio"} else text


def to_json(report: Report) -> str:
    """``{"findings": [{"rule", "status", "value", "limit", "source", "message", ...}], ...}``."""
    return json.dumps(report.to_dict(), indent=2)


def print_text(report: Report, console: Console, *, show_not_applicable: bool = True) -> None:
    """Print the findings as a rich table, then the options offered and a summary line."""
    from rich.table import Table

    table = Table(
        title=f"gridflex check: {report.application_id}",
        show_lines=False,
        expand=True,
        header_style="bold",
    )
    table.add_column("status", no_wrap=True)
    table.add_column("rule", overflow="fold", ratio=3)
    table.add_column("value", overflow="fold", ratio=1)
    table.add_column("limit", overflow="fold", ratio=1)
    table.add_column("finding / source", overflow="fold", ratio=6)
    for f in report.findings:
        if f.status is Status.NOT_APPLICABLE and not show_not_applicable:
            continue
        style = _STYLE[f.status]
        table.add_row(
            f"[{style}]{_LABEL[f.status]}[/]",
            f.rule,
            _fmt(f.value, f.unit),
            _fmt(f.limit, f.unit),
            f"{html_free(f.message)}\n[dim]{html_free(f.source)}[/]",
        )
    console.print(table)
    shown: set[tuple[object, ...]] = set()
    for f in report.findings:
        if f.options and f.options not in shown:
            shown.add(f.options)
            console.print(f"\n[bold]Options for {f.rule}:[/]")
            for o in f.options:
                console.print(f"  [bold]- {o.title}[/]: {html_free(o.detail)}")
    c = report.counts()
    console.print(
        f"\n{len(report.findings)} findings: [green]{c['pass']} pass[/], "
        f"[bold red]{c['fail']} fail[/], [yellow]{c['needs_review']} needs review[/], "
        f"[dim]{c['not_applicable']} not applicable[/]  (rule sets: {', '.join(report.rulesets)})"
    )


def html_free(text: str) -> str:
    """Escape rich markup in free text (brackets would be read as styles)."""
    from rich.markup import escape

    return escape(text)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4;position:sticky;top:0}.src{color:#666;font-size:.8rem}
.pass{color:#137333}.fail{color:#b3261e;font-weight:bold}.needs_review{color:#9a6700}
.not_applicable{color:#888}.summary span{margin-right:1rem}.opt{margin:.2rem 0 .2rem 1rem}
tr.fail td{background:#fff4f3}tr.needs_review td{background:#fffbea}
"""


def _row(f: Finding) -> str:
    e = html.escape
    opts = "".join(f'<div class="opt"><b>{e(o.title)}</b>: {e(o.detail)}</div>' for o in f.options)
    return (
        f'<tr class="{f.status.value}"><td class="{f.status.value}">{e(f.status.value)}</td>'
        f"<td><code>{e(f.rule)}</code></td><td>{e(_fmt(f.value, f.unit))}</td>"
        f"<td>{e(_fmt(f.limit, f.unit))}</td><td>{e(f.message)}{opts}"
        f'<div class="src">{e(f.source)}</div></td></tr>'
    )


def to_html(report: Report) -> str:
    """A standalone HTML page (inline CSS, no scripts): one table per rule set."""
    e = html.escape
    c = report.counts()
    summary = "".join(f'<span class="{k}">{v} {k.replace("_", " ")}</span>' for k, v in c.items())
    sections = []
    for name in report.rulesets:
        rows = [f for f in report.findings if f.ruleset == name]
        counts = {s.value: sum(f.status is s for f in rows) for s in Status}
        line = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if v)
        body = "\n".join(_row(f) for f in rows)
        sections.append(
            f"<h2>{e(name)}</h2><p>{e(line)}</p>"
            "<table><thead><tr><th>status</th><th>rule</th><th>value</th><th>limit</th>"
            f"<th>finding / source</th></tr></thead><tbody>\n{body}\n</tbody></table>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>gridflex check: {e(report.application_id)}</title><style>{_CSS}</style>"
        f"</head><body><h1>gridflex check: {e(report.application_id)}</h1>"
        f"<p>Rule sets: {e(', '.join(report.rulesets))}</p>"
        f'<p class="summary">{summary}</p>' + "".join(sections) + "</body></html>\n"
    )
