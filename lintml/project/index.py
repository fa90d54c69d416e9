"""What one module defines and does, read with CPython's `ast` (no LibCST): its classes
(bases, the layers `__init__` builds), its functions (parameters, what they do to each
parameter and `self.<attr>`, the calls they make and what they pass), its module-level
bindings and imports.

Names are kept as the module spells them, made absolute through its imports
(`nn.Dropout` -> `torch.nn.Dropout`, `.unet.UNet` -> `models.unet.UNet`, a class of
the module itself -> `<module>.<Class>`); resolving them to other project modules is
the summaries' job. Everything here is plain data (strings, tuples, dicts), cheap to
store and to compare.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

# Values, as tuples (hashable, and stored as they are):
#   ("param", name)              a parameter of the function
#   ("self", attr)               `self.attr`
#   ("name", name)               another name: a local, a global, an import
#   ("call", callee, chain)      a call of `callee` (absolute dotted name, "self.<method>",
#                                or None), then mode-setting methods in `chain`
#                                (`Net().to(d).eval()` -> chain ("eval",))
#   ("pretrained", owner, chain) `owner.from_pretrained(...)`
#   ("item", base, key)          `base[key]` or `base.key` of a container or object
#   ("dict", ((key, value), ...)) a dict literal, or nn.ModuleDict / dict(...) of one
#   ("scalar",)                  a literal, `.item()`, `.tolist()`, `.numpy()`, arithmetic on them
#   ("either", (value, ...))     `a if c else b`
#   None                         nothing lintml can read
Ref = tuple | None

# methods that return the object they are called on (a model stays a model)
_CHAIN = frozenset({"to", "cuda", "cpu", "half", "float", "bfloat16", "double", "requires_grad_", "xpu", "mps", "type"})
_SCALAR_METHODS = frozenset({"item", "tolist", "numpy"})
_GRAD_OFF = frozenset({"torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.autograd.inference_mode"})
_ZERO_METHODS = frozenset({"zero_grad"})
# the text of an attribute `.training`: a dot, then spaces, line breaks, continuations or
# comments, then the name
_TRAINING_TEXT = re.compile(r"\.(?:[\s\\]|#[^\n]*\n)*training")  # each part starts differently: linear
_TRAINING_BYTES = re.compile(_TRAINING_TEXT.pattern.encode())


# Refs met in the indexes read by this process, each kept once (see `_Reader.ref`), and
# the keyword arguments of a call that has none: shared, never changed.
_REFS: dict = {}
_NO_KEYWORDS: dict = {}


@dataclass(slots=True)  # no __dict__: a large project keeps thousands
class CallSite:
    line: int
    callee: str | None  # absolute dotted name, or "self.<method>"
    args: tuple[Ref, ...]
    kwargs: dict[str, Ref]
    grad_off: bool  # lexically inside `with torch.no_grad()` / `inference_mode()`


@dataclass(slots=True)  # no __dict__: a large project keeps thousands
class FunctionFacts:
    name: str  # "train", "Trainer.fit"
    params: list[str]
    self_name: str | None
    grad_off: bool  # decorated with torch.no_grad / inference_mode
    # (line, target, op): target a parameter, "self.<attr>" or a global name; op one of
    # eval, train, forward, forward-nograd, zero, step, backward, evidence
    ops: list[tuple[int, str, str]] = field(default_factory=list)
    calls: list[CallSite] = field(default_factory=list)
    bindings: dict[str, list[Ref]] = field(default_factory=dict)
    returns: list[Ref] = field(default_factory=list)
    backward: bool = False
    steps: bool = False


@dataclass(slots=True)  # no __dict__: a large project keeps thousands
class ClassFacts:
    name: str
    bases: list[str]  # absolute dotted names
    methods: dict[str, FunctionFacts] = field(default_factory=dict)
    # calls `__init__` makes (what builds its layers): (callee, literal arguments)
    layer_calls: list[tuple[str, dict]] = field(default_factory=list)
    # `self.x = <parameter>` in `__init__` then `self.x(...)` somewhere: a submodule
    # handed in, whose layers are not visible
    injected_modules: bool = False
    # a layer lintml cannot read (an unresolved factory, a dynamic `setattr`)
    opaque_layers: bool = False
    uses_training_flag: bool = False  # `self.training` read in some method
    # what `forward` returns when every return is one activation: "softmax",
    # "log_softmax" or "sigmoid" (for LML506: an activation applied before the loss)
    forward_activation: str | None = None
    method_names: set[str] = field(default_factory=set)


@dataclass(slots=True)  # no __dict__: a large project keeps thousands
class ModuleFacts:
    module: str
    imports: dict[str, str] = field(default_factory=dict)  # local name -> absolute dotted
    classes: dict[str, ClassFacts] = field(default_factory=dict)
    functions: dict[str, FunctionFacts] = field(default_factory=dict)  # top-level defs
    top: FunctionFacts | None = None  # the module's own code, as a function "<module>"
    bindings: dict[str, list[Ref]] = field(default_factory=dict)  # module-level names
    defined: set[str] = field(default_factory=set)  # names of its top-level classes and defs
    mentions_training: bool = True  # its text has `.training` (else no `self.training` to look for)


def facts_text(facts: ModuleFacts) -> str:
    """A text of a module's index that is the same in every process for the same facts:
    the dataclasses' own `repr` (C for the lists, dicts and tuples inside; dicts keep
    their source order), with the two sets of names sorted (a set's order depends on
    the process's hash seed). A recursive canonical form in Python cost 1.8% of a cold
    end-user run."""
    classes = [
        (name, [getattr(cls, field) for field in _CLASS_FIELDS], sorted(cls.method_names))
        for name, cls in facts.classes.items()
    ]
    return repr((
        [getattr(facts, field) for field in _MODULE_FIELDS], sorted(facts.defined), classes,
    ))  # fmt: skip


# the fields `facts_text` writes as they are: all but the sets (and the classes, each
# written with its set sorted)
_SETS = ("defined", "method_names")
_MODULE_FIELDS = tuple(name for name in ModuleFacts.__dataclass_fields__ if name not in (*_SETS, "classes"))
_CLASS_FIELDS = tuple(name for name in ClassFacts.__dataclass_fields__ if name not in _SETS)


def package_of(module: str, is_package: bool) -> str:
    return module if is_package else module.rpartition(".")[0]


def absolute_import(module: str | None, level: int, package: str) -> str | None:
    """`from ..a import b` inside `package`: the absolute name of `..a`."""
    if not level:
        return module or None
    parts = package.split(".") if package else []
    if level - 1 >= len(parts):
        return None  # above the top package: not a name of the project
    base = parts[: len(parts) - (level - 1)]
    if module:
        base.append(module)
    return ".".join(base) or None


def index_module(tree: ast.Module, module: str, is_package: bool = False, text: bytes | str | None = None) -> ModuleFacts:
    facts = ModuleFacts(module)
    if text is not None:
        found = (_TRAINING_BYTES if isinstance(text, bytes) else _TRAINING_TEXT).search(text)
        facts.mentions_training = found is not None
    package = package_of(module, is_package)
    for statement in _module_statements(tree.body):
        if isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.asname:
                    facts.imports[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    facts.imports[head] = head
        elif isinstance(statement, ast.ImportFrom):
            base = absolute_import(statement.module, statement.level, package)
            if base is None:
                continue
            for alias in statement.names:
                if alias.name != "*":
                    facts.imports[alias.asname or alias.name] = f"{base}.{alias.name}"
    facts.defined = {
        statement.name for statement in tree.body if isinstance(statement, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    }
    for statement in tree.body:
        if isinstance(statement, ast.ClassDef):
            facts.classes[statement.name] = _Reader(facts).read_class(statement)
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            facts.functions[statement.name] = _Reader(facts).read_function(statement, statement.name, None)
    top = _Reader(facts).read_body(tree.body)
    facts.top = top
    facts.bindings = top.bindings
    return facts


def _module_statements(body):
    """Module-level statements, also inside `if`/`try` (optional imports)."""
    for statement in body:
        yield statement
        if isinstance(statement, (ast.If, ast.Try)):
            for inner in (statement.body, statement.orelse, *(h.body for h in getattr(statement, "handlers", ()))):
                yield from _module_statements(inner)


class _Reader:
    """Reads one function body (or the module's own code) into FunctionFacts."""

    def __init__(self, module: ModuleFacts) -> None:
        self.module = module
        self.facts: FunctionFacts | None = None
        self.grad_off = 0
        self.cls: ClassFacts | None = None

    # -- names -----------------------------------------------------------------------

    def dotted(self, node: ast.AST) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(node.id)
        return ".".join(reversed(parts))

    def absolute(self, node: ast.AST) -> str | None:
        """The absolute dotted name an expression names, or None (a local value)."""
        dotted = self.dotted(node)
        if dotted is None:
            return None
        head, _, rest = dotted.partition(".")
        facts = self.facts
        if facts is not None and facts.self_name == head:
            return f"self.{rest}" if rest and "." not in rest else None
        if facts is not None and facts.name != "<module>" and (head in facts.params or head in facts.bindings):
            return None
        if head in self.module.imports:
            base = self.module.imports[head]
        elif head in self.module.defined:
            base = f"{self.module.module}.{head}"
        else:
            return None
        return f"{base}.{rest}" if rest else base

    # -- classes ---------------------------------------------------------------------

    def read_class(self, node: ast.ClassDef) -> ClassFacts:
        cls = ClassFacts(node.name, [name for base in node.bases if (name := self.absolute(base)) is not None])
        if len(cls.bases) != len(node.bases):
            cls.bases.append("?")  # a base lintml cannot name
        self.cls = cls
        cls.method_names = {s.name for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))}
        for statement in node.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                method = _Reader(self.module)
                method.cls = cls
                cls.methods[statement.name] = method.read_function(statement, f"{node.name}.{statement.name}", cls)
        init = next((s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == "__init__"), None)
        if init is not None:
            self._read_layers(init, cls)
        if self.module.mentions_training:
            for attribute in _nodes_in(node, (ast.Attribute,)):
                if attribute.attr == "training" and isinstance(attribute.value, ast.Name) and attribute.value.id == "self":
                    cls.uses_training_flag = True
                    break
        forward = next((s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == "forward"), None)
        if forward is not None:
            cls.forward_activation = _returned_activation(forward)
        return cls

    def _read_layers(self, init: ast.FunctionDef, cls: ClassFacts) -> None:
        params = {a.arg for a in (*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs)}
        injected: set[str] = set()
        reader = _Reader(self.module)
        reader.facts = FunctionFacts("__init__", sorted(params), "self", False)
        for node in _nodes_in(init, (ast.Call, ast.Assign)):
            if isinstance(node, ast.Call):
                callee = reader.absolute(node.func)
                if callee is None:
                    if isinstance(node.func, ast.Name) and node.func.id in params:
                        cls.opaque_layers = True  # a factory handed in
                    continue
                if callee == "setattr" or callee.endswith(".add_module"):
                    cls.opaque_layers = True
                cls.layer_calls.append((callee, _literal_args(node)))
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if (
                        isinstance(target, ast.Attribute)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == "self"
                        and isinstance(node.value, ast.Name)
                        and node.value.id in params
                    ):
                        injected.add(target.attr)
        for attr in injected:
            for method in cls.methods.values():
                if any(target == f"self.{attr}" and op.startswith("forward") for _, target, op in method.ops):
                    cls.injected_modules = True

    # -- functions -------------------------------------------------------------------

    def read_function(self, node, name: str, cls: ClassFacts | None) -> FunctionFacts:
        args = node.args
        params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
        decorators = [self.dotted(d.func if isinstance(d, ast.Call) else d) or "" for d in node.decorator_list]
        static = any(d.rsplit(".", 1)[-1] in ("staticmethod", "classmethod") for d in decorators)
        self_name = params[0] if cls is not None and params and not static else None
        grad_off = any(self._grad_off_name(d) for d in node.decorator_list)
        self.facts = FunctionFacts(name, params, self_name, grad_off)
        self._block(node.body)
        return self.facts

    def read_body(self, body) -> FunctionFacts:
        self.facts = FunctionFacts("<module>", [], None, False)
        self._block(body)
        return self.facts

    def _grad_off_name(self, node: ast.AST) -> bool:
        target = node.func if isinstance(node, ast.Call) else node
        name = self.absolute(target) or ""
        if name in _GRAD_OFF:
            return not (isinstance(node, ast.Call) and node.args and _literal(node.args[0]) is False)
        tail = name.rsplit(".", 1)[-1].lower()
        return not name.startswith("torch") and ("no_grad" in tail or "inference_mode" in tail)

    def _block(self, body) -> None:
        for statement in body:
            self._statement(statement)

    def _statement(self, node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return  # its own facts; nested functions are not followed
        if isinstance(node, (ast.With, ast.AsyncWith)):
            off = any(self._grad_off_name(item.context_expr) for item in node.items)
            for item in node.items:
                self._expression(item.context_expr)
            self.grad_off += off
            self._block(node.body)
            self.grad_off -= off
            return
        if isinstance(node, ast.Assign):
            self._expression(node.value)
            value = self.ref(node.value)
            for target in node.targets:
                self._bind(target, value)
            return
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            self._expression(node.value)
            self._bind(node.target, self.ref(node.value))
            return
        if isinstance(node, (ast.For, ast.AsyncFor)):
            self._expression(node.iter)
            self._bind(node.target, None)
            self._block(node.body)
            self._block(node.orelse)
            return
        if isinstance(node, ast.Return) and node.value is not None:
            self._expression(node.value)
            self.facts.returns.append(self.ref(node.value))
            return
        for field_name, value in ast.iter_fields(node):
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.stmt):
                        self._statement(item)
                    elif isinstance(item, ast.AST):
                        self._child(item)
            elif isinstance(value, ast.AST):
                self._child(value)

    def _child(self, node: ast.AST) -> None:
        if isinstance(node, ast.stmt):
            self._statement(node)
        elif isinstance(node, ast.expr):
            self._expression(node)
        else:  # handlers, match cases, comprehensions
            for child in ast.iter_child_nodes(node):
                self._child(child)

    def _bind(self, target: ast.AST, value: Ref) -> None:
        if isinstance(target, ast.Name):
            self.facts.bindings.setdefault(target.id, []).append(value)
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == self.facts.self_name:
            self.facts.bindings.setdefault(f"self.{target.attr}", []).append(value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for position, element in enumerate(target.elts):
                if isinstance(element, ast.Starred):
                    self._bind(element.value, None)
                else:
                    self._bind(element, ("item", value, position) if value is not None else None)

    def target_of(self, node: ast.AST) -> str | None:
        """A parameter, `self.<attr>` or a name: what an op applies to."""
        node = _chain_base(node)
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == self.facts.self_name:
            return f"self.{node.attr}"
        return None

    def _expression(self, node: ast.AST) -> None:
        for call in _calls_in(node):
            self._call(call)

    def _call(self, node: ast.Call) -> None:
        facts = self.facts
        func = node.func
        line = node.lineno
        if isinstance(func, ast.Attribute):
            method = func.attr
            target = self.target_of(func.value)
            if method in ("backward", "manual_backward"):
                facts.backward = True
                if method == "backward" and target is not None:
                    facts.ops.append((line, target, "backward"))
            elif method == "step":
                facts.steps = True
                if target is not None:
                    facts.ops.append((line, target, "step"))
                    for arg in node.args[:1]:  # scaler.step(optimizer)
                        inner = self.target_of(arg)
                        if inner is not None:
                            facts.ops.append((line, inner, "step"))
            if target is not None:
                if method == "eval" and not node.args:
                    facts.ops.append((line, target, "eval"))
                elif method == "train" and len(node.args) <= 1:
                    first = _literal(node.args[0]) if node.args else True
                    facts.ops.append((line, target, "eval" if first is False else ("train" if first is True else "mode")))
                elif method in _ZERO_METHODS:
                    facts.ops.append((line, target, "zero"))
                elif method == "forward":
                    facts.ops.append((line, target, "forward-nograd" if self._no_grad() else "forward"))
                elif method in ("parameters", "named_parameters", "state_dict"):
                    facts.ops.append((line, target, "evidence"))
        forwarded = self._forwarded(func)
        if forwarded is not None:
            facts.ops.append((line, forwarded, "forward-nograd" if self._no_grad() else "forward"))
        callee = self.absolute(func)
        if callee is not None:
            facts.calls.append(
                CallSite(
                    line,
                    callee,
                    tuple(None if isinstance(a, ast.Starred) else self.ref(a) for a in node.args),
                    {k.arg: self.ref(k.value) for k in node.keywords if k.arg is not None} or _NO_KEYWORDS,
                    self._no_grad(),
                )
            )

    def _forwarded(self, func: ast.AST) -> str | None:
        """What a call of `func` runs forward: `model(x)` of a parameter or local,
        `self.encoder(x)`, `self.models["g"](z)` (the container `self.models`)."""
        facts = self.facts
        while isinstance(func, ast.Subscript):
            func = func.value
        if isinstance(func, ast.Name):
            name = func.id
            if name == facts.self_name or name in self.module.imports or name in self.module.defined:
                return None
            return name if (name in facts.params or name in facts.bindings) else None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == facts.self_name:
            if self.cls is not None and func.attr in self.cls.method_names:
                return None  # `self.helper(...)`: a method, not a submodule
            return f"self.{func.attr}"
        return None

    def _no_grad(self) -> bool:
        return self.grad_off > 0 or self.facts.grad_off

    # -- values ----------------------------------------------------------------------

    def ref(self, node: ast.AST | None) -> Ref:
        """What `node` stands for, one shared tuple for equal values across the project
        (`("name", "torch")` is met thousands of times in a large one)."""
        found = self._ref(node)
        if found is None:
            return None
        try:
            return _REFS.setdefault(found, found)
        except TypeError:  # an unhashable key in it: kept as it is
            return found

    def _ref(self, node: ast.AST | None) -> Ref:
        if node is None:
            return None
        if isinstance(node, ast.Constant):
            return ("scalar",)
        if isinstance(node, ast.Name):
            facts = self.facts
            if node.id in facts.params and facts.name != "<module>":
                return ("param", node.id)
            return ("name", node.id)
        if isinstance(node, ast.IfExp):
            return ("either", (self.ref(node.body), self.ref(node.orelse)))
        if isinstance(node, ast.Dict):
            return ("dict", tuple((_key(k), self.ref(v)) for k, v in zip(node.keys, node.values) if k is not None))
        if isinstance(node, ast.Subscript):
            return ("item", self.ref(node.value), _key(node.slice))
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id == self.facts.self_name:
                return ("self", node.attr)
            absolute = self.absolute(node)
            if absolute is not None and not absolute.startswith("self."):
                return ("name", absolute)
            return ("item", self.ref(node.value), node.attr)
        if isinstance(node, ast.Call):
            return self._call_ref(node)
        if isinstance(node, (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.JoinedStr)):
            return None
        return None

    def _call_ref(self, node: ast.Call) -> Ref:
        chain: list[str] = []
        inner = node
        while isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr in (*_CHAIN, "eval", "train"):
            if inner.func.attr == "eval" and not inner.args:
                chain.append("eval")
            elif inner.func.attr == "train":
                first = _literal(inner.args[0]) if inner.args else True
                chain.append("eval" if first is False else "train")
            inner = inner.func.value
        chain.reverse()
        if not isinstance(inner, ast.Call):
            base = self.ref(inner)
            return ("chain", base, tuple(chain)) if base is not None else None
        func = inner.func
        if isinstance(func, ast.Attribute):
            if func.attr in _SCALAR_METHODS:
                return ("scalar",)
            if func.attr in ("from_pretrained", "from_single_file", "from_config"):
                owner = self.absolute(func.value)
                return ("pretrained", owner, tuple(chain), func.attr)
            if func.attr == "prepare" and len(inner.args) == 1 and not inner.keywords:
                return ("chain", self.ref(inner.args[0]), tuple(chain))
        callee = self.absolute(func)
        if callee in ("float", "int", "len", "str", "bool", "round"):
            return ("scalar",)
        if callee in ("dict",) or (callee or "").endswith("ModuleDict"):
            if inner.args and isinstance(inner.args[0], ast.Dict):
                return self.ref(inner.args[0])
            return ("dict", tuple((k.arg, self.ref(k.value)) for k in inner.keywords if k.arg))
        args = tuple(self.ref(a) for a in inner.args[:1])
        return ("call", callee, tuple(chain), args)


_ACTIVATIONS = ("log_softmax", "softmax", "sigmoid")


def _returned_activation(function: ast.FunctionDef) -> str | None:
    """The activation every `return` of `function` applies last, if one does."""
    found = set()
    for node in _nodes_in(function, (ast.Return,)):
        if isinstance(node, ast.Return):
            value = node.value
            name = None
            if isinstance(value, ast.Call):
                func = value.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
            found.add(name if name in _ACTIVATIONS else None)
    return found.pop() if len(found) == 1 else None


def _nodes_in(node: ast.AST, types: tuple):
    """The nodes of the given types under `node` (and `node` itself), in no set order:
    a plain stack over the fields that can hold nodes, several times cheaper than
    `ast.walk`."""
    stack = [node]
    pop, push = stack.pop, stack.append
    fields_of = _NODE_FIELDS.get
    while stack:
        current = pop()
        if isinstance(current, types):
            yield current
        current_type = type(current)
        fields = fields_of(current_type)
        if fields is None:
            fields = _node_fields(current_type)
        for name in fields:
            value = getattr(current, name, None)
            if type(value) is list:
                for item in value:
                    if type(item) not in _UNSEARCHED and isinstance(item, ast.AST):
                        push(item)
            elif type(value) not in _UNSEARCHED and isinstance(value, ast.AST):
                push(value)


# node type -> the fields to look into: not `ctx` (Load, Store) nor operators (`ast.Add`),
# which are nodes too, and nothing in a constant
_NODE_FIELDS: dict[type, tuple[str, ...]] = {ast.Constant: ()}
_LEAF_FIELDS = frozenset({"ctx", "op", "ops"})
# the commonest nodes, never searched for, and with nothing searched for inside
_UNSEARCHED = frozenset({ast.Name, ast.Constant})


def _node_fields(node_type: type) -> tuple[str, ...]:
    fields = _NODE_FIELDS[node_type] = tuple(name for name in node_type._fields if name not in _LEAF_FIELDS)
    return fields


def _calls_in(node: ast.AST):
    return _nodes_in(node, (ast.Call,))


def _chain_base(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (*_CHAIN, "eval", "train"):
        node = node.func.value
    return node


def _key(node: ast.AST | None):
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)):
        return node.value
    return None


def _literal(node: ast.AST):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return -node.operand.value if isinstance(node.operand.value, (int, float)) else ...
    return ...


def _literal_args(node: ast.Call) -> dict:
    args: dict = {str(i): _literal(a) for i, a in enumerate(node.args)}
    args.update({k.arg: _literal(k.value) for k in node.keywords if k.arg})
    return args
