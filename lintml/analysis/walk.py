"""Walking a LibCST tree cheaply: only the fields that can hold code, in source order.

LibCST's own `visit` rebuilds every node on the way back up; reading the fields
directly is an order of magnitude cheaper. Both the engine's traversal and the
analysis pre-pass walk this way.
"""

from __future__ import annotations

import dataclasses
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
    return tuple(
        field.name
        for field in dataclasses.fields(node_type)
        if not field.name.startswith(_TOKEN_FIELDS) and field.name not in skipped
    )


def descendants(node: cst.CSTNode):
    """`node` and every node below it that can hold code (cheaper than `.children`)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        for name in child_fields(type(current)):
            value = getattr(current, name)
            if isinstance(value, cst.CSTNode):
                stack.append(value)
            elif type(value) in (list, tuple):
                stack.extend(item for item in value if isinstance(item, cst.CSTNode))
