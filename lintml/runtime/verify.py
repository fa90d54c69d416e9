"""`lintml verify SCRIPT ARGS...`: run a script under `watch()`, check it and the local
modules it imported statically, and join the two by file, line and code.

Each static finding ends up:
- confirmed: a probe saw the rule's condition hold at that place (evidence attached);
- refuted: the place ran and the probe saw the condition not hold;
- not exercised: the place never ran (or not in a way the probe could judge);
- no runtime probe: the rule has no runtime side (LML103, LML204, ...).
Confirmed observations that no finding predicted are listed after them.

Where a probe can see the rule's condition: the forward itself for LML101/201/303, the
backward for LML402, the clip for LML406, exactly at the finding's line; an optimizer
step or a forward in the same loop for LML102/202/501 (the finding points at the
accumulation, the `eval()` call, the loop); in the same loop or function for LML203; anywhere in
the file for LML301/401/403, whose findings point at a configuration line (the
`use_cache=False`, the `.half()`) rather than at the call that pays for it.
"""

from __future__ import annotations

import ast
import builtins
import os
import sys
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

from lintml.runtime.observations import Observation

CONFIRMED, REFUTED, NOT_EXERCISED, NO_PROBE = "confirmed", "refuted", "not-exercised", "no-probe"

EXACT, LOOP, FUNCTION, FILE = "line", "loop", "function", "file"
_REACH = {
    "LML101": (EXACT,),
    "LML201": (EXACT,),
    "LML303": (EXACT,),
    "LML402": (EXACT,),
    "LML406": (EXACT,),
    "LML102": (EXACT, LOOP),
    "LML202": (EXACT, LOOP),
    "LML501": (EXACT, LOOP),
    "LML203": (EXACT, LOOP, FUNCTION),
    "LML301": (EXACT, LOOP, FUNCTION, FILE),
    "LML401": (EXACT, LOOP, FUNCTION, FILE),
    "LML403": (EXACT, LOOP, FUNCTION, FILE),
}


@dataclass
class Verdict:
    finding: object  # lintml.findings.Finding
    status: str
    observation: Observation | None = None
    matched_by: str | None = None

    def to_json(self) -> dict:
        f = self.finding
        return {
            "code": f.code,
            "filename": f.filename,
            "line": f.start.line,
            "column": f.start.column,
            "end_line": f.end.line,
            "end_column": f.end.column,
            "message": f.message,
            "status": self.status,
            "matched_by": self.matched_by,
            "observation": self.observation.to_json() if self.observation else None,
        }


@dataclass
class ScriptRun:
    exit_status: int | str | None = 0
    failed: bool = False
    error: str | None = None  # the script's traceback, as Python would print it
    local_files: list[Path] = field(default_factory=list)


@dataclass
class VerifyResult:
    script: str
    args: list[str]
    run: ScriptRun
    verdicts: list[Verdict]
    runtime_only: list[Observation]
    observations: list[Observation]
    disabled_probes: dict
    static_errors: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # what was checked statically

    @property
    def exit_code(self) -> int:
        if self.run.failed:
            return 2
        confirmed = any(v.status == CONFIRMED for v in self.verdicts) or bool(self.runtime_only)
        return 1 if confirmed else 0

    def summary(self) -> dict:
        counts = {status: 0 for status in (CONFIRMED, REFUTED, NOT_EXERCISED, NO_PROBE)}
        for verdict in self.verdicts:
            counts[verdict.status] += 1
        counts["runtime-only"] = len(self.runtime_only)
        return counts

    def to_json(self) -> dict:
        return {
            "script": self.script,
            "args": self.args,
            "exit_code": self.exit_code,
            "script_failed": self.run.failed,
            "script_exit_status": self.run.exit_status,
            "script_error": self.run.error,
            "files": self.files,
            "findings": [v.to_json() for v in self.verdicts],
            "runtime_only": [o.to_json() for o in self.runtime_only],
            "observations": [o.to_json() for o in self.observations],
            "disabled_probes": self.disabled_probes,
            "static_errors": self.static_errors,
            "summary": self.summary(),
        }

    def render(self) -> str:
        lines = []
        for verdict in self.verdicts:
            f = verdict.finding
            head = f"{f.filename}:{f.start.line}:{f.start.column}: {f.code} {verdict.status}: {f.message}"
            lines.append(head)
            if verdict.observation is not None:
                where = ""
                if verdict.matched_by != EXACT:
                    where = f" (at {verdict.observation.site.display()}, same {verdict.matched_by})"
                lines.append(f"    runtime: {verdict.observation.message}{where}")
        if self.runtime_only:
            if lines:
                lines.append("")
            lines.append("Runtime observations that no static finding predicted:")
            lines.extend(o.render() for o in self.runtime_only)
        for name, error in self.disabled_probes.items():
            lines.append(f"lintml: the {name} probe failed and was disabled: {error}")
        for error in self.static_errors:
            lines.append(f"lintml: {error}")
        s = self.summary()
        if lines:
            lines.append("")
        lines.append(
            f"verify: {s[CONFIRMED]} confirmed, {s[REFUTED]} refuted, {s[NOT_EXERCISED]} not exercised, "
            f"{s[NO_PROBE]} without a runtime probe; {s['runtime-only']} runtime-only "
            f"observation{'s' if s['runtime-only'] != 1 else ''}"
            + (f"; the script failed ({self._failure()})" if self.run.failed else "")
        )
        return "\n".join(lines)

    def _failure(self) -> str:
        if self.run.error:
            return self.run.error.strip().splitlines()[-1]
        return f"exit status {self.run.exit_status}"


# -- running the script ---------------------------------------------------------------


def _is_local(path: str, roots: list[str]) -> bool:
    real = os.path.realpath(path)
    if "site-packages" in real or "dist-packages" in real:
        return False
    lintml_dir = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep
    if real.startswith(lintml_dir):
        return False
    return any(real.startswith(root) for root in roots)


def run_script(script: Path, args: list[str], watcher) -> ScriptRun:
    """Run `script` as `python script args` would, inside `watcher`; never raises for
    what the script does (its exception becomes `ScriptRun.error`). Afterwards
    `sys.argv`, `sys.path`, `__main__`, the working directory, torch's default dtype
    and grad mode are as they were, and the script's local modules are gone from `sys.modules`."""
    path = script.resolve()
    run = ScriptRun()
    try:
        source = path.read_bytes()
        code = compile(source, str(path), "exec")
    except OSError as error:
        run.failed, run.exit_status = True, 2
        run.error = f"cannot read {script}: {error.strerror or error}"
        return run
    except (SyntaxError, ValueError) as error:
        run.failed, run.exit_status = True, 1
        run.error = "".join(traceback.format_exception_only(type(error), error))
        return run

    import torch

    torch_state = (torch.get_default_dtype(), torch.is_grad_enabled())
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=str(path), __builtins__=builtins, __cached__=None, __spec__=None, __package__=None)
    saved_argv, saved_path, saved_main = sys.argv, list(sys.path), sys.modules.get("__main__")
    saved_cwd = os.getcwd()
    before = set(sys.modules)
    sys.argv = [str(script), *args]
    sys.path.insert(0, str(path.parent))
    sys.modules["__main__"] = main
    try:
        with watcher:
            exec(code, main.__dict__)
    except SystemExit as exit_:
        status = exit_.code
        run.exit_status = status
        if status not in (None, 0):
            run.failed = True
            if not isinstance(status, int):
                run.error = str(status)
    except BaseException as error:  # the script's own failure, KeyboardInterrupt included
        run.failed, run.exit_status = True, 1
        run.error = _script_traceback(error, str(path))
    finally:
        # process-wide torch settings a script changes die with its process; in-process,
        # put them back so that the caller (and the next script) start as they were
        torch.set_default_dtype(torch_state[0])
        torch.set_grad_enabled(torch_state[1])
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        sys.path[:] = saved_path
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        roots = [str(path.parent) + os.sep, os.path.realpath(os.getcwd()) + os.sep]
        for name in set(sys.modules) - before:
            module = sys.modules.get(name)
            filename = getattr(module, "__file__", None)
            if filename and _is_local(filename, roots):
                run.local_files.append(Path(filename))
                del sys.modules[name]  # the next run imports its own copy, as a new process would
    run.local_files.sort()
    return run


def _script_traceback(error: BaseException, script: str) -> str:
    tb = error.__traceback__
    this_file = os.path.realpath(__file__)
    while tb is not None and os.path.realpath(tb.tb_frame.f_code.co_filename) == this_file:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


# -- joining ----------------------------------------------------------------------------


class _Scopes:
    """Innermost enclosing loop and function of a line, per file (with `ast`)."""

    def __init__(self) -> None:
        self._cache: dict[str, list[tuple[str, int, int]]] = {}

    def _spans(self, filename: str) -> list[tuple[str, int, int]]:
        spans = self._cache.get(filename)
        if spans is None:
            spans = []
            try:
                tree = ast.parse(Path(filename).read_bytes(), filename)
            except (OSError, SyntaxError, ValueError):
                tree = None
            for node in ast.walk(tree) if tree is not None else ():
                if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
                    spans.append((LOOP, node.lineno, node.end_lineno or node.lineno))
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    spans.append((FUNCTION, node.lineno, node.end_lineno or node.lineno))
            self._cache[filename] = spans
        return spans

    def span(self, filename: str, line: int, kind: str) -> tuple[int, int] | None:
        best = None
        for span_kind, start, end in self._spans(filename):
            if span_kind == kind and start <= line <= end and (best is None or end - start < best[1] - best[0]):
                best = (start, end)
        return best


def _same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def join(findings, observations: list[Observation]) -> tuple[list[Verdict], list[Observation]]:
    scopes = _Scopes()
    used: set[int] = set()
    verdicts = []
    for finding in findings:
        reach = _REACH.get(finding.code)
        if reach is None:
            verdicts.append(Verdict(finding, NO_PROBE))
            continue
        candidates = [o for o in observations if o.code == finding.code and _same_file(o.filename, finding.filename)]
        verdict = Verdict(finding, NOT_EXERCISED)
        for tier in reach:
            if tier == EXACT:
                lo, hi = finding.start.line, max(finding.end.line, finding.start.line)
                span = (lo, hi)
            elif tier == FILE:
                span = (1, 10**9)
            else:
                span = scopes.span(finding.filename, finding.start.line, tier)
                if span is None:
                    continue
            matched = [o for o in candidates if span[0] <= o.line <= span[1]]
            if matched:
                confirmed = [o for o in matched if o.confirmed]
                best = confirmed[0] if confirmed else matched[0]
                verdict = Verdict(finding, CONFIRMED if confirmed else REFUTED, best, tier)
                used.update(id(o) for o in confirmed)
                break
        verdicts.append(verdict)
    runtime_only = [o for o in observations if o.confirmed and id(o) not in used]
    return verdicts, runtime_only


# -- the whole command --------------------------------------------------------------------


def verify(script: str | Path, args: list[str] | None = None, *, codes=None) -> VerifyResult:
    """Run `script` with `args` under `watch()`, check it and its local modules, join."""
    from lintml.runner import display_name, run as run_static
    from lintml.runtime.watcher import Watch

    args = list(args or [])
    script = Path(script)
    watcher = Watch(codes)
    run = run_script(script, args, watcher)
    observations = watcher.observations if watcher._observations is not None else []
    files = [script] + [p for p in run.local_files if p.resolve() != script.resolve()]
    static_errors: list[str] = []
    findings = []
    checked = sorted(display_name(p) for p in files) if script.exists() else []
    if checked:
        result = run_static([Path(p) for p in checked])
        findings = sorted(result.findings, key=lambda f: f.sort_key())
        static_errors = list(result.input_errors)
    verdicts, runtime_only = join(findings, observations)
    return VerifyResult(str(script), args, run, verdicts, runtime_only, observations,
                        watcher.disabled_probes, static_errors, checked)
