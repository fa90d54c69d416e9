"""The model questions do bounded work when their recursion guards fire.

A model rebound from itself (`model = model.to(...)`), and callers that pass it to
functions of the file (`benchmark(lambda: model(x), model)`, two functions that call
each other with it), make the questions of `lintml.analysis.models.Models` recursive:
`mode_at` asks the callers, which ask `info` of the argument, which asks `mode_at`
again. Answers computed while a guard fired used to be recomputed on every ask, which
made a 300-line tutorial take minutes. `Models.work` counts the computations not
answered from a memo; these tests bound it (never time).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lintml
import lintml.checks.base as base
from lintml.analysis.models import Models
from lintml.config import Config

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "fixtures" / "rules" / "LML101" / "rebinding_tutorial.py"
ALL_RULES = Config(select=("LML",))


@pytest.fixture
def check(monkeypatch):
    """`check(source)` -> (findings, the work of the file's `Models`)."""
    made: list[Models] = []

    class Counting(Models):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(base, "Models", Counting)

    def run(source: str, filename: str = "example.py"):
        made.clear()
        findings = lintml.check_source(source, filename=filename, config=ALL_RULES)
        assert len(made) == 1
        return findings, made[0].work

    return run


def test_the_rebinding_tutorial_is_checked_with_bounded_work(check):
    text = TUTORIAL.read_text(encoding="utf-8")
    findings, work = check(text, "LML101/rebinding_tutorial.py")
    marked = [number for number, line in enumerate(text.splitlines(), 1) if re.search(r"#\s*error:", line)]
    assert sorted(finding.line for finding in findings) == marked
    # 555 when this test was written, so ~2x headroom (before the fix: 34 172 885 for
    # the first 159 lines alone, and the whole file did not finish in 30 minutes)
    assert work < 1100


def rebinding_chain(n: int) -> str:
    """A script that rebinds `model` n times, hands it to `benchmark` after each
    rebinding, and now and then to `ping`, which calls itself through `pong`."""
    lines = [
        "import torch",
        "import torchvision",
        "",
        'device = torch.device("cuda")',
        "",
        "def benchmark(fn, model, *inputs):",
        "    model.eval()",
        "    for _ in range(10):",
        "        fn(*inputs)",
        "",
        "def ping(model, x, n):",
        "    if n:",
        "        pong(model, x, n - 1)",
        "    return model(x)",
        "",
        "def pong(model, x, n):",
        "    model.eval()",
        "    return ping(model, x, n)",
        "",
        "model = torchvision.models.resnet18()",
        "model.eval()",
        "x, y = next(iter(val_loader))",
    ]
    for i in range(n):
        lines.append("model = model.to(device)" if i % 2 else "model = model.to(memory_format=torch.channels_last)")
        lines.append("benchmark(lambda: model(x), model)")
        if i % 5 == 0:
            lines.append("ping(model, x, 3)")
    return "\n".join(lines) + "\n"


def test_work_grows_linearly_with_a_chain_of_rebindings(check):
    counts = {}
    for n in (10, 20, 40):
        findings, counts[n] = check(rebinding_chain(n))
        # every lambda forward (the model is in eval mode, grad is on), and ping's
        assert [finding.code for finding in findings] == ["LML101"] * (n + 1)
    # 137, 244, 444 when this test was written (before the fix: 35 545, 257 949 and
    # 2 050 160 for n=5, 6, 7). Linear: doubling n about doubles the work (1.8x; with
    # margin 2.5x); and an absolute bound with ~2x headroom
    assert counts[40] < 2.5 * counts[20]
    assert counts[20] < 2.5 * counts[10]
    assert counts[40] < 900


def ring_of_stages(n: int) -> str:
    """n functions that pass the model round a ring, each rebinding and returning it;
    the script rebinds `model` from each of them in turn."""
    lines = ["import torch", "import torchvision", "", 'device = torch.device("cuda")', ""]
    for i in range(n):
        lines += [
            f"def stage_{i}(model, x, depth):",
            "    model = model.to(device)",
            "    with torch.no_grad():",
            "        out = model(x)",
            "    if depth:",
            f"        stage_{(i + 1) % n}(model, out, depth - 1)",
            "    return model",
            "",
        ]
    lines += ["model = torchvision.models.resnet18()", "model.eval()", "x, y = next(iter(val_loader))"]
    for i in range(n):
        lines += [f"model = stage_{i}(model, x, 3)", "model = model.to(device)"]
    return "\n".join(lines) + "\n"


def test_work_stays_polynomial_round_a_ring_of_functions(check):
    counts = {n: check(ring_of_stages(n))[1] for n in (10, 20, 40)}
    # 3 379, 12 283, 41 265 when this test was written: each question about a stage
    # goes round the ring until `_MAX_NESTING` cuts the chain, and an answer cut
    # there depends on where the chain began, so it is remembered only until the
    # outermost question is answered: n questions of n steps each (before the fix:
    # 33 770 for n=2, 4 230 855 for n=3). Doubling n at most quadruples the work (3.4x
    # measured; with margin 6x); and an absolute bound with ~2x headroom
    assert counts[40] < 6 * counts[20]
    assert counts[20] < 6 * counts[10]
    assert counts[40] < 85_000
