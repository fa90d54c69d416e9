"""Which device a value names, and where a model is moved.

A device expression is read without running anything: `"cpu"`, `"cuda:0"`,
`torch.device("cpu")`, `"cuda" if torch.cuda.is_available() else "cpu"`, a name bound
to one of those (every binding counts: each may be the one that runs), a `device_map`
of `from_pretrained`. The answer is the set of devices the value may be: `CPU`,
`ACCELERATOR` (CUDA, MPS, XPU, `device_map="auto"`), and `UNKNOWN` for what cannot be
read (a parameter, `args.device`, a call of another module).
"""

from __future__ import annotations

import libcst as cst

from lintml.analysis.program import Function, Program, chain_base, owner_of

CPU = "cpu"
ACCELERATOR = "accelerator"
UNKNOWN = "unknown"

_ACCELERATOR_PREFIXES = ("cuda", "mps", "xpu", "hpu", "npu", "tpu", "xla", "auto", "balanced", "sequential")
# Methods that move a module (or a tensor): `.to(device)`, `.cuda()`, `.cpu()`.
MOVE_METHODS = frozenset({"to", "cuda", "cpu", "xpu", "mps"})
_MAX_DEPTH = 6


def _string_device(text: str) -> frozenset[str]:
    text = text.strip().lower()
    if text == "cpu" or text.startswith("cpu:"):
        return frozenset({CPU})
    if text.startswith(_ACCELERATOR_PREFIXES):
        return frozenset({ACCELERATOR})
    return frozenset({UNKNOWN})


class Devices:
    def __init__(self, program: Program) -> None:
        self.program = program
        self.imports = program.imports

    def of(self, expression: cst.BaseExpression | None, function: Function, depth: int = 0) -> frozenset[str]:
        """The devices `expression`, evaluated in `function`, may name."""
        if expression is None or depth > _MAX_DEPTH:
            return frozenset({UNKNOWN})
        if type(expression) is cst.SimpleString:
            value = expression.evaluated_value
            return _string_device(value) if isinstance(value, str) else frozenset({UNKNOWN})
        if type(expression) is cst.FormattedString:
            head = expression.parts[0] if expression.parts else None
            if type(head) is cst.FormattedStringText:
                return _string_device(head.value)
            return frozenset({UNKNOWN})
        if type(expression) is cst.Integer:
            return frozenset({ACCELERATOR})  # `.to(0)`, `device_map=0`, `device=0`
        if (
            type(expression) is cst.UnaryOperation
            and type(expression.operator) is cst.Minus
            and type(expression.expression) is cst.Integer
        ):
            return frozenset({CPU})  # `pipeline(..., device=-1)`
        if type(expression) is cst.IfExp:
            return self.of(expression.body, function, depth + 1) | self.of(expression.orelse, function, depth + 1)
        if type(expression) is cst.Dict:
            found: frozenset[str] = frozenset()
            for element in expression.elements:
                if type(element) is not cst.DictElement:
                    return frozenset({UNKNOWN})
                found |= self.of(element.value, function, depth + 1)
            return found or frozenset({UNKNOWN})
        if type(expression) is cst.Call:
            qualified = self.imports.qualified_name(expression.func, function.scope)
            if qualified == "torch.device":
                argument = expression.args[0].value if expression.args else None
                return self.of(argument, function, depth + 1)
            return frozenset({UNKNOWN})
        key = function.key(expression)
        if key is not None:
            return self._of_key(key, function, depth)
        return frozenset({UNKNOWN})

    def _of_key(self, key: str, function: Function, depth: int) -> frozenset[str]:
        values = list(self.bound_values(key, function))
        if not values or any(value is None for value, _ in values):
            return frozenset({UNKNOWN})
        found: frozenset[str] = frozenset()
        for value, scope in values:
            found |= self.of(value, scope, depth + 1)
        return found

    def bound_values(self, key: str, function: Function):
        """(value, function) of every binding of `key` visible in `function`; a value of
        None for a parameter or a binding lintml cannot read."""
        if key.startswith("self."):
            scopes = list(function.cls.methods.values()) if function.cls is not None else [function]
        else:
            scopes = [owner_of(key, function)]
        for scope in scopes:
            if key in scope.params:
                yield None, scope
            for binding in scope.bindings.get(key, []):
                yield (binding.value if binding.tuple_index is None else None), scope

    # -- models ----------------------------------------------------------------------

    def of_move(self, call: cst.Call, function: Function) -> frozenset[str] | None:
        """Where a move call sends what it is called on: `.cuda()`, `.cpu()`,
        `.to(device)`; None when the call moves nothing (`.to(torch.float16)`)."""
        func = call.func
        if type(func) is not cst.Attribute or func.attr.value not in MOVE_METHODS:
            return None
        method = func.attr.value
        if method == "cpu":
            return frozenset({CPU})
        if method != "to":
            return frozenset({ACCELERATOR})
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == "device":
                return self.of(arg.value, function)
        positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
        if not positional:
            return None
        first = positional[0].value
        qualified = self.imports.qualified_name(first, function.scope) or ""
        if qualified.startswith("torch.") and qualified != "torch.device":
            return None  # `.to(torch.float16)`: a dtype
        devices = self.of(first, function)
        if devices == frozenset({UNKNOWN}) and not _looks_like_device(first, function):
            return None  # `.to(dtype)`, `.to(other_tensor)`: not known to be a device
        return devices

    def of_loading(self, call: cst.Call, function: Function) -> frozenset[str] | None:
        """Where `from_pretrained(..., device_map=...)` (or `device=`) puts the weights."""
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value in ("device_map", "device"):
                return self.of(arg.value, function)
        return None

    def chain_moves(self, expression: cst.BaseExpression, function: Function) -> list[frozenset[str]]:
        """The moves along a chain `X.from_pretrained(..., device_map=...).half().to(device)`."""
        moves: list[frozenset[str]] = []
        while type(expression) is cst.Call:
            func = expression.func
            move = self.of_move(expression, function)
            if move is not None:
                moves.append(move)
            if expression is chain_base(expression):
                # what makes it: `from_pretrained(..., device_map="cpu")`,
                # `SentenceTransformer(name, device="cpu")`
                loading = self.of_loading(expression, function)
                if loading is not None:
                    moves.append(loading)
                break
            expression = func.value
        return moves

    def model_moves(self, key: str, function: Function) -> list[frozenset[str]]:
        """Every move of the model `key` the file shows, in `function` (or, for a global,
        where it is bound; for `self.attr`, in every method of the class): calls such as
        `model.to(device)` and the chains it is bound from."""
        if key.startswith("self."):
            scopes = list(function.cls.methods.values()) if function.cls is not None else [function]
        else:
            owner = owner_of(key, function)
            scopes = [owner] if owner is function else [owner, function]
        moves: list[frozenset[str]] = []
        for scope in scopes:
            for call in scope.calls:
                if call.receiver_key == key:
                    move = self.of_move(call.node, scope)
                    if move is not None:
                        moves.append(move)
            bound = [b for b in scope.bindings.get(key, []) if b.value is not None and b.tuple_index is None]
            chains = [self.chain_moves(binding.value, scope) for binding in bound]
            if len(bound) > 1 and all(chains) and _on_exclusive_branches(bound):
                # `if gpu: m = M().cuda()` / `else: m = M().to("cpu")`: one of them runs, so
                # the model may be on either device (Amendment 15)
                moves.append(frozenset().union(*(chain[0] for chain in chains)))
            else:
                for chain in chains:
                    moves.extend(chain)
        return moves


def _on_exclusive_branches(bindings) -> bool:
    """Every pair of bindings sits on different branches of one `if` statement."""
    for index, first in enumerate(bindings):
        for second in bindings[index + 1 :]:
            a, b = first.site.statements, second.site.statements
            common = 0
            while common < min(len(a), len(b)) and a[common] is b[common]:
                common += 1
            if common == 0 or not isinstance(a[common - 1], cst.If) or common >= min(len(a), len(b)):
                return False
            branch = a[common - 1]
            body = branch.body.body if type(branch.body) is cst.IndentedBlock else ()
            if any(s is a[common] for s in body) == any(s is b[common] for s in body):
                return False  # both in the body, or both in the `else`
    return True


def _looks_like_device(expression: cst.BaseExpression, function: Function) -> bool:
    """`device`, `self.device`, `args.device`: a name that says it is a device."""
    text = expression.attr.value if type(expression) is cst.Attribute else getattr(expression, "value", "")
    return isinstance(text, str) and "device" in text.lower()
