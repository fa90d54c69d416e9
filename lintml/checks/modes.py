"""LML2xx: models in the wrong train/eval mode, and mode methods that never ran."""

from __future__ import annotations

import libcst as cst

from lintml.analysis.context import LIGHTNING_TRAIN_HOOKS, TrainingLoop
from lintml.analysis.models import Mode
from lintml.analysis.program import Call, Function, Site
from lintml.checks.base import Check, NodeFix, insert_after, insert_line_before
from lintml.checks.gradients import MODEL_TRIGGERS
from lintml.findings import Applicability

# Methods called for their side effect; naming one in a statement does nothing.
SIDE_EFFECT_METHODS = frozenset({"eval", "train", "zero_grad", "step", "backward"})


class ModeMethodNotCalled(Check):
    """`model.eval` as a statement: the method is looked up and never called.

    The statement does nothing, so the model stays in training mode, the gradients are
    not zeroed, the optimizer does not step, or the backward never runs.
    """

    code = "LML204"
    name = "mode-method-not-called"
    family = "train/eval mode"
    summary = "A side-effect method (`eval`, `train`, `zero_grad`, `step`, `backward`) is named but not called"
    fix_safety = Applicability.SAFE
    triggers = ("eval", "train", "zero_grad", "step", "backward")

    def visit_Expr(self, node: cst.Expr) -> None:
        attribute = node.value
        if not (isinstance(attribute, cst.Attribute) and attribute.attr.value in SIDE_EFFECT_METHODS):
            return
        written = self.context.code_for(attribute)
        self.report(
            attribute,
            f"`{written}` is not called, so this statement does nothing; write `{written}()`",
            NodeFix(f"Call `{written}()`", (insert_after(attribute, "()"),)),
        )


def _loop_header(loop_node: cst.For | cst.While) -> cst.CSTNode:
    """The part of a loop a finding points at: what it iterates over, or its test."""
    return loop_node.iter if isinstance(loop_node, cst.For) else loop_node.test


def _function_statement(site: Site) -> cst.CSTNode | None:
    """The statement to insert before: the outermost loop of the function around the
    site, else the innermost statement holding it."""
    loop = site.loop
    while loop is not None and loop.parent is not None:
        loop = loop.parent
    if loop is not None:
        return loop.node
    return site.statements[-1] if site.statements else None


class InferenceWithoutEval(Check):
    """A forward at inference (or under `no_grad`) on a model still in training mode.

    Dropout keeps zeroing activations and batch norm normalises with the batch's
    statistics (and updates its running ones): predictions are noisy and worse than
    the model's real quality, and batch norm's state drifts.
    """

    code = "LML201"
    name = "inference-without-eval"
    family = "train/eval mode"
    summary = "A model runs inference while in training mode"
    fix_safety = Applicability.UNSAFE
    triggers = MODEL_TRIGGERS

    def visit_Call(self, node: cst.Call) -> None:
        context = self.context
        site = context.program.site(node)
        if site is None or site.broken_grad_with:
            return
        function = site.function
        model = context.models.forward_key(node, function)
        if model is None:
            return
        contexts = context.contexts
        if contexts.is_model_code(function) or contexts.is_test_function(function):
            return
        reason = contexts.inference_signal(site, model)
        if reason is None and contexts.grad_disabled(site):
            if not function.trains or contexts.eval_data_loop(site) is not None:
                reason = "it runs without grad"
        if reason is None:
            return
        mode, _ = context.models.mode_at(model, function, site.order)
        if mode not in (Mode.DEFAULT, Mode.UNKNOWN):
            return  # eval mode, training mode on purpose, or set where lintml cannot see
        written = context.code_for(node.func)
        self.report(
            node,
            f"`{written}` runs inference ({reason}) but nothing puts it in eval mode first: "
            f"dropout and batch norm behave as in training; call `{written}.eval()` before",
            self._fix(site, written),
        )

    def _fix(self, site: Site, written: str) -> NodeFix | None:
        statement = _function_statement(site)
        if statement is None:
            return None
        return NodeFix(
            f"Call `{written}.eval()` first",
            (insert_line_before(statement, f"{written}.eval()"),),
            Applicability.UNSAFE,
        )


def _mode_switches(check: Check, loop: TrainingLoop, model: str, function: Function):
    """(order, "E"/"T", node) for what switches `model` to eval/train inside the loop,
    directly or through a call into a function of the file; and the training steps."""
    context = check.context
    events = []
    for call in function.calls:
        order = call.site.order
        if not loop.loop.encloses(order):
            continue
        if call.receiver_key == model and call.method in ("eval", "train"):
            mode = Mode.EVAL if call.method == "eval" else _train_mode(call.node)
            if mode is Mode.EVAL:
                events.append((order, "E", call.node))
            elif mode is Mode.TRAIN:
                events.append((order, "T", call.node))
            continue
        callee = context.callgraph.resolve(call)
        if callee is not None and callee is not function:
            effect = _net_effect(check, call, callee, model, function)
            if effect is not None:
                events.append((order, effect, call.node))
    return sorted(events, key=lambda event: event[0])


def _train_mode(call: cst.Call) -> Mode:
    if not call.args:
        return Mode.TRAIN
    value = call.args[0].value
    if isinstance(value, cst.Name) and value.value in ("True", "False"):
        return Mode.TRAIN if value.value == "True" else Mode.EVAL
    return Mode.UNKNOWN


def _net_effect(check: Check, call: Call, callee: Function, model: str, caller: Function) -> str | None:
    """What a call into a same-file function leaves the model in: "E", "T" or None."""
    context = check.context
    targets = []
    for parameter in callee.params:
        argument = context.callgraph.argument(call, callee, parameter)
        if argument is not None and caller.key(argument) == model:
            targets.append(parameter)
    if model.startswith("self.") and call.via_self:
        targets.append(model)
    elif not model.startswith("self.") and model not in callee.bindings and model not in callee.params:
        targets.append(model)  # a global model used inside the callee
    last = None
    for target in targets:
        for _, mode, origin, _ in context.models.mode_events(target, callee):
            if origin in (".eval()", ".train()"):
                last = "E" if mode is Mode.EVAL else "T" if mode is Mode.TRAIN else last
    return last


def _trained_models(check: Check, loop: TrainingLoop, function: Function) -> list[str]:
    models = []
    for call in function.calls:
        if loop.loop.encloses(call.site.order):
            key = check.context.models.forward_key(call.node, function)
            if key is not None and key not in models:
                models.append(key)
    return models


class TrainModeNotRestored(Check):
    """A training loop switches the model to eval (to validate) and never back.

    After the first validation, training continues with dropout off and batch norm
    frozen: the model trains differently from what the code says, usually worse.
    """

    code = "LML202"
    name = "train-mode-not-restored"
    family = "train/eval mode"
    summary = "A training loop puts the model in eval mode and never back in training mode"
    fix_safety = Applicability.SAFE
    triggers = ("eval",)

    def visit_Module(self, node: cst.Module) -> None:
        context = self.context
        if "backward" not in context.source:
            return
        reported: set[int] = set()
        for function in context.program.all_functions():
            if context.contexts.is_model_code(function) and function.name not in LIGHTNING_TRAIN_HOOKS:
                continue
            for loop in context.contexts.training_loops(function):
                for model in _trained_models(self, loop, function):
                    self._check_loop(loop, model, function, reported)

    def _check_loop(self, loop: TrainingLoop, model: str, function: Function, reported: set[int]) -> None:
        switches = _mode_switches(self, loop, model, function)
        steps = {*loop.backward_orders, *(call.site.order for call in loop.step_calls)}
        timeline = sorted([(order, kind) for order, kind, _ in switches if kind == "T"] + [(order, "S") for order in steps])
        for order, kind, node in switches:
            if kind != "E" or id(node) in reported:
                continue
            # going on from the switch, round the loop: back to training first, or a step?
            ahead = [k for o, k in timeline if o > order] + [k for o, k in timeline if o < order]
            if not ahead or ahead[0] != "S":
                continue
            reported.add(id(node))
            written = self.context.code_for(node)
            self.report(
                node,
                f"`{written}` switches `{model}` to eval mode inside its training loop and "
                f"nothing switches it back before the next training step: training goes on "
                f"with dropout and batch norm in eval mode; call `{model}.train()` at the top of the loop",
                self._fix(loop, model),
            )

    def _fix(self, loop: TrainingLoop, model: str) -> NodeFix | None:
        body = loop.loop.node.body
        if not isinstance(body, cst.IndentedBlock) or not body.body:
            return None
        return NodeFix(
            f"Call `{model}.train()` at the top of the loop",
            (insert_line_before(body.body[0], f"{model}.train()"),),
        )


class TrainingInEvalMode(Check):
    """A model trained while its last known mode is eval.

    `from_pretrained` returns models in eval mode, and `.eval()` may have been called to
    evaluate before training: without `.train()`, fine-tuning runs with dropout off.
    """

    code = "LML203"
    name = "training-in-eval-mode"
    family = "train/eval mode"
    summary = "A model is trained while in eval mode"
    triggers = ("backward",)

    def visit_Module(self, node: cst.Module) -> None:
        context = self.context
        for function in context.program.all_functions():
            if context.contexts.is_model_code(function):
                continue
            outermost: dict[str, TrainingLoop] = {}
            for loop in context.contexts.training_loops(function):
                for model in _trained_models(self, loop, function):
                    known = outermost.get(model)
                    if known is None or not known.loop.encloses(loop.loop.start):
                        outermost[model] = loop
            for model, loop in outermost.items():
                self._check_loop(loop, model, function)

    def _check_loop(self, loop: TrainingLoop, model: str, function: Function) -> None:
        context = self.context
        mode, origin = context.models.mode_at(model, function, loop.loop.start)
        if mode is not Mode.EVAL:
            return
        switches = _mode_switches(self, loop, model, function)
        if any(kind == "T" and order < loop.first_step for order, kind, _ in switches):
            return
        if any(kind == "T" for _, kind, _ in switches):
            return  # switched back to training somewhere in the loop
        how = "it comes from `from_pretrained`, which returns eval mode" if origin == "from_pretrained" else f"`{origin}` left it in eval mode" if origin else "it is in eval mode"
        self.report(
            _loop_header(loop.loop.node),
            f"`{model}` is trained in eval mode ({how}) and nothing calls `{model}.train()` "
            f"before this loop: dropout and batch norm stay in eval mode while it learns",
        )


# Post-training quantization entry points; QAT (`prepare_qat*`) wants training mode.
_QUANTIZATION_MODULES = (
    "torch.ao.quantization", "torch.quantization", "torch.ao.quantization.quantize_fx",
    "torch.quantization.quantize_fx", "torch.ao.quantization.quantize", "torch.quantization.quantize",
)  # fmt: skip
PTQ_FUNCTIONS = frozenset(
    f"{module}.{name}"
    for module in _QUANTIZATION_MODULES
    for name in ("prepare", "convert", "quantize_dynamic", "prepare_fx", "convert_fx", "quantize")
)


class QuantizeWithoutEval(Check):
    """Post-training quantization applied to a model that is not in eval mode.

    Observers then calibrate with dropout active, and batch norm is not folded into the
    preceding convolution (fusion for inference requires eval mode).
    """

    code = "LML205"
    name = "quantize-without-eval"
    family = "train/eval mode"
    summary = "Post-training quantization is applied to a model not in eval mode"
    triggers = ("quantiz",)

    def visit_Call(self, node: cst.Call) -> None:
        context = self.context
        qualified = context.qualified_name(node.func)
        if qualified not in PTQ_FUNCTIONS:
            return
        model_arg = next((a.value for a in node.args if a.keyword and a.keyword.value == "model"), None)
        if model_arg is None and node.args and node.args[0].keyword is None and not node.args[0].star:
            model_arg = node.args[0].value
        if model_arg is None:
            return
        site = context.program.site(node)
        if site is None:
            return
        info = context.models.info(model_arg, site.function, site.order)
        if info.is_model is False or info.mode in (Mode.EVAL, Mode.OPAQUE):
            return
        written = context.code_for(model_arg)
        function_name = qualified.rsplit(".", 1)[-1]
        self.report(
            node,
            f"`{function_name}` quantizes `{written}` for inference, but nothing puts it in eval "
            f"mode first: calibration runs with dropout on and batch norm is not fused; "
            f"call `{written}.eval()` before",
        )
