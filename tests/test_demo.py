"""The quickstart's demo project: `lintml check fixtures/demo` reports exactly the
planted mistakes that today's rules catch, and nothing that is not a planted mistake.

The answer key is fixtures/demo/EXPECTED.md; when a new rule catches another planted
mistake, mark its row there and add it to CAUGHT_TODAY below.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "fixtures" / "demo"

# (file in fixtures/demo, line, code)
CAUGHT_TODAY = {
    ("amp_train.py", 19, "LML407"),
    ("amp_train.py", 48, "LML405"),
    ("amp_train.py", 59, "LML406"),
    ("amp_train.py", 68, "LML403"),
    ("classify.py", 92, "LML203"),
    ("evaluate.py", 40, "LML201"),
    ("evaluate.py", 40, "LML502"),
    ("evaluate.py", 55, "LML101"),
    ("evaluate.py", 55, "LML201"),
    ("evaluate.py", 83, "LML204"),
    ("generate.py", 33, "LML101"),
    ("generate.py", 33, "LML303"),
    ("generate.py", 56, "LML301"),
    ("generate.py", 70, "LML401"),
    ("memory.py", 20, "LML404"),
    ("quality.py", 124, "LML205"),
    ("quality.py", 127, "LML201"),
    ("quality.py", 128, "LML205"),
    ("train.py", 44, "LML103"),
    ("train.py", 65, "LML302"),
    ("train.py", 100, "LML402"),
    ("train.py", 102, "LML501"),
    ("train.py", 104, "LML102"),
    ("train.py", 117, "LML202"),
}

_ROW = re.compile(r"^\|\s*`(?P<file>[\w./]+\.py):(?P<line>\d+)`\s*\|\s*(?P<code>LML\d{3})\s*\|\s*(?P<today>yes|no)\s*\|")
_CONCISE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<code>LML\d{3}) ")


def planted_mistakes() -> dict[tuple[str, int, str], bool]:
    """(file, line, code) -> caught today, from the answer key."""
    rows = {}
    for text in (DEMO / "EXPECTED.md").read_text(encoding="utf-8").splitlines():
        match = _ROW.match(text)
        if match:
            key = (match["file"], int(match["line"]), match["code"])
            assert key not in rows, f"EXPECTED.md lists {key} twice"
            rows[key] = match["today"] == "yes"
    return rows


def lintml(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lintml", "check", "fixtures/demo", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def concise() -> subprocess.CompletedProcess:
    return lintml("--output-format", "concise")


def _demo_relative(filename: str) -> str:
    path = Path(filename)
    path = path if path.is_absolute() else REPO / path
    return path.resolve().relative_to(DEMO.resolve()).as_posix()


def findings_of_concise(stdout: str) -> set[tuple[str, int, str]]:
    found = set()
    for text in stdout.splitlines():
        match = _CONCISE.match(text)
        assert match, f"not a concise finding line: {text!r}"
        found.add((_demo_relative(match["file"]), int(match["line"]), match["code"]))
    return found


def test_answer_key_parses():
    rows = planted_mistakes()
    assert len(rows) >= 12
    # at least one planted mistake in every rule family, caught today or not
    families = {code[:4] for _, _, code in rows}
    assert {"LML1", "LML2", "LML3", "LML4", "LML5"} <= families
    # the key points at real lines
    for file, line, _ in rows:
        lines = (DEMO / file).read_text(encoding="utf-8").splitlines()
        assert 1 <= line <= len(lines) and lines[line - 1].strip(), f"{file}:{line} is not a line of code"


def test_demo_reports_exactly_todays_findings(concise):
    assert concise.returncode == 1, concise.stderr
    assert concise.stderr == ""
    assert findings_of_concise(concise.stdout) == CAUGHT_TODAY


def test_every_finding_is_a_planted_mistake(concise):
    planted = planted_mistakes()
    found = findings_of_concise(concise.stdout)
    not_planted = found - planted.keys()
    assert not not_planted, f"findings that are not planted mistakes (false positives?): {sorted(not_planted)}"
    marked_yes = {key for key, today in planted.items() if today}
    assert found == marked_yes, (
        "EXPECTED.md's 'Caught today' column is out of date: "
        f"reported but marked no: {sorted(found - marked_yes)}; marked yes but not reported: {sorted(marked_yes - found)}"
    )


def test_json_output_has_the_same_findings(concise):
    result = lintml("--output-format", "json")
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)
    assert isinstance(findings, list)
    found = {(_demo_relative(f["filename"]), f["location"]["row"], f["code"]) for f in findings}
    assert found == findings_of_concise(concise.stdout) == CAUGHT_TODAY
    for finding in findings:
        assert finding["url"].endswith(f"/rules/{finding['code']}.md")
        assert finding["message"]
