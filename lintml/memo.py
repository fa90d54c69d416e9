"""The run memo: what a whole `lintml check` printed, replayed while nothing it could
have read has changed.

A warm run with the result cache still reads every file, hashes it and loads its entry:
on a small project that is most of the run. The memo records, before a plain check of
folders starts, the metadata (`stat`: modification and change times in nanoseconds,
size, inode, device) of everything the run can read or look for:

- every folder under each checked path's project root that a run walks (a folder's
  times change when a file in it is added, removed or renamed) and every `.py` file,
  notebook and `pyproject.toml`, `setup.py` and `setup.cfg` in them; a folder a run
  skips (excluded, a virtual environment) has its own times recorded, not its contents;
- each checked path's folders up to the file system's root, and the `pyproject.toml` in
  each (configuration is looked for upward), and the `--config` file;
- lintml's own modules (an upgraded or edited lintml never replays an old output);

then the run's standard output, standard error and exit status. The memo is keyed on the
command line, the current folder, the Python that runs lintml and the environment
variables lintml reads; a later run with the same key replays it when every recorded
`stat` is unchanged, and runs normally otherwise (and writes a new memo).

A file or folder whose times are within `RACY_NS` of the moment they were recorded
could change again within the same timestamp tick (coarse file system clocks), so its
contents (a file's bytes, a folder's names) are recorded too and compared on replay, as
git does for its index. Runs that fix, diff, read standard input, skip the cache or
end with an error are never memoised; nothing here ever fails a run (a memo that cannot
be read or written is a miss).

This module imports only what Python starts with: replaying is the whole of a warm run.
"""

from __future__ import annotations

import marshal
import os
import sys
import time
import zlib

FORMAT = 1
FOLDER = "runs"  # inside the cache folder
MAX_MEMOS = 32  # per cache folder; the oldest go first
MAX_WATCHED = 20_000  # a project larger than this is not memoised (the walk would cost more than it saves)
RACY_NS = 2_000_000_000  # FAT's timestamps are 2 s apart; others are finer
ENVIRONMENT = ("LINTML_CACHE_DIR", "CI", "CI_PROJECT_DIR")  # the variables lintml's output depends on
WATCHED_NAMES = ("pyproject.toml", "setup.py", "setup.cfg")
_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_CODE_SUFFIXES = (".py", ".md", ".json", ".toml")

# how many memos this process found valid and replayed (tests count them)
replays = 0


def key(argv: list[str]) -> tuple:
    """What, besides the files, decides a run's output."""
    from lintml import __version__

    return (
        FORMAT,
        __version__,
        sys.version,
        sys.executable,
        _PACKAGE,
        os.getcwd(),
        tuple(argv),
        tuple(os.environ.get(name) for name in ENVIRONMENT),
    )


def memo_name(run_key: tuple) -> str:
    return f"{zlib.crc32(repr(run_key).encode('utf-8', 'surrogateescape')):08x}.memo"


def _signature(path: str):
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_mode >> 12, st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev)


def _contents(path: str, is_folder: bool):
    """A racy entry's contents: a folder's sorted names, a file's bytes' digest."""
    try:
        if is_folder:
            return tuple(sorted(os.listdir(path)))
        import hashlib

        with open(path, "rb") as stream:
            return hashlib.blake2b(stream.read(), digest_size=20).digest()
    except (OSError, ValueError):
        return None


def code_files() -> list[str]:
    """lintml's own files whose change changes what it reports, in a fixed order (the
    result cache's key and the memo both watch them)."""
    found = []
    for folder, folder_names, file_names in os.walk(_PACKAGE):
        folder_names[:] = sorted(name for name in folder_names if name != "__pycache__")
        found.extend(os.path.join(folder, name) for name in sorted(file_names) if name.endswith(_CODE_SUFFIXES))
    return found


# -- replaying -----------------------------------------------------------------------


def _option(argv: list[str], name: str) -> str | None:
    for position, word in enumerate(argv):
        if word == name and position + 1 < len(argv):
            return argv[position + 1]
        if word.startswith(name + "="):
            return word[len(name) + 1 :]
    return None


def _candidates(argv: list[str], name: str) -> list[str]:
    """Where the memo of this command line may be: the cache folder it names, else
    each `.lintml_cache` from its first existing path (or the current folder) upward."""
    explicit = _option(argv, "--cache-dir") or os.environ.get("LINTML_CACHE_DIR")
    if explicit:
        return [os.path.join(explicit, FOLDER, name)]
    starts = [word for word in argv[1:] if not word.startswith("-") and os.path.exists(word)][:1] + ["."]
    found: list[str] = []
    for start in starts:
        folder = os.path.abspath(start)
        if not os.path.isdir(folder):
            folder = os.path.dirname(folder)
        while True:
            candidate = os.path.join(folder, ".lintml_cache", FOLDER, name)
            if candidate not in found:
                found.append(candidate)
            parent = os.path.dirname(folder)
            if parent == folder:
                break
            folder = parent
    return found


def _holds(memo: dict) -> bool:
    if memo["code"] != code_files():  # a module added to or removed from lintml
        return False
    racy = memo["racy"]
    for path, signature in memo["watched"]:
        if _signature(path) != signature:
            return False
        if path in racy and _contents(path, signature is not None and signature[0] == 0o04) != racy[path]:
            return False
    return True


def replay(argv: list[str]) -> int | None:
    """Print a memoised run's output and return its exit status; None when there is no
    memo for this command line that still holds (the run then happens). Printing is
    done as the run would (a closed pipe fails as it would there), never twice."""
    global replays
    memo = _valid_memo(argv)
    if memo is None:
        return None
    replays += 1
    sys.stdout.write(memo["stdout"])
    sys.stdout.flush()
    sys.stderr.write(memo["stderr"])
    return memo["status"]


def _valid_memo(argv: list[str]) -> dict | None:
    if not argv or argv[0] != "check":
        return None
    try:
        run_key = key(argv)
        name = memo_name(run_key)
        for candidate in _candidates(argv, name):
            try:
                with open(candidate, "rb") as stream:
                    memo = marshal.loads(stream.read())
            except (OSError, ValueError, EOFError, TypeError):
                continue
            if not isinstance(memo, dict) or memo.get("key") != run_key:
                continue
            return memo if _holds(memo) else None
    except Exception:  # a memo that cannot be read is a miss, never an error
        return None
    return None


# -- recording -----------------------------------------------------------------------


class Recorder:
    """Records, before a run, what it can read (`watch`); after it, the memo (`save`)."""

    def __init__(self, argv: list[str], folder: str) -> None:
        self.key = key(argv)
        self.folder = os.path.join(folder, FOLDER)
        self.started = time.time_ns()
        self.watched: dict[str, object] = {}
        self.racy: dict[str, object] = {}
        self.too_large = False

    def _add(self, path: str) -> object:
        if path in self.watched:
            return self.watched[path]
        signature = self.watched[path] = _signature(path)
        if len(self.watched) > MAX_WATCHED:
            self.too_large = True
        if signature is not None and max(signature[1], signature[2]) >= self.started - RACY_NS:
            self.racy[path] = _contents(path, signature[0] == 0o04)
        return signature

    def watch(self, targets, root_of, exclusion_tests, config_files) -> bool:
        """Record the metadata of what checking `targets` (paths) can read: their
        project roots (`root_of(path)`) walked, pruning a folder only where every test
        of `exclusion_tests` excludes it, their folders upward, and `config_files`.
        False when the memo would be too large (then nothing is saved)."""
        try:
            os.makedirs(self.folder, exist_ok=True)  # before recording: making it changes its parent's times
        except OSError:
            return False
        own = os.path.abspath(os.path.dirname(self.folder))
        for file in code_files():
            self._add(file)
        for file in config_files:
            self._add(os.path.abspath(file))
        roots = []
        for target in targets:
            folder = os.path.abspath(target)
            self._add(folder)
            while True:
                folder = os.path.dirname(folder)
                self._add(folder)
                self._add(os.path.join(folder, "pyproject.toml"))
                if os.path.dirname(folder) == folder:
                    break
            root = str(root_of(target))
            if root not in roots:
                roots.append(root)
        for root in roots:
            self._walk(root, own, exclusion_tests)
            if self.too_large:
                return False
        return True

    def _walk(self, root: str, own: str, exclusion_tests) -> None:
        join = os.path.join
        for folder, folder_names, file_names in os.walk(root):
            self._add(folder)
            kept = []
            for name in folder_names:
                path = join(folder, name)
                if os.path.abspath(path) == own:
                    continue  # the cache folder: every run writes in it, and none reads it as code
                if (
                    os.path.exists(join(path, "pyvenv.cfg"))
                    or all(excluded(path) for excluded in exclusion_tests)
                ):
                    self._add(path)  # its own times only: a marker inside comes or goes with them
                else:
                    kept.append(name)
            folder_names[:] = kept
            for name in file_names:
                if name.lower().endswith((".py", ".ipynb")) or name in WATCHED_NAMES:
                    self._add(join(folder, name))
            if self.too_large:
                return

    def save(self, stdout: str, stderr: str, status: int) -> None:
        """Write the memo (atomically; a failure is silent) and keep at most MAX_MEMOS."""
        memo = {
            "key": self.key,
            "code": code_files(),
            "watched": list(self.watched.items()),
            "racy": self.racy,
            "stdout": stdout,
            "stderr": stderr,
            "status": status,
        }
        path = os.path.join(self.folder, memo_name(self.key))
        temporary = f"{path}.{os.getpid()}.tmp"
        try:
            with open(temporary, "wb") as stream:
                stream.write(marshal.dumps(memo))
            os.replace(temporary, path)
            memos = sorted(
                (entry.stat().st_mtime_ns, entry.path) for entry in os.scandir(self.folder) if entry.name.endswith(".memo")
            )
            for _, old in memos[: max(0, len(memos) - MAX_MEMOS)]:
                os.unlink(old)
        except (OSError, ValueError):
            try:
                os.unlink(temporary)
            except OSError:
                pass
