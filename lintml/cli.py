"""`lintml check | rules | explain | verify`: the command line."""

from __future__ import annotations

import sys

from lintml import __version__

TYPE_CHECKING = False  # typing's own, without importing typing (a replayed run imports next to nothing)
if TYPE_CHECKING:
    import argparse

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    pass


# argparse and pathlib are imported when a command runs, not here: a run whose memo
# still holds (lintml.memo) replays its output before anything else is imported.


def _parser_class():
    import argparse

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str):  # one line, not a usage dump
            raise UsageError(f"{message} (see `{self.prog} --help`)")

    return _Parser


def _codes(value: str) -> list[str]:
    return [code.strip() for code in value.split(",") if code.strip()]


def _jobs(value: str) -> int:
    import argparse

    try:
        jobs = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {jobs}")
    return jobs


def build_parser() -> argparse.ArgumentParser:
    import argparse
    from pathlib import Path

    _Parser = _parser_class()
    parser = _Parser(prog="lintml", description="Lint PyTorch and Hugging Face code.")
    parser.add_argument("--version", action="version", version=f"lintml {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    check = commands.add_parser("check", help="check files and folders (default: the current folder)")
    check.add_argument("paths", nargs="*", type=str, help="files or folders; `-` reads standard input")
    check.add_argument("--select", type=_codes, help="only these codes or prefixes (replaces the configured list)")
    check.add_argument("--extend-select", type=_codes, default=[], help="add codes or prefixes to the selection")
    check.add_argument("--ignore", type=_codes, help="codes or prefixes to leave out (replaces the configured list)")
    check.add_argument("--exclude", type=_codes, help="glob patterns to skip (replaces the defaults and the configured list)")
    check.add_argument("--extend-exclude", type=_codes, default=[], help="more glob patterns to skip")
    check.add_argument("--output-format", choices=("full", "concise", "json", "sarif", "github", "gitlab"))
    check.add_argument("--fix", action="store_true", help="apply safe fixes in place")
    check.add_argument("--unsafe-fixes", action="store_true", help="with --fix or --diff, also apply unsafe fixes")
    check.add_argument("--diff", action="store_true", help="print the fixes as a unified diff; change nothing")
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    check.add_argument("--stdin-filename", help="the name of the file read from standard input")
    check.add_argument("--config", type=Path, help="use this pyproject.toml instead of searching for one")
    check.add_argument(
        "--force-exclude",
        action="store_true",
        help="apply `exclude` to paths named on the command line too (for pre-commit, which names every file)",
    )
    check.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")
    check.add_argument(
        "--cache-dir", type=Path, help="the result cache's folder (default: $LINTML_CACHE_DIR, else .lintml_cache in the project root)"
    )
    check.add_argument(
        "-j", "--jobs", type=_jobs, help="check files in this many processes (default: the number of CPUs available; 1: in this process)"
    )

    clean = commands.add_parser("clean", help="delete the result cache of the current project")
    clean.add_argument("--cache-dir", type=Path, help="the cache folder to delete (default: as `lintml check` finds it)")
    clean.add_argument("--config", type=Path, help="the pyproject.toml whose project root holds the cache")

    rules = commands.add_parser("rules", help="list every rule")
    rules.add_argument("--format", choices=("text", "markdown"), default="text")

    explain = commands.add_parser("explain", help="print a rule's page")
    explain.add_argument("code")

    lsp = commands.add_parser(
        "lsp", help="run the language server (stdio) for editors", description="Run lintml's language server "
        "over stdio: diagnostics, quick fixes and hovers for editors (needs `pip install 'lintml[lsp]'`)."
    )
    lsp.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default and only transport)")

    verify = commands.add_parser(
        "verify",
        help="run a script under the runtime checker and confirm or refute its static findings",
        description="Run SCRIPT as `python SCRIPT ARGS...` would, watched by the runtime probes, "
        "then print each static finding of the script and of the local modules it imported as "
        "confirmed, refuted, not exercised or without a runtime probe. Exit 1 when something was "
        "confirmed, 0 otherwise, 2 when the script failed.",
    )
    verify.add_argument("--output-format", choices=("text", "json"), default="text")
    verify.add_argument("--probes", type=_codes, help="only these runtime probes (codes), e.g. LML101,LML201")
    verify.add_argument("script", help="the Python script to run")
    verify.add_argument("script_args", nargs=argparse.REMAINDER, help="its arguments, passed on verbatim")
    return parser


def main(argv: list[str] | None = None) -> int:
    from lintml import memo

    own_process = argv is None  # the command itself, not a caller in its own process (tests)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        replayed = memo.replay(argv)
        if replayed is not None:
            return replayed
        args = build_parser().parse_args(argv)
        if args.command == "check":
            return _check(args, argv, own_process)
        if args.command == "rules":
            return _rules(args)
        if args.command == "clean":
            return _clean(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "verify":
            return _verify(args)
        if args.command == "lsp":
            return _lsp(args)
        build_parser().print_help()
        return EXIT_ERROR
    except UsageError as error:
        print(f"lintml: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception:  # a bug in lintml: exit 2, never 1 (which means "findings")
        import traceback

        traceback.print_exc()
        print(
            f"lintml: internal error: {sys.exc_info()[1]!r}; please report this",
            file=sys.stderr,
        )
        return EXIT_ERROR


def _overrides(args) -> dict:
    table: dict = {}
    for key in ("select", "ignore", "exclude", "output_format"):
        value = getattr(args, key)
        if value is not None:
            table[key.replace("_", "-")] = value
    return table


def _check(args, argv: list[str] | None = None, own_process: bool = False) -> int:
    """`lintml check`; with `argv` (the command line), a plain check of folders is
    memoised (lintml.memo) for the next run with the same command line."""
    from pathlib import Path

    from lintml.config import ConfigError, config_from_table, discover
    from lintml.files import InputError, decode_source
    from lintml.runner import Progress, RunResult, default_jobs, process_text, run_targets

    paths = args.paths or ["."]
    reading_stdin = paths == ["-"]
    if "-" in paths and not reading_stdin:
        raise UsageError("`-` (standard input) cannot be combined with other paths")
    if args.stdin_filename and not reading_stdin:
        raise UsageError("--stdin-filename is only used with `-` (standard input)")

    recorder = None
    try:
        overrides = _overrides(args)

        def configure(base_path: Path):
            config = discover(base_path, args.config)
            config = config_from_table(overrides, None, config)
            if args.extend_select or args.extend_exclude:
                config = config_from_table(
                    {
                        "extend-select": [*config.extend_select, *args.extend_select],
                        "extend-exclude": [*config.extend_exclude, *args.extend_exclude],
                    },
                    None,
                    config,
                )
            return config

        if reading_stdin:
            filename = args.stdin_filename or "<stdin>"
            config = configure(Path(args.stdin_filename) if args.stdin_filename else Path.cwd())
            result = RunResult()
            source = decode_source(sys.stdin.buffer.read(), filename)
            result.files_checked = 1
            fixed = process_text(
                source.text,
                filename,
                config,
                result,
                fix=args.fix,
                unsafe=args.unsafe_fixes,
                diff=args.diff,
                path=Path(args.stdin_filename) if args.stdin_filename else None,
            )
            if result.findings or fixed is not None:
                # the text the remaining findings are in (snippets, fingerprints)
                result.fixed_sources[filename] = fixed if fixed is not None else source.text
            if args.fix:
                # the fixed program goes to stdout, the report to stderr; bytes in the
                # input's encoding, so a BOM and the line ends come back as they went in
                sys.stdout.flush()
                sys.stdout.buffer.write((fixed if fixed is not None else source.text).encode(source.encoding))
                sys.stdout.buffer.flush()
            configs = {filename: config}
        else:
            configs = {p: configure(Path(p)) for p in paths}
            recorder = _memo_recorder(args, argv, configs)
            if own_process:
                _tune_gc()
            progress = Progress(sys.stderr) if Progress.wanted(sys.stderr) else None
            try:
                result = run_targets(
                    [(Path(p), config) for p, config in configs.items()],
                    fix=args.fix,
                    unsafe=args.unsafe_fixes,
                    diff=args.diff,
                    force_exclude=args.force_exclude,
                    cache=not args.no_cache,
                    cache_dir=args.cache_dir,
                    jobs=args.jobs or default_jobs(),
                    progress=progress,
                )
            finally:
                if progress is not None:
                    progress.clear()
    except (ConfigError, InputError) as error:
        print(f"lintml: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    output = _Emitted()
    status = _report(args, result, configs, reading_stdin, output)
    if recorder is not None and status != EXIT_ERROR:
        recorder.save("".join(output.out), "".join(output.err), status)
    return status


GC_THRESHOLD = (1_000_000, 10, 10)


def _tune_gc() -> None:
    """A check allocates hundreds of thousands of short-lived nodes a file, nearly all
    freed by reference counting (a check leaves no cycles behind: see
    tests/test_engine_memory.py); Python's default cycle collection (every 700 net
    allocations) then ran about 1,500 times on 232 end-user files and walked every live
    object a dozen times: 0.44 s of a 5 s run. What is imported by now stays for the
    run (frozen: never scanned), and a collection comes only after a million objects
    more are alive than at the last one, which a file's tree does not reach: on the same
    files 0.003 s of collections, against 0.05-0.18 s at 10,000; peak memory on
    transformers' 3,000 files is the same (220 MB, -j 1). The process (and the workers it
    forks) is lintml's alone, so this changes nobody else's. Not done in the language
    server or under flake8, whose processes are shared."""
    import gc

    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


class _Emitted:
    """What a check printed: written as it comes, and kept for the run memo."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []

    def stdout(self, text: str) -> None:
        sys.stdout.write(text)
        self.out.append(text)

    def stderr(self, text: str) -> None:
        sys.stderr.write(text)
        self.err.append(text)


def _memo_recorder(args, argv, configs):
    """A run memo's recorder when this run may be memoised: a plain check (no fix, no
    diff, the cache on) of folders only; None otherwise, or when recording fails."""
    import os
    from pathlib import Path

    if argv is None or args.fix or args.diff or args.no_cache or not all(os.path.isdir(p) for p in configs):
        return None
    from lintml import cache, memo
    from lintml.config import Config
    from lintml.project.layout import find_root

    first = next(iter(configs.values()))
    recorder = memo.Recorder(argv, str(cache.default_dir(first.root, args.cache_dir)))
    tests = [Config().exclusion_test(), *(config.exclusion_test() for config in configs.values())]
    sources = [config.source for config in configs.values() if config.source is not None]
    if args.config is not None:
        sources.append(args.config)
    sources.extend(_library_files())
    try:
        ok = recorder.watch(list(configs), lambda p: find_root(Path(p)), tests, sources)
    except OSError:
        ok = False
    return recorder if ok else None


def _library_files() -> list[str]:
    """The files that tell which LibCST is installed (its parser decides what parses):
    an upgrade rewrites them, so a memo made with another LibCST is not replayed."""
    import importlib.util
    import os

    try:
        spec = importlib.util.find_spec("libcst")
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.origin:
        return []
    folder = os.path.dirname(spec.origin)
    try:
        native = sorted(name for name in os.listdir(folder) if name.startswith("native"))  # the parser
    except OSError:
        native = []
    return [spec.origin, folder, os.path.join(folder, "_version.py"), *(os.path.join(folder, name) for name in native)]


def _report(args, result, configs, reading_stdin: bool, emitted: _Emitted) -> int:
    """Print a check's result; its exit status."""
    from lintml.output import Report, render

    first_config = next(iter(configs.values()))
    fmt = first_config.output_format
    for line in result.input_errors:
        emitted.stderr(f"lintml: error: {line}\n")
    for error in result.errors:
        emitted.stderr(
            f"lintml: internal error: {error.code} crashed on {error.filename} ({error.error}); "
            "the other rules and files were still checked. Please report this.\n"
        )

    if args.diff:
        emitted.stdout("".join(result.diffs))
        if result.input_errors or result.errors:
            return EXIT_ERROR
        return EXIT_FINDINGS if result.diffs and not args.exit_zero else EXIT_CLEAN

    sources = _sources_for(result)
    report = Report(
        findings=result.findings,
        sources=sources,
        enabled=frozenset().union(*(c.enabled_codes() for c in configs.values())),
        root=first_config.root,
        unsafe_fixes=args.unsafe_fixes,
        fixed=len(result.fixed),
    )
    output = render(fmt, report)
    if result.files_checked == 0 and not result.input_errors and fmt in ("full", "concise"):
        emitted.stderr("lintml: warning: no Python files found\n")
    (emitted.stderr if (reading_stdin and args.fix) else emitted.stdout)(output)
    if result.input_errors or result.errors:
        return EXIT_ERROR
    if result.findings and not args.exit_zero:
        return EXIT_FINDINGS
    return EXIT_CLEAN


def _clean(args) -> int:
    """Delete the current project's cache folder(s): the project root's `.lintml_cache`
    and the folder `--cache-dir` or $LINTML_CACHE_DIR names; only folders lintml made."""
    import os
    from pathlib import Path

    from lintml import cache
    from lintml.config import ConfigError, discover

    try:
        root = discover(Path.cwd(), args.config).root
    except ConfigError as error:
        print(f"lintml: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    candidates = [root / cache.CACHE_DIR_NAME]
    if args.cache_dir:
        candidates.append(args.cache_dir)
    elif os.environ.get(cache.ENV_DIR):
        candidates.append(Path(os.environ[cache.ENV_DIR]))
    removed = False
    seen: set[str] = set()
    for folder in candidates:
        key = os.path.abspath(folder)
        if key in seen:
            continue
        seen.add(key)
        if cache.remove(folder):
            print(f"removed {folder}")
            removed = True
        elif folder.exists() and folder != candidates[0]:
            print(f"lintml: warning: {folder} is not a lintml cache folder; left as it is", file=sys.stderr)
    if not removed:
        print("no cache to remove")
    return EXIT_CLEAN


def _sources_for(result) -> dict[str, str]:
    """The text of each file with findings, as it is now (for snippets and fingerprints)."""
    from pathlib import Path

    from lintml.files import InputError, read_source

    sources = dict(result.fixed_sources)
    for filename in {f.filename for f in result.findings} - sources.keys():
        try:
            sources[filename] = read_source(Path(filename)).text
        except InputError:
            pass
    return sources


def _rules(args) -> int:
    from lintml.registry import RULES

    rows = [
        (
            rule.code,
            rule.name,
            rule.family,
            "on" if rule.default_enabled else "off",
            rule.fix_safety.value if rule.fix_safety else "-",
        )
        for rule in RULES.values()
    ]
    if args.format == "markdown":
        print(rules_markdown())
        return EXIT_CLEAN
    header = ("code", "name", "family", "default", "fix")
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return EXIT_CLEAN


def rules_markdown() -> str:
    """The README's rule table, generated from the registry and the rule pages."""
    from lintml.registry import RULES, page

    lines = ["| Code | Name | What it finds | Default | Fix |", "|---|---|---|---|---|"]
    for rule in RULES.values():
        rule_page = page(rule.code)
        what = rule_page.short_description if rule_page else rule.summary
        fix = rule.fix_safety.value if rule.fix_safety else "-"
        lines.append(
            f"| [{rule.code}](rules/{rule.code}.md) | {rule.name} | {what} | "
            f"{'on' if rule.default_enabled else 'off'} | {fix} |"
        )
    return "\n".join(lines)


def _explain(args) -> int:
    from lintml.registry import RULES, page

    code = args.code.upper()
    if code not in RULES:
        raise UsageError(f"unknown rule code `{args.code}`; `lintml rules` lists them")
    rule_page = page(code)
    if rule_page is None:
        print(f"lintml: error: the page for {code} is missing from this installation", file=sys.stderr)
        return EXIT_ERROR
    text = rule_page.text.split("\n---\n", 1)[1] if rule_page.text.startswith("---\n") else rule_page.text
    sys.stdout.write(text.lstrip("\n"))
    return EXIT_CLEAN


def _verify(args) -> int:
    import json
    from pathlib import Path

    script = Path(args.script)
    if not script.is_file():
        raise UsageError(f"{args.script}: no such file")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UsageError("`lintml verify` needs PyTorch: pip install 'lintml[runtime]'") from None
    from lintml.runtime.probes import ALL_CODES
    from lintml.runtime.verify import verify

    if args.probes:
        unknown = sorted({c.upper() for c in args.probes} - set(ALL_CODES))
        if unknown:
            raise UsageError(f"no runtime probe for {', '.join(unknown)} (probes: {', '.join(ALL_CODES)})")
    result = verify(script, args.script_args, codes=args.probes)
    sys.stdout.flush()
    if result.run.error:
        print(result.run.error.rstrip(), file=sys.stderr)
    elif result.run.failed:
        print(f"lintml verify: {args.script} exited with status {result.run.exit_status}", file=sys.stderr)
    if args.output_format == "json":
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.render())
    return result.exit_code


def _lsp(args) -> int:
    try:
        import pygls  # noqa: F401
    except ImportError:
        raise UsageError("`lintml lsp` needs pygls: pip install 'lintml[lsp]'") from None
    from lintml.lsp import serve

    serve()
    return EXIT_CLEAN
