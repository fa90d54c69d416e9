"""SARIF 2.1.0 for GitHub code scanning and other CI tools."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from urllib.parse import quote

from lintml import __version__
from lintml.output import Report
from lintml.output.text import source_of
from lintml.registry import RULES, page

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LINES = re.compile(r"\r\n|\r|\n")


def _level(code: str) -> str:
    return "error" if code == "LML900" else "warning"


def rule_descriptor(code: str) -> dict:
    rule = RULES[code]
    rule_page = page(code)
    full_description = rule.summary
    help_markdown = rule.summary
    short = rule.summary
    if rule_page is not None:
        short = rule_page.short_description or rule.summary
        full_description = " ".join(rule_page.sections.get("What it does", rule.summary).split())
        help_markdown = rule_page.text.split("\n---\n", 1)[-1].strip() if rule_page.text.startswith("---") else rule_page.text
    return {
        "id": code,
        "name": rule.name,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full_description},
        "help": {"text": help_markdown, "markdown": help_markdown},
        "helpUri": rule.url,
        "defaultConfiguration": {"level": _level(code), "enabled": rule.default_enabled},
        "properties": {"tags": [rule.family]},
    }


def _artifact_location(filename: str, root: Path) -> dict:
    """Relative to the project root (what code scanning needs), absolute outside it."""
    path = Path(filename)
    absolute = (path if path.is_absolute() else Path.cwd() / path).resolve()
    try:
        relative = absolute.relative_to(root.resolve()).as_posix()
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": quote(relative), "uriBaseId": "%SRCROOT%"}


def line_hashes(report: Report) -> list[str]:
    """primaryLocationLineHash: a hash of the rule and the line's text (not its number),
    with the occurrence count, so findings keep their identity when code moves."""
    seen: dict[tuple[str, str], int] = {}
    hashes = []
    for finding in report.findings:
        lines = _LINES.split(source_of(finding, report.sources) or "")
        text = lines[finding.line - 1] if 0 < finding.line <= len(lines) else ""
        digest = hashlib.sha256(f"{finding.code}\0{''.join(text.split())}".encode()).hexdigest()[:16]
        key = (finding.filename, digest)  # in a notebook, occurrences count over all cells
        seen[key] = seen.get(key, 0) + 1
        hashes.append(f"{digest}:{seen[key]}")
    return hashes


def render_sarif(report: Report) -> str:
    codes = sorted(report.enabled | {f.code for f in report.findings})
    index = {code: i for i, code in enumerate(codes)}
    results = []
    for finding, fingerprint in zip(report.findings, line_hashes(report)):
        location: dict = {
            "physicalLocation": {
                "artifactLocation": _artifact_location(finding.filename, report.root),
                "region": {
                    "startLine": finding.line,
                    "startColumn": finding.column,
                    "endLine": finding.end.line,
                    "endColumn": max(finding.end.column, finding.column),
                },
            }
        }
        result: dict = {
            "ruleId": finding.code,
            "ruleIndex": index[finding.code],
            "level": _level(finding.code),
            "message": {"text": finding.message},
            "locations": [location],
            "partialFingerprints": {"primaryLocationLineHash": fingerprint},
        }
        if finding.cell is not None:
            # a notebook: the region's lines count within this cell
            name = f"cell {finding.cell}"
            location["logicalLocations"] = [
                {"name": name, "fullyQualifiedName": f"{finding.filename}:{name}", "kind": "module"}
            ]
            result["properties"] = {"cell": finding.cell}
        results.append(result)
    document = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "lintml",
                        "version": __version__,
                        "informationUri": "https://github.com/lintml/lintml",
                        "rules": [rule_descriptor(code) for code in codes],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": report.root.resolve().as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
