"""Rendering findings for people (full, concise) and for tools (json, sarif, github, gitlab)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lintml.findings import Finding


@dataclass
class Report:
    """Everything a format may need besides the findings themselves."""

    findings: list[Finding]
    sources: dict[str, str] = field(default_factory=dict)  # filename -> text, for files with findings
    enabled: frozenset[str] = frozenset()
    root: Path = field(default_factory=Path.cwd)  # SARIF paths are relative to it
    unsafe_fixes: bool = False
    fixed: int = 0


def render(fmt: str, report: Report) -> str:
    if fmt == "full":
        from lintml.output.text import full

        return full(report)
    if fmt == "concise":
        from lintml.output.text import concise

        return concise(report)
    if fmt == "json":
        from lintml.output.json import render_json

        return render_json(report)
    if fmt == "sarif":
        from lintml.output.sarif import render_sarif

        return render_sarif(report)
    if fmt == "github":
        from lintml.output.github import render_github

        return render_github(report)
    if fmt == "gitlab":
        from lintml.output.gitlab import render_gitlab

        return render_gitlab(report)
    raise ValueError(f"unknown output format {fmt!r}")
