"""Hostile inputs (issue 8): odd bytes, odd files, odd configurations, failures while
writing, and code that must never run. Each test states what the user sees: the exact
line on stderr, the findings on stdout, the exit status, the bytes left on disk."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from helpers import MSG_EVAL, MSG_TRAIN, lintml_main, make_project, run_lintml

import lintml.engine
import lintml.runner
from lintml import cli

BAD = "model.eval\n"
SANDBOX_UID = 65534  # nobody


def check(project, capsys, monkeypatch, *args):
    return lintml_main(["check", "--output-format", "concise", *args], project, capsys, monkeypatch)


def line_204(path: str, line: int = 1, column: int = 1) -> str:
    return f"{path}:{line}:{column}: LML204 {MSG_EVAL}"


def as_nobody(project: Path, args: list[str]) -> tuple[int, str, str]:
    """`lintml ARGS` run by an unprivileged user (root reads and writes everything):
    a forked child of this process drops to uid/gid 65534, then runs the real CLI."""
    return _run_child(project, args, drop=os.geteuid() == 0)


def _run_child(project: Path, args: list[str], drop: bool) -> tuple[int, str, str]:
    import lintml.engine  # noqa: F401  - imported before the privileges go
    import lintml.output  # noqa: F401

    out_path, err_path = project.parent / "child.out", project.parent / "child.err"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(out, 1), os.dup2(err, 2)
            sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
            sys.stderr = open(2, "w", encoding="utf-8", closefd=False)
            if drop:
                os.setgroups([])
                os.setgid(SANDBOX_UID)
                os.setuid(SANDBOX_UID)
            os.chdir(project)
            code = cli.main(args)
            sys.stdout.flush(), sys.stderr.flush()
        except BaseException:
            code = 99
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out_path.read_text(), err_path.read_text()


@pytest.fixture
def open_tmp():
    """A folder every user can reach (pytest's tmp_path is under a folder only root can)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="lintml-hostile-"))
    folder.chmod(0o777)
    yield folder
    for path in folder.rglob("*"):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def open_to_nobody(*paths: Path) -> None:
    for path in paths:
        path.chmod(0o777 if path.is_dir() else 0o666)


# -- bytes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, message",
    [
        (
            b'x = "\xff"\nmodel.eval\n',
            "cannot decode: not valid UTF-8: byte 0xff at line 1, column 6; save it as UTF-8, "
            "or declare its encoding on line 1 or 2 (`# -*- coding: latin-1 -*-`)",
        ),
        (  # past the first two lines, where Python's own encoding check does not look
            b'x = 1\ny = 2\nz = 3\ns = "caf\xe9"\n',
            "cannot decode: not valid UTF-8: byte 0xe9 at line 4, column 9; save it as UTF-8, "
            "or declare its encoding on line 1 or 2 (`# -*- coding: latin-1 -*-`)",
        ),
        (
            b'# -*- coding: ascii -*-\ns = "\xe9"\n',
            "cannot decode: not valid ascii (the encoding its coding comment declares): byte 0xe9 "
            "at line 2, column 6; save it in that encoding, or correct its coding comment",
        ),
        (b"# coding: klingon\nx = 1\n", "cannot decode: unknown encoding: klingon; correct the file's coding comment"),
    ],
    ids=["utf8-line-1", "utf8-line-4", "ascii-cookie", "unknown-cookie"],
)
def test_undecodable_file_is_one_line_exit_2_and_the_others_are_checked(tmp_path, content, message):
    project = make_project(tmp_path, {"a_bad.py": content, "b_good.py": BAD})
    result = run_lintml("check", "--output-format", "concise", cwd=project)
    assert result.stderr == f"lintml: error: a_bad.py: {message}\n"
    assert result.stdout.splitlines() == [line_204("b_good.py")]
    assert result.returncode == 2


def test_a_latin_1_file_with_its_cookie_is_checked(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": b"# -*- coding: latin-1 -*-\ns = '\xe9t\xe9'; model.eval\n"})
    code, out, err = check(project, capsys, monkeypatch)
    assert (code, out.splitlines(), err) == (1, [line_204("a.py", 2, 12)], "")


def test_a_bom_is_not_a_column(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"bom.py": b"\xef\xbb\xbfx = 1; model.eval\nmodel.train\n"})
    code, out, err = check(project, capsys, monkeypatch)
    assert out.splitlines() == [line_204("bom.py", 1, 8), f"bom.py:2:1: LML204 {MSG_TRAIN}"]
    assert (code, err) == (1, "")


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"], ids=["crlf", "lone-cr"])
def test_crlf_and_lone_cr_line_ends_count_lines_and_fix_keeps_them(tmp_path, capsys, monkeypatch, newline):
    before = newline.join([b"import torch", b"x = 1", b"model.eval", b"y = 2; model.train", b""])
    project = make_project(tmp_path, {"a.py": before})
    code, out, _ = check(project, capsys, monkeypatch)
    assert out.splitlines() == [line_204("a.py", 3, 1), f"a.py:4:8: LML204 {MSG_TRAIN}"]
    assert code == 1
    code, out, err = check(project, capsys, monkeypatch, "--fix")
    after = newline.join([b"import torch", b"x = 1", b"model.eval()", b"y = 2; model.train()", b""])
    assert (project / "a.py").read_bytes() == after
    assert (code, out, err) == (0, "", "")


def test_form_feeds_keep_columns_and_fixes_in_place(tmp_path, capsys, monkeypatch):
    # a form feed at the start of a line, inside a line, on a line of its own, before an indent
    before = b"import torch\n\x0cmodel.train\nx = 1; \x0cmodel.eval\n\x0c\nif x:\n\x0c    model.eval\n"
    project = make_project(tmp_path, {"ff.py": before})
    code, out, _ = check(project, capsys, monkeypatch)
    assert out.splitlines() == [f"ff.py:2:2: LML204 {MSG_TRAIN}", line_204("ff.py", 3, 9), line_204("ff.py", 6, 6)]
    assert code == 1
    code, out, err = check(project, capsys, monkeypatch, "--fix")
    assert (project / "ff.py").read_bytes() == (
        b"import torch\n\x0cmodel.train()\nx = 1; \x0cmodel.eval()\n\x0c\nif x:\n\x0c    model.eval()\n"
    )
    assert (code, out, err) == (0, "", "")


@pytest.mark.parametrize("checked", ["import torch\n", ""], ids=["with-checks", "no-checks"])
def test_nul_byte_is_LML900_at_the_byte(tmp_path, checked):
    project = make_project(tmp_path, {"nul.py": f"{checked}x = 1\ny = 2\x00\nmodel.eval\n", "ok.py": BAD})
    result = run_lintml("check", "--output-format", "concise", cwd=project)
    line = 3 if checked else 2
    assert result.stdout.splitlines() == [
        f"nul.py:{line}:6: LML900 Cannot parse this file: source code string cannot contain null bytes",
        line_204("ok.py"),
    ]
    assert (result.returncode, result.stderr) == (1, "")


def test_empty_file_is_clean(tmp_path):
    project = make_project(tmp_path, {"empty.py": b""})
    result = run_lintml("check", cwd=project)
    assert (result.returncode, result.stdout, result.stderr) == (0, "All checks passed!\n", "")


def test_a_5_mb_file_is_checked_in_reasonable_time(tmp_path, capsys, monkeypatch):
    block = "# {n}: a table of constants, as generated code often is\nVALUE_{n} = ('a fairly long string constant', {n})\n"
    text = "import torch\nmodel.eval\n" + "".join(block.format(n=n) for n in range(45_000)) + "model.train\n"
    assert len(text) > 5_000_000
    project = make_project(tmp_path, {"big.py": text})
    started = time.perf_counter()
    code, out, err = check(project, capsys, monkeypatch, "--no-cache")
    elapsed = time.perf_counter() - started
    assert out.splitlines() == [line_204("big.py", 2), f"big.py:{2 + 2 * 45_000 + 1}:1: LML204 {MSG_TRAIN}"]
    assert (code, err) == (1, "")
    assert elapsed < 60, elapsed


# -- nesting -------------------------------------------------------------------------------

NESTED = {
    "unary": "-" * 1000 + "1",
    "not": "not " * 1000 + "x",
    "sum": "+".join(["1"] * 1000),
    "attributes": ".".join(["a"] * 1000),
    "calls": "f" + "()" * 1000,
    "conditional": " if c else ".join(["1"] * 1000),
}


def test_libcst_alone_cannot_print_a_tree_1000_deep():
    """Why lintml raises the recursion limit while it checks a file: LibCST parses
    these trees, but its own code generation recurses past Python's default limit."""
    import libcst

    module = libcst.parse_module("y = " + NESTED["unary"] + "\n")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        with pytest.raises(RecursionError):
            module.code
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the recursion limit is raised on 3.11+ only")
def test_expressions_nested_1000_deep_are_checked(tmp_path):
    files = {f"{name}.py": f"import torch\nmodel.eval\ny = {expr}\nmodel.train\n" for name, expr in NESTED.items()}
    project = make_project(tmp_path, files)
    result = run_lintml("check", "--output-format", "concise", "--no-cache", "-j", "1", cwd=project)
    expected = []
    for name in sorted(NESTED):
        expected += [line_204(f"{name}.py", 2), f"{name}.py:4:1: LML204 {MSG_TRAIN}"]
    assert result.stdout.splitlines() == expected
    assert (result.returncode, result.stderr) == (1, "")


@pytest.mark.parametrize(
    "expr, message",
    [
        # CPython allows 200 nested brackets; LibCST accepts 1,000 and crashes the
        # process (SIGSEGV) on 20,000, so CPython's parser decides first
        ("(" * 1000 + "1" + ")" * 1000, "too many nested parentheses"),
        ("[" * 20_000 + "]" * 20_000, "too many nested parentheses"),
        # an operator chain 8,000 long: CPython gives up, LibCST's parser crashed
        (
            "+".join(["1"] * 8000),
            "the code is nested too deeply for Python's parser (maximum recursion depth exceeded during ast construction)",
        ),
        # the same chain over many lines: no long line, no deep brackets
        (
            "(\n" + " +\n".join(["1"] * 10_000) + "\n)",
            "the code is nested too deeply for Python's parser (maximum recursion depth exceeded during ast construction)",
        ),
    ],
    ids=["parens-1000", "brackets-20000", "sum-8000", "sum-10000-lines"],
)

def test_nesting_python_rejects_is_LML900_not_a_crash(tmp_path, expr, message):
    project = make_project(tmp_path, {"deep.py": f"import torch\nmodel.eval\ny = {expr}\n", "ok.py": BAD})
    result = run_lintml("check", "--output-format", "concise", "--no-cache", cwd=project)
    (first, second) = result.stdout.splitlines()
    assert first.startswith("deep.py:") and first.endswith(f": LML900 Cannot parse this file: {message}")
    assert second == line_204("ok.py")
    assert (result.returncode, result.stderr) == (1, "")


def test_a_boolean_chain_python_takes_but_libcst_would_crash_on_is_one_line_exit_2(tmp_path):
    # CPython keeps `a and b and ...` flat and accepts it; LibCST nests it and its
    # parser crashed the process (SIGSEGV) on 10,000 terms
    chain = "(\n" + " and\n".join(["x"] * 10_000) + "\n)"
    project = make_project(tmp_path, {"deep.py": f"import torch\nmodel.eval\ny = {chain}\n", "ok.py": BAD})
    result = run_lintml("check", "--output-format", "concise", "--no-cache", cwd=project)
    assert result.stderr == (
        "lintml: error: deep.py: cannot check: the code is nested too deeply for lintml to analyse; "
        "simplify the most deeply nested expression, or exclude the file\n"
    )
    assert (result.returncode, result.stdout.splitlines()) == (2, [line_204("ok.py")])


def test_too_deep_for_lintml_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    # what Python 3.10 (no raised limit), or a tree deeper than the raised limit, gives
    monkeypatch.setattr(lintml.engine, "RECURSION_LIMIT", 0)
    project = make_project(tmp_path, {"deep.py": f"import torch\ny = {NESTED['unary']}\n", "ok.py": BAD})
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        code, out, err = check(project, capsys, monkeypatch, "--no-cache")
    finally:
        sys.setrecursionlimit(limit)
    assert err == (
        "lintml: error: deep.py: cannot check: the code is nested too deeply for lintml to analyse; "
        "simplify the most deeply nested expression, or exclude the file\n"
    )
    assert (code, out.splitlines()) == (2, [line_204("ok.py")])


def test_the_recursion_limit_is_restored(tmp_path, capsys, monkeypatch):
    before = sys.getrecursionlimit()
    project = make_project(tmp_path, {"a.py": f"import torch\ny = {NESTED['sum']}\n"})
    check(project, capsys, monkeypatch, "--no-cache")
    assert sys.getrecursionlimit() == before


# -- files that go wrong -------------------------------------------------------------------


def test_symlink_loops_walked_and_named(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"good.py": BAD, "sub/x.py": BAD})
    (project / "loop_a.py").symlink_to("loop_b.py")
    (project / "loop_b.py").symlink_to("loop_a.py")
    (project / "sub" / "up").symlink_to("..", target_is_directory=True)  # a folder loop: not followed
    (project / "dangling.py").symlink_to("nowhere.py")
    code, out, err = check(project, capsys, monkeypatch)
    assert out.splitlines() == [line_204("good.py"), line_204("sub/x.py")]
    assert err.splitlines() == [
        "lintml: error: dangling.py: cannot read: it is a symbolic link to nowhere.py, which does not exist; fix or remove the link",
        "lintml: error: loop_a.py: cannot read: it is a loop of symbolic links; fix or remove the link",
        "lintml: error: loop_b.py: cannot read: it is a loop of symbolic links; fix or remove the link",
    ]
    assert code == 2
    code, out, err = check(project, capsys, monkeypatch, "loop_a.py", "good.py")
    assert err == "lintml: error: loop_a.py: cannot read: it is a loop of symbolic links; fix or remove the link\n"
    assert (code, out.splitlines()) == (2, [line_204("good.py")])


def test_unreadable_file_is_one_line_exit_2(open_tmp):
    project = make_project(open_tmp / "proj", {"a_secret.py": BAD, "b_open.py": BAD})
    open_to_nobody(project, project / "pyproject.toml", project / "b_open.py")
    (project / "a_secret.py").chmod(0o000)
    code, out, err = as_nobody(project, ["check", "--output-format", "concise", "--no-cache"])
    assert err == "lintml: error: a_secret.py: cannot read: Permission denied\n"
    assert (code, out.splitlines()) == (2, [line_204("b_open.py")])


def test_a_file_deleted_during_the_run(tmp_path, capsys, monkeypatch):
    """The file is listed, then removed before it is read: the real read path fails."""
    project = make_project(tmp_path, {"a.py": BAD, "b_gone.py": BAD, "c.py": BAD})
    listed = lintml.runner.iter_python_files

    def listing_then_deleting(*args, **kwargs):
        for path in listed(*args, **kwargs):
            if path.name == "b_gone.py":
                path.unlink()
            yield path

    monkeypatch.setattr(lintml.runner, "iter_python_files", listing_then_deleting)
    code, out, err = check(project, capsys, monkeypatch)
    assert err == "lintml: error: b_gone.py: cannot read: No such file or directory\n"
    assert (code, out.splitlines()) == (2, [line_204("a.py"), line_204("c.py")])


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "toml, message",
    [
        ('[tool.lintml]\nselect = "LML101"\n', "`select` must be a list of strings"),
        ("[tool.lintml]\nexclude = 3\n", "`exclude` must be a list of strings"),
        ("[tool.lintml]\noutput-format = 7\n", "`output-format` must be one of full, concise, json, sarif, github, gitlab, not 7"),
        ('[tool.lintml]\nignore = ["LML101", 3]\n', "`ignore` must be a list of strings"),
        ('[tool.lintml]\nselect = ["lml204"]\n', "`select` names unknown rule code `lml204` (see `lintml rules`)"),
        (
            '[tool.lintml]\nexclude = ["src/[ab"]\n',
            "`exclude` pattern `src/[ab` has a `[` that is never closed; write `[[]` to match a `[`",
        ),
        (
            '[tool.lintml]\nextend-exclude = ["gen_[z-a].py"]\n',
            "`extend-exclude` pattern `gen_[z-a].py` can never match: `[z-a]` is an empty range",
        ),
        ('[tool.lintml]\nextend-exclude = [""]\n', "`extend-exclude` has an empty pattern ''; remove it"),
        (
            '[tool.lintml.per-file-ignores]\n"tests/[unit" = ["LML2"]\n',
            "`per-file-ignores` pattern `tests/[unit` has a `[` that is never closed; write `[[]` to match a `[`",
        ),
        (
            "[tool.lintml]\nignore = []\nignore = []\n",
            None,  # invalid TOML: the parser's words
        ),
    ],
    ids=["select-str", "exclude-int", "format-int", "ignore-mixed", "lowercase-code", "unclosed", "empty-range", "empty", "pfi-glob", "duplicate-key"],
)
def test_bad_configuration_is_one_line_naming_file_and_key(tmp_path, toml, message):
    project = make_project(tmp_path, {"a.py": BAD}, pyproject=toml)
    result = run_lintml("check", cwd=project)
    pyproject = project / "pyproject.toml"
    if message is None:
        # tomllib's words, with the place of the second `ignore`
        assert result.stderr.startswith(f"lintml: error: {pyproject}: invalid TOML: ")
        assert result.stderr.endswith("(at line 3, column 12)\n") and len(result.stderr.splitlines()) == 1
    else:
        assert result.stderr == f"lintml: error: {pyproject}: {message}\n"
    assert (result.returncode, result.stdout) == (2, "")


def test_bad_glob_on_the_command_line(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": BAD})
    code, out, err = check(project, capsys, monkeypatch, "--extend-exclude", "build,[oops")
    assert err == (
        "lintml: error: command line: `extend-exclude` pattern `[oops` has a `[` that is never closed; "
        "write `[[]` to match a `[`\n"
    )
    assert (code, out) == (2, "")


def test_a_bracket_glob_that_closes_still_works(tmp_path, capsys, monkeypatch):
    project = make_project(
        tmp_path, {"gen_1.py": BAD, "gen_a.py": BAD, "[x].py": BAD}, pyproject='[tool.lintml]\nextend-exclude = ["gen_[0-9].py", "[[]x].py"]\n'
    )
    code, out, _ = check(project, capsys, monkeypatch)
    assert (code, out.splitlines()) == (1, [line_204("gen_a.py")])


# -- --fix writes atomically ---------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o755, 0o600])
def test_fix_replaces_the_file_by_rename_and_keeps_its_mode(tmp_path, capsys, monkeypatch, mode):
    project = make_project(tmp_path, {"a.py": BAD})
    target = project / "a.py"
    target.chmod(mode)
    inode = target.stat().st_ino
    code, out, err = check(project, capsys, monkeypatch, "--fix")
    assert target.read_bytes() == b"model.eval()\n"
    assert target.stat().st_ino != inode  # a new file renamed over the old one
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert sorted(p.name for p in project.iterdir()) == ["a.py", "pyproject.toml"]  # no .lintml-tmp left
    assert (code, out, err) == (0, "", "")


def test_a_failure_while_writing_leaves_the_original_bytes(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": BAD, "b.py": BAD})

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    code, out, err = check(project, capsys, monkeypatch, "--fix")
    assert err.splitlines() == [
        "lintml: error: a.py: cannot write the fixed file: No space left on device; the file was left unchanged",
        "lintml: error: b.py: cannot write the fixed file: No space left on device; the file was left unchanged",
    ]
    assert (project / "a.py").read_bytes() == (project / "b.py").read_bytes() == BAD.encode()
    assert sorted(p.name for p in project.iterdir()) == ["a.py", "b.py", "pyproject.toml"]
    assert code == 2


def test_fix_in_a_read_only_folder_changes_nothing(open_tmp):
    project = make_project(open_tmp / "proj", {"a.py": BAD})
    open_to_nobody(project / "a.py", project / "pyproject.toml")
    project.chmod(0o555)  # nobody can read and search it, not create a file in it
    try:
        code, out, err = as_nobody(project, ["check", "--output-format", "concise", "--no-cache", "--fix"])
    finally:
        project.chmod(0o755)
    assert err == "lintml: error: a.py: cannot write the fixed file: Permission denied; the file was left unchanged\n"
    assert (project / "a.py").read_bytes() == BAD.encode()
    assert sorted(p.name for p in project.iterdir()) == ["a.py", "pyproject.toml"]
    assert code == 2


def test_fix_through_a_symlink_fixes_the_target_and_keeps_the_link(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"real/train.py": BAD})
    (project / "train.py").symlink_to("real/train.py")
    code, out, err = check(project, capsys, monkeypatch, "--fix", "train.py")
    assert (project / "train.py").is_symlink()
    assert os.readlink(project / "train.py") == "real/train.py"
    assert (project / "real" / "train.py").read_bytes() == b"model.eval()\n"
    assert sorted(p.name for p in (project / "real").iterdir()) == ["train.py"]
    assert (code, out, err) == (0, "", "")


def test_fix_keeps_a_latin_1_file_with_a_bom_free_cookie_and_crlf(tmp_path, capsys, monkeypatch):
    before = b"# -*- coding: latin-1 -*-\r\ns = '\xe9'\r\nmodel.eval\r\n"
    project = make_project(tmp_path, {"a.py": before})
    code, _, err = check(project, capsys, monkeypatch, "--fix")
    assert (project / "a.py").read_bytes() == b"# -*- coding: latin-1 -*-\r\ns = '\xe9'\r\nmodel.eval()\r\n"
    assert (code, err) == (0, "")


# -- never executes or imports what it reads -----------------------------------------------

MARKER_CODE = "import pathlib; pathlib.Path(__file__).with_name('MARKER-{name}').touch()\n"


def marker_project(tmp_path: Path) -> Path:
    """A project each of whose Python files, run or imported, leaves a marker file:
    a package, its conftest.py and setup.py, and modules named like the ones lintml
    itself imports (which `python -m lintml` would find first in the current folder)."""
    files = {
        name: MARKER_CODE.format(name=name.replace("/", "-"))
        for name in (
            "pkg/__init__.py",
            "pkg/helpers.py",
            "conftest.py",
            "setup.py",
            "sitecustomize.py",
            "tomllib.py",
            "difflib.py",
            "fnmatch.py",
            "tokenize.py",
            "libcst.py",
            "pygls.py",
        )
    }
    files["train.py"] = (
        "import torch\nimport pkg\nfrom pkg import helpers\n" + MARKER_CODE.format(name="train") + "model.eval\n"
    )
    return make_project(tmp_path / "proj", files)


def markers(project: Path) -> list[str]:
    return sorted(p.name for p in project.rglob("MARKER-*"))


EVAL_LINE_5 = f"train.py:5:1: LML204 {MSG_EVAL}"


def test_check_fix_diff_and_stdin_never_import_the_project(tmp_path):
    project = marker_project(tmp_path)
    source = (project / "train.py").read_text()

    result = run_lintml("check", "--output-format", "concise", cwd=project)
    assert result.stdout.splitlines() == [EVAL_LINE_5]
    assert (result.returncode, result.stderr) == (1, "")

    result = run_lintml("check", "--diff", "train.py", cwd=project)
    assert result.stdout.splitlines()[-2:] == ["-model.eval", "+model.eval()"]
    assert result.returncode == 1

    result = run_lintml("check", "--fix", "-", "--stdin-filename", "train.py", cwd=project, stdin=source)
    assert result.stdout == source.replace("model.eval\n", "model.eval()\n")
    assert result.returncode == 0

    result = run_lintml("check", "--fix", "--output-format", "concise", cwd=project)
    assert (project / "train.py").read_text() == source.replace("model.eval\n", "model.eval()\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

    assert markers(project) == []


def test_flake8_plugin_never_imports_the_project(tmp_path):
    project = marker_project(tmp_path)
    script = Path(sysconfig.get_path("scripts")) / "flake8"
    command = (str(script),) if script.exists() else (sys.executable, "-P", "-m", "flake8")
    import subprocess

    result = subprocess.run(
        [*command, "--isolated", "--select", "LML", "train.py"], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.splitlines() == [EVAL_LINE_5]
    assert result.returncode == 1
    assert markers(project) == []


def test_the_language_server_never_imports_the_project(tmp_path):
    pytest.importorskip("pytest_lsp")
    from lsprotocol import types
    from pytest_lsp import client_capabilities

    from test_lsp import make_client

    project = marker_project(tmp_path)
    train = project / "train.py"

    async def run():
        client = make_client()
        # started from the project folder, as editors start it
        await client.start_io(sys.executable, "-m", "lintml", "lsp", cwd=project)
        try:
            await asyncio.wait_for(
                client.initialize_session(
                    types.InitializeParams(
                        capabilities=client_capabilities("visual-studio-code"), root_uri=project.as_uri()
                    )
                ),
                20,
            )
            uri = train.as_uri()

            async def publications(count: int):
                while len([p for p in client.published if p.uri == uri]) < count:
                    await asyncio.sleep(0.02)

            client.text_document_did_open(
                types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, train.read_text()))
            )
            await asyncio.wait_for(publications(1), 20)
            client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri)))
            await asyncio.wait_for(publications(2), 20)
            codes = [[(d.code, d.range.start.line) for d in p.diagnostics] for p in client.published]
            await asyncio.wait_for(client.shutdown_session(), 20)
            return codes
        finally:
            await asyncio.wait_for(client.stop(), 20)

    codes = asyncio.run(run())
    assert codes == [[("LML204", 4)], [("LML204", 4)]]
    assert markers(project) == []
