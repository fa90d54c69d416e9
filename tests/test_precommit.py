"""The pre-commit hooks (`.pre-commit-hooks.yaml`), driven by the real pre-commit.

Every test works in a throwaway git repository. The hook repository is a snapshot of
this checkout's working tree (tracked and untracked files that git does not ignore),
committed into a temporary repository: `pre-commit try-repo` on the checkout itself
would leave untracked files out (a new `.pre-commit-hooks.yaml`, a new module), so it
could test something other than what is on disk.

pre-commit builds a virtualenv for the hook repository (`pip install .`). The tests
that use `pre-commit run` share one PRE_COMMIT_HOME, so that happens once for them;
`try-repo` always builds its own in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pre_commit")

ROOT = Path(__file__).resolve().parent.parent
BUGGY = "model.eval\n"  # LML204, safely fixable
FIXED = "model.eval()\n"
FINDING = "train.py:1:1: LML204"

pytestmark = [
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
    pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout of lintml"),
    pytest.mark.skipif(not (ROOT / ".pre-commit-hooks.yaml").is_file(), reason="no .pre-commit-hooks.yaml"),
]


def _git_env() -> dict[str, str]:
    # no GIT_DIR, GIT_INDEX_FILE, ... from an enclosing git hook (pytest run by pre-commit)
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=_git_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"git {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def _init_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q")
    _git(path, "config", "user.email", "tests@lintml.invalid")
    _git(path, "config", "user.name", "lintml tests")
    return path


def _write(repo: Path, files: dict[str, str], *, stage: bool = True) -> None:
    for name, text in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    if stage:
        _git(repo, "add", "--", *files)


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory) -> tuple[Path, str]:
    """This checkout's working tree, committed into a temporary repository: (path, sha)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        env=_git_env(),
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    snapshot = _init_repo(tmp_path_factory.mktemp("lintml-hook-repo"))
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if source.is_file():  # tracked but deleted in the working tree: leave out
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, snapshot / name)
    _git(snapshot, "add", "-A")
    _git(snapshot, "commit", "-q", "-m", "snapshot of the working tree")
    return snapshot, _git(snapshot, "rev-parse", "HEAD").strip()


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def pre_commit(pre_commit_home):
    def run(repo: Path, *args: str) -> subprocess.CompletedProcess:
        env = _git_env()
        env["PRE_COMMIT_HOME"] = str(pre_commit_home)
        env.pop("PRE_COMMIT_COLOR", None)
        env.pop("SKIP", None)
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", *args],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    return run


@pytest.fixture
def project(tmp_path, hook_repo) -> Path:
    """A git repository whose .pre-commit-config.yaml uses both hooks at the snapshot."""
    repo = _init_repo(tmp_path / "project")
    path, sha = hook_repo
    _write(
        repo,
        {
            ".pre-commit-config.yaml": (
                "repos:\n"
                f"-   repo: {path.as_posix()}\n"
                f"    rev: {sha}\n"
                "    hooks:\n"
                "    -   id: lintml\n"
                "    -   id: lintml-fix\n"
            )
        },
    )
    return repo


def _output(done: subprocess.CompletedProcess) -> str:
    return done.stdout + done.stderr


def test_try_repo_fails_on_a_finding_and_passes_once_fixed(tmp_path, hook_repo, pre_commit):
    repo = _init_repo(tmp_path / "project")
    _write(repo, {"train.py": BUGGY})
    hooks = str(hook_repo[0])

    done = pre_commit(repo, "try-repo", hooks, "lintml", "--all-files", "--color", "never")
    assert done.returncode == 1, _output(done)
    assert FINDING in done.stdout, _output(done)
    assert "- hook id: lintml" in done.stdout

    _write(repo, {"train.py": FIXED})
    done = pre_commit(repo, "try-repo", hooks, "lintml", "--all-files", "--color", "never")
    assert done.returncode == 0, _output(done)
    assert "LML204" not in done.stdout
    assert (repo / "train.py").read_text() == FIXED  # the check hook never writes


def test_no_python_files_is_a_pass(project, pre_commit):
    _write(project, {"README.txt": "model.eval\n"})

    done = pre_commit(project, "run", "--color", "never")
    assert done.returncode == 0, _output(done)
    assert "Traceback" not in _output(done)
    assert done.stdout.count("(no files to check)Skipped") == 2, done.stdout

    done = pre_commit(project, "run", "--all-files", "--color", "never")
    assert done.returncode == 0, _output(done)


def test_fix_hook_rewrites_the_file_and_a_second_run_passes(project, pre_commit):
    _write(project, {"train.py": BUGGY})

    done = pre_commit(project, "run", "lintml-fix", "--color", "never")
    assert done.returncode == 1, _output(done)
    assert "- files were modified by this hook" in done.stdout, done.stdout
    assert (project / "train.py").read_text() == FIXED

    _git(project, "add", "train.py")
    done = pre_commit(project, "run", "--color", "never")  # both hooks, on the staged fix
    assert done.returncode == 0, _output(done)
    assert "Failed" not in done.stdout


def test_force_exclude_keeps_the_configured_excludes(project, pre_commit):
    _write(
        project,
        {
            "pyproject.toml": '[tool.lintml]\nextend-exclude = ["generated"]\n',
            "generated/model_pb.py": BUGGY,
            "train.py": BUGGY,
        },
    )

    # pre-commit names both files; only train.py is reported
    done = pre_commit(project, "run", "lintml", "--all-files", "--verbose", "--color", "never")
    assert done.returncode == 1, _output(done)
    assert FINDING in done.stdout
    assert "generated" not in done.stdout.split("- hook id: lintml", 1)[1], done.stdout

    # once train.py is fixed only the excluded file has a finding: both hooks pass, and
    # the fix hook leaves the excluded file alone
    _write(project, {"train.py": FIXED})
    done = pre_commit(project, "run", "--all-files", "--color", "never")
    assert done.returncode == 0, _output(done)
    assert (project / "generated" / "model_pb.py").read_text() == BUGGY


def test_installed_hook_blocks_the_commit(project, pre_commit, pre_commit_home):
    done = pre_commit(project, "install")
    assert done.returncode == 0, _output(done)
    _write(project, {"train.py": BUGGY})

    def commit() -> subprocess.CompletedProcess:
        env = dict(_git_env(), PRE_COMMIT_HOME=str(pre_commit_home))
        env.pop("SKIP", None)
        return subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", "train"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    done = commit()
    assert done.returncode != 0, _output(done)
    assert FINDING in _output(done)
    assert (project / "train.py").read_text() == FIXED  # lintml-fix ran too

    _git(project, "add", "train.py")
    done = commit()
    assert done.returncode == 0, _output(done)
