"""Walking a LibCST tree cheaply: only the fields that can hold code, in source order.

LibCST's own `visit` rebuilds every node on the way back up; reading the fields
directly is an order of magnitude cheaper. Both the engine's traversal and the
analysis pre-pass walk this way.
"""

from __future__ import annotations

import dataclasses
import typing
from functools import lru_cache

import libcst as cst

# Fields that only hold whitespace, comments and punctuation: never walked.
_TOKEN_FIELDS = (
    "whitespace", "lpar", "rpar", "comma", "semicolon", "leading_lines", "lines_after",
    "header", "footer", "trailing", "newline", "equal", "colon", "dot", "lbracket",
    "rbracket", "lbrace", "rbrace", "empty_lines", "indent", "asynchronous",
)  # fmt: skip
# Scopes: what is evaluated outside the new scope comes first, then the body inside it.
SCOPE_OUTER_FIELDS = {
    cst.FunctionDef: ("decorators", "params", "returns"),
    cst.ClassDef: ("decorators", "bases", "keywords"),
}


@lru_cache(maxsize=None)
def child_fields(node_type: type) -> tuple[str, ...]:
    """The fields of a node type that can hold code, in source order. For a def or
    class: only those inside its scope (its name is not walked)."""
    outer = SCOPE_OUTER_FIELDS.get(node_type)
    skipped = (*outer, "name") if outer is not None else ()
    try:
        hints = typing.get_type_hints(node_type)
    except Exception:  # an annotation LibCST cannot resolve: keep every field
        hints = {}
    return tuple(
        field.name
        for field in dataclasses.fields(node_type)
        if not field.name.startswith(_TOKEN_FIELDS)
        and field.name not in skipped
        and _can_hold_a_node(hints.get(field.name, cst.CSTNode))
    )


def _can_hold_a_node(hint) -> bool:
    """Whether a field's annotation admits a node (`Name.value: str` does not, so the
    walks never look into a leaf)."""
    if isinstance(hint, type):
        return issubclass(hint, cst.CSTNode)
    if typing.get_origin(hint) is typing.Literal:
        return False
    arguments = typing.get_args(hint)
    return not arguments or any(_can_hold_a_node(argument) for argument in arguments)


# Whether a type is a node type, by exact type: `isinstance(value, cst.CSTNode)` goes
# through the ABC machinery, and the walks ask it of every field of every node.
_IS_NODE: dict[type, bool] = {}


def _is_node_type(value_type: type) -> bool:
    known = _IS_NODE.get(value_type)
    if known is None:
        known = _IS_NODE[value_type] = issubclass(value_type, cst.CSTNode)
    return known


def concrete_types(*bases: type) -> frozenset[type]:
    """The node types that are instances of `bases`: `type(node) in` them is what
    `isinstance(node, bases)` answers, without the ABC machinery LibCST's classes go
    through (a miss costs ten times a hit). LibCST's concrete node types have no
    subclasses, so `type(node) is cst.Name` stands for `isinstance` too."""
    found: set[type] = set()
    stack = list(bases)
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(current.__subclasses__())
    return frozenset(found)


def is_node(value) -> bool:
    """`isinstance(value, cst.CSTNode)`, by exact type."""
    value_type = type(value)
    known = _IS_NODE.get(value_type)
    return _is_node_type(value_type) if known is None else known


class SkippedLeaves(dict):
    """Node type -> whether a walk passes over it: a leaf (no field that can hold code)
    that `handled` does not name. Filled as types are met (`child_fields` reads a
    type's annotations: costly for all of LibCST's types at once)."""

    def __init__(self, handled) -> None:
        super().__init__()
        self.handled = handled

    def __missing__(self, node_type: type) -> bool:
        skipped = self[node_type] = not child_fields(node_type) and not self.handled(node_type)
        return skipped


def child_nodes(node: cst.CSTNode, fields: tuple[str, ...] | None = None) -> list[cst.CSTNode]:
    """The nodes in `fields` of `node` (by default every field that can hold code), in order."""
    if fields is None:
        children = _CHILDREN.get(type(node))
        if children is None:
            children = _CHILDREN[type(node)] = _children_function(type(node))
        return children(node)
    return _child_nodes(node, fields)


def _child_nodes(node: cst.CSTNode, fields: tuple[str, ...] | None = None) -> list[cst.CSTNode]:
    found: list[cst.CSTNode] = []
    is_node = _IS_NODE.get
    for name in child_fields(type(node)) if fields is None else fields:
        value = getattr(node, name)
        value_type = type(value)
        if value_type is list or value_type is tuple:
            for item in value:
                item_type = type(item)
                if is_node(item_type) or (is_node(item_type) is None and _is_node_type(item_type)):
                    found.append(item)
        elif is_node(value_type) or (is_node(value_type) is None and _is_node_type(value_type)):
            found.append(value)
    return found


# node type -> a function giving its children: the walks ask for the children of every
# node, and a function written for the type's fields reads them as attributes, without
# looking the field names up or testing whether each value is a list
_CHILDREN: dict[type, object] = {}


def _children_function(node_type: type):
    fields = child_fields(node_type)
    if not fields:
        return _no_children
    try:
        hints = typing.get_type_hints(node_type)
    except Exception:
        hints = {}
    lines = ["def children(node):", "    found = []", "    append = found.append"]
    for name in fields:
        if not name.isidentifier():  # pragma: no cover - dataclass fields always are
            return lambda node: _child_nodes(node, fields)
        kind = _field_kind(hints.get(name))
        if kind == "sequence":
            lines.append(f"    found.extend(node.{name})")  # LibCST's sequences of nodes hold only nodes
        else:  # a node, or None / MaybeSentinel, or (rarely) either a node or a sequence
            lines += [
                f"    value = node.{name}",
                "    value_type = type(value)",
                "    if value_type is list or value_type is tuple:",
                "        for item in value:",
                "            if is_node(type(item)) or _is_node_type(type(item)):",
                "                append(item)",
                "    elif is_node(value_type) or _is_node_type(value_type):",
                "        append(value)",
            ]
    lines.append("    return found")
    namespace = {"is_node": _IS_NODE.get, "_is_node_type": _is_node_type}
    exec("\n".join(lines), namespace)  # noqa: S102 - our own text, from the node type's fields
    return namespace["children"]


def _field_kind(hint) -> str:
    """"sequence" for a field that always holds a sequence of nodes, else "value"."""
    text = str(hint)
    return "sequence" if text.startswith(("typing.Sequence[", "collections.abc.Sequence[")) else "value"


def _no_children(node) -> list:
    return []


def descendants(node: cst.CSTNode):
    """`node` and every node below it that can hold code (cheaper than `.children`)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(child_nodes(current))
