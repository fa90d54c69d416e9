"""LML1xx: autograd left on, or grad mode misused, where nobody needs gradients."""

from __future__ import annotations

import libcst as cst

import re

from lintml.analysis.context import LIGHTNING_TRAIN_HOOKS
from lintml.analysis.program import BACKWARD_METHODS, Function, Site
from lintml.checks.base import Check, NodeFix, insert_after, insert_line_before, replace_node
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


# Triggers shared by the rules that need a model: any file that could hold one.
MODEL_TRIGGERS = (
    "eval", "Module", "from_pretrained", "parameters", "state_dict", "create_model",
    "models.", "hub.load", "jit.load", "from_config",
)  # fmt: skip


class InferenceWithoutNoGrad(Check):
    """A model forward at inference outside any grad-disabled region.

    With autograd on, every forward records a graph and keeps the activations that a
    backward would need; at inference no backward comes, so that memory and time are
    wasted (often 2x the activation memory, and slower kernels).
    """

    code = "LML101"
    name = "inference-without-no-grad"
    family = "gradients"
    summary = "A model runs forward for inference with autograd on"
    fix_safety = Applicability.UNSAFE
    triggers = MODEL_TRIGGERS

    def visit_Call(self, node: cst.Call) -> None:
        context = self.context
        site = context.program.site(node)
        if site is None or site.broken_grad_with:
            return
        function = site.function
        model = context.models.forward_key(node, function)
        if model is None or context.contexts.grad_disabled(site):
            return
        signal = context.contexts.inference_signal(site, model)
        if signal is None:
            return
        written = context.code_for(node.func)
        self.report(
            node,
            f"`{written}(...)` runs with autograd on although this is inference ({signal}): "
            f"it records a graph and keeps activations no backward will use; "
            f"run it under `torch.inference_mode()` or `torch.no_grad()`",
            self._fix(site),
        )

    def _fix(self, site: Site) -> NodeFix | None:
        """Decorate the enclosing function, or wrap a script's top-level statement."""
        torch_name, import_edit = self.context.torch_reference()
        extra = (import_edit,) if import_edit is not None else ()
        function = site.function
        if not function.is_module_level:
            if function.is_async:
                return None  # the decorator does not cover an awaited coroutine
            edit = insert_line_before(function.node, f"@{torch_name}.inference_mode()")
            return NodeFix(
                f"Decorate `{function.name}` with `@{torch_name}.inference_mode()`",
                (*extra, edit),
                Applicability.UNSAFE,
            )
        statement = site.statements[0] if site.statements else None
        if statement is None or _has_multiline_string(statement):
            return None  # re-indenting would change the string's contents
        code = self.context.code_for(statement)
        body = "".join(
            ("    " + line if line.strip() else line) for line in code.splitlines(keepends=True)
        ).rstrip("\r\n")
        return NodeFix(
            f"Wrap the statement in `with {torch_name}.inference_mode():`",
            (*extra, replace_node(statement, f"with {torch_name}.inference_mode():\n{body}")),
            Applicability.UNSAFE,
        )


def _has_multiline_string(node: cst.CSTNode) -> bool:
    found = False

    class Finder(cst.CSTVisitor):
        def visit_SimpleString(self, string: cst.SimpleString) -> None:
            nonlocal found
            found = found or "\n" in string.value

        def visit_FormattedString(self, string: cst.FormattedString) -> None:
            nonlocal found
            found = found or "\n" in cst.Module([]).code_for_node(string)

    node.visit(Finder())
    return found


# Losses from torch.nn.functional: their results carry the graph of their inputs.
FUNCTIONAL_LOSSES = frozenset(
    f"torch.nn.functional.{name}"
    for name in (
        "cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
        "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "ctc_loss",
        "cosine_embedding_loss", "margin_ranking_loss", "triplet_margin_loss", "poisson_nll_loss",
        "gaussian_nll_loss", "multilabel_soft_margin_loss", "soft_margin_loss",
        "hinge_embedding_loss", "multi_margin_loss", "multilabel_margin_loss",
    )
)  # fmt: skip
# Methods whose result has no graph (or no tensor at all).
DETACHING_METHODS = frozenset(
    {"item", "detach", "tolist", "numpy", "argmax", "argmin", "eq", "ne", "gt", "lt", "ge", "le",
     "size", "dim", "numel", "nonzero", "long", "int", "bool", "sign"}
)  # fmt: skip
DETACHING_FUNCTIONS = frozenset({"float", "int", "bool", "len", "str", "round", "abs"})


class LossAccumulatedWithGraph(Check):
    """`total += loss` in a loop, where `loss` still carries its autograd graph.

    Each iteration's graph (and the activations it saved) stays reachable from the
    accumulator, so memory grows with every step until the loop ends.
    """

    code = "LML102"
    name = "loss-accumulated-with-graph"
    family = "gradients"
    summary = "A loss tensor that carries its graph is accumulated across loop iterations"
    fix_safety = Applicability.SAFE
    triggers = ("loss", "backward")

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.operator, cst.AddAssign):
            self._check(node, node.target, node.value, numeric_target=True)

    def visit_Assign(self, node: cst.Assign) -> None:
        # `total = total + loss`
        value = node.value
        if len(node.targets) != 1 or not isinstance(value, cst.BinaryOperation) or not isinstance(value.operator, cst.Add):
            return
        target = self.context.code_for(node.targets[0].target)
        if self.context.code_for(value.left) == target:
            self._check(node, node.targets[0].target, value.right, numeric_target=True)
        elif self.context.code_for(value.right) == target:
            self._check(node, node.targets[0].target, value.left, numeric_target=True)

    def visit_Call(self, node: cst.Call) -> None:
        # `losses.append(loss)`
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value == "append" and len(node.args) == 1 and not node.args[0].keyword:
            self._check(node, func.value, node.args[0].value, numeric_target=False)

    def _check(self, statement: cst.CSTNode, accumulator: cst.BaseExpression, term: cst.BaseExpression, *, numeric_target: bool) -> None:
        context = self.context
        site = context.program.site(statement)
        if site is None:
            return
        function = site.function
        if not (site.loop is not None or function.name in LIGHTNING_TRAIN_HOOKS):
            return
        if context.contexts.grad_disabled(site) or context.contexts.is_model_code(function) and function.name not in LIGHTNING_TRAIN_HOOKS:
            return
        origin = self._graph_origin(term, function, site.order)
        if origin is None:
            return
        accumulated = context.code_for(accumulator)
        if self._backpropagated(accumulated, function):
            return  # accumulated on purpose, for one backward later
        written = context.code_for(term)
        detach = "item" if numeric_target and self._starts_as_number(accumulator, function) else "detach"
        self.report(
            term,
            f"`{written}` ({origin}) still carries its autograd graph, so accumulating it into "
            f"`{accumulated}` keeps every iteration's graph alive; use `{_call_on(written, term, detach)}`",
            NodeFix(f"Use `.{detach}()`", (_append_call(term, detach),)),
        )

    def _graph_origin(self, term: cst.BaseExpression, function: Function, order: int, depth: int = 0) -> str | None:
        """Why `term` is a tensor with a graph, or None if it is not known to be one."""
        if depth > 6:
            return None
        context = self.context
        if isinstance(term, cst.BinaryOperation):
            return self._graph_origin(term.left, function, order, depth + 1) or self._graph_origin(term.right, function, order, depth + 1)
        if isinstance(term, cst.Call):
            func = term.func
            qualified = context.qualified_name(func)
            if qualified in FUNCTIONAL_LOSSES:
                return f"the result of `{qualified.rsplit('.', 1)[-1]}`"
            if isinstance(func, cst.Name) and func.value in DETACHING_FUNCTIONS:
                return None
            if isinstance(func, cst.Attribute) and func.attr.value in DETACHING_METHODS:
                return None
            if context.models.forward_key(term, function) is not None:
                return "a model's output"
            if self._is_criterion(func, function):
                return "the result of a loss function"
            if isinstance(func, cst.Attribute) and func.attr.value in ("mean", "sum", "float", "to", "cuda", "squeeze", "view", "reshape"):
                return self._graph_origin(func.value, function, order, depth + 1)
            return None
        if isinstance(term, cst.Attribute) and term.attr.value == "loss":
            base = term.value
            if isinstance(base, cst.Call) and context.models.forward_key(base, function) is not None:
                return "a model output's `.loss`"
            if self._graph_origin(base, function, order, depth + 1) == "a model's output":
                return "a model output's `.loss`"
            return None
        if isinstance(term, cst.Subscript):
            return self._graph_origin(term.value, function, order, depth + 1)
        key = function.key(term)
        if key is None:
            return None
        bindings = [b for b in function.bindings.get(key, []) if b.order < order and b.value is not None]
        if not bindings:
            return None
        latest = bindings[-1]
        if latest.tuple_index is not None:
            return None
        origin = self._graph_origin(latest.value, function, latest.order, depth + 1)
        if origin is not None:
            return origin
        if self._backpropagated(context.code_for(term), function) and isinstance(latest.value, (cst.Call, cst.BinaryOperation, cst.Attribute)):
            if not (isinstance(latest.value, cst.Call) and isinstance(latest.value.func, cst.Attribute) and latest.value.func.attr.value in DETACHING_METHODS):
                return "it is backpropagated"
        return None

    def _is_criterion(self, func: cst.BaseExpression, function: Function) -> bool:
        """A name bound to a `torch.nn.*Loss` instance (here, in the class or the module)."""
        key = function.key(func)
        if key is None:
            return False
        scopes = [function]
        if key.startswith("self.") and function.cls is not None:
            scopes = list(function.cls.methods.values())
        else:
            scopes.append(self.context.models.owner_of(key, function))
        for scope in scopes:
            for binding in scope.bindings.get(key, []):
                value = binding.value
                if isinstance(value, cst.Call):
                    qualified = self.context.qualified_name(value.func) or ""
                    if qualified.startswith("torch.nn.") and qualified.endswith("Loss"):
                        return True
        return False

    def _backpropagated(self, accumulated: str, function: Function) -> bool:
        """Whether a backward in the function reaches the accumulator (`total.backward()`,
        `torch.stack(losses).mean().backward()`, `accelerator.backward(total)`)."""
        pattern = re.compile(rf"(?<![\w.]){re.escape(accumulated)}(?![\w])")
        for call in function.calls:
            if call.method in BACKWARD_METHODS and call.site.order in function.backward_orders:
                if pattern.search(self.context.code_for(call.node)):
                    return True
        return False

    def _starts_as_number(self, accumulator: cst.BaseExpression, function: Function) -> bool:
        key = function.key(accumulator)
        if key is None:
            return False
        return any(
            isinstance(binding.value, (cst.Integer, cst.Float))
            for binding in function.bindings.get(key, [])
        )


def _call_on(written: str, term: cst.BaseExpression, method: str) -> str:
    if isinstance(term, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)):
        return f"{written}.{method}()"
    return f"({written}).{method}()"


def _append_call(term: cst.BaseExpression, method: str):
    if isinstance(term, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) and not term.lpar:
        return insert_after(term, f".{method}()")
    return replace_node(term, f"({cst.Module([]).code_for_node(term)}).{method}()")
