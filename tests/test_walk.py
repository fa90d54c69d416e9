"""The cheap tree walk (lintml.analysis.walk): the children of a node, read by a function
written for its type's fields, are the nodes the generic reading of every field finds,
in the same order, on every node of every fixture (all node types our checks meet)."""

from __future__ import annotations

from pathlib import Path

import libcst as cst

from lintml.analysis import walk

REPO = Path(__file__).resolve().parents[1]

EVERY_FORM = '''\
import a.b as c
from .x import (y as z, w)
@decorator(1)
async def f(p, /, q: int = 2, *args, r, **kw) -> "T":
    global g
    async with a as (b, c), d:
        async for i in range(3):
            x = [j async for j in k if j]
            y = {k: v for k, v in z.items()}
            del x[1:2, ::3]
            await y
    try:
        raise E from e
    except* (A, B) as err:
        pass
    else:
        yield from f
    finally:
        assert x, "m"
    match p:
        case [1, *rest] | {"k": v, **kw} if v:
            pass
        case Point(x=0, y=_) as point:
            return lambda a, *b: (a, *b)
    type_ = x if y else (yield)
    print(f"{x!r:>{width}}", *a, **b)
    n: int = 1; n += 1; n @= m
    return not -x ** ~y < z is not w in v
class C(B, metaclass=M):
    while x:
        break
    else:
        continue
'''


def _all_nodes(module: cst.Module):
    stack = [module]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children)  # LibCST's own reading: every child, tokens included


def test_children_are_those_the_generic_reading_finds_in_order():
    sources = [EVERY_FORM, *(path.read_text(encoding="utf-8") for path in sorted((REPO / "fixtures").rglob("*.py")))]
    types = set()
    for source in sources:
        try:
            module = cst.parse_module(source)
        except cst.ParserSyntaxError:
            continue  # fixtures of files that do not parse
        for node in _all_nodes(module):
            fast, generic = walk.child_nodes(node), walk._child_nodes(node)
            assert [id(n) for n in fast] == [id(n) for n in generic], type(node).__name__
            types.add(type(node))
    assert len(types) > 100  # the fixtures and the program above meet most of LibCST's node types
