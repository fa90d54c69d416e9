"""LML1xx: autograd left on, or grad mode misused, where nobody needs gradients."""

from __future__ import annotations

import libcst as cst

from lintml.checks.base import Check, NodeFix, insert_after
from lintml.findings import Applicability

# Context managers that only work once called: `with torch.no_grad:` fails at run time.
_GRAD_MODE_CLASSES = ("no_grad", "enable_grad", "inference_mode")
_GRAD_MODE_MODULES = ("torch", "torch.autograd", "torch.autograd.grad_mode")
GRAD_MODE_CONTEXTS = frozenset(
    f"{module}.{name}" for module in _GRAD_MODE_MODULES for name in _GRAD_MODE_CLASSES
)
SET_GRAD_ENABLED = frozenset(f"{module}.set_grad_enabled" for module in _GRAD_MODE_MODULES)


class GradModeNotCalled(Check):
    """`with torch.no_grad:` without the call: a TypeError when it runs.

    `torch.no_grad`, `torch.enable_grad` and `torch.inference_mode` are classes; the
    context manager is an instance of them. `torch.set_grad_enabled` needs the mode as
    its argument.
    """

    code = "LML103"
    name = "grad-mode-not-called"
    family = "gradients"
    summary = "A grad-mode context manager is used without being called"
    fix_safety = Applicability.SAFE
    triggers = ("no_grad", "enable_grad", "inference_mode", "set_grad_enabled")

    def visit_WithItem(self, node: cst.WithItem) -> None:
        manager = node.item
        if isinstance(manager, cst.Call):
            return
        qualified = self.context.qualified_name(manager)
        written = self.context.code_for(manager)
        if qualified in GRAD_MODE_CONTEXTS:
            self.report(
                manager,
                f"`{written}` is used without being called: `with {written}:` fails at run "
                f"time (the class is not a context manager, its instances are); write `with {written}():`",
                NodeFix(f"Call `{written}()`", (insert_after(manager, "()"),)),
            )
        elif qualified in SET_GRAD_ENABLED:
            self.report(
                manager,
                f"`{written}` needs the mode as its argument: write "
                f"`with {written}(False):` (or `True`)",
            )

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        # Visited before the engine enters the function's scope: decorators are
        # evaluated in the enclosing one. `@torch.no_grad` (no parentheses) is fine on
        # PyTorch 2; `@torch.set_grad_enabled` calls it with the function as the mode.
        for decorator in node.decorators:
            if isinstance(decorator.decorator, cst.Call):
                continue
            if self.context.qualified_name(decorator.decorator) in SET_GRAD_ENABLED:
                written = self.context.code_for(decorator.decorator)
                self.report(
                    decorator.decorator,
                    f"`@{written}` passes the function as the mode and raises TypeError; "
                    f"write `@{written}(False)` (or `@torch.no_grad()`)",
                )

    def visit_Call(self, node: cst.Call) -> None:
        if node.args:
            return
        if self.context.qualified_name(node.func) in SET_GRAD_ENABLED:
            written = self.context.code_for(node.func)
            self.report(
                node,
                f"`{written}()` is called without the mode and raises TypeError; "
                f"write `{written}(False)` (or `True`)",
            )
