"""What `watch()` promises: the user's exception unchanged, nesting and the decorator
form, a failing probe never breaks the program, correct call sites from several threads.

Bitwise-identical results (the model x precision x device matrix), every global hook
gone after an exit by any exception, probes failing in a real process and DataLoader
workers are in test_runtime_hardening.py."""

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
from runtime_helpers import marks, run_watched


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
