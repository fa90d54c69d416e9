"""Turning findings' fixes into new file text: non-overlapping edits, applied until
nothing more is fixable."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lintml.findings import Applicability, Finding, Position

_NEWLINE = re.compile(r"\r\n|\r|\n")
MAX_ROUNDS = 10


def _line_starts(source: str) -> list[int]:
    return [0, *(match.end() for match in _NEWLINE.finditer(source))]


def _offset(starts: list[int], position: Position) -> int:
    return starts[position.line - 1] + position.column - 1


def is_applicable(finding: Finding, unsafe: bool) -> bool:
    if finding.fix is None:
        return False
    return unsafe or finding.fix.applicability is Applicability.SAFE


def apply_edits(source: str, findings: list[Finding], unsafe: bool) -> tuple[str, list[Finding]]:
    """Apply the fixes of `findings` that do not overlap; returns the new text and the
    findings whose fix was applied."""
    starts = _line_starts(source)
    candidates = []
    for finding in findings:
        if not is_applicable(finding, unsafe):
            continue
        spans = sorted((_offset(starts, e.start), _offset(starts, e.end), e.content) for e in finding.fix.edits)
        candidates.append((spans[0][0], spans, finding))
    candidates.sort(key=lambda item: item[0])
    applied: list[Finding] = []
    taken: list[tuple[int, int]] = []
    edits: list[tuple[int, int, str]] = []
    for _, spans, finding in candidates:
        if any(start <= t_end and t_start <= end for start, end, _ in spans for t_start, t_end in taken):
            continue  # overlaps or touches an edit already taken: next round
        taken.extend((start, end) for start, end, _ in spans)
        edits.extend(spans)
        applied.append(finding)
    for start, end, content in sorted(edits, reverse=True):
        source = source[:start] + content + source[end:]
    return source, applied


@dataclass
class FixResult:
    source: str
    fixed: list[Finding]  # the findings whose fixes went in
    remaining: list[Finding]  # what the fixed text still reports


def fix_source(source: str, lint, unsafe: bool) -> FixResult:
    """Fix, re-lint, repeat. `lint(text)` returns the findings for a text."""
    findings = lint(source)
    fixed: list[Finding] = []
    for _ in range(MAX_ROUNDS):
        new_source, applied = apply_edits(source, findings, unsafe)
        if not applied:
            break
        fixed.extend(applied)
        source = new_source
        findings = lint(source)
    return FixResult(source, fixed, findings)


def parses(text: str, filename: str = "<fixed>") -> bool:
    """Whether `text` is valid Python: a fix must never turn a file into one that is not."""
    try:
        compile(text, filename, "exec", flags=0x400, dont_inherit=True)  # PyCF_ONLY_AST
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True
