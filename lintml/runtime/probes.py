"""The probes: one per confirmable rule, keyed by the same LML codes as the checks.

Each probe turns the events that `watch.py` delivers (a model call with its trace, a
settled graph, a backward, an optimizer step, a gradient clip) into verdicts at call
sites: "confirmed" when the rule's condition held there, "refuted" when the probe
checked it and it did not. A probe never changes a tensor, the grad mode or a module's
state; what it reads it reads after the user's operation, or beside it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import torch
from torch import nn

from lintml.runtime.observations import (
    CONFIRMED,
    REFUTED,
    Observation,
    format_bytes,
    format_names,
)
from lintml.runtime.sites import Site


@dataclass
class Tally:
    """Everything one probe saw for one (code, site)."""

    hits: int = 0
    checked: int = 0
    sums: dict = field(default_factory=dict)
    maxes: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)  # ordered set

    def add(self, hit: bool, sums=None, maxes=None, names=()) -> None:
        self.checked += 1
        if hit:
            self.hits += 1
        for key, value in (sums or {}).items():
            self.sums[key] = self.sums.get(key, 0) + value
        for key, value in (maxes or {}).items():
            if value > self.maxes.get(key, float("-inf")):
                self.maxes[key] = value
        for name in names:
            self.names.setdefault(name, None)


class Probe:
    """Base: tallies per (code, site) and turns them into observations."""

    codes: tuple[str, ...] = ()

    def __init__(self, watch) -> None:
        self.watch = watch
        self.tallies: dict[tuple[str, Site], Tally] = {}

    def tally(self, code: str, site: Site | None, hit: bool, **data) -> None:
        if site is None or code not in self.watch._enabled:
            return
        key = (code, site)
        with self.watch._lock:
            tally = self.tallies.get(key)
            if tally is None:
                tally = self.tallies[key] = Tally()
            if data:
                tally.add(hit, **data)
            else:  # the common case, a refutation: no figures to merge
                tally.checked += 1
                tally.hits += hit

    def observations(self) -> list[Observation]:
        result = []
        with self.watch._lock:
            items = list(self.tallies.items())
        for (code, site), tally in items:
            status = CONFIRMED if tally.hits else REFUTED
            message, evidence = self.describe(code, tally, status == CONFIRMED)
            result.append(Observation(code, status, site, tally.hits, tally.checked, message, evidence))
        return result

    def describe(self, code: str, tally: Tally, confirmed: bool) -> tuple[str, dict]:
        raise NotImplementedError

    # events; a probe overrides those it needs
    def forward_start(self, trace) -> None: ...
    def settled(self, trace) -> None: ...
    def backward(self, event) -> None: ...
    def step(self, optimizer, site: Site | None) -> None: ...
    def step_done(self, optimizer) -> None: ...
    def clip(self, site: Site | None) -> None: ...
    def finish(self) -> None: ...


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# -- mode-dependent modules ------------------------------------------------------


def _mode_dependent(module: nn.Module) -> bool:
    """Modules whose output differs between train and eval mode."""
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return module.p > 0
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return True
    if isinstance(module, nn.modules.instancenorm._InstanceNorm):
        return bool(module.track_running_stats)
    if isinstance(module, (nn.MultiheadAttention, nn.RNNBase)):
        return getattr(module, "dropout", 0) > 0
    return False


class ModelInfo:
    """What the probes memoise about one model: its parameters, its mode-dependent
    submodules (by qualified name), its float16 census."""

    __slots__ = ("ref", "params", "dependent", "half_key", "half")

    def __init__(self, model: nn.Module, ref) -> None:
        self.ref = ref
        self.params = list(model.parameters())
        self.dependent: list | None = None
        self.half_key = None
        self.half = None


class ModeIndex:
    """Per model: memoised facts, found by `id()` in a plain dict (a WeakKeyDictionary
    look-up costs a weak reference on every model call); an entry goes with its model."""

    def __init__(self) -> None:
        self._infos: dict[int, ModelInfo] = {}

    def info(self, model: nn.Module) -> ModelInfo:
        key = id(model)
        info = self._infos.get(key)
        if info is None or info.ref() is not model:
            infos = self._infos

            def forget(ref, key=key):
                if infos.get(key) is not None and infos[key].ref is ref:
                    del infos[key]

            info = infos[key] = ModelInfo(model, weakref.ref(model, forget))
        return info

    def params(self, model: nn.Module) -> list:
        return self.info(model).params

    def dependent(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        info = self.info(model)
        found = info.dependent
        if found is None:
            found = info.dependent = [
                (f"{name or type(model).__name__} ({type(m).__name__})", m)
                for name, m in model.named_modules() if _mode_dependent(m)
            ]
        return found

    def in_mode(self, model: nn.Module, training: bool) -> list[str]:
        return [name for name, m in self.dependent(model) if m.training is training]

    def half_params(self, model: nn.Module):
        """(float16 parameters, their device type), or None for a model without
        parameters; recounted when the first or last parameter's dtype or device
        changes (`.half()`, `.to(...)`, `.cuda()` change them)."""
        info = self.info(model)
        params = info.params
        if not params:
            return None
        first, last = params[0], params[-1]
        key = (first.dtype, last.dtype, first.is_cpu, last.is_cpu)
        if info.half_key != key:
            count = 0
            device = None
            for p in params:
                if p.dtype == torch.float16:
                    count += 1
                    if device is None:
                        device = p.device.type
            info.half = (count, device or first.device.type)
            info.half_key = key
        return info.half


MODELS = ModeIndex()  # shared by every watch: the facts are the model's, not the watch's


# -- LML101, LML102, LML201: what happened to a forward's graph --------------------


class GraphProbe(Probe):
    """LML101 (a graph nobody backpropagated), LML102 (graphs piling up across
    iterations), LML201 (an inference forward with dropout/batch-norm in train mode)."""

    codes = ("LML101", "LML102", "LML201")

    def __init__(self, watch) -> None:
        super().__init__(watch)
        # graphs still alive, per (site, model): a loss module called on the same line as
        # the model (`loss_fn(model(x), y)`) keeps graphs of its own
        self.live: dict[tuple, set] = {}

    def forward_start(self, trace) -> None:
        if trace.grad and trace.site is not None:
            older = self.live.get((trace.site, trace.model_id))
            if older and len(older) >= 2:
                held = 0
                for other in older:
                    other.piled = max(other.piled, len(older))
                    if other.used:
                        other.used_before_pile = True
                    else:
                        held += other.saved_bytes
                trace.pile_bytes = held
                trace.pile_count = len(older)

    def track(self, trace) -> None:
        """Called by the watch when a graph outlives its forward."""
        self.live.setdefault((trace.site, trace.model_id), set()).add(trace)

    def settled(self, trace) -> None:
        site = trace.site
        live = self.live.get((site, trace.model_id))
        if live is not None:
            live.discard(trace)
        inference = False
        if not trace.grad:
            self.tally("LML101", site, False)
            inference = True
        elif trace.graph and trace.saved_bytes:
            if trace.used:
                self.tally("LML101", site, False)
            else:
                self.tally(
                    "LML101",
                    site,
                    True,
                    sums={"saved_bytes": trace.saved_bytes, "saved_tensors": trace.saved_count,
                          "held_at_exit": int(trace.at_exit)},
                    maxes={"largest_call_bytes": trace.saved_bytes},
                )
                inference = True
            if trace.piled:
                hit = (not trace.used) or trace.used_before_pile
                self.tally("LML102", site, hit, maxes={"graphs_alive": trace.piled + 1, "bytes_held": trace.pile_bytes})
        else:
            # grad on but nothing saved for backward (frozen parameters, no grad inputs)
            self.tally("LML101", site, False)
        if inference and trace.model_training is not None:
            training = trace.training_modules
            if trace.model_training and training:
                self.tally("LML201", site, True, names=training)
            else:
                self.tally("LML201", site, False)

    def describe(self, code, tally, confirmed):
        if code == "LML101":
            if not confirmed:
                return (f"{_plural(tally.checked, 'forward')} here ran without grad or fed a backward", {})
            total = tally.sums.get("saved_bytes", 0)
            evidence = {
                "forwards": tally.hits,
                "saved_bytes": total,
                "saved_tensors": tally.sums.get("saved_tensors", 0),
                "largest_call_bytes": tally.maxes.get("largest_call_bytes", 0),
                "held_at_exit": tally.sums.get("held_at_exit", 0),
            }
            message = (
                f"{_plural(tally.hits, 'forward')} ran with grad enabled and no backward used the graph; "
                f"{format_bytes(total)} saved for backward in all "
                f"(largest call {format_bytes(evidence['largest_call_bytes'])})"
            )
            return message, evidence
        if code == "LML102":
            if not confirmed:
                return ("graphs from this forward piled up only until one backward used them all", {})
            alive = int(tally.maxes.get("graphs_alive", 0))
            held = tally.maxes.get("bytes_held", 0)
            evidence = {"graphs_alive": alive, "bytes_held": held}
            held_text = (
                f"{format_bytes(held)} of saved tensors held" if held
                else "a backward freed their saved tensors, their autograd nodes stay"
            )
            return (
                f"up to {alive} autograd graphs from this forward were alive at once across iterations "
                f"({held_text}; kept by a value that outlives the iteration)",
                evidence,
            )
        # LML201
        if not confirmed:
            forwards = _plural(tally.checked, "inference forward")
            return (f"{forwards} here ran with every mode-dependent module in eval mode (or none)", {})
        names = list(tally.names)
        return (
            f"{_plural(tally.hits, 'inference forward')} ran with mode-dependent modules in training mode: "
            f"{format_names(names)}",
            {"forwards": tally.hits, "modules": names},
        )


# -- LML202, LML203, LML403, LML501: what an optimizer step stepped ----------------


class _OptimizerState:
    __slots__ = ("steps", "trained_models", "last_grads", "last_step_seq", "__weakref__")

    def __init__(self) -> None:
        self.steps = 0
        self.trained_models: weakref.WeakSet = weakref.WeakSet()  # models seen in train mode at a step
        self.last_grads: dict[int, weakref.ref] = {}
        self.last_step_seq = -1


def _params(optimizer):
    for group in optimizer.param_groups:
        yield from group["params"]


class StepProbe(Probe):
    """LML202/LML203 (stepping a model in eval mode), LML403 (stepping float16 weights),
    LML501 (a step whose gradients still hold the previous step's)."""

    codes = ("LML202", "LML203", "LML403", "LML501")

    def __init__(self, watch) -> None:
        super().__init__(watch)
        self.state: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.owners: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # optimizer -> {model: bool}

    def _state(self, optimizer) -> _OptimizerState:
        state = self.state.get(optimizer)
        if state is None:
            state = self.state[optimizer] = _OptimizerState()
        return state

    def _stepped_models(self, optimizer) -> list[nn.Module]:
        known = self.owners.get(optimizer)
        if known is None:
            known = self.owners[optimizer] = weakref.WeakKeyDictionary()
        ids = None
        result = []
        for model in list(self.watch._models):
            owned = known.get(model)
            if owned is None:
                if ids is None:
                    ids = {id(p) for p in _params(optimizer)}
                owned = known[model] = any(id(p) in ids for p in model.parameters())
            if owned:
                result.append(model)
        return result

    def step(self, optimizer, site) -> None:
        state = self._state(optimizer)
        enabled = self.watch._enabled
        if "LML202" in enabled or "LML203" in enabled:
            self._check_mode(optimizer, state, site)
        if "LML403" in enabled:
            half = [p for p in _params(optimizer) if p.dtype == torch.float16 and p.requires_grad]
            if half:
                elements = sum(p.numel() for p in half)
                self.tally("LML403", site, True, sums={"parameters": len(half), "elements": elements},
                           names=[type(optimizer).__name__])
            else:
                self.tally("LML403", site, False)
        if "LML501" in enabled and state.steps:
            marks = self.watch._zero_marks
            stale = fresh = 0
            for p in _params(optimizer):
                grad = p.grad
                if grad is None:
                    continue
                last = state.last_grads.get(id(p))
                if last is not None and last() is grad and marks.get(id(p), -1) < state.last_step_seq:
                    stale += 1
                else:
                    fresh += 1
            if stale or fresh:
                self.tally("LML501", site, bool(stale), sums={"stale": stale, "with_grad": stale + fresh},
                           maxes={"step": state.steps + 1})
        state.steps += 1

    def _check_mode(self, optimizer, state, site) -> None:
        modes = self.watch._modes
        for model in self._stepped_models(optimizer):
            if not modes.dependent(model):
                self.tally("LML202", site, False)
                self.tally("LML203", site, False)
                continue
            if model.training:
                state.trained_models.add(model)
                self.tally("LML202", site, False)
                self.tally("LML203", site, False)
                continue
            in_eval = modes.in_mode(model, False)
            if not in_eval:
                continue
            if model in state.trained_models:
                self.tally("LML202", site, True, names=in_eval)
            elif state.steps == 0:
                self.tally("LML203", site, True, names=in_eval)
            else:
                # eval from the first step on: reported once, at the first step's site
                self.tally("LML203", site, False)

    def step_done(self, optimizer) -> None:
        if "LML501" not in self.watch._enabled:
            return
        state = self._state(optimizer)
        state.last_step_seq = self.watch._next_seq()
        state.last_grads = {id(p): weakref.ref(p.grad) for p in _params(optimizer) if p.grad is not None}

    def describe(self, code, tally, confirmed):
        names = list(tally.names)
        if code in ("LML202", "LML203"):
            if not confirmed:
                return (f"{_plural(tally.checked, 'optimizer step')} here ran with the model in training mode", {})
            when = "after it had trained in training mode" if code == "LML202" else "from the first step on"
            return (
                f"{_plural(tally.hits, 'optimizer step')} ran with the model in eval mode {when}; "
                f"mode-dependent modules in eval: {format_names(names)}",
                {"steps": tally.hits, "modules": names},
            )
        if code == "LML403":
            if not confirmed:
                return (f"{_plural(tally.checked, 'optimizer step')} here updated no float16 parameter", {})
            params = tally.sums.get("parameters", 0) // max(tally.hits, 1)
            elements = tally.sums.get("elements", 0) // max(tally.hits, 1)
            return (
                f"{_plural(tally.hits, 'step')} of {format_names(names)} updated {params} float16 parameters "
                f"({elements:,} elements) with no float32 master copy",
                {"steps": tally.hits, "parameters": params, "elements": elements},
            )
        # LML501
        if not confirmed:
            return (f"{_plural(tally.checked, 'optimizer step')} here started from fresh gradients", {})
        stale, total = tally.sums.get("stale", 0), tally.sums.get("with_grad", 0)
        return (
            f"{_plural(tally.hits, 'optimizer step')} used gradients that still held the previous step's "
            f"(no zero_grad in between): {stale} of {total} parameter gradients over those steps",
            {"steps": tally.hits, "stale_gradients": stale, "gradients": total},
        )


# -- LML301, LML303: decoding without a KV cache -------------------------------------


@dataclass
class _Decode:
    last_ids: object = None  # the previous call's token ids (None for embeddings)
    last_len: int = -1
    batch: int = -1
    growth: int = 0
    recomputed: int = 0
    cached_steps: int = 0
    forwards: int = 0


class DecodeProbe(Probe):
    """Consecutive forwards of one model from one site whose input grows by one
    position each time with no cache: every step re-encodes the whole prefix."""

    codes = ("LML301", "LML303")

    def __init__(self, watch) -> None:
        super().__init__(watch)
        self.runs: dict[tuple, _Decode] = {}

    def forward_start(self, trace) -> None:
        length, batch, cached = trace.input_len, trace.batch, trace.cached
        if length is None or trace.site is None:
            return
        key = (trace.thread, trace.model_id, trace.site, trace.via_generate)
        run = self.runs.get(key)
        if run is None or batch != run.batch:
            run = self.runs[key] = _Decode(batch=batch)
        run.forwards += 1
        ids = trace.input_ids
        if run.last_len >= 0:
            if length == run.last_len + 1 and self._extends(ids, run.last_ids):
                run.growth += 1
                run.recomputed += run.last_len
            elif cached and length < run.last_len + 1:
                run.cached_steps += 1
        run.last_len = length
        run.last_ids = ids

    @staticmethod
    def _extends(ids, previous) -> bool:
        """The new input is the previous one plus one position (not, say, the next of
        several candidate answers that happens to be one token longer)."""
        if ids is None or previous is None:
            return ids is None and previous is None  # embeddings: the length is all we see
        if ids.shape[:-1] != previous.shape[:-1] or ids.device != previous.device:
            return False
        return torch.equal(ids[..., :-1], previous)

    def finish(self) -> None:
        for (_, _, site, via_generate), run in self.runs.items():
            code = "LML301" if via_generate else "LML303"
            if run.growth >= 2:
                recomputed = run.recomputed * max(run.batch, 1)
                self.tally(code, site, True,
                           sums={"forwards": run.forwards, "generated": run.growth, "recomputed": recomputed})
            elif run.cached_steps >= 2:
                self.tally(code, site, False, sums={"cached": run.cached_steps})
        self.runs.clear()

    def describe(self, code, tally, confirmed):
        if not confirmed:
            return (f"decoding here passed a KV cache ({tally.sums.get('cached', 0)} cached steps)", {})
        generated, recomputed = tally.sums.get("generated", 0), tally.sums.get("recomputed", 0)
        return (
            f"{generated} decoding steps each re-encoded the whole prefix with no past_key_values: "
            f"{recomputed:,} token positions recomputed to generate {generated} tokens per sequence",
            {"steps": generated, "tokens_generated": generated, "tokens_recomputed": recomputed,
             "forwards": tally.sums.get("forwards", 0)},
        )


# -- LML401: float16 weights on a CPU device ----------------------------------------


class HalfOnCpuProbe(Probe):
    codes = ("LML401",)

    def forward_start(self, trace) -> None:
        half = trace.half_params
        if half is None:
            return
        count, device = half
        if count and device == "cpu":
            self.tally("LML401", trace.site, True, sums={"parameters": count})
        else:
            self.tally("LML401", trace.site, False)

    def describe(self, code, tally, confirmed):
        if not confirmed:
            return (f"{_plural(tally.checked, 'forward')} here ran with no float16 parameter on a CPU device", {})
        params = tally.sums.get("parameters", 0) // max(tally.hits, 1)
        return (
            f"{_plural(tally.hits, 'forward')} ran with {params} float16 parameters on the CPU",
            {"forwards": tally.hits, "parameters": params},
        )


# -- LML402: a backward under float16 autocast with no GradScaler -------------------


class AutocastProbe(Probe):
    codes = ("LML402",)

    def backward(self, event) -> None:
        if not event.fp16_models and not event.autocast_seen:
            if event.forwards_seen:
                self.tally("LML402", event.site, False)
            return
        if not event.fp16_models or event.scaled:
            self.tally("LML402", event.site, False)
            return
        event.after.append(self._measure)

    def _measure(self, event) -> None:
        zero = total = 0
        flagged = None
        for model in event.fp16_models:
            for p in model.parameters():
                g = p.grad
                if g is None:
                    continue
                bad = (g == 0) | ~torch.isfinite(g)
                count = bad.sum()
                flagged = count if flagged is None else flagged + count
                total += g.numel()
        if flagged is not None:
            zero = int(flagged.item())
        self.tally("LML402", event.site, True, sums={"zero_or_nonfinite": zero, "elements": total})

    def describe(self, code, tally, confirmed):
        if not confirmed:
            return ("backward here ran on a GradScaler-scaled loss or outside float16 autocast", {})
        zero, total = tally.sums.get("zero_or_nonfinite", 0), tally.sums.get("elements", 0)
        share = zero / total if total else 0.0
        return (
            f"{_plural(tally.hits, 'backward')} of a float16-autocast loss ran with no GradScaler; "
            f"{share:.1%} of gradient elements were zero or non-finite ({zero:,} of {total:,})",
            {"backwards": tally.hits, "zero_or_nonfinite": zero, "elements": total, "share": round(share, 6)},
        )


# -- LML406: clipping gradients that are still scaled -------------------------------


class ClipProbe(Probe):
    codes = ("LML406",)

    def clip(self, site) -> None:
        pending = [s for s, state in self.watch._scalers() if state.scaled]
        if not pending:
            return
        scaled = [s for s, state in self.watch._scalers() if state.scaled and not state.unscaled]
        if scaled:
            scale = float(scaled[0].get_scale())
            self.tally("LML406", site, True, maxes={"scale": scale})
        else:
            self.tally("LML406", site, False)

    def describe(self, code, tally, confirmed):
        if not confirmed:
            return ("clipping here ran after scaler.unscale_()", {})
        scale = tally.maxes.get("scale", 0.0)
        return (
            f"{_plural(tally.hits, 'clip')} ran on gradients still multiplied by the GradScaler's scale "
            f"(up to {scale:g}); unscale_ the optimizer first",
            {"clips": tally.hits, "scale": scale},
        )


PROBES = (GraphProbe, StepProbe, DecodeProbe, HalfOnCpuProbe, AutocastProbe, ClipProbe)
ALL_CODES = tuple(code for probe in PROBES for code in probe.codes)
