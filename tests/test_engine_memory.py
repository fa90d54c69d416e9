"""The engine frees each file's tree and facts as soon as the file is checked: nothing
it builds is left for the cyclic garbage collector (issue 7: cyclic leftovers made
LibCST's parse of the next files slower, by promoting every tree to the oldest GC
generation)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from lintml.engine import lint_source
from lintml.registry import RULES

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
EVERY_CODE = frozenset(RULES)


@pytest.mark.parametrize("name", sorted(path.name for path in DEMO.glob("*.py")))
def test_checking_a_file_leaves_no_cyclic_garbage(name: str):
    source = (DEMO / name).read_text(encoding="utf-8")
    lint_source(source, name, EVERY_CODE)  # imports and memos settle on a first run
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        lint_source(source, name, EVERY_CODE)
        gc.collect()
        # (the standard library's `ast.literal_eval` leaves closures of its own: not ours)
        leftovers = sorted(
            {
                f"{type(thing).__module__}.{type(thing).__qualname__}"
                for thing in gc.garbage
                if type(thing).__module__.startswith(("libcst", "lintml"))  # trees and facts
            }
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert leftovers == []
