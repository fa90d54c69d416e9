"""LML5xx: training-loop hygiene."""

from __future__ import annotations

import libcst as cst

from lintml.analysis.program import Function
from lintml.checks.base import Anchor, Check, NodeFix, delete_between


class ForwardCalledDirectly(Check):
    """`model.forward(x)` on a model, outside the model's own code.

    `nn.Module.__call__` runs the forward pre-hooks, the forward hooks and the backward
    hooks around `forward`; calling `forward` directly skips every one of them (pruning
    masks, FSDP2's parameter gathering, `model.compile()`'s compiled `__call__`).
    """

    code = "LML502"
    triggers = (".forward",)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not (type(func) is cst.Attribute and func.attr.value == "forward"):
            return
        context = self.context
        site = context.program.site(node)
        if site is None:
            return
        function = site.function
        # An nn.Module's own methods call `self.forward`, `super().forward` and, in
        # library model code, their sub-layers' `forward` on purpose.
        if context.models.in_module_class(function):
            return
        key = context.models.forward_key(node, function)
        if key is None:
            return  # not a model by the evidence rules (or a pipeline)
        if self._instance_of_plain_class(key, function):
            return
        written = context.code_for(func.value)
        self.report(
            node,
            f"`{written}.forward(...)` skips the module's forward and backward hooks; "
            f"call `{written}(...)` instead",
            NodeFix(f"Call `{written}(...)`", (delete_between(Anchor(func.value, "end"), Anchor(func, "end")),)),
        )

    def _instance_of_plain_class(self, key: str, function: Function) -> bool:
        """`planner = Planner()` with `class Planner:` (no base at all) of this file: an
        object with its own `forward` method, never an nn.Module (Clarification 1)."""
        models = self.context.models
        owner = models.owner_of(key, function)
        for binding in owner.bindings.get(key, []):
            value = binding.value
            if type(value) is cst.Call and type(value.func) is cst.Name:
                cls = models.file_class(value.func.value)
                if cls is not None and all(
                    type(base.value) is cst.Name and base.value.value == "object" for base in cls.node.bases
                ):
                    return True
        return False
