"""The shape of a check, and what a check can ask about the file it visits.

A check is a small class: its code, name and message, the node types it visits
(`visit_<Node>` / `leave_<Node>` methods, as in LibCST visitors) and how it fixes what
it finds. The engine runs every enabled check in one traversal of one parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import libcst as cst

from lintml.analysis.imports import ImportTable, Scope
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
        self.imports = ImportTable(module)
        self.scope: Scope = self.imports.module_scope
        self.reports: list[Report] = []

    def qualified_name(self, node: cst.BaseExpression) -> str | None:
        """What `node` names in the current scope (`torch.no_grad` for `T.no_grad`)."""
        return self.imports.qualified_name(node, self.scope)

    def code_for(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)


class Check:
    """Base class of every rule that is found by visiting the syntax tree."""

    code: ClassVar[str]
    name: ClassVar[str]  # kebab-case, stable
    family: ClassVar[str]
    summary: ClassVar[str]  # one line: what is reported
    fix_safety: ClassVar[Applicability | None] = None
    default_enabled: ClassVar[bool] = True
    # The check can only fire on a file whose text contains one of these strings.
    # Files that contain none of any enabled check's triggers are not parsed.
    triggers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, context: FileContext) -> None:
        self.context = context

    def report(self, node: cst.CSTNode, message: str, fix: NodeFix | None = None) -> None:
        self.context.reports.append(Report(self.code, message, node, fix))
