"""The human formats: `full` (with the source line and a caret) and `concise`."""

from __future__ import annotations

import re
import unicodedata

from lintml.findings import Applicability, Finding
from lintml.fixes import is_applicable
from lintml.output import Report

_LINES = re.compile(r"\r\n|\r|\n")


def location(finding: Finding) -> str:
    """`path:line:column`, or `path:cell N:line:column` in a notebook."""
    cell = f"cell {finding.cell}:" if finding.cell is not None else ""
    return f"{finding.filename}:{cell}{finding.line}:{finding.column}"


def _headline(finding: Finding, marker: str = "") -> str:
    return f"{location(finding)}: {finding.code}{marker} {finding.message}"


def source_of(finding: Finding, sources: dict[str, str]) -> str | None:
    """The text the finding's line numbers count in: the file, or its notebook cell."""
    source = sources.get(finding.filename)
    if source is None or finding.cell is None:
        return source
    from lintml.notebooks import cell_source

    return cell_source(source, finding.cell)


def concise(report: Report) -> str:
    return "".join(_headline(finding) + "\n" for finding in report.findings)


def _display_width(text: str) -> int:
    return sum(
        0 if unicodedata.combining(char) else 2 if unicodedata.east_asian_width(char) in "WF" else 1
        for char in text
    )


def _snippet(finding: Finding, source: str | None) -> list[str]:
    if source is None:
        return []
    lines = _LINES.split(source)
    if not 1 <= finding.line <= len(lines):
        return []
    text = lines[finding.line - 1].expandtabs(1)
    gutter = str(finding.line)
    pad = " " * len(gutter)
    start = finding.column - 1
    end = finding.end.column - 1 if finding.end.line == finding.line else len(text.rstrip())
    # columns count characters; a terminal shows wide ones (CJK) in two cells
    indent = _display_width(text[:start])
    width = max(1, _display_width(text[start:end]))
    return [
        f"{pad} |",
        f"{gutter} | {text}",
        f"{pad} | {' ' * indent}{'^' * width}",
        f"{pad} |",
    ]


def full(report: Report) -> str:
    out: list[str] = []
    for finding in report.findings:
        marker = " [*]" if is_applicable(finding, report.unsafe_fixes) else ""
        out.append(_headline(finding, marker))
        out.extend(_snippet(finding, source_of(finding, report.sources)))
        out.append("")
    out.append(summary(report))
    return "\n".join(out) + "\n"


def summary(report: Report) -> str:
    count = len(report.findings)
    parts = []
    if report.fixed:
        parts.append(f"Fixed {report.fixed} finding{'s' if report.fixed != 1 else ''}.")
    if count == 0:
        parts.append("No findings." if report.fixed else "All checks passed!")
        return " ".join(parts)
    fixable = sum(is_applicable(f, report.unsafe_fixes) for f in report.findings)
    hidden = sum(
        f.fix is not None and f.fix.applicability is Applicability.UNSAFE and not report.unsafe_fixes
        for f in report.findings
    )
    line = f"Found {count} finding{'s' if count != 1 else ''}"
    if fixable:
        line += f" ({fixable} fixable with `--fix`)"
    parts.append(line + ".")
    if hidden:
        parts.append(f"{hidden} more can be fixed with `--fix --unsafe-fixes`.")
    return " ".join(parts)
