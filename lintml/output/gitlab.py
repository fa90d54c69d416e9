"""GitLab Code Quality (a subset of the Code Climate issue format), for the merge request
widget: `artifacts: reports: codequality: gl-code-quality-report.json`.

One issue per finding, in a JSON array:

- `description`: the code and the message, `LML204 `model.eval` is not called, ...`;
- `check_name`: the code;
- `fingerprint`: a SHA-256 hex of the file's path and the SARIF line hash (a hash of the
  code and the finding's source line with its whitespace removed, plus a counter of the
  identical (file, code, line text) triples before it), so an issue keeps its identity
  when lines are added or removed elsewhere in the file, and two identical findings in
  one file get two fingerprints;
- `severity`: `blocker` for LML900 (the file does not parse, so nothing else in it was
  checked), `info` for LML407 (informational), `minor` for LML901 (an unused
  suppression comment), `major` for every other rule;
- `location`: the path, relative to the repository (`$CI_PROJECT_DIR` when set, as it is in
  GitLab CI jobs, else the folder of the `pyproject.toml` in use, as for SARIF) with `/`
  separators, and `positions.begin`/`positions.end` (`line`, `column`, 1-based).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from lintml.output import Report
from lintml.output.sarif import line_hashes
from lintml.registry import SYNTAX_ERROR, UNUSED_SUPPRESSION

SEVERITIES = ("info", "minor", "major", "critical", "blocker")  # GitLab's scale, lowest first

_SEVERITY = {SYNTAX_ERROR: "blocker", UNUSED_SUPPRESSION: "minor", "LML407": "info"}


def severity(code: str) -> str:
    return _SEVERITY.get(code, "major")


def _base(report: Report) -> Path:
    project_dir = os.environ.get("CI_PROJECT_DIR")
    return Path(project_dir) if project_dir else report.root


def relative_path(filename: str, base: Path) -> str:
    """`filename` relative to `base` with `/` separators; absolute (posix) outside it, and
    a pseudo-name such as `<stdin>` as it is."""
    if filename.startswith("<") and filename.endswith(">"):
        return filename
    path = Path(filename)
    absolute = (path if path.is_absolute() else Path.cwd() / path).resolve()
    try:
        return absolute.relative_to(base.resolve()).as_posix()
    except ValueError:
        return absolute.as_posix()


def _end_column(finding) -> int:
    # an empty range (a syntax error's point) ends where it begins
    if finding.end.line == finding.line:
        return max(finding.end.column, finding.column)
    return finding.end.column


def render_gitlab(report: Report) -> str:
    base = _base(report)
    issues = []
    for finding, line_hash in zip(report.findings, line_hashes(report)):
        path = relative_path(finding.filename, base)
        issues.append(
            {
                # a notebook's positions count within a cell, which GitLab cannot show:
                # the description names the cell
                "description": (
                    f"{finding.code} {finding.message}"
                    if finding.cell is None
                    else f"{finding.code} (cell {finding.cell}) {finding.message}"
                ),
                "check_name": finding.code,
                "fingerprint": hashlib.sha256(f"{path}\0{line_hash}".encode()).hexdigest(),
                "severity": severity(finding.code),
                "location": {
                    "path": path,
                    "positions": {
                        "begin": {"line": finding.line, "column": finding.column},
                        "end": {"line": finding.end.line, "column": _end_column(finding)},
                    },
                },
            }
        )
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"
