"""Checking and fixing paths: configuration per path, reading, linting, writing back."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from lintml import config as config_module
from lintml.config import Config
from lintml.engine import FileResult, InternalError, lint_source
from lintml.files import InputError, SourceFile, iter_python_files, read_source, write_atomically
from lintml.findings import Finding
from lintml.fixes import fix_source, parses
from lintml.notebooks import NotebookError, is_notebook, lint_notebook


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[InternalError] = field(default_factory=list)
    input_errors: list[str] = field(default_factory=list)  # unreadable files: one line each
    files_checked: int = 0
    fixed: list[Finding] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    fixed_sources: dict[str, str] = field(default_factory=dict)  # for stdin


def collect_files(targets: list[tuple[Path, Config]], result: RunResult, force_exclude: bool = False):
    """(file, its configuration) for every Python file under the target paths, each
    file once; a path that does not exist is reported and the others still checked."""
    seen: set[Path] = set()
    for path, config in targets:
        try:
            files = list(iter_python_files(path, config, force_exclude, notebooks=True))
        except InputError as error:
            result.input_errors.append(str(error))
            continue
        for file in files:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                yield file, config


def display_name(path: Path) -> str:
    """The path as the user would write it: relative to the current folder if under it."""
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def lint_text(text: str, filename: str, config: Config, path: Path | None = None) -> FileResult:
    return lint_source(text, filename, config.enabled_codes_for(path or Path(filename)))


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
    try:
        outcome = lint_notebook(
            text, filename, config.enabled_codes_for(path or Path(filename)), fix=fix, unsafe=unsafe, diff=diff
        )
    except NotebookError as error:
        raise InputError(f"{filename}: cannot read the notebook: {error}") from None
    result.findings.extend(outcome.findings)
    result.errors.extend(outcome.errors)
    result.diffs.extend(outcome.diffs)
    result.fixed.extend(outcome.fixed)
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
    """Check `paths`, each with `config` or the configuration found for it."""
    targets = [(path, config or config_module.discover(path, config_file)) for path in paths]
    return run_targets(targets, fix=fix, unsafe=unsafe, diff=diff)


def run_targets(
    targets: list[tuple[Path, Config]],
    *,
    fix: bool = False,
    unsafe: bool = False,
    diff: bool = False,
    force_exclude: bool = False,
) -> RunResult:
    result = RunResult()
    for path, effective in collect_files(targets, result, force_exclude):
        name = display_name(path)
        try:
            source = read_source(path)
        except InputError as error:
            result.input_errors.append(str(error))
            continue
        try:
            new_text = process_text(
                source.text, name, effective, result, fix=fix, unsafe=unsafe, diff=diff, path=path
            )
        except InputError as error:  # a notebook that is not one
            result.input_errors.append(str(error))
            continue
        result.files_checked += 1
        if new_text is not None:
            write_back(path, source, new_text, result)
    result.findings.sort(key=Finding.sort_key)
    return result


def write_back(path: Path, source: SourceFile, text: str, result: RunResult) -> None:
    try:
        write_atomically(path, source, text)
    except (OSError, UnicodeEncodeError) as error:
        result.input_errors.append(f"{display_name(path)}: cannot write the fixed file: {error}")
