"""The project facts, layer by layer, on small projects: the index of a module, the
summaries over the project (classes, effects, callers, values) and value kinds,
including cycles, which must end with a bounded amount of work."""

from __future__ import annotations

import ast
from pathlib import Path

from lintml.analysis import kinds
from lintml.project.facts import ProjectFacts
from lintml.project.index import index_module
from lintml.project.layout import build_layout
from lintml.project.summaries import FunctionRef


def project(tmp_path: Path, files: dict[str, str]) -> ProjectFacts:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "pyproject.toml").write_text("")
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return ProjectFacts(build_layout(tmp_path))


# -- index -------------------------------------------------------------------------


def test_index_reads_bases_layers_and_effects():
    facts = index_module(
        ast.parse(
            "from torch import nn\n"
            "from .blocks import Block\n"
            "class Net(nn.Module):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            "        self.body = nn.Sequential(Block(), nn.Dropout(p=0.0))\n"
            "def evaluate(net, loader):\n"
            "    net.eval()\n"
            "    for x in loader:\n"
            "        net(x)\n"
        ),
        "pkg.models",
    )
    assert facts.imports == {"nn": "torch.nn", "Block": "pkg.blocks.Block"}
    net = facts.classes["Net"]
    assert net.bases == ["torch.nn.Module"]
    assert ("torch.nn.Dropout", {"p": 0.0}) in net.layer_calls
    assert ("pkg.blocks.Block", {}) in net.layer_calls
    evaluate = facts.functions["evaluate"]
    assert [(op, target) for _, target, op in evaluate.ops] == [("eval", "net"), ("forward", "net")]


# -- summaries ---------------------------------------------------------------------


def test_a_class_reading_self_training_is_seen_however_the_attribute_is_written():
    written = {
        "self.training": True,
        "self . training": True,
        "(self.\n            training)": True,
        "(self.  # the flag\n            training)": True,
        "self.training_steps": False,  # another attribute
        "training_steps": False,
        # a sentence's dot before a banner of hashes: the text search stays linear
        "x  # the end.  " + "#" * 40: False,
    }
    for text, flag in written.items():
        source = f"class Net:\n    def forward(self, x):\n        flag = {text}\n        return x\n"
        for given in (source, source.encode()):
            found = index_module(ast.parse(source), "m", False, given).classes["Net"].uses_training_flag
            assert found is flag, text


def test_model_classes_and_mode_dependence_across_files(tmp_path: Path):
    facts = project(
        tmp_path,
        {
            "models/__init__.py": "from .nets import Plain, WithNorm, Wrapper\n",
            "models/blocks.py": "from torch import nn\nclass Block(nn.Module):\n"
            "    def __init__(self):\n        super().__init__()\n        self.bn = nn.BatchNorm1d(4)\n",
            "models/nets.py": "from torch import nn\nfrom .blocks import Block\n"
            "class Plain(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.fc = nn.Linear(4, 4)\n        self.drop = nn.Dropout(0.0)\n"
            "class WithNorm(Plain):\n    def __init__(self):\n        super().__init__()\n        self.block = Block()\n"
            "class Wrapper(nn.Module):\n    def __init__(self, inner):\n        super().__init__()\n        self.inner = inner\n"
            "    def forward(self, x):\n        return self.inner(x)\n",
        },
    )
    summaries = facts.summaries
    assert summaries.class_named("train", "models.Plain") == ("models.nets", facts.modules["models.nets"].classes["Plain"])
    assert summaries.is_module_class("models.nets", "WithNorm")
    assert summaries.mode_dependent("models.nets", "Plain") is False  # Linear and a zero dropout
    assert summaries.mode_dependent("models.nets", "WithNorm") is True  # a BatchNorm in another file
    assert summaries.mode_dependent("models.nets", "Wrapper") is None  # a module handed in


def test_effects_follow_calls_and_callers_pass_kinds(tmp_path: Path):
    facts = project(
        tmp_path,
        {
            "helpers.py": "def freeze(m):\n    m.eval()\n\ndef evaluate(net):\n    freeze(net)\n    return net(1)\n",
            "loops.py": "def train(model, optimizer, loader):\n    for x in loader:\n"
            "        model(x).sum().backward()\n        optimizer.step()\n",
            "main.py": "import torch\nfrom torch import nn\nfrom loops import train\nfrom helpers import evaluate\n"
            "def main(loader):\n    model = nn.Linear(2, 2)\n"
            "    train(model, torch.optim.SGD(model.parameters(), lr=0.1), loader)\n    evaluate(model)\n",
        },
    )
    summaries = facts.summaries
    effect = summaries.effect(FunctionRef("helpers", "evaluate"), "net")
    assert effect.mode == "eval" and effect.forward == "grad"
    optimizer = summaries.parameter_value(FunctionRef("loops", "train"), "optimizer")
    assert optimizer.only(kinds.OPTIMIZER)
    model = summaries.parameter_value(FunctionRef("loops", "train"), "model")
    assert model.only(kinds.MODEL) and model.mode_dependent is False


def test_pipelines_and_their_outputs_are_not_models_or_tensors(tmp_path: Path):
    facts = project(
        tmp_path,
        {
            "run.py": "from diffusers import DiffusionPipeline\nfrom transformers import pipeline\n"
            "def log_validation(pipe):\n    image = pipe('a cat').images[0]\n    return image\n"
            "def main():\n    log_validation(DiffusionPipeline.from_pretrained('x'))\n"
            "    classify = pipeline('text-classification')\n    log_validation(classify)\n",
        },
    )
    value = facts.summaries.parameter_value(FunctionRef("run", "log_validation"), "pipe")
    assert value.only(kinds.PIPELINE)


def test_branches_join_and_unknown_stays_unknown():
    assert kinds.join([kinds.of(kinds.MODEL, mode="eval"), kinds.of(kinds.MODEL, mode="default")]).mode is None
    assert kinds.join([kinds.of(kinds.MODEL), kinds.of(kinds.PIPELINE)]).kinds == {kinds.MODEL, kinds.PIPELINE}
    assert not kinds.join([kinds.of(kinds.MODEL), kinds.UNKNOWN]).known


# -- cycles end, with bounded work ---------------------------------------------------


def test_mutual_recursion_and_import_cycles_end(tmp_path: Path):
    facts = project(
        tmp_path,
        {
            "a.py": "from b import pong\ndef ping(model, n):\n    model.eval()\n    return pong(model, n - 1)\n",
            "b.py": "from a import ping\ndef pong(model, n):\n    return ping(model, n)\n",
            "c.py": "from a import ping\nfrom torch import nn\ndef main():\n    m = nn.Dropout(0.5)\n    m = m\n    ping(m, 3)\n",
        },
    )
    summaries = facts.summaries
    assert summaries.effect(FunctionRef("b", "pong"), "model").mode == "eval"
    value = summaries.parameter_value(FunctionRef("b", "pong"), "model")
    assert not value.known or value.only(kinds.MODEL)
    assert summaries.work < 100


def _chain_project(tmp_path: Path, length: int) -> ProjectFacts:
    """`length` modules: each function passes its model on to the next module's, which
    rebinds it twice; the last calls the first (a cycle through every module)."""
    files = {}
    for index in range(length):
        following = (index + 1) % length
        files[f"m{index}.py"] = (
            f"import m{following}\n"
            f"def step{index}(model, x):\n"
            f"    model = model.to('cpu')\n"
            f"    model = model\n"
            f"    if x:\n"
            f"        model.eval()\n"
            f"    return m{following}.step{following}(model, x)\n"
        )
    files["main.py"] = "from torch import nn\nimport m0\ndef main():\n    m0.step0(nn.Dropout(), 1)\n"
    return project(tmp_path, files)


def test_work_grows_linearly_with_the_chain(tmp_path: Path):
    counts = []
    for length in (10, 20, 40):
        facts = _chain_project(tmp_path / str(length), length)
        summaries = facts.summaries
        for index in range(length):
            ref = FunctionRef(f"m{index}", f"step{index}")
            summaries.effects(ref)
            summaries.parameter_value(ref, "model")
        counts.append(summaries.work)
    # each question is answered once: doubling the chain doubles the work, no more
    assert counts[1] <= 2.5 * counts[0] and counts[2] <= 2.5 * counts[1]


def test_a_callers_mode_is_the_one_it_leaves_before_the_call(tmp_path: Path):
    facts = project(
        tmp_path,
        {
            "models.py": "from torch import nn\nclass Net(nn.Module):\n    def __init__(self):\n"
            "        super().__init__()\n        self.drop = nn.Dropout(0.5)\n"
            "def load():\n    model = Net()\n    model.eval()\n    return model\n",
            "pred.py": "def predict(net, x):\n    return net(x)\n",
            "main.py": "from models import Net, load\nfrom pred import predict\n"
            "def evaluated(x):\n    net = Net()\n    net.eval()\n    return predict(net, x)\n"
            "def loaded(x):\n    return predict(load(), x)\n"
            "def fresh(x):\n    net = Net()\n    predict(net, x)\n    net.eval()\n",
        },
    )
    modes = [value.mode for value in facts.summaries.passed_values(FunctionRef("pred", "predict"), "net")]
    assert sorted(modes) == ["default", "eval", "eval"]  # `fresh` calls eval() only after the call
    assert facts.summaries.returned(FunctionRef("models", "load")).mode == "eval"


def test_what_forward_returns():
    facts = index_module(
        ast.parse(
            "import torch.nn.functional as F\nfrom torch import nn\n"
            "class Probabilities(nn.Module):\n    def forward(self, x):\n        return F.softmax(self.fc(x), dim=-1)\n"
            "class Logits(nn.Module):\n    def forward(self, x):\n        return self.fc(x)\n"
            "class Either(nn.Module):\n    def forward(self, x, p=False):\n"
            "        if p:\n            return x.sigmoid()\n        return x\n"
        ),
        "models",
    )
    assert {name: cls.forward_activation for name, cls in facts.classes.items()} == {
        "Probabilities": "softmax",
        "Logits": None,
        "Either": None,
    }


def test_relative_imports_above_the_top_package_name_nothing():
    from lintml.project.index import absolute_import

    assert absolute_import("models", 1, "pkg.sub") == "pkg.sub.models"
    assert absolute_import("models", 2, "pkg.sub") == "pkg.models"
    assert absolute_import("modeling_utils", 3, "pkg.sub") is None  # `from ...x` in pkg/sub/m.py
    assert absolute_import(None, 3, "pkg.sub") is None


def test_the_rebinding_tutorial_takes_a_bounded_number_of_summaries(tmp_path: Path):
    """The 300-line performance tutorial (fixtures/rules/LML101/rebinding_tutorial.py),
    which rebinds its model again and again and hands it to `benchmark` helpers: every
    function's effects and every parameter's callers computed, each once."""
    tutorial = Path(__file__).resolve().parent.parent / "fixtures" / "rules" / "LML101" / "rebinding_tutorial.py"
    facts = project(tmp_path, {"tutorial.py": tutorial.read_text(encoding="utf-8")})
    summaries = facts.summaries
    module = facts.modules["tutorial"]
    refs = [FunctionRef("tutorial", name) for name in module.functions]
    for ref in refs:
        summaries.effects(ref)
        for parameter in module.functions[ref.name].params:
            summaries.parameter_value(ref, parameter)
    per_function = summaries.work / max(len(refs), 1)
    # measured: 72 answers for its 10 functions; a blow-up would be thousands
    assert per_function < 20, (summaries.work, len(refs))


def test_callers_are_read_only_from_modules_whose_imports_may_reach_the_function(tmp_path: Path):
    """`train` of `utils/train_utils.py` is a common word and `utils` is in every script
    that uses `torch.utils.data`: only the modules with an import that resolves to the
    module or a package it is in (or names a project folder resolution cannot follow)
    are read for its callers; the others cost no index."""
    facts = project(
        tmp_path,
        {
            "utils/__init__.py": "from .train_utils import train\n",
            "utils/train_utils.py": "def train(model):\n    model.train()\n",
            "utils/runner.py": "from .train_utils import train\ntrain(1)\n",
            "main.py": "from utils.train_utils import train\ntrain(2)\n",
            "via_package.py": "import utils\nutils.train(3)\n",
            "lazy.py": "def go():\n    from utils import train\n    train(4)\n",
            "other.py": "from torch.utils.data import DataLoader\ndef train(x):\n    return x\ntrain(5)\n",
            "namespace/tools.py": "def train(x):\n    return x\n",
            "uses_namespace.py": "from namespace.tools import train\nfrom torch.utils import data\ntrain(data)\n",
        },
    )
    naming = facts.modules_naming("train", "utils.train_utils")
    assert naming == ["lazy", "main", "utils", "utils.runner", "utils.train_utils", "via_package"]
    callers = facts.summaries.callers(FunctionRef("utils.train_utils", "train"))
    # (`lazy` is read: its import is inside a function, which the index does not follow)
    assert sorted(caller.module for caller, _ in callers) == ["main", "utils.runner", "via_package"]
    read = set(dict.keys(facts.modules))  # the modules whose index was made
    assert "other" not in read and "uses_namespace" not in read
    # a namespace package (no __init__.py) is followed as a project folder
    assert "uses_namespace" in facts.modules_naming("train", "namespace.tools")


def test_a_notebooks_functions_are_called_from_its_own_cells_alone(tmp_path: Path):
    """Python's import system never loads a notebook: the callers of a function defined
    in one are looked for in its own cells, and the other notebooks and scripts that
    name the function (and import everything a notebook may) are not read for them."""
    import json

    def notebook(*cells: str) -> str:
        return json.dumps({
            "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                       "source": cell} for cell in cells],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
        })  # fmt: skip

    facts = project(
        tmp_path,
        {
            "ch05.ipynb": notebook("def evaluate(model, batch):\n    return model(batch)\n", "evaluate(net, x)\n"),
            "ch06.ipynb": notebook("# as in ch05.ipynb\nfrom helpers import *\n", "def evaluate(m):\n    return m\nevaluate(1)\n"),
            "helpers.py": "def evaluate(model):\n    return model\nevaluate(2)\n",
        },
    )
    assert facts.modules_naming("evaluate", "ch05.ipynb") == ["ch05.ipynb"]
    ref = FunctionRef("ch05.ipynb", "evaluate")
    assert facts.summaries.may_be_called_from_outside(ref) is False
    callers = facts.summaries.callers(ref)
    assert [(caller.module, caller.name) for caller, _ in callers] == [("ch05.ipynb", "<module>")]
    assert set(dict.keys(facts.modules)) == {"ch05.ipynb"}  # no other module's index was made


def test_whether_a_module_assigns_a_name_is_read_from_its_lines():
    """`may_assign`'s text test (no module is parsed for it): a line that assigns the
    name at its start or in a tuple before any comment; not a use, a comparison, an
    indented or commented assignment, or a longer name."""
    from lintml.project.facts import assigns

    yes = ["model = Net()\n", "x = 1\nmodel: nn.Module = Net()\n", "a, model = build()\n", "model=Net()", "(a, model) = pair\n"]
    no = ["use(model)\n", "model == other\n", "    model = Net()\n", "# a, model = 1\n", "my_model = Net()\n",
          "model_b = 1\n", "model", "x = 1  # a, model = 2\n", "a, model.x = 1, 2\n"]
    assert [assigns(text.encode(), "model") for text in yes] == [True] * len(yes)
    assert [assigns(text.encode(), "model") for text in no] == [False] * len(no)

