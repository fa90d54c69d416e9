"""Finding positions come from regenerating only the statements that hold a reported
node (lintml.engine._positions); they must equal LibCST's PositionProvider's, which
regenerates the whole module, for every kind of node and file."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from lintml.analysis.walk import descendants
from lintml.engine import _holders, _positions

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = sorted(path for path in (ROOT / "fixtures").rglob("*.py"))

ODD_FILES = {
    "crlf": "import torch\r\n\r\ndef f(model):\r\n    model.eval\r\n    return model(x)\r\n",
    "lone_cr": "import torch\r# comment\rdef f(model):\r    return model(x)\r",
    "no_trailing_newline": "import torch\nmodel = load()\nmodel(x)",
    "header_and_form_feed": "#!/usr/bin/env python\n# header\n\n\x0c\nimport torch\n\n\x0cmodel(x)\n",
    "repeated_statements": "model.eval\nmodel.eval\nif x:\n    model.eval\nmodel.eval\n",
    "decorated_nested": "@a\n@b(c)\ndef f():\n    @d\n    def g():\n        return model(x)  # trailing\n    return g\n",
    "semicolons_and_strings": 'x = 1; model(x); y = """\nmodel(x)\n"""\nmodel(x)\n',
    "tabs": "if x:\n\tmodel(x)\n\tif y:\n\t\tmodel.eval\n",
    "nested_blocks": (
        "def main():\n    # setup\n    for batch in loader:\n        try:\n            out = model(batch)\n"
        "        except ValueError as e:\n            out = None\n        else:\n            pass\n"
        "        finally:\n            done()\n    while x:\n        if a:\n            model(x)\n"
        "        elif b:\n\n            # why\n            model(x)\n        else:\n            model(x)\n"
        "    with torch.no_grad():\n        match y:\n            case 1:\n                model(x)\n"
        "            case _:\n                pass\n"
    ),
    "mixed_indents": "class A:\n  def f(self):\n        if x:\n         return model(x)\n        return 1\n",
}


def _check_every_node(source: str, alone_every: int = 1) -> int:
    module = cst.parse_module(source)
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    nodes = [node for node in descendants(module) if node is not module]
    for node in nodes[::alone_every]:  # one at a time: each statement found on its own
        assert _positions(module, source, [node])[node] == expected[node], module.code_for_node(node)
    together = _positions(module, source, nodes)
    for node in nodes:
        assert together[node] == expected[node]
    return len(nodes)


@pytest.mark.parametrize("name", sorted(ODD_FILES))
def test_positions_in_odd_files_equal_libcst_s(name: str):
    assert _check_every_node(ODD_FILES[name]) > 5


def test_positions_in_every_fixture_equal_libcst_s():
    checked = 0
    for path in FIXTURES:
        source = path.read_text(encoding="utf-8")
        try:
            cst.parse_module(source)
        except cst.ParserSyntaxError:
            continue
        checked += _check_every_node(source, alone_every=40)
    assert checked > 10_000


def test_a_node_in_a_long_function_regenerates_only_its_own_line():
    source = ODD_FILES["nested_blocks"]
    module = cst.parse_module(source)
    call = next(node for node in descendants(module) if isinstance(node, cst.Call) and module.code_for_node(node) == "model(batch)")
    holders = _holders(module, {id(call)})
    assert [(module.code_for_node(statement), indents) for statement, indents in holders] == [
        ("out = model(batch)\n", ("    ", "    ", "    "))
    ]
