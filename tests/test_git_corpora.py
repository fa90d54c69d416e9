"""benchmarks/git_corpora.py (and bench_static.py's choice of the file to edit) on a tiny
git repository made in tmp_path: no network, no real corpus."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str, filename: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def git_corpora():
    try:
        yield _load("lintml_benchmark_git_corpora", "git_corpora.py")
    finally:
        sys.modules.pop("lintml_benchmark_git_corpora", None)


def _git(*args: str, cwd: Path) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null", "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def mirror(tmp_path):
    """MIRROR/alice+scripts/repo: a bare clone of a repository with two projects' worth of files."""
    work = tmp_path / "work"
    files = {
        "train/train.py": "from model import Net\n\nnet = Net()\n",
        "train/model.py": '"""The network: a longer file than the script that imports it."""\n\n\nclass Net:\n    pass\n',
        "train/notes.ipynb": json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}),
        "train/data.csv": "a,b\n",
        "docs/conf.py": "project = 'x'\n",
        "tools/other.py": "print(1)\n",
    }
    for path, text in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
    _git("init", "-q", cwd=work)
    _git("add", ".", cwd=work)
    _git("commit", "-q", "-m", "one", cwd=work)
    commit = _git("rev-parse", "HEAD", cwd=work)
    root = tmp_path / "mirror"
    (root / "alice+scripts").mkdir(parents=True)
    _git("clone", "-q", "--bare", str(work), str(root / "alice+scripts" / "repo"), cwd=tmp_path)
    return root, commit


def _list(tmp_path: Path, commit: str, filename: str = "corpora.toml") -> Path:
    listing = tmp_path / filename
    listing.write_text(f"""
[[corpus]]
name = "small"
edit = "alice+scripts/train/train.py"

[[corpus.repo]]
repo = "alice/scripts"
commit = "{commit}"
paths = ["train", "docs"]
exclude = ["docs/*"]
""")
    return listing


def test_builds_the_listed_files_in_the_repository_layout(git_corpora, mirror, tmp_path):
    root, commit = mirror
    corpora = git_corpora.load(_list(tmp_path, commit))
    built = git_corpora.build(corpora["small"], tmp_path / "cache", root, log=lambda line: None)
    assert built == tmp_path / "cache" / "git" / "small"
    copy = built / "alice+scripts"
    found = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
    # .py and .ipynb under the folders, not excluded; a marker for a repository with none at its top
    assert found == ["pyproject.toml", "train/model.py", "train/notes.ipynb", "train/train.py"]
    assert "[tool.lintml]" not in (copy / "pyproject.toml").read_text()
    assert git_corpora.file_counts(corpora["small"], tmp_path / "cache") == {"alice/scripts": 3}
    # built once: a second call reuses the folder without the mirror
    assert git_corpora.build(corpora["small"], tmp_path / "cache", tmp_path / "nowhere") == built


def test_a_missing_mirror_or_commit_is_one_line_and_exit_2(git_corpora, mirror, tmp_path, capsys):
    root, commit = mirror
    listing = _list(tmp_path, commit)
    assert git_corpora.main(["--list", str(listing), "--mirror", str(tmp_path / "nowhere"),
                             "--cache", str(tmp_path / "c1")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    bad = _list(tmp_path, "0" * 40, "bad.toml")
    assert git_corpora.main(["--list", str(bad), "--mirror", str(root), "--cache", str(tmp_path / "c2")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "0" * 40 in error
    assert not (tmp_path / "c2" / "git" / "small").exists()  # nothing half-built is left
    assert git_corpora.main(["--list", str(listing), "--mirror", str(root), "--cache", str(tmp_path / "c3")]) == 0


def test_the_file_to_edit_imports_project_files(git_corpora, mirror, tmp_path):
    root, commit = mirror
    corpus = git_corpora.load(_list(tmp_path, commit))["small"]
    built = git_corpora.build(corpus, tmp_path / "cache", root, log=lambda line: None)
    bench = _load("lintml_benchmark_bench_static", "bench_static.py")
    try:
        train, model = built / "alice+scripts/train/train.py", built / "alice+scripts/train/model.py"
        assert bench.imports_project_file(train, built)
        assert not bench.imports_project_file(model, built)
        paths = [str(train), str(model)]
        picked = bench.Corpus("small", built, "small", "small", edit=None)
        assert bench.file_to_edit(picked, paths) == train  # model.py is larger, but imports nothing of ours
        assert bench.lintml_workers(232, 2) == 2 and bench.lintml_workers(6, 2) == 1
    finally:
        sys.modules.pop("lintml_benchmark_bench_static", None)


@pytest.mark.parametrize("workers, batches", [(1, "2"), (2, "2"), (2, "3,1")])
def test_the_fresh_parse_floor_parses_every_listed_file(tmp_path: Path, workers: int, batches: str):
    """parse_floor.py, the process bench_static.py times as the cold target's floor:
    every listed file read and parsed by LibCST (a file LibCST rejects counts as not
    parsed), alone or in a pool, in batches of one size or of the sizes given."""
    files = []
    for number, text in enumerate(["import torch\nx = 1\n", "def f(:\n", "class A:\n    pass\n", "y = [\n1]\n"]):
        path = tmp_path / f"f{number}.py"
        path.write_text(text)
        files.append(str(path))
    listed = tmp_path / "files.txt"
    listed.write_text("\n".join(files) + "\n")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "parse_floor.py"), str(listed), str(workers), batches],
        capture_output=True, text=True, check=True,
    )
    assert done.stdout == "3\n"


def test_paired_runs_alternate_and_give_the_ratio_of_each_pair(tmp_path: Path):
    """bench_static.paired, which times the cold runs against the fresh-process floor:
    the two commands alternate (a drifting machine slows both sides of a pair), and the
    ratio is the median of the pairs' ratios."""
    bench = _load("lintml_benchmark_bench_static", "bench_static.py")
    try:
        log = tmp_path / "log"
        first = [sys.executable, "-c", f"open({str(log)!r}, 'a').write('a')"]
        second = lambda run: [sys.executable, "-c", f"open({str(log)!r}, 'a').write('b{run}')"]  # noqa: E731
        (wall_a, cpu_a), (wall_b, cpu_b), (ratio, cpu_ratio), process, pairs = bench.paired(first, second, 3)
        assert log.read_text() == "ab0ab1ab2"
        assert len(pairs) == 3 and sorted(wall for wall, _ in pairs)[1] == ratio  # the median pair
        assert process.args == second(2)
        assert min(wall_a, wall_b, ratio) > 0 and cpu_a == cpu_a and cpu_ratio == cpu_ratio  # numbers, not nan
    finally:
        sys.modules.pop("lintml_benchmark_bench_static", None)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instruction_counts_are_the_same_for_the_same_work_and_grow_with_it():
    """benchmarks/instructions.py, the deterministic side-by-side measure: a process's
    instructions under callgrind, the same for the same program, more for more work."""
    counter = _load("lintml_benchmark_instructions", "instructions.py")
    try:
        small = [sys.executable, "-c", "sum(range(10))"]
        large = [sys.executable, "-c", "sum(range(3_000_000))"]
        first, again, more = counter.instructions(small), counter.instructions(small), counter.instructions(large)
        assert abs(first - again) < first / 100
        assert more > first + 30_000_000  # three million loop steps: tens of instructions each
    finally:
        sys.modules.pop("lintml_benchmark_instructions", None)
