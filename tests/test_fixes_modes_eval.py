"""The LML201 fix, byte for byte: `model.eval()` on its own line before the outermost
loop around the forward (or before the statement holding it); unsafe, so `--fix` alone
leaves it out."""

from __future__ import annotations

import pytest

from helpers import make_project, run_lintml

import lintml
from lintml.config import Config
from lintml.fixes import fix_source

LML201_ONLY = Config(select=("LML201",))
ALL_RULES = Config(select=("LML",))


def lint(text: str, config: Config = LML201_ONLY):
    return lintml.check_source(text, filename="example.py", config=config)


def fix(text: str) -> str:
    return fix_source(text, lint, unsafe=True).source


EXACT_FIXES = {
    "before-the-loop": (
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "def evaluate(model: nn.Module, val_loader):\n"
        "    with torch.no_grad():\n"
        "        for x, y in val_loader:\n"
        "            correct = (model(x).argmax(-1) == y).sum()\n"
        "    return correct\n",
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "def evaluate(model: nn.Module, val_loader):\n"
        "    with torch.no_grad():\n"
        "        model.eval()\n"
        "        for x, y in val_loader:\n"
        "            correct = (model(x).argmax(-1) == y).sum()\n"
        "    return correct\n",
    ),
    "before-the-outermost-loop": (
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.1))\n"
        "with torch.no_grad():\n"
        "    # every test split\n"
        "    for name, loader in test_loaders.items():\n"
        "        for batch in loader:\n"
        "            outputs = model(batch)\n",
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.1))\n"
        "with torch.no_grad():\n"
        "    # every test split\n"
        "    model.eval()\n"
        "    for name, loader in test_loaders.items():\n"
        "        for batch in loader:\n"
        "            outputs = model(batch)\n",
    ),
    "before-the-statement-in-a-method": (
        "import torch\n"
        "from torchvision.models import resnet18\n"
        "\n"
        "\n"
        "class Predictor:\n"
        "    def __init__(self):\n"
        "        self.model = resnet18()\n"
        "\n"
        "    @torch.inference_mode()\n"
        "    def predict(self, images):\n"
        "        return self.model(images).argmax(-1)\n",
        "import torch\n"
        "from torchvision.models import resnet18\n"
        "\n"
        "\n"
        "class Predictor:\n"
        "    def __init__(self):\n"
        "        self.model = resnet18()\n"
        "\n"
        "    @torch.inference_mode()\n"
        "    def predict(self, images):\n"
        "        self.model.eval()\n"
        "        return self.model(images).argmax(-1)\n",
    ),
    "model-built-inside-the-loop": (
        "import timm\n"
        "import torch\n"
        "\n"
        "\n"
        "def benchmark(names, batch):\n"
        "    with torch.inference_mode():\n"
        "        for name in names:\n"
        "            backbone = timm.create_model(name)\n"
        "            backbone(batch)\n",
        "import timm\n"
        "import torch\n"
        "\n"
        "\n"
        "def benchmark(names, batch):\n"
        "    with torch.inference_mode():\n"
        "        for name in names:\n"
        "            backbone = timm.create_model(name)\n"
        "            backbone.eval()\n"
        "            backbone(batch)\n",
    ),
    "inside-the-epoch-loop-that-trains": (
        "import torch\n"
        "import torch.nn.functional as F\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "def fit(model: nn.Module, train_loader, val_loader, optimizer):\n"
        "    for epoch in range(3):\n"
        "        model.train()\n"
        "        for x, y in train_loader:\n"
        "            optimizer.zero_grad()\n"
        "            F.cross_entropy(model(x), y).backward()\n"
        "            optimizer.step()\n"
        "        with torch.no_grad():\n"
        "            for x, y in val_loader:\n"
        "                print(model(x))\n",
        "import torch\n"
        "import torch.nn.functional as F\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "def fit(model: nn.Module, train_loader, val_loader, optimizer):\n"
        "    for epoch in range(3):\n"
        "        model.train()\n"
        "        for x, y in train_loader:\n"
        "            optimizer.zero_grad()\n"
        "            F.cross_entropy(model(x), y).backward()\n"
        "            optimizer.step()\n"
        "        with torch.no_grad():\n"
        "            model.eval()\n"
        "            for x, y in val_loader:\n"
        "                print(model(x))\n",
    ),
    "forward-in-an-elif-test": (
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "@torch.no_grad()\n"
        "def predict(model: nn.Module, x, mode):\n"
        "    if mode == 'fast':\n"
        "        return None\n"
        "    elif model(x).max() > 0:\n"
        "        return 1\n",
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "@torch.no_grad()\n"
        "def predict(model: nn.Module, x, mode):\n"
        "    model.eval()\n"
        "    if mode == 'fast':\n"
        "        return None\n"
        "    elif model(x).max() > 0:\n"
        "        return 1\n",
    ),
    "uncalled-eval-gets-called": (
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "def validate(model: nn.Module, val_loader):\n"
        "    model.eval\n"
        "    with torch.no_grad():\n"
        "        return [model(x) for x in val_loader]\n",
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "def validate(model: nn.Module, val_loader):\n"
        "    model.eval()\n"
        "    with torch.no_grad():\n"
        "        return [model(x) for x in val_loader]\n",
    ),
    "forward-called-directly": (
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "@torch.no_grad()\n"
        "def score(model: nn.Module, x):\n"
        "    return model.forward(x)\n",
        "import torch\n"
        "from torch import nn\n"
        "\n"
        "\n"
        "@torch.no_grad()\n"
        "def score(model: nn.Module, x):\n"
        "    model.eval()\n"
        "    return model.forward(x)\n",
    ),
    "crlf": (
        "import torch\r\n"
        "from torch import nn\r\n"
        "\r\n"
        "model = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.1))\r\n"
        "with torch.no_grad():\r\n"
        "    for x in test_loader:\r\n"
        "        model(x)\r\n",
        "import torch\r\n"
        "from torch import nn\r\n"
        "\r\n"
        "model = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.1))\r\n"
        "with torch.no_grad():\r\n"
        "    model.eval()\r\n"
        "    for x in test_loader:\r\n"
        "        model(x)\r\n",
    ),
}


@pytest.mark.parametrize(("before", "after"), EXACT_FIXES.values(), ids=EXACT_FIXES.keys())
def test_fix_gives_exact_text(before: str, after: str):
    [finding] = lint(before)
    assert finding.code == "LML201"
    assert finding.fix is not None and finding.fix.applicability.value == "unsafe"
    assert fix(before) == after
    compile(after, "fixed.py", "exec")
    assert not any(f.code == "LML201" for f in lint(after, ALL_RULES))
    assert fix(after) == after  # a second round changes nothing


def test_fix_without_unsafe_fixes_changes_nothing():
    before, _ = EXACT_FIXES["before-the-loop"]
    assert fix_source(before, lint, unsafe=False).source == before


def test_cli_applies_the_fix_only_with_unsafe_fixes(tmp_path):
    before, after = EXACT_FIXES["before-the-loop"]
    make_project(tmp_path, {"evaluate.py": before})
    target = tmp_path / "evaluate.py"

    safe_only = run_lintml("check", "--fix", "evaluate.py", cwd=tmp_path)
    assert safe_only.returncode == 1, safe_only.stdout + safe_only.stderr
    assert "LML201" in safe_only.stdout
    assert "--unsafe-fixes" in safe_only.stdout
    assert target.read_bytes() == before.encode()

    unsafe = run_lintml("check", "--fix", "--unsafe-fixes", "evaluate.py", cwd=tmp_path)
    assert unsafe.returncode == 0, unsafe.stdout + unsafe.stderr
    assert target.read_bytes() == after.encode()
