"""Rebuild the git corpora of `bench_static.py` from the commit list in corpora.toml.

Each corpus is one or more repositories at an exact commit, of which the `.py` and
`.ipynb` files under the listed folders are taken with `git archive` from a local git
snapshot (the mirror), keeping the repository's layout, so that imports between its
files still resolve. The result goes to benchmarks/.cache/git/NAME/OWNER+REPO/ (git-ignored):
one folder per repository, and each is its own project root. `git archive` brings no
`.git`, so a repository's top-level `pyproject.toml` and `setup.cfg` are taken too where
it has them (and `setup.py` where the folders take it); a copy left with none of these
gets a comment-only `pyproject.toml` (no `[tool.lintml]` table, so lintml's configuration
discovery passes it by) that marks its root. Only this file's commit list is committed,
never the code.

    .venv/bin/python benchmarks/git_corpora.py                  # every corpus
    .venv/bin/python benchmarks/git_corpora.py enduser --mirror /work/.mirror

The mirror of `owner/repo` is MIRROR/owner+repo (a bare git directory, or a folder with
the git directory in `repo/`, `repo/.git` or `.git`); an entry's `mirror = "o/r"` reads
the commit from another repository's snapshot that holds it (a fork, when the upstream
snapshot cannot be had). A missing mirror or commit is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
DEFAULT_LIST = HERE / "corpora.toml"
DEFAULT_CACHE = HERE / ".cache"
DEFAULT_MIRROR = Path("/work/.mirror")
SUFFIXES = (".py", ".ipynb")
MARKERS = ("pyproject.toml", "setup.cfg")  # taken from the top of a repository wherever it has them
ROOT_MARKERS = (*MARKERS, "setup.py")  # what makes a copy's top its project root
MARKER_TEXT = "# written by benchmarks/git_corpora.py: this folder is the root of one repository's copy\n"
CHUNK = 400  # paths per `git archive` call


class CorpusError(Exception):
    """A corpus cannot be built: a missing mirror or commit, a bad list; one line."""


@dataclass(frozen=True)
class Repo:
    repo: str  # owner/name, as on GitHub
    commit: str  # 40 hex digits
    paths: tuple[str, ...]  # folders (or files) inside the repository; "" or "." is all of it
    exclude: tuple[str, ...] = ()  # fnmatch patterns on repository paths (`*` crosses `/`)
    mirror: str | None = None  # owner/name of the snapshot that holds `commit`, if not `repo`

    @property
    def folder(self) -> str:
        return self.repo.replace("/", "+")


@dataclass(frozen=True)
class Corpus:
    name: str
    repos: tuple[Repo, ...]
    edit: str | None = None  # the file bench_static.py edits, relative to the corpus root
    description: str = ""

    def spec(self) -> dict:
        """What the built folder was made from (kept beside it: a changed list rebuilds it)."""
        return {"name": self.name, "repos": [vars(repo) | {"paths": list(repo.paths), "exclude": list(repo.exclude)}
                                             for repo in self.repos]}


def load(path: Path = DEFAULT_LIST) -> dict[str, Corpus]:
    """The corpora of the list, by name."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CorpusError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise CorpusError(f"{path}: invalid TOML: {error}") from None
    corpora = {}
    for entry in data.get("corpus", []):
        name = entry.get("name")
        if not isinstance(name, str) or not entry.get("repo"):
            raise CorpusError(f"{path}: each [[corpus]] needs a name and at least one [[corpus.repo]]")
        repos = []
        for item in entry["repo"]:
            commit = str(item.get("commit", ""))
            if len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit):
                raise CorpusError(f"{path}: {name}: {item.get('repo')}: commit must be 40 lower-case hex digits")
            repos.append(Repo(item["repo"], commit, tuple(item.get("paths", [""])), tuple(item.get("exclude", [])),
                              item.get("mirror")))
        corpora[name] = Corpus(name, tuple(repos), entry.get("edit"), entry.get("description", ""))
    return corpora


def git_dir(mirror_root: Path, repo: str) -> Path:
    """The git directory of `repo`'s snapshot under `mirror_root`."""
    base = mirror_root / repo.replace("/", "+")
    for candidate in (base / "repo", base / "repo" / ".git", base / ".git", base):
        if (candidate / "HEAD").is_file() and (candidate / "objects").is_dir():
            return candidate
    raise CorpusError(f"no git snapshot of {repo} at {base} (fetch it, or pass --mirror DIR)")


def _git(directory: Path, *args: str, binary: bool = False):
    return subprocess.run(["git", f"--git-dir={directory}", *args], capture_output=True, text=not binary)


def _taken(repo: Repo, path: str) -> bool:
    if not path.endswith(SUFFIXES) or any(fnmatch.fnmatchcase(path, pattern) for pattern in repo.exclude):
        return False
    for folder in repo.paths:
        folder = folder.strip("/")
        if folder in ("", ".") or path == folder or path.startswith(folder + "/"):
            return True
    return False


def files_of(directory: Path, repo: Repo) -> list[str]:
    """The repository paths this entry takes at its commit: regular files only."""
    if _git(directory, "cat-file", "-e", f"{repo.commit}^{{commit}}").returncode != 0:
        raise CorpusError(f"{repo.repo}: commit {repo.commit} is not in the snapshot at {directory}")
    listing = _git(directory, "ls-tree", "-r", "-z", repo.commit)
    if listing.returncode != 0:
        raise CorpusError(f"{repo.repo}: git ls-tree failed: {listing.stderr.strip().splitlines()[-1:]}")
    taken = []
    for record in filter(None, listing.stdout.split("\0")):
        meta, path = record.split("\t", 1)
        mode, kind, _ = meta.split()
        if kind != "blob" or mode not in ("100644", "100755"):  # no links, no submodules
            continue
        if _taken(repo, path) or path in MARKERS:
            taken.append(path)
    return taken


def _extract(directory: Path, repo: Repo, paths: list[str], destination: Path) -> None:
    for start in range(0, len(paths), CHUNK):
        archive = subprocess.Popen(["git", f"--git-dir={directory}", "archive", "--format=tar", repo.commit, "--",
                                    *paths[start : start + CHUNK]], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            with tarfile.open(fileobj=archive.stdout, mode="r|") as tarred:
                if hasattr(tarfile, "data_filter"):
                    tarred.extractall(destination, filter="data")
                else:  # pragma: no cover - Python without PEP 706
                    tarred.extractall(destination)
        except tarfile.TarError as error:
            archive.kill()
            raise CorpusError(f"{repo.repo}: git archive gave no tar ({error}): {archive.stderr.read().decode()[-300:]}")
        finally:
            archive.stdout.close()
        if archive.wait() != 0:
            why = archive.stderr.read().decode().strip().splitlines()
            raise CorpusError(f"{repo.repo}: git archive failed: {why[-1] if why else archive.returncode}")
        archive.stderr.close()


def build(corpus: Corpus, cache: Path = DEFAULT_CACHE, mirror_root: Path = DEFAULT_MIRROR, log=print) -> Path:
    """CACHE/git/NAME/, built from the mirrors unless already there from the same list entry."""
    root = cache / "git" / corpus.name
    stamp = root.with_name(corpus.name + ".json")
    if root.is_dir() and stamp.is_file() and json.loads(stamp.read_text()).get("spec") == corpus.spec():
        return root
    temporary = root.with_name(corpus.name + ".partial")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    counts = {}
    try:
        for repo in corpus.repos:
            directory = git_dir(mirror_root, repo.mirror or repo.repo)
            paths = files_of(directory, repo)
            destination = temporary / repo.folder
            destination.mkdir(parents=True, exist_ok=True)
            if paths:
                _extract(directory, repo, paths, destination)
            if not any((destination / marker).is_file() for marker in ROOT_MARKERS):
                (destination / "pyproject.toml").write_text(MARKER_TEXT)
            counts[repo.repo] = sum(path.endswith(SUFFIXES) for path in paths)
        shutil.rmtree(root, ignore_errors=True)
        stamp.unlink(missing_ok=True)
        temporary.rename(root)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    stamp.write_text(json.dumps({"spec": corpus.spec(), "files": counts}, indent=1) + "\n")
    log(f"{corpus.name}: {sum(counts.values())} .py/.ipynb files from {len(counts)} repositories -> {root}")
    return root


def file_counts(corpus: Corpus, cache: Path = DEFAULT_CACHE) -> dict[str, int]:
    """Files taken per repository, as recorded when the corpus was built."""
    stamp = cache / "git" / f"{corpus.name}.json"
    return json.loads(stamp.read_text()).get("files", {}) if stamp.is_file() else {}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="corpora to build (default: all in the list)")
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST, help="the commit list (default: corpora.toml)")
    parser.add_argument("--mirror", type=Path, default=DEFAULT_MIRROR, help="folder of the git snapshots")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    try:
        corpora = load(args.list)
        if unknown := [name for name in args.names if name not in corpora]:
            raise CorpusError(f"unknown corpora {unknown}; known: {', '.join(corpora)}")
        for name in args.names or corpora:
            root = build(corpora[name], args.cache, args.mirror, log=lambda line: None)
            counts = file_counts(corpora[name], args.cache)
            print(f"{name}: {root} ({', '.join(f'{repo} {n}' for repo, n in counts.items())}; "
                  f"{sum(counts.values())} files)")
    except CorpusError as error:
        print(f"git_corpora: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
