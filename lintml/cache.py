"""The result cache: a file's findings, keyed on what decides them.

An entry is found by the file's resolved path (one entry per path: a changed file
overwrites its entry, so the cache holds at most one entry for each file ever checked)
and is used only when its key matches. The key is a hash of

- the file's bytes,
- the name the findings carry (the display name; checks look at it, e.g. test files),
- the codes enabled for that file (`select`, `extend-select`, `ignore` and the
  `per-file-ignores` that match it, already resolved),
- lintml itself: its version and the size and modification time of each of its
  modules (so an edited or upgraded lintml never reads old results).

Entries are plain JSON (never pickle: the folder may be shared), written to a temporary
file and renamed into place, so concurrent runs never see half an entry; an entry that
is missing, unreadable or malformed is a miss. Results with internal errors are never
stored. Entries not used for `MAX_AGE_DAYS` are deleted (at most once a day).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from lintml import __version__
from lintml.findings import Applicability, Edit, Finding, Fix, Position

CACHE_DIR_NAME = ".lintml_cache"
FORMAT = "v2"  # the entry format: a new one ignores (and prunes) the old folder
MAX_AGE_DAYS = 30
PRUNE_EVERY_S = 24 * 3600
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by lintml.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
ENV_DIR = "LINTML_CACHE_DIR"


@lru_cache(maxsize=None)
def code_digest() -> str:
    """lintml's version and the size and mtime of each of its modules."""
    from lintml import memo

    digest = hashlib.sha256(f"lintml {__version__} {FORMAT}".encode())
    package = memo._PACKAGE  # the folder code_files walks
    for path in memo.code_files():
        try:
            stat = os.stat(path)
        except OSError:
            continue
        digest.update(f"{os.path.relpath(path, package)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def entry_key(data: bytes, name: str, enabled: frozenset[str]) -> str:
    digest = hashlib.sha256(code_digest().encode())
    digest.update(b"\0")
    digest.update(name.encode("utf-8", "surrogateescape"))
    digest.update(b"\0")
    digest.update(",".join(sorted(enabled)).encode())
    digest.update(b"\0")
    digest.update(data)
    return digest.hexdigest()


# -- findings <-> JSON -------------------------------------------------------------


def _finding_to_json(finding: Finding) -> list:
    fix = None
    if finding.fix is not None:
        fix = [
            finding.fix.message,
            finding.fix.applicability.value,
            [[e.start.line, e.start.column, e.end.line, e.end.column, e.content] for e in finding.fix.edits],
        ]
    return [
        finding.code,
        finding.message,
        finding.start.line,
        finding.start.column,
        finding.end.line,
        finding.end.column,
        fix,
        finding.noqa_line,
        finding.cell,
    ]


def _finding_from_json(item: list, filename: str) -> Finding:
    code, message, start_line, start_column, end_line, end_column, fix, noqa_line, cell = item
    if fix is not None:
        fix_message, applicability, edits = fix
        fix = Fix(
            fix_message,
            tuple(Edit(Position(a, b), Position(c, d), content) for a, b, c, d, content in edits),
            Applicability(applicability),
        )
    return Finding(
        code, message, filename, Position(start_line, start_column), Position(end_line, end_column), fix, noqa_line, cell
    )


# -- the folder --------------------------------------------------------------------


def default_dir(root: Path, explicit: Path | str | None = None) -> Path:
    """`--cache-dir`, else $LINTML_CACHE_DIR, else `.lintml_cache` in the project root."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    return Path(root) / CACHE_DIR_NAME


def is_cache_dir(path: Path) -> bool:
    """A folder lintml made (it has our CACHEDIR.TAG): the only kind `lintml clean` deletes."""
    try:
        return (path / "CACHEDIR.TAG").read_text(encoding="utf-8").startswith(CACHEDIR_TAG.splitlines()[0]) and (
            "lintml" in (path / "CACHEDIR.TAG").read_text(encoding="utf-8")
        )
    except (OSError, UnicodeDecodeError):
        return False


def remove(path: Path) -> bool:
    """Delete a cache folder lintml made; False when there was none."""
    if not path.is_dir() or not is_cache_dir(path):
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


class Cache:
    """One cache folder. Every failure to read or write is a miss, never an error."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.entries = self.folder / FORMAT
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self._ready: bool | None = None

    def _entry_path(self, resolved: Path) -> Path:
        """The entry of the file at `resolved` (its resolved path)."""
        name = hashlib.sha256(str(resolved).encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return self.entries / f"{name}.json"

    def get(self, resolved: Path, key: str, filename: str, still_holds=None) -> list[Finding] | None:
        """The findings stored for the file at `resolved` under `key`, named `filename`;
        None on a miss. `still_holds(dependencies, snapshot)` tells whether the project
        facts the findings depended on are unchanged (another file edited since)."""
        entry = self._entry_path(resolved)
        try:
            with open(entry, "rb") as stream:
                data = json.loads(stream.read())
            if data.get("key") != key:
                self.misses += 1
                return None
            findings = [_finding_from_json(item, filename) for item in data["findings"]]
            dependencies, snapshot = data.get("dependencies", []), data.get("snapshot")
        except Exception:  # missing, unreadable, half-written by a crash, or not ours
            self.misses += 1
            return None
        if (dependencies or dependencies is None or snapshot) and still_holds is not None:
            try:
                holds = still_holds(dependencies, snapshot)
            except Exception:  # the project cannot be read now: check the file again
                holds = False
            if not holds:
                self.misses += 1
                return None
        self.hits += 1
        try:
            os.utime(entry)  # used: not pruned
        except OSError:
            pass
        return findings

    def _prepare(self) -> bool:
        if self._ready is None:
            try:
                self.entries.mkdir(parents=True, exist_ok=True)
                for name, text in (("CACHEDIR.TAG", CACHEDIR_TAG), (".gitignore", "# made by lintml\n*\n")):
                    if not (self.folder / name).exists():
                        _write_atomically(self.folder / name, text.encode())
                self._ready = True
            except OSError:
                self._ready = False
        return self._ready

    def put(
        self, resolved: Path, key: str, findings: list[Finding], dependencies: list | None = (), snapshot: str | None = None
    ) -> None:
        if not self._prepare():
            return
        entry = {"key": key, "findings": [_finding_to_json(f) for f in findings]}
        entry["dependencies"] = None if dependencies is None else list(dependencies)
        entry["snapshot"] = snapshot
        data = json.dumps(entry, ensure_ascii=False)
        try:
            _write_atomically(self._entry_path(resolved), data.encode("utf-8"))
            self.writes += 1
        except OSError:
            pass

    def prune(self, now: float | None = None) -> int:
        """Delete entries not used for MAX_AGE_DAYS, and folders of other formats; at
        most once every PRUNE_EVERY_S. Returns how many entries went."""
        if not self.folder.is_dir():
            return 0
        now = time.time() if now is None else now
        marker = self.folder / "last-prune"
        try:
            if now - marker.stat().st_mtime < PRUNE_EVERY_S:
                return 0
        except OSError:
            pass
        try:
            _write_atomically(marker, b"")
        except OSError:
            return 0
        removed = 0
        try:
            for child in self.folder.iterdir():
                if child.is_dir() and child.name != FORMAT and child.name.startswith("v") and child.name[1:].isdigit():
                    shutil.rmtree(child, ignore_errors=True)
            for entry in os.scandir(self.entries) if self.entries.is_dir() else ():
                try:
                    if now - entry.stat().st_mtime > MAX_AGE_DAYS * 86400:
                        os.unlink(entry.path)
                        removed += 1
                except OSError:
                    continue
        except OSError:
            pass
        return removed
