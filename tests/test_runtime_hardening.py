"""Hardening of `watch()` (issue 8, runtime side).

- Results are bitwise identical with and without the watch, over a matrix of
  models (an MLP with Dropout and BatchNorm1d, a CNN with Dropout and BatchNorm2d, a
  tiny GPT-2 trained and generating greedily and by sampling) x precisions (float32,
  bfloat16, float16, bfloat16 and float16 autocast) x devices (cpu, cuda when present).
- Nothing global is left behind when the watch exits: every hook registry torch has,
  every attribute lintml patches, the saved-tensor hook stack, grad and autocast modes;
  after a normal exit and after an exception from the body, a forward, a backward or
  an optimizer step.
- A probe that raises, whatever it was doing, is disabled with one warning naming it
  and the program finishes with its own results (a real subprocess, `-W always`).
- A watched program that feeds its model from DataLoader worker processes (fork, and
  spawn) finishes, matches the unwatched run and reports its planted bug at its line;
  a forked worker does not inherit a lock that another thread held.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.utils.clip_grad as clip_grad_module
from torch import nn
from torch.amp.grad_scaler import GradScaler
from torch.optim import optimizer as optimizer_module

from lintml.runtime import watch
from lintml.runtime import watcher as watcher_module
from runtime_helpers import DEVICES, tiny_gpt2

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _one_thread():
    """Two shared cores: one intra-op thread keeps the runs fast and deterministic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- bitwise comparison ------------------------------------------------------------------

_INT_OF_SIZE = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bits(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor's bit pattern: NaN equals the same NaN, -0.0 differs from 0.0."""
    tensor = tensor.detach().contiguous()
    if tensor.is_floating_point():
        return tensor.view(_INT_OF_SIZE[tensor.element_size()])
    return tensor


def _assert_bitwise(plain, watched, path: str = "result") -> None:
    if isinstance(plain, torch.Tensor):
        assert isinstance(watched, torch.Tensor), path
        assert (plain.dtype, plain.shape, plain.device) == (watched.dtype, watched.shape, watched.device), path
        assert torch.equal(_bits(plain), _bits(watched)), f"{path} differs with the watch"
    elif isinstance(plain, dict):
        assert list(plain) == list(watched), path
        for key in plain:
            _assert_bitwise(plain[key], watched[key], f"{path}[{key!r}]")
    elif isinstance(plain, (list, tuple)):
        assert len(plain) == len(watched), path
        for index, (a, b) in enumerate(zip(plain, watched)):
            _assert_bitwise(a, b, f"{path}[{index}]")
    else:
        assert plain == watched, path


def _snapshot(model: nn.Module) -> dict:
    """Weights and buffers (BatchNorm running stats and batch counts), cloned."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _grads(model: nn.Module) -> dict:
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}


# -- the matrix ----------------------------------------------------------------------------

# (parameter dtype, autocast dtype or None, GradScaler)
PRECISIONS = {
    "float32": (torch.float32, None, False),
    "bfloat16": (torch.bfloat16, None, False),
    "float16": (torch.float16, None, False),
    "autocast-bfloat16": (torch.float32, torch.bfloat16, False),
    "autocast-float16": (torch.float32, torch.float16, True),  # with a GradScaler
}


def _autocast(device: str, dtype):
    return torch.autocast(device_type=device, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _mlp():
    return nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 4))


def _cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout2d(0.2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * 6 * 6, 4),
    )  # fmt: skip


def _optimize(model, opt, loss, scaler, step: int) -> None:
    """Backward, clip, step: through the GradScaler (scale, unscale_, step, update) when
    there is one; zeroing alternates between `Module.zero_grad` and `Optimizer.zero_grad`
    (the first is patched lazily, at the first step)."""
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        if step % 2:
            clip_grad_module.clip_grad_value_(model.parameters(), 0.5)
        else:
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()


def _train_classifier(kind: str, device: str, precision: str) -> dict:
    dtype, autocast_dtype, scaled = PRECISIONS[precision]
    torch.manual_seed(0)
    model = (_mlp() if kind == "mlp" else _cnn()).to(device=device, dtype=dtype)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scaler = GradScaler(device) if scaled else None
    shape = (8, 16) if kind == "mlp" else (4, 3, 6, 6)
    torch.manual_seed(1)  # inputs and dropout masks from here on
    record: dict = {"steps": []}
    for step in range(4):  # the first 3 forwards count saved tensors, the 4th is credited
        (model if step % 2 else opt).zero_grad()
        x = torch.randn(shape, device=device, dtype=dtype)
        y = torch.randint(0, 4, (shape[0],), device=device)
        with _autocast(device, autocast_dtype):
            out = model(x)
            loss = nn.functional.cross_entropy(out.float(), y)
        _optimize(model, opt, loss, scaler, step)
        # `out` keeps its graph's nodes alive to the end: those traces settle at the exit
        record["steps"].append({"output": out, "loss": loss, "grads": _grads(model), "state": _snapshot(model)})
    # a forward with grad that nothing backpropagates (LML101), then a proper evaluation
    with _autocast(device, autocast_dtype):
        record["unused_graph_output"] = model(x).detach()
    model.eval()
    with torch.no_grad(), _autocast(device, autocast_dtype):
        record["eval_output"] = model(x)
    record["final_state"] = _snapshot(model)
    if scaler is not None:
        record["scale"] = scaler.get_scale()
    return record


def _gpt2(device: str, precision: str):
    dtype = PRECISIONS[precision][0]
    return tiny_gpt2(device).to(dtype)


def _ids(device: str, length: int = 12):
    return torch.randint(2, 128, (2, length), generator=torch.Generator().manual_seed(3)).to(device)


def _train_gpt2(device: str, precision: str) -> dict:
    _, autocast_dtype, scaled = PRECISIONS[precision]
    model = _gpt2(device, precision)
    model.train()  # GPT2Config's dropouts (0.1) on
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = GradScaler(device) if scaled else None
    ids = _ids(device)
    torch.manual_seed(5)  # dropout masks
    record: dict = {"steps": []}
    for step in range(2):
        opt.zero_grad()
        with _autocast(device, autocast_dtype):
            out = model(ids, labels=ids)
        _optimize(model, opt, out.loss, scaler, step)
        record["steps"].append({"logits": out.logits.detach(), "loss": out.loss.detach(),
                                "grads": _grads(model), "state": _snapshot(model)})
    return record


def _generate_gpt2(device: str, precision: str) -> dict:
    _, autocast_dtype, _ = PRECISIONS[precision]
    model = _gpt2(device, precision).eval()
    prompt = _ids(device)[:, :4]
    mask = torch.ones_like(prompt)
    record = {}
    with _autocast(device, autocast_dtype):
        greedy = model.generate(prompt, attention_mask=mask, max_new_tokens=6, do_sample=False,
                                return_dict_in_generate=True, output_logits=True)
        record["greedy"] = greedy.sequences
        record["greedy_logits"] = list(greedy.logits)
        record["greedy_no_cache"] = model.generate(
            prompt, attention_mask=mask, max_new_tokens=6, do_sample=False, use_cache=False  # noqa: LML301
        )
        torch.manual_seed(7)
        record["sampled"] = model.generate(prompt, attention_mask=mask, max_new_tokens=6, do_sample=True, top_k=20)
    return record


WORKLOADS = {
    "mlp": lambda device, precision: _train_classifier("mlp", device, precision),
    "cnn": lambda device, precision: _train_classifier("cnn", device, precision),
    "gpt2-train": _train_gpt2,
    "gpt2-generate": _generate_gpt2,
}


def _unsupported(error: BaseException) -> bool:
    """Whether an error says an op has no kernel for this dtype on this device."""
    text = str(error)
    return isinstance(error, (RuntimeError, NotImplementedError, TypeError)) and any(
        phrase in text for phrase in ("not implemented for", "not supported", "Unsupported", "unsupported", "no kernel")
    )


def _plain_or_skip(run, device: str, precision: str):
    """Run the workload unwatched; a precision this device cannot run is a skip that
    names the op that failed (found out by running it, not assumed)."""
    if device == "cuda" and precision.endswith("bfloat16") and not torch.cuda.is_bf16_supported():
        pytest.skip("this CUDA device does not support bfloat16")
    try:
        return run()
    except Exception as error:
        if precision != "float32" and _unsupported(error):
            first = str(error).strip().splitlines()[0]
            pytest.skip(f"{precision} on {device} is not supported by this torch: {type(error).__name__}: {first}")
        raise


@contextlib.contextmanager
def _deterministic(device: str):
    """On CUDA, deterministic kernels where torch has them (a warning where it has not)."""
    if device != "cuda":
        yield
        return
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", list(PRECISIONS))
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_results_are_bitwise_identical_with_and_without_the_watch(workload, precision, device):
    run = WORKLOADS[workload]

    def once():
        with _deterministic(device), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's and transformers' notices
            warnings.filterwarnings("always", message="lintml")  # lintml's are checked below
            return run(device, precision)

    plain = _plain_or_skip(once, device, precision)
    if device == "cuda":
        control = once()
        try:
            _assert_bitwise(plain, control)
        except AssertionError as difference:
            pytest.skip(f"two unwatched runs already differ on this device ({difference}): nothing to compare")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with watch() as w:  # every probe
            watched = once()
    _assert_bitwise(plain, watched)
    assert w.disabled_probes == {}
    assert [str(c.message) for c in caught if "lintml" in str(c.message)] == []
    assert w.observations  # the probes did watch


# -- nothing left behind -------------------------------------------------------------------


def _namespaces() -> dict:
    """Every class and module whose attributes lintml patches, or that holds one that it
    calls through (`Tensor.backward` calls `torch.autograd.backward`)."""
    import torch.cuda.amp

    return {
        "torch.nn.Module": nn.Module,
        "torch.optim.Optimizer": torch.optim.Optimizer,
        "torch.amp.GradScaler": GradScaler,
        "torch.cuda.amp.GradScaler": torch.cuda.amp.GradScaler,
        "torch.Tensor": torch.Tensor,
        "torch.autograd": torch.autograd,
        "torch.autograd.graph": torch.autograd.graph,
        "torch.nn.utils": torch.nn.utils,
        "torch.nn.utils.clip_grad": clip_grad_module,
        "torch.optim.optimizer": optimizer_module,
    }


def _registries() -> dict:
    """torch's global hook registries: every `_global_*` of torch.nn.modules.module
    (forward, forward-pre, backward, backward-pre, always-called and with-kwargs forward
    hooks, module/parameter/buffer registration hooks) and of torch.optim.optimizer."""
    import torch.nn.modules.module as module_module

    found = {}
    for owner in (module_module, optimizer_module):
        for name, value in vars(owner).items():
            if name.startswith("_global_"):
                found[f"{owner.__name__}.{name}"] = list(value.items()) if hasattr(value, "items") else value
    return found


def _global_state() -> dict:
    state = {
        "namespaces": {name: dict(vars(owner)) for name, owner in _namespaces().items()},
        "registries": _registries(),
        "saved_tensor_hooks": (torch._C._autograd._top_saved_tensors_default_hooks(False),
                               torch._C._autograd._saved_tensors_hooks_is_enabled()),
        "modes": (torch.is_grad_enabled(), torch.is_inference_mode_enabled(), torch.get_default_dtype(),
                  torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"),
                  torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda"),
                  torch._C._len_torch_function_stack(), torch._C._len_torch_dispatch_stack()),
        "tracing": (sys.gettrace(), sys.getprofile(), threading.gettrace(), threading.getprofile()),
        "gc_callbacks": list(gc.callbacks),
        "lintml": (list(watcher_module._active), list(watcher_module._undo), watcher_module._module_zero_grad_patched,
                   watcher_module._tls.depth, watcher_module._tls.trace, dict(watcher_module._graph_stats),
                   dict(watcher_module._scaled_losses), len(watcher_module._scaler_state)),
    }
    return state


def _differences(before: dict, after: dict) -> list[str]:
    """What is not exactly as it was, compared by identity (a new attribute of a module is
    allowed when it is a submodule that something imported meanwhile)."""
    found = []
    for name, attributes in before["namespaces"].items():
        now = after["namespaces"][name]
        for key, value in attributes.items():
            if key not in now:
                found.append(f"{name}.{key} was deleted")
            elif now[key] is not value:
                found.append(f"{name}.{key} is {now[key]!r}, was {value!r}")
        for key in now.keys() - attributes.keys():
            if not isinstance(now[key], type(sys)):
                found.append(f"{name}.{key} was added: {now[key]!r}")
    for section in ("registries", "saved_tensor_hooks", "modes", "tracing", "gc_callbacks", "lintml"):
        if before[section] != after[section]:
            found.append(f"{section}: {after[section]!r}, was {before[section]!r}")
    return found


class _Raises(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise FloatingPointError("inside the backward")


class _RaisingSGD(torch.optim.SGD):
    def step(self, closure=None):
        raise ArithmeticError("inside the step")


def _exercise() -> None:
    """Goes through every patched path: a sampled forward (saved-tensor hooks), float16
    autocast with a GradScaler (scale, unscale_, update), both clips from both modules,
    an optimizer step (global pre/post hooks, the lazy `Module.zero_grad` patch), both
    zero_grads, an unused graph and a no-grad forward."""
    torch.manual_seed(0)
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = GradScaler("cpu")
    for step in range(2):
        (model if step else opt).zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            loss = nn.functional.cross_entropy(model(torch.randn(8, 16)).float(), torch.arange(8) % 4)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        clip_grad_module.clip_grad_value_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
    loss = model(torch.randn(8, 16)).sum()
    torch.autograd.backward(loss)
    opt.step()
    model(torch.randn(8, 16))  # a graph nothing uses
    with torch.no_grad():
        model.eval()(torch.randn(8, 16))


def _fail_in(where: str):
    if where == "body":
        raise LookupError("inside the body")
    if where == "keyboard-interrupt":
        raise KeyboardInterrupt
    if where == "forward":
        class Boom(nn.Module):
            def forward(self, x):
                raise IndexError("inside a submodule's forward")

        # a Linear saves tensors (the watch's saved-tensor hooks are pushed) before Boom raises
        nn.Sequential(nn.Linear(4, 4), nn.ReLU(), Boom())(torch.randn(2, 4, requires_grad=True))
    if where == "backward":
        model = nn.Linear(4, 4)
        _Raises.apply(model(torch.randn(2, 4))).sum().backward()
    if where == "step":
        model = nn.Linear(4, 4)
        opt = _RaisingSGD(model.parameters(), lr=0.1)
        model(torch.randn(2, 4)).sum().backward()
        opt.step()
    raise AssertionError(f"unknown place {where}")


EXPECTED = {"body": LookupError, "keyboard-interrupt": KeyboardInterrupt, "forward": IndexError,
            "backward": FloatingPointError, "step": ArithmeticError}


def test_nothing_global_is_left_after_a_normal_exit():
    before = _global_state()
    with watch() as w:
        _exercise()
        during = _global_state()
        assert nn.Module.__call__ is not before["namespaces"]["torch.nn.Module"]["__call__"]
        assert nn.Module.zero_grad is not before["namespaces"]["torch.nn.Module"]["zero_grad"]  # patched at a step
    assert _differences(before, _global_state()) == []
    changed = {line.split(" ")[0] for line in _differences(before, during)}
    # what the watch installs, all of it undone (the check above sees each of these)
    assert {"torch.nn.Module.__call__", "torch.nn.Module.zero_grad", "torch.optim.Optimizer.zero_grad",
            "torch.amp.GradScaler.scale", "torch.amp.GradScaler.unscale_", "torch.amp.GradScaler.update",
            "torch.autograd.backward", "torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_value_",
            "torch.nn.utils.clip_grad.clip_grad_norm_", "torch.nn.utils.clip_grad.clip_grad_value_",
            "registries:", "lintml:"} <= changed
    assert {o.code for o in w.confirmed} >= {"LML101"}


@pytest.mark.parametrize("where", list(EXPECTED))
def test_nothing_global_is_left_after_an_exception(where):
    before = _global_state()
    with pytest.raises(EXPECTED[where]) as caught:
        with watch():
            _exercise()
            _fail_in(where)
    assert _differences(before, _global_state()) == []
    assert caught.type is EXPECTED[where]
    tb = caught.tb
    while tb.tb_next is not None:
        tb = tb.tb_next
    assert Path(tb.tb_frame.f_code.co_filename) == Path(__file__)  # it comes out of the line that raised it


@pytest.mark.parametrize("where", ["forward", "backward", "step"])
def test_an_exception_caught_inside_the_watch_leaves_it_working(where, tmp_path):
    before = _global_state()
    model = nn.Linear(4, 4).eval()
    with watch() as w:
        with pytest.raises(EXPECTED[where]):
            _fail_in(where)
        # no saved-tensor hook of lintml's is left pushed, and no model call half-open
        assert torch._C._autograd._top_saved_tensors_default_hooks(False) is None
        assert watcher_module._tls.depth == 0 and watcher_module._tls.trace is None
        out = model(torch.randn(2, 4))  # still observed: a graph nothing uses
    assert _differences(before, _global_state()) == []
    assert out.requires_grad
    assert "LML101" in {o.code for o in w.confirmed}


def test_a_saved_tensor_hook_of_the_users_is_left_in_place():
    packed = []

    def pack(tensor):
        packed.append(tensor.shape)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        before = _global_state()
        with pytest.raises(LookupError):
            with watch():
                _exercise()
                _fail_in("body")
        assert _differences(before, _global_state()) == []
        assert torch._C._autograd._top_saved_tensors_default_hooks(False)[0] is pack
    assert packed  # the user's hooks saw the forwards; lintml did not replace them
    assert torch._C._autograd._top_saved_tensors_default_hooks(False) is None


# -- a probe that raises -------------------------------------------------------------------

# Every event handler of every probe, and what the probe does at the end (`describe`).
BREAKABLE = [
    "GraphProbe.forward_start", "GraphProbe.track", "GraphProbe.settled", "GraphProbe.describe",
    "StepProbe.step", "StepProbe.step_done", "StepProbe.describe",
    "DecodeProbe.forward_start", "DecodeProbe.finish",
    "HalfOnCpuProbe.forward_start", "HalfOnCpuProbe.describe",
    "AutocastProbe.backward", "AutocastProbe._measure",
    "ClipProbe.clip", "ClipProbe.describe",
]

BROKEN_PROBE_SCRIPT = '''
"""Train, evaluate and decode with one probe at a time made to raise."""
import sys

import torch
from torch import nn

from lintml.runtime import probes, watch

torch.set_num_threads(1)


def workload():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 4))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    results = []
    for step in range(6):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            loss = nn.functional.cross_entropy(model(torch.randn(8, 16)).float(), torch.arange(8) % 4)
        if step < 3:  # float16 autocast without a scaler (LML402)
            loss.backward()
            opt.step()
        else:  # with a scaler, clipping scaled gradients (LML406)
            scaler.scale(loss).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            scaler.step(opt)
            scaler.update()
        results.append(loss.detach())
    results.append(model(torch.randn(8, 16)).detach())  # a graph nothing uses (LML101)
    lm = nn.Sequential(nn.Embedding(32, 8), nn.Linear(8, 32)).eval()
    ids = torch.zeros(1, 1, dtype=torch.long)
    with torch.no_grad():
        for _ in range(4):  # a decoding loop without a cache (LML303)
            ids = torch.cat([ids, lm(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    results.append(ids)
    half = nn.Linear(4, 4).half()
    with torch.no_grad():
        results.append(half(torch.randn(2, 4).half()))  # float16 on the CPU (LML401)
    results.extend(p.detach() for p in model.parameters())
    return results


def same(a, b):
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


expected = workload()
with watch() as w:
    assert same(workload(), expected)
all_codes = sorted({o.code for o in w.confirmed})
print("unbroken", ",".join(all_codes), flush=True)

for spec in sys.argv[1:]:
    class_name, method = spec.split(".")
    cls = getattr(probes, class_name)
    original = cls.__dict__[method]

    def broken(*args, spec=spec, **kwargs):
        raise ZeroDivisionError(f"planted failure in {spec}")

    setattr(cls, method, broken)
    print(f"=== {spec}", file=sys.stderr, flush=True)
    try:
        with watch() as w:
            results = workload()
    finally:
        setattr(cls, method, original)
    sys.stderr.flush()
    codes = sorted({o.code for o in w.confirmed})
    print(spec, same(results, expected), ",".join(w.disabled_probes), ",".join(codes), flush=True)
print("finished", flush=True)
'''


def test_a_probe_that_raises_is_disabled_with_one_warning_and_the_program_finishes(tmp_path):
    from lintml.runtime import probes

    script = tmp_path / "broken_probe.py"
    script.write_text(BROKEN_PROBE_SCRIPT, encoding="utf-8")
    # `-W always`: a warning repeated from the same place is shown every time, not once
    done = subprocess.run([sys.executable, "-W", "always", str(script), *BREAKABLE], capture_output=True,
                          text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "finished"
    unbroken = lines[0].split()
    assert unbroken[0] == "unbroken"
    every_code = unbroken[1].split(",")
    # the unused graph is also an inference forward in training mode (LML201)
    assert every_code == ["LML101", "LML201", "LML303", "LML401", "LML402", "LML406"]

    segments = done.stderr.split("=== ")
    assert "lintml" not in segments[0]  # nothing from the unbroken watch
    by_spec = {segment.split("\n", 1)[0]: segment.split("\n", 1)[1] for segment in segments[1:]}
    assert list(by_spec) == BREAKABLE
    for spec, line in zip(BREAKABLE, lines[1:-1]):
        class_name = spec.split(".")[0]
        cls = getattr(probes, class_name)
        warned = [text for text in by_spec[spec].splitlines() if "lintml.runtime" in text]
        assert warned == [warned[0]], (spec, by_spec[spec])  # one warning ...
        assert (f"lintml.runtime: the {'/'.join(cls.codes)} probe failed "
                f"(ZeroDivisionError: planted failure in {spec}) and is disabled") in warned[0]  # ... naming it
        name, same, disabled, codes = (line.split(" ") + [""])[:4]
        assert (name, same, disabled) == (spec, "True", class_name)  # its results, and only it disabled
        survivors = [c for c in every_code if c not in cls.codes]
        assert codes.split(",") == survivors, spec  # every other probe still reports


# -- DataLoader worker processes -----------------------------------------------------------

LOADER_SCRIPT = '''\
"""Train a small classifier fed by DataLoader workers, then score a held-out split."""
import argparse
import hashlib
import json

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Signals(Dataset):
    def __init__(self, n, offset):
        self.n, self.offset = n, offset

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(self.offset + index)
        x = torch.randn(16, generator=g)
        x = nn.functional.layer_norm(x, (16,)) + 0.1 * torch.tanh(x).cumsum(0)
        return x, int(torch.argmax(x[:4]))


def loader(dataset, args, **kwargs):
    context = None if args.start == "default" else args.start
    return DataLoader(dataset, batch_size=8, num_workers=args.workers, multiprocessing_context=context,
                      persistent_workers=True, timeout=60, **kwargs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--start", default="default")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train = loader(Signals(48, 0), args, shuffle=True, generator=torch.Generator().manual_seed(1))
    losses = []
    for epoch in range(2):
        for x, y in train:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item().hex())
    model.eval()
    correct = 0
    for x, y in loader(Signals(24, 1000), args):
        logits = model(x)
        correct += int((logits.argmax(-1) == y).sum())
    state = {k: hashlib.sha256(v.numpy().tobytes()).hexdigest() for k, v in model.state_dict().items()}
    with open(args.out, "w") as out:
        json.dump({"losses": losses, "correct": correct, "state": state}, out)


if __name__ == "__main__":
    main()
'''
TRAIN_LINE = LOADER_SCRIPT.splitlines().index("            loss = nn.functional.cross_entropy(model(x), y)") + 1
EVAL_LINE = LOADER_SCRIPT.splitlines().index("        logits = model(x)") + 1


def _run(args, cwd, timeout=240):
    # a hung worker fails the DataLoader's own timeout (60 s) first, a hung parent this one
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


# the unwatched run, then `lintml verify`'s own run of the same script, in one process
PLAIN_THEN_VERIFY = """
import json, runpy, sys
from lintml.runtime.verify import verify
script, *args = sys.argv[1:]
sys.argv = [script, *args, "--out", "plain.json"]
runpy.run_path(script, run_name="__main__")
print(json.dumps(verify(script, [*args, "--out", "watched-fork.json"]).to_json()))
"""


def test_a_watched_program_with_dataloader_workers_matches_the_unwatched_one(tmp_path):
    """Persistent workers for each loader: two forked (Linux's default), then one spawned
    (the child imports the script as `__mp_main__` from the path `lintml verify` ran it
    from); `__getitem__` does torch work in the workers. Same results bit for bit, and
    the parent's observations are exactly the planted LML101 at its line and the
    refutations of the training loop's lines."""
    script = tmp_path / "train_workers.py"
    script.write_text(LOADER_SCRIPT, encoding="utf-8")
    fork = _run(["-c", PLAIN_THEN_VERIFY, str(script), "--start", "fork", "--workers", "2"], tmp_path)
    assert fork.returncode == 0, fork.stderr
    expected = json.loads((tmp_path / "plain.json").read_text())
    assert len(expected["losses"]) == 12
    # a spawned worker imports torch: one is enough
    spawn = _run(["-m", "lintml", "verify", "--output-format", "json", str(script), "--start", "spawn",
                  "--workers", "1", "--out", "watched-spawn.json"], tmp_path)
    assert spawn.returncode == 1, spawn.stderr  # 1: something confirmed, and the script did not fail
    for start, done in (("fork", fork), ("spawn", spawn)):
        assert "lintml.runtime" not in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert json.loads((tmp_path / f"watched-{start}.json").read_text()) == expected, start
        report = json.loads(done.stdout)
        assert report["exit_code"] == 1 and not report["script_failed"] and report["disabled_probes"] == {}
        assert [(f["line"], f["code"], f["status"]) for f in report["findings"]] == [
            (EVAL_LINE, "LML101", "confirmed")
        ], start
        assert report["findings"][0]["observation"]["count"] == 3  # one per validation batch
        assert report["runtime_only"] == []
        # every verdict, with how often it was checked: 12 training forwards, backwards and
        # steps (LML501 from the second step on), 3 validation forwards, all in this process
        observed = sorted((o["line"], o["code"], o["status"], o["checked"]) for o in report["observations"])
        backward, step = TRAIN_LINE + 1, TRAIN_LINE + 2
        assert observed == [
            (TRAIN_LINE, "LML101", "refuted", 12), (TRAIN_LINE, "LML401", "refuted", 12),
            (backward, "LML402", "refuted", 12),
            (step, "LML202", "refuted", 12), (step, "LML203", "refuted", 12), (step, "LML403", "refuted", 12),
            (step, "LML501", "refuted", 11),
            (EVAL_LINE, "LML101", "confirmed", 3), (EVAL_LINE, "LML201", "refuted", 3),
            (EVAL_LINE, "LML401", "refuted", 3),
        ], start


FORK_LOCK_SCRIPT = '''\
"""Fork DataLoader workers while another thread holds lintml's locks, as a thread that
is inside a probe at that moment does; the workers call a module and take the locks."""
import threading

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lintml.runtime import watch, watcher

torch.set_num_threads(1)
augment = nn.Linear(4, 4)


class Augmented(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, index):
        free = watcher._install_lock.acquire(timeout=20)
        if free:
            watcher._install_lock.release()
        out = augment(torch.full((4,), float(index)))  # with grad: the probes tally under the watch's lock
        return out.detach(), free


with watch() as w:
    held, release = threading.Event(), threading.Event()

    def hold():
        with w._lock, watcher._install_lock:
            held.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    batches = iter(DataLoader(Augmented(), batch_size=4, num_workers=2, multiprocessing_context="fork", timeout=30))
    release.set()
    holder.join()
    results = list(batches)
assert all(bool(free.all()) for _, free in results), results
print("batches", len(results))
'''


def test_a_forked_worker_does_not_inherit_a_lock_another_thread_held(tmp_path):
    script = tmp_path / "fork_lock.py"
    script.write_text(FORK_LOCK_SCRIPT, encoding="utf-8")
    done = _run([str(script)], tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr  # before the fix: "DataLoader timed out after 30 seconds"
    assert done.stdout.split() == ["batches", "2"]
