"""The Python API: `lintml.check_source`, `lintml.check_paths`, `lintml.Finding`."""

from __future__ import annotations

import pytest

from helpers import MSG_EVAL, MSG_GENERATE, SAMPLE, SAMPLE_FINDINGS, make_project

import lintml
from lintml.config import Config
from lintml.findings import Applicability, Edit, Fix, Position


def as_tuples(findings):
    return [(f.line, f.column, f.code, f.message) for f in findings]


def test_finding_is_exported():
    from lintml import Finding

    assert lintml.Finding is Finding
    assert "Finding" in lintml.__all__


def test_check_source_returns_findings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no pyproject.toml anywhere above: the defaults
    findings = lintml.check_source(SAMPLE, filename="eval.py")
    assert all(isinstance(f, lintml.Finding) for f in findings)
    assert as_tuples(findings) == SAMPLE_FINDINGS
    assert {f.filename for f in findings} == {"eval.py"}

    first = findings[0]
    assert (first.code, first.line, first.column, first.message) == ("LML204", 5, 5, MSG_EVAL)
    assert first.fix == Fix("Call `model.eval()`", (Edit(Position(5, 15), Position(5, 15), "()"),), Applicability.SAFE)
    assert findings[2].fix == Fix("Remove `use_cache=False`", (Edit(Position(7, 35), Position(7, 52), ""),))
    assert findings[3].fix is None  # set_grad_enabled() needs the user to choose a mode


def test_check_source_with_a_config():
    findings = lintml.check_source(SAMPLE, filename="eval.py", config=Config(select=("LML3",)))
    assert as_tuples(findings) == [(7, 37, "LML301", MSG_GENERATE)]


def test_check_source_finds_the_config_from_the_filename(tmp_path):
    project = make_project(
        tmp_path, {}, pyproject='[tool.lintml]\nignore = ["LML1"]\nper-file-ignores = {"tests/*" = ["LML3"]}\n'
    )
    findings = lintml.check_source(SAMPLE, filename=str(project / "src" / "eval.py"))
    assert [f.code for f in findings] == ["LML204", "LML301", "LML204"]
    findings = lintml.check_source(SAMPLE, filename=str(project / "tests" / "test_eval.py"))
    assert [f.code for f in findings] == ["LML204", "LML204"]


def test_check_source_never_raises_on_broken_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (finding,) = lintml.check_source("def f(:\n    pass\n", filename="bad.py")
    assert (finding.code, finding.line, finding.column) == ("LML900", 1, 7)
    assert finding.message.startswith("Cannot parse this file: ")
    assert finding.fix is None


def test_check_paths(tmp_path, monkeypatch):
    project = make_project(
        tmp_path,
        {"src/eval.py": SAMPLE, "src/ok.py": "x = 1\n", "build/x.py": "model.eval\n", "one.py": "model.train\n"},
    )
    monkeypatch.chdir(project)
    findings = lintml.check_paths(["src", "one.py"])
    assert [(f.filename, f.line, f.code) for f in findings] == [
        ("one.py", 1, "LML204"),
        *[("src/eval.py", line, code) for line, _, code, _ in SAMPLE_FINDINGS],
    ]
    assert all(isinstance(f, lintml.Finding) for f in findings)

    only_kv = lintml.check_paths([project], config=Config(select=("LML301",)))
    assert [(f.filename, f.line, f.code) for f in only_kv] == [("src/eval.py", 7, "LML301")]


def test_check_paths_reads_pyproject_when_no_config_is_given(tmp_path, monkeypatch):
    project = make_project(tmp_path, {"a.py": SAMPLE}, pyproject='[tool.lintml]\nselect = ["LML103"]\n')
    monkeypatch.chdir(project)
    assert [(f.line, f.code) for f in lintml.check_paths(["."])] == [(6, "LML103"), (8, "LML103")]


def test_check_paths_missing_path(tmp_path, monkeypatch):
    from lintml.files import InputError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="nope.py: no such file or directory"):
        lintml.check_paths(["nope.py"])
