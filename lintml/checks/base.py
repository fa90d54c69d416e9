"""The shape of a check, and what a check can ask about the file it visits.

A check is a small class: its code, name and message, the node types it visits
(`visit_<Node>` / `leave_<Node>` methods, as in LibCST visitors) and how it fixes what
it finds. The engine runs every enabled check in one traversal of one parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Literal

import libcst as cst

from lintml.analysis.callgraph import CallGraph
from lintml.analysis.context import Contexts
from lintml.analysis.imports import ImportTable, Scope, dotted_name
from lintml.analysis.models import Models
from lintml.analysis.optimizers import Optimizers
from lintml.analysis.program import Program
from lintml.findings import Applicability

Side = Literal["start", "end"]


@dataclass(frozen=True)
class Anchor:
    """A position named by a node: just before it (`start`) or just after it (`end`)."""

    node: cst.CSTNode
    side: Side


@dataclass(frozen=True)
class NodeEdit:
    start: Anchor
    end: Anchor
    content: str
    # `{indent}` in `content` becomes the indentation of this anchor's line
    indent_of: Anchor | None = None


@dataclass(frozen=True)
class NodeFix:
    """A fix expressed on nodes; the engine turns it into line/column edits."""

    message: str
    edits: tuple[NodeEdit, ...]
    applicability: Applicability = Applicability.SAFE


def insert_after(node: cst.CSTNode, text: str) -> NodeEdit:
    return NodeEdit(Anchor(node, "end"), Anchor(node, "end"), text)


def replace_node(node: cst.CSTNode, text: str) -> NodeEdit:
    return NodeEdit(Anchor(node, "start"), Anchor(node, "end"), text)


def delete_between(start: Anchor, end: Anchor) -> NodeEdit:
    return NodeEdit(start, end, "")


def insert_line_before(statement: cst.CSTNode, line: str) -> NodeEdit:
    """A new line, indented like `statement`, just above it."""
    anchor = Anchor(statement, "start")
    return NodeEdit(anchor, anchor, line.replace("{", "{{").replace("}", "}}") + "\n{indent}", anchor)


@dataclass
class Report:
    code: str
    message: str
    node: cst.CSTNode
    fix: NodeFix | None


class FileContext:
    """Facts about the file being checked, computed once and shared by every check."""

    def __init__(self, filename: str, source: str, module: cst.Module) -> None:
        self.filename = filename
        self.source = source
        self.module = module
        from lintml.project.facts import current_package

        self.imports = ImportTable(module, current_package)  # asked only for a relative import
        self.scope: Scope = self.imports.module_scope
        self.reports: list[Report] = []

    @cached_property
    def facts(self):
        """What the project around the file knows (lintml.project.facts.FileFacts)."""
        from lintml.project.facts import facts_for_text

        return facts_for_text(self.source)

    @cached_property
    def program(self) -> Program:
        """The file's functions, loops, bindings and calls (computed on first use)."""
        return Program(self.module, self.imports, self.filename, self.source)

    @cached_property
    def callgraph(self) -> CallGraph:
        return CallGraph(self.program)

    @cached_property
    def models(self) -> Models:
        return Models(self.program, self.callgraph, lambda: self.facts)  # the project read on first need

    @cached_property
    def optimizers(self) -> Optimizers:
        return Optimizers(self.models, self.imports, self.callgraph)

    @cached_property
    def contexts(self) -> Contexts:
        return Contexts(self.program, self.models, self.callgraph)

    def release(self) -> None:
        """Drop every fact about the file once it is checked (see Program.release)."""
        if "program" in self.__dict__:
            self.program.release()
        self.__dict__.clear()

    def qualified_name(self, node: cst.BaseExpression) -> str | None:
        """What `node` names in the current scope (`torch.no_grad` for `T.no_grad`)."""
        return self.imports.qualified_name(node, self.scope)

    def torch_reference(self) -> tuple[str | None, NodeEdit | None]:
        """How code in the current scope can name `torch` (`torch`, `T`), and the edit
        that adds `import torch` when the file does not import it. (None, None) when no
        name is safe: the file binds `torch` to something else (`torch = "gpt2"`,
        `def torch(...)`, a local variable), so an added `import torch` would be
        shadowed and the fixed code would not mean torch."""
        for name, meanings in self.imports.module_scope.bindings.items():
            if meanings == {"torch"} and self.imports.resolve_name(name, self.scope) == "torch":
                return name, None
        if self._binds("torch"):
            return None, None
        body = list(self.module.body)
        # after the docstring and `from __future__` imports, which must come first
        index = 0
        while index < len(body) and (_is_docstring(body[index]) or _is_future_import(body[index])):
            index += 1
        if index < len(body):
            return "torch", insert_line_before(body[index], "import torch")
        if body:
            anchor = Anchor(body[-1], "end")
            return "torch", NodeEdit(anchor, anchor, "\nimport torch")
        return "torch", None

    def _binds(self, name: str) -> bool:
        """Whether `name` is bound in the current scope or a scope it can see."""
        current: Scope | None = self.scope
        first = True
        while current is not None:
            if not (current.is_class and not first) and name in current.bindings:
                return True
            first = False
            current = current.parent
        return False

    def code_for(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)


def _is_docstring(statement: cst.CSTNode) -> bool:
    return (
        type(statement) is cst.SimpleStatementLine
        and len(statement.body) == 1
        and type(statement.body[0]) is cst.Expr
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _is_future_import(statement: cst.CSTNode) -> bool:
    return type(statement) is cst.SimpleStatementLine and any(
        type(small) is cst.ImportFrom and small.module is not None and dotted_name(small.module) == "__future__"
        for small in statement.body
    )


class Check:
    """Base class of every rule that is found by visiting the syntax tree."""

    code: ClassVar[str]  # its name, family, default and fix safety: lintml.registry.RULES
    # The check can only fire on a file whose text contains one of these strings.
    # Files that contain none of any enabled check's triggers are not parsed.
    triggers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, context: FileContext) -> None:
        self.context = context

    def report(self, node: cst.CSTNode, message: str, fix: NodeFix | None = None) -> None:
        self.context.reports.append(Report(self.code, message, node, fix))
