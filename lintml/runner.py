"""Checking and fixing paths: configuration per path, reading, linting, writing back."""

from __future__ import annotations

import difflib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lintml import cache as cache_module
from lintml import config as config_module
from lintml.config import Config
from lintml.files import (
    InputError,
    SourceFile,
    is_notebook,
    iter_python_files,
    read_bytes,
    source_from_bytes,
    write_atomically,
)
from lintml.findings import FileResult, Finding, InternalError
from lintml.fixes import fix_source, is_applicable, parses


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[InternalError] = field(default_factory=list)
    input_errors: list[str] = field(default_factory=list)  # unreadable files: one line each
    files_checked: int = 0
    fixed: list[Finding] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    fixed_sources: dict[str, str] = field(default_factory=dict)  # for stdin
    caches: list = field(default_factory=list)  # the result caches used (lintml.cache.Cache)
    # of the one text checked last (see FileResult): what its findings depend on
    dependencies: list | None = None
    snapshot: str | None = None


def collect_files(targets: list[tuple[Path, Config]], result: RunResult, force_exclude: bool = False):
    """(file, its configuration) for every Python file under the target paths, each
    file once; a path that does not exist is reported and the others still checked."""
    for file, config, _ in _collect(targets, result, force_exclude):
        yield file, config


def _collect(targets: list[tuple[Path, Config]], result: RunResult, force_exclude: bool = False):
    """collect_files, with each file's resolved path."""
    seen: set[Path] = set()
    folders: dict[Path, Path] = {}  # each folder resolved once, not once per file in it
    for path, config in targets:
        try:
            files = list(iter_python_files(path, config, force_exclude, notebooks=True))
        except InputError as error:
            result.input_errors.append(str(error))
            continue
        for file in files:
            folder = folders.get(file.parent)
            if folder is None:
                folder = folders[file.parent] = file.parent.resolve()
            key = folder / file.name
            if os.path.islink(key):
                try:
                    key = key.resolve()
                except (OSError, RuntimeError):  # a loop of links (RuntimeError before 3.13)
                    key = Path(os.path.abspath(key))  # reading it says what is wrong
            if key not in seen:
                seen.add(key)
                yield file, config, key


def display_name(path: Path, resolved: Path | None = None) -> str:
    """The path as the user would write it: relative to the current folder if under it."""
    try:
        return (resolved or path.resolve()).relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def lint_text(text: str, filename: str, config: Config, path: Path | None = None) -> FileResult:
    from lintml.engine import lint_source  # LibCST: imported only when a file is really checked
    from lintml.project.facts import checking

    with checking(_on_disk(path, filename), config):
        return lint_source(text, filename, config.enabled_codes_for(path or Path(filename)))


def _on_disk(path: Path | None, filename: str) -> Path | None:
    """The file a text was read from, when there is one: its project supplies facts."""
    if path is not None:
        return path
    if filename and not filename.startswith("<") and os.path.isfile(filename):
        return Path(filename)
    return None


def lint_notebook(text: str, filename: str, enabled: frozenset[str], path: Path | None = None, **options):
    from lintml.notebooks import lint_notebook as lint  # LibCST, as for lint_text
    from lintml.project.facts import checking

    with checking(_on_disk(path, filename)):
        return lint(text, filename, enabled, **options)


def process_text(
    text: str,
    filename: str,
    config: Config,
    result: RunResult,
    *,
    fix: bool = False,
    unsafe: bool = False,
    diff: bool = False,
    path: Path | None = None,
) -> str | None:
    """Lint (and maybe fix) one text; returns the fixed text when it changed. A
    notebook (a filename ending in `.ipynb`) is read as one; InputError when it cannot
    be."""
    if is_notebook(filename):
        return _process_notebook(text, filename, config, result, fix=fix, unsafe=unsafe, diff=diff, path=path)
    if not (fix or diff):
        file_result = lint_text(text, filename, config, path)
        result.findings.extend(file_result.findings)
        result.errors.extend(file_result.errors)
        result.dependencies, result.snapshot = file_result.dependencies, file_result.snapshot
        return None
    errors: list[InternalError] = []

    def lint(source: str) -> list[Finding]:
        file_result = lint_text(source, filename, config, path)
        errors.extend(file_result.errors)
        return file_result.findings

    outcome = fix_source(text, lint, unsafe)
    result.errors.extend(errors)
    if outcome.source != text and not parses(outcome.source, filename):
        # a fix broke the file: keep the original and say so
        result.errors.append(InternalError(filename, "fix", "a fix produced code that does not parse; file left unchanged"))
        result.findings.extend(lint(text))
        return None
    if outcome.source == text:
        result.findings.extend(outcome.remaining)
        return None
    if diff:
        result.diffs.append(
            "".join(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    outcome.source.splitlines(keepends=True),
                    fromfile=f"a/{filename}",
                    tofile=f"b/{filename}",
                )
            )
        )
        # nothing is written: report the findings as they stand
        result.findings.extend(lint(text))
        return None
    result.fixed.extend(outcome.fixed)
    result.findings.extend(outcome.remaining)
    return outcome.source


def _process_notebook(
    text: str, filename: str, config: Config, result: RunResult, *, fix: bool, unsafe: bool, diff: bool, path: Path | None
) -> str | None:
    from lintml.notebooks import NotebookError

    try:
        outcome = lint_notebook(
            text, filename, config.enabled_codes_for(path or Path(filename)), path, fix=fix, unsafe=unsafe, diff=diff
        )
    except NotebookError as error:
        raise InputError(f"{filename}: cannot read the notebook: {error}") from None
    result.findings.extend(outcome.findings)
    result.errors.extend(outcome.errors)
    result.diffs.extend(outcome.diffs)
    result.fixed.extend(outcome.fixed)
    result.dependencies, result.snapshot = outcome.dependencies, outcome.snapshot
    return outcome.text


def run(
    paths: list[Path],
    config: Config | None = None,
    *,
    config_file: Path | None = None,
    fix: bool = False,
    unsafe: bool = False,
    diff: bool = False,
) -> RunResult:
    """Check `paths`, each with `config` or the configuration found for it (in this
    process, without the result cache)."""
    targets = [(path, config or config_module.discover(path, config_file)) for path in paths]
    return run_targets(targets, fix=fix, unsafe=unsafe, diff=diff)


# -- one file ------------------------------------------------------------------------


@dataclass
class FileJob:
    index: int
    path: Path
    name: str
    config: Config
    # whether the findings go to the result cache: they are stored under the key of the
    # bytes this check reads (the look-up's bytes are not kept: a run over a large
    # project would hold every file, and send them all to the workers)
    keyed: bool = False


@dataclass
class FileOutcome:
    findings: list[Finding] = field(default_factory=list)
    errors: list[InternalError] = field(default_factory=list)
    input_errors: list[str] = field(default_factory=list)
    fixed: list[Finding] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    checked: bool = False
    key: str | None = None  # the cache key, when the findings may be stored under it
    dependencies: list | None = None  # the project facts they depend on (None: all)
    snapshot: str | None = None


def check_file(job: FileJob, *, fix: bool = False, unsafe: bool = False, diff: bool = False) -> FileOutcome:
    """Read, lint (and maybe fix) one file; the fixed text is written back here."""
    outcome = FileOutcome()
    try:
        data = read_bytes(job.path)
        source = source_from_bytes(data, job.path)
    except InputError as error:
        outcome.input_errors.append(str(error))
        return outcome
    result = RunResult()
    try:
        new_text = process_text(
            source.text, job.name, job.config, result, fix=fix, unsafe=unsafe, diff=diff, path=job.path
        )
    except InputError as error:  # a notebook that is not one
        outcome.input_errors.append(str(error))
        return outcome
    outcome.checked = True
    if new_text is not None:
        write_back(job.path, source, new_text, result)
    outcome.findings = result.findings
    outcome.errors = result.errors
    outcome.input_errors = result.input_errors
    outcome.fixed = result.fixed
    outcome.diffs = result.diffs
    if job.keyed and not (result.errors or result.input_errors or result.fixed or result.diffs or new_text is not None):
        # exactly what a plain check reports for these bytes
        outcome.key = cache_module.entry_key(data, job.name, job.config.enabled_codes_for(job.path))
        outcome.dependencies, outcome.snapshot = _resolved(result.dependencies), result.snapshot
    return outcome


def _check_batch(jobs: list[FileJob]) -> list[FileOutcome]:
    """A worker's task: a few files, checked (never fixed) in order."""
    return [check_file(job) for job in jobs]


def _start_worker(shared: str | None = None) -> None:
    """A worker's start: Ctrl-C is the parent's to handle; the project indexes it reads
    are shared with the other workers through `shared` (set again here for platforms
    whose workers do not inherit this process's state)."""
    import signal

    from lintml.project import shared as sharing

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sharing.share_through(shared)


# -- many files ----------------------------------------------------------------------

MIN_PARALLEL_FILES = 8  # fewer files to check than this: no process pool (its start-up costs more)
BATCH_SIZE = 16  # files per task sent to a worker


def default_jobs() -> int:
    """The CPUs this process may run on (a container's limit, where the OS says)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _pool_context():
    """fork where it is safe (Linux, one thread): workers start in milliseconds with
    lintml already imported; elsewhere the platform's default."""
    import multiprocessing
    import threading

    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _check_in_pool(jobs: list[FileJob], workers: int, done) -> list[FileOutcome]:
    """Check `jobs` in worker processes; outcomes in the order of `jobs`. A worker's
    exception is raised here, the first in file order, as the serial run would. Where
    no process can be started, the files are checked here."""
    import shutil
    import tempfile

    try:  # where the workers share the project files they read (lintml.project.shared)
        shared = tempfile.mkdtemp(prefix="lintml-run-")
    except OSError:  # no writable temporary folder: each worker reads for itself
        shared = None
    try:
        return _check_in_workers(jobs, workers, done, shared)
    finally:
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)


def _check_in_workers(jobs: list[FileJob], workers: int, done, shared: str | None) -> list[FileOutcome]:
    import concurrent.futures

    numbered = batch_order(jobs, workers)
    batches = [[jobs[i] for i in batch] for batch in numbered]
    pool = None
    try:
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=_pool_context(), initializer=_start_worker, initargs=(shared,)
        )
        futures = {pool.submit(_check_batch, batch): number for number, batch in enumerate(batches)}
    except (OSError, ImportError, NotImplementedError):  # no processes here (some sandboxes)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        outcomes = []
        for job in jobs:
            outcomes.append(check_file(job))
            done()
        return outcomes
    failed = False
    try:
        results: list[list[FileOutcome] | None] = [None] * len(batches)
        for future in concurrent.futures.as_completed(futures):
            if future.exception() is not None:
                failed = True
                break
            results[futures[future]] = future.result()
            done(len(batches[futures[future]]))
        if failed:
            pool.shutdown(wait=True, cancel_futures=True)
            for future, _ in sorted(futures.items(), key=lambda item: min(numbered[item[1]])):
                if future.done() and not future.cancelled() and future.exception() is not None:
                    raise future.exception()
    finally:
        pool.shutdown(wait=not failed, cancel_futures=True)
    outcomes: list[FileOutcome | None] = [None] * len(jobs)
    for batch, batch_outcomes in zip(numbered, results):
        for index, outcome in zip(batch, batch_outcomes):
            outcomes[index] = outcome
    return outcomes


def batch_order(jobs: list, workers: int) -> list[list[int]]:
    """The tasks sent to the workers, as lists of indexes into `jobs`: the largest files
    first, each batch a share of the bytes left (guided scheduling, by size), so that
    batches shrink towards the end and no worker is left checking a long last one
    while the others idle. (End-user corpora keep their largest files, notebooks,
    together: sent in path order, 16 at a time, the last batch was a third of a second
    longer than the others; and 16 of timm's largest files make one batch of 5-7 s.)
    Files of one size stay in path order."""
    sizes = []
    for job in jobs:
        try:
            sizes.append(os.path.getsize(job.path))
        except (OSError, AttributeError, TypeError):
            sizes.append(0)
    order = sorted(range(len(jobs)), key=lambda index: -sizes[index])
    left = sum(sizes)
    batches: list[list[int]] = []
    start = 0
    while start < len(order):
        share = left / (workers * 4)
        batch, weight = [], 0
        while start < len(order) and len(batch) < BATCH_SIZE and (not batch or weight + sizes[order[start]] <= share):
            batch.append(order[start])
            weight += sizes[order[start]]
            start += 1
        left -= weight
        batches.append(batch)
    return batches


def run_targets(
    targets: list[tuple[Path, Config]],
    *,
    fix: bool = False,
    unsafe: bool = False,
    diff: bool = False,
    force_exclude: bool = False,
    cache: bool = False,
    cache_dir: Path | None = None,
    jobs: int = 1,
    progress=None,
) -> RunResult:
    """Check every file under `targets`. With `cache`, findings are read from and
    stored in the result cache (the project root's `.lintml_cache`, `cache_dir` or
    $LINTML_CACHE_DIR); with `jobs` > 1 and enough files to check, they are checked in
    that many processes (never when fixing). `progress(done, total)` is told as files
    are done. The result is the same whichever way."""
    from lintml.project import facts as project_facts

    project_facts.refresh()  # a run reads each project as it is now
    result = RunResult()
    files = list(_collect(targets, result, force_exclude))
    total = len(files)
    done_count = 0

    def done(count: int = 1) -> None:
        nonlocal done_count
        done_count += count
        if progress is not None:
            progress(done_count, total)

    caches: dict[Path, cache_module.Cache] = {}
    file_caches: list[cache_module.Cache | None] = []
    outcomes: list[FileOutcome | None] = [None] * total
    pending: list[FileJob] = []
    for index, (path, effective, resolved) in enumerate(files):
        name = display_name(path, resolved)
        store = None
        if cache:
            folder = cache_module.default_dir(effective.root, cache_dir)
            store = caches.setdefault(folder, cache_module.Cache(folder))
        file_caches.append(store)
        data = key = None
        if store is not None:
            try:
                data = read_bytes(path)
            except InputError:
                data = None  # reported when it is checked
            if data is not None:
                key = cache_module.entry_key(data, name, effective.enabled_codes_for(path))
                findings = store.get(resolved, key, name, _facts_check(path, effective))
                # when fixing, a file with something to fix is fixed from what it is now
                if findings is not None and not ((fix or diff) and any(is_applicable(f, unsafe) for f in findings)):
                    outcomes[index] = FileOutcome(findings=findings, checked=True)
                    done()
                    continue
        pending.append(FileJob(index, path, name, effective, keyed=key is not None))

    workers = min(jobs, len(pending) // 4)  # at least 4 files a worker
    if fix or diff or workers <= 1 or len(pending) < MIN_PARALLEL_FILES:
        for job in pending:
            outcomes[job.index] = check_file(job, fix=fix, unsafe=unsafe, diff=diff)
            done()
    else:
        for job, outcome in zip(pending, _check_in_pool(pending, workers, done)):
            outcomes[job.index] = outcome

    for (_, _, resolved), outcome, store in zip(files, outcomes, file_caches):
        result.findings.extend(outcome.findings)
        result.errors.extend(outcome.errors)
        result.input_errors.extend(outcome.input_errors)
        result.fixed.extend(outcome.fixed)
        result.diffs.extend(outcome.diffs)
        result.files_checked += outcome.checked
        if store is not None and outcome.key is not None:
            store.put(resolved, outcome.key, outcome.findings, outcome.dependencies, outcome.snapshot)
    for store in caches.values():
        store.prune()
    result.caches = list(caches.values())
    result.findings.sort(key=Finding.sort_key)
    return result


def _resolved(dependencies):
    """The [kind, subject..., digest] list of a result's dependencies (None: all)."""
    if dependencies is None or isinstance(dependencies, list):
        return dependencies
    return dependencies.resolve()


def _facts_check(path: Path, config: Config):
    """How the cache tells whether a stored result's project facts still hold: read
    the project (lazily: only when an entry depends on it) and compare."""

    def still_holds(dependencies: list | None, snapshot: str | None) -> bool:
        from lintml.project.facts import project_for

        if dependencies is not None and not dependencies:
            return True  # it asked nothing of other files: no need to read the project
        project = project_for(path, config)
        if dependencies is None:  # a notebook: any change in the project re-checks it
            return snapshot is not None and snapshot == project.snapshot()
        return project.still_holds(dependencies, snapshot)

    return still_holds


class Progress:
    """`checked 1234/5678 files (410 files/s)` on one line of a terminal's stderr,
    redrawn at most ten times a second and cleared at the end."""

    def __init__(self, stream, minimum: int = 50, interval: float = 0.1) -> None:
        self.stream = stream
        self.minimum = minimum
        self.interval = interval
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False

    @staticmethod
    def wanted(stream) -> bool:
        if os.environ.get("CI"):
            return False
        try:
            return stream.isatty()
        except (AttributeError, ValueError):
            return False

    def __call__(self, done: int, total: int) -> None:
        if total <= self.minimum:
            return
        now = time.monotonic()
        if now - self.last < self.interval and done < total:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-6)
        self.stream.write(f"\r\x1b[Kchecked {done}/{total} files ({rate:.0f} files/s)")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def write_back(path: Path, source: SourceFile, text: str, result: RunResult) -> None:
    try:
        write_atomically(path, source, text)
    except OSError as error:
        result.input_errors.append(
            f"{display_name(path)}: cannot write the fixed file: {error.strerror or error}; the file was left unchanged"
        )
    except UnicodeEncodeError as error:
        result.input_errors.append(
            f"{display_name(path)}: cannot write the fixed file: the fix needs {error.object[error.start:error.end]!r}, "
            f"which {source.encoding} cannot encode; the file was left unchanged"
        )
