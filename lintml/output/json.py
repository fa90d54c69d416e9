"""JSON in the shape of Ruff's `--output-format json`, so tools that read Ruff's read ours."""

from __future__ import annotations

import json
import os

from lintml.findings import Finding, Position
from lintml.output import Report
from lintml.registry import RULES


def _location(position: Position) -> dict:
    return {"column": position.column, "row": position.line}


def finding_dict(finding: Finding) -> dict:
    fix = None
    if finding.fix is not None:
        fix = {
            "applicability": finding.fix.applicability.value,
            "edits": [
                {"content": edit.content, "end_location": _location(edit.end), "location": _location(edit.start)}
                for edit in finding.fix.edits
            ],
            "message": finding.fix.message,
        }
    rule = RULES.get(finding.code)
    return {
        "cell": finding.cell,  # in a notebook: 1-based over all cells; locations are within it
        "code": finding.code,
        "end_location": _location(finding.end),
        "filename": os.path.abspath(finding.filename) if not finding.filename.startswith("<") else finding.filename,
        "fix": fix,
        "location": _location(finding.start),
        "message": finding.message,
        "noqa_row": finding.noqa_line or finding.line,
        "url": rule.url if rule else None,
    }


def render_json(report: Report) -> str:
    return json.dumps([finding_dict(f) for f in report.findings], indent=2, ensure_ascii=False) + "\n"
