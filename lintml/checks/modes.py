"""LML2xx: models in the wrong train/eval mode, and mode methods that never ran."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from lintml.analysis.context import LIGHTNING_TRAIN_HOOKS, TrainingLoop
from lintml.analysis.imports import dotted_name
from lintml.analysis.models import QUANTIZATION_MODULES, Mode
from lintml.analysis.program import Call, Class, Function, Loop, Site
from lintml.analysis.walk import concrete_types
from lintml.checks.base import Anchor, Check, NodeEdit, NodeFix, insert_after, insert_line_before
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
    triggers = ("eval", "train", "zero_grad", "step", "backward")

    def visit_Expr(self, node: cst.Expr) -> None:
        attribute = node.value
        if not (type(attribute) is cst.Attribute and attribute.attr.value in SIDE_EFFECT_METHODS):
            return
        written = self.context.code_for(attribute)
        self.report(
            attribute,
            f"`{written}` is not called, so this statement does nothing; write `{written}()`",
            NodeFix(f"Call `{written}()`", (insert_after(attribute, "()"),)),
        )


def _loop_header(loop_node: cst.For | cst.While) -> cst.CSTNode:
    """The part of a loop a finding points at: what it iterates over, or its test."""
    return loop_node.iter if type(loop_node) is cst.For else loop_node.test


# Hugging Face trainers (and those built on them) call these with the model in eval mode.
TRAINER_LIBRARIES = frozenset({"transformers", "trl", "sentence_transformers", "setfit"})
TRAINER_EVAL_HOOKS = frozenset({"prediction_step"})
NO_GRAD_ONLY = "it runs without grad"


def _insertion_point(site: Site, mode_changes: list[int]) -> cst.CSTNode | None:
    """The statement to put `model.eval()` before: the outermost loop around the site
    that starts after what last bound, switched or trained the model and holds none of
    that itself, else the innermost statement holding the site."""
    loops = list(site.loop.outer_loops) if site.loop is not None else []
    last_before = max((order for order in mode_changes if order < site.order), default=None)
    for loop in reversed(loops):  # outermost first
        starts_after = last_before is None or last_before < loop.start
        if starts_after and not any(loop.encloses(order) for order in mode_changes):
            return loop.node
    statements = list(site.statements)
    # an `elif` is an `If` in its parent's `orelse`: nothing can go before it
    while len(statements) > 1 and type(statements[-1]) is cst.If and type(statements[-2]) is cst.If and statements[-2].orelse is statements[-1]:
        statements.pop()
    return statements[-1] if statements else None


class InferenceWithoutEval(Check):
    """A forward at inference (or under `no_grad`) on a model still in training mode.

    Dropout keeps zeroing activations and batch norm normalises with the batch's
    statistics (and updates its running ones): predictions are noisy and worse than
    the model's real quality, and batch norm's state drifts.
    """

    code = "LML201"
    triggers = MODEL_TRIGGERS

    def __init__(self, context) -> None:
        super().__init__(context)
        self._functions: list[Function] = []
        # `model.eval` statements seen so far: (function, written receiver, node)
        self._uncalled_evals: list[tuple[Function, str, cst.Attribute]] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        function = self.context.program.function_of(node)
        if function is not None:
            self._functions.append(function)

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        if self._functions and self._functions[-1].node is node:
            self._functions.pop()

    def visit_Expr(self, node: cst.Expr) -> None:
        attribute = node.value
        if type(attribute) is cst.Attribute and attribute.attr.value == "eval":
            function = self._functions[-1] if self._functions else self.context.program.module_function
            self._uncalled_evals.append((function, self.context.code_for(attribute.value), attribute))

    def visit_Call(self, node: cst.Call) -> None:
        context = self.context
        site = context.program.site(node)
        if site is None or site.broken_grad_with:
            return  # a broken `with torch.no_grad:` is LML103's alone
        function = site.function
        if context.contexts.is_model_code(function) or context.contexts.is_test_function(function):
            return
        model = context.models.forward_key(node, function)
        through_helper = model is None
        if through_helper:
            model = context.contexts.helper_forward(node, site)
        if model is None:
            return
        if self._trainer_sets_eval(function):
            return
        if context.models.mode_dependent(model, function) is False:
            return  # no dropout, batch norm or the like: eval mode changes nothing (Amendment 17)
        reason = self._inference_reason(site, model)
        if reason is None:
            return
        mode, origin = context.models.mode_at(model, function, site.order)
        if mode not in (Mode.DEFAULT, Mode.UNKNOWN):
            return  # eval mode, training mode on purpose, or set where lintml cannot see
        if mode is Mode.UNKNOWN and reason == NO_GRAD_ONLY:
            # without grad but with no sign of inference (a compile warm-up, a profiler),
            # a model whose mode nothing here shows is left to whoever passed it in
            return
        written = model if through_helper else context.code_for(_model_expression(node))
        state = "it is still in training mode after training" if origin == "training" else "nothing puts it in eval mode first"
        runs = f"`{context.code_for(node.func)}(...)` runs `{written}`" if through_helper else f"`{written}` runs"
        self.report(
            node,
            f"{runs} inference ({reason}) but {state}: "
            f"dropout and batch norm behave as in training; call `{written}.eval()` before",
            self._fix(site, model, written),
        )

    def _trainer_sets_eval(self, function: Function) -> bool:
        """A hook that a Hugging Face `Trainer` calls with the model already in eval mode
        (`evaluation_loop` calls `model.eval()` before `prediction_step`)."""
        current: Function | None = function
        while current is not None and current.cls is None:
            current = current.parent  # a helper nested in the hook
        return current is not None and current.name in TRAINER_EVAL_HOOKS and self._is_trainer_class(current.cls, 0)

    def _is_trainer_class(self, cls: Class, depth: int) -> bool:
        if depth > 8:
            return False
        for base in cls.node.bases:
            qualified = self.context.imports.qualified_name(base.value, cls.scope) or ""
            if qualified.split(".", 1)[0] in TRAINER_LIBRARIES and qualified.endswith("Trainer"):
                return True
            if not qualified and (dotted_name(base.value) or "").endswith("Trainer") and not (
                type(base.value) is cst.Name and base.value.value in self.context.program.classes
            ):
                return True  # `from .trainer import Trainer` inside transformers itself
            if type(base.value) is cst.Name and qualified == "":
                for other in self.context.program.classes.get(base.value.value, []):
                    if other is not cls and self._is_trainer_class(other, depth + 1):
                        return True
        return False

    def _inference_reason(self, site: Site, model: str) -> str | None:
        """LML101's inference context, or a forward without grad in code that does not train."""
        contexts = self.context.contexts
        reason = contexts.inference_signal(site, model)
        if reason is None and contexts.grad_disabled(site):
            if not site.function.trains or contexts.over_eval_data(site):
                reason = NO_GRAD_ONLY
        return reason

    def _fix(self, site: Site, model: str, written: str) -> NodeFix | None:
        uncalled = self._uncalled_eval(site.function, written)
        if uncalled is not None:
            # the author wrote `model.eval` and forgot the call (LML204): make the call
            return NodeFix(f"Call `{written}.eval()`", (insert_after(uncalled, "()"),), Applicability.UNSAFE)
        function = site.function
        mode_changes = [event[0] for event in self.context.models.mode_events(model, function)]
        statement = _insertion_point(site, [*mode_changes, *function.backward_orders])
        if statement is None:
            return None
        edit = insert_line_before(statement, f"{written}.eval()")
        # the new line ends like the file's other lines (`\r\n` in a CRLF file)
        newline = self.context.module.default_newline
        edit = NodeEdit(edit.start, edit.end, edit.content.replace("\n", newline), edit.indent_of)
        return NodeFix(f"Call `{written}.eval()` first", (edit,), Applicability.UNSAFE)

    def _uncalled_eval(self, function: Function, written: str) -> cst.Attribute | None:
        """The last `<model>.eval` statement of the function before the forward."""
        for seen_in, receiver, attribute in reversed(self._uncalled_evals):
            if seen_in is function and receiver == written:
                return attribute
        return None


def _model_expression(call: cst.Call) -> cst.BaseExpression:
    """`model` in `model(x)` and in `model.forward(x)`."""
    func = call.func
    if type(func) is cst.Attribute and func.attr.value == "forward":
        return func.value
    if type(func) is cst.Subscript:
        return func.value  # the ModuleDict whose item runs
    return func


# What a place in a training loop does to the model it trains: switch it to eval mode,
# back to training mode, to a mode lintml cannot tell (`model.train(flag)`), or take a
# training step (a backward or an optimizer step).
EVAL, TRAIN, UNSURE, STEP = "eval", "train", "unsure", "step"
# How deep calls into functions of the file are followed for what they do to a model.
_CALL_DEPTH = 3
# Training needs a backward (`loss.backward()`, `accelerator.backward(loss)`) or
# `torch.autograd.grad`.
_TRAINING_TRIGGERS = ("backward", "autograd")


@dataclass(frozen=True)
class _Event:
    order: int
    kind: str
    node: cst.Call


def _mode_switches(check: Check, loop: TrainingLoop, model: str, function: Function) -> list[_Event]:
    """What switches `model`'s mode inside `loop`, in order: its own `.eval()` /
    `.train()` calls, and calls into functions of the file that leave it in a mode."""
    events = []
    for call in function.calls:
        if loop.loop.encloses(call.site.order):
            kind = _switch_kind(check, call, model, function, 0)
            if kind is not None:
                events.append(_Event(call.site.order, kind, call.node))
    return events


def _switch_kind(check: Check, call: Call, model: str, function: Function, depth: int) -> str | None:
    if call.receiver_key == model and call.method == "eval":
        return EVAL if not call.node.args else None  # `df.eval("a + b")` is not a mode switch
    if call.receiver_key == model and call.method == "train":
        return {Mode.TRAIN: TRAIN, Mode.EVAL: EVAL}.get(_train_mode(call.node), UNSURE)
    callee = check.context.callgraph.resolve(call)
    if callee is None:
        # a function of another file of the project (`evaluate(model, ...)` imported)
        effect = check.context.models._project_callee_effect(call, model)
        if effect is None:
            return None
        return {Mode.EVAL: EVAL, Mode.TRAIN: TRAIN, Mode.DEFAULT: TRAIN}.get(effect[0], UNSURE)
    if callee is function or depth >= _CALL_DEPTH:
        return None
    return _net_effect(check, call, callee, model, function, depth + 1)


def _train_mode(call: cst.Call) -> Mode:
    """`.train()` / `.train(True)` is training mode, `.train(False)` eval mode;
    `.train(flag)` depends on the flag."""
    if not call.args:
        return Mode.TRAIN
    value = call.args[0].value
    if type(value) is cst.Name and value.value in ("True", "False"):
        return Mode.TRAIN if value.value == "True" else Mode.EVAL
    return Mode.UNKNOWN


def _net_effect(check: Check, call: Call, callee: Function, model: str, caller: Function, depth: int = 1) -> str | None:
    """The mode a call into a same-file function leaves `model` in: the last switch the
    callee makes on it, directly or through its own calls; None when it makes none."""
    last: tuple[int, str] | None = None
    for target in _callee_names(check, call, callee, model, caller):
        for inner in callee.calls:
            kind = _switch_kind(check, inner, target, callee, depth)
            if kind is not None and (last is None or inner.site.order > last[0]):
                last = (inner.site.order, kind)
    return last[1] if last is not None else None


def _callee_names(check: Check, call: Call, callee: Function, model: str, caller: Function) -> list[str]:
    """The names under which a called function of the file sees the caller's `model`:
    the parameters it is passed to, `self.<attr>` in a method called through `self`, or
    the same global."""
    names = []
    for parameter in callee.params:
        argument = check.context.callgraph.argument(call, callee, parameter)
        if argument is not None and caller.key(argument) == model:
            names.append(parameter)
    if model.startswith("self."):
        if call.via_self:
            names.append(model)
    elif _same_global(check, model, caller, callee):
        names.append(model)
    return names


def _same_global(check: Check, name: str, caller: Function, callee: Function) -> bool:
    """`name` means the same binding of an enclosing scope in both functions."""
    models = check.context.models
    return name not in callee.bindings and models.owner_of(name, callee) is models.owner_of(name, caller)


def _mode_matters(check: Check, models: list[str], function: Function) -> list[str]:
    """The models that may hold a layer whose behaviour depends on the mode (Amendment
    17): a model whose layers are all known and mode-free trains and infers alike."""
    return [key for key in models if check.context.models.mode_dependent(key, function) is not False]


def _trained_models(check: Check, loop: TrainingLoop, function: Function) -> list[str]:
    """The models `loop` trains: those whose parameters its optimizers step, when the
    file shows what every one was built from; else those it runs forward with autograd
    on (itself or in a function of the file it calls). Frozen models are not trained."""
    forwarded = _forwarded_with_grad(check, loop, function)
    optimized = _optimized_models(check, loop, function)
    if optimized is None:
        trained = forwarded
    else:
        trained = [key for key in forwarded if key in optimized] + sorted(optimized - set(forwarded))
    return [key for key in trained if not check.context.models.frozen(key, function)]


def _forwarded_with_grad(check: Check, loop: TrainingLoop, function: Function) -> list[str]:
    context = check.context
    found: list[str] = []
    for call in function.calls:
        if not loop.loop.encloses(call.site.order) or context.contexts.grad_disabled(call.site):
            continue
        key = context.models.forward_key(call.node, function)
        if key is not None:
            found.append(key)
            continue
        callee = context.callgraph.resolve(call)
        if callee is None or callee is function or context.contexts.is_model_code(callee):
            continue
        # `loss = compute_loss(model, batch)`: the forward runs in the called function
        for inner in callee.calls:
            target = context.models.forward_key(inner.node, callee)
            if target is not None and not context.contexts.grad_disabled(inner.site):
                caller_key = _caller_name(check, call, callee, target, function)
                if caller_key is not None and context.models.is_model(caller_key, function):
                    found.append(caller_key)
    return list(dict.fromkeys(found))


def _caller_name(check: Check, call: Call, callee: Function, target: str, caller: Function) -> str | None:
    """The caller's name for what a called function of the file knows as `target`."""
    if target in callee.params:
        argument = check.context.callgraph.argument(call, callee, target)
        return caller.key(argument) if argument is not None else None
    if target.startswith("self."):
        return target if call.via_self else None
    return target if _same_global(check, target, caller, callee) else None


def _optimized_models(check: Check, loop: TrainingLoop, function: Function) -> set[str] | None:
    """The models whose parameters the optimizers stepped in `loop` were built from;
    None when that is not known for every one of them."""
    models = check.context.models
    optimized: set[str] = set()
    for step in loop.step_calls:
        # `optimizer.step()`, or `scaler.step(optimizer)` with a GradScaler
        names = [step.receiver_key, *(function.key(arg.value) for arg in step.node.args[:1])]
        owners = [check.context.optimizers.parameter_owners(name, function) for name in names if name is not None]
        keys = {key for key in next((found for found in owners if found), set()) if models.is_model(key, function)}
        if not keys:
            return None
        optimized |= keys
    return optimized





# -- where execution goes after an eval switch -----------------------------------------


@dataclass(frozen=True)
class _Exit:
    """A `return`/`raise`, `break` or `continue` that follows a switch in every case."""

    kind: str  # "return", "break" or "continue"
    loop: Loop | None  # the loop a `break` or `continue` belongs to


def _exit_after(site: Site, function: Function) -> _Exit | None:
    """The first statement after `site`, in one of the blocks around it, that leaves the
    iteration whatever happens: a `return`, `raise`, `break` or `continue`."""
    statements = site.statements
    for index in range(len(statements) - 1, 0, -1):
        inner, outer = statements[index], statements[index - 1]
        if type(outer) in (cst.FunctionDef, cst.ClassDef):
            return None
        if index != len(statements) - 1 and type(inner) in (cst.For, cst.While):
            return None  # what follows a loop around the switch runs only once that loop ends
        for statement in _following(outer, inner):
            for small in statement.body if type(statement) is cst.SimpleStatementLine else ():
                if type(small) in (cst.Return, cst.Raise):
                    return _Exit("return", None)
                if type(small) in (cst.Break, cst.Continue):
                    kind = "break" if type(small) is cst.Break else "continue"
                    return _Exit(kind, _innermost_loop(statements[:index], function))
    return None


def _following(outer: cst.CSTNode, inner: cst.CSTNode) -> list[cst.CSTNode]:
    """The statements after `inner` in the block of `outer` that holds it."""
    for block in _blocks(outer):
        for position, statement in enumerate(block):
            if statement is inner:
                return list(block[position + 1 :])
    return []


# what a search for a compound statement's blocks does not look into
_NOT_SEARCHED = concrete_types(cst.BaseCompoundStatement, cst.SimpleStatementLine, cst.BaseExpression)


def _blocks(statement: cst.CSTNode):
    """The statement lists directly inside a compound statement (body, else, except...)."""
    stack = list(statement.children)
    while stack:
        node = stack.pop()
        if type(node) is cst.IndentedBlock:
            yield node.body
        elif type(node) not in _NOT_SEARCHED:
            stack.extend(node.children)


def _innermost_loop(statements: tuple[cst.CSTNode, ...], function: Function) -> Loop | None:
    for statement in reversed(statements):
        if type(statement) in (cst.For, cst.While):
            return next((loop for loop in function.loops if loop.node is statement), None)
    return None


def _path(order: int, loop: Loop, exit: _Exit | None) -> tuple[list[tuple[int, int]], bool]:
    """Where execution goes from `order` in `loop` before it reaches `order` again: the
    ranges of orders (both ends excluded) run through in the rest of this iteration, in
    turn, and whether it then goes round `loop`."""
    if exit is None:
        return [(order, loop.end + 1)], True
    if exit.kind == "return" or exit.loop is None:
        return [], False
    left = exit.loop
    if left.start <= loop.start and loop.end <= left.end:
        return [], exit.kind == "continue" and left is loop  # leaves `loop`, or starts it over
    if exit.kind == "break":
        return [(left.end, loop.end + 1)], True
    return [(left.start - 1, order), (left.end, loop.end + 1)], True


def _first(events: list[_Event], ranges: list[tuple[int, int]]) -> _Event | None:
    """The first switch back to training (or to an unsure mode) or training step."""
    for low, high in ranges:
        for event in events:
            if low < event.order < high and event.kind != EVAL:
                return event
    return None


def _other_branches(first: Site, second: Site) -> bool:
    """The two places are in different branches of one `if` (`if flag: model.train()`
    / `else: model.eval()`): never both run in one pass."""
    for index, statement in enumerate(first.statements[:-1]):
        if type(statement) is not cst.If:
            continue
        position = next((i for i, other in enumerate(second.statements[:-1]) if other is statement), None)
        if position is None:
            continue
        if _in_body(statement, first.statements[index + 1]) != _in_body(statement, second.statements[position + 1]):
            return True
    return False


def _in_body(statement: cst.If, inner: cst.CSTNode) -> bool:
    body = statement.body
    return type(body) is cst.IndentedBlock and any(child is inner for child in body.body)


def _chosen_by_a_condition(check: Check, switch: cst.CSTNode, others: list[cst.CSTNode]) -> bool:
    """An eval switch in one branch of an `if` whose other branch switches the model to
    training: the mode is picked by a flag (a frozen part), not left by a validation."""
    program = check.context.program
    site = program.site(switch)
    return site is not None and any(
        (other_site := program.site(other)) is not None and _other_branches(site, other_site) for other in others
    )


class TrainModeNotRestored(Check):
    """A training loop switches the model to eval (to validate) and never back.

    After the first validation, training continues with dropout off and batch norm
    frozen: the model trains differently from what the code says, usually worse.
    """

    code = "LML202"
    triggers = _TRAINING_TRIGGERS

    def visit_Module(self, node: cst.Module) -> None:
        context = self.context
        for function in context.program.all_functions():
            if context.contexts.is_model_code(function) and function.name not in LIGHTNING_TRAIN_HOOKS:
                continue
            loops = context.contexts.training_loops(function)
            checked: set[int] = set()
            for loop in loops:
                for model in _mode_matters(self, _trained_models(self, loop, function), function):
                    switches = _mode_switches(self, loop, model, function)
                    back = [switch.node for switch in switches if switch.kind != EVAL]
                    for switch in switches:
                        if switch.kind != EVAL or id(switch.node) in checked:
                            continue
                        checked.add(id(switch.node))
                        if not _chosen_by_a_condition(self, switch.node, back):
                            self._check_switch(switch, model, function, loops)

    def _check_switch(self, switch: _Event, model: str, function: Function, loops: list[TrainingLoop]) -> None:
        """Report an eval switch when, going on from it through the rest of the loop body
        and round the loop (any loop around it), a training step comes before a switch
        back to training."""
        enclosing = [loop for loop in loops if loop.loop.encloses(switch.order)]
        exit = _exit_after(self.context.program.site(switch.node), function)
        if not any(self._step_comes_first(switch, loop, model, function, exit) for loop in enclosing):
            return
        innermost = enclosing[-1]
        same_iteration, _ = _path(switch.order, innermost.loop, exit)
        first = _first(self._events(innermost, model, function), same_iteration)
        if first is not None and first.kind == STEP:
            where, fix = "once the validation is over", self._fix_after(switch, first, innermost, model)
        else:
            where, fix = "at the top of the loop", self._fix_at_top(innermost, model)
        self.report(
            switch.node,
            f"{self._describe(switch, model)} switches `{model}` to eval mode inside its training "
            f"loop and nothing switches it back before the next training step: training goes on "
            f"with dropout off and batch norm frozen; call `{model}.train()` {where}",
            fix,
        )

    def _describe(self, switch: _Event, model: str) -> str:
        if self._is_direct(switch, model):
            return f"`{self.context.code_for(switch.node)}`"
        return f"The call to `{self.context.code_for(switch.node.func)}`"

    def _is_direct(self, switch: _Event, model: str) -> bool:
        """`model.eval()` itself, not a call into a function that does it."""
        call = self.context.program.calls.get(id(switch.node))
        return call is not None and call.receiver_key == model and call.method in ("eval", "train")

    def _events(self, loop: TrainingLoop, model: str, function: Function) -> list[_Event]:
        """The loop's switches of `model` and its training steps, in order."""
        steps = {*loop.backward_orders, *(call.site.order for call in loop.step_calls)}
        step_calls = [_Event(call.site.order, STEP, call.node) for call in function.calls if call.site.order in steps]
        return sorted(_mode_switches(self, loop, model, function) + step_calls, key=lambda event: event.order)

    def _step_comes_first(self, switch: _Event, loop: TrainingLoop, model: str, function: Function, exit) -> bool:
        ranges, goes_round = _path(switch.order, loop.loop, exit)
        if goes_round:
            ranges = [*ranges, (loop.loop.start - 1, switch.order)]
        first = _first(self._events(loop, model, function), ranges)
        return first is not None and first.kind == STEP

    def _fix_at_top(self, loop: TrainingLoop, model: str) -> NodeFix | None:
        body = loop.loop.node.body
        if type(body) is not cst.IndentedBlock:
            return None
        line = _insert_line_above(body.body[0], f"{model}.train()", self.context.module.default_newline)
        return NodeFix(f"Call `{model}.train()` at the top of the loop", (line,))

    def _fix_after(self, switch: _Event, step: _Event, loop: TrainingLoop, model: str) -> NodeFix | None:
        """`model.train()` after the statement of the loop body that holds the switch,
        when that statement is the whole validation (an `if` block, a call into a
        function) and the training step comes after it."""
        body = loop.loop.node.body
        statements = self.context.program.site(switch.node).statements
        if type(body) is not cst.IndentedBlock or not any(s is loop.loop.node for s in statements):
            return None
        holder = statements[next(i for i, s in enumerate(statements) if s is loop.loop.node) + 1]
        if _is_bare_statement(holder, switch.node) and self._is_direct(switch, model):
            return None  # `model.eval()` on its own line: where the validation ends is unclear
        if any(s is holder for s in self.context.program.site(step.node).statements):
            return None  # the training step is in the same block as the validation
        position = next((i for i, statement in enumerate(body.body) if statement is holder), None)
        if position is None or position + 1 >= len(body.body):
            return None
        line = _insert_line_above(body.body[position + 1], f"{model}.train()", self.context.module.default_newline)
        return NodeFix(f"Call `{model}.train()` after the validation", (line,))


def _is_bare_statement(statement: cst.CSTNode, call: cst.Call) -> bool:
    return (
        type(statement) is cst.SimpleStatementLine
        and len(statement.body) == 1
        and type(statement.body[0]) is cst.Expr
        and statement.body[0].value is call
    )


def _insert_line_above(statement: cst.BaseStatement, line: str, newline: str) -> NodeEdit:
    """A new line above `statement` and the comment lines that lead it, indented like it
    and ended like the file's lines."""
    text = line.replace("{", "{{").replace("}", "}}")
    if statement.leading_lines:
        anchor = Anchor(statement.leading_lines[0], "start")
        return NodeEdit(anchor, anchor, "{indent}" + text + newline, Anchor(statement, "start"))
    anchor = Anchor(statement, "start")
    return NodeEdit(anchor, anchor, text + newline + "{indent}", anchor)


class TrainingInEvalMode(Check):
    """A model trained while its last known mode is eval.

    `from_pretrained` returns models in eval mode, and `.eval()` may have been called to
    evaluate before training: without `.train()`, fine-tuning runs with dropout off.
    """

    code = "LML203"
    triggers = _TRAINING_TRIGGERS

    def visit_Module(self, node: cst.Module) -> None:
        context = self.context
        for function in context.program.all_functions():
            if context.contexts.is_model_code(function):
                continue
            # each model's outermost training loops, in order: an epoch loop and the
            # batch loop inside it are one training
            outermost: dict[str, list[TrainingLoop]] = {}
            for loop in context.contexts.training_loops(function):
                for model in _mode_matters(self, _trained_models(self, loop, function), function):
                    known = outermost.setdefault(model, [])
                    if not any(other.loop.encloses(loop.loop.start) for other in known):
                        known.append(loop)
            for model, loops in outermost.items():
                reported: TrainingLoop | None = None
                for loop in loops:
                    if reported is not None and not self._mode_set_between(model, function, reported, loop):
                        continue  # trains on in the mode already reported: one mistake, one finding
                    if self._check_loop(loop, model, function):
                        reported = loop

    def _mode_set_between(self, model: str, function: Function, first: TrainingLoop, later: TrainingLoop) -> bool:
        events = self.context.models.mode_events(model, function)
        return any(first.loop.end < order < later.loop.start for order, *_ in events)

    def _check_loop(self, loop: TrainingLoop, model: str, function: Function) -> bool:
        context = self.context
        mode, origin = context.models.mode_at(model, function, loop.loop.start)
        if mode is not Mode.EVAL:
            return False
        if any(switch.kind in (TRAIN, UNSURE) for switch in _mode_switches(self, loop, model, function)):
            return False  # switched to training somewhere in the loop
        if self._switched_by_a_call_before(loop, model, function):
            return False
        if self._chosen_by_a_condition_before(loop, model, function):
            return False
        self.report(
            _loop_header(loop.loop.node),
            f"`{model}` is trained in eval mode ({_why_eval(model, origin)}) and nothing calls "
            f"`{model}.train()` before or in this loop: dropout stays off and batch norm frozen "
            f"while it learns; call `{model}.train()` before the loop",
        )
        return True

    def _switched_by_a_call_before(self, loop: TrainingLoop, model: str, function: Function) -> bool:
        """A call into a function of the file, after the model's last mode change and
        before the loop, that switches it to training (or to an unsure mode)."""
        start = loop.loop.start
        changes = [order for order, *_ in self.context.models.mode_events(model, function) if order < start]
        since = changes[-1] if changes else -1
        for call in function.calls:
            if since < call.site.order < start and call.receiver_key != model:
                if _switch_kind(self, call, model, function, 0) in (TRAIN, UNSURE):
                    return True
        return False


    def _chosen_by_a_condition_before(self, loop: TrainingLoop, model: str, function: Function) -> bool:
        """The last mode switch before the loop is `else: model.eval()` of an
        `if ...: model.train()`."""
        models = self.context.models
        scope = function if model.startswith("self.") else models.owner_of(model, function)
        start = loop.loop.start if scope is function else scope.end + 1
        events = [event for event in models.mode_events(model, scope) if event[0] < start]
        if not events or events[-1][1] is not Mode.EVAL:
            return False
        trains = [node for _, mode, _, node in events if mode is not Mode.EVAL]
        return _chosen_by_a_condition(self, events[-1][3], trains)


def _why_eval(model: str, origin: str) -> str:
    """Why the model is in eval mode, for a message."""
    if origin == "from_pretrained":
        return "`from_pretrained` returns models in eval mode"
    if origin == ".eval()":
        return f"`{model}.eval()` was called before"
    if origin == ".train()":
        return f"`{model}.train(False)` was called before"
    if origin == "every caller":
        return "every caller passes it in eval mode"
    if origin.isidentifier():
        return f"`{origin}()` returns it in eval mode"
    return "its last known mode is eval"


# Post-training quantization steps that need eval mode (RULES.md clarification 9).
# QAT's `prepare_qat*` wants training mode; `quantize` and `quantize_dynamic` call
# `.eval()` on the model themselves.
PREPARE_STEPS = frozenset(f"{module}.{name}" for module in QUANTIZATION_MODULES for name in ("prepare", "prepare_fx"))
CONVERT_STEPS = frozenset(f"{module}.{name}" for module in QUANTIZATION_MODULES for name in ("convert", "convert_fx"))
PTQ_FUNCTIONS = PREPARE_STEPS | CONVERT_STEPS


class QuantizeWithoutEval(Check):
    """Post-training quantization applied to a model that is not in eval mode.

    Observers then calibrate on activations with dropout on and batch norm using each
    batch's statistics, conv + batch-norm fusion refuses to run, and the converted
    model keeps its dropout active.
    """

    code = "LML205"
    triggers = ("quantiz",)

    def visit_Call(self, node: cst.Call) -> None:
        context = self.context
        qualified = context.qualified_name(node.func)
        if qualified not in PTQ_FUNCTIONS:
            return
        model = _quantized_argument(node)
        site = context.program.site(node)
        if model is None or site is None:
            return
        mode = self._mode_of(model, site)
        if mode not in (Mode.DEFAULT, Mode.TRAIN, Mode.UNKNOWN):
            return  # in eval mode, or set where lintml cannot see
        if mode is Mode.UNKNOWN and site.function.key(model) in site.function.params:
            return  # a helper handed its module by callers outside the file: they chose its mode
        written = context.code_for(model)
        step = qualified.rsplit(".", 1)[-1]
        consequence = (
            "calibration runs with dropout on and batch norm on batch statistics, so the observers record the wrong ranges"
            if qualified in PREPARE_STEPS
            else "the quantized model stays in training mode, with its dropout active"
        )
        self.report(
            node,
            f"`{step}` quantizes `{written}` for inference but nothing puts it in eval mode first: "
            f"{consequence}; call `{written}.eval()` before",
        )

    def _mode_of(self, model: cst.BaseExpression, site: Site) -> Mode:
        """The mode of what is quantized. It is a module whatever the evidence says, so
        a name's mode is what its bindings and mode calls leave."""
        models = self.context.models
        info = models.info(model, site.function, site.order)
        if info.is_model:
            return info.mode
        key = site.function.key(model)
        if info.is_model is None and key is not None:
            return models.mode_at(key, site.function, site.order)[0]
        return Mode.OPAQUE  # not a model, or an expression lintml cannot follow


def _quantized_argument(call: cst.Call) -> cst.BaseExpression | None:
    """The model a quantization step is given: `model=`/`module=`, else the first argument."""
    for argument in call.args:
        if argument.keyword is not None and argument.keyword.value in ("model", "module"):
            return argument.value
    first = call.args[0] if call.args else None
    if first is None or first.keyword is not None or first.star:
        return None
    return first.value
