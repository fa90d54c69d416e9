"""Checking in a process pool: the same output as in one process, internal errors
reported the same way, and no pool at all for a few files."""

from __future__ import annotations

import concurrent.futures
import io
import shutil
import sys
from pathlib import Path

import pytest

import lintml.runner
from helpers import lintml_main

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the tests patch checks, which forked workers inherit")


def _forty_files(root: Path) -> Path:
    """~40 files: the rules' fixtures (syntax errors included) and the demo."""
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.lintml]\nextend-select = ['LML']\n")
    rules = sorted((REPO / "fixtures" / "rules").rglob("*.py"))[:30]
    for number, path in enumerate(rules):
        target = root / "rules" / f"{number:02d}_{path.parent.name}_{path.name}"
        target.parent.mkdir(exist_ok=True)
        shutil.copy(path, target)
    shutil.copytree(REPO / "fixtures" / "demo", root / "demo", ignore=shutil.ignore_patterns("pyproject.toml", "__pycache__"))
    return root


@pytest.fixture
def pools(monkeypatch):
    """The process pools started."""
    started = []
    real = concurrent.futures.ProcessPoolExecutor

    class Counting(real):
        def __init__(self, *args, **kwargs):
            started.append(kwargs.get("max_workers"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Counting)
    return started


@pytest.fixture
def no_pool(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a process pool was started")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", refuse)


@pytest.mark.parametrize("fmt", ["concise", "json", "full"])
def test_the_pool_prints_what_one_process_prints(tmp_path, capsys, monkeypatch, pools, fmt):
    project = _forty_files(tmp_path / "p")
    assert len(list(project.rglob("*.py"))) >= 38
    serial = lintml_main(["check", "--no-cache", "-j", "1", "--output-format", fmt], project, capsys, monkeypatch)
    assert pools == []
    parallel = lintml_main(["check", "--no-cache", "-j", "3", "--output-format", fmt], project, capsys, monkeypatch)
    assert pools == [3]
    assert parallel == serial
    assert serial[0] == 1


def test_the_pool_fills_the_cache_for_the_next_run(tmp_path, capsys, monkeypatch, pools):
    project = _forty_files(tmp_path / "p")
    cold = lintml_main(["check", "-j", "2", "--output-format", "json"], project, capsys, monkeypatch)
    assert pools == [2]

    def fail(*args, **kwargs):
        raise AssertionError("linted in a warm run")

    monkeypatch.setattr(lintml.runner, "lint_text", fail)
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", fail)  # all cached: no pool
    assert lintml_main(["check", "-j", "2", "--output-format", "json"], project, capsys, monkeypatch) == cold


def test_a_crashing_check_in_a_worker_is_reported_as_in_one_process(tmp_path, capsys, monkeypatch, pools):
    from lintml.checks.modes import ModeMethodNotCalled

    def crash(self, node):
        raise RuntimeError("boom")

    monkeypatch.setattr(ModeMethodNotCalled, "visit_Expr", crash)
    project = _forty_files(tmp_path / "p")
    serial = lintml_main(["check", "--no-cache", "-j", "1", "--output-format", "concise"], project, capsys, monkeypatch)
    parallel = lintml_main(["check", "--no-cache", "-j", "2", "--output-format", "concise"], project, capsys, monkeypatch)
    assert pools == [2]
    assert parallel == serial
    code, _, err = serial
    assert code == 2
    assert "lintml: internal error: LML204 crashed on " in err


def test_an_unexpected_exception_in_a_worker_exits_2_as_in_one_process(tmp_path, capsys, monkeypatch, pools):
    real = lintml.runner.process_text

    def explode(text, filename, *args, **kwargs):
        if filename.endswith("data.py"):
            raise RuntimeError("unexpected")
        return real(text, filename, *args, **kwargs)

    monkeypatch.setattr(lintml.runner, "process_text", explode)
    project = _forty_files(tmp_path / "p")
    results = []
    for jobs in ("1", "2"):
        code, out, err = lintml_main(["check", "--no-cache", "-j", jobs], project, capsys, monkeypatch)
        results.append((code, out, err.splitlines()[-1]))
    assert pools == [2]
    assert results[0] == results[1] == (2, "", "lintml: internal error: RuntimeError('unexpected'); please report this")


@pytest.mark.parametrize("count", [1, 3, 7])
def test_a_few_files_are_checked_in_this_process(tmp_path, capsys, monkeypatch, no_pool, count):
    project = tmp_path / "p"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.lintml]\n")
    for number in range(count):
        (project / f"m{number}.py").write_text("model.eval\n")
    code, out, _ = lintml_main(["check", "-j", "8", "--output-format", "concise"], project, capsys, monkeypatch)
    assert code == 1 and len(out.splitlines()) == count


def test_fix_stays_in_this_process(tmp_path, capsys, monkeypatch, no_pool):
    project = _forty_files(tmp_path / "p")
    code, _, err = lintml_main(["check", "--no-cache", "-j", "4", "--fix"], project, capsys, monkeypatch)
    assert "Traceback" not in err


def test_jobs_must_be_a_positive_number(tmp_path, capsys, monkeypatch):
    code, _, err = lintml_main(["check", "-j", "0"], tmp_path, capsys, monkeypatch)
    assert code == 2 and "must be 1 or more" in err


# -- the progress line ------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_updating_line_cleared_at_the_end(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    stream = _Terminal()
    assert lintml.runner.Progress.wanted(stream)
    progress = lintml.runner.Progress(stream, interval=0)
    for done in range(1, 61):
        progress(done, 60)
    progress.clear()
    text = stream.getvalue()
    assert "\n" not in text
    assert "\r\x1b[Kchecked 60/60 files (" in text
    assert text.endswith("files/s)\r\x1b[K")


def test_no_progress_for_few_files_off_a_terminal_or_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    stream = _Terminal()
    progress = lintml.runner.Progress(stream)
    for done in range(1, 51):
        progress(done, 50)
    progress.clear()
    assert stream.getvalue() == ""
    assert not lintml.runner.Progress.wanted(io.StringIO())
    monkeypatch.setenv("CI", "true")
    assert not lintml.runner.Progress.wanted(stream)


def test_progress_goes_to_stderr_never_stdout(tmp_path, capsys, monkeypatch):
    project = _forty_files(tmp_path / "p")
    for number in range(20):
        (project / f"extra{number}.py").write_text("x = 1\n")
    expected = lintml_main(["check", "--no-cache", "--output-format", "json"], project, capsys, monkeypatch)
    monkeypatch.setattr(lintml.runner.Progress, "wanted", staticmethod(lambda stream: True))
    code, out, err = lintml_main(["check", "--no-cache", "--output-format", "json"], project, capsys, monkeypatch)
    assert (code, out) == expected[:2]
    assert "checked " in err and "files/s)" in err
    assert err.endswith("\r\x1b[K")


def test_batches_send_the_largest_files_first_in_shrinking_batches(tmp_path):
    """What the workers are sent: every file once; the largest first (a long file last
    would leave one worker checking while the others idle); each batch a share of the
    bytes left, so the last batches are the lightest; at most BATCH_SIZE files a batch;
    files of one size in path order."""
    from types import SimpleNamespace

    jobs = []
    for number in range(100):
        path = tmp_path / f"f{number:03d}.py"
        path.write_text("x = 1\n" * (1 + (number * 37) % 23))
        jobs.append(SimpleNamespace(path=path))
    jobs.append(SimpleNamespace(path=tmp_path / "gone.py"))  # removed since it was found: size 0, still sent
    size = {index: (job.path.stat().st_size if job.path.exists() else 0) for index, job in enumerate(jobs)}
    batches = lintml.runner.batch_order(jobs, 2)
    order = [index for batch in batches for index in batch]
    assert sorted(order) == list(range(len(jobs)))
    assert [size[i] for i in order] == sorted(size.values(), reverse=True)
    assert all(a < b for a, b in zip(order, order[1:]) if size[a] == size[b])
    assert max(len(batch) for batch in batches) <= lintml.runner.BATCH_SIZE
    weights = [sum(size[i] for i in batch) for batch in batches]
    assert len(batches) > 2 * 4 and weights[-1] < weights[0] and max(weights[-3:]) <= min(weights[:3])


def test_the_pool_shares_a_run_folder_and_removes_it(tmp_path, capsys, monkeypatch, pools):
    """The workers share the project files they read through a folder of the run's own,
    which is gone after the run; with no temporary folder to be had, they read alone."""
    import tempfile

    made = []
    real = tempfile.mkdtemp

    def recording(*args, **kwargs):
        folder = real(*args, **kwargs)
        if kwargs.get("prefix") == "lintml-run-":
            made.append(Path(folder))
        return folder

    monkeypatch.setattr(tempfile, "mkdtemp", recording)
    root = _forty_files(tmp_path / "p")
    first = lintml_main(["check", "--no-cache", "-j", "2", "."], root, capsys, monkeypatch)
    assert pools == [2] and len(made) == 1 and not made[0].exists()

    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    assert lintml_main(["check", "--no-cache", "-j", "2", "."], root, capsys, monkeypatch) == first
