"""The LML502 fix (safe): `model.forward(x)` becomes `model(x)`, byte for byte.

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
    return lintml.check_source(text, "train.py", ALL_RULES)


def fix(text: str, unsafe: bool = False) -> str:
    return fix_source(text, lint, unsafe=unsafe).source


def codes(text: str) -> list[str]:
    return [finding.code for finding in lint(text)]


EXACT_FIXES = {
    "training-loop": (
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "model = nn.Linear(4, 2)\n"
        "for x, y in loader:\n"
        "    loss = nn.functional.mse_loss(model.forward(x), y)\n",
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "model = nn.Linear(4, 2)\n"
        "for x, y in loader:\n"
        "    loss = nn.functional.mse_loss(model(x), y)\n",
    ),
    "keyword-arguments-and-attribute": (
        "from transformers import AutoModelForCausalLM\n"
        "\n"
        "model = AutoModelForCausalLM.from_pretrained('gpt2')\n"
        "model.train()\n"
        "loss = model.forward(**batch, labels=batch['input_ids']).loss\n",
        "from transformers import AutoModelForCausalLM\n"
        "\n"
        "model = AutoModelForCausalLM.from_pretrained('gpt2')\n"
        "model.train()\n"
        "loss = model(**batch, labels=batch['input_ids']).loss\n",
    ),
    "self-model-in-a-plain-class": (
        "import torch\n"
        "from torchvision.models import resnet18\n"
        "\n"
        "\n"
        "class Predictor:\n"
        "    def __init__(self):\n"
        "        self.model = resnet18()\n"
        "        self.model.eval()\n"
        "\n"
        "    @torch.inference_mode()\n"
        "    def predict(self, images):\n"
        "        return self.model.forward(images).argmax(-1)\n",
        "import torch\n"
        "from torchvision.models import resnet18\n"
        "\n"
        "\n"
        "class Predictor:\n"
        "    def __init__(self):\n"
        "        self.model = resnet18()\n"
        "        self.model.eval()\n"
        "\n"
        "    @torch.inference_mode()\n"
        "    def predict(self, images):\n"
        "        return self.model(images).argmax(-1)\n",
    ),
    "multi-line-call-keeps-comments": (
        "from torch import nn\n"
        "\n"
        "\n"
        "def step(net: nn.Module, batch):\n"
        "    return net.forward(  # inputs\n"
        "        batch['x'],\n"
        "        mask=batch['mask'],  # padding\n"
        "    )\n",
        "from torch import nn\n"
        "\n"
        "\n"
        "def step(net: nn.Module, batch):\n"
        "    return net(  # inputs\n"
        "        batch['x'],\n"
        "        mask=batch['mask'],  # padding\n"
        "    )\n",
    ),
    "receiver-split-over-lines": (
        "from torch import nn\n"
        "\n"
        "model = nn.Linear(4, 2)\n"
        "out = (model\n"
        "       .forward(x))\n",
        "from torch import nn\n"
        "\n"
        "model = nn.Linear(4, 2)\n"
        "out = (model(x))\n",
    ),
    "two-calls-on-one-line": (
        "from torch import nn\n"
        "\n"
        "teacher = nn.Linear(4, 2)\n"
        "student = nn.Linear(4, 2)\n"
        "gap = (teacher.forward(x) - student.forward(x)).pow(2).mean()\n",
        "from torch import nn\n"
        "\n"
        "teacher = nn.Linear(4, 2)\n"
        "student = nn.Linear(4, 2)\n"
        "gap = (teacher(x) - student(x)).pow(2).mean()\n",
    ),
    "crlf": (
        "from torch import nn\r\n"
        "\r\n"
        "model = nn.Linear(4, 2)\r\n"
        "for x in loader:\r\n"
        "    y = model.forward(x)\r\n",
        "from torch import nn\r\n"
        "\r\n"
        "model = nn.Linear(4, 2)\r\n"
        "for x in loader:\r\n"
        "    y = model(x)\r\n",
    ),
}


@pytest.mark.parametrize(("before", "after"), EXACT_FIXES.values(), ids=EXACT_FIXES.keys())
def test_fix_gives_exact_text(before: str, after: str):
    findings = [finding for finding in lint(before) if finding.code == "LML502"]
    assert findings
    assert all(f.fix is not None and f.fix.applicability.value == "safe" for f in findings)
    fixed = fix(before)  # safe: applied without --unsafe-fixes
    assert fixed == after
    compile(fixed, "fixed.py", "exec")
    assert "LML502" not in codes(fixed)
    assert fix(fixed) == fixed  # a second round changes nothing


def test_forward_inside_the_model_class_is_not_reported_nor_changed():
    text = (
        "from torch import nn\n"
        "\n"
        "\n"
        "class Block(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.inner = nn.Linear(4, 4)\n"
        "\n"
        "    def forward(self, x):\n"
        "        return self.inner.forward(x)\n"
        "\n"
        "    def twice(self, x):\n"
        "        return self.forward(self.forward(x))\n"
    )
    assert "LML502" not in codes(text)
    assert fix(text, unsafe=True) == text


def test_cli_fix_rewrites_the_call(tmp_path):
    before, after = EXACT_FIXES["training-loop"]
    make_project(tmp_path, {"train.py": before})
    result = run_lintml("check", "--fix", "train.py", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "train.py").read_bytes() == after.encode()
