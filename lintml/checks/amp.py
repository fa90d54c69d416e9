"""LML402/LML405/LML406: float16 autocast and the GradScaler that must go with it."""

from __future__ import annotations

import re

import libcst as cst

from lintml.analysis.flow import GRAPH_CUTTING_METHODS
from lintml.analysis.program import Call, Function
from lintml.checks.base import Check

AUTOCAST = frozenset(
    {"torch.autocast", "torch.amp.autocast", "torch.amp.autocast_mode.autocast", "torch.cuda.amp.autocast",
     "torch.cuda.amp.autocast_mode.autocast", "torch.cpu.amp.autocast"}
)  # fmt: skip
# autocast entry points whose device is CUDA whatever the arguments say
CUDA_AUTOCAST = frozenset({"torch.cuda.amp.autocast", "torch.cuda.amp.autocast_mode.autocast"})
FP16 = frozenset({"torch.float16", "torch.half"})
CLIP_FUNCTIONS = frozenset(
    {"torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_value_", "torch.nn.utils.clip_grad_norm",
     "torch.nn.utils.clip_grad.clip_grad_norm_", "torch.nn.utils.clip_grad.clip_grad_value_"}
)  # fmt: skip
_SCALER_METHODS = frozenset({"scale", "unscale_", "update", "step", "get_scale"})
_SCHEDULER_WORDS = frozenset({"scheduler", "sched", "lr", "warmup", "env", "environment", "scaler"})
_MAX_DEPTH = 4


def _keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def _first_positional(call: cst.Call) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is None and arg.star == "":
            return arg.value
    return None


def _cuts_graph(value: cst.BaseExpression) -> bool:
    """`out.detach()`, `loss.item()`: what they return has no graph."""
    return (
        type(value) is cst.Call
        and type(value.func) is cst.Attribute
        and value.func.attr.value in GRAPH_CUTTING_METHODS
    )


class _Amp:
    """Facts about autocast regions and scalers, asked by the three checks."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.context = check.context

    def qualified(self, expression: cst.BaseExpression, function: Function) -> str | None:
        return self.context.imports.qualified_name(expression, function.scope)

    # -- autocast --------------------------------------------------------------------

    def is_fp16_autocast(self, expression: cst.BaseExpression, function: Function) -> bool:
        """`torch.autocast("cuda")`, `torch.autocast("cuda", dtype=torch.float16)`,
        `torch.cuda.amp.autocast()`, `torch.amp.autocast("cuda")`: float16 on CUDA."""
        if type(expression) is not cst.Call:
            return False
        qualified = self.qualified(expression.func, function)
        if qualified not in AUTOCAST:
            return False
        enabled = _keyword(expression, "enabled")
        if type(enabled) is cst.Name and enabled.value == "False":
            return False
        dtype = _keyword(expression, "dtype")
        if qualified in CUDA_AUTOCAST:
            return dtype is None or self.qualified(dtype, function) in FP16
        if qualified == "torch.cpu.amp.autocast":
            return False
        if dtype is not None:
            return self.qualified(dtype, function) in FP16
        device = _keyword(expression, "device_type") or _first_positional(expression)
        if type(device) is cst.SimpleString:
            value = device.evaluated_value
            return isinstance(value, str) and value.split(":", 1)[0] == "cuda"
        return False  # a device lintml cannot read: CPU autocast defaults to bfloat16

    def under_fp16_autocast(self, node: cst.CSTNode, function: Function) -> bool:
        site = self.context.program.site(node)
        if site is None:
            return False
        for statement in site.statements:
            if type(statement) is cst.With and any(
                self.is_fp16_autocast(item.item, function) for item in statement.items
            ):
                return True
        return any(self.is_fp16_autocast(decorator, function) for decorator in function.decorators)

    def computed_under_fp16(
        self, expression: cst.BaseExpression, before: int, function: Function, depth: int = 0
    ) -> bool:
        """The value of `expression` (at `before`) was computed under float16 autocast:
        followed back through the assignments of the names it mentions."""
        if depth > _MAX_DEPTH:
            return False
        code = self.context.code_for(expression)
        for key, bindings in function.bindings.items():
            if not re.search(rf"(?<![\w.]){re.escape(key)}(?!\w)", code):
                continue
            earlier = [binding for binding in bindings if binding.order < before]
            if not earlier:
                continue
            binding = earlier[-1]
            statement = binding.statement
            if statement is None or binding.value is None or binding.site.grad == "off":
                continue  # computed without grad (a teacher's logits): no graph to scale
            if _cuts_graph(binding.value):
                continue
            if self.under_fp16_autocast(statement, function):
                return True
            if self.computed_under_fp16(binding.value, binding.order, function, depth + 1):
                return True
        return False

    # -- scalers ---------------------------------------------------------------------

    def makes_scaler(self, value: cst.BaseExpression | None, function: Function) -> bool:
        if type(value) is not cst.Call:
            return False
        qualified = self.qualified(value.func, function) or ""
        return qualified.endswith("GradScaler") or qualified.endswith("GradScaler.GradScaler")

    def _bindings_of(self, key: str, function: Function):
        if key.startswith("self.") and function.cls is not None:
            for method in function.cls.methods.values():
                for binding in method.bindings.get(key, []):
                    yield method, binding
            return
        scope: Function | None = function
        while scope is not None:
            if key in scope.bindings:
                for binding in scope.bindings[key]:
                    yield scope, binding
                return
            scope = scope.parent

    def is_scaler_key(self, key: str, function: Function) -> bool:
        return any(self.makes_scaler(binding.value, scope) for scope, binding in self._bindings_of(key, function))

    def scalers(self, function: Function) -> set[str]:
        """The scalers `function` has: created in it (or in its class, for `self.*`), or
        used as one (`scaler.scale(loss)`, `scaler.step(opt)`)."""
        found: set[str] = set()
        for call in function.calls:
            key = call.receiver_key
            if key is None or call.method not in _SCALER_METHODS:
                continue
            if self.is_scaler_key(key, function) or (call.method in ("scale", "unscale_") and "scaler" in key.lower()):
                found.add(key)
        for key, bindings in function.bindings.items():
            if any(self.makes_scaler(binding.value, function) for binding in bindings):
                found.add(key)
        if function.cls is not None:
            for method in function.cls.methods.values():
                for key, bindings in method.bindings.items():
                    if key.startswith("self.") and any(self.makes_scaler(b.value, method) for b in bindings):
                        found.add(key)
        return found

    def scaled_by(self, call: Call, scalers: set[str]) -> str | None:
        """`scaler` for `scaler.scale(loss).backward()`."""
        func = call.node.func
        if type(func) is not cst.Attribute:
            return None
        inner = func.value
        if (
            type(inner) is cst.Call
            and type(inner.func) is cst.Attribute
            and inner.func.attr.value == "scale"
        ):
            key = call.site.function.key(inner.func.value)
            if key in scalers or (key is not None and "scaler" in key.lower()):
                return key
        return None

    def backward_calls(self, function: Function) -> list[Call]:
        return [
            call
            for call in function.calls
            # `accelerator.backward(loss)`, `engine.backward(loss)`: the library scales
            if call.method == "backward"
            and type(call.node.func) is cst.Attribute
            and _first_positional(call.node) is None
        ]

    def mentions_scaler(self, node: cst.CSTNode, scalers: set[str]) -> bool:
        code = self.context.code_for(node)
        return any(re.search(rf"(?<![\w]){re.escape(key)}(?!\w)", code) for key in scalers)

    def in_scaler_branch(self, call: Call, scalers: set[str]) -> bool:
        """The call sits in a branch whose condition, or whose other branch, handles the
        scaler: the scaler is used conditionally (`if scaler: ... else: loss.backward()`)."""
        statements = call.site.statements
        for position, statement in enumerate(statements):
            if type(statement) is not cst.If:
                continue
            inner = statements[position + 1] if position + 1 < len(statements) else None
            in_body = inner is not None and any(child is inner for child in statement.body.body)
            other = statement.orelse if in_body else statement.body
            if self.mentions_scaler(statement.test, scalers):
                return True
            if other is not None and self.mentions_scaler(other, scalers):
                return True
        last = self.context.code_for(statements[-1]) if statements else ""
        # `scaler.scale(loss).backward() if scaler else loss.backward()`
        return " if " in last and " else " in last and self.mentions_scaler(statements[-1], scalers)


class Fp16AutocastWithoutGradScaler(Check):
    """A loss computed under float16 autocast is backpropagated without a GradScaler."""

    code = "LML402"
    triggers = ("autocast",)

    def visit_Module(self, node: cst.Module) -> None:
        amp = _Amp(self)
        for function in self.context.program.all_functions():
            backwards = amp.backward_calls(function)
            if not backwards:
                continue
            if amp.scalers(function):
                continue  # LML405's business (clarification 8)
            for call in backwards:
                loss = call.node.func.value
                if amp.under_fp16_autocast(call.node, function) or amp.computed_under_fp16(
                    loss, call.site.order, function
                ):
                    written = self.context.code_for(loss)
                    self.report(
                        call.node,
                        f"`{written}` is computed under float16 autocast and backpropagated without a "
                        "`GradScaler`: gradients below float16's range (about 6e-8) underflow to zero; "
                        f"use `scaler.scale({written}).backward()`, `scaler.step(optimizer)` and "
                        "`scaler.update()`, or autocast to bfloat16",
                    )


class GradScalerBypassed(Check):
    """A GradScaler exists, but the backward, the optimizer step or the scale update
    goes around it."""

    code = "LML405"
    triggers = ("GradScaler", "scaler")

    def visit_Module(self, node: cst.Module) -> None:
        amp = _Amp(self)
        for function in self.context.program.all_functions():
            scalers = amp.scalers(function)
            if not scalers:
                continue
            backwards = amp.backward_calls(function)
            scaled = [call for call in backwards if amp.scaled_by(call, scalers)]
            for call in backwards:
                if call in scaled or amp.in_scaler_branch(call, scalers):
                    continue
                loss = self.context.code_for(call.node.func.value)
                scaler = sorted(scalers)[0]
                self.report(
                    call.node,
                    f"`{loss}.backward()` bypasses the GradScaler `{scaler}`: the loss is not scaled, so "
                    f"small float16 gradients still underflow; use `{scaler}.scale({loss}).backward()`",
                )
            if scaled:
                self._direct_steps(amp, function, scalers)
            self._missing_update(amp, function, scalers)

    def _direct_steps(self, amp: _Amp, function: Function, scalers: set[str]) -> None:
        for call in function.calls:
            func = call.node.func
            if call.method != "step" or call.node.args or type(func) is not cst.Attribute:
                continue
            key = function.key(func.value)
            if key is None or key in scalers:
                continue
            receiver_words = set(re.findall(r"[a-z]+", self.context.code_for(func.value).lower()))
            if receiver_words & _SCHEDULER_WORDS or amp.in_scaler_branch(call, scalers):
                continue
            if any(
                other.method == "step" and other.receiver_key in scalers and other.node.args
                and function.key(other.node.args[0].value) == key
                for other in function.calls
            ):
                continue
            scaler = sorted(scalers)[0]
            self.report(
                call.node,
                f"`{key}.step()` steps on gradients still multiplied by the GradScaler's scale and "
                f"without its inf/NaN check; use `{scaler}.step({key})` and `{scaler}.update()`",
            )

    def _missing_update(self, amp: _Amp, function: Function, scalers: set[str]) -> None:
        for call in function.calls:
            if call.method != "step" or call.receiver_key not in scalers or not call.node.args:
                continue
            scaler = call.receiver_key
            loop = call.site.loop
            outermost = loop
            while outermost is not None and outermost.parent is not None:
                outermost = outermost.parent
            if self._updates(amp, function, scaler, outermost):
                continue
            where = " in this loop" if loop is not None else ""
            self.report(
                call.node,
                f"`{scaler}.update()` never runs after `{self.context.code_for(call.node)}`{where}: "
                "the next `step` raises `RuntimeError` (step() already called since the last update()) "
                f"and the scale never adapts; call `{scaler}.update()` after each step",
            )

    def _updates(self, amp: _Amp, function: Function, scaler: str, loop) -> bool:
        for call in function.calls:
            if loop is not None and not loop.encloses(call.site.order):
                continue
            if call.receiver_key == scaler and call.method == "update":
                return True
            if call.method in _SCALER_METHODS and call.receiver_key == scaler:
                continue
            # the scaler handed to code that may update it
            if any(amp.mentions_scaler(arg.value, {scaler}) for arg in call.node.args):
                if not (call.method == "scale" or call.method == "backward"):
                    return True
        if scaler.startswith("self.") and function.cls is not None:
            for method in function.cls.methods.values():
                if method is function:
                    continue
                if any(c.receiver_key == scaler and c.method == "update" for c in method.calls):
                    return True
        return False


class ClipBeforeUnscale(Check):
    """Gradients are clipped while still multiplied by the GradScaler's scale."""

    code = "LML406"
    triggers = ("clip_grad",)

    def visit_Module(self, node: cst.Module) -> None:
        amp = _Amp(self)
        for function in self.context.program.all_functions():
            scalers = amp.scalers(function)
            if not scalers:
                continue
            scaled = [
                (call.site.order, amp.scaled_by(call, scalers))
                for call in amp.backward_calls(function)
                if amp.scaled_by(call, scalers)
            ]
            if not scaled:
                continue
            for call in function.calls:
                if amp.qualified(call.node.func, function) not in CLIP_FUNCTIONS:
                    continue
                order = call.site.order
                loop = call.site.loop
                earlier = [(o, s) for o, s in scaled if o < order]
                if not earlier and loop is not None:
                    # gradient accumulation: the backward of the loop's later iterations
                    earlier = [(o, s) for o, s in scaled if loop.encloses(o)]
                if not earlier:
                    continue
                last, scaler = max(earlier)
                steps = [
                    c for c in function.calls
                    if c.method == "step" and c.receiver_key == scaler and c.node.args
                    and (c.site.order > order or (loop is not None and loop.encloses(c.site.order)))
                ]  # fmt: skip
                if not steps:
                    continue
                start = last if last < order else (loop.start if loop is not None else 0)
                if any(
                    c.method == "unscale_" and c.receiver_key == scaler and start < c.site.order < order
                    for c in function.calls
                ):
                    continue
                optimizer = self.context.code_for(steps[0].node.args[0].value)
                self.report(
                    call.node,
                    f"Gradients are clipped while still multiplied by `{scaler}`'s scale (65536 at the start), "
                    f"so the threshold means nothing; call `{scaler}.unscale_({optimizer})` before clipping",
                )
