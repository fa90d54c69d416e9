"""The README says what the code does: its rule table is generated, its Quickstart is
the command CI runs, its demo output is real, and every flag it names exists.

After a rule or a rule page changes, refresh the table with
`LINTML_UPDATE_README=1 python -m pytest tests/test_readme.py`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from lintml.cli import build_parser, rules_markdown

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
CI_RUN = REPO / ".ci" / "run"

TABLE_START = "<!-- rules-table:start -->"
TABLE_END = "<!-- rules-table:end -->"

DEMO_COMMAND = "python -m pip install . && lintml check fixtures/demo"
# flags the README uses with a command other than `lintml check`
OTHER_COMMANDS_FLAGS = {"--format": "rules", "--version": None, "--help": None, "--probes": "verify"}
# flags of other programs the README shows: the pytest plugin's, and the example script's
PYTEST_PLUGIN = Path(__file__).resolve().parent.parent / "lintml" / "runtime" / "pytest_plugin.py"
VERIFY_EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "runtime" / "LML202" / "bug.py"
FOREIGN_FLAGS = {
    "--lintml-runtime": PYTEST_PLUGIN,
    "--lintml-runtime-fail": PYTEST_PLUGIN,
    "--device": VERIFY_EXAMPLE,
}
# flags of editors' own commands, shown in the Editors section
EDITOR_FLAGS = {"--health"}  # `hx --health python`


def readme() -> str:
    return README.read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README has no `## {heading}` section"
    return match.group(1)


def code_blocks(text: str, languages: tuple[str, ...]) -> list[str]:
    return [
        match.group(2)
        for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)
        if match.group(1) in languages
    ]


def quickstart_commands() -> list[str]:
    blocks = code_blocks(section(readme(), "Quickstart"), ("sh", "bash", "shell", "console"))
    return [
        line.strip().removeprefix("$ ")
        for block in blocks
        for line in block.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def test_rules_table_is_generated():
    text = readme()
    assert text.count(TABLE_START) == 1 and text.count(TABLE_END) == 1
    before, rest = text.split(TABLE_START)
    table, after = rest.split(TABLE_END)
    expected = rules_markdown()
    if table.strip() != expected.strip() and os.environ.get("LINTML_UPDATE_README") == "1":
        README.write_text(f"{before}{TABLE_START}\n{expected}\n{TABLE_END}{after}", encoding="utf-8")
        table = expected
    assert table.strip() == expected.strip(), (
        "the README's rule table differs from `lintml rules --format markdown`; "
        "regenerate it with `LINTML_UPDATE_README=1 python -m pytest tests/test_readme.py`"
    )


def test_quickstart_is_two_commands_and_the_second_is_what_ci_runs():
    commands = quickstart_commands()
    assert len(commands) == 2, commands
    assert commands[0] == DEMO_COMMAND
    ci_lines = [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()]
    assert commands[1] in ci_lines, f"`{commands[1]}` is not a line of .ci/run"


def test_quickstart_output_is_what_the_demo_prints():
    """The README may abbreviate the output, but what it shows is real."""
    blocks = code_blocks(section(readme(), "Quickstart"), ("text",))
    assert blocks, "the Quickstart shows no output"
    shown = blocks[0].splitlines()
    result = subprocess.run(
        [sys.executable, "-m", "lintml", "check", "fixtures/demo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    real = result.stdout.splitlines()
    headline = re.compile(r"^fixtures/demo/\S+:\d+:\d+: LML\d{3}")
    shown_findings = [line for line in shown if headline.match(line)]
    assert shown_findings, "the Quickstart output shows no finding"
    for line in shown_findings:
        assert line in real, f"the README shows a finding the demo does not print: {line}"
    assert shown[-1] == real[-1], "the summary line differs from the demo's"


def _flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", text))


def _help(command: str | None) -> str:
    parser = build_parser()
    if command is None:
        return parser.format_help()
    subparsers = next(action for action in parser._actions if action.dest == "command")
    return subparsers.choices[command].format_help()


def test_every_flag_in_the_readme_exists():
    flags = _flags(readme())
    assert "--fix" in flags and "--output-format" in flags
    check_help = _flags(_help("check"))
    for flag in sorted(flags):
        if flag in EDITOR_FLAGS:
            assert f"hx {flag}" in readme()
        elif flag in FOREIGN_FLAGS:
            assert f'"{flag}"' in FOREIGN_FLAGS[flag].read_text(encoding="utf-8"), f"{flag} is not defined there"
        elif flag in OTHER_COMMANDS_FLAGS:
            command = OTHER_COMMANDS_FLAGS[flag]
            assert flag in _flags(_help(command)) | {"--help"}, f"{flag} is not an option of `lintml {command}`"
        else:
            assert flag in check_help, f"the README mentions {flag}, which `lintml check --help` does not list"
