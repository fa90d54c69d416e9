"""`watch()`: run PyTorch code with lintml's runtime probes listening.

While at least one watch is active, lintml has:
- replaced `torch.nn.Module.__call__` by a pass-through that notices the outermost
  module call of each thread (submodule calls go straight to PyTorch's own code),
  and, around an outermost call that records a graph, pushed a saved-tensor hook pair
  that counts the bytes saved for backward (the packed value is a `detach()`ed alias
  of the same storage, so nothing is copied);
- registered global optimizer step pre/post hooks;
- wrapped `torch.autograd.backward`, `torch.nn.utils.clip_grad_norm_` /
  `clip_grad_value_`, `Optimizer.zero_grad`, `Module.zero_grad` and the GradScaler's
  `scale`, `unscale_` and `update`, each calling the original with the same arguments.

All of it is undone when the last watch exits, also when its body raises. A probe that
raises is disabled for the rest of that watch with one warning; the user's call goes on.
A forked child (a DataLoader worker) inherits the watch, with fresh locks.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
import warnings
import weakref
from typing import Iterable

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from lintml.runtime import probes as probes_module
from lintml.runtime.observations import Observation
from lintml.runtime.sites import Site, SiteFinder


class _ThreadState(threading.local):
    depth = 0  # 1 while this thread is inside an outermost module call
    trace = None  # the Trace whose saved tensors are being counted
    fp16_models = None
    autocast_seen = False
    forwards_seen = False


_tls = _ThreadState()
_get_ident = threading.get_ident
_install_lock = threading.RLock()
_active: list["Watch"] = []
_undo: list = []
_ORIG_CALL = nn.Module.__call__
_finder: SiteFinder | None = None
_INLINE = False
# losses returned by GradScaler.scale, by id (a WeakSet would compare tensors with `==`,
# which is elementwise)
_scaled_losses: dict[int, weakref.ref] = {}


def _remember_scaled(tensor) -> None:
    key = id(tensor)

    def forget(ref, key=key):
        if _scaled_losses.get(key) is ref:
            del _scaled_losses[key]

    _scaled_losses[key] = weakref.ref(tensor, forget)


def _was_scaled(tensor) -> bool:
    ref = _scaled_losses.get(id(tensor))
    return ref is not None and ref() is tensor


_scaler_state: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_graph_task_id = getattr(torch._C, "_current_graph_task_id", None)


class _ScalerState:
    __slots__ = ("scaled", "unscaled")

    def __init__(self) -> None:
        self.scaled = False
        self.unscaled = False


# -- one outermost model call --------------------------------------------------------


class _Used:
    """Registered as a pre-hook on the output's autograd nodes: called when a backward
    reaches them; its lifetime is the graph's (weakly referenced by the trace)."""

    __slots__ = ("trace", "__weakref__")

    def __init__(self, trace) -> None:
        self.trace = trace

    def __call__(self, grad_outputs):
        self.trace.used = True


class Trace:
    """What the watch learnt about one outermost model call. The class attributes are
    the defaults; a call sets only what differs (cheaper than filling 25 slots)."""

    saved_bytes = 0
    saved_count = 0
    graph = False
    used = False
    used_before_pile = False
    piled = 0
    pile_bytes = 0
    pile_count = 0
    node_ref = None
    settled = False
    at_exit = False
    model_training = None
    training_modules = ()
    input_len = None
    batch = -1
    cached = False
    input_ids = None
    half_params = None
    sampled = False  # its saved tensors were counted (else credited with the site's mean)

    def __init__(self, site, via_generate, model, grad, watchers) -> None:
        self.site = site
        self.via_generate = via_generate
        self.thread = _get_ident()
        self.model_id = id(model)
        self.grad = grad
        self.watchers = watchers

    def graph_freed(self, _ref=None) -> None:
        self.settle()

    def settle(self, at_exit: bool = False) -> None:
        if self.settled:
            return
        self.settled = True
        self.at_exit = at_exit
        for watch in self.watchers:
            watch._settled(self)


def _pack(tensor):
    trace = _tls.trace
    if trace is not None:
        trace.saved_count += 1
        # a parameter (or a view of one, like a Linear's `weight.t()`) costs nothing extra
        base = tensor._base
        if base is None:
            base = tensor
        if not (base.requires_grad and base.is_leaf):
            trace.saved_bytes += tensor.nbytes
    return tensor.detach()


def _unpack(tensor):
    return tensor


def _output_nodes(output, found: list, depth: int = 0) -> None:
    if len(found) >= 16 or depth > 3:
        return
    if isinstance(output, torch.Tensor):
        node = output.grad_fn
        if node is not None and not any(node is seen for seen in found):
            found.append(node)
    elif isinstance(output, (tuple, list)):
        for item in output[:16]:
            _output_nodes(item, found, depth + 1)
    elif isinstance(output, dict):
        for item in list(output.values())[:16]:
            _output_nodes(item, found, depth + 1)


def _input_shape(args, kwargs):
    """(length, batch, a cache was passed, the token ids or None) of a model call's
    token input, or None."""
    ids = kwargs.get("input_ids")
    if ids is None:
        for arg in args[:2]:
            if isinstance(arg, torch.Tensor) and not arg.is_floating_point() and arg.dim() in (1, 2):
                ids = arg
                break
    if isinstance(ids, torch.Tensor) and ids.dim() in (1, 2):
        length = ids.shape[-1]
        batch = ids.shape[0] if ids.dim() == 2 else 1
    else:
        ids = None
        embeds = kwargs.get("inputs_embeds")
        if not (isinstance(embeds, torch.Tensor) and embeds.dim() == 3):
            return None
        batch, length = embeds.shape[0], embeds.shape[1]
    # whether a cache object was passed, empty or not: the probe judges by the input's
    # length (a step that feeds one new position uses its cache; one that re-feeds the
    # whole prefix plus one does not, cache or no cache)
    cached = kwargs.get("past_key_values", kwargs.get("past")) is not None
    return length, batch, cached, ids


_any_autocast = getattr(torch._C, "_is_any_autocast_enabled", None)


def _autocast_dtype():
    """float16 / bfloat16 when autocast is on for cuda or cpu, else None."""
    if _any_autocast is not None and not _any_autocast():
        return None
    for device in ("cuda", "cpu"):
        if torch.is_autocast_enabled(device):
            return torch.get_autocast_dtype(device)
    return None


def _in_backward() -> bool:
    return _graph_task_id is not None and _graph_task_id() != -1


def _outermost_call(module, args, kwargs):
    watchers = tuple(_active)
    if not watchers:  # the last watch is exiting in another thread
        return _ORIG_CALL(module, *args, **kwargs)
    tls = _tls
    tls.depth = 1
    try:
        trace = None
        hooks = None
        try:
            if not _in_backward():
                site, via_generate = _finder.find(2)
                grad = torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
                trace = Trace(site, via_generate, module, grad, watchers)
                for watch in watchers:
                    watch._forward_start(trace, module, args, kwargs)
                if grad and any(w._wants_graph for w in watchers) and _sample(trace, module):
                    _push_hooks(_pack, _unpack)
                    hooks = True
                    tls.trace = trace
        except Exception as error:  # never let lintml break the user's call
            _internal_error("model-call bookkeeping", error)
            trace = None
            if hooks:
                tls.trace = None
                _pop_hooks()
                hooks = None
        try:
            output = _ORIG_CALL(module, *args, **kwargs)
        finally:
            if hooks:
                tls.trace = None
                _pop_hooks()
    finally:
        tls.depth = 0
    if trace is not None:
        try:
            _forward_end(trace, output)
        except Exception as error:
            _internal_error("model-call bookkeeping", error)
    return output


_top_hooks = torch._C._autograd._top_saved_tensors_default_hooks
_push_hooks = torch._C._autograd._push_saved_tensors_default_hooks
_pop_hooks = torch._C._autograd._pop_saved_tensors_default_hooks
_hooks_enabled = torch._C._autograd._saved_tensors_hooks_is_enabled
_is_compiling = torch.compiler.is_compiling


def _compiled(module) -> bool:
    """A `torch.compile`d module (dynamo's OptimizedModule, named rather than imported:
    importing dynamo takes seconds), or a call made while compiling: saved-tensor hooks
    there would change what dynamo traces."""
    return type(module).__name__ == "OptimizedModule" or _is_compiling()


# Counting saved tensors costs: autograd calls the hooks for every tensor it saves and
# unpacks, which made a small CNN's training step about 4% slower. So the bytes are
# measured on the first calls of each (site, model) and then on one call in SAMPLE_EVERY,
# and the other calls of that site are credited with the measured mean.
SAMPLE_FIRST = 3
SAMPLE_EVERY = 64
_graph_stats: dict[tuple, list] = {}  # (site, model id) -> [calls, measured calls, bytes, tensors]


def _sample(trace, module) -> bool:
    """Whether to count this call's saved tensors (and it can be done safely)."""
    stats = _graph_stats.get((trace.site, trace.model_id))
    calls = stats[0] if stats is not None else 0
    if calls >= SAMPLE_FIRST and calls % SAMPLE_EVERY:
        return False
    # not inside a compiled module, and only where no other saved-tensor hooks
    # (activation offloading, checkpointing) are active: ours would replace theirs
    if _compiled(module) or _top_hooks(False) is not None or not _hooks_enabled():
        return False
    trace.sampled = True
    return True


def _credit_saved(trace) -> None:
    key = (trace.site, trace.model_id)
    stats = _graph_stats.get(key)
    if stats is None:
        stats = _graph_stats[key] = [0, 0, 0, 0]
    stats[0] += 1
    if trace.sampled:
        stats[1] += 1
        stats[2] += trace.saved_bytes
        stats[3] += trace.saved_count
    elif stats[1]:
        trace.saved_bytes = stats[2] // stats[1]
        trace.saved_count = -(-stats[3] // stats[1])  # at least one when any was saved


def _forward_end(trace, output) -> None:
    if trace.grad:
        _credit_saved(trace)
        nodes: list = []
        _output_nodes(output, nodes)
        if nodes and trace.saved_count:
            used = _Used(trace)
            for node in nodes:
                node.register_prehook(used)
            trace.graph = True
            trace.node_ref = weakref.ref(used, trace.graph_freed)
            for watch in trace.watchers:
                watch._track(trace)
            return
    trace.settle()


def _patched_call(self, *args, **kwargs):
    if _tls.depth:
        # what `Module._wrapped_call_impl` does, without a frame of ours in between:
        # submodule calls are most calls, and cost the same as without the watch
        compiled = self._compiled_call_impl
        if compiled is not None:
            return compiled(*args, **kwargs)
        return self._call_impl(*args, **kwargs)
    return _outermost_call(self, args, kwargs)


def _plain_patched_call(self, *args, **kwargs):
    if _tls.depth:
        return _ORIG_CALL(self, *args, **kwargs)
    return _outermost_call(self, args, kwargs)


def _inlines_wrapped_call() -> bool:
    """Whether `_patched_call` may inline `_wrapped_call_impl` on this torch: only when
    it is the two-way dispatch it was written against."""
    import inspect

    try:
        source = inspect.getsource(_ORIG_CALL)
    except (OSError, TypeError):
        return False
    return (
        _ORIG_CALL.__name__ == "_wrapped_call_impl"
        and "self._compiled_call_impl(*args, **kwargs)" in source
        and "self._call_impl(*args, **kwargs)" in source
        and source.count("return") == 2
    )


def _warn(message: str) -> None:
    """A RuntimeWarning, or a line on stderr where warnings are errors (`-W error`): a
    lintml problem must never raise into the user's program."""
    try:
        warnings.warn(message, RuntimeWarning, stacklevel=4)
    except Warning:
        print(message, file=sys.stderr)


def _internal_error(what: str, error: BaseException) -> None:
    _warn(f"lintml.runtime: {what} failed and was skipped ({type(error).__name__}: {error})")


# -- other events ------------------------------------------------------------------------


class BackwardEvent:
    __slots__ = ("site", "scaled", "fp16_models", "autocast_seen", "forwards_seen", "after")

    def __init__(self, site, scaled, fp16_models, autocast_seen, forwards_seen) -> None:
        self.site = site
        self.scaled = scaled
        self.fp16_models = fp16_models
        self.autocast_seen = autocast_seen
        self.forwards_seen = forwards_seen
        self.after: list = []


def _wrap_backward(original):
    def backward(tensors, *args, **kwargs):
        if not _active or _in_backward():
            return original(tensors, *args, **kwargs)
        event = None
        try:
            site, _ = _finder.find(1)
            roots = tensors if isinstance(tensors, (tuple, list)) else (tensors,)
            scaled = any(isinstance(t, torch.Tensor) and _was_scaled(t) for t in roots)
            fp16 = _tls.fp16_models or []
            event = BackwardEvent(site, scaled, [m for m in (r() for r in fp16) if m is not None],
                                  _tls.autocast_seen, _tls.forwards_seen)
            _tls.fp16_models = []
            _tls.autocast_seen = False
            _tls.forwards_seen = False
            for watch in tuple(_active):
                watch._dispatch("backward", event)
        except Exception as error:
            _internal_error("backward bookkeeping", error)
            event = None
        result = original(tensors, *args, **kwargs)
        if event is not None:
            for after in event.after:
                try:
                    after(event)
                except Exception as error:
                    # a probe's own measurement: that probe fails, once, like any other
                    probe = getattr(after, "__self__", None)
                    owner = getattr(probe, "watch", None)
                    if isinstance(owner, Watch):
                        owner._disable(probe, error)
                    else:
                        _internal_error("backward evidence", error)
        return result

    return backward


def _wrap_clip(original):
    def clip(*args, **kwargs):
        if _active:
            try:
                site, _ = _finder.find(1)
                for watch in tuple(_active):
                    watch._dispatch("clip", site)
            except Exception as error:
                _internal_error("clip bookkeeping", error)
        return original(*args, **kwargs)

    clip.__wrapped__ = original
    clip.__name__ = original.__name__
    clip.__doc__ = original.__doc__
    return clip


def _step_pre_hook(optimizer, args, kwargs):
    if not _active:
        return None
    try:
        _watch_module_zero_grad()
        site, _ = _finder.find(1)
        for watch in tuple(_active):
            watch._dispatch("step", optimizer, site)
    except Exception as error:
        _internal_error("optimizer-step bookkeeping", error)
    return None


def _step_post_hook(optimizer, args, kwargs):
    if _active:
        for watch in tuple(_active):
            watch._dispatch("step_done", optimizer)
    return None


def _mark_zeroed(params) -> None:
    seq = _next_seq()
    for watch in tuple(_active):
        marks = watch._zero_marks
        for p in params:
            marks[id(p)] = seq


_seq = itertools.count()


def _next_seq() -> int:
    return next(_seq)


def _wrap_optimizer_zero_grad(original):
    def zero_grad(self, *args, **kwargs):
        if _active:
            try:
                _mark_zeroed([p for group in self.param_groups for p in group["params"]])
            except Exception as error:
                _internal_error("zero_grad bookkeeping", error)
        return original(self, *args, **kwargs)

    zero_grad.__wrapped__ = original
    return zero_grad


def _wrap_module_zero_grad(original):
    def zero_grad(self, *args, **kwargs):
        if _active:
            try:
                _mark_zeroed(list(self.parameters()))
            except Exception as error:
                _internal_error("zero_grad bookkeeping", error)
        return original(self, *args, **kwargs)

    zero_grad.__wrapped__ = original
    return zero_grad


def _scaler(scaler) -> _ScalerState:
    state = _scaler_state.get(scaler)
    if state is None:
        state = _scaler_state[scaler] = _ScalerState()
    return state


def _wrap_scale(original):
    def scale(self, outputs):
        result = original(self, outputs)
        if _active and self.is_enabled():
            try:
                _scaler(self).scaled = True
                if isinstance(result, torch.Tensor):
                    _remember_scaled(result)
            except Exception as error:
                _internal_error("GradScaler bookkeeping", error)
        return result

    scale.__wrapped__ = original
    return scale


def _wrap_unscale(original):
    def unscale_(self, optimizer):
        result = original(self, optimizer)
        if _active:
            _scaler(self).unscaled = True
        return result

    unscale_.__wrapped__ = original
    return unscale_


def _wrap_update(original):
    def update(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if _active:
            state = _scaler(self)
            state.scaled = state.unscaled = False
        return result

    update.__wrapped__ = original
    return update


def _patch(owner, name, make) -> None:
    original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    setattr(owner, name, make(original))
    _undo.append(lambda: setattr(owner, name, original))


_module_zero_grad_patched = False


def _watch_module_zero_grad() -> None:
    """`Module.zero_grad` is wrapped at the first optimizer step, not on entry: an
    assignment to `nn.Module` invalidates the interpreter's caches for every module
    class, which costs inference-only code for nothing (a zero_grad before the first
    step cannot matter to LML501, which compares a step with the one before)."""
    global _module_zero_grad_patched
    with _install_lock:
        if not _module_zero_grad_patched and _active:
            _patch(nn.Module, "zero_grad", _wrap_module_zero_grad)
            _module_zero_grad_patched = True


def _install() -> None:
    global _finder, _INLINE
    if _finder is None:
        _finder = SiteFinder()
        _INLINE = _inlines_wrapped_call()
    try:
        nn.Module.__call__ = _patched_call if _INLINE else _plain_patched_call
        _undo.append(lambda: setattr(nn.Module, "__call__", _ORIG_CALL))
        _undo.append(register_optimizer_step_pre_hook(_step_pre_hook).remove)
        _undo.append(register_optimizer_step_post_hook(_step_post_hook).remove)
        _patch(torch.autograd, "backward", _wrap_backward)
        import torch.nn.utils.clip_grad as clip_grad_module

        for owner in (torch.nn.utils, clip_grad_module):
            _patch(owner, "clip_grad_norm_", _wrap_clip)
            _patch(owner, "clip_grad_value_", _wrap_clip)
        _patch(torch.optim.Optimizer, "zero_grad", _wrap_optimizer_zero_grad)
        from torch.amp.grad_scaler import GradScaler

        _patch(GradScaler, "scale", _wrap_scale)
        _patch(GradScaler, "unscale_", _wrap_unscale)
        _patch(GradScaler, "update", _wrap_update)
    except BaseException:
        _uninstall()
        raise


def _uninstall() -> None:
    global _module_zero_grad_patched
    _module_zero_grad_patched = False
    # what was learnt while watching is stale for the next watch
    _graph_stats.clear()
    _scaler_state.clear()
    _scaled_losses.clear()
    errors = []
    while _undo:
        undo = _undo.pop()
        try:
            undo()
        except Exception as error:  # keep undoing the rest
            errors.append(error)
    if errors:
        raise errors[0]


def _after_fork_in_child() -> None:
    """A forked child (a DataLoader worker) has only the thread that forked: a lock that
    another thread of the parent held at that moment would never be released in it, and
    the child's first model call would wait on it for ever. The child gets fresh locks;
    it goes on watching what it runs (its observations stay in the child)."""
    global _install_lock
    _install_lock = threading.RLock()
    for watch in _active:
        watch._lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- the public object -----------------------------------------------------------------


class Watch(contextlib.ContextDecorator):
    """Context manager (and decorator) that runs the probes over the code inside it.

    `codes` limits the probes to those LML codes (default: every probe). After the
    block, `observations` lists what the probes saw (confirmed and refuted, per call
    site), `confirmed` the confirmed ones, and `report()` prints them.
    """

    def __init__(self, codes: Iterable[str] | None = None) -> None:
        known = probes_module.ALL_CODES
        if codes is None:
            self._enabled = frozenset(known)
        else:
            wanted = {c.upper() for c in codes}
            unknown = sorted(wanted - set(known))
            if unknown:
                raise ValueError(f"no runtime probe for {', '.join(unknown)}; probes exist for {', '.join(known)}")
            self._enabled = frozenset(wanted)
        self._lock = threading.RLock()
        self._probes = [p(self) for p in probes_module.PROBES if self._enabled.intersection(p.codes)]
        self._graph_probe = next((p for p in self._probes if isinstance(p, probes_module.GraphProbe)), None)
        self._wants_graph = self._graph_probe is not None
        self._wants_modes = bool(self._enabled & {"LML201", "LML202", "LML203"})
        self._wants_decode = bool(self._enabled & {"LML301", "LML303"})
        self._wants_half = "LML401" in self._enabled
        self._modes = probes_module.MODELS
        self._models: weakref.WeakSet = weakref.WeakSet()
        self._zero_marks: dict[int, int] = {}
        self._live: set = set()
        self._disabled: dict[str, str] = {}
        self._by_event: dict[str, list] = {}
        self._depth = 0
        self._closed = False
        self._observations: list[Observation] | None = None

    # context protocol
    def __enter__(self) -> "Watch":
        with _install_lock:
            if self._depth == 0:
                self._closed = False
                self._observations = None
                if not _active:
                    _install()
                _active.append(self)
            self._depth += 1
        return self

    def __exit__(self, *exc) -> bool:
        with _install_lock:
            self._depth -= 1
            if self._depth:
                return False
            try:
                _active.remove(self)
                if not _active:
                    _uninstall()
            finally:
                self._finish()
        return False

    def _recreate_cm(self):  # ContextDecorator: the same watch collects every call
        return self

    # events from the hooks
    def _forward_start(self, trace: Trace, module, args, kwargs) -> None:
        if self._closed:
            return
        _tls.forwards_seen = True
        dtype = _autocast_dtype()
        if dtype is not None:
            _tls.autocast_seen = True
            if dtype == torch.float16 and trace.grad:
                fp16 = _tls.fp16_models
                if fp16 is None:
                    fp16 = _tls.fp16_models = []
                if not any(r() is module for r in fp16):
                    fp16.append(weakref.ref(module))
        modes = self._modes
        if trace.grad and modes.params(module):
            self._models.add(module)
        if self._wants_modes and trace.model_training is None:
            trace.model_training = module.training
            trace.training_modules = tuple(modes.in_mode(module, True)) if module.training else ()
        if self._wants_decode and trace.input_len is None:
            shape = _input_shape(args, kwargs)
            if shape is not None:
                trace.input_len, trace.batch, trace.cached, trace.input_ids = shape
        if self._wants_half and trace.half_params is None:
            trace.half_params = self._modes.half_params(module)
        self._dispatch("forward_start", trace)
        trace.input_ids = None  # the decode probe keeps what it needs; the trace may live long

    def _track(self, trace: Trace) -> None:
        if self._closed:
            return
        with self._lock:
            self._live.add(trace)
        probe = self._graph_probe
        if probe is not None and type(probe).__name__ not in self._disabled:
            try:
                probe.track(trace)
            except Exception as error:
                self._disable(probe, error)

    def _settled(self, trace: Trace) -> None:
        if self._closed and not trace.at_exit:
            return
        if trace.graph:  # only graphs outlive their call and sit in `_live`
            with self._lock:
                self._live.discard(trace)
        self._dispatch("settled", trace)

    def _scalers(self):
        return list(_scaler_state.items())

    def _next_seq(self) -> int:
        return _next_seq()

    def _handlers(self, event: str) -> list:
        """The probes that handle `event` (those that override the base no-op)."""
        handlers = self._by_event.get(event)
        if handlers is None:
            base = getattr(probes_module.Probe, event)
            handlers = self._by_event[event] = [
                (probe, getattr(probe, event)) for probe in self._probes
                if getattr(type(probe), event) is not base and type(probe).__name__ not in self._disabled
            ]
        return handlers

    def _dispatch(self, event: str, *args) -> None:
        if self._closed:
            return
        for probe, handler in self._handlers(event):
            try:
                handler(*args)
            except Exception as error:
                self._disable(probe, error)

    def _disable(self, probe, error: BaseException) -> None:
        name = type(probe).__name__
        with self._lock:  # two threads failing in one probe: one of them warns
            if name in self._disabled:
                return
            self._disabled[name] = f"{type(error).__name__}: {error}"
            self._by_event.clear()
        _warn(
            f"lintml.runtime: the {'/'.join(probe.codes)} probe failed ({type(error).__name__}: {error}) "
            "and is disabled for the rest of this watch"
        )

    def _finish(self) -> None:
        with self._lock:
            live = list(self._live)
        for trace in live:
            trace.at_exit = True
            self._settled(trace)
        self._dispatch("finish")
        self._closed = True
        observations = []
        for probe in self._probes:
            if type(probe).__name__ in self._disabled:
                continue
            try:
                observations.extend(probe.observations())
            except Exception as error:
                self._disable(probe, error)
        observations.sort(key=lambda o: (o.site.filename, o.site.line, o.code))
        self._observations = observations

    # results
    @property
    def observations(self) -> list[Observation]:
        """Every verdict, confirmed and refuted, sorted by file, line and code."""
        if self._observations is None:
            raise RuntimeError("observations are ready when the watch has exited")
        return list(self._observations)

    @property
    def confirmed(self) -> list[Observation]:
        return [o for o in self.observations if o.confirmed]

    @property
    def disabled_probes(self) -> dict[str, str]:
        """Probes that failed, by class name, with the error that disabled them."""
        return dict(self._disabled)

    def report(self, file=None, refuted: bool = False) -> None:
        """Print the confirmed observations (and the refuted ones with `refuted=True`)."""
        file = sys.stdout if file is None else file
        shown = [o for o in self.observations if refuted or o.confirmed]
        for observation in shown:
            print(observation.render(), file=file)
        confirmed = sum(o.confirmed for o in self.observations)
        refuted_count = len(self.observations) - confirmed
        print(f"lintml runtime: {confirmed} confirmed, {refuted_count} refuted", file=file)

    def to_json(self) -> list[dict]:
        return [o.to_json() for o in self.observations]


def watch(codes: Iterable[str] | None = None) -> Watch:
    """Watch the PyTorch code run inside `with watch() as w:` (or a function decorated
    with `@watch()`). See `Watch`."""
    return Watch(codes)


__all__ = ["Watch", "watch", "Site"]
