"""Build the analysis of a small source snippet and find its nodes, for the analysis tests.

`analyse(source)` parses the (dedented) source into a `FileContext`, exactly as the
engine does, and wraps it with lookups: the function named `f` (or `C.m`), the call
written `model(x)` or the call on line 3, its site, the loops of a function. Lookups
fail loudly (an `AssertionError` naming what was asked for) rather than return None,
so a test that asks for a node the snippet does not have says so.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from functools import cached_property

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from lintml.analysis.models import ModelInfo, Mode
from lintml.analysis.program import Call, Function, Loop, Site
from lintml.checks.base import FileContext


def analyse(source: str, filename: str = "example.py") -> Analysed:
    source = textwrap.dedent(source)
    module = cst.parse_module(source)
    return Analysed(FileContext(filename, source, module))


@dataclass(eq=False)
class Analysed:
    context: FileContext

    @property
    def program(self):
        return self.context.program

    @property
    def callgraph(self):
        return self.context.callgraph

    @property
    def models(self):
        return self.context.models

    @property
    def contexts(self):
        return self.context.contexts

    def code(self, node: cst.CSTNode) -> str:
        return self.context.module.code_for_node(node)

    # -- functions -------------------------------------------------------------------

    def function(self, name: str = "<module>") -> Function:
        """The function named `name` (not a method); `C.m` for method `m` of class `C`;
        `<module>` for the top level. Exactly one must match."""
        if name == "<module>":
            return self.program.module_function
        class_name, _, function_name = name.rpartition(".")
        found = [
            function
            for function in self.program.all_functions()
            if function.name == function_name
            and not function.is_module_level
            and (function.cls.name if function.cls is not None else "") == class_name
        ]
        assert len(found) == 1, f"{len(found)} functions named {name!r}"
        return found[0]

    # -- calls -----------------------------------------------------------------------

    def calls(self, text: str) -> list[Call]:
        """Every call whose code is exactly `text`, in source order."""
        found = [call for call in self.program.calls.values() if self.code(call.node) == text]
        return sorted(found, key=lambda call: call.site.order)

    def call(self, text: str, index: int = 0) -> Call:
        """The call written `text` (the `index`-th one in source order)."""
        found = self.calls(text)
        assert len(found) > index, f"no call #{index} written {text!r}; calls: {self._call_texts()}"
        return found[index]

    def calls_on_line(self, line: int) -> list[Call]:
        """The calls that start on `line` (1-based, of the dedented source), in source order."""
        return sorted(
            (call for call in self.program.calls.values() if self._positions[call.node].start.line == line),
            key=lambda call: call.site.order,
        )

    def call_on_line(self, line: int, text: str | None = None) -> Call:
        """The one call on `line` (the one written `text` when the line has several)."""
        found = [call for call in self.calls_on_line(line) if text is None or self.code(call.node) == text]
        assert len(found) == 1, f"{len(found)} calls on line {line} written {text!r}"
        return found[0]

    @cached_property
    def _positions(self):
        wrapper = MetadataWrapper(self.context.module, unsafe_skip_copy=True)
        return wrapper.resolve(PositionProvider)

    def site(self, text: str, index: int = 0) -> Site:
        """Where the call written `text` is."""
        return self.call(text, index).site

    def _call_texts(self) -> list[str]:
        return sorted(self.code(call.node) for call in self.program.calls.values())

    # -- loops -----------------------------------------------------------------------

    def loop(self, function: str = "<module>", index: int = 0) -> Loop:
        """The `index`-th loop of `function`, in source order (outer before inner)."""
        loops = self.function(function).loops
        assert len(loops) > index, f"{function} has {len(loops)} loops"
        return loops[index]

    # -- models ----------------------------------------------------------------------

    def is_model(self, key: str, function: str = "<module>") -> bool:
        return self.models.is_model(key, self.function(function))

    def mode_at_call(self, key: str, text: str, index: int = 0) -> Mode:
        """The mode of model `key` just before the call written `text`."""
        call = self.call(text, index)
        return self.models.mode_at(key, call.site.function, call.site.order)[0]

    def info(self, text: str, index: int = 0) -> ModelInfo:
        """What the call written `text` evaluates to (`models.info`)."""
        call = self.call(text, index)
        return self.models.info(call.node, call.site.function, call.site.order)

    def forward_key(self, text: str, index: int = 0) -> str | None:
        call = self.call(text, index)
        return self.models.forward_key(call.node, call.site.function)

    # -- contexts --------------------------------------------------------------------

    def grad_disabled(self, text: str, index: int = 0) -> bool:
        return self.contexts.grad_disabled(self.site(text, index))

    def inference_signal(self, text: str, index: int = 0) -> str | None:
        """Why the forward written `text` is inference (None: it is not)."""
        call = self.call(text, index)
        key = self.models.forward_key(call.node, call.site.function)
        return self.contexts.inference_signal(call.site, key)
