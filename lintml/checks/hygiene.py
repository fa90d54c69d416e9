"""LML5xx training-loop hygiene: classic loop bugs that corrupt gradients."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from lintml.analysis.program import BACKWARD_METHODS, Call, Function, Loop, chain_base
from lintml.checks.base import Check
from lintml.analysis.optimizers import module_key
from lintml.analysis.walk import descendants

# Calls that receive an optimizer and are known not to zero its gradients.
_HARMLESS_METHODS = frozenset({"step", "unscale_", "update", "scale", "state_dict", "load_state_dict"})
_HARMLESS_FUNCTIONS = frozenset({"print", "len", "isinstance", "type", "id", "repr", "str", "getattr", "hasattr"})
# In-place methods on a `.grad` tensor that clear it.
_GRAD_CLEARING = frozenset({"zero_", "fill_"})
_UNIVERSAL = "*"
_MAX_DEPTH = 3


@dataclass
class _Zeroing:
    """What a stretch of code zeroes: the keys whose `.zero_grad()` it calls (a model or
    an optimizer), `_UNIVERSAL` when it clears gradients lintml cannot tie to one, and
    the keys it hands to code lintml cannot read (which may zero them)."""

    zeroed: set[str] = field(default_factory=set)
    exposed: set[str] = field(default_factory=set)


class MissingZeroGrad(Check):
    """A training loop steps an optimizer but never zeroes its gradients.

    `.backward()` adds into every parameter's `.grad`; without `zero_grad()` each step
    uses the sum of all gradients computed so far.
    """

    code = "LML501"
    triggers = ("backward",)

    def visit_Module(self, node: cst.Module) -> None:
        context = self.context
        for function in context.program.all_functions():
            for training in context.contexts.training_loops(function):
                loop = training.loop
                if loop.parent is not None:
                    continue  # one finding per outermost loop
                if not any(
                    call.method in BACKWARD_METHODS and loop.encloses(call.site.order) for call in function.calls
                ):
                    continue  # only `torch.autograd.grad`, which does not accumulate into `.grad`
                self._check_loop(loop, training.step_calls, function)

    def _check_loop(self, loop: Loop, steps: list[Call], function: Function) -> None:
        stepped: dict[str, Call] = {}
        for step in steps:
            optimizer = self.context.optimizers.stepped_optimizer(step, function)
            if optimizer is not None and self.context.optimizers.is_optimizer(optimizer, function, None, 0):
                if self._bound_in(optimizer, loop, function):
                    continue  # built afresh each iteration, usually over fresh tensors
                stepped.setdefault(optimizer, step)
        if not stepped:
            return
        found = _Zeroing()
        self._scan(function, loop.start, loop.end, loop.node, found, 0)
        for optimizer, step in stepped.items():
            if optimizer in found.exposed or (optimizer.startswith("self.") and "self" in found.exposed):
                continue  # code lintml cannot read gets the optimizer and may zero it
            if self._zeroes(optimizer, found.zeroed, set(stepped), function):
                continue
            self.report(
                step.node,
                f"`{self.context.code_for(step.node)}` steps `{optimizer}` in a loop that never zeroes its "
                f"gradients: `.backward()` adds into `.grad`, so every step applies the sum of all the "
                f"gradients computed so far; call `{optimizer}.zero_grad()` once per iteration",
            )

    def _bound_in(self, key: str, loop: Loop, function: Function) -> bool:
        return any(
            binding is not None and binding.site.function is function and loop.encloses(binding.order)
            for _, _, binding in self.context.optimizers.bound_values(key, function)
        )

        # -- what the loop zeroes --------------------------------------------------------

    def _scan(self, function: Function, start: int, end: int, node: cst.CSTNode, found: _Zeroing, depth: int) -> None:
        """Record what the code of `function` between `start` and `end` (the subtree of
        `node`) zeroes, itself or through the functions of the file it calls."""
        context = self.context
        for call in function.calls:
            if not start <= call.site.order <= end:
                continue
            func = call.node.func
            if call.method == "zero_grad" and type(func) is cst.Attribute:
                found.zeroed.add(module_key(func.value, function) or _UNIVERSAL)
                continue
            if call.method in _GRAD_CLEARING and type(func) is cst.Attribute and _names_grad(func.value):
                found.zeroed.add(self._parameters_owner(call.node, function))
                continue
            callee = context.callgraph.resolve(call)
            if callee is not None and callee is not function:
                if depth < _MAX_DEPTH:
                    inner = _Zeroing()
                    self._scan(callee, 0, callee.end, callee.node, inner, depth + 1)
                    for key in inner.zeroed:
                        found.zeroed.add(self._callers_name(call, callee, key, function))
                    for key in inner.exposed:
                        found.exposed.add(self._callers_name(call, callee, key, function))
                else:
                    found.zeroed.add(_UNIVERSAL)
                continue
            if call.via_self and not _bound_attribute(function, f"self.{call.callee}"):
                found.exposed.add("self")  # an inherited method: it may zero `self.optimizer`
            self._expose_arguments(call, function, found)
            # a function of the file passed as a value (`optimizer.step(closure)`)
            for arg in call.node.args:
                closure = self._function_named(arg.value, function)
                if closure is not None and depth < _MAX_DEPTH:
                    self._scan(closure, 0, closure.end, closure.node, found, depth + 1)
        for descendant in descendants(node):
            if type(descendant) is cst.FunctionDef and descendant is not node:
                continue
            targets: list[cst.BaseExpression] = []
            if type(descendant) is cst.Assign:
                targets = [target.target for target in descendant.targets]
            elif type(descendant) is cst.AnnAssign:
                targets = [descendant.target]
            elif type(descendant) is cst.Del:
                targets = [descendant.target]
            for target in targets:
                for element in _elements(target):
                    if type(element) is cst.Attribute and element.attr.value == "grad":
                        found.zeroed.add(self._parameters_owner(descendant, function))

    def _expose_arguments(self, call: Call, function: Function, found: _Zeroing) -> None:
        func = call.node.func
        if type(func) is cst.Attribute and func.attr.value in _HARMLESS_METHODS:
            return
        if type(func) is cst.Name and func.value in _HARMLESS_FUNCTIONS:
            return
        for arg in call.node.args:
            key = function.key(chain_base(arg.value))
            if key is None and type(arg.value) is cst.Name:
                key = arg.value.value
            if key is not None:
                found.exposed.add(key)

    def _function_named(self, expression: cst.BaseExpression, function: Function) -> Function | None:
        if type(expression) is not cst.Name:
            return None
        current: Function | None = function
        while current is not None:
            for candidate in self.context.program.all_functions():
                if candidate.parent is current and candidate.cls is None and candidate.name == expression.value:
                    return candidate
            current = current.parent
        return None

    def _callers_name(self, call: Call, callee: Function, key: str, caller: Function) -> str:
        """The caller's name for what a called function of the file zeroes as `key`."""
        if key == _UNIVERSAL:
            return key
        base = key.split(".", 1)[0]
        if base in callee.params and base != callee.self_name:
            argument = self.context.callgraph.argument(call, callee, base)
            mapped = module_key(argument, caller) if argument is not None else None
            return mapped if mapped is not None else _UNIVERSAL
        if key == "self" or key.startswith("self."):
            return key if call.via_self else _UNIVERSAL
        return key

    def _parameters_owner(self, node: cst.CSTNode, function: Function) -> str:
        """`model` when `node` sits in `for p in model.parameters():`; else unknown."""
        site = self.context.program.site(node)
        statements = site.statements if site is not None else ()
        for statement in reversed(statements):
            if type(statement) is not cst.For:
                continue
            iterable = statement.iter
            if (
                type(iterable) is cst.Call
                and type(iterable.func) is cst.Attribute
                and iterable.func.attr.value in ("parameters", "named_parameters")
            ):
                return module_key(iterable.func.value, function) or _UNIVERSAL
            break
        return _UNIVERSAL

    # -- does what the loop zeroes cover an optimizer --------------------------------

    def _zeroes(self, optimizer: str, zeroed: set[str], stepped: set[str], function: Function) -> bool:
        """Clarification 12: a `zero_grad` of the optimizer itself, or of a model whose
        parameters it holds. A model that another stepped optimizer holds (and this one
        does not) does not count; anything lintml cannot tie to a model or an optimizer
        does."""
        if _UNIVERSAL in zeroed or optimizer in zeroed:
            return True
        owners = self.context.optimizers.parameter_owners(optimizer, function, 0)
        others: set[str] = set()
        for other in stepped - {optimizer}:
            others |= self.context.optimizers.parameter_owners(other, function, 0)
        for key in zeroed:
            if key in stepped or self.context.optimizers.is_optimizer(key, function, None, 0):
                continue  # another optimizer's `zero_grad`
            if key in owners or not owners:
                return True
            if key not in others:
                return True  # a wrapper (`ddp_model`) lintml cannot tie to its model
        return False


def _names_grad(expression: cst.BaseExpression) -> bool:
    """`p.grad` or `p.grad.data`."""
    while type(expression) is cst.Attribute:
        if expression.attr.value == "grad":
            return True
        expression = expression.value
    return False


def _elements(target: cst.BaseExpression):
    if type(target) in (cst.Tuple, cst.List):
        for element in target.elements:
            yield from _elements(element.value)
    else:
        yield target


def _bound_attribute(function: Function, key: str) -> bool:
    """`self.loss_fn` is assigned in a method of the class: an attribute, not a method
    inherited from a base lintml cannot read."""
    methods = function.cls.methods.values() if function.cls is not None else ()
    return any(method.bindings.get(key) for method in methods)
