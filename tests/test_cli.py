"""`lintml check | rules | explain` as a user runs them: paths, stdin, exit codes, errors."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from helpers import (
    MSG_EVAL,
    MSG_GENERATE,
    MSG_NO_GRAD,
    SAMPLE,
    concise_lines,
    lintml_main,
    make_project,
    run_lintml,
)

import lintml

REPO = Path(__file__).resolve().parent.parent
BAD = "model.eval\n"  # one LML204 at 1:1


def eval_line(path: str) -> str:
    return f"{path}:1:1: LML204 {MSG_EVAL}"


# -- which files are checked ------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    """A project with a finding in every file, including the folders that are skipped."""
    return make_project(
        tmp_path / "proj",
        {
            "train.py": BAD,
            "src/pkg/model.py": BAD,
            "src/pkg/__pycache__/model.py": BAD,
            "notes.txt": BAD,  # not a .py file
            "src/script.pyw": BAD,
            ".git/hooks/hook.py": BAD,
            ".venv/lib/site.py": BAD,
            "venv/lib/site.py": BAD,
            "myenv/pyvenv.cfg": "home = /usr/bin\n",  # a virtualenv under any name
            "myenv/lib/mod.py": BAD,
            "build/lib/pkg/model.py": BAD,
            "dist/pkg/model.py": BAD,
            "node_modules/pkg/x.py": BAD,
            "generated/proto_pb2.py": BAD,
            "src/pkg/legacy_io.py": BAD,
            "scratch/try.py": BAD,
        },
        pyproject='[tool.lintml]\nextend-exclude = ["generated", "src/pkg/legacy_*.py"]\n',
    )


def test_default_path_is_the_current_folder_and_skips_vcs_venvs_builds_and_excludes(
    tree, capsys, monkeypatch
):
    code, out, err = lintml_main(["check", "--output-format", "concise"], tree, capsys, monkeypatch)
    assert out.splitlines() == [
        eval_line("scratch/try.py"),
        eval_line("src/pkg/model.py"),
        eval_line("train.py"),
    ]
    assert (code, err) == (1, "")


def test_explicit_files_and_folders(tree, capsys, monkeypatch):
    code, out, _ = lintml_main(
        ["check", "--output-format", "concise", "src", "train.py", "build/lib/pkg/model.py"],
        tree,
        capsys,
        monkeypatch,
    )
    # a folder is walked (skipping what is excluded); a file named explicitly is checked
    # even inside an excluded folder, as Ruff does; findings come sorted by file
    assert out.splitlines() == [
        eval_line("build/lib/pkg/model.py"),
        eval_line("src/pkg/model.py"),
        eval_line("train.py"),
    ]
    assert code == 1


def test_force_exclude_applies_exclude_to_named_files(tree, capsys, monkeypatch):
    # pre-commit names every staged file: the project's excludes must still hold
    named = ["train.py", "generated/proto_pb2.py", "src/pkg/legacy_io.py", "build/lib/pkg/model.py", "src"]
    code, out, _ = lintml_main(
        ["check", "--output-format", "concise", "--force-exclude", *named], tree, capsys, monkeypatch
    )
    assert out.splitlines() == [eval_line("src/pkg/model.py"), eval_line("train.py")]
    assert code == 1
    code, out, _ = lintml_main(
        ["check", "--force-exclude", "generated/proto_pb2.py", "src/pkg/legacy_io.py"], tree, capsys, monkeypatch
    )
    assert (code, out) == (0, "All checks passed!\n")


def test_a_file_reached_through_symlinks_is_checked_once(tree, capsys, monkeypatch):
    (tree / "linked_src").symlink_to(tree / "src", target_is_directory=True)
    (tree / "train_link.py").symlink_to(tree / "train.py")
    # walking: a linked folder is not followed, a linked file is the file it points to
    code, out, _ = lintml_main(["check", "--output-format", "concise"], tree, capsys, monkeypatch)
    assert out.splitlines() == [eval_line("scratch/try.py"), eval_line("src/pkg/model.py"), eval_line("train.py")]
    # named twice, through a link and directly: checked once, named by the real path
    named = ["linked_src/pkg/model.py", "src/pkg/model.py", "train_link.py", "train.py"]
    code, out, _ = lintml_main(["check", "--output-format", "concise", *named], tree, capsys, monkeypatch)
    assert out.splitlines() == [eval_line("src/pkg/model.py"), eval_line("train.py")]
    assert code == 1


def test_extend_exclude_on_the_command_line(tree, capsys, monkeypatch):
    code, out, _ = lintml_main(
        ["check", "--output-format", "concise", "--extend-exclude", "scratch,train.py"],
        tree,
        capsys,
        monkeypatch,
    )
    assert out.splitlines() == [eval_line("src/pkg/model.py")]
    assert code == 1


def test_python_m_lintml_from_a_subfolder_and_from_outside(tree):
    inside = run_lintml("check", "--output-format", "concise", cwd=tree / "src")
    assert inside.stdout.splitlines() == [eval_line("pkg/model.py")]
    assert (inside.returncode, inside.stderr) == (1, "")

    # from outside the project, through `..`: exclusions still apply relative to the project
    outside = tree.parent / "elsewhere"
    outside.mkdir()
    result = run_lintml("check", "--output-format", "concise", "../proj", cwd=outside)
    assert result.stdout.splitlines() == [
        eval_line("../proj/scratch/try.py"),
        eval_line("../proj/src/pkg/model.py"),
        eval_line("../proj/train.py"),
    ]
    assert result.returncode == 1


def test_no_python_files(tmp_path):
    project = make_project(tmp_path, {"README.md": "hi\n"})
    result = run_lintml("check", cwd=project)
    assert result.returncode == 0
    assert result.stdout == "All checks passed!\n"
    assert result.stderr == "lintml: warning: no Python files found\n"


# -- the console script and `python -m lintml` --------------------------------------------


def test_console_script_and_python_m_agree(tmp_path):
    project = make_project(tmp_path, {"eval.py": SAMPLE})
    script = Path(sysconfig.get_path("scripts")) / "lintml"
    if not script.exists():
        pytest.skip(f"the `lintml` console script is not installed in {script.parent}")
    by_script = subprocess.run(
        [str(script), "check", "--output-format", "concise"], cwd=project, capture_output=True, text=True
    )
    by_module = run_lintml("check", "--output-format", "concise", cwd=project)
    assert by_script.stdout.splitlines() == concise_lines("eval.py")
    assert by_module.stdout == by_script.stdout
    assert by_script.returncode == by_module.returncode == 1


def test_version(tmp_path):
    result = run_lintml("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"lintml {lintml.__version__}\n"


# -- standard input ------------------------------------------------------------------------


def test_stdin_with_a_filename(tmp_path):
    project = make_project(
        tmp_path, {}, pyproject='[tool.lintml]\nper-file-ignores = {"tests/*" = ["LML103"]}\n'
    )
    source = "import torch\nmodel.eval\nwith torch.no_grad:\n    pass\n"
    # the file does not exist on disk: stdin is all there is
    result = run_lintml("check", "--output-format", "concise", "-", "--stdin-filename", "src/x.py", cwd=project, stdin=source)
    assert result.stdout.splitlines() == [
        f"src/x.py:2:1: LML204 {MSG_EVAL}",
        f"src/x.py:3:6: LML103 {MSG_NO_GRAD}",
    ]
    assert (result.returncode, result.stderr) == (1, "")

    # the stdin filename is what per-file-ignores are matched against
    ignored = run_lintml("check", "--output-format", "concise", "-", "--stdin-filename", "tests/x.py", cwd=project, stdin=source)
    assert ignored.stdout.splitlines() == [f"tests/x.py:2:1: LML204 {MSG_EVAL}"]


def test_stdin_without_a_filename_full_output(tmp_path):
    project = make_project(tmp_path, {})
    result = run_lintml("check", "-", cwd=project, stdin="x = 1\nmodel.eval\n")
    assert result.stdout.splitlines() == [
        f"<stdin>:2:1: LML204 [*] {MSG_EVAL}",
        "  |",
        "2 | model.eval",
        "  | ^^^^^^^^^^",
        "  |",
        "",
        "Found 1 finding (1 fixable with `--fix`).",
    ]
    assert result.returncode == 1


def test_stdin_dash_cannot_be_mixed_with_paths(tmp_path, capsys, monkeypatch):
    make_project(tmp_path, {"a.py": "x = 1\n"})
    code, out, err = lintml_main(["check", "-", "a.py"], tmp_path, capsys, monkeypatch)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        "lintml: error: `-` (standard input) cannot be combined with other paths"
    ]


# -- exit codes ----------------------------------------------------------------------------


def test_exit_codes(tmp_path):
    clean = make_project(tmp_path / "clean", {"ok.py": "model.eval()\n"})
    dirty = make_project(tmp_path / "dirty", {"bad.py": BAD})

    result = run_lintml("check", cwd=clean)
    assert (result.returncode, result.stdout, result.stderr) == (0, "All checks passed!\n", "")

    result = run_lintml("check", "--output-format", "concise", cwd=dirty)
    assert (result.returncode, result.stdout) == (1, eval_line("bad.py") + "\n")

    result = run_lintml("check", "--output-format", "concise", "--exit-zero", cwd=dirty)
    assert (result.returncode, result.stdout) == (0, eval_line("bad.py") + "\n")


def test_nonexistent_path_is_one_line_exit_2(tmp_path):
    project = make_project(tmp_path, {"a.py": BAD})
    result = run_lintml("check", "a.py", "missing.py", cwd=project)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["lintml: error: missing.py: no such file or directory"]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (["check", "--bogus"], "lintml: error: unrecognized arguments: --bogus (see `lintml --help`)"),
        (
            ["check", "--output-format", "xml"],
            "lintml: error: argument --output-format: invalid choice: 'xml' "
            "(choose from 'full', 'concise', 'json', 'sarif', 'github', 'gitlab') (see `lintml check --help`)",
        ),
        (["frobnicate"], None),
        (["check", "--stdin-filename", "x.py", "a.py"], "lintml: error: --stdin-filename is only used with `-` (standard input)"),
        (["check", "--select", "LML999"], "lintml: error: command line: `select` names unknown rule code `LML999` (see `lintml rules`)"),
    ],
)
def test_bad_command_lines_are_one_line_exit_2(tmp_path, capsys, monkeypatch, args, expected):
    make_project(tmp_path, {"a.py": BAD})
    code, out, err = lintml_main(args, tmp_path, capsys, monkeypatch)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1
    if expected is None:
        assert lines[0].startswith("lintml: error: argument command: invalid choice: 'frobnicate'")
    else:
        assert lines == [expected]


def test_bad_flag_in_a_subprocess_is_one_line(tmp_path):
    result = run_lintml("check", "--no-such-flag", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "lintml: error: unrecognized arguments: --no-such-flag (see `lintml --help`)\n"


# -- files that do not parse, and checks that crash ------------------------------------


def test_syntax_error_is_LML900_and_other_files_are_still_checked(tmp_path):
    project = make_project(
        tmp_path,
        {
            "a_broken.py": "import torch\nx = 1\ndef f(:\n    model.eval\n",
            "b_unclosed.py": "model.eval\nx = (\n",
            "c_null.py": "x = 1\x00\n",
            "d_good.py": "model.generate(x, use_cache=False)\n",
        },
    )
    result = run_lintml("check", "--output-format", "concise", cwd=project)
    lines = result.stdout.splitlines()
    assert [line.split(" Cannot parse this file: ")[0] for line in lines[:2]] == [
        "a_broken.py:3:7: LML900",
        "b_unclosed.py:2:5: LML900",
    ]
    assert lines[2].startswith("c_null.py:1:") and " LML900 " in lines[2]
    assert all(" Cannot parse this file: " in line for line in lines[:3])
    assert lines[3:] == [f"d_good.py:1:19: LML301 {MSG_GENERATE}"]
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr == ""


def test_a_crashing_check_is_an_internal_error_exit_2(tmp_path, capsys, monkeypatch):
    from lintml.checks.modes import ModeMethodNotCalled

    def crash(self, node):
        raise RuntimeError("boom")

    monkeypatch.setattr(ModeMethodNotCalled, "visit_Expr", crash)
    make_project(tmp_path, {"a.py": "model.eval\nmodel.generate(x, use_cache=False)\n"})
    code, out, err = lintml_main(["check", "--output-format", "concise"], tmp_path, capsys, monkeypatch)
    assert code == 2
    # the other rules still ran
    assert out.splitlines() == [f"a.py:2:19: LML301 {MSG_GENERATE}"]
    assert err.splitlines() == [
        "lintml: internal error: LML204 crashed on a.py (RuntimeError: boom); "
        "the other rules and files were still checked. Please report this."
    ]


def test_an_unexpected_exception_exits_2_not_1(tmp_path, capsys, monkeypatch):
    import lintml.runner

    def explode(*args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(lintml.runner, "run_targets", explode)
    make_project(tmp_path, {"a.py": BAD})
    code, out, err = lintml_main(["check"], tmp_path, capsys, monkeypatch)
    assert code == 2
    assert err.splitlines()[-1] == "lintml: internal error: RuntimeError('unexpected'); please report this"


# -- rules and explain -------------------------------------------------------------------


def test_rules_lists_code_name_family_default_and_fix(capsys, monkeypatch, tmp_path):
    code, out, _ = lintml_main(["rules"], tmp_path, capsys, monkeypatch)
    assert code == 0
    rows = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()]
    assert rows[0] == ["code", "name", "family", "default", "fix"]
    for row in (
        ["LML103", "grad-mode-not-called", "gradients", "on", "safe"],
        ["LML204", "mode-method-not-called", "train/eval mode", "on", "safe"],
        ["LML301", "generate-without-kv-cache", "KV cache", "on", "safe"],
        ["LML900", "syntax-error", "meta", "on", "-"],
        ["LML901", "unused-suppression", "meta", "off", "-"],
    ):
        assert row in rows[1:]
    codes = [row[0] for row in rows[1:]]
    assert codes == sorted(codes)


PAGE = REPO / "rules" / "LML204.md"


@pytest.mark.xfail(not PAGE.exists(), reason="rules/LML204.md is being written by the rule-pages work", strict=True)
def test_explain_prints_the_rule_page(tmp_path):
    result = run_lintml("explain", "lml204", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = PAGE.read_text(encoding="utf-8")
    body = text.split("\n---\n", 1)[1] if text.startswith("---\n") else text
    assert result.stdout == body.lstrip("\n")
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead"):
        assert section in result.stdout


def test_explain_unknown_code(tmp_path, capsys, monkeypatch):
    code, out, err = lintml_main(["explain", "LML999"], tmp_path, capsys, monkeypatch)
    assert (code, out) == (2, "")
    assert err == "lintml: error: unknown rule code `LML999`; `lintml rules` lists them\n"


def test_a_missing_path_is_reported_and_the_others_still_checked(tree, capsys, monkeypatch):
    code, out, err = lintml_main(
        ["check", "--output-format", "concise", "train.py", "nope.py"], tree, capsys, monkeypatch
    )
    assert out.splitlines() == [eval_line("train.py")]
    assert err == "lintml: error: nope.py: no such file or directory\n"
    assert code == 2


def test_a_file_named_twice_is_reported_once(tree, capsys, monkeypatch):
    code, out, _ = lintml_main(
        ["check", "--output-format", "concise", "train.py", "./train.py", "."], tree, capsys, monkeypatch
    )
    assert out.splitlines().count(eval_line("train.py")) == 1
    assert code == 1


def test_syntax_errors_are_reported_whatever_is_selected(tmp_path, capsys, monkeypatch):
    make_project(tmp_path, {"broken.py": "def f(:\n    pass\n"})
    code, out, _ = lintml_main(
        ["check", "--output-format", "concise", "--select", "LML2"], tmp_path, capsys, monkeypatch
    )
    assert out.startswith("broken.py:1:7: LML900 Cannot parse this file: ")
    assert code == 1
    code, out, _ = lintml_main(
        ["check", "--output-format", "concise", "--ignore", "LML900"], tmp_path, capsys, monkeypatch
    )
    assert (code, out) == (0, "")


def test_without_pygls_lsp_says_what_to_install():
    code = (
        "import sys; sys.modules['pygls'] = None\n"
        "from lintml.cli import main\n"
        "sys.exit(main(['lsp']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "lintml: error: `lintml lsp` needs pygls: pip install 'lintml[lsp]'\n"
