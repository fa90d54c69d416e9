"""What `watch()` promises: identical results, nothing left behind, a failing probe
never breaks the program, correct call sites from several threads."""

from __future__ import annotations

import sys
import warnings

import pytest
import torch
import torch.nn.utils.clip_grad as clip_grad_module
from torch import nn
from torch.amp.grad_scaler import GradScaler
from torch.optim import optimizer as optimizer_module

from lintml.runtime import probes, watch
from runtime_helpers import DEVICES, marks, run_watched, tiny_gpt2


def _conv_net(device):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.3),
        nn.Flatten(), nn.Linear(8 * 8 * 8, 10),
    ).to(device)


def _train_steps(model, device, steps=3):
    """A few steps with dropout, batch-norm, AdamW; returns outputs, grads, weights."""
    torch.manual_seed(1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    outputs = []
    for _ in range(steps):
        opt.zero_grad()
        x = torch.randn(4, 3, 8, 8, device=device)
        out = model(x)
        loss = nn.functional.cross_entropy(out, torch.arange(4, device=device) % 10)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        outputs.append(out.detach().clone())
    grads = [p.grad.clone() for p in model.parameters()]
    return outputs, grads, [p.detach().clone() for p in model.parameters()], model.state_dict()


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("device", DEVICES)
def test_training_results_are_bitwise_identical(device):
    plain = _train_steps(_conv_net(device), device)
    with watch():
        watched = _train_steps(_conv_net(device), device)
    assert _same(plain, watched)  # outputs, gradients, weights, running stats


@pytest.mark.parametrize("device", DEVICES)
def test_gpt2_forward_backward_and_generate_are_bitwise_identical(device):
    def run():
        model = tiny_gpt2(device)
        ids = torch.randint(2, 128, (2, 12), generator=torch.Generator().manual_seed(3)).to(device)
        torch.manual_seed(5)
        out = model(ids, labels=ids)
        out.loss.backward()
        grads = [p.grad.clone() for p in model.parameters()]
        model.eval()
        torch.manual_seed(7)
        sampled = model.generate(ids[:, :4], max_new_tokens=8, do_sample=True, top_k=20)
        greedy = model.generate(ids[:, :4], max_new_tokens=8, do_sample=False, use_cache=False)  # noqa: LML301
        return out.logits.detach(), out.loss.detach(), grads, sampled, greedy

    plain = run()
    with watch():
        watched = run()
    assert _same(plain, watched)


def _global_state():
    return {
        "call": nn.Module.__call__,
        "module_zero_grad": nn.Module.zero_grad,
        "optimizer_zero_grad": torch.optim.Optimizer.zero_grad,
        "backward": torch.autograd.backward,
        "clip_norm": (torch.nn.utils.clip_grad_norm_, clip_grad_module.clip_grad_norm_),
        "clip_value": (torch.nn.utils.clip_grad_value_, clip_grad_module.clip_grad_value_),
        "scaler": (GradScaler.scale, GradScaler.unscale_, GradScaler.update),
        "step_hooks": (dict(optimizer_module._global_optimizer_pre_hooks),
                       dict(optimizer_module._global_optimizer_post_hooks)),
        "saved_tensor_hooks": torch._C._autograd._top_saved_tensors_default_hooks(False),
    }


def test_every_hook_is_removed_on_exit():
    before = _global_state()
    with watch():
        assert nn.Module.__call__ is not before["call"]
        assert len(optimizer_module._global_optimizer_pre_hooks) == len(before["step_hooks"][0]) + 1
        _train_steps(_conv_net("cpu"), "cpu", steps=1)
    assert _global_state() == before


def test_the_users_exception_propagates_unchanged_and_hooks_are_removed():
    before = _global_state()
    error = RuntimeError("out of patience")
    model = nn.Linear(2, 2)
    with pytest.raises(RuntimeError) as caught:
        with watch() as w:
            model(torch.randn(1, 2))
            raise error
    assert caught.value is error
    frame = caught.value.__traceback__.tb_frame
    assert frame.f_code.co_name == "test_the_users_exception_propagates_unchanged_and_hooks_are_removed"
    assert _global_state() == before
    assert [o.code for o in w.confirmed] == ["LML101"]  # what was seen until then is kept


def test_an_exception_inside_a_forward_leaves_no_hook_behind():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("bad shape")

    before = _global_state()
    with pytest.raises(ValueError, match="bad shape"):
        with watch():
            Boom()(torch.randn(1, requires_grad=True))
    assert _global_state() == before


def test_nested_watches_both_observe_and_the_last_exit_uninstalls(tmp_path):
    before = _global_state()
    model = nn.Linear(2, 2).eval()
    with watch() as outer:
        with watch(["LML101"]) as inner:
            model(torch.randn(1, 2))
        assert nn.Module.__call__ is not before["call"]  # the outer one is still active
        model(torch.randn(1, 2))
    assert _global_state() == before
    assert [o.count for o in inner.confirmed] == [1]
    assert sorted(o.count for o in outer.confirmed if o.code == "LML101") == [1, 1]


def test_decorator_form_collects_every_call():
    w = watch(["LML101"])
    model = nn.Linear(2, 2).eval()

    @w
    def predict(x):
        return model(x)

    predict(torch.randn(1, 2))
    predict(torch.randn(1, 2))
    (observation,) = w.confirmed
    assert observation.count == 2 and observation.site.function == "predict"


def test_a_failing_probe_disables_itself_with_one_warning(monkeypatch, tmp_path):
    def broken(self, trace):
        raise ZeroDivisionError("probe bug")

    monkeypatch.setattr(probes.HalfOnCpuProbe, "forward_start", broken)
    source = """
import torch
model = torch.nn.Linear(4, 4).eval()
for _ in range(3):
    out = model(torch.randn(2, 4))  # [call]
"""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w, namespace = run_watched(tmp_path, source)
    relevant = [c for c in caught if "lintml.runtime" in str(c.message)]
    assert len(relevant) == 1
    assert "LML401 probe failed (ZeroDivisionError: probe bug)" in str(relevant[0].message)
    assert w.disabled_probes == {"HalfOnCpuProbe": "ZeroDivisionError: probe bug"}
    assert namespace["out"].shape == (2, 4)  # the program completed
    assert {(o.line, o.code) for o in w.confirmed} == {(marks(source)["call"], "LML101")}  # others still work


def test_two_threads_get_their_own_call_sites(tmp_path):
    source = """
import threading
import torch
barrier = threading.Barrier(2)
grad_model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
nograd_model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Dropout(0.5)).train()

def with_grad():
    barrier.wait()
    for _ in range(200):
        grad_model(torch.randn(2, 8))  # [grad]

def without_grad():
    barrier.wait()
    with torch.no_grad():
        for _ in range(200):
            nograd_model(torch.randn(2, 8))  # [nograd]

threads = [threading.Thread(target=with_grad), threading.Thread(target=without_grad)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""
    w, _ = run_watched(tmp_path, source)
    m = marks(source)
    seen = {(o.line, o.code, o.status, o.count) for o in w.observations if o.code in ("LML101", "LML201")}
    assert seen == {
        (m["grad"], "LML101", "confirmed", 200),
        (m["grad"], "LML201", "refuted", 0),
        (m["nograd"], "LML101", "refuted", 0),
        (m["nograd"], "LML201", "confirmed", 200),
    }


def test_observations_are_ready_only_after_exit():
    with watch() as w:
        with pytest.raises(RuntimeError, match="ready when the watch has exited"):
            w.observations


def test_importing_the_runtime_package_does_not_import_torch():
    import subprocess

    code = "import lintml.runtime, lintml.runtime.pytest_plugin, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_failing_probe_never_raises_even_when_warnings_are_errors(monkeypatch, tmp_path, capfd):
    def broken(self, trace):
        raise ZeroDivisionError("probe bug")

    monkeypatch.setattr(probes.HalfOnCpuProbe, "forward_start", broken)
    source = """
import torch
out = torch.nn.Linear(4, 4)(torch.randn(2, 4))
"""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w, namespace = run_watched(tmp_path, source)
    assert namespace["out"].shape == (2, 4)
    assert "LML401 probe failed (ZeroDivisionError: probe bug)" in capfd.readouterr().err
    assert w.disabled_probes == {"HalfOnCpuProbe": "ZeroDivisionError: probe bug"}
