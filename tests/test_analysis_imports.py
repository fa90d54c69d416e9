"""The alias table: which local names mean which library objects."""

import libcst as cst
import pytest

from lintml.analysis.imports import ImportTable, dotted_name


def _table(source: str):
    module = cst.parse_module(source)
    return module, ImportTable(module)


def _resolve(source: str, expression: str, function: str | None = None):
    """What `expression` means at module level, or inside the named function."""
    module, table = _table(source)
    scope = table.module_scope
    if function is not None:
        for node in _walk_functions(module):
            if node.name.value == function:
                scope = table.scope_of(node)
    return table.qualified_name(cst.parse_expression(expression), scope)


def _walk_functions(module):
    found = []

    class Collect(cst.CSTVisitor):
        def visit_FunctionDef(self, node):
            found.append(node)

    module.visit(Collect())
    return found


@pytest.mark.parametrize(
    ("source", "expression", "expected"),
    [
        ("import torch\n", "torch.no_grad", "torch.no_grad"),
        ("import torch as T\n", "T.no_grad", "torch.no_grad"),
        ("import torch.nn\n", "torch.nn.Module", "torch.nn.Module"),
        ("import torch.nn.functional as F\n", "F.relu", "torch.nn.functional.relu"),
        ("from torch import no_grad\n", "no_grad", "torch.no_grad"),
        ("from torch import no_grad as ng\n", "ng", "torch.no_grad"),
        ("from torch import nn\n", "nn.Module", "torch.nn.Module"),
        ("from transformers import GenerationConfig\n", "GenerationConfig", "transformers.GenerationConfig"),
        ("import torch\n", "np.zeros", None),  # never imported
        ("from . import torch\n", "torch.no_grad", None),  # a relative import is the project's own
        ("from torch import *\n", "no_grad", None),
        ("import torch\ntorch = make_fake_torch()\n", "torch.no_grad", None),  # shadowed
        ("import torch\ndef torch():\n    pass\n", "torch.no_grad", None),
        # the optional-import idiom keeps the import's meaning
        ("try:\n    import torch\nexcept ImportError:\n    torch = None\n", "torch.no_grad", "torch.no_grad"),
        ("if TYPE:\n    import torch as T\nelse:\n    import torch as T\n", "T.nn", "torch.nn"),
        ("import torch as T\nimport numpy as T\n", "T.zeros", None),  # two meanings: unknown
        ("with open(p) as torch:\n    pass\nimport torch\n", "torch.no_grad", None),
        ("for torch in range(3):\n    pass\n", "torch.no_grad", None),
    ],
)
def test_module_level_names(source, expression, expected):
    assert _resolve(source, expression) == expected


def test_function_parameter_shadows_import():
    source = "from torch import no_grad\ndef f(no_grad):\n    pass\n"
    assert _resolve(source, "no_grad", "f") is None
    assert _resolve(source, "no_grad") == "torch.no_grad"


def test_import_inside_function_is_local_to_it():
    source = "def f():\n    import torch as T\n\ndef g():\n    pass\n"
    assert _resolve(source, "T.no_grad", "f") == "torch.no_grad"
    assert _resolve(source, "T.no_grad", "g") is None
    assert _resolve(source, "T.no_grad") is None


def test_nested_function_sees_enclosing_function_imports():
    source = "def outer():\n    import torch\n    def inner():\n        pass\n"
    assert _resolve(source, "torch.no_grad", "inner") == "torch.no_grad"


def test_class_body_names_are_not_visible_in_methods():
    source = "import torch\nclass C:\n    torch = None\n    x = 1\n    def m(self):\n        pass\n"
    # `torch = None` in the class body does not shadow the module import inside methods
    assert _resolve(source, "torch.no_grad", "m") == "torch.no_grad"
    source = "class C:\n    import torch\n    def m(self):\n        pass\n"
    assert _resolve(source, "torch.no_grad", "m") is None


def test_local_assignment_shadows_module_import_in_that_function():
    source = "import torch\ndef f():\n    torch = object()\n"
    assert _resolve(source, "torch.no_grad", "f") is None


def test_dotted_name():
    assert dotted_name(cst.parse_expression("a.b.c")) == "a.b.c"
    assert dotted_name(cst.parse_expression("a().b")) is None
    assert dotted_name(cst.parse_expression("x")) == "x"
