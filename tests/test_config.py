"""`[tool.lintml]` in pyproject.toml: discovery, every key, command-line overrides, and
the one-line errors for every kind of mistake."""

from __future__ import annotations

import json

import pytest

from helpers import (
    MSG_EVAL,
    MSG_GENERATE,
    MSG_NO_GRAD,
    lintml_main,
    make_project,
    msg_unused,
    run_lintml,
)

SOURCE = """\
import torch
model.eval
with torch.no_grad:
    pass
y = model.generate(x, use_cache=False)
z = 1  # noqa: LML204
"""
LINE_204 = f"src/train.py:2:1: LML204 {MSG_EVAL}"
LINE_103 = f"src/train.py:3:6: LML103 {MSG_NO_GRAD}"
LINE_301 = f"src/train.py:5:23: LML301 {MSG_GENERATE}"
LINE_901 = f"src/train.py:6:8: LML901 {msg_unused('LML204')}"


def check(project, capsys, monkeypatch, *args):
    return lintml_main(["check", "--output-format", "concise", *args], project, capsys, monkeypatch)


@pytest.mark.parametrize(
    "table, expected",
    [
        ("", [LINE_204, LINE_103, LINE_301]),
        ('select = ["LML1"]', [LINE_103]),
        ('select = ["LML103", "LML301"]', [LINE_103, LINE_301]),
        # the bare prefix selects every rule, the ones that are off by default too
        ('select = ["LML"]', [LINE_204, LINE_103, LINE_301, LINE_901]),
        ('extend-select = ["LML901"]', [LINE_204, LINE_103, LINE_301, LINE_901]),
        ('ignore = ["LML2"]', [LINE_103, LINE_301]),
        ('ignore = ["LML301", "LML103"]', [LINE_204]),
        ('select = ["LML"]\nignore = ["LML9", "LML1"]', [LINE_204, LINE_301]),
        ('per-file-ignores = {"src/*.py" = ["LML1", "LML301"]}', [LINE_204]),
        ('per-file-ignores = {"src" = ["LML204"]}', [LINE_103, LINE_301]),
        ('per-file-ignores = {"other/*.py" = ["LML204"]}', [LINE_204, LINE_103, LINE_301]),
    ],
)
def test_selection_keys(tmp_path, capsys, monkeypatch, table, expected):
    project = make_project(tmp_path, {"src/train.py": SOURCE}, pyproject=f"[tool.lintml]\n{table}\n")
    code, out, err = check(project, capsys, monkeypatch)
    assert out.splitlines() == expected
    assert (code, err) == (1, "")


def test_found_upward_from_the_checked_path_skipping_pyprojects_without_the_table(tmp_path):
    project = make_project(
        tmp_path / "proj",
        {
            "pkg/sub/pyproject.toml": "[project]\nname = 'sub'\n",  # no [tool.lintml]: not ours
            "pkg/sub/train.py": SOURCE,
        },
        pyproject='[tool.lintml]\nselect = ["LML3"]\n',
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_lintml("check", "--output-format", "concise", str(project / "pkg" / "sub" / "train.py"), cwd=elsewhere)
    assert result.stdout.splitlines() == [f"{project}/pkg/sub/train.py:5:23: LML301 {MSG_GENERATE}"]
    assert result.returncode == 1


def test_output_format_from_the_file_and_overridden_on_the_command_line(tmp_path, capsys, monkeypatch):
    project = make_project(
        tmp_path, {"src/train.py": SOURCE}, pyproject='[tool.lintml]\noutput-format = "json"\n'
    )
    code, out, _ = lintml_main(["check"], project, capsys, monkeypatch)
    assert [(item["code"], item["location"]["row"]) for item in json.loads(out)] == [
        ("LML204", 2),
        ("LML103", 3),
        ("LML301", 5),
    ]
    code, out, _ = check(project, capsys, monkeypatch)
    assert out.splitlines() == [LINE_204, LINE_103, LINE_301]


@pytest.mark.parametrize(
    "table, args, expected",
    [
        # --select replaces the file's select
        ('select = ["LML1"]', ["--select", "LML3"], [LINE_301]),
        # --ignore replaces the file's ignore
        ('ignore = ["LML204"]', ["--ignore", "LML103"], [LINE_204, LINE_301]),
        # --extend-select adds to the file's selection
        ('select = ["LML1"]', ["--extend-select", "LML204,LML901"], [LINE_204, LINE_103, LINE_901]),
        ('select = ["LML1"]', ["--select", "LML"], [LINE_204, LINE_103, LINE_301, LINE_901]),
    ],
)
def test_command_line_overrides_the_file(tmp_path, capsys, monkeypatch, table, args, expected):
    project = make_project(tmp_path, {"src/train.py": SOURCE}, pyproject=f"[tool.lintml]\n{table}\n")
    code, out, _ = check(project, capsys, monkeypatch, *args)
    assert out.splitlines() == expected
    assert code == 1


def test_exclude_and_extend_exclude(tmp_path, capsys, monkeypatch):
    files = {
        "src/train.py": "model.eval\n",
        "src/generated/model_pb2.py": "model.eval\n",
        "src/legacy_loader.py": "model.eval\n",
        "scratch/try.py": "model.eval\n",
        "build/lib/x.py": "model.eval\n",
    }
    project = make_project(
        tmp_path,
        files,
        pyproject='[tool.lintml]\nextend-exclude = ["generated", "src/legacy_*.py"]\n',
    )
    _, out, _ = check(project, capsys, monkeypatch)
    assert [line.split(":")[0] for line in out.splitlines()] == ["scratch/try.py", "src/train.py"]

    # `exclude` replaces the default list: build/ is checked again, scratch/ is not
    (project / "pyproject.toml").write_text('[tool.lintml]\nexclude = ["scratch"]\n')
    _, out, _ = check(project, capsys, monkeypatch)
    assert [line.split(":")[0] for line in out.splitlines()] == [
        "build/lib/x.py",
        "src/generated/model_pb2.py",
        "src/legacy_loader.py",
        "src/train.py",
    ]


def test_explicit_config_file(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"src/train.py": SOURCE, "ci/lintml.toml": '[tool.lintml]\nselect = ["LML204"]\n'})
    code, out, _ = check(project, capsys, monkeypatch, "--config", "ci/lintml.toml")
    assert out.splitlines() == [LINE_204]


# -- mistakes: one line on stderr naming the file (and the key), exit 2 -----------------------

KNOWN = "select, extend-select, ignore, exclude, extend-exclude, per-file-ignores, output-format"


@pytest.mark.parametrize(
    "toml, message",
    [
        ("[tool.lintml]\nfoo = 1\n", f"unknown key `foo` in [tool.lintml]; known keys: {KNOWN}"),
        ("[tool.lintml]\nselect = [\"LML999\"]\n", "`select` names unknown rule code `LML999` (see `lintml rules`)"),
        ("[tool.lintml]\nextend-select = [\"E501\"]\n", "`extend-select` names unknown rule code `E501` (see `lintml rules`)"),
        ("[tool.lintml]\nignore = [\"LML2\", \"LMLX\"]\n", "`ignore` names unknown rule code `LMLX` (see `lintml rules`)"),
        (
            "[tool.lintml.per-file-ignores]\n\"tests/*\" = [\"LML7\"]\n",
            "`per-file-ignores.tests/*` names unknown rule code `LML7` (see `lintml rules`)",
        ),
        ("[tool.lintml]\nselect = \"LML\"\n", "`select` must be a list of strings"),
        ("[tool.lintml]\nexclude = [1]\n", "`exclude` must be a list of strings"),
        ("[tool.lintml]\nextend-exclude = \"build\"\n", "`extend-exclude` must be a list of strings"),
        ("[tool.lintml]\nper-file-ignores = 3\n", "`per-file-ignores` must be a table of glob = [codes]"),
        (
            "[tool.lintml]\nper-file-ignores = {\"a.py\" = \"LML204\"}\n",
            "`per-file-ignores` entry `a.py` must be a list of codes",
        ),
        (
            "[tool.lintml]\noutput-format = \"xml\"\n",
            "`output-format` must be one of full, concise, json, sarif, github, gitlab, not 'xml'",
        ),
        (
            "[tool.lintml]\noutput-format = 3\n",
            "`output-format` must be one of full, concise, json, sarif, github, gitlab, not 3",
        ),
        ("[tool]\nlintml = 3\n", "[tool.lintml] must be a table"),
    ],
)
def test_config_mistakes_are_one_line_exit_2(tmp_path, capsys, monkeypatch, toml, message):
    project = make_project(tmp_path, {"src/train.py": SOURCE}, pyproject=toml)
    code, out, err = check(project, capsys, monkeypatch)
    pyproject = project / "pyproject.toml"
    assert err.splitlines() == [f"lintml: error: {pyproject}: {message}"]
    assert (code, out) == (2, "")


def test_invalid_toml_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"src/train.py": SOURCE}, pyproject='[tool.lintml]\nselect = ["LML1"\n')
    code, out, err = check(project, capsys, monkeypatch)
    # the parser's own words (they differ between tomllib versions) follow the prefix
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"lintml: error: {project / 'pyproject.toml'}: invalid TOML: ")
    assert (code, out) == (2, "")


def test_config_mistakes_in_a_subprocess_have_no_traceback(tmp_path):
    for toml, key in [
        ("[tool.lintml]\nselct = [\"LML1\"]\n", "selct"),
        ("[tool.lintml\nselect = 3\n", "invalid TOML"),
        ('tool = "lintml"\n', "[tool.lintml]"),  # only reachable with --config
    ]:
        project = make_project(tmp_path, {"a.py": "x = 1\n"}, pyproject=toml)
        result = run_lintml("check", "--config", "pyproject.toml", cwd=project)
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("lintml: error: pyproject.toml: ")
        assert key in lines[0]


def test_missing_explicit_config(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": "x = 1\n"})
    code, out, err = check(project, capsys, monkeypatch, "--config", "nope.toml")
    assert (code, out, err) == (2, "", "lintml: error: nope.toml: configuration file not found\n")


@pytest.mark.parametrize("flag", ["--select", "--extend-select", "--ignore"])
def test_unknown_code_on_the_command_line(tmp_path, capsys, monkeypatch, flag):
    project = make_project(tmp_path, {"a.py": "x = 1\n"})
    code, out, err = check(project, capsys, monkeypatch, flag, "LML204,NOPE1")
    key = flag.lstrip("-")
    assert err == f"lintml: error: command line: `{key}` names unknown rule code `NOPE1` (see `lintml rules`)\n"
    assert (code, out) == (2, "")
