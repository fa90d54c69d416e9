"""Regressions found by benchmarks/corpus_check.py's fuzzing (issue 8): a fix must mean
what it says where it is inserted, and a second `--fix` must change nothing."""

from __future__ import annotations

import pytest

import lintml
from lintml.config import Config
from lintml.fixes import fix_source

ALL_RULES = Config(select=("LML",))


def lint(text: str):
    return lintml.check_source(text, filename="example.py", config=ALL_RULES)


def fixed(text: str) -> str:
    return fix_source(text, lint, unsafe=True).source


EVAL_THEN_FORWARD = "model = AutoModel.from_pretrained(name)\nmodel.eval()\noutputs = model(inputs)\n"


@pytest.mark.parametrize(
    "text",
    [
        # `torch` is a string: `import torch` added above would be shadowed by it, and
        # every round of fixes added one more import and one more `with` (mutated fixture)
        'from transformers import AutoModel\n\ntorch = "gpt2"\n' + EVAL_THEN_FORWARD,
        # the import is shadowed by a function of the same name
        "import torch\nfrom transformers import AutoModel\n\n\ndef torch():\n    pass\n\n\n" + EVAL_THEN_FORWARD,
        # a local variable hides the import inside the function
        "import torch\n\n\ndef predict(model, loader):\n    model.eval()\n    torch = []\n"
        "    for x in loader:\n        torch.append(model(x).argmax(-1))\n    return torch\n",
    ],
    ids=["module-string", "module-function", "local-variable"],
)
def test_lml101_has_no_fix_where_torch_means_something_else(text):
    [finding] = [f for f in lint(text) if f.code == "LML101"]
    assert finding.fix is None
    assert fixed(text) == text


def test_lml101_still_fixes_through_another_name_for_torch():
    text = 'import torch as T\nfrom transformers import AutoModel\n\ntorch = "gpt2"\n' + EVAL_THEN_FORWARD
    result = fixed(text)
    assert "with T.inference_mode():\n    outputs = model(inputs)\n" in result
    assert fixed(result) == result
    assert not [f for f in lint(result) if f.code == "LML101"]


def test_lml101_adds_the_import_when_torch_is_free():
    text = "from transformers import AutoModel\n\n" + EVAL_THEN_FORWARD
    result = fixed(text)
    assert result.startswith("import torch\nfrom transformers import AutoModel\n")
    assert fixed(result) == result
