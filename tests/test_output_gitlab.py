"""`--output-format gitlab`: GitLab Code Quality JSON for the merge request widget."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import pytest
from helpers import MSG_EVAL, MSG_NO_GRAD, SAMPLE, lintml_main, make_project, run_lintml

from lintml.output.gitlab import SEVERITIES
from lintml.registry import RULES

REPO = Path(__file__).resolve().parent.parent

# two findings: an uncalled `model.eval`, an uncalled `torch.no_grad`
TWO = """\
import torch


def evaluate(model, batch):
    model.eval
    with torch.no_grad:
        return model(batch)
"""


@pytest.fixture(autouse=True)
def _not_in_gitlab_ci(monkeypatch):
    # paths are relative to $CI_PROJECT_DIR when it is set: keep the CI's out of the tests
    monkeypatch.delenv("CI_PROJECT_DIR", raising=False)


def gitlab(project, capsys, monkeypatch, *args, cwd=None):
    code, out, err = lintml_main(["check", "--output-format", "gitlab", *args], cwd or project, capsys, monkeypatch)
    issues = json.loads(out)
    check_report(issues)
    return code, issues, err


def check_issue(issue):
    """What GitLab needs of one issue: the required keys, with the right types."""
    assert sorted(issue) == ["check_name", "description", "fingerprint", "location", "severity"], issue
    assert isinstance(issue["check_name"], str) and issue["check_name"] in RULES
    assert isinstance(issue["description"], str)
    assert issue["description"].startswith(issue["check_name"] + " ") and issue["description"].strip() != issue["check_name"]
    assert isinstance(issue["fingerprint"], str) and re.fullmatch(r"[0-9a-f]{64}", issue["fingerprint"])
    assert issue["severity"] in SEVERITIES
    location = issue["location"]
    assert sorted(location) == ["path", "positions"]
    path = location["path"]
    assert isinstance(path, str) and path and "\\" not in path
    assert not PurePosixPath(path).is_absolute() and not path.startswith("./") and ".." not in PurePosixPath(path).parts
    assert sorted(location["positions"]) == ["begin", "end"]
    begin, end = location["positions"]["begin"], location["positions"]["end"]
    for point in (begin, end):
        assert sorted(point) == ["column", "line"]
        assert all(type(point[key]) is int and point[key] >= 1 for key in ("line", "column"))
    assert (end["line"], end["column"]) >= (begin["line"], begin["column"])


def check_report(issues):
    assert isinstance(issues, list)
    for issue in issues:
        check_issue(issue)
    # GitLab keeps one issue per fingerprint
    assert len({issue["fingerprint"] for issue in issues}) == len(issues)


def test_gitlab_exact(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path / "proj", {"src/train.py": TWO})
    code, issues, err = gitlab(project, capsys, monkeypatch)
    assert issues == [
        {
            "description": f"LML204 {MSG_EVAL}",
            "check_name": "LML204",
            "fingerprint": "0c73f3a1a7ebea8b61a7d3b432514e88addb845f73ab40354872fea9ec51eb00",
            "severity": "major",
            "location": {
                "path": "src/train.py",
                "positions": {"begin": {"line": 5, "column": 5}, "end": {"line": 5, "column": 15}},
            },
        },
        {
            "description": f"LML103 {MSG_NO_GRAD}",
            "check_name": "LML103",
            "fingerprint": "05b8d8594caa2d899676bd11909662a53148a6dc0da8df0d0b1f49c13912060d",
            "severity": "major",
            "location": {
                "path": "src/train.py",
                "positions": {"begin": {"line": 6, "column": 10}, "end": {"line": 6, "column": 23}},
            },
        },
    ]
    assert (code, err) == (1, "")


def test_gitlab_text_is_indented_json_with_a_final_newline(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": 'label = "état"; model.eval\n'})
    _, out, _ = lintml_main(["check", "--output-format", "gitlab"], project, capsys, monkeypatch)
    assert out.startswith('[\n  {\n    "description": "LML204 ')
    assert out.endswith("\n]\n")
    assert json.loads(out)[0]["location"]["positions"]["begin"] == {"line": 1, "column": 17}  # characters


def test_gitlab_fingerprints_survive_lines_inserted_above(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path / "proj", {"src/train.py": SAMPLE})
    _, before, _ = gitlab(project, capsys, monkeypatch)
    (project / "src" / "train.py").write_text('"""Evaluation helpers."""\n\nimport os\n' + SAMPLE, encoding="utf-8")
    _, after, _ = gitlab(project, capsys, monkeypatch)
    assert len(before) == 5

    def prints(issues):
        return [(i["check_name"], i["fingerprint"]) for i in issues]

    def lines(issues):
        return [i["location"]["positions"]["begin"]["line"] for i in issues]

    assert prints(after) == prints(before)
    assert lines(after) == [line + 3 for line in lines(before)]


def test_gitlab_fingerprint_changes_with_the_line_the_file_and_the_code(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": "model.eval\n", "b.py": "model.eval\n", "c.py": "net.eval\n"})
    _, issues, _ = gitlab(project, capsys, monkeypatch)
    assert [i["location"]["path"] for i in issues] == ["a.py", "b.py", "c.py"]
    # the same line in another file, another line in the same place: all distinct
    assert len({i["fingerprint"] for i in issues}) == 3


def test_gitlab_identical_findings_in_one_file_get_distinct_fingerprints(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": "model.eval\nmodel.eval\n"})
    _, issues, _ = gitlab(project, capsys, monkeypatch)
    first, second = issues
    assert first["check_name"] == second["check_name"] == "LML204"
    assert first["fingerprint"] != second["fingerprint"]
    # and each keeps its own when a third copy is added below
    (project / "a.py").write_text("model.eval\nmodel.eval\nmodel.eval\n", encoding="utf-8")
    _, three, _ = gitlab(project, capsys, monkeypatch)
    assert [i["fingerprint"] for i in three[:2]] == [first["fingerprint"], second["fingerprint"]]


def test_gitlab_when_clean_is_an_empty_array(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": "model.eval()\n"})
    code, out, err = lintml_main(["check", "--output-format", "gitlab"], project, capsys, monkeypatch)
    assert (code, out, err) == (0, "[]\n", "")


def test_gitlab_exit_codes(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": "model.eval\n"})
    code, issues, _ = gitlab(project, capsys, monkeypatch)
    assert (code, len(issues)) == (1, 1)
    code, issues, _ = gitlab(project, capsys, monkeypatch, "--exit-zero")
    assert (code, len(issues)) == (0, 1)
    # a path that does not exist: 2, and the report of the others is still valid
    code, issues, err = gitlab(project, capsys, monkeypatch, "a.py", "missing.py")
    assert (code, len(issues)) == (2, 1)
    assert "missing.py: no such file or directory" in err


def test_gitlab_from_the_configuration(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": "model.eval\n"}, pyproject='[tool.lintml]\noutput-format = "gitlab"\n')
    code, out, _ = lintml_main(["check"], project, capsys, monkeypatch)
    assert code == 1
    check_report(json.loads(out))


def test_gitlab_severities(tmp_path, capsys, monkeypatch):
    project = make_project(
        tmp_path,
        {
            "bad.py": "x = (\n",
            "tf32.py": "import torch\ntorch.backends.cuda.matmul.allow_tf32 = True\n",
            "noqa.py": "x = 1  # noqa: LML204\n",
            "eval.py": "model.eval\n",
        },
    )
    _, issues, _ = gitlab(project, capsys, monkeypatch, "--extend-select", "LML407,LML901")
    assert {i["check_name"]: i["severity"] for i in issues} == {
        "LML900": "blocker",
        "LML407": "info",
        "LML901": "minor",
        "LML204": "major",
    }
    (syntax,) = [i for i in issues if i["check_name"] == "LML900"]
    assert syntax["description"].startswith("LML900 Cannot parse this file: ")
    assert syntax["location"] == {
        "path": "bad.py",
        "positions": {"begin": {"line": 1, "column": 5}, "end": {"line": 1, "column": 5}},
    }


def test_gitlab_paths_are_relative_to_the_project_wherever_lintml_runs(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path / "proj", {"src/train.py": TWO})
    for cwd, args in ((project / "src", ["train.py"]), (tmp_path, [str(project / "src")])):
        _, issues, _ = gitlab(project, capsys, monkeypatch, *args, cwd=cwd)
        assert {i["location"]["path"] for i in issues} == {"src/train.py"}


def test_gitlab_paths_are_relative_to_ci_project_dir(tmp_path, capsys, monkeypatch):
    # a monorepo: the pyproject.toml is in a subfolder, GitLab wants paths from the checkout
    repo = tmp_path / "repo"
    project = make_project(repo / "services" / "ml", {"src/train.py": TWO})
    _, outside_ci, _ = gitlab(project, capsys, monkeypatch)
    monkeypatch.setenv("CI_PROJECT_DIR", str(repo))
    _, in_ci, _ = gitlab(repo, capsys, monkeypatch, "services/ml")
    assert {i["location"]["path"] for i in outside_ci} == {"src/train.py"}
    assert {i["location"]["path"] for i in in_ci} == {"services/ml/src/train.py"}


def test_gitlab_from_standard_input(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {})
    monkeypatch.setattr("sys.stdin", type("In", (), {"buffer": __import__("io").BytesIO(b"model.eval\n")})())
    code, issues, _ = gitlab(project, capsys, monkeypatch, "-", "--stdin-filename", "pkg/train.py")
    assert code == 1
    assert [(i["check_name"], i["location"]["path"]) for i in issues] == [("LML204", "pkg/train.py")]


def test_gitlab_on_the_demo_has_every_finding(capsys, monkeypatch):
    result = run_lintml("check", "--output-format", "gitlab", "fixtures/demo", cwd=REPO)
    assert result.returncode == 1, result.stderr
    issues = json.loads(result.stdout)
    check_report(issues)
    assert len(issues) == 24
    concise = run_lintml("check", "--output-format", "concise", "fixtures/demo", cwd=REPO).stdout.splitlines()
    expected = []
    for line in concise:
        path, row, column, rest = line.split(":", 3)
        expected.append((PurePosixPath(path).relative_to("fixtures/demo").as_posix(), int(row), int(column), rest.split()[0]))
    assert [
        (
            i["location"]["path"],
            i["location"]["positions"]["begin"]["line"],
            i["location"]["positions"]["begin"]["column"],
            i["check_name"],
        )
        for i in issues
    ] == expected
