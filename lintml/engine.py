"""One file's text -> findings: pre-filter, one parse, one traversal by every check,
positions only for what is reported, then suppressions.
"""

from __future__ import annotations

import re
import sys
import threading
from collections import defaultdict
from contextlib import contextmanager
from functools import lru_cache

import libcst as cst
from libcst.metadata import CodePosition, CodeRange, MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from lintml.analysis.walk import SCOPE_OUTER_FIELDS, SkippedLeaves, child_nodes, concrete_types, descendants
from lintml.checks.base import Anchor, Check, FileContext, NodeFix
from lintml.files import InputError
from lintml.findings import Edit, FileResult, Finding, Fix, InternalError, Position
from lintml.checks import CHECKS
from lintml.registry import RULES, SYNTAX_ERROR, UNUSED_SUPPRESSION
from lintml.suppressions import parse_suppressions


@lru_cache(maxsize=None)
def _handler_names(check: type[Check]) -> tuple[tuple[str, str, str], ...]:
    """(event, node type, method name) for each visit_/leave_ method of a check."""
    names = []
    for attribute in dir(check):
        event, _, node_type = attribute.partition("_")
        if event in ("visit", "leave") and node_type and node_type[0].isupper():
            names.append((event, node_type, attribute))
    return tuple(names)


class _Traversal:
    """Runs every check's handlers in a single walk and keeps the current scope.

    LibCST's own `visit` rebuilds every node on the way back up; this walk only reads
    the fields that can hold code, which makes it an order of magnitude cheaper.
    Children are visited in source order, except that a def's decorators and
    parameters are visited before its body (in the enclosing scope, as Python
    evaluates them).
    """

    def __init__(self, context: FileContext, checks: list[Check], result: FileResult) -> None:
        self.context = context
        self.result = result
        self.handlers: dict[str, dict[type, list]] = {"visit": defaultdict(list), "leave": defaultdict(list)}
        for check in checks:
            for event, node_type, method in _handler_names(type(check)):
                node_class = getattr(cst, node_type)
                self.handlers[event][node_class].append((check, getattr(check, method)))
        self.visit = dict(self.handlers["visit"])
        self.leave = dict(self.handlers["leave"])
        self.crashed: set[str] = set()
        # leaves (`Name`, `Integer`, ...: four nodes in ten) that no check handles: not
        # walked into at all
        self.skipped = SkippedLeaves(frozenset({*self.visit, *self.leave}).__contains__)

    def _run(self, handlers: list, node: cst.CSTNode) -> None:
        for check, handler in handlers:
            if check.code in self.crashed:
                continue
            try:
                handler(node)
            except RecursionError:  # the file is too deep, not the check broken
                raise
            except Exception as error:  # a broken check must not take the run down
                self.crashed.add(check.code)
                self.result.errors.append(
                    InternalError(self.context.filename, check.code, f"{type(error).__name__}: {error}")
                )

    def walk(self, node: cst.CSTNode) -> None:
        node_type = type(node)
        handlers = self.visit.get(node_type)
        if handlers:
            self._run(handlers, node)
        outer = SCOPE_OUTER_FIELDS.get(node_type)
        if outer is not None:
            for child in child_nodes(node, outer):
                self.walk(child)
            previous = self.context.scope
            self.context.scope = self.context.imports.scope_of(node) or previous
            for child in child_nodes(node):
                self.walk(child)
            self.context.scope = previous
        else:
            skipped = self.skipped
            for child in child_nodes(node):
                if not skipped[type(child)]:
                    self.walk(child)
        handlers = self.leave.get(node_type)
        if handlers:
            self._run(handlers, node)


def checks_for(source: str, enabled: frozenset[str]) -> list[type[Check]]:
    """Enabled checks that can fire on this text (the text pre-filter)."""
    return [
        check
        for check in CHECKS
        if check.code in enabled and (not check.triggers or any(t in source for t in check.triggers))
    ]


def _syntax_error(source: str, filename: str, libcst_error: Exception | None) -> Finding | None:
    """LML900 for a file that does not parse; CPython's message and position are the
    clearest, LibCST's are used when only LibCST rejects the file."""
    try:
        compile(source, filename, "exec", flags=0x400, dont_inherit=True)  # PyCF_ONLY_AST
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        message = getattr(error, "msg", None) or str(error) or type(error).__name__
        line, column = getattr(error, "lineno", None) or 1, getattr(error, "offset", None) or 1
        if "\0" in source and "null bytes" in message:  # CPython gives no position for it
            offset = source.index("\0")
            line = 1 + len(_LINE_BREAK.findall(source, 0, offset))
            start = max(source.rfind("\n", 0, offset), source.rfind("\r", 0, offset)) + 1
            column = offset - start + 1
        elif isinstance(error, (RecursionError, MemoryError)):
            message = f"the code is nested too deeply for Python's parser ({message})"
    else:
        if libcst_error is None:
            return None
        line = getattr(libcst_error, "raw_line", 1) or 1
        column = (getattr(libcst_error, "raw_column", 0) or 0) + 1
        message = getattr(libcst_error, "message", str(libcst_error)).replace("\n", " ")
    return Finding(
        SYNTAX_ERROR,
        f"Cannot parse this file: {message}",
        filename,
        Position(line, column),
        Position(line, column),
        noqa_line=line,
    )


# -- deeply nested code ----------------------------------------------------------------
#
# The walk, the checks and LibCST's code generation recurse once or more per level of
# the tree. CPython parses expressions nested about 2,000 deep (1,000 in the issue's
# test), deeper than Python's default recursion limit lets lintml follow; on 3.11 and
# newer, calls between Python functions do not use the C stack, so the limit is raised
# while a file is checked. On 3.10 it is not (each level would use the C stack too).
# Deeper still, lintml reports that it could not check the file instead of crashing.
RECURSION_LIMIT = 12_000 if sys.version_info >= (3, 11) else 0
_recursion_lock = threading.Lock()
_recursion_users = 0
_recursion_saved = 0


@contextmanager
def _recursion_headroom():
    global _recursion_users, _recursion_saved
    if not RECURSION_LIMIT:
        yield
        return
    with _recursion_lock:
        if _recursion_users == 0:
            _recursion_saved = sys.getrecursionlimit()
            if _recursion_saved < RECURSION_LIMIT:
                sys.setrecursionlimit(RECURSION_LIMIT)
        _recursion_users += 1
    try:
        yield
    finally:
        with _recursion_lock:
            _recursion_users -= 1
            if _recursion_users == 0 and sys.getrecursionlimit() == max(RECURSION_LIMIT, _recursion_saved):
                sys.setrecursionlimit(_recursion_saved)


# LibCST's native parser recurses on the C stack, without a limit, and crashes the
# process (a segmentation fault) on brackets nested a couple of thousand deep or on
# operator chains several thousand long (LibCST issues #619 and #1000), inputs that
# CPython's parser rejects. A cheap look at the text finds such files, and CPython's
# parser then decides, before LibCST sees them.
_DEEP_BRACKETS = 150  # CPython's own limit is 200 nested brackets
_LONG_LINE = re.compile(r"^[^\n]{4000}", re.MULTILINE)  # operator chains deep enough to matter are long
_TOO_DEEP_FOR_CPYTHON = ("too many nested", "too complex", "nested too deeply")


# Chains that CPython keeps flat (`a and b and ...`), or that run over many lines inside
# one pair of brackets, have neither a long line nor deep brackets, but LibCST nests
# them and its parser crashes on them from about 8,000 terms. Such a chain needs
# thousands of operators, which a cheap count finds (no released file of transformers
# or diffusers has 4,000); CPython's tree of those few files then tells how long it is.
_CHAIN_OPERATORS = "+-*/%@|&^<>"
_LONGEST_CHAIN = 3_000


_CHAIN_OPERATOR_BYTES = _CHAIN_OPERATORS.encode()
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"()[]{}")))


def _operator_count_at_least(source: str, count: int) -> bool:
    """An upper bound of the binary and boolean operators in the text, against `count`
    (counted in its UTF-8 bytes, where these characters are the same bytes: one pass,
    not one a character)."""
    data = source.encode("utf-8", "surrogatepass")
    operators = len(data) - len(data.translate(None, _CHAIN_OPERATOR_BYTES))
    return operators + source.count(" and") + source.count(" or") >= count


def _bracket_depth_at_least(source: str, depth: int) -> bool:
    """Whether brackets may nest `depth` deep (brackets in strings and comments count
    too: a false alarm only costs one CPython parse)."""
    brackets = source.encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKETS).decode("ascii")
    if len(brackets) < 2 * depth:
        return False
    for _ in range(depth):
        shorter = brackets.replace("()", "").replace("[]", "").replace("{}", "")
        if shorter == brackets:
            return False
        brackets = shorter
    return True


def _may_be_too_deep_for_libcst(source: str) -> bool:
    return (
        _LONG_LINE.search(source) is not None
        or _bracket_depth_at_least(source, _DEEP_BRACKETS)
        or _operator_count_at_least(source, _LONGEST_CHAIN)
    )


def _chain_too_long(tree) -> bool:
    """Whether CPython's tree is `_LONGEST_CHAIN` deep, or has a boolean chain that long
    (CPython keeps it flat, LibCST nests it)."""
    import ast

    stack = [(tree, 1)]
    while stack:  # iterative: the tree may be deeper than Python's recursion limit
        node, depth = stack.pop()
        if depth >= _LONGEST_CHAIN or (isinstance(node, ast.BoolOp) and len(node.values) >= _LONGEST_CHAIN):
            return True
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return False


def _depth_error(source: str, filename: str) -> Finding | None:
    """For a text the screen above let through: LML900 when CPython's parser rejects it
    for its depth, InputError when CPython takes it but it is too deep for LibCST, None
    when LibCST may parse it (other syntax errors are left to LibCST, which knows syntax
    newer than the running Python). CPython parses the text once."""
    try:
        tree = compile(source, filename, "exec", flags=0x400, dont_inherit=True)  # PyCF_ONLY_AST
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        syntax = _syntax_error(source, filename, None)
        if syntax is not None and any(marker in syntax.message for marker in _TOO_DEEP_FOR_CPYTHON):
            return syntax
        return None
    if _chain_too_long(tree):  # Python takes it, LibCST would crash on it
        raise too_deep_error(filename)
    return None


def too_deep_error(filename: str) -> InputError:
    return InputError(
        f"{filename}: cannot check: the code is nested too deeply for lintml to analyse; "
        "simplify the most deeply nested expression, or exclude the file"
    )


def lint_source(source: str, filename: str, enabled: frozenset[str]) -> FileResult:
    """The findings for one text. InputError when the file is too deeply nested for
    lintml to check (never a RecursionError or a crash)."""
    result = FileResult(filename)
    check_classes = checks_for(source, enabled)
    if not check_classes:
        if SYNTAX_ERROR in enabled:
            syntax = _syntax_error(source, filename, None)
            if syntax is not None:
                result.findings.append(syntax)
    elif _may_be_too_deep_for_libcst(source) and (syntax := _depth_error(source, filename)) is not None:
        if SYNTAX_ERROR in enabled:  # CPython finds it too deep: LibCST is not asked
            result.findings.append(syntax)
    else:
        with _recursion_headroom():
            try:
                module = cst.parse_module(source)
            except (cst.ParserSyntaxError, RecursionError) as error:
                syntax = _syntax_error(source, filename, error)
                if syntax is not None and SYNTAX_ERROR in enabled:
                    result.findings.append(syntax)
            else:
                context = FileContext(filename, source, module)
                checks = [check(context) for check in check_classes]
                try:
                    _Traversal(context, checks, result).walk(module)
                    if context.reports:
                        result.findings.extend(_findings_from_reports(context))
                except RecursionError:
                    raise too_deep_error(filename) from None
                finally:
                    facts = context.__dict__.get("facts")
                    if facts is not None and facts.project is not None:
                        result.dependencies = facts.pending()  # digests only if the result is stored
                        result.snapshot = facts.project.snapshot()
                    for check in checks:
                        check.__dict__.clear()
                    context.release()
    result.findings = apply_suppressions(result.findings, source, filename, enabled)
    result.findings.sort(key=Finding.sort_key)
    return result


_LINE_BREAK = re.compile(r"\r\n?|\n")  # as LibCST counts lines
_COMPOUND = concrete_types(cst.BaseCompoundStatement)


def _blocks(statement: cst.CSTNode) -> list[cst.IndentedBlock]:
    """The indented blocks of a compound statement (its body, `elif`/`else`, handlers,
    `finally`, cases), each at one indent below the statement's own."""
    found: list[cst.IndentedBlock] = []
    stack = [statement]
    while stack:
        node = stack.pop()
        for field in ("body", "orelse", "handlers", "finalbody", "cases"):
            value = getattr(node, field, None)
            if type(value) is cst.IndentedBlock:
                found.append(value)
            elif type(value) in (cst.If, cst.Else, cst.Finally):  # `elif`, `else`, `finally`
                stack.append(value)
            elif isinstance(value, (list, tuple)) and field in ("handlers", "cases"):
                stack.extend(value)
    return found


def _holders(module: cst.Module, wanted: set[int]) -> list[tuple[cst.CSTNode, tuple[str, ...]]] | None:
    """The smallest statements that hold the `wanted` nodes, each with the indents of the
    blocks around it; None when a wanted node lies outside every statement. Each
    statement's subtree is walked once per level it is looked at, and what a block's
    statements hold is carried down, not looked for again. (A loop over a stack, not a
    recursive closure: a closure that calls itself is a reference cycle, and would keep
    the tree alive until the cyclic collector runs.)"""
    holders: list[tuple[cst.CSTNode, tuple[str, ...]]] = []
    pending: list[tuple[cst.CSTNode, tuple[str, ...], set[int]]] = []  # (statement, indents, wanted in it)
    remaining = set(wanted)
    for statement in module.body:
        if not remaining:
            break
        found = {id(node) for node in descendants(statement)} & remaining
        if found:
            remaining -= found
            pending.append((statement, (), found))
    while pending:
        statement, indents, found = pending.pop()
        blocks = _blocks(statement) if type(statement) in _COMPOUND else []
        inner_found = []
        for block in blocks:
            indent = module.default_indent if block.indent is None else block.indent
            for inner in block.body:
                held = {id(node) for node in descendants(inner)} & found
                if held:
                    inner_found.append((inner, (*indents, indent), held))
        if blocks and set().union(*(held for _, _, held in inner_found)) == found:
            pending.extend(inner_found)  # nothing wanted in the header: go down
        else:
            holders.append((statement, indents))
    return None if remaining else holders


def _positions(module: cst.Module, source: str, wanted: list[cst.CSTNode]):
    """The positions of the `wanted` nodes, as LibCST's PositionProvider gives them.

    The provider regenerates the code of the whole module, which costs more than the
    parse; only the smallest statements that hold a wanted node are regenerated here
    (a line inside a long function, not the function), each with the indentation of
    the blocks around it, at the line where its text is found in the source. Where that
    cannot be told for sure (a node outside every statement, a statement whose text is
    not found exactly once at the start of a line), the whole module is done the
    provider's way."""
    holders = _holders(module, {id(node) for node in wanted})
    if holders is None:
        return _whole_module(module)
    wanted_ids = {id(node) for node in wanted}
    positions = {}
    for statement, indents in holders:
        provider = PositionProvider()
        state = PositionProvidingCodegenState(
            default_indent=module.default_indent,
            default_newline=module.default_newline,
            provider=provider,
            indent_tokens=list(indents),
        )
        statement._codegen(state)  # from line 1, column 0: the text starts a line
        text = "".join(state.tokens)
        offset = source.find(text)
        if not text or offset < 0 or source.find(text, offset + 1) >= 0:
            return _whole_module(module)
        line_start = max(source.rfind("\n", 0, offset), source.rfind("\r", 0, offset)) + 1
        if source[line_start:offset].strip(" \t\x0c"):  # not at the start of its line
            return _whole_module(module)
        # after a form feed that starts the line, the text's first line begins further in
        shift, indent = len(_LINE_BREAK.findall(source, 0, offset)), offset - line_start

        def moved(place: CodePosition) -> CodePosition:
            return CodePosition(place.line + shift, place.column + (indent if place.line == 1 else 0))

        for node, span in provider._computed.items():
            if id(node) in wanted_ids:
                positions[node] = CodeRange(moved(span.start), moved(span.end))
    return positions


def _whole_module(module: cst.Module):
    return MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)


def _findings_from_reports(context: FileContext) -> list[Finding]:
    wanted = [report.node for report in context.reports]
    for report in context.reports:
        for edit in report.fix.edits if report.fix is not None else ():
            wanted += [edit.start.node, edit.end.node, *((edit.indent_of.node,) if edit.indent_of else ())]
    positions = _positions(context.module, context.source, wanted)

    def at(anchor: Anchor) -> Position:
        place = getattr(positions[anchor.node], anchor.side)
        return Position(place.line, place.column + 1)

    def fix_of(node_fix: NodeFix | None) -> Fix | None:
        if node_fix is None:
            return None
        edits = tuple(Edit(at(edit.start), at(edit.end), _content(edit)) for edit in node_fix.edits)
        return Fix(node_fix.message, edits, node_fix.applicability)

    lines = re.split(r"\r\n|\r|\n", context.source)

    def _content(edit) -> str:
        if edit.indent_of is None:
            return edit.content
        line = lines[at(edit.indent_of).line - 1]
        return edit.content.format(indent=line[: len(line) - len(line.lstrip())])

    findings = []
    for report in context.reports:
        span = positions[report.node]
        start = Position(span.start.line, span.start.column + 1)
        findings.append(
            Finding(
                report.code,
                report.message,
                context.filename,
                start,
                Position(span.end.line, span.end.column + 1),
                fix_of(report.fix),
                noqa_line=start.line,
            )
        )
    return findings


def apply_suppressions(
    findings: list[Finding], source: str, filename: str, enabled: frozenset[str]
) -> list[Finding]:
    """Drop what a suppression comment silences; report unused ones as LML901."""
    if not findings and UNUSED_SUPPRESSION not in enabled:
        return findings  # nothing to silence, none to report unused: no need to tokenize
    suppressions = parse_suppressions(source)
    if not suppressions.by_line and not suppressions.file_level:
        return findings
    kept = []
    for finding in findings:
        silencer = suppressions.silencer(finding.code, finding.noqa_line)
        if silencer is None:
            kept.append(finding)
        else:
            silencer.used.add(finding.code)
    if UNUSED_SUPPRESSION in enabled:
        kept.extend(_unused_suppressions(suppressions, filename, enabled))
    return kept


def _unused_suppressions(suppressions, filename: str, enabled: frozenset[str]) -> list[Finding]:
    found = []
    for suppression in suppressions.all():
        if suppression.codes is None:
            continue  # a bare `# noqa` may serve other linters
        unknown = sorted(code for code in suppression.codes if code.startswith("LML") and code not in RULES)
        unused = sorted(
            code
            for code in suppression.codes
            if code in enabled and code != UNUSED_SUPPRESSION and code not in suppression.used
        )
        if not unused and not unknown:
            continue
        problems = []
        if unused:
            problems.append(f"nothing reported {', '.join(unused)} here")
        if unknown:
            problems.append(f"{', '.join(unknown)} {'is not a lintml code' if len(unknown) == 1 else 'are not lintml codes'}")
        silencer = suppressions.silencer(UNUSED_SUPPRESSION, suppression.line)
        if silencer is not None:
            silencer.used.add(UNUSED_SUPPRESSION)
            continue
        position = Position(suppression.line, suppression.column)
        found.append(
            Finding(
                UNUSED_SUPPRESSION,
                f"Unused suppression: {'; '.join(problems)}; remove it from the comment",
                filename,
                position,
                position,
                noqa_line=suppression.line,
            )
        )
    return found
