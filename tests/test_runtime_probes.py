"""Each runtime probe on real torch code: what it confirms, at which line, and what it
refutes. Snippets run as real files; `# [name]` marks the lines the verdicts name."""

from __future__ import annotations

import pytest
import torch

from runtime_helpers import DEVICES, confirmed, marks, run_watched, tiny_gpt2, verdicts

MLP = """
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.2), nn.ReLU(), nn.Linear(16, 2)).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
"""


@pytest.mark.parametrize("device", DEVICES)
def test_lml101_confirms_unused_graphs_with_their_bytes(tmp_path, device):
    source = MLP + """
model.eval()
for _ in range(3):
    preds = model(torch.randn(4, 8, device=device)).argmax(-1)  # [infer]
with torch.no_grad():
    model(torch.randn(4, 8, device=device))  # [nograd]
with torch.inference_mode():
    model(torch.randn(4, 8, device=device))  # [inference]
model.train()
for _ in range(2):
    loss = model(torch.randn(4, 8, device=device)).pow(2).mean()  # [train]
    loss.backward()
"""
    w, _ = run_watched(tmp_path, source, device=device)
    m = marks(source)
    by_line = {(o.line, o.code): o for o in w.observations}
    infer = by_line[(m["infer"], "LML101")]
    assert infer.status == "confirmed" and infer.count == 3
    # Linear saves its 4x8 input, ReLU its 4x16 output, the second Linear its 4x16 input
    # (dropout in eval saves nothing): (32 + 64 + 64) float32 = 640 bytes per call
    assert infer.evidence["saved_bytes"] == 3 * 640
    assert infer.evidence["largest_call_bytes"] == 640
    assert by_line[(m["nograd"], "LML101")].status == "refuted"
    assert by_line[(m["inference"], "LML101")].status == "refuted"
    assert by_line[(m["train"], "LML101")].status == "refuted"
    assert {(line, code) for line, code in confirmed(w) if code == "LML101"} == {(m["infer"], "LML101")}


def test_lml101_counts_a_graph_still_alive_when_the_watch_ends(tmp_path):
    source = MLP + """
model.eval()
out = model(torch.randn(4, 8))  # [held]
"""
    w, namespace = run_watched(tmp_path, source, device="cpu")
    (observation,) = [o for o in w.observations if o.code == "LML101"]
    assert (observation.line, observation.status) == (marks(source)["held"], "confirmed")
    assert observation.evidence["held_at_exit"] == 1
    assert namespace["out"].grad_fn is not None  # the user's tensor is untouched


@pytest.mark.parametrize("device", DEVICES)
def test_lml102_confirms_graphs_piling_up_across_iterations(tmp_path, device):
    source = MLP + """
model.train()
total = 0
for _ in range(5):
    loss = model(torch.randn(4, 8, device=device)).pow(2).mean()  # [pile]
    total += loss
for _ in range(5):
    loss = model(torch.randn(4, 8, device=device)).pow(2).mean()  # [item]
    total_item = loss.item()
"""
    w, _ = run_watched(tmp_path, source, device=device)
    m = marks(source)
    assert (m["pile"], "LML102", "confirmed") in verdicts(w)
    (pile,) = [o for o in w.observations if o.code == "LML102"]
    assert pile.evidence["graphs_alive"] == 5
    assert not any(o.line == m["item"] and o.code == "LML102" for o in w.observations)


def test_lml102_refutes_accumulating_for_one_backward(tmp_path):
    # summing losses for a single backward keeps every graph on purpose
    source = MLP + """
total = 0
for _ in range(4):
    total = total + model(torch.randn(4, 8)).pow(2).mean()  # [accumulate]
total.backward()
opt.step()
"""
    w, _ = run_watched(tmp_path, source, device="cpu")
    assert (marks(source)["accumulate"], "LML102", "refuted") in verdicts(w)
    assert not [o for o in w.confirmed if o.code in ("LML101", "LML102")]


def test_lml102_confirms_per_step_backward_then_keeping_the_loss(tmp_path):
    # `running += loss` after `loss.backward()`: the saved tensors are freed, every
    # step's autograd graph (its nodes) stays alive
    source = MLP + """
running = 0
for _ in range(5):
    opt.zero_grad()
    loss = model(torch.randn(4, 8)).pow(2).mean()  # [forward]
    loss.backward()
    opt.step()
    running += loss
"""
    w, _ = run_watched(tmp_path, source, device="cpu")
    (observation,) = [o for o in w.observations if o.code == "LML102"]
    assert (observation.line, observation.status) == (marks(source)["forward"], "confirmed")
    assert observation.evidence["bytes_held"] == 0  # only nodes: the backward freed the tensors


@pytest.mark.parametrize("device", DEVICES)
def test_lml201_names_the_modules_left_in_training_mode(tmp_path, device):
    source = MLP + """
with torch.no_grad():
    model(torch.randn(2, 8, device=device))  # [train_mode]
    model.eval()
    model(torch.randn(2, 8, device=device))  # [eval_mode]
plain = torch.nn.Linear(8, 2).to(device)
with torch.no_grad():
    plain(torch.randn(2, 8, device=device))  # [no_dropout]
"""
    w, _ = run_watched(tmp_path, source, device=device)
    m = marks(source)
    assert {(line, status) for line, code, status in verdicts(w) if code == "LML201"} == {
        (m["train_mode"], "confirmed"),
        (m["eval_mode"], "refuted"),
        (m["no_dropout"], "refuted"),
    }
    (hit,) = [o for o in w.confirmed if o.code == "LML201"]
    assert hit.evidence["modules"] == ["1 (Dropout)"]


def test_lml201_sees_an_inference_forward_with_grad_on(tmp_path):
    source = MLP + """
preds = [model(torch.randn(2, 8)).argmax(-1) for _ in range(2)]  # [infer]
"""
    w, _ = run_watched(tmp_path, source, device="cpu")
    assert (marks(source)["infer"], "LML201") in confirmed(w)
    assert (marks(source)["infer"], "LML101") in confirmed(w)


@pytest.mark.parametrize("device", DEVICES)
def test_lml202_and_lml203_judge_the_mode_at_each_step(tmp_path, device):
    source = MLP + """
def step():
    opt.zero_grad()
    model(torch.randn(4, 8, device=device)).pow(2).mean().backward()
    opt.step()  # [step]

model.train()
step()
model.eval()
step()
fresh = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.BatchNorm1d(8)).to(device).eval()
opt2 = torch.optim.SGD(fresh.parameters(), lr=0.1)
for _ in range(2):
    opt2.zero_grad()
    fresh(torch.randn(4, 8, device=device)).pow(2).mean().backward()
    opt2.step()  # [eval_from_start]
"""
    w, _ = run_watched(tmp_path, source, device=device)
    m = marks(source)
    assert {(line, code) for line, code in confirmed(w) if code in ("LML202", "LML203")} == {
        (m["step"], "LML202"),
        (m["eval_from_start"], "LML203"),
    }
    (observation,) = [o for o in w.confirmed if o.code == "LML203"]
    assert observation.evidence["modules"] == ["1 (BatchNorm1d)"]


@pytest.mark.parametrize("device", DEVICES)
def test_lml301_through_generate_and_lml303_through_a_loop(tmp_path, device):
    source = """
import torch
model = tiny_gpt2(device).eval()
prompt = torch.tensor([[5, 6, 7, 8]], device=device)
slow = model.generate(prompt, max_new_tokens=6, min_new_tokens=6, do_sample=False, use_cache=False)  # [nocache]
fast = model.generate(prompt, max_new_tokens=6, min_new_tokens=6, do_sample=False)  # [cache]
ids = prompt
with torch.no_grad():
    for _ in range(6):
        logits = model(ids).logits  # [loop]
        ids = torch.cat([ids, logits[:, -1:].argmax(-1)], dim=-1)
"""
    w, ns = run_watched(tmp_path, source, device=device, tiny_gpt2=tiny_gpt2)
    m = marks(source)
    decode = {(line, code, status) for line, code, status in verdicts(w) if code in ("LML301", "LML303")}
    assert decode == {
        (m["nocache"], "LML301", "confirmed"),
        (m["cache"], "LML301", "refuted"),
        (m["loop"], "LML303", "confirmed"),
    }
    nocache = next(o for o in w.confirmed if o.code == "LML301")
    # 6 forwards re-encode prefixes of 4..9 tokens; the 5 after the first each grew by one
    assert nocache.evidence["tokens_generated"] == 5
    assert nocache.evidence["tokens_recomputed"] == 4 + 5 + 6 + 7 + 8
    assert torch.equal(ns["slow"], ns["fast"])


def test_lml401_half_weights_on_cpu(tmp_path):
    source = """
import torch
model = torch.nn.Linear(8, 8).half()
with torch.no_grad():
    model(torch.randn(2, 8).half())  # [half]
    torch.nn.Linear(8, 8).bfloat16()(torch.randn(2, 8).bfloat16())  # [bf16]
"""
    w, _ = run_watched(tmp_path, source)
    m = marks(source)
    assert {(line, status) for line, code, status in verdicts(w) if code == "LML401"} == {
        (m["half"], "confirmed"),
        (m["bf16"], "refuted"),
    }
    assert next(o for o in w.confirmed if o.code == "LML401").evidence["parameters"] == 2


@pytest.mark.parametrize("device", DEVICES)
def test_lml402_fp16_autocast_backward_without_scaler(tmp_path, device):
    source = MLP + """
def loss_fn():
    with torch.autocast(device_type=device, dtype=torch.float16):
        return model(torch.randn(4, 8, device=device)).float().pow(2).mean()

loss_fn().backward()  # [unscaled]
scaler = torch.amp.GradScaler(device)
scaler.scale(loss_fn()).backward()  # [scaled]
with torch.autocast(device_type=device, dtype=torch.bfloat16):
    loss = model(torch.randn(4, 8, device=device)).float().pow(2).mean()
loss.backward()  # [bf16]
"""
    w, _ = run_watched(tmp_path, source, device=device)
    m = marks(source)
    assert {(line, status) for line, code, status in verdicts(w) if code == "LML402"} == {
        (m["unscaled"], "confirmed"),
        (m["scaled"], "refuted"),
        (m["bf16"], "refuted"),
    }
    evidence = next(o for o in w.confirmed if o.code == "LML402").evidence
    assert evidence["elements"] == 8 * 16 + 16 + 16 * 2 + 2
    assert 0 <= evidence["zero_or_nonfinite"] <= evidence["elements"]


@pytest.mark.parametrize("device", DEVICES)
def test_lml403_steps_over_float16_weights(tmp_path, device):
    source = """
import torch
half = torch.nn.Linear(4, 4).to(device).half()
full = torch.nn.Linear(4, 4).to(device)
for model in (half, full):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(2, 4, device=device, dtype=next(model.parameters()).dtype)
    model(x).float().sum().backward()
    opt.step()  # [step]
"""
    w, _ = run_watched(tmp_path, source, device=device)
    (observation,) = [o for o in w.observations if o.code == "LML403"]
    assert (observation.line, observation.status, observation.count, observation.checked) == (
        marks(source)["step"], "confirmed", 1, 2)
    assert observation.evidence == {"steps": 1, "parameters": 2, "elements": 20}


@pytest.mark.parametrize("device", DEVICES)
def test_lml406_clipping_scaled_gradients(tmp_path, device):
    source = MLP + """
scaler = torch.amp.GradScaler(device, init_scale=1024.0)
for unscale_first in (False, True):
    opt.zero_grad()
    scaler.scale(model(torch.randn(4, 8, device=device)).pow(2).mean()).backward()
    if unscale_first:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # [after_unscale]
    else:
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # [scaled]
    scaler.step(opt)
    scaler.update()
"""
    w, _ = run_watched(tmp_path, source, device=device)
    m = marks(source)
    assert {(line, status) for line, code, status in verdicts(w) if code == "LML406"} == {
        (m["scaled"], "confirmed"),
        (m["after_unscale"], "refuted"),
    }
    assert next(o for o in w.confirmed if o.code == "LML406").evidence["scale"] == 1024.0


@pytest.mark.parametrize("device", DEVICES)
def test_lml501_stale_gradients(tmp_path, device):
    source = MLP + """
for _ in range(3):
    model(torch.randn(4, 8, device=device)).pow(2).mean().backward()
    opt.step()  # [no_zero]
for set_to_none in (True, False, True):
    opt.zero_grad(set_to_none=set_to_none)
    model(torch.randn(4, 8, device=device)).pow(2).mean().backward()
    opt.step()  # [zeroed]
for _ in range(2):
    model.zero_grad()
    model(torch.randn(4, 8, device=device)).pow(2).mean().backward()
    opt.step()  # [module_zeroed]
"""
    w, _ = run_watched(tmp_path, source, device=device)
    m = marks(source)
    assert {(line, status) for line, code, status in verdicts(w) if code == "LML501"} == {
        (m["no_zero"], "confirmed"),
        (m["zeroed"], "refuted"),
        (m["module_zeroed"], "refuted"),
    }
    stale = next(o for o in w.confirmed if o.code == "LML501")
    assert stale.evidence == {"steps": 2, "stale_gradients": 8, "gradients": 8}


def test_call_site_skips_library_frames(tmp_path):
    # the forward runs inside torch.nn.Sequential and a transformers model: the site is
    # the user's line, and only the outermost module call is an observation
    source = """
import torch
model = tiny_gpt2().eval()
outer = torch.nn.ModuleList([model])
ids = torch.tensor([[1, 2, 3]])
out = model(ids)  # [call]
"""
    w, _ = run_watched(tmp_path, source, tiny_gpt2=tiny_gpt2)
    assert {o.line for o in w.observations} == {marks(source)["call"]}
    assert {o.count + 0 for o in w.observations if o.code == "LML101"} == {1}


def test_unknown_probe_code_is_a_clear_error():
    from lintml.runtime import watch

    with pytest.raises(ValueError, match="no runtime probe for LML999"):
        watch(["LML999"])


def test_only_the_selected_probes_run(tmp_path):
    source = MLP + """
model.eval()
model(torch.randn(2, 8))  # [call]
"""
    w, _ = run_watched(tmp_path, source, codes=["LML201"], device="cpu")
    assert {o.code for o in w.observations} == {"LML201"}


def test_lml101_refutes_a_frozen_model_that_saves_nothing(tmp_path):
    source = """
import torch
model = torch.nn.Linear(4, 4).eval().requires_grad_(False)
out = model(torch.randn(2, 4))  # [frozen]
"""
    w, _ = run_watched(tmp_path, source)
    assert (marks(source)["frozen"], "LML101", "refuted") in verdicts(w)


def test_lml102_keeps_a_loss_module_on_the_same_line_apart(tmp_path):
    # `loss_fn(model(x), y)`: two module calls on one line, each keeping one graph until
    # `loss` is rebound; that is not graphs piling up
    source = MLP + """
loss_fn = torch.nn.CrossEntropyLoss()
for _ in range(5):
    opt.zero_grad()
    loss = loss_fn(model(torch.randn(4, 8)), torch.tensor([0, 1, 0, 1]))  # [both]
    loss.backward()
    opt.step()
"""
    w, _ = run_watched(tmp_path, source, device="cpu")
    assert not [o for o in w.observations if o.code == "LML102"]


def test_lml303_needs_the_same_prefix_not_just_one_more_token(tmp_path):
    # scoring answers of 3, 4 and 5 tokens after one context: lengths grow by one,
    # but nothing is being decoded
    source = """
import torch
model = tiny_gpt2().eval()
context = [5, 6, 7]
with torch.no_grad():
    for answer in ([9, 10, 11], [12, 13, 14, 15], [16, 17, 18, 19, 20]):
        model(torch.tensor([context + answer])).logits  # [score]
"""
    w, _ = run_watched(tmp_path, source, tiny_gpt2=tiny_gpt2)
    assert not [o for o in w.observations if o.code in ("LML301", "LML303")]


def test_lml101_credits_unmeasured_calls_with_the_measured_mean(tmp_path):
    # saved tensors are counted on the first calls of a site and then one in 64; the
    # others are credited with the mean, so the total stays right for a steady loop
    from lintml.runtime import watcher

    source = MLP + """
model.eval()
for _ in range(100):
    model(torch.randn(4, 8)).argmax(-1)  # [infer]
"""
    w, _ = run_watched(tmp_path, source, device="cpu")
    (observation,) = [o for o in w.observations if o.code == "LML101"]
    assert observation.count == 100
    assert observation.evidence["saved_bytes"] == 100 * 640
    assert watcher.SAMPLE_FIRST + (100 - 1) // watcher.SAMPLE_EVERY < 100  # most were not measured


def test_lml402_backward_of_a_scaled_vector_output(tmp_path):
    # `scaler.scale(outputs)` of a vector, backpropagated with a gradient argument
    source = MLP + """
scaler = torch.amp.GradScaler("cpu")
with torch.autocast(device_type="cpu", dtype=torch.float16):
    out = model(torch.randn(4, 8)).float()
scaler.scale(out).backward(torch.ones(4, 2))  # [vector]
"""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "lintml.runtime: ... failed" warning either
        w, _ = run_watched(tmp_path, source, device="cpu")
    assert (marks(source)["vector"], "LML402", "refuted") in verdicts(w)
