"""GitHub Actions workflow commands: one `::warning` annotation per finding."""

from __future__ import annotations

from lintml.output import Report


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report) -> str:
    lines = []
    for finding in report.findings:
        level = "error" if finding.code == "LML900" else "warning"
        properties = ",".join(
            [
                f"file={_escape_property(finding.filename)}",
                f"line={finding.line}",
                f"col={finding.column}",
                f"endLine={finding.end.line}",
                f"endColumn={finding.end.column}",
                f"title={_escape_property(finding.code if finding.cell is None else f'{finding.code} (cell {finding.cell})')}",
            ]
        )
        # in a notebook, line and col count within the cell the title and message name
        message = finding.message if finding.cell is None else f"cell {finding.cell}, line {finding.line}: {finding.message}"
        lines.append(f"::{level} {properties}::{_escape_data(message)}\n")
    return "".join(lines)
