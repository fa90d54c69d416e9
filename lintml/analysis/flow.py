"""Where a value goes inside one function: does it reach a backward?

A forward whose output is differentiated later (`loss = criterion(model(x), y)` ...
`loss.backward()`) is training, whatever the function is called (unless `.detach()`
cuts its graph on the way); an accumulator that is backpropagated (`total.backward()`,
`avg = total / n; avg.backward()`) is accumulated on purpose. The flow is followed through assignments in source order, by name: a name
assigned from something that mentions a tracked name is tracked too, and a name
reassigned from something unrelated stops being tracked. Loop-carried flows (a value
used in the next iteration by a backward written above it) are not followed.
"""

from __future__ import annotations

import re
from functools import lru_cache

import libcst as cst

from lintml.analysis.program import Call, Function, Program
from lintml.analysis.program import words as _words
from lintml.analysis.walk import child_nodes

_NESTED_SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)


@lru_cache(maxsize=1024)
def _mention(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")


def _target_names(target: cst.BaseExpression, code) -> list[str]:
    if type(target) in (cst.Tuple, cst.List):
        return [name for element in target.elements for name in _target_names(element.value, code)]
    if type(target) is cst.StarredElement:
        return _target_names(target.value, code)
    return [code(target)]


# `x.detach()`, `x.item()`, ...: what they return has no graph to differentiate.
GRAPH_CUTTING_METHODS = frozenset({"detach", "item", "tolist", "numpy", "argmax", "argmin"})


def _path(root: cst.CSTNode, node: cst.CSTNode) -> list[cst.CSTNode] | None:
    """The nodes from `root` down to `node` (both included), or None if `node` is not in it."""
    stack: list[tuple[cst.CSTNode, list[cst.CSTNode]]] = [(root, [root])]
    while stack:
        current, path = stack.pop()
        if current is node:
            return path
        stack.extend((child, [*path, child]) for child in child_nodes(current))
    return None


def contains(root: cst.CSTNode, node: cst.CSTNode) -> bool:
    """`node` is `root` or inside it."""
    stack = [root]
    while stack:
        current = stack.pop()
        if current is node:
            return True
        stack.extend(child_nodes(current))
    return False


def graph_reaches(root: cst.CSTNode, node: cst.CSTNode) -> bool:
    """`node` is inside `root` and no `.detach()` (or the like) between them cuts its graph."""
    path = _path(root, node)
    if path is None:
        return False
    return not any(
        type(step) is cst.Call
        and type(step.func) is cst.Attribute
        and step.func.attr.value in GRAPH_CUTTING_METHODS
        and any(inner is step.func.value for inner in path)
        for step in path
    )


_BACKWARD_OWNERS = frozenset({"accelerator", "fabric", "engine", "trainer", "model", "deepspeed", "autograd", "torch"})


class ValueFlow:
    def __init__(self, program: Program) -> None:
        self.program = program
        self._assignments: dict[int, list[tuple[int, cst.Assign | cst.AugAssign]]] = {}
        self._feeds: dict[int, bool] = {}
        self._code: dict[int, str] = {}
        self._backward_calls: dict[int, list[Call]] = {}

    def code(self, node: cst.CSTNode) -> str:
        key = id(node)
        if key not in self._code:
            self._code[key] = self.program.module.code_for_node(node)
        return self._code[key]

    def differentiated(self, call: Call) -> str:
        """The code of what a backward differentiates: the receiver of
        `loss.backward(gradient)` (its argument is the incoming gradient, not a loss),
        the first argument of `accelerator.backward(loss)`, `self.manual_backward(loss)`
        and `torch.autograd.grad(outputs, inputs)`."""
        func = call.node.func
        args = call.node.args
        if type(func) is cst.Attribute and func.attr.value == "backward":
            receiver = self.code(func.value)
            words = {word for identifier in re.findall(r"[A-Za-z_]\w*", receiver) for word in _words(identifier)}
            if args and words & _BACKWARD_OWNERS:
                return self.code(args[0].value)
            return receiver
        return self.code(args[0].value) if args else self.code(call.node)

    def backward_calls(self, function: Function) -> list[Call]:
        """`loss.backward()`, `accelerator.backward(loss)`, `torch.autograd.grad(...)`."""
        key = id(function.node)
        if key not in self._backward_calls:  # asked once per forward: a long script has thousands
            orders = set(function.backward_orders)
            self._backward_calls[key] = [call for call in function.calls if call.site.order in orders]
        return self._backward_calls[key]

    def assignments(self, function: Function) -> list[tuple[int, cst.Assign | cst.AugAssign]]:
        """(order, node) of the function's own assignments, in source order."""
        key = id(function.node)
        if key not in self._assignments:
            found: list[tuple[int, cst.Assign | cst.AugAssign]] = []
            stack: list[cst.CSTNode] = [function.node]
            while stack:
                current = stack.pop()
                if type(current) in (cst.Assign, cst.AugAssign):
                    site = self.program.site(current)
                    if site is not None:
                        found.append((site.order, current))
                stack.extend(child for child in child_nodes(current) if not isinstance(child, _NESTED_SCOPES))
            found.sort(key=lambda item: item[0])
            self._assignments[key] = found
        return self._assignments[key]

    def reaches_backward(
        self, function: Function, names: set[str], after: int, skip: cst.CSTNode | None = None
    ) -> bool:
        """A backward that runs after `after` differentiates one of `names`, or a name
        assigned from them."""
        backwards = [call for call in self.backward_calls(function) if call.site.order > after]
        if not backwards or not names:
            return False
        tracked = set(names)
        events: list[tuple[int, cst.CSTNode | Call]] = [
            (order, node) for order, node in self.assignments(function) if order > after and node is not skip
        ]
        events.extend((call.site.order, call) for call in backwards)
        events.sort(key=lambda event: event[0])
        for _, event in events:
            if isinstance(event, Call):
                text = self.differentiated(event)
                if any(_mention(name).search(text) for name in tracked):
                    return True
                continue
            value = self.code(event.value)
            mentioned = any(_mention(name).search(value) for name in tracked)
            if type(event) is cst.AugAssign:
                if mentioned:
                    tracked.add(self.code(event.target))
                continue
            for target in event.targets:
                for name in _target_names(target.target, self.code):
                    if mentioned:
                        tracked.add(name)
                    else:
                        tracked.discard(name)
            if not tracked:
                return False
        return False

    def returned(self, function: Function, names: set[str], after: int) -> bool:
        """One of `names`, or a name assigned from them after `after`, is in a `return`
        of the function: its caller gets the value (and may differentiate it)."""
        tracked = set(names)
        for order, node in self.assignments(function):
            if order <= after:
                continue
            if any(_mention(name).search(self.code(node.value)) for name in tracked):
                if type(node) is cst.AugAssign:
                    tracked.add(self.code(node.target))
                else:
                    tracked.update(name for target in node.targets for name in _target_names(target.target, self.code))
        return any(
            _mention(name).search(self.code(value)) for value in function.returns for name in tracked
        )

    def feeds_backward(self, call: Call) -> bool:
        """The value of `call` is differentiated by a backward of its function: inside
        the backward's own expression, or through the names it is assigned to."""
        key = id(call.node)
        if key in self._feeds:
            return self._feeds[key]
        function = call.site.function
        result = False
        backwards = [other for other in self.backward_calls(function) if other.site.order >= call.site.order]
        if backwards:
            if any(graph_reaches(other.node, call.node) for other in backwards):
                result = True
            else:
                result = self._assigned_value_reaches_backward(call, function)
        self._feeds[key] = result
        return result

    def _assigned_value_reaches_backward(self, call: Call, function: Function) -> bool:
        statement = call.site.statements[-1] if call.site.statements else None
        if type(statement) is not cst.SimpleStatementLine:
            return False
        for small in statement.body:
            if type(small) in (cst.Assign, cst.AugAssign) and contains(small.value, call.node):
                if not graph_reaches(small.value, call.node):
                    return False  # `features = backbone(x).detach()`
                if type(small) is cst.AugAssign:
                    names = {self.code(small.target)}
                else:
                    names = {name for target in small.targets for name in _target_names(target.target, self.code)}
                return self.reaches_backward(function, names, call.site.order, skip=small)
        return False
