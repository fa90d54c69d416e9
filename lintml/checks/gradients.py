"""LML1xx: autograd left on, or grad mode misused, where nobody needs gradients."""

from __future__ import annotations

import re

import libcst as cst

from lintml.analysis.context import LIGHTNING_TRAIN_HOOKS
from lintml.analysis.flow import contains
from lintml.analysis.program import BACKWARD_METHODS, Function, Site
from lintml.checks.base import Anchor, Check, NodeEdit, NodeFix, insert_after, insert_line_before, replace_node
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
    triggers = ("no_grad", "enable_grad", "inference_mode", "set_grad_enabled")

    def visit_WithItem(self, node: cst.WithItem) -> None:
        manager = node.item
        if type(manager) is cst.Call:
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
            if type(decorator.decorator) is cst.Call:
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


# Triggers shared by the rules that need a model: any file that could hold one. A model
# comes from a library (imported by name), from a class of the file (an `nn.Module`
# subclass, or one whose base lintml cannot resolve: `Module`, `...Model`, a `forward`),
# or from evidence (`.eval()`, `.parameters()`, `.state_dict()`).
MODEL_TRIGGERS = (
    "torch", "transformers", "diffusers", "peft", "timm", "sentence_transformers", "optimum",
    "lightning", "Module", "Model", "forward", "eval", "parameters", "state_dict",
)  # fmt: skip
# `model.requires_grad_(False)`: no parameter of the model requires grad any more.
class InferenceWithoutNoGrad(Check):
    """A model forward at inference outside any grad-disabled region.

    With autograd on, every forward records a graph and keeps the activations that a
    backward would need; at inference no backward comes, so that memory and time are
    wasted.
    """

    code = "LML101"
    triggers = MODEL_TRIGGERS

    def visit_Call(self, node: cst.Call) -> None:
        context = self.context
        site = context.program.site(node)
        if site is None or site.broken_grad_with:
            return  # `with torch.no_grad:` is LML103's finding (clarification 7)
        function = site.function
        if context.contexts.is_model_code(function):
            return  # model code is never an inference call site
        model = context.models.forward_key(node, function) or context.contexts.helper_forward(node, site)
        if model is None:
            return
        if context.contexts.grad_disabled(site) or context.contexts.grad_unknown(site):
            return
        signal = context.contexts.inference_signal(site, model)
        if signal is None or context.models.frozen(model, function, site.order):
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
        """Decorate the enclosing function when it only does inference; else wrap the
        outermost statement around the forward that holds no training step. Next to
        training code the wrapper is `no_grad()`: a tensor made in inference mode cannot
        take part in a later backward."""
        torch_name, import_edit = self.context.torch_reference()
        if torch_name is None:
            return None  # `torch` means something else here: no code can name it
        extra = (import_edit,) if import_edit is not None else ()
        function = site.function
        trains = self.context.contexts.trains(function)
        if not function.is_module_level and not trains:
            if function.is_async:
                return None  # the decorator does not cover an awaited coroutine
            edit = insert_line_before(function.node, f"@{torch_name}.inference_mode()")
            return NodeFix(
                f"Decorate `{function.name}` with `@{torch_name}.inference_mode()`",
                (*extra, edit),
                Applicability.UNSAFE,
            )
        statement = self._statement_to_wrap(site)
        if statement is None or _has_multiline_string(statement):
            return None  # re-indenting would change the string's contents
        manager = f"{torch_name}.no_grad()" if trains else f"{torch_name}.inference_mode()"
        return NodeFix(
            f"Wrap the statement in `with {manager}:`",
            (*extra, self._wrap(statement, f"with {manager}:")),
            Applicability.UNSAFE,
        )

    def _statement_to_wrap(self, site: Site) -> cst.CSTNode | None:
        """The outermost statement of the function around the site that can sit in a
        `with` block and holds no backward or optimizer step (wrapping training code in
        inference mode would break it)."""
        function = site.function
        statements = list(site.statements)
        if not function.is_module_level:
            inside = [index for index, statement in enumerate(statements) if statement is function.node]
            statements = statements[inside[-1] + 1 :] if inside else []
        flow = self.context.contexts.flow
        training = [call.node for call in flow.backward_calls(function)]
        training += [call.node for call in function.step_calls]
        previous: cst.CSTNode | None = None
        for statement in statements:
            in_block = not (type(previous) is cst.If and previous.orelse is statement)
            if (
                in_block
                and type(statement) not in (cst.FunctionDef, cst.ClassDef)
                and not any(contains(statement, node) for node in training)
            ):
                return statement
            previous = statement
        return None

    def _wrap(self, statement: cst.CSTNode, header: str):
        """Replace `statement` by `header` and the statement indented one level below it."""
        newline = self.context.module.default_newline
        bare = statement.with_changes(leading_lines=())
        if type(bare) is cst.SimpleStatementLine:
            # the trailing comment and newline lie outside the statement's span: kept as is
            bare = bare.with_changes(trailing_whitespace=cst.TrailingWhitespace(newline=cst.Newline(value="")))
        code = self.context.module.code_for_node(bare).rstrip("\r\n")
        lines = code.replace("{", "{{").replace("}", "}}").splitlines()
        body = newline.join(("{indent}    " + line if line.strip() else "") for line in lines)
        anchor = Anchor(statement, "start")
        return NodeEdit(anchor, Anchor(statement, "end"), f"{header}{newline}{body}", anchor)


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
     "size", "dim", "numel", "nonzero", "long", "int", "bool"}
)  # fmt: skip
# Builtins that turn a one-element tensor into a Python value.
DETACHING_FUNCTIONS = frozenset({"float", "int", "bool", "len", "str", "round"})
# Methods whose result keeps the graph of the tensor they are called on.
GRAPH_KEEPING_METHODS = frozenset(
    {"float", "double", "half", "to", "cuda", "cpu", "clone", "squeeze", "unsqueeze", "view", "reshape",
     "flatten", "contiguous", "abs", "neg", "exp", "log", "sqrt", "pow"}
)  # fmt: skip
# Attributes of a tensor (or of a model's output) that hold no graph.
NO_GRAPH_ATTRIBUTES = frozenset({"data", "shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "grad_fn"})
MODEL_OUTPUT = "a model's output"
# Reductions: with no argument, the result is a one-element tensor.
REDUCTIONS = frozenset({"mean", "sum", "max", "min", "norm", "prod"})


class LossAccumulatedWithGraph(Check):
    """`total += loss` in a loop, where `loss` still carries its autograd graph.

    Each iteration's graph stays reachable from the accumulator, so memory grows with
    every step until the accumulator is dropped.
    """

    code = "LML102"
    triggers = ("loss", "backward", *MODEL_TRIGGERS)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if type(node.operator) is cst.AddAssign:
            self._check(node, node.target, node.value, numeric_target=True)

    def visit_Assign(self, node: cst.Assign) -> None:
        # `total = total + loss`
        value = node.value
        if len(node.targets) != 1 or type(value) is not cst.BinaryOperation or type(value.operator) is not cst.Add:
            return
        target = self.context.code_for(node.targets[0].target)
        if self.context.code_for(value.left) == target:
            self._check(node, node.targets[0].target, value.right, numeric_target=True)
        elif self.context.code_for(value.right) == target:
            self._check(node, node.targets[0].target, value.left, numeric_target=True)

    def visit_Call(self, node: cst.Call) -> None:
        # `losses.append(loss)`
        func = node.func
        if type(func) is cst.Attribute and func.attr.value == "append" and len(node.args) == 1 and not node.args[0].keyword:
            self._check(node, func.value, node.args[0].value, numeric_target=False)

    def _check(self, statement: cst.CSTNode, accumulator: cst.BaseExpression, term: cst.BaseExpression, *, numeric_target: bool) -> None:
        context = self.context
        site = context.program.site(statement)
        if site is None:
            return
        function = site.function
        accumulated = context.code_for(accumulator)
        if not self._outlives_iteration(site, accumulator, accumulated):
            return
        if self._grad_disabled(site):
            return
        origin = self._graph_origin(term, function, site.order)
        if origin is None:
            return
        why, scalar = origin
        if self._accumulated_for_backward(accumulated, function, site):
            return  # accumulated on purpose, for one backward later
        if self._handed_to_caller(accumulated, site):
            return  # a loss helper: the caller may backpropagate the sum
        written = context.code_for(term)
        use_item = numeric_target and scalar and self._number_accumulator(accumulator, accumulated, function)
        detach = "item" if use_item else "detach"
        self.report(
            term,
            f"`{written}` ({why}) still carries its autograd graph, so accumulating it into "
            f"`{accumulated}` keeps every iteration's graph alive; use `{_call_on(written, term, detach)}`",
            NodeFix(f"Use `.{detach}()`", (_append_call(term, detach),)),
        )

    # -- the conditions of the rule, in the order of its page ------------------------

    def _outlives_iteration(self, site: Site, accumulator: cst.BaseExpression, accumulated: str) -> bool:
        """The accumulator lives across iterations of a loop (or across calls of
        Lightning's `training_step`, for an attribute of the module)."""
        function = site.function
        if site.loop is None:
            return function.name in LIGHTNING_TRAIN_HOOKS and accumulated.startswith(f"{function.self_name}.")
        return not self._reset_each_iteration(site, accumulator, accumulated)

    def _reset_each_iteration(self, site: Site, accumulator: cst.BaseExpression, accumulated: str) -> bool:
        """`running = 0` directly in the loop's body before the accumulation: nothing is
        carried over to the next iteration."""
        function = site.function
        key = function.key(accumulator)
        loop = site.loop
        if key is None or loop is None:
            return False
        for binding in function.bindings.get(key, []):
            if not (loop.start < binding.order < site.order) or binding.value is None:
                continue
            if re.search(rf"(?<![\w.]){re.escape(accumulated)}(?!\w)", self.context.code_for(binding.value)):
                continue  # `total = total * decay` keeps what came before
            statements = binding.site.statements
            inside = [index for index, statement in enumerate(statements) if statement is loop.node]
            if inside and len(statements) - inside[-1] == 2:
                return True  # the binding's line sits directly in the loop's body
        return False

    def _grad_disabled(self, site: Site) -> bool:
        """Under `no_grad` (or the like), or in model code other than `training_step`
        (Lightning runs `validation_step` and friends without grad)."""
        contexts = self.context.contexts
        function = site.function
        if contexts.grad_disabled(site) or contexts.grad_unknown(site):
            return True
        return contexts.is_model_code(function) and function.name not in LIGHTNING_TRAIN_HOOKS

    def _graph_origin(
        self, term: cst.BaseExpression, function: Function, order: int, depth: int = 0
    ) -> tuple[str, bool] | None:
        """Why `term` is a tensor with a graph, and whether it has one element; None if
        it is not known to carry a graph."""
        if depth > 6:
            return None
        context = self.context
        if type(term) is cst.BinaryOperation:
            sides = [self._graph_origin(side, function, order, depth + 1) for side in (term.left, term.right)]
            known = [side for side in sides if side is not None]
            if not known:
                return None
            return known[0][0], all(scalar for _, scalar in known)
        if type(term) is cst.UnaryOperation:
            return self._graph_origin(term.expression, function, order, depth + 1)
        if type(term) is cst.Call:
            return self._call_origin(term, function, order, depth)
        key = function.key(term)  # `loss`, `self.loss`
        if type(term) is cst.Attribute and key is None and term.attr.value not in NO_GRAPH_ATTRIBUTES:
            # a field of a model's output: `outputs.loss`, `outputs.logits`
            base_origin = self._graph_origin(term.value, function, order, depth + 1)
            if base_origin is None or base_origin[0] != MODEL_OUTPUT:
                return None
            return ("a model output's `.loss`", True) if term.attr.value == "loss" else base_origin
        if type(term) is cst.Subscript:
            base_origin = self._graph_origin(term.value, function, order, depth + 1)
            if base_origin is not None and base_origin[0] == MODEL_OUTPUT and _loss_key(term):
                return "a model output's `loss`", True
            return base_origin
        if key is None:
            return None
        bindings = [b for b in function.bindings.get(key, []) if b.order < order and b.value is not None]
        if not bindings:
            return None
        latest = bindings[-1]
        if latest.tuple_index is None:
            origin = self._graph_origin(latest.value, function, latest.order, depth + 1)
            if origin is not None:
                return origin
        computed = type(latest.value) in (cst.Call, cst.BinaryOperation, cst.Attribute, cst.Subscript)
        if computed and not _detaching_call(latest.value):
            backward = self._backward_on(context.code_for(term), function)
            if backward is not None:
                return "it is backpropagated", backward
        return None

    def _call_origin(self, term: cst.Call, function: Function, order: int, depth: int) -> tuple[str, bool] | None:
        context = self.context
        func = term.func
        qualified = context.qualified_name(func)
        if qualified in FUNCTIONAL_LOSSES:
            return f"the result of `{qualified.rsplit('.', 1)[-1]}`", not _reduces_to_none(term)
        if type(func) is cst.Name and func.value in DETACHING_FUNCTIONS:
            return None
        if type(func) is cst.Attribute and func.attr.value in DETACHING_METHODS:
            return None
        if context.models.forward_key(term, function) is not None:
            return MODEL_OUTPUT, False
        criterion = self._criterion(func, function)
        if criterion is not None:
            return "the result of a loss function", not _reduces_to_none(criterion)
        if type(func) is cst.Attribute and func.attr.value in REDUCTIONS | GRAPH_KEEPING_METHODS:
            base = self._graph_origin(func.value, function, order, depth + 1)
            if base is None:
                return None
            if func.attr.value in REDUCTIONS:
                return base[0], not term.args
            return base
        return None

    def _criterion(self, func: cst.BaseExpression, function: Function) -> cst.Call | None:
        """The `torch.nn.*Loss(...)` call a name is bound to (here, in the class or the module)."""
        key = function.key(func)
        if key is None:
            return None
        scopes = [function]
        if key.startswith("self.") and function.cls is not None:
            scopes = list(function.cls.methods.values())
        else:
            scopes.append(self.context.models.owner_of(key, function))
        for scope in scopes:
            for binding in scope.bindings.get(key, []):
                value = binding.value
                if type(value) is cst.Call:
                    qualified = self.context.qualified_name(value.func) or ""
                    if qualified.startswith("torch.nn.") and qualified.endswith("Loss"):
                        return value
        return None

    def _backward_on(self, name: str, function: Function) -> bool | None:
        """Whether a backward of the function differentiates `name` (None if none does),
        and whether that proves it has one element (`loss.backward()` without a
        `gradient` argument, `accelerator.backward(loss)`)."""
        found = None
        flow = self.context.contexts.flow
        pattern = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
        for call in flow.backward_calls(function):
            if pattern.search(flow.differentiated(call)):
                args = call.node.args
                implicit = call.method in BACKWARD_METHODS and (
                    not args or (len(args) == 1 and self.context.code_for(args[0].value) == name)
                )
                found = bool(found) or implicit
        return found

    def _accumulated_for_backward(self, accumulated: str, function: Function, site: Site) -> bool:
        """A backward reaches the accumulator: `total.backward()`,
        `torch.stack(losses).mean().backward()`, `accelerator.backward(total)`, or
        `avg = total / n` and `avg.backward()`."""
        if self._backward_on(accumulated, function) is not None:
            return True
        return self.context.contexts.flow.reaches_backward(function, {accumulated}, site.order)

    def _handed_to_caller(self, accumulated: str, site: Site) -> bool:
        """The function returns the accumulator without training or evaluating itself
        (`def total_loss(outputs, target)`): whether the sum is differentiated is up to
        its callers, which lintml cannot always see."""
        contexts = self.context.contexts
        function = site.function
        if function.is_module_level or contexts.trains(function):
            return False
        if contexts.inference_signal(site, None) is not None:
            return False  # an evaluation function: nobody differentiates what it returns
        return contexts.flow.returned(function, {accumulated}, site.order)

    def _number_accumulator(self, accumulator: cst.BaseExpression, accumulated: str, function: Function) -> bool:
        """The accumulator starts as a Python number and is never used as a tensor
        (`total.item()` later would fail on a float), so `.item()` keeps it a number."""
        key = function.key(accumulator)
        if key is None:
            return False
        owner = self.context.models.owner_of(key, function)
        scopes = [function, owner]
        where = owner.node
        if key.startswith("self.") and function.cls is not None:
            scopes = list(function.cls.methods.values())
            where = function.cls.node
        if re.search(rf"(?<![\w.]){re.escape(accumulated)}\s*\.", self.context.code_for(where)):
            return False
        return any(
            isinstance(_bound_value(binding), (cst.Integer, cst.Float))
            for scope in scopes
            for binding in scope.bindings.get(key, [])
        )


def _bound_value(binding) -> cst.BaseExpression | None:
    """What a binding gave its name: `0.0` for `total` in `total, n = 0.0, 0`."""
    value = binding.value
    if binding.tuple_index is None:
        return value
    if type(value) in (cst.Tuple, cst.List) and binding.tuple_index < len(value.elements):
        element = value.elements[binding.tuple_index]
        return None if type(element) is cst.StarredElement else element.value
    return None


def _reduces_to_none(call: cst.Call) -> bool:
    """`reduction="none"`: one loss per element, not a one-element tensor."""
    return any(
        arg.keyword is not None and arg.keyword.value == "reduction" and type(arg.value) is cst.SimpleString
        and arg.value.evaluated_value == "none"
        for arg in call.args
    )


def _loss_key(subscript: cst.Subscript) -> bool:
    """`outputs["loss"]`."""
    elements = subscript.slice
    if len(elements) != 1 or not isinstance(elements[0].slice, cst.Index):
        return False
    index = elements[0].slice.value
    return type(index) is cst.SimpleString and index.evaluated_value == "loss"


def _detaching_call(value: cst.BaseExpression) -> bool:
    if type(value) is cst.Call:
        func = value.func
        if type(func) is cst.Attribute and func.attr.value in DETACHING_METHODS:
            return True
        if type(func) is cst.Name and func.value in DETACHING_FUNCTIONS:
            return True
    return False


def _call_on(written: str, term: cst.BaseExpression, method: str) -> str:
    if type(term) in (cst.Name, cst.Attribute, cst.Call, cst.Subscript):
        return f"{written}.{method}()"
    return f"({written}).{method}()"


def _append_call(term: cst.BaseExpression, method: str):
    if type(term) in (cst.Name, cst.Attribute, cst.Call, cst.Subscript) and not term.lpar:
        return insert_after(term, f".{method}()")
    return replace_node(term, f"({cst.Module([]).code_for_node(term)}).{method}()")
