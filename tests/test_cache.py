"""The result cache: a warm run reads entries and prints what a cold run printed, in
every format; entries go stale when the file, the configuration or lintml changes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lintml.runner
from lintml import cache as cache_module
from lintml import memo

from helpers import SAMPLE, SAMPLE_FIXED, _env, lintml_main, make_project

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "fixtures" / "notebooks" / "evaluate.ipynb"
FORMATS = ("full", "concise", "json", "sarif", "gitlab", "github")


def _project(root: Path, pyproject: str = "[tool.lintml]\n") -> Path:
    files = {
        "a.py": SAMPLE,
        "pkg/b.py": "import torch\nmodel.eval\n",
        "pkg/clean.py": "x = 1\n",
        "broken.py": "def f(:\n",
        "tests/test_c.py": SAMPLE,
    }
    make_project(root, files, pyproject)
    shutil.copy(NOTEBOOK, root / "nb.ipynb")
    return root


@pytest.fixture(autouse=True)
def _no_run_memo(monkeypatch):
    """These tests are about the per-file cache under it: a replayed run memo
    (lintml.memo, tests/test_memo.py) would answer before the cache is read."""
    monkeypatch.setattr(memo, "replay", lambda argv: None)


def _cache_dir() -> Path:
    return Path(os.environ["LINTML_CACHE_DIR"])  # tests/conftest.py: one per test


def _entries(folder: Path) -> list[Path]:
    return sorted((folder / cache_module.FORMAT).glob("*.json"))


@pytest.fixture
def engine_calls(monkeypatch):
    """How many times the linter ran on a file (Python files and notebooks)."""
    calls = []
    real_lint_text, real_notebook = lintml.runner.lint_text, lintml.runner.lint_notebook

    def lint_text(*args, **kwargs):
        calls.append(args[1])
        return real_lint_text(*args, **kwargs)

    def lint_notebook(*args, **kwargs):
        calls.append(args[1])
        return real_notebook(*args, **kwargs)

    monkeypatch.setattr(lintml.runner, "lint_text", lint_text)
    monkeypatch.setattr(lintml.runner, "lint_notebook", lint_notebook)
    return calls


def _forbid_linting(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError(f"the linter ran on {args[1]} in a warm run")

    monkeypatch.setattr(lintml.runner, "lint_text", fail)
    monkeypatch.setattr(lintml.runner, "lint_notebook", fail)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_warm_run_reads_the_cache_and_prints_the_same(tmp_path, capsys, monkeypatch, fmt):
    project = _project(tmp_path / "p")
    cold = lintml_main(["check", "--output-format", fmt, "-j", "1"], project, capsys, monkeypatch)
    assert cold[0] == 1
    assert len(_entries(_cache_dir())) == 6  # every file, the notebook and the syntax error too
    _forbid_linting(monkeypatch)
    warm = lintml_main(["check", "--output-format", fmt, "-j", "1"], project, capsys, monkeypatch)
    assert warm == cold


def test_cached_findings_keep_fixes_cells_and_noqa_lines(tmp_path, capsys, monkeypatch):
    project = _project(tmp_path / "p")
    monkeypatch.chdir(project)  # the findings' filenames are relative to it
    cold = lintml.runner.run_targets([(project, _config(project))], cache=True)
    _forbid_linting(monkeypatch)
    warm = lintml.runner.run_targets([(project, _config(project))], cache=True)
    assert warm.findings == cold.findings
    assert [f.noqa_line for f in warm.findings] == [f.noqa_line for f in cold.findings]
    assert any(f.fix is not None for f in warm.findings)
    assert any(f.cell is not None for f in warm.findings)
    assert warm.caches[0].hits == 6 and warm.caches[0].writes == 0


def _config(project: Path):
    from lintml.config import discover

    return discover(project)


def test_a_changed_file_is_checked_again(tmp_path, capsys, monkeypatch, engine_calls):
    project = _project(tmp_path / "p")
    lintml_main(["check"], project, capsys, monkeypatch)
    assert len(engine_calls) == 6
    engine_calls.clear()
    (project / "pkg" / "clean.py").write_text("model.train\n")
    code, out, _ = lintml_main(["check", "--output-format", "concise"], project, capsys, monkeypatch)
    assert engine_calls == ["pkg/clean.py"]
    assert "pkg/clean.py:1:1: LML204" in out


@pytest.mark.parametrize(
    "args, pyproject",
    [
        (["--select", "LML2"], "[tool.lintml]\n"),
        (["--ignore", "LML204"], "[tool.lintml]\n"),
        (["--extend-select", "LML901"], "[tool.lintml]\n"),
        ([], '[tool.lintml]\nper-file-ignores = { "pkg/*" = ["LML204"] }\n'),
    ],
)
def test_a_changed_configuration_is_a_miss(tmp_path, capsys, monkeypatch, engine_calls, args, pyproject):
    project = _project(tmp_path / "p")
    lintml_main(["check"], project, capsys, monkeypatch)
    engine_calls.clear()
    (project / "pyproject.toml").write_text(pyproject)
    expected = lintml_main(["check", "--no-cache", "--output-format", "json", *args], project, capsys, monkeypatch)
    engine_calls.clear()
    got = lintml_main(["check", "--output-format", "json", *args], project, capsys, monkeypatch)
    assert got == expected
    assert engine_calls  # at least the files whose enabled codes changed were checked again
    if pyproject != "[tool.lintml]\n":  # per-file-ignores: only the files it covers
        assert sorted(engine_calls) == ["pkg/b.py", "pkg/clean.py"]


def test_another_lintml_version_is_a_miss(tmp_path, capsys, monkeypatch, engine_calls):
    project = _project(tmp_path / "p")
    lintml_main(["check"], project, capsys, monkeypatch)
    engine_calls.clear()
    monkeypatch.setattr(cache_module, "__version__", "99.0.0")
    cache_module.code_digest.cache_clear()
    try:
        lintml_main(["check"], project, capsys, monkeypatch)
    finally:
        cache_module.code_digest.cache_clear()
    assert len(engine_calls) == 6


def test_no_cache_neither_reads_nor_writes(tmp_path, capsys, monkeypatch, engine_calls):
    project = _project(tmp_path / "p")
    monkeypatch.delenv("LINTML_CACHE_DIR")
    for _ in range(2):
        lintml_main(["check", "--no-cache"], project, capsys, monkeypatch)
    assert len(engine_calls) == 12
    assert not (project / ".lintml_cache").exists()


def test_the_default_folder_is_in_the_project_root_with_a_tag_and_a_gitignore(tmp_path, capsys, monkeypatch):
    project = _project(tmp_path / "p")
    monkeypatch.delenv("LINTML_CACHE_DIR")
    lintml_main(["check", "pkg"], project, capsys, monkeypatch)
    folder = project / ".lintml_cache"
    assert (folder / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert len(_entries(folder)) == 2
    # the cache folder itself is never checked
    code, out, _ = lintml_main(["check", "--output-format", "concise"], project, capsys, monkeypatch)
    assert ".lintml_cache" not in out


def test_cache_dir_option(tmp_path, capsys, monkeypatch):
    project = _project(tmp_path / "p")
    lintml_main(["check", "--cache-dir", str(tmp_path / "elsewhere")], project, capsys, monkeypatch)
    assert len(_entries(tmp_path / "elsewhere")) == 6
    assert not _entries(_cache_dir())


def test_clean_removes_the_cache_and_says_so(tmp_path, capsys, monkeypatch):
    project = _project(tmp_path / "p")
    monkeypatch.delenv("LINTML_CACHE_DIR")
    lintml_main(["check"], project / "pkg", capsys, monkeypatch)  # from a subfolder: the root's cache
    assert (project / ".lintml_cache").is_dir()
    code, out, err = lintml_main(["clean"], project / "pkg", capsys, monkeypatch)
    assert code == 0 and err == ""
    assert out == f"removed {project.resolve() / '.lintml_cache'}\n"
    assert not (project / ".lintml_cache").exists()
    code, out, _ = lintml_main(["clean"], project, capsys, monkeypatch)
    assert (code, out) == (0, "no cache to remove\n")


def test_clean_never_deletes_a_folder_lintml_did_not_make(tmp_path, capsys, monkeypatch):
    project = _project(tmp_path / "p")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("keep")
    code, out, err = lintml_main(["clean", "--cache-dir", str(precious)], project, capsys, monkeypatch)
    assert code == 0
    assert (precious / "keep.txt").exists()
    assert "not a lintml cache folder" in err
    lintml_main(["check", "--cache-dir", str(tmp_path / "c")], project, capsys, monkeypatch)
    code, out, _ = lintml_main(["clean", "--cache-dir", str(tmp_path / "c")], project, capsys, monkeypatch)
    assert out == f"removed {tmp_path / 'c'}\n"
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("garbage", [b"", b"{not json", b'{"key": 1}', b'{"key": "x", "findings": [1]}', b"\xff\xfe"])
def test_a_corrupt_entry_is_a_miss(tmp_path, capsys, monkeypatch, engine_calls, garbage):
    project = _project(tmp_path / "p")
    cold = lintml_main(["check", "--output-format", "json"], project, capsys, monkeypatch)
    for entry in _entries(_cache_dir()):
        entry.write_bytes(garbage)
    engine_calls.clear()
    again = lintml_main(["check", "--output-format", "json"], project, capsys, monkeypatch)
    assert again == cold
    assert len(engine_calls) == 6
    # and the entries were written again
    _forbid_linting(monkeypatch)
    assert lintml_main(["check", "--output-format", "json"], project, capsys, monkeypatch) == cold


def test_a_corrupt_entry_with_the_right_key_is_a_miss(tmp_path, capsys, monkeypatch, engine_calls):
    project = _project(tmp_path / "p")
    cold = lintml_main(["check", "--output-format", "json"], project, capsys, monkeypatch)
    for entry in _entries(_cache_dir()):
        data = json.loads(entry.read_text())
        data["findings"] = [["LML204", "half"]] if data["findings"] else [None]
        entry.write_text(json.dumps(data))
    assert lintml_main(["check", "--output-format", "json"], project, capsys, monkeypatch) == cold


def test_an_unwritable_cache_folder_is_no_error(tmp_path, capsys, monkeypatch):
    project = _project(tmp_path / "p")
    blocker = tmp_path / "file"
    blocker.write_text("")
    expected = lintml_main(["check", "--no-cache"], project, capsys, monkeypatch)
    assert lintml_main(["check", "--cache-dir", str(blocker / "sub")], project, capsys, monkeypatch) == expected


def test_concurrent_runs_leave_a_valid_cache(tmp_path, capsys, monkeypatch):
    project = tmp_path / "p"
    shutil.copytree(REPO / "fixtures" / "rules", project / "rules")
    (project / "pyproject.toml").write_text("[tool.lintml]\nextend-select = ['LML']\n")
    command = [sys.executable, "-m", "lintml", "check", "--output-format", "json", "-j", "1", "."]
    runs = [subprocess.Popen(command, cwd=project, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert len({out for out, _ in outputs}) == 1
    assert all(b"Traceback" not in err for _, err in outputs)
    entries = _entries(_cache_dir())
    assert len(entries) == len(list(project.rglob("*.py")))
    for entry in entries:
        json.loads(entry.read_text())
    assert not [p for p in (_cache_dir() / cache_module.FORMAT).iterdir() if p.suffix != ".json"]  # no temporaries
    _forbid_linting(monkeypatch)
    code, out, _ = lintml_main(["check", "--output-format", "json", "."], project, capsys, monkeypatch)
    assert out.encode() == outputs[0][0].replace(b"\r\n", b"\n")


def test_standard_input_is_never_cached(tmp_path, monkeypatch):
    project = _project(tmp_path / "p")
    completed = subprocess.run(
        [sys.executable, "-m", "lintml", "check", "-", "--stdin-filename", "a.py"],
        cwd=project, input=SAMPLE.encode(), capture_output=True, env=_env(),
    )
    assert completed.returncode == 1
    assert not _cache_dir().exists() or not _entries(_cache_dir())


def test_internal_errors_are_not_cached(tmp_path, capsys, monkeypatch):
    from lintml.checks.modes import ModeMethodNotCalled

    project = make_project(tmp_path / "p", {"a.py": "model.eval\n"})

    def crash(self, node):
        raise RuntimeError("boom")

    with monkeypatch.context() as patch:
        patch.setattr(ModeMethodNotCalled, "visit_Expr", crash)
        code, _, err = lintml_main(["check"], project, capsys, monkeypatch)
        assert code == 2 and "crashed on a.py" in err
    assert not _entries(_cache_dir())
    code, out, err = lintml_main(["check", "--output-format", "concise"], project, capsys, monkeypatch)
    assert code == 1 and err == "" and "a.py:1:1: LML204" in out


def test_fix_never_uses_stale_fixes_and_fixes_a_cached_file(tmp_path, capsys, monkeypatch, engine_calls):
    project = make_project(tmp_path / "p", {"a.py": SAMPLE, "clean.py": "x = 1\n", "nofix.py": "torch.set_grad_enabled()\n"})
    lintml_main(["check"], project, capsys, monkeypatch)
    engine_calls.clear()
    code, out, _ = lintml_main(["check", "--fix"], project, capsys, monkeypatch)
    # the file with fixes is fixed from its bytes; the others come from the cache
    assert set(engine_calls) == {"a.py"}
    assert (project / "a.py").read_text(encoding="utf-8") == SAMPLE_FIXED
    engine_calls.clear()
    expected = lintml_main(["check", "--no-cache", "--output-format", "json"], project, capsys, monkeypatch)
    engine_calls.clear()
    assert lintml_main(["check", "--output-format", "json"], project, capsys, monkeypatch) == expected
    assert engine_calls == ["a.py"]  # changed by the fix: checked again


def test_diff_with_a_warm_cache_prints_the_same_diff(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path / "p", {"a.py": SAMPLE, "clean.py": "x = 1\n"})
    cold = lintml_main(["check", "--diff"], project, capsys, monkeypatch)
    lintml_main(["check"], project, capsys, monkeypatch)
    assert lintml_main(["check", "--diff"], project, capsys, monkeypatch) == cold
    assert (project / "a.py").read_text(encoding="utf-8") == SAMPLE


def test_prune_deletes_entries_unused_for_long(tmp_path):
    project = _project(tmp_path / "p")
    store = cache_module.Cache(tmp_path / "c")
    for name in ("a.py", "pkg/b.py"):
        store.put(project / name, "k", [])
    old = _entries(tmp_path / "c")[0]
    long_ago = old.stat().st_mtime - (cache_module.MAX_AGE_DAYS + 1) * 86400
    os.utime(old, (long_ago, long_ago))
    assert store.prune() == 1
    assert len(_entries(tmp_path / "c")) == 1
    # at most once a day
    os.utime(_entries(tmp_path / "c")[0], (long_ago, long_ago))
    assert store.prune() == 0


def test_a_warm_run_does_not_import_libcst(tmp_path):
    """A run served from the cache never imports the checks, hence never LibCST (the
    150 ms start-up target of issue 7); a cold run does."""
    project = _project(tmp_path / "p")
    probe = (
        "import sys\nfrom lintml.cli import main\ncode = main(['check', '--output-format', 'concise', '.'])\n"
        "print('libcst imported' if 'libcst' in sys.modules else 'libcst not imported', code)\n"
    )
    runs = [subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, env=_env()) for _ in range(2)]
    cold, warm = (run.stdout.splitlines() for run in runs)
    assert cold[-1] == "libcst imported 1"
    assert warm[-1] == "libcst not imported 1"
    assert warm[:-1] == cold[:-1]
    assert any(line.startswith("nb.ipynb:cell ") for line in warm)  # notebooks come from the cache too
