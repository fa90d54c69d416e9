"""LML402/LML405/LML406 details the fixtures do not spell out: messages, anchors and the
edges of what counts as float16 autocast or a scaler."""

from __future__ import annotations

import textwrap

import pytest

import lintml
from lintml.config import Config

AMP = Config(select=("LML402", "LML405", "LML406"))


def findings(source: str):
    return [
        (f.line, f.code)
        for f in lintml.check_source(textwrap.dedent(source), filename="example.py", config=AMP)
    ]


TEMPLATE = """
import torch

def train(model, optimizer, x, y):
    with {manager}:
        loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    optimizer.step()
"""


@pytest.mark.parametrize(
    ("manager", "reported"),
    [
        ('torch.autocast("cuda")', True),
        ('torch.autocast("cuda:1")', True),
        ('torch.autocast(device_type="cuda", dtype=torch.half)', True),
        ('torch.autocast("cpu", dtype=torch.float16)', True),
        ("torch.cuda.amp.autocast(enabled=use_amp)", True),
        ('torch.amp.autocast("cuda")', True),
        ('torch.autocast("cuda", dtype=torch.bfloat16)', False),
        ("torch.cuda.amp.autocast(dtype=torch.bfloat16)", False),
        ('torch.autocast("cpu")', False),
        ("torch.cpu.amp.autocast()", False),
        ('torch.autocast("cuda", enabled=False)', False),
        ("torch.autocast(device)", False),
        ('torch.autocast("cuda", dtype=dtype)', False),
        ("torch.no_grad()", False),
    ],
)
def test_what_counts_as_float16_autocast(manager: str, reported: bool):
    source = TEMPLATE.format(manager=manager).replace("use_amp", "True")
    assert findings(source) == ([(7, "LML402")] if reported else [])


def test_lml402_message_names_the_loss_and_the_remedy():
    [finding] = lintml.check_source(TEMPLATE.format(manager='torch.autocast("cuda")'), config=AMP)
    assert finding.code == "LML402" and finding.column == 5
    assert "`loss`" in finding.message and "GradScaler" in finding.message and "bfloat16" in finding.message


def test_a_module_level_scaler_used_in_the_function_is_lml405_not_lml402():
    source = """
    import torch

    scaler = torch.amp.GradScaler("cuda")

    def train(model, optimizer, x, y):
        with torch.autocast("cuda"):
            loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        scaler.step(optimizer)
        scaler.update()
    """
    assert findings(source) == [(9, "LML405")]


def test_a_scaler_used_in_a_conditional_expression_is_not_bypassed():
    source = """
    import torch

    def train(model, optimizer, x, y, scaler=None):
        with torch.autocast("cuda"):
            loss = torch.nn.functional.mse_loss(model(x), y)
        scaler.scale(loss).backward() if scaler is not None else loss.backward()
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
    """
    assert findings(source) == []


def test_a_missing_update_is_reported_once_per_step_call():
    source = """
    import torch

    def train(model, optimizer, loader):
        scaler = torch.amp.GradScaler("cuda")
        for x, y in loader:
            with torch.autocast("cuda"):
                loss = torch.nn.functional.mse_loss(model(x), y)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
    """
    assert findings(source) == [(12, "LML405")]


def test_clip_before_unscale_names_the_optimizer():
    source = """
    import torch

    def train(model, opt, loader):
        scaler = torch.amp.GradScaler("cuda")
        for x, y in loader:
            with torch.autocast("cuda"):
                loss = torch.nn.functional.mse_loss(model(x), y)
            scaler.scale(loss).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
    """
    [finding] = lintml.check_source(textwrap.dedent(source), config=AMP)
    assert (finding.line, finding.code) == (10, "LML406")
    assert "scaler.unscale_(opt)" in finding.message
