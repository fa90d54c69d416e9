"""lintml's language server (`lintml lsp`): diagnostics, quick fixes, suppressions,
fix-all and rule hovers for editors, over stdio (pygls 2).

Every finding comes from `lintml.runner.lint_text`, the function `lintml check` uses,
with the configuration `lintml check FILE` would use (the nearest pyproject.toml with
a `[tool.lintml]` table); fix-all goes through `lintml.fixes.fix_source` as `--fix`
does. Nothing here knows about a rule.
"""

from __future__ import annotations

import asyncio
import bisect
import io
import logging
import re
import tokenize
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from lintml import __version__
from lintml.config import Config, ConfigError, discover
from lintml.findings import Applicability, Finding, Position
from lintml.fixes import fix_source, is_applicable, parses
from lintml.registry import RULES, SYNTAX_ERROR, UNUSED_SUPPRESSION, page
from lintml.runner import lint_text
from lintml.suppressions import LINTML_IGNORE, NOQA

logger = logging.getLogger(__name__)

SOURCE = "lintml"
FIX_ALL_KIND = "source.fixAll.lintml"
DEBOUNCE_SECONDS = 0.3
PYPROJECT = "pyproject.toml"
_NEWLINE = re.compile(r"\r\n|\r|\n")  # the line breaks of LSP, LibCST and lintml.fixes
_PYTHON_SUFFIXES = (".py", ".pyi")


@dataclass
class Analysis:
    """One lint of one version of a document."""

    version: int | None
    text: str
    findings: list[Finding] = field(default_factory=list)
    config: Config | None = None
    path: Path | None = None
    filename: str = ""
    config_error: str | None = None

    @cached_property
    def lines(self) -> list[str]:
        return _NEWLINE.split(self.text)


class LintmlLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("lintml", __version__)
        self.configs: dict[Path | None, Config | ConfigError] = {}  # by the document's folder
        self.analyses: dict[str, Analysis] = {}  # by URI: the latest lint published
        self.pending: dict[str, asyncio.Task] = {}  # by URI: the scheduled lint
        self.shown_errors: set[str] = set()  # configuration errors already shown

    # -- configuration -------------------------------------------------------------

    def config_for(self, path: Path | None) -> Config:
        folder = path.parent if path is not None else self._root()
        cached = self.configs.get(folder)
        if cached is None:
            try:
                cached = discover(folder) if folder is not None else Config()
            except ConfigError as error:
                cached = error
            self.configs[folder] = cached
        if isinstance(cached, ConfigError):
            raise cached
        return cached

    def _root(self) -> Path | None:
        try:
            root = self.workspace.root_path
        except RuntimeError:  # pragma: no cover - before initialize
            return None
        return Path(root) if root else None

    def forget_configuration(self) -> None:
        self.configs.clear()
        self.shown_errors.clear()

    # -- linting -------------------------------------------------------------------

    def analyze(self, uri: str, text: str, version: int | None) -> Analysis:
        """Lint one text of the document `uri` (runs in a worker thread)."""
        path = _path_of(uri)
        filename = str(path) if path is not None else uri
        try:
            config = self.config_for(path)
        except ConfigError as error:
            return Analysis(version, text, path=path, filename=filename, config_error=str(error))
        analysis = Analysis(version, text, config=config, path=path, filename=filename)
        if path is not None and config.is_excluded_named(path):
            return analysis  # excluded by the configuration, as `lintml check --force-exclude` does
        result = lint_text(text, filename, config, path)
        for error in result.errors:
            logger.warning("lintml: %s crashed on %s: %s", error.code, error.filename, error.error)
        analysis.findings = result.findings
        return analysis

    def current_analysis(self, uri: str) -> Analysis | None:
        """The analysis of the document as it is now (re-linted if it changed)."""
        document = self.workspace.get_text_document(uri)
        if not _is_python(document):
            return None
        cached = self.analyses.get(uri)
        if cached is not None and cached.version == document.version and cached.text == document.source:
            return cached
        try:
            analysis = self.analyze(uri, document.source, document.version)
        except Exception:  # a bug in lintml must not take the editor's server down
            logger.exception("lintml failed on %s", uri)
            return None
        self.analyses[uri] = analysis
        return analysis

    def schedule(self, uri: str, delay: float = 0.0) -> None:
        """Lint `uri` after `delay` seconds; a later call replaces an earlier one."""
        previous = self.pending.pop(uri, None)
        if previous is not None and not previous.done():
            previous.cancel()
        task = asyncio.get_running_loop().create_task(self._lint_and_publish(uri, delay))
        self.pending[uri] = task
        task.add_done_callback(lambda done: self.pending.pop(uri, None) if self.pending.get(uri) is done else None)

    async def _lint_and_publish(self, uri: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        document = self.workspace.text_documents.get(uri)
        if document is None or not _is_python(document):
            return
        text, version = document.source, document.version
        try:
            analysis = await asyncio.get_running_loop().run_in_executor(
                None, self.analyze, uri, text, version
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a bug in lintml must not take the editor's server down
            logger.exception("lintml failed on %s", uri)
            self.window_log_message(
                types.LogMessageParams(types.MessageType.Error, f"lintml failed on {uri}: {error!r}")
            )
            return
        current = self.workspace.text_documents.get(uri)
        if current is None or current.version != version or current.source != text:
            return  # the document moved on: the newer lint wins
        self.analyses[uri] = analysis
        if analysis.config_error is not None and analysis.config_error not in self.shown_errors:
            self.shown_errors.add(analysis.config_error)
            self.window_show_message(
                types.ShowMessageParams(types.MessageType.Error, f"lintml: {analysis.config_error}")
            )
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=self.diagnostics(analysis), version=version)
        )

    def relint_all(self) -> None:
        for uri in list(self.workspace.text_documents):
            self.schedule(uri)

    # -- conversions ---------------------------------------------------------------

    def units(self, text: str) -> int:
        """The length of `text` in the negotiated position encoding (UTF-16 by default)."""
        return self.workspace.position_codec.client_num_units(text)

    def to_lsp(self, lines: list[str], position: Position) -> types.Position:
        """lintml's 1-based line and 1-based code point column to LSP's 0-based line and
        code unit character."""
        line = position.line - 1
        if line >= len(lines):
            return types.Position(line=max(len(lines) - 1, 0), character=self.units(lines[-1]) if lines else 0)
        line = max(line, 0)
        text = lines[line]
        return types.Position(line=line, character=self.units(text[: max(position.column - 1, 0)]))

    def range_of(self, lines: list[str], start: Position, end: Position) -> types.Range:
        return types.Range(start=self.to_lsp(lines, start), end=self.to_lsp(lines, end))

    def diagnostic(self, analysis: Analysis, finding: Finding) -> types.Diagnostic:
        rule = RULES.get(finding.code)
        return types.Diagnostic(
            range=self.range_of(analysis.lines, finding.start, finding.end),
            message=finding.message,
            severity=types.DiagnosticSeverity.Error
            if finding.code == SYNTAX_ERROR
            else types.DiagnosticSeverity.Warning,
            code=finding.code,
            code_description=types.CodeDescription(href=rule.url) if rule is not None else None,
            source=SOURCE,
            tags=[types.DiagnosticTag.Unnecessary] if finding.code == UNUSED_SUPPRESSION else None,
        )

    def diagnostics(self, analysis: Analysis) -> list[types.Diagnostic]:
        if analysis.config_error is not None:
            origin = types.Position(line=0, character=0)
            return [
                types.Diagnostic(
                    range=types.Range(start=origin, end=origin),
                    message=f"lintml cannot use its configuration, so this file was not checked: "
                    f"{analysis.config_error}",
                    severity=types.DiagnosticSeverity.Error,
                    source=SOURCE,
                )
            ]
        return [self.diagnostic(analysis, finding) for finding in analysis.findings]

    # -- code actions ----------------------------------------------------------------

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        analysis = self.current_analysis(uri)
        if analysis is None or analysis.config_error is not None:
            return []
        only = params.context.only
        actions: list[types.CodeAction] = []
        wanted = params.range
        for finding in analysis.findings:
            diagnostic = self.diagnostic(analysis, finding)
            if not _overlaps(diagnostic.range, wanted):
                continue
            if finding.fix is not None and _kind_wanted(types.CodeActionKind.QuickFix, only):
                actions.append(self._quick_fix(uri, analysis, finding, diagnostic))
            if _kind_wanted(types.CodeActionKind.QuickFix, only):
                suppress = self._suppress(uri, analysis, finding, diagnostic)
                if suppress is not None:
                    actions.append(suppress)
        if _kind_wanted(FIX_ALL_KIND, only):
            fix_all = self._fix_all(uri, analysis)
            if fix_all is not None:
                actions.append(fix_all)
        return actions

    def _quick_fix(
        self, uri: str, analysis: Analysis, finding: Finding, diagnostic: types.Diagnostic
    ) -> types.CodeAction:
        fix = finding.fix
        safe = fix.applicability is Applicability.SAFE
        lines = analysis.lines
        edits = [
            types.TextEdit(range=self.range_of(lines, edit.start, edit.end), new_text=edit.content)
            for edit in fix.edits
        ]
        return types.CodeAction(
            title=f"{fix.message} ({finding.code})" + ("" if safe else " (unsafe)"),
            kind=types.CodeActionKind.QuickFix,
            diagnostics=[diagnostic],
            is_preferred=True if safe else None,
            edit=types.WorkspaceEdit(changes={uri: edits}),
        )

    def _suppress(
        self, uri: str, analysis: Analysis, finding: Finding, diagnostic: types.Diagnostic
    ) -> types.CodeAction | None:
        if finding.code in (SYNTAX_ERROR, UNUSED_SUPPRESSION):
            return None
        edit = suppression_edit(analysis.text, finding.noqa_line or finding.line, finding.code)
        if edit is None:
            return None
        start, end, content = edit
        return types.CodeAction(
            title=f"Suppress {finding.code} on this line",
            kind=types.CodeActionKind.QuickFix,
            diagnostics=[diagnostic],
            edit=types.WorkspaceEdit(
                changes={uri: [types.TextEdit(range=self.range_of(analysis.lines, start, end), new_text=content)]}
            ),
        )

    def _fix_all(self, uri: str, analysis: Analysis) -> types.CodeAction | None:
        if not any(is_applicable(finding, False) for finding in analysis.findings):
            return None
        config, path, filename = analysis.config, analysis.path, analysis.filename

        def lint(text: str) -> list[Finding]:
            return lint_text(text, filename, config, path).findings

        try:
            outcome = fix_source(analysis.text, lint, False)
        except Exception:  # pragma: no cover - a bug in a fix
            logger.exception("lintml fix-all failed on %s", uri)
            return None
        if outcome.source == analysis.text or not parses(outcome.source, filename):
            return None  # nothing to do, or a fix broke the file: `--fix` would keep it as is
        return types.CodeAction(
            title="Fix all safe lintml findings",
            kind=FIX_ALL_KIND,
            edit=types.WorkspaceEdit(changes={uri: [self._replacement(analysis, outcome.source)]}),
        )

    def _replacement(self, analysis: Analysis, new_text: str) -> types.TextEdit:
        """One edit turning the document into `new_text`, covering only what differs."""
        old = analysis.text
        limit = min(len(old), len(new_text))
        prefix = 0
        while prefix < limit and old[prefix] == new_text[prefix]:
            prefix += 1
        suffix = 0
        while suffix < limit - prefix and old[-1 - suffix] == new_text[-1 - suffix]:
            suffix += 1
        if 0 < prefix < len(old) and old[prefix - 1] == "\r" and old[prefix] == "\n":
            prefix -= 1  # never split a \r\n pair
        end = len(old) - suffix
        if 0 < end < len(old) and old[end - 1] == "\r" and old[end] == "\n":
            suffix -= 1
            end += 1
        replaced = new_text[prefix:][: len(new_text) - suffix - prefix]
        return types.TextEdit(
            range=self.range_of(analysis.lines, _position_at(old, prefix), _position_at(old, end)),
            new_text=replaced,
        )

    # -- hover -------------------------------------------------------------------------

    def hover(self, params: types.HoverParams) -> types.Hover | None:
        analysis = self.current_analysis(params.text_document.uri)
        if analysis is None:
            return None
        at = params.position
        parts = []
        hover_range = None
        for finding in analysis.findings:
            span = self.range_of(analysis.lines, finding.start, finding.end)
            if not _contains(span, at):
                continue
            parts.append(rule_markdown(finding.code))
            hover_range = hover_range or span
        if not parts:
            return None
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value="\n\n---\n\n".join(parts)),
            range=hover_range,
        )


# -- helpers ---------------------------------------------------------------------------


def rule_markdown(code: str) -> str:
    rule = RULES.get(code)
    if rule is None:
        return f"**{code}**"
    lines = [f"**{rule.code}** `{rule.name}` ({rule.family})"]
    rule_page = page(code)
    if rule_page is not None:
        for section in ("What it does", "Why is this bad?"):
            text = rule_page.sections.get(section)
            if text:
                lines.append(f"### {section}\n\n{text.strip()}")
    else:
        lines.append(rule.summary)
    lines.append(f"[{rule.code} rule page]({rule.url})")
    return "\n\n".join(lines)


def suppression_edit(source: str, line: int, code: str) -> tuple[Position, Position, str] | None:
    """Where and what to write so that `code` is silenced on `line` (1-based): extend
    the line's `# noqa: ...` (or `# lintml: ignore[...]`) comment, or append
    `  # noqa: CODE`. None where a comment cannot go (the line ends inside a string
    or continues with a backslash)."""
    lines = _NEWLINE.split(source)
    if not 1 <= line <= len(lines):
        return None
    text = lines[line - 1]
    comment = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT and token.start[0] == line:
                comment = token
            elif token.start[0] <= line < token.end[0] and token.type not in (
                tokenize.NL,
                tokenize.NEWLINE,
                tokenize.DEDENT,
                tokenize.INDENT,
            ):
                return None  # a string (or f-string) runs on past this line
            if token.start[0] > line:
                break
    except (tokenize.TokenError, SyntaxError):
        pass
    if comment is not None:
        column = comment.start[1]
        for pattern in (NOQA, LINTML_IGNORE):
            match = pattern.search(comment.string)
            if match is None:
                continue
            if match.group("codes") is None:
                return None  # a bare `# noqa` already silences everything
            at = Position(line, column + match.end("codes") + 1)
            return at, at, f", {code}"
        end = Position(line, len(text) + 1)
        return end, end, f"  # noqa: {code}"
    if text.rstrip().endswith("\\"):
        return None
    stripped = len(text.rstrip())
    start, end = Position(line, stripped + 1), Position(line, len(text) + 1)
    return start, end, f"  # noqa: {code}"


def _position_at(text: str, offset: int) -> Position:
    """The lintml position (1-based line and column) of a character offset."""
    starts = [0, *(match.end() for match in _NEWLINE.finditer(text))]
    index = bisect.bisect_right(starts, offset) - 1
    return Position(index + 1, offset - starts[index] + 1)


def _path_of(uri: str) -> Path | None:
    if not uri.startswith("file:"):
        return None
    path = to_fs_path(uri)
    return Path(path) if path else None


def _is_python(document) -> bool:
    """A Python file or an unsaved Python buffer; notebook cells (which lintml checks
    as a whole notebook, never one cell at a time) and other schemes are left alone."""
    if not document.uri.startswith(("file:", "untitled:")):
        return False
    return document.language_id == "python" or document.uri.endswith(_PYTHON_SUFFIXES)


def _is_pyproject(uri: str) -> bool:
    return uri.rstrip("/").rsplit("/", 1)[-1] == PYPROJECT


def _key(position: types.Position) -> tuple[int, int]:
    return position.line, position.character


def _overlaps(a: types.Range, b: types.Range) -> bool:
    return _key(a.start) <= _key(b.end) and _key(b.start) <= _key(a.end)


def _contains(span: types.Range, position: types.Position) -> bool:
    return _key(span.start) <= _key(position) <= _key(span.end)


def _kind_wanted(kind: str, only: list[str] | None) -> bool:
    if not only:
        return True
    return any(kind == wanted or kind.startswith(f"{wanted}.") for wanted in only)


# -- the server's handlers --------------------------------------------------------------


def create_server() -> LintmlLanguageServer:
    server = LintmlLanguageServer()

    @server.feature(types.INITIALIZED)
    async def initialized(ls: LintmlLanguageServer, params: types.InitializedParams) -> None:
        capabilities = ls.client_capabilities.workspace
        watched = capabilities.did_change_watched_files if capabilities is not None else None
        if watched is None or not watched.dynamic_registration:
            return
        registration = types.Registration(
            id="lintml-pyproject-watcher",
            method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=types.DidChangeWatchedFilesRegistrationOptions(
                watchers=[types.FileSystemWatcher(glob_pattern=f"**/{PYPROJECT}")]
            ),
        )
        try:
            await ls.client_register_capability_async(types.RegistrationParams(registrations=[registration]))
        except Exception as error:  # the client said no: didSave of a pyproject.toml still works
            logger.info("lintml: could not watch pyproject.toml files: %s", error)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LintmlLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LintmlLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri, DEBOUNCE_SECONDS)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: LintmlLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        from lintml.project.facts import clear as forget_project_facts

        forget_project_facts()  # the saved file's facts reach the other open files
        if _is_pyproject(uri):
            ls.forget_configuration()
            ls.relint_all()
        else:
            ls.relint_all()

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LintmlLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        task = ls.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        if ls.analyses.pop(uri, None) is not None:
            ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: LintmlLanguageServer, params: types.DidChangeWatchedFilesParams) -> None:
        from lintml.project.facts import clear as forget_project_facts

        forget_project_facts()  # a file of the project changed on disk, or came or went
        if any(_is_pyproject(change.uri) for change in params.changes):
            ls.forget_configuration()
        ls.relint_all()

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND],
            resolve_provider=False,
        ),
    )
    def code_action(ls: LintmlLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        try:
            return ls.code_actions(params)
        except Exception:  # a bug in lintml must not take the editor's server down
            logger.exception("lintml code actions failed")
            return []

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: LintmlLanguageServer, params: types.HoverParams) -> types.Hover | None:
        try:
            return ls.hover(params)
        except Exception:  # a bug in lintml must not take the editor's server down
            logger.exception("lintml hover failed")
            return None

    return server


def serve() -> None:
    """Run the language server over stdin/stdout until the client says exit."""
    logging.basicConfig(level=logging.WARNING, format="lintml-lsp %(levelname)s: %(message)s")
    create_server().start_io()
