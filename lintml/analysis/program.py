"""What a file does, in source order: functions, classes, loops, bindings, calls.

One walk over the tree records the facts that the model, context and call-graph
questions are answered from. Every fact carries an `order` (its position in a pre-order
walk), so "before" and "after" within a function are comparisons of integers.
Nothing here decides what is a model or reports anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import libcst as cst

from lintml.analysis.imports import ImportTable, Scope, dotted_name
from lintml.analysis.walk import SCOPE_OUTER_FIELDS, SkippedLeaves, child_nodes, is_node

_DEF_NAME = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)", re.M)
_WORD_BOUNDARY = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def words(identifier: str) -> list[str]:
    """`run_evalLoop2` -> ['run', 'eval', 'loop', '2']: snake_case and camelCase words."""
    return [word.lower() for word in _WORD_BOUNDARY.findall(identifier)]


def key_of(expression: cst.BaseExpression, self_name: str | None) -> str | None:
    """A trackable name for an expression: `model`, or `self.model` in a method."""
    if type(expression) is cst.Name:
        return expression.value
    if (
        type(expression) is cst.Attribute
        and type(expression.value) is cst.Name
        and self_name is not None
        and expression.value.value == self_name
    ):
        return f"self.{expression.attr.value}"
    return None


# Methods that return the module they are called on: a chain through them keeps the model.
MODULE_RETURNING_METHODS = frozenset(
    {"to", "cuda", "cpu", "half", "float", "bfloat16", "double", "eval", "train",
     "requires_grad_", "to_empty", "share_memory", "xpu", "mps", "type"}
)  # fmt: skip


def chain_base(expression: cst.BaseExpression) -> cst.BaseExpression:
    """`model.to(device).half()` -> `model`: strip calls of module-returning methods."""
    while (
        type(expression) is cst.Call
        and type(expression.func) is cst.Attribute
        and expression.func.attr.value in MODULE_RETURNING_METHODS
    ):
        expression = expression.func.value
    return expression


@dataclass(eq=False)
class Class:
    node: cst.ClassDef
    name: str
    scope: Scope  # where the class statement is
    methods: dict[str, Function] = field(default_factory=dict)


@dataclass(eq=False)
class Loop:
    node: cst.For | cst.While
    function: Function
    parent: Loop | None
    iter_words: frozenset[str]
    start: int
    end: int = 0
    backward_orders: list[int] = field(default_factory=list)
    step_calls: list[Call] = field(default_factory=list)

    def encloses(self, order: int) -> bool:
        return self.start <= order <= self.end

    @property
    def outer_loops(self):
        loop: Loop | None = self
        while loop is not None:
            yield loop
            loop = loop.parent


@dataclass(eq=False)
class Site:
    """Where a node is: its function, innermost loop and lexical grad mode."""

    order: int
    function: Function
    loop: Loop | None
    # "off" inside `with torch.no_grad()` and friends, "on" inside `enable_grad()`
    grad: str | None
    broken_grad_with: bool  # inside `with torch.no_grad:` (LML103)
    statements: tuple[cst.CSTNode, ...]  # enclosing statements, outermost first
    # words of what enclosing comprehensions iterate over (`[f(x) for x in val_loader]`)
    comprehension_words: frozenset[str] = frozenset()


@dataclass(eq=False)
class Binding:
    key: str
    value: cst.BaseExpression | None  # None: bound by a for target, with-as, import...
    order: int
    site: Site
    tuple_index: int | None = None  # `a, b = value`: which element
    statement: cst.CSTNode | None = None


@dataclass(eq=False)
class Call:
    node: cst.Call
    site: Site
    receiver_key: str | None  # `model` in `model.eval()`, after stripping module chains
    method: str | None  # `eval` in `model.eval()`
    callee: str | None  # `evaluate` in `evaluate(model)` / `self.evaluate(model)`
    via_self: bool = False


@dataclass(eq=False)
class Function:
    node: cst.FunctionDef | cst.Module
    name: str
    scope: Scope
    parent: Function | None
    cls: Class | None
    params: list[str] = field(default_factory=list)
    annotations: dict[str, cst.BaseExpression] = field(default_factory=dict)
    decorators: list[cst.BaseExpression] = field(default_factory=list)
    is_async: bool = False
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    returns: list[cst.BaseExpression] = field(default_factory=list)
    loops: list[Loop] = field(default_factory=list)
    backward_orders: list[int] = field(default_factory=list)
    step_calls: list[Call] = field(default_factory=list)
    grad_off_statement_order: int | None = None  # `torch.set_grad_enabled(False)` on its own
    # every `torch.set_grad_enabled(False|True)` on its own: (order, "off"/"on"), in order
    grad_statements: list[tuple[int, str]] = field(default_factory=list)
    end: int = 0

    @property
    def is_module_level(self) -> bool:
        return type(self.node) is cst.Module

    @cached_property  # asked of every call and binding in the method; its parameters and decorators are set first
    def self_name(self) -> str | None:
        """The name of `self` in a method (its first parameter)."""
        if self.cls is None or not self.params:
            return None
        if any(_decorator_name(d) in ("staticmethod", "classmethod") for d in self.decorators):
            return None
        return self.params[0]

    @property
    def trains(self) -> bool:
        """Calls backward or steps something: training code, not inference."""
        return bool(self.backward_orders or self.step_calls)

    def key(self, expression: cst.BaseExpression) -> str | None:
        return key_of(expression, self.self_name)


def owner_of(key: str, function: Function) -> Function:
    """The function whose binding of `key` is visible in `function` (for a global: the
    module); `self.<attr>` belongs to the method itself."""
    if key.startswith("self."):
        return function
    current: Function | None = function
    while current is not None:
        if key in current.bindings:
            return current
        current = current.parent
    return function


def _decorator_name(expression: cst.BaseExpression) -> str | None:
    name = dotted_name(expression.func if type(expression) is cst.Call else expression)
    return name.rsplit(".", 1)[-1] if name else None


GRAD_OFF = frozenset(
    {"torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.autograd.inference_mode",
     "torch.autograd.grad_mode.no_grad", "torch.autograd.grad_mode.inference_mode"}
)  # fmt: skip
GRAD_ON = frozenset({"torch.enable_grad", "torch.autograd.enable_grad", "torch.autograd.grad_mode.enable_grad"})
SET_GRAD = frozenset({"torch.set_grad_enabled", "torch.autograd.set_grad_enabled"})
AUTOGRAD_GRAD = frozenset({"torch.autograd.grad"})
BACKWARD_METHODS = frozenset({"backward", "manual_backward"})


def _is_false(node: cst.BaseExpression | None) -> bool:
    return type(node) is cst.Name and node.value == "False"


def grad_mode_of(call: cst.BaseExpression, imports: ImportTable, scope: Scope) -> str | None:
    """"off" / "on" for a grad-mode context manager or decorator expression, else None."""
    target = call.func if type(call) is cst.Call else call
    qualified = imports.qualified_name(target, scope)
    if qualified is None:
        return None
    args = call.args if type(call) is cst.Call else ()
    if qualified in GRAD_OFF:
        # inference_mode(False) / inference_mode(mode=False) leave grad mode alone
        if qualified.endswith("inference_mode") and args and _is_false(args[0].value):
            return None
        return "off"
    if qualified in GRAD_ON:
        return "on"
    if qualified in SET_GRAD and type(call) is cst.Call and args:
        value = args[0].value
        if _is_false(value):
            return "off"
        if type(value) is cst.Name and value.value == "True":
            return "on"
    return None


def named_grad_off(expression: cst.BaseExpression, imports: ImportTable, scope: Scope) -> bool:
    """A wrapper of torch's grad modes imported from another library, known by its name:
    `from ultralytics.utils.torch_utils import smart_inference_mode`. For decorators and
    `with` items only; a name the file defines itself is not taken for one."""
    target = expression.func if type(expression) is cst.Call else expression
    qualified = imports.qualified_name(target, scope)
    if qualified is None or qualified.split(".", 1)[0] == "torch":
        return False  # not imported, or torch's own (known exactly by `grad_mode_of`)
    name = qualified.rsplit(".", 1)[-1].lower()
    if "no_grad" not in name and "inference_mode" not in name:
        return False
    args = expression.args if type(expression) is cst.Call else ()
    return not (args and _is_false(args[0].value))  # `smart_inference_mode(False)`


# per node type: is it a statement, and which `_visit_*` method (or `_walk_body`) walks it
_IS_STATEMENT: dict[type, bool] = {}
_NO_WORDS: frozenset[str] = frozenset()
_HANDLERS: dict[type, object] = {}


class Program:
    """The facts of one module. Build once per file; every check shares it."""

    def __init__(self, module: cst.Module, imports: ImportTable, filename: str = "", source: str | None = None) -> None:
        self.module = module
        self.imports = imports
        self.filename = filename
        self.functions: dict[int, Function] = {}
        self.classes: dict[str, list[Class]] = {}
        self.class_of_node: dict[int, Class] = {}
        self.sites: dict[int, Site] = {}
        self.calls: dict[int, Call] = {}
        self._order = 0
        self._loop: Loop | None = None
        self._grad: list[str | None] = [None]
        self._broken: int = 0
        self._statements: list[cst.CSTNode] = []
        self._statements_tuple: tuple[cst.CSTNode, ...] | None = ()
        self._comprehension_words: list[frozenset[str]] = []
        # functions used as values (`step = self._sample`, `torch.compile(f)`): they
        # have callers lintml cannot see
        self._def_names = frozenset(_DEF_NAME.findall(module.code if source is None else source))
        self._called: set[int] = set()
        self.value_references: list[tuple[Function, str, cst.CSTNode]] = []
        self.module_function = Function(module, "<module>", imports.module_scope, None, None)
        self.functions[id(module)] = self.module_function
        self._function = self.module_function
        self._walk_body(module)
        self.module_function.end = self._order

    def release(self) -> None:
        """Break the reference cycles of the facts (a site names its function, which lists
        its sites), so that the file's tree is freed the moment the check ends rather than
        by a later cyclic collection: left to the collector, every tree survives into the
        oldest generation and each full collection walks all of it again."""
        for function in self.functions.values():
            function.__dict__.clear()
        for classes in self.classes.values():
            for cls in classes:
                cls.__dict__.clear()
        for site in self.sites.values():
            site.__dict__.clear()
        self.__dict__.clear()

    # -- lookups ---------------------------------------------------------------------

    def site(self, node: cst.CSTNode) -> Site | None:
        return self.sites.get(id(node))

    def function_of(self, node: cst.CSTNode) -> Function | None:
        return self.functions.get(id(node))

    def all_functions(self) -> list[Function]:
        return list(self.functions.values())

    # -- the walk --------------------------------------------------------------------

    def _site(self) -> Site:
        grad = None
        for mode in reversed(self._grad):
            if mode is not None:
                grad = mode
                break
        statements = self._statements_tuple  # one tuple for the sites of a statement
        if statements is None:
            statements = self._statements_tuple = tuple(self._statements)
        words = self._comprehension_words
        return Site(
            self._order,
            self._function,
            self._loop,
            grad,
            self._broken > 0,
            statements,
            frozenset().union(*words) if words else _NO_WORDS,
        )

    def _walk_body(self, node: cst.CSTNode) -> None:
        for child in child_nodes(node):
            child_type = type(child)
            if child_type is cst.Name:  # a third of all nodes: visited without the walk's round
                self._visit_Name(child)
            elif not _SKIPPED[child_type]:
                self._walk(child)

    def _walk_value(self, value) -> None:
        if type(value) in (list, tuple):
            for item in value:
                if is_node(item) and not _SKIPPED[type(item)]:
                    self._walk(item)
        elif is_node(value) and not _SKIPPED[type(value)]:
            self._walk(value)

    def _walk(self, node: cst.CSTNode) -> None:
        self._order += 1
        node_type = type(node)
        is_statement = _IS_STATEMENT.get(node_type)
        if is_statement is None:
            is_statement = _IS_STATEMENT[node_type] = issubclass(
                node_type, (cst.BaseCompoundStatement, cst.SimpleStatementLine)
            )
        if is_statement:
            self._statements.append(node)
            self._statements_tuple = None
        handler = _HANDLERS.get(node_type)
        if handler is None:
            handler = _HANDLERS[node_type] = getattr(Program, f"_visit_{node_type.__name__}", Program._walk_body)
        handler(self, node)
        if is_statement:
            self._statements.pop()
            self._statements_tuple = None

    def _visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        for name in SCOPE_OUTER_FIELDS[cst.FunctionDef]:
            self._walk_value(getattr(node, name))
        cls = self.class_of_node.get(id(self._statements[-2])) if len(self._statements) > 1 else None
        if cls is not None and not _directly_in_class(cls, node):
            cls = None
        scope = self.imports.scope_of(node) or self._function.scope
        function = Function(
            node, node.name.value, scope, self._function, cls, is_async=node.asynchronous is not None
        )
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            function.params.append(param.name.value)
            if param.annotation is not None:
                function.annotations[param.name.value] = param.annotation.annotation
        function.decorators = [decorator.decorator for decorator in node.decorators]
        if function.cls is not None:
            function.cls.methods.setdefault(function.name, function)
        self.functions[id(node)] = function
        outer = (self._function, self._loop, self._grad, self._broken)
        self._function, self._loop, self._grad, self._broken = function, None, [None], 0
        for param in function.params:
            function.bindings.setdefault(param, [])
        self._walk_body(node)
        function.end = self._order
        self._function, self._loop, self._grad, self._broken = outer

    def _visit_ClassDef(self, node: cst.ClassDef) -> None:
        for name in SCOPE_OUTER_FIELDS[cst.ClassDef]:
            self._walk_value(getattr(node, name))
        cls = Class(node, node.name.value, self._function.scope)
        self.classes.setdefault(cls.name, []).append(cls)
        self.class_of_node[id(node)] = cls
        self._walk_body(node)

    def _visit_For(self, node: cst.For) -> None:
        self._walk_value(node.iter)
        self._enter_loop(node, node.iter)
        self._walk_value(node.target)
        self._bind_target(node.target, None, None)
        self._walk_value(node.body)
        self._leave_loop()
        self._walk_value(node.orelse)

    def _visit_While(self, node: cst.While) -> None:
        self._enter_loop(node, node.test)
        self._walk_value(node.test)
        self._walk_value(node.body)
        self._leave_loop()
        self._walk_value(node.orelse)

    def _enter_loop(self, node, iterable: cst.BaseExpression) -> None:
        loop = Loop(node, self._function, self._loop, self._iter_words(iterable), self._order)
        self._function.loops.append(loop)
        self._loop = loop

    def _iter_words(self, iterable: cst.BaseExpression | None) -> frozenset[str]:
        """The words of what a loop or comprehension iterates over."""
        identifiers = re.findall(r"[A-Za-z_][A-Za-z0-9_]*|\"[^\"]*\"|'[^']*'", self.module.code_for_node(iterable)) if iterable is not None else []
        # `self` in `self.val_loader` is the receiver, not part of the loader's name
        identifiers = [name for name in identifiers if name != self._function.self_name]
        return frozenset(word for identifier in identifiers for word in words(identifier))

    def _leave_loop(self) -> None:
        self._loop.end = self._order
        self._loop = self._loop.parent

    def _visit_comprehension(self, node: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp) -> None:
        iterated: set[str] = set()
        comp_for: cst.CompFor | None = node.for_in
        while comp_for is not None:
            iterated |= self._iter_words(comp_for.iter)
            comp_for = comp_for.inner_for_in
        self._comprehension_words.append(frozenset(iterated))
        self._walk_body(node)
        self._comprehension_words.pop()

    _visit_ListComp = _visit_SetComp = _visit_GeneratorExp = _visit_DictComp = _visit_comprehension

    def _visit_With(self, node: cst.With) -> None:
        modes = []
        broken = False
        for item in node.items:
            self._walk_value(item.item)
            manager = item.item
            mode = grad_mode_of(manager, self.imports, self._function.scope)
            if mode is None and named_grad_off(manager, self.imports, self._function.scope):
                mode = "off"
            modes.append(mode)
            if type(manager) is not cst.Call:
                qualified = self.imports.qualified_name(manager, self._function.scope)
                broken = broken or qualified in GRAD_OFF or qualified in GRAD_ON or qualified in SET_GRAD
            if item.asname is not None:
                self._walk_value(item.asname)
                self._bind_target(item.asname.name, None, None)
        mode = next((m for m in reversed(modes) if m is not None), None)
        self._grad.append(mode)
        self._broken += broken
        self._walk_value(node.body)
        self._broken -= broken
        self._grad.pop()

    def _visit_Assign(self, node: cst.Assign) -> None:
        self._walk_value(node.value)
        self.sites[id(node)] = self._site()
        for target in node.targets:
            self._walk_value(target.target)
            self._bind_target(target.target, node.value, node)

    def _visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._walk_body(node)
        self.sites[id(node)] = self._site()

    def _visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._walk_value(node.value)
        self._walk_value(node.target)
        if node.value is not None:
            self._bind_target(node.target, node.value, node)

    def _visit_Return(self, node: cst.Return) -> None:
        self._walk_body(node)
        if node.value is not None:
            self._function.returns.append(node.value)

    def _visit_Attribute(self, node: cst.Attribute) -> None:
        self._walk_value(node.value)  # `.attr` is a name of the object's, not a variable
        if (
            id(node) not in self._called
            and node.attr.value in self._def_names
            and type(node.value) is cst.Name
            and node.value.value in (self._function.self_name, "cls")
        ):
            self.value_references.append((self._function, node.attr.value, node))

    def _visit_Arg(self, node: cst.Arg) -> None:
        self._walk_value(node.value)  # a keyword is not a reference

    def _visit_Param(self, node: cst.Param) -> None:
        self._walk_value(node.annotation)
        self._walk_value(node.default)

    def _visit_Name(self, node: cst.Name) -> None:
        if id(node) not in self._called and node.value in self._def_names:
            self.value_references.append((self._function, node.value, node))

    def _visit_Call(self, node: cst.Call) -> None:
        self._called.add(id(node.func))
        self._walk_body(node)
        self._order += 1  # a call's order comes after its arguments'
        site = self._site()
        self.sites[id(node)] = site
        function = self._function
        receiver_key = method = callee = None
        via_self = False
        func = node.func
        if type(func) is cst.Attribute:
            method = func.attr.value
            base = chain_base(func.value)
            receiver_key = function.key(base)
            if type(func.value) is cst.Name and func.value.value in (function.self_name, "cls") and function.cls:
                callee, via_self = method, True
        elif type(func) is cst.Name:
            callee = func.value
        call = Call(node, site, receiver_key, method, callee, via_self)
        self.calls[id(node)] = call
        function.calls.append(call)
        if method in BACKWARD_METHODS or self.imports.qualified_name(func, function.scope) in AUTOGRAD_GRAD:
            self._record_backward(site.order)
        elif method == "step":
            self._record_step(call)
        statement_mode = self._grad_statement_mode(node, function)
        if statement_mode is not None:
            # `torch.set_grad_enabled(False)` as a statement: off for the rest of the
            # function, or until a `torch.set_grad_enabled(True)`
            function.grad_statements.append((site.order, statement_mode))
            if statement_mode == "off" and function.grad_off_statement_order is None:
                function.grad_off_statement_order = site.order

    def _grad_statement_mode(self, node: cst.Call, function: Function) -> str | None:
        """"off"/"on" for `torch.set_grad_enabled(False|True)` written as a statement. Only
        that call sets the mode by itself: `torch.no_grad()` on its own line, or
        `ctx = torch.no_grad()`, only makes a context manager."""
        statement = self._statements[-1] if self._statements else None
        if type(statement) is not cst.SimpleStatementLine:
            return None
        if not any(type(small) is cst.Expr and small.value is node for small in statement.body):
            return None
        if self.imports.qualified_name(node.func, function.scope) not in SET_GRAD:
            return None
        return grad_mode_of(node, self.imports, function.scope)

    def _record_backward(self, order: int) -> None:
        self._function.backward_orders.append(order)
        loop = self._loop
        while loop is not None:
            loop.backward_orders.append(order)
            loop = loop.parent

    def _record_step(self, call: Call) -> None:
        self._function.step_calls.append(call)
        loop = self._loop
        while loop is not None:
            loop.step_calls.append(call)
            loop = loop.parent

    def _bind_target(self, target: cst.BaseExpression, value, statement, index: int | None = None) -> None:
        function = self._function
        if type(target) in (cst.Tuple, cst.List):
            for position, element in enumerate(target.elements):
                inner = element.value
                if type(element) is cst.StarredElement:
                    self._bind_target(inner, None, statement)
                else:
                    self._bind_target(inner, value, statement, position)
            return
        key = function.key(target)
        if key is None:
            return
        site = self._site()
        binding = Binding(key, value, self._order, site, index, statement)
        function.bindings.setdefault(key, []).append(binding)


# leaves the walk has nothing to do at (`Integer`, `Add`, ...; not `Name`): not walked,
# and not counted in the orders (which only compare)
_SKIPPED = SkippedLeaves(lambda node_type: hasattr(Program, f"_visit_{node_type.__name__}"))


def _directly_in_class(cls: Class, node: cst.FunctionDef) -> bool:
    body = cls.node.body
    return type(body) is cst.IndentedBlock and any(statement is node for statement in body.body)
