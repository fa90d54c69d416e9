"""LML202's fix, byte for byte: `model.train()` goes where training resumes after the
validation, indented like the loop body and ended like the file's lines. The fixed file
parses, no longer reports LML202, and a second round of fixing changes nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lintml
from lintml.config import Config
from lintml.findings import Applicability
from lintml.fixes import fix_source

ALL_RULES = Config(select=("LML",))

PREAMBLE = (
    "import torch\n"
    "from torch import nn\n"
    "\n"
    "model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.1), nn.Linear(8, 2))\n"
    "optimizer = torch.optim.SGD(model.parameters(), lr=0.1)\n"
    "\n"
    "\n"
    "@torch.no_grad()\n"
    "def evaluate(model, loader):\n"
    "    model.eval()\n"
    "    return sum(nn.functional.cross_entropy(model(x), y).item() for x, y in loader)\n"
    "\n"
    "\n"
)


def lint(text: str):
    return lintml.check_source(text, filename="train.py", config=ALL_RULES)


def fix(text: str) -> str:
    """What `lintml check --fix` writes: safe fixes only."""
    return fix_source(text, lint, unsafe=False).source


EXACT_FIXES = {
    # eval inside the batch loop: the batch loop's first statement
    "mid-epoch-inline-validation": (
        "model.train()\n"
        "for epoch in range(10):\n"
        "    for step, (x, y) in enumerate(loader):\n"
        "        optimizer.zero_grad()\n"
        "        nn.functional.cross_entropy(model(x), y).backward()\n"
        "        optimizer.step()\n"
        "        if step % 100 == 0:\n"
        "            model.eval()\n"
        "            with torch.no_grad():\n"
        "                print(model(x_val).argmax(-1))\n",
        "model.train()\n"
        "for epoch in range(10):\n"
        "    for step, (x, y) in enumerate(loader):\n"
        "        model.train()\n"
        "        optimizer.zero_grad()\n"
        "        nn.functional.cross_entropy(model(x), y).backward()\n"
        "        optimizer.step()\n"
        "        if step % 100 == 0:\n"
        "            model.eval()\n"
        "            with torch.no_grad():\n"
        "                print(model(x_val).argmax(-1))\n",
    ),
    # validation at the end of the epoch, through a function of the file: the epoch
    # loop's first statement
    "end-of-epoch-validation-function": (
        "def fit(model, loader, val_loader, optimizer):\n"
        "    model.train()\n"
        "    for epoch in range(10):\n"
        "        for x, y in loader:\n"
        "            optimizer.zero_grad()\n"
        "            nn.functional.cross_entropy(model(x), y).backward()\n"
        "            optimizer.step()\n"
        "        print(epoch, evaluate(model, val_loader))\n"
        "\n"
        "\n"
        "fit(model, train_loader, val_loader, optimizer)\n",
        "def fit(model, loader, val_loader, optimizer):\n"
        "    model.train()\n"
        "    for epoch in range(10):\n"
        "        model.train()\n"
        "        for x, y in loader:\n"
        "            optimizer.zero_grad()\n"
        "            nn.functional.cross_entropy(model(x), y).backward()\n"
        "            optimizer.step()\n"
        "        print(epoch, evaluate(model, val_loader))\n"
        "\n"
        "\n"
        "fit(model, train_loader, val_loader, optimizer)\n",
    ),
    # a trainer class: `self.model.train()`
    "method-self-model": (
        "class Trainer:\n"
        "    def __init__(self, net: nn.Module):\n"
        "        self.model = net\n"
        "        self.optimizer = torch.optim.Adam(self.model.parameters())\n"
        "\n"
        "    def validate(self):\n"
        "        self.model.eval()\n"
        "        with torch.no_grad():\n"
        "            return self.model(x_val).argmax(-1)\n"
        "\n"
        "    def fit(self, loader):\n"
        "        self.model.train()\n"
        "        for step, (x, y) in enumerate(loader):\n"
        "            self.optimizer.zero_grad()\n"
        "            nn.functional.cross_entropy(self.model(x), y).backward()\n"
        "            self.optimizer.step()\n"
        "            if step % 500 == 0:\n"
        "                self.validate()\n",
        "class Trainer:\n"
        "    def __init__(self, net: nn.Module):\n"
        "        self.model = net\n"
        "        self.optimizer = torch.optim.Adam(self.model.parameters())\n"
        "\n"
        "    def validate(self):\n"
        "        self.model.eval()\n"
        "        with torch.no_grad():\n"
        "            return self.model(x_val).argmax(-1)\n"
        "\n"
        "    def fit(self, loader):\n"
        "        self.model.train()\n"
        "        for step, (x, y) in enumerate(loader):\n"
        "            self.model.train()\n"
        "            self.optimizer.zero_grad()\n"
        "            nn.functional.cross_entropy(self.model(x), y).backward()\n"
        "            self.optimizer.step()\n"
        "            if step % 500 == 0:\n"
        "                self.validate()\n",
    ),
    # validation before the step of the same iteration: right after the validation
    # block, where the top of the loop would come too late
    "validation-before-the-step": (
        "model.train()\n"
        "for step, (x, y) in enumerate(loader):\n"
        "    if step % 100 == 0:\n"
        "        print(evaluate(model, val_loader))\n"
        "    # the training step\n"
        "    optimizer.zero_grad()\n"
        "    nn.functional.cross_entropy(model(x), y).backward()\n"
        "    optimizer.step()\n",
        "model.train()\n"
        "for step, (x, y) in enumerate(loader):\n"
        "    if step % 100 == 0:\n"
        "        print(evaluate(model, val_loader))\n"
        "    model.train()\n"
        "    # the training step\n"
        "    optimizer.zero_grad()\n"
        "    nn.functional.cross_entropy(model(x), y).backward()\n"
        "    optimizer.step()\n",
    ),
    # comment lines that open the body stay with the statement they describe
    "comment-opens-the-loop-body": (
        "model.train()\n"
        "while step < max_steps:\n"
        "    # one optimizer step\n"
        "\n"
        "    optimizer.zero_grad()\n"
        "    nn.functional.cross_entropy(model(x), y).backward()\n"
        "    optimizer.step()\n"
        "    step += 1\n"
        "    if step % 100 == 0:\n"
        "        evaluate(model, val_loader)\n",
        "model.train()\n"
        "while step < max_steps:\n"
        "    model.train()\n"
        "    # one optimizer step\n"
        "\n"
        "    optimizer.zero_grad()\n"
        "    nn.functional.cross_entropy(model(x), y).backward()\n"
        "    optimizer.step()\n"
        "    step += 1\n"
        "    if step % 100 == 0:\n"
        "        evaluate(model, val_loader)\n",
    ),
    "tab-indentation": (
        "model.train()\n"
        "for x, y in loader:\n"
        "\toptimizer.zero_grad()\n"
        "\tnn.functional.cross_entropy(model(x), y).backward()\n"
        "\toptimizer.step()\n"
        "\tif report_now():\n"
        "\t\tmodel.train(False)\n",
        "model.train()\n"
        "for x, y in loader:\n"
        "\tmodel.train()\n"
        "\toptimizer.zero_grad()\n"
        "\tnn.functional.cross_entropy(model(x), y).backward()\n"
        "\toptimizer.step()\n"
        "\tif report_now():\n"
        "\t\tmodel.train(False)\n",
    ),
    "crlf-line-ends": (
        "model.train()\r\n"
        "for x, y in loader:\r\n"
        "    optimizer.zero_grad()\r\n"
        "    nn.functional.cross_entropy(model(x), y).backward()\r\n"
        "    optimizer.step()\r\n"
        "    evaluate(model, val_loader)\r\n",
        "model.train()\r\n"
        "for x, y in loader:\r\n"
        "    model.train()\r\n"
        "    optimizer.zero_grad()\r\n"
        "    nn.functional.cross_entropy(model(x), y).backward()\r\n"
        "    optimizer.step()\r\n"
        "    evaluate(model, val_loader)\r\n",
    ),
    # `model.eval()` on its own line, then the probe, then the step: where the probe
    # ends is the author's call, so the finding has no fix
    "bare-eval-before-the-step-has-no-fix": (
        "model.train()\n"
        "for x, y in loader:\n"
        "    model.eval()\n"
        "    with torch.no_grad():\n"
        "        probe = model(x_probe)\n"
        "    optimizer.zero_grad()\n"
        "    nn.functional.cross_entropy(model(x), y).backward()\n"
        "    optimizer.step()\n",
        None,
    ),
}


def _with_preamble(text: str) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    return PREAMBLE.replace("\n", newline) + text


@pytest.mark.parametrize(("before", "after"), EXACT_FIXES.values(), ids=EXACT_FIXES.keys())
def test_fix_gives_exact_text(before: str, after: str | None):
    before = _with_preamble(before)
    after = before if after is None else _with_preamble(after)
    assert [finding.code for finding in lint(before)] == ["LML202"]
    assert fix(before) == after


FIXABLE = {name: before for name, (before, after) in EXACT_FIXES.items() if after is not None}


@pytest.mark.parametrize("before", FIXABLE.values(), ids=FIXABLE.keys())
def test_fixed_file_parses_is_clean_and_stays_put(before: str):
    fixed = fix(_with_preamble(before))
    compile(fixed, "train.py", "exec")
    assert lint(fixed) == []
    assert fix(fixed) == fixed


def test_the_fix_is_safe_and_says_where_it_goes():
    [finding] = lint(_with_preamble(EXACT_FIXES["mid-epoch-inline-validation"][0]))
    assert finding.fix is not None
    assert finding.fix.applicability is Applicability.SAFE
    assert finding.fix.message == "Call `model.train()` at the top of the loop"
    assert finding.message == (
        "`model.eval()` switches `model` to eval mode inside its training loop and nothing "
        "switches it back before the next training step: training goes on with dropout off "
        "and batch norm frozen; call `model.train()` at the top of the loop"
    )


def test_validation_before_the_step_is_fixed_after_the_validation():
    [finding] = lint(_with_preamble(EXACT_FIXES["validation-before-the-step"][0]))
    assert finding.fix.message == "Call `model.train()` after the validation"
    assert finding.message.startswith("The call to `evaluate` switches `model` to eval mode")
    assert finding.message.endswith("call `model.train()` once the validation is over")


def test_the_command_line_applies_it_without_unsafe_fixes(tmp_path):
    before, after = EXACT_FIXES["end-of-epoch-validation-function"]
    (tmp_path / "pyproject.toml").write_text("[tool.lintml]\n")
    target = tmp_path / "train.py"
    target.write_bytes(_with_preamble(before).encode())
    command = [sys.executable, "-m", "lintml", "check", "--fix", "train.py"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert target.read_bytes() == _with_preamble(after).encode()
