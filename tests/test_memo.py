"""The run memo (lintml.memo): a plain check of folders run again with nothing changed
prints what the first run printed, with its exit status, without checking anything; any
change to what a run can read, or to the command line, runs it again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lintml import memo

from helpers import MSG_EVAL, _env, lintml_main, make_project

TRAIN = "import torch\n\n\ndef evaluate(model):\n    model.eval\n    return model\n"
CLEAN = "x = 1\n"
CALLED = "model.eval()\n"  # and the same size, with a finding:
UNCALLED = "model.eval #\n"


@pytest.fixture
def engine_calls(monkeypatch):
    """Every text the engine checks, in this process."""
    import lintml.engine

    calls: list[str] = []
    real = lintml.engine.lint_source

    def counting(text, filename, *args, **kwargs):
        calls.append(filename)
        return real(text, filename, *args, **kwargs)

    monkeypatch.setattr(lintml.engine, "lint_source", counting)
    return calls


@pytest.fixture
def stat_only(monkeypatch):
    """Nothing is racy: a change is seen through `stat` alone (fresh files are racy,
    and their contents would be compared too)."""
    monkeypatch.setattr(memo, "RACY_NS", -(10**12))


def _project(root: Path) -> Path:
    return make_project(root, {"a.py": TRAIN, "pkg/__init__.py": "", "pkg/b.py": CALLED})


def _memos() -> list[str]:
    folder = Path(os.environ["LINTML_CACHE_DIR"]) / memo.FOLDER
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _twice(args, project, capsys, monkeypatch, between=None):
    first = lintml_main(args, project, capsys, monkeypatch)
    if between is not None:
        between()
    replays = memo.replays
    second = lintml_main(args, project, capsys, monkeypatch)
    return first, second, memo.replays - replays


@pytest.mark.parametrize("fmt", ["full", "concise", "json", "sarif", "github", "gitlab"])
def test_a_second_run_replays_the_same_output_and_status(tmp_path, capsys, monkeypatch, engine_calls, fmt):
    project = _project(tmp_path / "p")
    first, second, replayed = _twice(["check", "--output-format", fmt, "."], project, capsys, monkeypatch)
    assert replayed == 1
    assert second == first
    assert first[0] == 1
    assert engine_calls == ["a.py", "pkg/__init__.py", "pkg/b.py"]  # the first run only


def test_the_replayed_run_checks_nothing(tmp_path, capsys, monkeypatch, engine_calls):
    project = _project(tmp_path / "p")
    lintml_main(["check", "--output-format", "concise"], project, capsys, monkeypatch)
    engine_calls.clear()
    code, out, err = lintml_main(["check", "--output-format", "concise"], project, capsys, monkeypatch)
    assert (code, out, err) == (1, f"a.py:5:5: LML204 {MSG_EVAL}\n", "")
    assert engine_calls == []


def test_exit_zero_and_a_clean_project_are_replayed_as_they_were(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path / "p", {"clean.py": CLEAN})
    first, second, replayed = _twice(["check", "--output-format", "concise"], project, capsys, monkeypatch)
    assert (replayed, first, second) == (1, (0, "", ""), (0, "", ""))
    empty = make_project(tmp_path / "empty", {})
    first, second, replayed = _twice(["check"], empty, capsys, monkeypatch)
    assert first == second == (0, "All checks passed!\n", "lintml: warning: no Python files found\n")
    assert replayed == 1


def _edit(path: Path, text: str):
    return lambda: path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    "change, expected",
    [
        ("edit", ["a.py:5:5: LML204", "pkg/b.py:1:1: LML204"]),  # the same size: only the times tell
        ("add", ["a.py:5:5: LML204", "pkg/c.py:1:1: LML204"]),
        ("remove", []),
        ("config", []),
        ("config-above", []),
    ],
)
def test_any_change_to_what_a_run_reads_runs_it_again(tmp_path, capsys, monkeypatch, engine_calls, stat_only, change, expected):
    project = make_project(tmp_path / "top" / "p", {"a.py": TRAIN, "pkg/__init__.py": "", "pkg/b.py": CALLED}, pyproject=None)
    (tmp_path / "top" / "pyproject.toml").write_text("[tool.lintml]\n", encoding="utf-8")
    changes = {
        "edit": _edit(project / "pkg" / "b.py", UNCALLED),
        "add": _edit(project / "pkg" / "c.py", "model.eval\n"),
        "remove": lambda: (project / "a.py").unlink(),
        "config": _edit(tmp_path / "top" / "pyproject.toml", '[tool.lintml]\nignore = ["LML204"]\n'),
        # a nearer pyproject.toml with [tool.lintml] now configures the project
        "config-above": _edit(project / "pyproject.toml", '[tool.lintml]\nignore = ["LML204"]\n'),
    }
    args = ["check", "--output-format", "concise", "."]
    first, second, replayed = _twice(args, project, capsys, monkeypatch, changes[change])
    assert replayed == 0
    assert first[1] == f"a.py:5:5: LML204 {MSG_EVAL}\n"
    lines = [line.split(" `")[0] for line in second[1].splitlines()]
    assert lines == expected
    # and the run after that replays the new output
    replays = memo.replays
    assert lintml_main(args, project, capsys, monkeypatch) == second
    assert memo.replays == replays + 1


def test_a_file_edited_in_the_same_timestamp_tick_is_compared_by_its_contents(
    tmp_path, capsys, monkeypatch, engine_calls
):
    """On a file system with coarse timestamps (here: whole seconds, no change time) an
    edit right after a run can leave the `stat` as it was; the file was racy when
    recorded, so its contents were recorded and are compared."""
    real = memo._signature

    def coarse(path):
        signature = real(path)
        if signature is None:
            return None
        mode, mtime, _ctime, size, _ino, dev = signature
        return (mode, mtime // 10**9 * 10**9, 0, size, 0, dev)

    monkeypatch.setattr(memo, "_signature", coarse)
    project = _project(tmp_path / "p")
    target = project / "pkg" / "b.py"
    before = os.stat(target)
    coarse_before = coarse(str(target))
    args = ["check", "--output-format", "concise", "."]

    def same_stat_edit():
        target.write_text(UNCALLED, encoding="utf-8")
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))

    _, second, replayed = _twice(args, project, capsys, monkeypatch, same_stat_edit)
    assert coarse(str(target)) == coarse_before
    assert replayed == 0
    assert "pkg/b.py:1:1: LML204" in second[1]
    assert second == lintml_main(["check", "--no-cache", "--output-format", "concise", "."], project, capsys, monkeypatch)


def test_a_new_command_line_is_not_replayed(tmp_path, capsys, monkeypatch):
    project = _project(tmp_path / "p")
    lintml_main(["check", "--output-format", "concise"], project, capsys, monkeypatch)
    replays = memo.replays
    code, out, _ = lintml_main(["check", "--output-format", "concise", "--ignore", "LML204"], project, capsys, monkeypatch)
    assert (code, out, memo.replays) == (0, "", replays)
    # from another folder, names are printed from there: another command
    code, out, _ = lintml_main(["check", "--output-format", "concise", "p"], tmp_path, capsys, monkeypatch)
    assert (out, memo.replays) == (f"p/a.py:5:5: LML204 {MSG_EVAL}\n", replays)


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--fix", "."],
        ["check", "--diff", "."],
        ["check", "--no-cache", "."],
        ["check", "a.py"],  # files, not folders: pre-commit's runs are not memoised
    ],
)
def test_runs_that_are_not_memoised(tmp_path, capsys, monkeypatch, args):
    project = _project(tmp_path / "p")
    lintml_main(args, project, capsys, monkeypatch)
    assert _memos() == []


def test_standard_input_is_not_memoised(tmp_path, capsys, monkeypatch):
    project = _project(tmp_path / "p")
    monkeypatch.setattr(sys, "stdin", open(project / "a.py"))
    lintml_main(["check", "-"], project, capsys, monkeypatch)
    assert _memos() == []


def test_an_edited_lintml_is_not_replayed(tmp_path, capsys, monkeypatch, stat_only):
    """lintml's own modules are watched like the project's files (here a stand-in
    package folder, as the installed one must not be touched)."""
    package = tmp_path / "package"
    package.mkdir()
    (package / "rules.py").write_text("A = 1\n", encoding="utf-8")
    monkeypatch.setattr(memo, "_PACKAGE", str(package))
    project = _project(tmp_path / "p")
    lintml_main(["check"], project, capsys, monkeypatch)
    (package / "rules.py").write_text("A = 2\n", encoding="utf-8")
    replays = memo.replays
    lintml_main(["check"], project, capsys, monkeypatch)
    assert memo.replays == replays
    lintml_main(["check"], project, capsys, monkeypatch)
    assert memo.replays == replays + 1  # unchanged since the last run: replayed
    (package / "more.py").write_text("", encoding="utf-8")  # a module added
    lintml_main(["check"], project, capsys, monkeypatch)
    assert memo.replays == replays + 1


def test_a_damaged_memo_is_a_miss(tmp_path, capsys, monkeypatch):
    project = _project(tmp_path / "p")
    first = lintml_main(["check"], project, capsys, monkeypatch)
    (memo_file,) = _memos()
    (Path(os.environ["LINTML_CACHE_DIR"]) / memo.FOLDER / memo_file).write_bytes(b"\x00garbage")
    replays = memo.replays
    assert lintml_main(["check"], project, capsys, monkeypatch) == first
    assert memo.replays == replays


def test_at_most_max_memos_are_kept(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memo, "MAX_MEMOS", 2)
    project = _project(tmp_path / "p")
    for fmt in ("full", "concise", "json"):
        lintml_main(["check", "--output-format", fmt], project, capsys, monkeypatch)
    assert len(_memos()) == 2


def test_a_project_too_large_to_watch_is_not_memoised(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(memo, "MAX_WATCHED", 5)
    project = _project(tmp_path / "p")
    lintml_main(["check"], project, capsys, monkeypatch)
    assert _memos() == []


def test_the_default_memo_lives_in_the_project_cache_and_is_found_from_a_subfolder(tmp_path, monkeypatch):
    """Without --cache-dir or $LINTML_CACHE_DIR: `.lintml_cache/runs` in the project
    root; found again walking up from the checked folder."""
    monkeypatch.delenv("LINTML_CACHE_DIR")
    project = _project(tmp_path / "p")
    monkeypatch.chdir(project)
    key_args = ["check", "pkg"]
    assert memo.replay(key_args) is None
    from lintml import cli

    assert cli.main(key_args) == 0
    assert [p.name for p in (project / ".lintml_cache" / memo.FOLDER).iterdir()] == [memo.memo_name(memo.key(key_args))]
    assert memo.replay(key_args) == 0


def test_a_real_second_run_prints_the_same_and_imports_little(tmp_path):
    """`python -m lintml check` twice, as a user runs it: the same bytes and status; the
    second imports neither argparse nor LibCST (it replays)."""
    project = _project(tmp_path / "p")
    env = _env()
    command = [sys.executable, "-m", "lintml", "check", "."]
    first = subprocess.run(command, cwd=project, env=env, capture_output=True, timeout=120)
    probe = (
        "import runpy, sys\nsys.argv = ['lintml', 'check', '.']\n"
        "try:\n    runpy.run_module('lintml', run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
        "print('IMPORTED', 'argparse' in sys.modules, 'libcst' in sys.modules, file=sys.stderr)\nsys.exit(code)\n"
    )
    second = subprocess.run([sys.executable, "-c", probe], cwd=project, env=env, capture_output=True, timeout=120)
    assert first.returncode == second.returncode == 1
    assert second.stdout == first.stdout
    assert first.stdout.count(b"LML204") == 1
    assert second.stderr.decode().splitlines()[-1] == "IMPORTED False False"


def test_the_installed_libcst_is_watched(tmp_path, capsys, monkeypatch):
    """LibCST's parser decides what parses: an upgrade (its files rewritten) runs again."""
    import libcst

    project = _project(tmp_path / "p")
    lintml_main(["check"], project, capsys, monkeypatch)
    (memo_file,) = _memos()
    import marshal

    watched = dict(marshal.loads((Path(os.environ["LINTML_CACHE_DIR"]) / memo.FOLDER / memo_file).read_bytes())["watched"])
    folder = os.path.dirname(libcst.__file__)
    assert libcst.__file__ in watched and folder in watched and os.path.join(folder, "_version.py") in watched
    assert any(os.path.basename(path).startswith("native") for path in watched)


def test_a_failing_write_is_not_followed_by_a_second_run(tmp_path, capsys, monkeypatch, engine_calls):
    """Printing a replayed output fails as printing a run's output does (exit 2); the run
    is not done again behind it, which would print a second copy."""
    from lintml import cli

    project = _project(tmp_path / "p")
    lintml_main(["check", "--output-format", "concise"], project, capsys, monkeypatch)
    engine_calls.clear()

    class ClosedPipe:
        writes = 0

        def write(self, text):
            ClosedPipe.writes += 1
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["check", "--output-format", "concise"]) == cli.EXIT_ERROR
    assert ClosedPipe.writes == 1 and engine_calls == []
