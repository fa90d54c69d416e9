"""Golden projects: every folder of `fixtures/projects/` is a small end-user repository
(its own `pyproject.toml`, several files that import each other), and checking it with
the command line reports exactly the lines its `.py` files mark.

The markers are those of tests/test_fixtures.py: a reported line ends with
`# error: LML201` (or `# error: LML101, LML201`); a file without markers must report
nothing. Every rule is selected.

These projects state the target of RULES.md's amendments 14-24 (the project, not the
file, is the unit; values have kinds): many of their findings need facts from other
files of the project, so some of these tests fail until the analysis follows them.

Each project is copied to a temporary folder first and checked there, as a user would
check their own repository: in place it would sit below lintml's own pyproject.toml,
whose `[tool.lintml]` table excludes `fixtures`, and the result would depend on how that
table and the project's own pyproject.toml are combined.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECTS_DIR = ROOT / "fixtures" / "projects"
PROJECTS = sorted(path for path in PROJECTS_DIR.iterdir() if path.is_dir())
MARKER = re.compile(r"#\s*error:\s*(LML\d+(?:\s*,\s*LML\d+)*)")

# files checked on their own (`lintml check <file>` from the project folder): the rest of
# the project still supplies facts, but only this file's findings are reported
SINGLE_FILES = [
    ("vision_repo", "train.py"),
    ("vision_repo", "predict.py"),
    ("vision_repo", "probe_tiny.py"),
    ("trainer_repo", "utils/trainer.py"),
    ("trainer_repo", "main.py"),
    ("diffusers_script", "train_text_to_image.py"),
    ("src_package", "src/gan/train.py"),
    ("src_package", "scripts/sample.py"),
    ("nlp_finetune", "predict.py"),
    ("nlp_finetune", "textcls/engine.py"),
]

Expected = Counter  # of (relative file, line, code)


def marked(project: Path, files: list[Path] | None = None) -> Expected:
    expected: Expected = Counter()
    for path in files if files is not None else sorted(project.rglob("*.py")):
        text = path.read_bytes().decode("utf-8")
        name = path.relative_to(project).as_posix()
        for number, line in enumerate(text.splitlines(), start=1):
            for match in MARKER.finditer(line):
                expected.update((name, number, code.strip()) for code in match.group(1).split(","))
    return expected


def check(project: Path, *paths: str) -> Expected:
    """Run the real command line from the project folder; the (file, line, code) it reports."""
    command = [
        sys.executable, "-m", "lintml", "check",
        "--select", "LML", "--output-format", "json", "--no-cache",
        *(paths or (".",)),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), result.stdout + result.stderr
    findings = json.loads(result.stdout)
    reported: Expected = Counter()
    for finding in findings:
        path = Path(finding["filename"])
        if not path.is_absolute():
            path = project / path
        name = path.resolve().relative_to(project.resolve()).as_posix()
        reported[(name, finding["location"]["row"], finding["code"])] += 1
    assert result.returncode == (1 if findings else 0), result.stdout + result.stderr
    return reported


def describe(expected: Expected, reported: Expected) -> str:
    missing = sorted((expected - reported).elements())
    unexpected = sorted((reported - expected).elements())
    lines = ["missing (marked, not reported):"]
    lines += [f"  {item}" for item in missing] or ["  none"]
    lines += ["unexpected (reported, not marked):"]
    lines += [f"  {item}" for item in unexpected] or ["  none"]
    return "\n".join(lines)


@pytest.fixture
def copy_of(tmp_path):
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(PROJECTS_DIR / name, target, ignore=shutil.ignore_patterns("__pycache__", ".lintml_cache"))
        return target

    return copy


def test_every_project_is_its_own_root():
    assert {project.name for project in PROJECTS} >= {"vision_repo", "trainer_repo", "diffusers_script", "src_package"}
    for project in PROJECTS:
        pyproject = (project / "pyproject.toml").read_text(encoding="utf-8")
        assert pyproject.startswith("[project]\nname = "), project.name
        assert "lintml" not in pyproject, project.name
        assert len(list(project.rglob("*.py"))) >= 3, project.name
        # a project expects at least one finding somewhere, or it proves nothing
        assert marked(project), project.name


def test_single_files_are_files_of_the_projects():
    for name, relative in SINGLE_FILES:
        assert (PROJECTS_DIR / name / relative).is_file(), (name, relative)


@pytest.mark.parametrize("project", PROJECTS, ids=lambda path: path.name)
def test_project_reports_exactly_its_marked_lines(project: Path, copy_of):
    copy = copy_of(project.name)
    expected = marked(copy)
    reported = check(copy)
    assert reported == expected, describe(expected, reported)


@pytest.mark.parametrize(("name", "relative"), SINGLE_FILES, ids=["/".join(case) for case in SINGLE_FILES])
def test_checking_one_file_reports_that_files_marks_only(name: str, relative: str, copy_of):
    copy = copy_of(name)
    expected = marked(copy, [copy / relative])
    reported = check(copy, relative)
    assert reported == expected, describe(expected, reported)


def test_markers_are_parsed(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1  # error: LML201\ny = 2\nz()  # error: LML101, LML201\n")
    assert marked(tmp_path) == Counter(
        {("pkg/a.py", 1, "LML201"): 1, ("pkg/a.py", 3, "LML101"): 1, ("pkg/a.py", 3, "LML201"): 1}
    )
