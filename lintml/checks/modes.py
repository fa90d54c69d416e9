"""LML2xx: models in the wrong train/eval mode, and mode methods that never ran."""

from __future__ import annotations

import libcst as cst

from lintml.checks.base import Check, NodeFix, insert_after
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
