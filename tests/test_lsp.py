"""The language server (`lintml lsp`), driven over stdio by a real LSP client (pytest-lsp)."""

from __future__ import annotations

import asyncio
import sys

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types  # noqa: E402
from pygls.protocol import default_converter  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features  # noqa: E402

from lintml.registry import DOCS_URL, page  # noqa: E402

pytestmark = pytest.mark.asyncio

# a dropout layer: eval mode matters for it (a Linear alone would not be LML201)
BUGGY = "import torch\nmodel = torch.nn.Dropout(0.1)\nmodel.eval\n"
MESSAGE_204 = "`model.eval` is not called, so this statement does nothing; write `model.eval()`"
# LML204 (safe fix) and LML201 (unsafe fix, the same edit): fix-all must take only the safe one
TWO_FINDINGS = BUGGY + "with torch.no_grad():\n    y = model(x)\n"
TIMEOUT = 10


def lsp_range(start_line: int, start_char: int, end_line: int, end_char: int) -> types.Range:
    return types.Range(types.Position(start_line, start_char), types.Position(end_line, end_char))


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP edits (UTF-16 positions, every one against the original text)."""
    lines = text.splitlines(keepends=True) or [""]

    def offset(position: types.Position) -> int:
        before = sum(len(line) for line in lines[: position.line])
        line = lines[position.line] if position.line < len(lines) else ""
        units = 0
        for index, char in enumerate(line):
            if units >= position.character:
                return before + index
            units += 2 if ord(char) > 0xFFFF else 1
        return before + len(line.rstrip("\r\n"))

    spans = sorted(((offset(e.range.start), offset(e.range.end), e.new_text) for e in edits), reverse=True)
    for start, end, new_text in spans:
        text = text[:start] + new_text + text[end:]
    return text


def make_client() -> LanguageClient:
    """pytest-lsp's test client, also keeping every publishDiagnostics (with its
    version) and every capability the server registers."""
    client = LanguageClient(converter_factory=default_converter)
    client.published = []
    client.registrations = []
    features = dict(DEFAULT_CLIENT_FEATURES)
    features.pop(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    register_lsp_features(client, features)

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
        client.published.append(params)

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def on_register(params: types.RegistrationParams) -> None:
        client.registrations.extend(params.registrations)

    return client


class Session:
    """A client with a server, a project folder, and the diagnostics published so far."""

    def __init__(self, client: LanguageClient, project) -> None:
        self.client = client
        self.project = project
        self.published: list[types.PublishDiagnosticsParams] = client.published
        self.registrations: list[types.Registration] = client.registrations
        self.versions: dict[str, int] = {}

    def count(self, uri: str) -> int:
        return sum(1 for params in self.published if params.uri == uri)

    async def next_diagnostics(self, uri: str, after: int, version: int | None = None) -> list[types.Diagnostic]:
        """The first diagnostics for `uri` published after the first `after` ones (and,
        if given, for `version`)."""

        async def wait():
            while True:
                mine = [params for params in self.published if params.uri == uri][after:]
                for params in mine:
                    if version is None or params.version == version:
                        return params.diagnostics
                await asyncio.sleep(0.02)

        return list(await asyncio.wait_for(wait(), TIMEOUT))

    async def open(self, name: str, text: str) -> tuple[str, list[types.Diagnostic]]:
        path = self.project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        uri = path.as_uri()
        before = self.count(uri)
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "python", 1, text))
        )
        return uri, await self.next_diagnostics(uri, before, 1)

    async def change(self, uri: str, *changes) -> list[types.Diagnostic]:
        """Send each change as its own didChange (new versions); the diagnostics of the last."""
        before = self.count(uri)
        for change in changes:
            if isinstance(change, str):
                change = types.TextDocumentContentChangeWholeDocument(text=change)
            self.versions[uri] += 1
            self.client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]), [change]
                )
            )
        return await self.next_diagnostics(uri, before, self.versions[uri])

    async def actions(self, uri: str, at: types.Range, diagnostics, only=None) -> list[types.CodeAction]:
        result = await self.client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri),
                range=at,
                context=types.CodeActionContext(diagnostics=diagnostics, only=only),
            )
        )
        return list(result or [])

    async def pyproject_changed(self, uri: str, text: str, saved: bool = False) -> list[types.Diagnostic]:
        """Write the project's pyproject.toml and tell the server: a watched-file event,
        or (`saved`) a didSave of the file as an editor that has it open would."""
        pyproject = self.project / "pyproject.toml"
        pyproject.write_text(text, encoding="utf-8")
        before = self.count(uri)
        if saved:
            self.client.text_document_did_save(
                types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(pyproject.as_uri()))
            )
        else:
            self.client.workspace_did_change_watched_files(
                types.DidChangeWatchedFilesParams([types.FileEvent(pyproject.as_uri(), types.FileChangeType.Changed)])
            )
        return await self.next_diagnostics(uri, before)


SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "lintml", "lsp"], client_factory=make_client)


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=project.as_uri(),
            workspace_folders=[types.WorkspaceFolder(project.as_uri(), "proj")],
        )
    )
    yield
    await lsp_client.shutdown_session()


@pytest.fixture
def session(client: LanguageClient, tmp_path) -> Session:
    return Session(client, tmp_path / "proj")


def diagnostic_204(line: int = 2, start: int = 0, end: int = 10) -> types.Diagnostic:
    return types.Diagnostic(
        range=lsp_range(line, start, line, end),
        message=MESSAGE_204,
        severity=types.DiagnosticSeverity.Warning,
        code="LML204",
        code_description=types.CodeDescription(href=DOCS_URL.format(code="LML204")),
        source="lintml",
    )


async def test_diagnostics_on_open_are_exact(session):
    _, diagnostics = await session.open("train.py", BUGGY)
    assert diagnostics == [diagnostic_204()]
    assert diagnostics[0].code_description.href == "https://github.com/lintml/lintml/blob/main/rules/LML204.md"


async def test_the_server_watches_pyproject_files(session):
    await session.open("train.py", BUGGY)
    (registration,) = session.registrations
    assert registration.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
    assert [w["globPattern"] for w in registration.register_options["watchers"]] == ["**/pyproject.toml"]


async def test_columns_are_utf16_code_units(session):
    # 😋 is one code point (lintml's column) but two UTF-16 code units (LSP's)
    _, diagnostics = await session.open("wide.py", BUGGY.replace("model.eval\n", 's = "😋"; model.eval\n'))
    assert [d.range for d in diagnostics] == [lsp_range(2, 10, 2, 20)]


async def test_syntax_error_is_lml900_not_a_crash(session):
    uri, diagnostics = await session.open("broken.py", "import torch\ndef f(:\n    pass\n")
    assert [(d.code, d.severity, d.range.start) for d in diagnostics] == [
        ("LML900", types.DiagnosticSeverity.Error, types.Position(1, 6))
    ]
    assert diagnostics[0].message.startswith("Cannot parse this file: ")
    # and the server goes on serving
    assert await session.change(uri, BUGGY) == [diagnostic_204()]


async def test_quick_fix_edit_clears_the_diagnostic(session):
    uri, diagnostics = await session.open("train.py", BUGGY)
    actions = await session.actions(uri, lsp_range(2, 3, 2, 3), diagnostics)
    assert [(a.title, a.kind, a.is_preferred) for a in actions] == [
        ("Call `model.eval()` (LML204)", types.CodeActionKind.QuickFix, True),
        ("Suppress LML204 on this line", types.CodeActionKind.QuickFix, None),
        ("Fix all safe lintml findings", "source.fixAll.lintml", None),
    ]
    fix = actions[0]
    assert list(fix.diagnostics) == diagnostics
    assert list(fix.edit.changes[uri]) == [types.TextEdit(lsp_range(2, 10, 2, 10), "()")]
    fixed = apply_text_edits(BUGGY, fix.edit.changes[uri])
    assert fixed == BUGGY.replace("model.eval\n", "model.eval()\n")
    assert await session.change(uri, fixed) == []


async def test_no_actions_away_from_findings_except_fix_all(session):
    uri, diagnostics = await session.open("train.py", BUGGY)
    actions = await session.actions(uri, lsp_range(0, 0, 0, 0), [])
    assert [a.kind for a in actions] == ["source.fixAll.lintml"]
    assert await session.actions(uri, lsp_range(0, 0, 0, 0), [], only=[types.CodeActionKind.QuickFix]) == []


async def test_unsafe_fix_is_labelled_and_not_preferred(session):
    uri, diagnostics = await session.open("infer.py", TWO_FINDINGS)
    assert [d.code for d in diagnostics] == ["LML204", "LML201"]
    actions = await session.actions(uri, diagnostics[1].range, [diagnostics[1]], only=[types.CodeActionKind.QuickFix])
    assert [(a.title, a.is_preferred) for a in actions] == [
        ("Call `model.eval()` (LML201) (unsafe)", None),
        ("Suppress LML201 on this line", None),
    ]


async def test_suppress_appends_a_noqa_comment(session):
    uri, diagnostics = await session.open("train.py", BUGGY)
    actions = await session.actions(uri, diagnostics[0].range, diagnostics)
    (suppress,) = [a for a in actions if a.title == "Suppress LML204 on this line"]
    assert list(suppress.edit.changes[uri]) == [types.TextEdit(lsp_range(2, 10, 2, 10), "  # noqa: LML204")]
    text = apply_text_edits(BUGGY, suppress.edit.changes[uri])
    assert text.endswith("model.eval  # noqa: LML204\n")
    assert await session.change(uri, text) == []


async def test_suppress_extends_an_existing_noqa_comment(session):
    text = BUGGY.replace("model.eval\n", "model.eval  # noqa: E501\n")
    uri, diagnostics = await session.open("train.py", text)
    actions = await session.actions(uri, diagnostics[0].range, diagnostics)
    (suppress,) = [a for a in actions if a.title.startswith("Suppress")]
    text = apply_text_edits(text, suppress.edit.changes[uri])
    assert text.endswith("model.eval  # noqa: E501, LML204\n")
    assert await session.change(uri, text) == []


async def test_fix_all_applies_the_safe_fixes_as_the_cli_does(session):
    uri, diagnostics = await session.open("infer.py", TWO_FINDINGS)
    actions = await session.actions(uri, lsp_range(0, 0, 0, 0), [], only=[types.CodeActionKind.SourceFixAll])
    (fix_all,) = actions
    assert (fix_all.title, fix_all.kind) == ("Fix all safe lintml findings", "source.fixAll.lintml")
    fixed = apply_text_edits(TWO_FINDINGS, fix_all.edit.changes[uri])
    # the safe LML204 fix goes in; it also cures LML201, whose own fix was unsafe
    assert fixed == TWO_FINDINGS.replace("model.eval\n", "model.eval()\n")
    assert await session.change(uri, fixed) == []
    assert await session.actions(uri, lsp_range(0, 0, 0, 0), [], only=[types.CodeActionKind.SourceFixAll]) == []


async def test_hover_shows_the_rule_page(session):
    uri, diagnostics = await session.open("train.py", BUGGY)
    hover = await session.client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(2, 4))
    )
    assert hover.range == diagnostics[0].range
    assert hover.contents.kind == types.MarkupKind.Markdown
    value = hover.contents.value
    rule_page = page("LML204")
    assert value.startswith("**LML204** `mode-method-not-called`")
    assert "### What it does" in value and rule_page.sections["What it does"].strip() in value
    assert "### Why is this bad?" in value and rule_page.sections["Why is this bad?"].strip() in value
    assert DOCS_URL.format(code="LML204") in value
    nothing = await session.client.text_document_hover_async(
        types.HoverParams(types.TextDocumentIdentifier(uri), types.Position(0, 2))
    )
    assert nothing is None


async def test_an_edit_that_adds_a_finding_updates_the_diagnostics(session):
    clean = BUGGY.replace("model.eval\n", "model.eval()\n")
    uri, diagnostics = await session.open("train.py", clean)
    assert diagnostics == []
    # three quick edits (incremental): debounced, and only the latest version is published
    diagnostics = await session.change(
        uri,
        types.TextDocumentContentChangePartial(range=lsp_range(2, 10, 2, 12), text=""),
        types.TextDocumentContentChangePartial(range=lsp_range(3, 0, 3, 0), text="x = 1\n"),
        types.TextDocumentContentChangePartial(range=lsp_range(3, 0, 3, 0), text="y = 2\n"),
    )
    assert diagnostics == [diagnostic_204()]
    assert [params.version for params in session.published if params.uri == uri] == [1, 4]


async def test_a_pyproject_change_reconfigures_open_documents(session):
    uri, diagnostics = await session.open("src/train.py", BUGGY)
    assert diagnostics == [diagnostic_204()]
    assert await session.pyproject_changed(uri, '[tool.lintml]\nignore = ["LML204"]\n') == []
    assert await session.pyproject_changed(uri, "[tool.lintml]\nignore = []\n") == [diagnostic_204()]


async def test_saving_a_pyproject_reconfigures_open_documents(session):
    uri, _ = await session.open("train.py", BUGGY)
    assert await session.pyproject_changed(uri, '[tool.lintml]\nignore = ["LML2"]\n', saved=True) == []


async def test_a_bad_configuration_is_reported_once_and_the_server_keeps_serving(session):
    uri, _ = await session.open("train.py", BUGGY)
    diagnostics = await session.pyproject_changed(uri, '[tool.lintml]\nignore = ["NOPE"]\n')
    (diagnostic,) = diagnostics
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    assert diagnostic.range == lsp_range(0, 0, 0, 0)
    assert "unknown rule code `NOPE`" in diagnostic.message
    assert await session.change(uri, BUGGY + "\n") == diagnostics
    errors = [m for m in session.client.messages if m.type == types.MessageType.Error]
    assert len(errors) == 1 and "unknown rule code `NOPE`" in errors[0].message
    assert await session.pyproject_changed(uri, "[tool.lintml]\n") == [diagnostic_204()]


# -- the project around the open file (issue 13) ---------------------------------------

PLAIN_MODEL = "from torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(2, 2)\n"
PREDICT = "import torch\nfrom models import Net\n\nnet = Net()\nwith torch.no_grad():\n    y = net(torch.ones(1, 2))\n"


async def test_a_saved_file_of_the_project_changes_the_open_files_diagnostics(session):
    (session.project / "pyproject.toml").write_text('[project]\nname = "demo"\n', encoding="utf-8")
    models = session.project / "models.py"
    models.write_text(PLAIN_MODEL, encoding="utf-8")
    uri, diagnostics = await session.open("predict.py", PREDICT)
    assert diagnostics == []  # Net has no dropout or batch norm: eval mode changes nothing
    # models.py gains a dropout and is saved: the open predict.py is checked again
    models.write_text(PLAIN_MODEL + "        self.drop = nn.Dropout(0.1)\n", encoding="utf-8")
    before = session.count(uri)
    session.client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(models.as_uri())))
    diagnostics = await session.next_diagnostics(uri, before)
    assert [(d.code, d.range.start.line) for d in diagnostics] == [("LML201", 5)]
