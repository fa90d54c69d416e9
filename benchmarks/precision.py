"""How often lintml's rules fire on real code that nobody on this project wrote.

Downloads pinned releases of popular PyTorch / Hugging Face libraries and applications
from PyPI (wheels; an sdist only where there is no wheel), unpacks them into a cache
folder, runs lintml in-process over their `.py` files and prints a Markdown report:
findings per rule and per package, the share of files each rule fires in, and the
rules that fired nowhere. With `--findings` every finding is also written as one JSON
object per line, with its source line and 3 lines of context either side; with
`--sample N --seed S` a deterministic random sample of N findings per rule is marked
for a precision review.

    .venv/bin/python benchmarks/precision.py --output report.md \\
        --findings /tmp/findings.jsonl --sample 60 --seed 0

Only the standard library and lintml are used. Downloaded code lives in the cache
folder (default benchmarks/.cache/, git-ignored) and must never be committed.
"""

from __future__ import annotations

import argparse
import datetime as _datetime
import json
import multiprocessing
import os
import platform
import random
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import lintml
import lintml.files
from lintml.config import Config
from lintml.registry import RULES, codes_matching
from lintml.runner import run_targets

HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / ".cache"
CONTEXT_LINES = 3

# (name, version, kind): exact pins, so that two runs see the same code.
PACKAGES: tuple[tuple[str, str, str], ...] = (
    ("timm", "1.0.31", "library"),
    ("transformers", "5.23.0", "library"),
    ("trl", "1.16.0", "library"),
    ("peft", "0.21.2", "library"),
    ("diffusers", "0.42.1", "library"),
    ("pytorch-lightning", "2.6.6", "library"),
    ("accelerate", "1.15.0", "library"),
    ("sentence-transformers", "6.2.0", "library"),
    ("litgpt", "0.5.13", "application"),
    ("torchtune", "0.6.1", "application"),
    ("ultralytics", "8.4.190", "application"),
    ("open-clip-torch", "3.3.0", "application"),
    ("simpletransformers", "0.70.8", "application"),
)


# -- downloading and unpacking ----------------------------------------------------------


class PackageError(Exception):
    """A package could not be downloaded or unpacked; one line for the user."""


def _normalized(name: str) -> str:
    """The project name as it appears in distribution file names (PEP 427/625)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _find_archive(wheels: Path, name: str, version: str) -> Path | None:
    """An already-downloaded wheel (preferred) or sdist of NAME==VERSION."""
    if not wheels.is_dir():
        return None
    wanted = _normalized(name)
    wheel = sdist = None
    for candidate in sorted(wheels.iterdir()):
        lower = candidate.name.lower()
        for suffix in (".whl", ".tar.gz", ".zip"):
            if lower.endswith(suffix):
                stem = lower[: -len(suffix)]
                break
        else:
            continue
        if suffix == ".whl":
            parts = stem.split("-")
            if len(parts) >= 2 and _normalized(parts[0]) == wanted and parts[1] == version.lower():
                wheel = wheel or candidate
        else:
            project, _, found_version = stem.rpartition("-")
            if _normalized(project) == wanted and found_version == version.lower():
                sdist = sdist or candidate
    return wheel or sdist


def _pip_download(name: str, version: str, wheels: Path, binary: bool) -> tuple[bool, str]:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    command += ["--only-binary=:all:"] if binary else ["--no-binary=:all:"]
    command += [f"{name}=={version}", "-d", str(wheels)]
    process = subprocess.run(command, capture_output=True, text=True)
    lines = [line.strip() for line in (process.stderr + process.stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return process.returncode == 0, (errors or lines or ["pip gave no output"])[-1]


def fetch(name: str, version: str, cache: Path, log=print) -> Path:
    """The unpacked folder of NAME==VERSION under CACHE/src/, downloading and unpacking
    what is not there yet."""
    unpacked = cache / "src" / f"{name}-{version}"
    if unpacked.is_dir():
        return unpacked
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    archive = _find_archive(wheels, name, version)
    if archive is None:
        ok, why = _pip_download(name, version, wheels, binary=True)
        if not ok:
            log(f"{name}=={version}: no wheel ({why}); trying the sdist")
            ok, why_sdist = _pip_download(name, version, wheels, binary=False)
            if not ok:
                raise PackageError(f"download failed: {why_sdist}")
        archive = _find_archive(wheels, name, version)
        if archive is None:
            raise PackageError(f"pip succeeded but no archive of {name}=={version} is in {wheels}")
    if not archive.name.endswith(".whl"):
        log(f"{name}=={version}: using the sdist {archive.name} (no wheel)")
    _unpack(archive, unpacked)
    return unpacked


def _unpack(archive: Path, destination: Path) -> None:
    """Unpack into a temporary folder beside `destination`, then rename: a run stopped
    half-way never leaves a half-unpacked package that later runs would trust."""
    temporary = destination.with_name(destination.name + ".partial")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        if archive.name.endswith((".whl", ".zip")):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(temporary)  # zipfile drops `..` and absolute names
        else:
            with tarfile.open(archive) as tarred:
                if hasattr(tarfile, "data_filter"):
                    tarred.extractall(temporary, filter="data")
                else:  # pragma: no cover - Python without PEP 706
                    for member in tarred.getmembers():
                        if member.name.startswith(("/", "..")) or "/../" in member.name:
                            raise PackageError(f"{archive.name}: unsafe member {member.name}")
                    tarred.extractall(temporary)
        if not archive.name.endswith(".whl"):
            # an sdist has one top folder, NAME-VERSION/: paths start below it
            entries = list(temporary.iterdir())
            if len(entries) == 1 and entries[0].is_dir():
                inner = entries[0]
                for child in inner.iterdir():
                    child.rename(temporary / child.name)
                inner.rmdir()
        temporary.rename(destination)
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise PackageError(f"cannot unpack {archive.name}: {error}") from None


# -- linting ------------------------------------------------------------------------------


@dataclass
class Hit:
    """One finding, with what a reviewer needs to judge it."""

    package: str
    path: str  # relative to the package's unpacked root, with `/`
    line: int
    column: int
    code: str
    message: str
    source: str
    sampled: bool = False

    def sort_key(self) -> tuple:
        return (self.package, self.path, self.line, self.code, self.column, self.message)

    def as_json(self) -> dict:
        return {
            "package": self.package,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "name": RULES[self.code].name if self.code in RULES else None,
            "message": self.message,
            "source": self.source,
            "sampled": self.sampled,
        }


@dataclass
class PackageResult:
    name: str
    version: str
    root: Path | None = None
    files: int = 0  # .py files checked
    lines: int = 0  # physical lines
    code_lines: int = 0  # non-blank lines that are not only a comment
    hits: list[Hit] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    input_errors: list[str] = field(default_factory=list)
    failure: str | None = None  # could not be downloaded or unpacked
    seconds: float = 0.0  # linting, wall clock

    def files_with(self, code: str) -> int:
        return len({hit.path for hit in self.hits if hit.code == code})

    def count(self, code: str) -> int:
        return sum(1 for hit in self.hits if hit.code == code)


def context(lines: list[str], line: int, around: int = CONTEXT_LINES) -> str:
    """The finding's line and `around` lines either side, numbered, the line marked `>`."""
    first = max(1, line - around)
    last = min(len(lines), line + around)
    width = len(str(last))
    return "\n".join(
        f"{'>' if number == line else ' '} {number:>{width}} | {lines[number - 1]}"
        for number in range(first, last + 1)
    )


def count_lines(text: str) -> tuple[int, int]:
    """(physical lines, lines of code): non-blank lines that are not only a comment
    (docstrings count as code; cheap, and good enough to compare packages)."""
    lines = text.splitlines()
    return len(lines), sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#"))


def lint_file(task: tuple[str, str, tuple[str, ...]]) -> dict:
    """Lint one file in-process (also the worker function of the pool): its findings
    with context, errors and line counts, as plain data."""
    path_text, relative, select = task
    path = Path(path_text)
    config = Config(select=select, root=path.parent)
    result = run_targets([(path, config)])
    outcome = {
        "path": relative,
        "checked": result.files_checked,
        "lines": 0,
        "code_lines": 0,
        "findings": [],
        "internal_errors": [f"{relative}: {error.code}: {error.error}" for error in result.errors],
        "input_errors": [f"{relative}: {error}" for error in result.input_errors],
    }
    if not result.files_checked:
        return outcome
    try:
        text = lintml.files.read_source(path).text
    except lintml.files.InputError as error:  # pragma: no cover - read just above
        outcome["input_errors"].append(str(error))
        return outcome
    outcome["lines"], outcome["code_lines"] = count_lines(text)
    lines = text.splitlines()
    for finding in result.findings:
        outcome["findings"].append(
            (finding.line, finding.column, finding.code, finding.message, context(lines, finding.line))
        )
    return outcome


def python_files(root: Path) -> list[tuple[Path, str]]:
    """The `.py` files lintml would check under `root` (its default excludes apply),
    with their paths relative to `root`."""
    config = Config(root=root)
    return [
        (path, path.relative_to(root).as_posix()) for path in lintml.files.iter_python_files(root, config)
    ]


def lint_package(
    name: str, version: str, root: Path, select: tuple[str, ...], pool=None
) -> PackageResult:
    """Lint an already-unpacked package folder (the part of the benchmark with no
    network): every `.py` file under `root`, with `select`."""
    package = PackageResult(name, version, root)
    started = time.perf_counter()
    tasks = [(str(path), relative, select) for path, relative in python_files(root)]
    outcomes = pool.imap(lint_file, tasks, chunksize=8) if pool is not None else map(lint_file, tasks)
    for outcome in outcomes:
        package.files += outcome["checked"]
        package.lines += outcome["lines"]
        package.code_lines += outcome["code_lines"]
        package.internal_errors += outcome["internal_errors"]
        package.input_errors += outcome["input_errors"]
        for line, column, code, message, source in outcome["findings"]:
            package.hits.append(Hit(name, outcome["path"], line, column, code, message, source))
    package.hits.sort(key=Hit.sort_key)
    package.seconds = time.perf_counter() - started
    return package


# -- selection and sampling ---------------------------------------------------------------


def resolve_select(selectors: list[str]) -> tuple[tuple[str, ...], list[str], list[str]]:
    """(selectors that match a rule today, the codes that run, selectors that match none).
    The syntax-error rule always runs, as in lintml itself."""
    known = tuple(selector for selector in selectors if codes_matching(selector))
    unknown = [selector for selector in selectors if not codes_matching(selector)]
    codes = sorted(Config(select=known).enabled_codes()) if known else []
    return known, codes, unknown


def sample(hits: list[Hit], size: int, seed: int) -> dict[str, list[Hit]]:
    """Mark, for each rule, all its findings if it has at most `size`, else `size` of
    them chosen with `random.Random(seed)` (a fresh generator per rule, so one rule's
    sample does not depend on which other rules exist). Findings are sorted by
    (package, path, line, code) first, so the choice does not depend on run order.
    Returns the sampled findings per code, in that order."""
    by_code: dict[str, list[Hit]] = defaultdict(list)
    for hit in sorted(hits, key=Hit.sort_key):
        by_code[hit.code].append(hit)
    chosen: dict[str, list[Hit]] = {}
    for code in sorted(by_code):
        population = by_code[code]
        if len(population) <= size:
            picked = population
        else:
            indexes = sorted(random.Random(seed).sample(range(len(population)), size))
            picked = [population[index] for index in indexes]
        for hit in picked:
            hit.sampled = True
        chosen[code] = picked
    return chosen


# -- the report ---------------------------------------------------------------------------


@dataclass
class RuleStats:
    code: str
    findings: int
    files_with: int  # files with at least one finding of the rule
    share: float | None  # files_with / .py files checked (None: no file checked)
    per_package: dict[str, tuple[int, int]]  # package -> (findings, files with findings)


def rule_stats(packages: list[PackageResult], codes: list[str]) -> dict[str, RuleStats]:
    """Per rule, over the packages that were checked: every code in `codes`, and any
    other code that fired."""
    checked = [package for package in packages if package.failure is None]
    total_files = sum(package.files for package in checked)
    fired = {hit.code for package in checked for hit in package.hits}
    stats = {}
    for code in sorted(set(codes) | fired):
        per_package = {
            package.name: (package.count(code), package.files_with(code))
            for package in checked
            if package.count(code)
        }
        files_with = sum(files for _, files in per_package.values())
        stats[code] = RuleStats(
            code,
            sum(found for found, _ in per_package.values()),
            files_with,
            files_with / total_files if total_files else None,
            per_package,
        )
    return stats


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{100.0 * share:.2f}%"


def _label(package: PackageResult) -> str:
    return f"{package.name}=={package.version}"


def render(
    packages: list[PackageResult],
    codes: list[str],
    *,
    command: str,
    select: list[str],
    unknown: list[str],
    samples: dict[str, list[Hit]] | None = None,
    sample_size: int | None = None,
    seed: int | None = None,
    notes: list[str] = (),
    total_seconds: float | None = None,
) -> str:
    checked = [package for package in packages if package.failure is None]
    total_files = sum(package.files for package in checked)
    all_hits = [hit for package in checked for hit in package.hits]
    stats = rule_stats(packages, codes)
    codes = list(stats)
    now = _datetime.datetime.now(_datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out: list[str] = []
    add = out.append
    add("# lintml on real code: how often each rule fires")
    add("")
    add(f"- Command: `{command}`")
    add(f"- lintml {lintml.__version__}, Python {platform.python_version()}, {now}")
    add(f"- Selection: `{','.join(select)}` -> {', '.join(codes) or 'no rule'}")
    if unknown:
        add(f"- Selectors that match no rule today (ignored): {', '.join(unknown)}")
    add(f"- Packages checked: {len(checked)} of {len(packages)}; {total_files} `.py` files")
    if total_seconds is not None:
        add(f"- Wall clock: {total_seconds:.1f} s in all (linting: {sum(p.seconds for p in checked):.1f} s)")
    for note in notes:
        add(f"- {note}")
    add("")
    add("Share of files = files in which the rule fires / `.py` files checked. These are raw")
    add("counts: whether a finding is right is for the review of the sample (see `--findings`).")
    add("")

    add("## Per rule")
    add("")
    add("| Code | Name | Findings | Files with findings | Share of files | Per package: findings (files) |")
    add("|---|---|---:|---:|---:|---|")
    for code, stat in stats.items():
        breakdown = ", ".join(f"{name} {found} ({files})" for name, (found, files) in stat.per_package.items())
        name = RULES[code].name if code in RULES else "?"
        add(
            f"| {code} | {name} | {stat.findings} | {stat.files_with} | {_percent(stat.share)} "
            f"| {breakdown or '-'} |"
        )
    add("")

    add("## Per package")
    add("")
    add(
        "| Package | Kind | Files | Lines | Lines of code | Findings | Files with findings "
        "| Internal errors | Input errors | Lint time |"
    )
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    kinds = {name: kind for name, _, kind in PACKAGES}
    for package in packages:
        if package.failure is not None:
            add(f"| {_label(package)} | {kinds.get(package.name, '')} | failed: {package.failure} | | | | | | | |")
            continue
        add(
            f"| {_label(package)} | {kinds.get(package.name, '')} | {package.files} | {package.lines} "
            f"| {package.code_lines} | {len(package.hits)} | {len({hit.path for hit in package.hits})} "
            f"| {len(package.internal_errors)} | {len(package.input_errors)} | {package.seconds:.1f} s |"
        )
    if len(checked) > 1:
        add(
            f"| **all** | | {total_files} | {sum(p.lines for p in checked)} | {sum(p.code_lines for p in checked)} "
            f"| {len(all_hits)} | {sum(len({h.path for h in p.hits}) for p in checked)} "
            f"| {sum(len(p.internal_errors) for p in checked)} | {sum(len(p.input_errors) for p in checked)} "
            f"| {sum(p.seconds for p in checked):.1f} s |"
        )
    add("")

    add("## Silent on real code")
    add("")
    silent = [code for code, stat in stats.items() if not stat.findings]
    if silent:
        add("Selected rules that fired in no file of any package checked:")
        add("")
        for code in silent:
            add(f"- {code} {RULES[code].name if code in RULES else ''}")
    else:
        add("Every selected rule fired at least once.")
    add("")

    add("## Errors")
    add("")
    failures = [package for package in packages if package.failure is not None]
    internal = [(package, error) for package in checked for error in package.internal_errors]
    inputs = [(package, error) for package in checked for error in package.input_errors]
    if not (failures or internal or inputs):
        add("None: every package was fetched, every file read, no check crashed.")
    for package in failures:
        add(f"- download/unpack: {_label(package)}: {package.failure}")
    for package, error in internal:
        add(f"- internal error: {package.name}: {error}")
    for package, error in inputs:
        add(f"- input error: {package.name}: {error}")
    add("")

    if samples is not None:
        add("## Sample for review")
        add("")
        add(
            f"Up to {sample_size} findings per rule, drawn with `random.Random({seed})` from the findings "
            "sorted by (package, path, line, code); rules with no more findings than that are taken whole. "
            'Marked `"sampled": true` in the findings file.'
        )
        add("")
        for code in sorted(samples):
            picked = samples[code]
            add(f"- **{code}** ({RULES[code].name if code in RULES else '?'}): {len(picked)} of {stats[code].findings}")
            for hit in picked:
                add(f"  - {hit.package} `{hit.path}:{hit.line}:{hit.column}`")
        if not samples:
            add("No findings to sample.")
        add("")
    return "\n".join(out)


def write_findings(path: Path, hits: list[Hit]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as stream:
        for hit in sorted(hits, key=Hit.sort_key):
            stream.write(json.dumps(hit.as_json(), ensure_ascii=False) + "\n")


# -- command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="precision.py", description=__doc__.split("\n\n")[0].strip()
    )
    parser.add_argument("--select", default="LML1,LML2", help="comma-separated codes or prefixes (default: LML1,LML2)")
    parser.add_argument("--packages", help="comma-separated names from the pin list (default: all)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"download/unpack folder (default: {DEFAULT_CACHE})")
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    parser.add_argument("--findings", type=Path, help="write every finding here, one JSON object per line")
    parser.add_argument("--sample", type=int, metavar="N", help="mark up to N random findings per rule as sampled")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample (default: 0)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for linting (default: 2; 1: no pool)")
    args = parser.parse_args(argv)
    if args.sample is not None and args.sample < 0:
        parser.error("--sample must be >= 0")
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    names = [name for name, _, _ in PACKAGES]
    if args.packages:
        wanted = [name.strip() for name in args.packages.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in names]
        if unknown:
            parser.error(f"unknown package(s) {', '.join(unknown)}; known: {', '.join(names)}")
        args.package_list = [entry for entry in PACKAGES if entry[0] in wanted]
    else:
        args.package_list = list(PACKAGES)
    args.selectors = [item.strip() for item in args.select.split(",") if item.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["python", os.path.relpath(__file__), *(sys.argv[1:] if argv is None else argv)])
    started = time.perf_counter()
    select, codes, unknown = resolve_select(args.selectors)
    for selector in unknown:
        print(f"warning: --select {selector} matches no rule today; ignored", file=sys.stderr)
    if not select:
        print("error: --select matches no rule", file=sys.stderr)
        return 2

    notes: list[str] = []

    def log(message: str) -> None:
        print(message, file=sys.stderr)
        notes.append(message)

    packages: list[PackageResult] = []
    pool = multiprocessing.Pool(args.jobs) if args.jobs > 1 else None
    try:
        for name, version, _ in args.package_list:
            try:
                fetch_started = time.perf_counter()
                root = fetch(name, version, args.cache, log)
                fetch_seconds = time.perf_counter() - fetch_started
            except PackageError as error:
                print(f"{name}=={version}: {error}", file=sys.stderr)
                packages.append(PackageResult(name, version, failure=str(error)))
                continue
            package = lint_package(name, version, root, select, pool)
            packages.append(package)
            print(
                f"{name}=={version}: {package.files} files, {len(package.hits)} findings, "
                f"{len(package.internal_errors)} internal errors, {len(package.input_errors)} input errors "
                f"(fetch {fetch_seconds:.1f} s, lint {package.seconds:.1f} s)",
                file=sys.stderr,
            )
            for error in package.internal_errors:
                print(f"  internal error: {error}", file=sys.stderr)
            for error in package.input_errors:
                print(f"  input error: {error}", file=sys.stderr)
    finally:
        if pool is not None:
            pool.close()
            pool.join()

    hits = [hit for package in packages for hit in package.hits]
    samples = sample(hits, args.sample, args.seed) if args.sample is not None else None
    report = render(
        packages,
        codes,
        command=command,
        select=args.selectors,
        unknown=unknown,
        samples=samples,
        sample_size=args.sample,
        seed=args.seed,
        notes=notes,
        total_seconds=time.perf_counter() - started,
    )
    print(report)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report + "\n", encoding="utf-8")
    if args.findings:
        write_findings(args.findings, hits)
    failed = [package for package in packages if package.failure is not None]
    if failed:
        print(f"{len(failed)} package(s) failed: {', '.join(p.name for p in failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
