"""Same-file calls: who calls a function, and what they pass for each parameter.

Answers "every caller of this function does X" questions. A function with no caller in
the file has no known callers: such questions answer "unknown", never "yes".
"""

from __future__ import annotations

from functools import cached_property

import libcst as cst

from lintml.analysis.imports import dotted_name
from lintml.analysis.program import Call, Function, Program


class CallGraph:
    def __init__(self, program: Program) -> None:
        self.program = program
        self._resolved: dict[int, Function | None] = {}

    @cached_property
    def _callers(self) -> dict[int, list[Call]]:
        callers: dict[int, list[Call]] = {}
        for function in self.program.all_functions():
            for call in function.calls:
                callee = self.resolve(call)
                if callee is not None:
                    callers.setdefault(id(callee.node), []).append(call)
        return callers

    @cached_property
    def _escaping(self) -> set[int]:
        """Functions used as values somewhere in the file, not only called."""
        escaping: set[int] = set()
        for function in self.program.all_functions():
            if function.is_module_level:
                continue
            for user, name, node in self.program.value_references:
                if name != function.name:
                    continue
                if type(node) is cst.Attribute:
                    if function.cls is not None and user.cls is function.cls:
                        escaping.add(id(function.node))
                elif function.cls is None and function.parent is not None and function.parent.is_module_level:
                    # a module-level function passed around by name; a closure returned
                    # by its factory is still meant to be called as it is
                    escaping.add(id(function.node))
        return escaping

    def escapes(self, function: Function) -> bool:
        """Used as a value (`step = self._sample`, `torch.compile(fn)`, a callback):
        it may run from places lintml cannot see, so its callers are not all known."""
        return id(function.node) in self._escaping

    def callers(self, function: Function) -> list[Call]:
        return self._callers.get(id(function.node), [])

    def resolve(self, call: Call) -> Function | None:
        """The same-file function a call runs: `f(...)`, `self.f(...)`, or `C(...)` (its
        `__init__`)."""
        key = id(call.node)
        if key not in self._resolved:
            self._resolved[key] = self._resolve(call)
        return self._resolved[key]

    def _resolve(self, call: Call) -> Function | None:
        if call.callee is None:
            return None
        caller = call.site.function
        if call.via_self:
            cls = caller.cls
            return cls.methods.get(call.callee) if cls is not None else None
        if type(call.node.func) is not cst.Name:
            return None
        # a plain name: a def in an enclosing function or at module level, not shadowed
        function: Function | None = caller
        while function is not None:
            for candidate in self._defs_in(function):
                if candidate.name == call.callee:
                    return candidate
            if call.callee in function.bindings and not function.is_module_level:
                return None  # shadowed by a local binding
            function = function.parent
        for cls in self.program.classes.get(call.callee, []):
            if cls.scope is self.program.module_function.scope:
                return cls.methods.get("__init__")
        return None

    @cached_property
    def _nested_defs(self) -> dict[int, list[Function]]:
        defs: dict[int, list[Function]] = {}
        for function in self.program.all_functions():
            if function.parent is not None and function.cls is None:
                defs.setdefault(id(function.parent.node), []).append(function)
        return defs

    def _defs_in(self, function: Function) -> list[Function]:
        return self._nested_defs.get(id(function.node), [])

    def argument(self, call: Call, callee: Function, parameter: str) -> cst.BaseExpression | None:
        """The expression a call passes for `parameter` of `callee` (None if not known)."""
        params = callee.params
        # `self` (or a classmethod's `cls`) is bound by the call, not passed
        bound_first = callee.self_name is not None or _is_classmethod(callee)
        skip = 1 if (bound_first and (call.via_self or callee.name == "__init__")) else 0
        for arg in call.node.args:
            if arg.keyword is not None and arg.keyword.value == parameter:
                return arg.value
        positional = [arg for arg in call.node.args if arg.keyword is None]
        if any(arg.star for arg in positional):
            return None
        try:
            index = params.index(parameter) - skip
        except ValueError:
            return None
        if 0 <= index < len(positional):
            return positional[index].value
        return None


def _is_classmethod(function: Function) -> bool:
    return function.cls is not None and bool(function.params) and any(
        (dotted_name(decorator) or "").rsplit(".", 1)[-1] == "classmethod" for decorator in function.decorators
    )
