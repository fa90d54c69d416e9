"""The fixes of LML101 (unsafe) and LML102 (safe): the exact bytes of the fixed file.

Every case also proves that the fixed text parses, that the rule no longer reports it,
and that a second round of fixes changes nothing.
"""

from __future__ import annotations

import pytest

from helpers import make_project, run_lintml

import lintml
from lintml.config import Config
from lintml.fixes import fix_source

ALL_RULES = Config(select=("LML",))


def lint(text: str):
    return lintml.check_source(text, "x.py", ALL_RULES)


def fix(text: str, unsafe: bool = True) -> str:
    return fix_source(text, lint, unsafe=unsafe).source


def codes(text: str) -> set[str]:
    return {finding.code for finding in lint(text)}


def assert_fixes(code: str, before: str, after: str) -> None:
    assert code in codes(before)
    fixed = fix(before)
    assert fixed == after
    compile(fixed, "fixed.py", "exec")
    assert code not in codes(fixed)
    assert fix(fixed) == fixed


# -- LML101: decorate the function, or wrap the statement ----------------------------

LML101_FIXES = {
    "decorate-function": (
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "def predict(model: nn.Module, x):\n"
        "    model.eval()\n"
        "    return model(x).argmax(-1)\n",
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "@torch.inference_mode()\n"
        "def predict(model: nn.Module, x):\n"
        "    model.eval()\n"
        "    return model(x).argmax(-1)\n",
    ),
    "existing-decorators-stay-outermost": (
        "import functools\n"
        "\n"
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "class Predictor:\n"
        "    @staticmethod\n"
        "    def predict(model: nn.Module, x):\n"
        "        model.eval()\n"
        "        return model(x)\n"
        "\n"
        "    @functools.lru_cache(maxsize=None)\n"
        "    # cached per input\n"
        "    def score(self, model: nn.Module, x):\n"
        "        model.eval()\n"
        "        return model(x)\n",
        "import functools\n"
        "\n"
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "class Predictor:\n"
        "    @staticmethod\n"
        "    @torch.inference_mode()\n"
        "    def predict(model: nn.Module, x):\n"
        "        model.eval()\n"
        "        return model(x)\n"
        "\n"
        "    @functools.lru_cache(maxsize=None)\n"
        "    # cached per input\n"
        "    @torch.inference_mode()\n"
        "    def score(self, model: nn.Module, x):\n"
        "        model.eval()\n"
        "        return model(x)\n",
    ),
    "torch-imported-as-T": (
        "import torch as T\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "def evaluate(model: nn.Module, val_loader):\n"
        "    model.eval()\n"
        "    return [model(x) for x in val_loader]\n",
        "import torch as T\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "@T.inference_mode()\n"
        "def evaluate(model: nn.Module, val_loader):\n"
        "    model.eval()\n"
        "    return [model(x) for x in val_loader]\n",
    ),
    "import-torch-added-after-docstring-and-future": (
        '"""Serve predictions."""\n'
        "\n"
        "from __future__ import annotations\n"
        "\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "def serve(model: nn.Module, request):\n"
        "    model.eval()\n"
        "    return model(request).tolist()\n",
        '"""Serve predictions."""\n'
        "\n"
        "from __future__ import annotations\n"
        "\n"
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "@torch.inference_mode()\n"
        "def serve(model: nn.Module, request):\n"
        "    model.eval()\n"
        "    return model(request).tolist()\n",
    ),
    "module-level-statement-wrapped": (
        "import torch\n"
        "from transformers import AutoModelForSequenceClassification\n"
        "\n"
        'model = AutoModelForSequenceClassification.from_pretrained("distilbert-base-uncased")\n'
        "model.eval()\n"
        "\n"
        "# the first batch\n"
        "outputs = model(**inputs)  # logits and loss\n"
        "print(outputs.logits)\n",
        "import torch\n"
        "from transformers import AutoModelForSequenceClassification\n"
        "\n"
        'model = AutoModelForSequenceClassification.from_pretrained("distilbert-base-uncased")\n'
        "model.eval()\n"
        "\n"
        "# the first batch\n"
        "with torch.inference_mode():\n"
        "    outputs = model(**inputs)  # logits and loss\n"
        "print(outputs.logits)\n",
    ),
    "module-level-loop-wrapped-with-its-body": (
        "import torch\n"
        "import torchvision\n"
        "\n"
        "model = torchvision.models.resnet18()\n"
        "model.eval()\n"
        "\n"
        "for images, labels in test_loader:\n"
        "    logits = model(images)\n"
        "\n"
        "    correct += (logits.argmax(1) == labels).sum().item()\n"
        "print(correct)\n",
        "import torch\n"
        "import torchvision\n"
        "\n"
        "model = torchvision.models.resnet18()\n"
        "model.eval()\n"
        "\n"
        "with torch.inference_mode():\n"
        "    for images, labels in test_loader:\n"
        "        logits = model(images)\n"
        "\n"
        "        correct += (logits.argmax(1) == labels).sum().item()\n"
        "print(correct)\n",
    ),
    "eval-loop-of-a-training-function-wrapped-in-no-grad": (
        "import torch\n"
        "import torch.nn.functional as F\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "def fit(model: nn.Module, train_loader, val_loader, optimizer):\n"
        "    model.train()\n"
        "    for x, y in train_loader:\n"
        "        optimizer.zero_grad()\n"
        "        F.cross_entropy(model(x), y).backward()\n"
        "        optimizer.step()\n"
        "    model.eval()\n"
        "    for x, y in val_loader:\n"
        "        print(F.cross_entropy(model(x), y).item())\n",
        "import torch\n"
        "import torch.nn.functional as F\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "def fit(model: nn.Module, train_loader, val_loader, optimizer):\n"
        "    model.train()\n"
        "    for x, y in train_loader:\n"
        "        optimizer.zero_grad()\n"
        "        F.cross_entropy(model(x), y).backward()\n"
        "        optimizer.step()\n"
        "    model.eval()\n"
        "    with torch.no_grad():\n"
        "        for x, y in val_loader:\n"
        "            print(F.cross_entropy(model(x), y).item())\n",
    ),
    "crlf-line-ends-kept": (
        "import torch\r\n"
        "import torchvision\r\n"
        "model = torchvision.models.resnet18().eval()\r\n"
        "for x in test_loader:\r\n"
        "    y = model(x)\r\n",
        "import torch\r\n"
        "import torchvision\r\n"
        "model = torchvision.models.resnet18().eval()\r\n"
        "with torch.inference_mode():\r\n"
        "    for x in test_loader:\r\n"
        "        y = model(x)\r\n",
    ),
}


@pytest.mark.parametrize(("before", "after"), LML101_FIXES.values(), ids=LML101_FIXES.keys())
def test_lml101_fix_gives_exact_text(before: str, after: str):
    assert_fixes("LML101", before, after)


def test_lml101_fix_is_unsafe_and_not_applied_by_default():
    before, _ = LML101_FIXES["decorate-function"]
    [finding] = [f for f in lint(before) if f.code == "LML101"]
    assert finding.fix is not None and finding.fix.applicability.value == "unsafe"
    assert fix(before, unsafe=False) == before


def test_lml101_no_fix_for_async_functions():
    before = (
        "from torch import nn\n"
        "\n"
        "\n"
        "async def predict(model: nn.Module, x):\n"
        "    model.eval()\n"
        "    return model(x)\n"
    )
    [finding] = [f for f in lint(before) if f.code == "LML101"]
    assert finding.fix is None


def test_lml101_no_fix_when_reindenting_would_change_a_string():
    before = (
        "import torchvision\n"
        "model = torchvision.models.resnet18().eval()\n"
        "for x in test_loader:\n"
        '    print("""batch\n'
        '    done""", model(x))\n'
    )
    [finding] = [f for f in lint(before) if f.code == "LML101"]
    assert finding.fix is None


def test_cli_fix_without_unsafe_fixes_leaves_lml101_alone(tmp_path):
    before, after = LML101_FIXES["torch-imported-as-T"]
    project = make_project(tmp_path, {"evaluate.py": before})

    result = run_lintml("check", "--fix", "--output-format", "concise", ".", cwd=project)
    assert (project / "evaluate.py").read_bytes() == before.encode()
    assert result.returncode == 1, result.stderr
    assert "evaluate.py:7:13: LML101 " in result.stdout

    result = run_lintml("check", "--fix", "--unsafe-fixes", ".", cwd=project)
    assert (project / "evaluate.py").read_bytes() == after.encode()
    assert result.returncode == 0, result.stdout + result.stderr


# -- LML102: `.item()` into a number, `.detach()` otherwise ---------------------------

LOOP_HEAD = (
    "import torch\n"
    "import torch.nn.functional as F\n"
    "from torch import nn\n"
    "\n"
    "\n"
    "def train(model: nn.Module, loader, optimizer, n: int = 4):\n"
    "    model.train()\n"
)
LOOP_STEP = (
    "    for x, y in loader:\n"
    "        optimizer.zero_grad()\n"
    "        loss = F.cross_entropy(model(x), y)\n"
    "        loss.backward()\n"
    "        optimizer.step()\n"
)


def loop(start: str, accumulate: str, end: str = "    return total\n") -> str:
    return LOOP_HEAD + start + LOOP_STEP + accumulate + end


LML102_FIXES = {
    "item-into-a-number": (
        loop("    total = 0.0\n", "        total += loss\n"),
        loop("    total = 0.0\n", "        total += loss.item()\n"),
    ),
    "item-into-a-number-spelled-out": (
        loop("    total = 0\n", "        total = total + loss  # running sum\n"),
        loop("    total = 0\n", "        total = total + loss.item()  # running sum\n"),
    ),
    "expression-wrapped-before-item": (
        loop("    total = 0.0\n", "        total += loss / n\n"),
        loop("    total = 0.0\n", "        total += (loss / n).item()\n"),
    ),
    "detach-for-a-list": (
        loop("    total = []\n", "        total.append(loss)\n"),
        loop("    total = []\n", "        total.append(loss.detach())\n"),
    ),
    "detach-for-a-tensor-accumulator": (
        loop("    total = torch.zeros(())\n", "        total += loss\n"),
        loop("    total = torch.zeros(())\n", "        total += loss.detach()\n"),
    ),
    "detach-when-the-total-is-used-as-a-tensor": (
        loop("    total = 0.0\n", "        total += loss\n", "    return total.item() / len(loader)\n"),
        loop("    total = 0.0\n", "        total += loss.detach()\n", "    return total.item() / len(loader)\n"),
    ),
    "detach-for-an-expression-into-a-tensor": (
        loop("    total = torch.zeros(())\n", "        total += loss * n\n"),
        loop("    total = torch.zeros(())\n", "        total += (loss * n).detach()\n"),
    ),
    "detach-for-per-sample-losses": (
        loop(
            "    total = 0.0\n",
            '        total += F.cross_entropy(model(x), y, reduction="none")\n',
        ),
        loop(
            "    total = 0.0\n",
            '        total += F.cross_entropy(model(x), y, reduction="none").detach()\n',
        ),
    ),
    "hf-output-loss-into-a-number": (
        "from transformers import AutoModelForCausalLM\n"
        "\n"
        'model = AutoModelForCausalLM.from_pretrained("gpt2")\n'
        "model.train()\n"
        "running_loss = 0.0\n"
        "for batch in loader:\n"
        "    outputs = model(**batch)\n"
        "    outputs.loss.backward()\n"
        "    optimizer.step()\n"
        "    optimizer.zero_grad()\n"
        "    running_loss += outputs.loss\n",
        "from transformers import AutoModelForCausalLM\n"
        "\n"
        'model = AutoModelForCausalLM.from_pretrained("gpt2")\n'
        "model.train()\n"
        "running_loss = 0.0\n"
        "for batch in loader:\n"
        "    outputs = model(**batch)\n"
        "    outputs.loss.backward()\n"
        "    optimizer.step()\n"
        "    optimizer.zero_grad()\n"
        "    running_loss += outputs.loss.item()\n",
    ),
    "self-attribute-started-in-init": (
        "import torch.nn.functional as F\n"
        "\n"
        "\n"
        "class Trainer:\n"
        "    def __init__(self, model):\n"
        "        self.model = model\n"
        "        self.total = 0.0\n"
        "\n"
        "    def fit(self, loader, optimizer):\n"
        "        self.model.train()\n"
        "        for x, y in loader:\n"
        "            optimizer.zero_grad()\n"
        "            loss = F.mse_loss(self.model(x), y)\n"
        "            loss.backward()\n"
        "            optimizer.step()\n"
        "            self.total += loss\n",
        "import torch.nn.functional as F\n"
        "\n"
        "\n"
        "class Trainer:\n"
        "    def __init__(self, model):\n"
        "        self.model = model\n"
        "        self.total = 0.0\n"
        "\n"
        "    def fit(self, loader, optimizer):\n"
        "        self.model.train()\n"
        "        for x, y in loader:\n"
        "            optimizer.zero_grad()\n"
        "            loss = F.mse_loss(self.model(x), y)\n"
        "            loss.backward()\n"
        "            optimizer.step()\n"
        "            self.total += loss.item()\n",
    ),
}


@pytest.mark.parametrize(("before", "after"), LML102_FIXES.values(), ids=LML102_FIXES.keys())
def test_lml102_fix_gives_exact_text(before: str, after: str):
    assert_fixes("LML102", before, after)


def test_lml102_fix_is_safe():
    before, after = LML102_FIXES["item-into-a-number"]
    [finding] = [f for f in lint(before) if f.code == "LML102"]
    assert finding.fix is not None and finding.fix.applicability.value == "safe"
    assert fix(before, unsafe=False) == after


def test_cli_fix_applies_lml102(tmp_path):
    before, after = LML102_FIXES["detach-for-a-list"]
    project = make_project(tmp_path, {"train.py": before})
    result = run_lintml("check", "--fix", ".", cwd=project)
    assert (project / "train.py").read_bytes() == after.encode()
    assert (result.returncode, result.stdout) == (0, "Fixed 1 finding. No findings.\n")
