"""Optimizers: which names are optimizers, what a `.step()` steps, and whose
parameters an optimizer holds. Asked by the loop rules (LML202, LML203, LML501) and the
precision rules (LML403)."""

from __future__ import annotations

import re

import libcst as cst

from lintml.analysis import kinds
from lintml.analysis.imports import ImportTable
from lintml.analysis.models import Models
from lintml.analysis.program import Call, Function, chain_base
from lintml.analysis.walk import descendants

# What a class named in `torch.optim` or imported from an optimizer library is called.
_OPTIMIZER_CLASS = re.compile(
    r"(Adam|SGD|RMSprop|Adagrad|Adadelta|Adamax|LBFGS|Lion|Adafactor|Lamb|LAMB|Rprop|ASGD|Optimizer|Sophia|Muon"
    r"|Shampoo|Lars|LARS|Novograd|NovoGrad|Prodigy|Yogi|Adan|Ranger|Lookahead)"
)
_NOT_OPTIMIZER = ("lr_scheduler", "swa_utils", "Scheduler", "GradScaler", "tensorflow", "keras", "optax", "jax")
_MAX_DEPTH = 3


def module_key(expression: cst.BaseExpression, function: Function) -> str | None:
    """`model` for `model.encoder.layer[0]` or `model.module`: whose submodule it is."""
    while True:
        expression = chain_base(expression)
        key = function.key(expression)
        if key is not None:
            return key
        if type(expression) not in (cst.Attribute, cst.Subscript):
            return None
        expression = expression.value


class Optimizers:
    def __init__(self, models: Models, imports: ImportTable, callgraph=None) -> None:
        self.models = models
        self.imports = imports
        self.callgraph = callgraph

    def stepped_optimizer(self, step: Call, function: Function) -> str | None:
        """`optimizer` for `optimizer.step()` and for `scaler.step(optimizer)`."""
        func = step.node.func
        if type(func) is not cst.Attribute:
            return None
        receiver = function.key(func.value)
        if receiver is None:
            return None
        if step.node.args and self.is_scaler(receiver, function):
            return function.key(step.node.args[0].value)
        return receiver

    def is_scaler(self, key: str, function: Function) -> bool:
        if "scaler" in key.lower():
            return True
        return any(
            type(value) is cst.Call and (self.imports.qualified_name(value.func, scope.scope) or "").endswith("GradScaler")
            for value, scope, _ in self.bound_values(key, function)
        )

    def bound_values(self, key: str, function: Function):
        """(value, function, binding) of every binding of `key` visible in `function`;
        a value of None for a parameter or a binding without a value."""
        if key.startswith("self."):
            scopes = list(function.cls.methods.values()) if function.cls is not None else [function]
        else:
            scopes = [self.models.owner_of(key, function)]
        for scope in scopes:
            if key in scope.params:
                yield None, scope, None
            for binding in scope.bindings.get(key, []):
                value = binding.value
                if type(value) in (cst.Tuple, cst.List) and binding.tuple_index is not None:
                    elements = value.elements
                    if binding.tuple_index < len(elements) and not isinstance(
                        elements[binding.tuple_index], cst.StarredElement
                    ):
                        yield elements[binding.tuple_index].value, scope, binding
                        continue
                    yield None, scope, binding
                    continue
                yield value, scope, binding

    def is_optimizer(self, key: str, function: Function, before: int | None, depth: int) -> bool:
        """Every binding of `key` makes an optimizer: a `torch.optim` class (or one of an
        optimizer library), or `accelerator.prepare(...)` of one. A parameter, or a value
        lintml cannot read (a factory, a wrapper), is not known to be one."""
        if depth > _MAX_DEPTH:
            return False
        found = False
        for value, scope, binding in self.bound_values(key, function):
            if binding is not None and before is not None and binding.order >= before:
                continue
            if value is None and binding is None:  # a parameter: what its callers pass
                if not self._callers_pass_optimizers(key, scope, depth):
                    return False
            elif type(value) is cst.Name and value.value in scope.params and binding is not None:
                # `self.optimizer = optimizer` in `__init__`
                if not self._callers_pass_optimizers(value.value, scope, depth):
                    return False
            elif not (type(value) is cst.Call and self._makes_optimizer(value, binding, scope, depth)):
                return False
            found = True
        return found

    def _callers_pass_optimizers(self, parameter: str, function: Function, depth: int) -> bool:
        """Every caller, in this file and in the project's others, passes an optimizer for
        `parameter` (and there is at least one)."""
        passed = []
        if self.callgraph is not None:
            if self.callgraph.escapes(function):
                return False
            for call in self.callgraph.callers(function):
                argument = self.callgraph.argument(call, function, parameter)
                if argument is None:
                    return False
                caller = call.site.function
                if type(argument) is cst.Call:
                    passed.append(self._makes_optimizer(argument, None, caller, depth + 1))
                else:
                    inner = caller.key(argument)
                    passed.append(inner is not None and self.is_optimizer(inner, caller, call.site.order, depth + 1))
        value = self.models.project_parameter(parameter, function)
        if value.known:
            passed.append(value.only(kinds.OPTIMIZER))
        return bool(passed) and all(passed)

    def _makes_optimizer(self, call: cst.Call, binding, scope: Function, depth: int) -> bool:
        qualified = self.imports.qualified_name(call.func, scope.scope)
        if qualified is not None:
            last = qualified.rsplit(".", 1)[-1]
            if any(part in qualified for part in _NOT_OPTIMIZER):
                return False
            if qualified.startswith("torch.optim.") or _OPTIMIZER_CLASS.search(last):
                return not self.models.file_class(last)
            return False
        func = call.func
        if type(func) is cst.Attribute and func.attr.value == "prepare":
            # `model, optimizer, loader = accelerator.prepare(model, optimizer, loader)`
            positional = [arg for arg in call.args if arg.keyword is None]
            if any(arg.star for arg in positional):
                return False
            tuple_index = binding.tuple_index if binding is not None else None
            index = tuple_index if tuple_index is not None else 0
            if index >= len(positional) or (tuple_index is None and len(positional) != 1):
                return False
            inner = scope.key(positional[index].value)
            before = binding.order if binding is not None else None
            return inner is not None and self.is_optimizer(inner, scope, before, depth + 1)
        return False

    def parameter_owners(self, name: str, function: Function, depth: int = 0) -> set[str]:
        """Whose `.parameters()` / `.named_parameters()` the values bound to `name` are
        built from: `AdamW(model.parameters())`, parameter groups, a list bound first."""
        if depth > 2:
            return set()
        if name.startswith("self."):
            scopes = list(function.cls.methods.values()) if function.cls is not None else [function]
        else:
            scopes = [self.models.owner_of(name, function)]
        owners: set[str] = set()
        for scope in scopes:
            for binding in scope.bindings.get(name, []):
                for node in descendants(binding.value) if binding.value is not None else ():
                    if (
                        type(node) is cst.Call
                        and type(node.func) is cst.Attribute
                        and node.func.attr.value in ("parameters", "named_parameters")
                    ):
                        key = module_key(node.func.value, scope)
                        if key is not None:
                            owners.add(key)
                    elif type(node) is cst.Name and node.value != name and node.value in scope.bindings:
                        owners |= self.parameter_owners(node.value, scope, depth + 1)
        return owners
