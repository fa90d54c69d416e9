"""Which devices a value names, and where a model is moved (lintml/analysis/devices.py)."""

import pytest

from analysis_helpers import analyse
from lintml.analysis.devices import ACCELERATOR, CPU, UNKNOWN, Devices

HEADER = """\
import torch
from transformers import AutoModelForCausalLM
"""


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('"cpu"', {CPU}),
        ('"cuda:1"', {ACCELERATOR}),
        ('torch.device("cpu")', {CPU}),
        ('"cuda" if torch.cuda.is_available() else "cpu"', {CPU, ACCELERATOR}),
        ('torch.device("cuda" if torch.cuda.is_available() else "cpu")', {CPU, ACCELERATOR}),
        ("0", {ACCELERATOR}),
        ("-1", {CPU}),
        ('{"": "cpu"}', {CPU}),
        ("args.device", {UNKNOWN}),
    ],
)
def test_device_of_an_expression(expression: str, expected: set[str]):
    analysed = analyse(HEADER + f"device = {expression}\nprobe(device)\n")
    function = analysed.function()
    [argument] = analysed.call("probe(device)").node.args
    assert Devices(analysed.program).of(argument.value, function) == frozenset(expected)


def test_every_binding_of_a_name_counts_and_a_parameter_is_unknown():
    analysed = analyse(
        HEADER
        + """\
def pick(default):
    device = "cuda"
    if not torch.cuda.is_available():
        device = "cpu"
    probe(device)
    probe(default)
"""
    )
    devices = Devices(analysed.program)
    function = analysed.function("pick")
    assert devices.of(analysed.call("probe(device)").node.args[0].value, function) == {CPU, ACCELERATOR}
    assert devices.of(analysed.call("probe(default)").node.args[0].value, function) == {UNKNOWN}


def test_model_moves_read_calls_chains_and_class_state():
    analysed = analyse(
        HEADER
        + """\
class Server:
    def __init__(self, name):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(name, device_map="cpu").half()
        self.model.to(self.device)

def load(name):
    model = AutoModelForCausalLM.from_pretrained(name).cuda()
    model.to(torch.float16)
    return model
"""
    )
    devices = Devices(analysed.program)
    init = analysed.function("Server.__init__")
    assert sorted(map(sorted, devices.model_moves("self.model", init))) == [[ACCELERATOR, CPU], [CPU]]
    # `.to(torch.float16)` moves nothing
    assert devices.model_moves("model", analysed.function("load")) == [frozenset({ACCELERATOR})]
