"""The README's "## CI" recipes run what the tests check.

Every `lintml check ...` command in the section's code blocks must parse with lintml's
own parser; the SARIF the GitHub workflow uploads must come from exactly the command
that tests/test_output.py validates against the SARIF schema, and the file each command
writes must be the one its upload step reads. While README.md has no "## CI" section,
these tests skip; `LINTML_CI_README=path/to/draft.md` checks a draft instead.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from helpers import SAMPLE, make_project, run_lintml

from lintml.cli import UsageError, build_parser

REPO = Path(__file__).resolve().parent.parent
README = Path(os.environ.get("LINTML_CI_README") or REPO / "README.md")
SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"

# what test_output.py's test_sarif_from_a_subprocess_is_valid runs
SARIF_ARGV = ("check", "--output-format", "sarif")

_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
_COMMAND = re.compile(r"\blintml check\b.*$")
_OPERATORS = ("||", "&&", "|", ";")


@dataclass(frozen=True)
class Command:
    line: str  # as written
    argv: tuple[str, ...]  # lintml's arguments, without the shell around them
    stdout: str | None  # the file `>` sends the output to
    or_true: bool  # `|| true`


def ci_section(markdown: str) -> str | None:
    """The text of the `## CI` section (its subsections included), or None."""
    match = re.search(r"^## CI[ \t]*\n(?P<body>.*?)(?=^## |\Z)", markdown, re.MULTILINE | re.DOTALL)
    return match["body"] if match else None


def code_blocks(section: str) -> list[tuple[str, str]]:
    return [(match["lang"], match["body"]) for match in _FENCE.finditer(section)]


def parse_command(line: str) -> Command:
    tokens = shlex.split(line)
    assert tokens[:2] == ["lintml", "check"], line
    argv, stdout, rest = [], None, []
    tail = tokens[1:]
    for index, token in enumerate(tail):
        if token in _OPERATORS:
            rest = tail[index:]
            break
        if token == ">":
            stdout = tail[index + 1]
            rest = tail[index + 2:]
            break
        if token.startswith(">"):
            stdout = token[1:]
            rest = tail[index + 1:]
            break
        argv.append(token)
    assert rest in ([], ["||", "true"]), f"unexpected shell after the command: {line}"
    return Command(line, tuple(argv), stdout, rest == ["||", "true"])


def lintml_commands(section: str) -> list[Command]:
    """Each `lintml check ...` in the code blocks (shell lines or YAML `run:`/`- ` items)."""
    commands = []
    for _, body in code_blocks(section):
        for text in body.splitlines():
            if text.lstrip().startswith("#"):
                continue
            match = _COMMAND.search(text)
            if match:
                commands.append(parse_command(match.group(0)))
    return commands


def parse_args(command: Command):
    try:
        return build_parser().parse_args(list(command.argv))
    except (UsageError, SystemExit) as error:
        pytest.fail(f"`{command.line}` does not parse: {error}")


def yaml_documents(section: str) -> list:
    yaml = pytest.importorskip("yaml")
    return [yaml.safe_load(body) for lang, body in code_blocks(section) if lang in ("yaml", "yml")]


def validate_sarif(document):
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)
    errors = sorted(validator(schema).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.fixture(scope="module")
def section():
    text = ci_section(README.read_text(encoding="utf-8")) if README.is_file() else None
    if text is None:
        pytest.skip(f"{README.name} has no `## CI` section yet")
    return text


@pytest.fixture(autouse=True)
def _not_in_gitlab_ci(monkeypatch):
    monkeypatch.delenv("CI_PROJECT_DIR", raising=False)


# -- the extraction itself, so it is tested before the section exists ---------------------

EXAMPLE = """\
# Title

## CI

```yaml
steps:
  - run: lintml check --output-format sarif > lintml.sarif || true
  # lintml check --not-a-real-flag (a comment)
```

```sh
lintml check --select LML2 src tests
```

## Next
```sh
lintml check --elsewhere
```
"""


def test_extraction():
    section = ci_section(EXAMPLE)
    assert section is not None and "## Next" not in section
    assert ci_section("# Title\n\n## Quickstart\n") is None
    assert lintml_commands(section) == [
        Command("lintml check --output-format sarif > lintml.sarif || true", SARIF_ARGV, "lintml.sarif", True),
        Command("lintml check --select LML2 src tests", ("check", "--select", "LML2", "src", "tests"), None, False),
    ]
    assert parse_command("lintml check --output-format=gitlab >report.json").stdout == "report.json"
    with pytest.raises(AssertionError, match="unexpected shell"):
        parse_command("lintml check | tee out.txt")
    bad = parse_command("lintml check --output-format xml")
    with pytest.raises(pytest.fail.Exception, match="does not parse"):
        parse_args(bad)


# -- the README ------------------------------------------------------------------------------


def test_every_command_parses(section):
    commands = lintml_commands(section)
    assert commands, "the CI section has no `lintml check` command"
    for command in commands:
        assert parse_args(command).command == "check"


def test_the_uploaded_sarif_is_the_validated_one(section, tmp_path):
    sarif_commands = [c for c in lintml_commands(section) if parse_args(c).output_format == "sarif"]
    assert sarif_commands, "no SARIF command in the CI section"
    uploads = [
        step
        for document in yaml_documents(section)
        for job in (document or {}).get("jobs", {}).values()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith("github/codeql-action/upload-sarif@")
    ]
    assert uploads, "no upload-sarif step in the CI section"
    for command in sarif_commands:
        assert command.argv == SARIF_ARGV, f"`{command.line}` is not the command test_output.py validates"
        assert command.stdout and command.stdout in {step["with"]["sarif_file"] for step in uploads}
    # and what it writes is valid SARIF 2.1.0, with findings and without
    project = make_project(tmp_path / "proj", {"src/train.py": SAMPLE, "src/clean.py": "x = 1\n"})
    for args in (command.argv, (*command.argv, "src/clean.py")):
        result = run_lintml(*args, cwd=project)
        assert result.returncode in (0, 1), result.stderr
        validate_sarif(json.loads(result.stdout))


def test_the_sarif_job_may_upload(section):
    jobs = [
        job
        for document in yaml_documents(section)
        for job in (document or {}).get("jobs", {}).values()
        if any(str(step.get("uses", "")).startswith("github/codeql-action/upload-sarif@") for step in job.get("steps", []))
    ]
    assert jobs
    for job in jobs:
        assert job.get("permissions", {}).get("security-events") == "write"


def test_the_annotations_fail_the_build(section):
    github = [c for c in lintml_commands(section) if parse_args(c).output_format == "github"]
    assert github, "no `--output-format github` command in the CI section"
    for command in github:
        assert not command.or_true and not parse_args(command).exit_zero, command.line
        assert command.stdout is None, "workflow commands must go to the job's log"


def test_the_gitlab_report_is_the_artifact(section, tmp_path):
    gitlab = [c for c in lintml_commands(section) if parse_args(c).output_format == "gitlab"]
    assert gitlab, "no `--output-format gitlab` command in the CI section"
    reports = {
        job["artifacts"]["reports"]["codequality"]
        for document in yaml_documents(section)
        if isinstance(document, dict)
        for job in document.values()
        if isinstance(job, dict) and "codequality" in job.get("artifacts", {}).get("reports", {})
    }
    assert reports, "no `artifacts: reports: codequality:` in the CI section"
    project = make_project(tmp_path / "proj", {"src/train.py": SAMPLE})
    for command in gitlab:
        assert command.stdout in reports, command.line
        result = run_lintml(*command.argv, cwd=project)
        assert result.returncode == 1, result.stderr
        issues = json.loads(result.stdout)
        assert len(issues) == 5 and {i["location"]["path"] for i in issues} == {"src/train.py"}
