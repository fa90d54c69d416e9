"""LML4xx: numeric precision."""

from __future__ import annotations

import re

import libcst as cst

from lintml.analysis.devices import CPU, Devices
from lintml.analysis.program import Function, chain_base
from lintml.checks.base import Check

HALF_DTYPES = frozenset({"torch.float16", "torch.half", "torch.bfloat16"})
SET_DEFAULT_DTYPE = "torch.set_default_dtype"

TF32_FLAGS = frozenset({"torch.backends.cuda.matmul.allow_tf32", "torch.backends.cudnn.allow_tf32"})
# The newer per-backend precision setting (PyTorch 2.9): "tf32" turns TF32 on.
TF32_PRECISION_FLAGS = frozenset(
    {
        "torch.backends.fp32_precision",
        "torch.backends.cuda.matmul.fp32_precision",
        "torch.backends.cudnn.fp32_precision",
        "torch.backends.cudnn.conv.fp32_precision",
        "torch.backends.cudnn.rnn.fp32_precision",
    }
)
SET_MATMUL_PRECISION = "torch.set_float32_matmul_precision"
TF32_MATMUL_PRECISIONS = frozenset({"high", "medium"})


def _argument(call: cst.Call, keyword: str) -> cst.BaseExpression | None:
    """The first positional argument, or the one passed as `keyword=`."""
    for arg in call.args:
        if arg.keyword is None and arg.star == "":
            return arg.value
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    return None


def _string(node: cst.BaseExpression | None) -> str | None:
    if type(node) is cst.SimpleString:
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


class HalfDefaultDtype(Check):
    """`torch.set_default_dtype(torch.float16)` (or `bfloat16`): every floating tensor
    created without an explicit dtype, parameters and optimizer state included, is half
    precision."""

    code = "LML404"
    triggers = ("set_default_dtype",)

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.qualified_name(node.func) != SET_DEFAULT_DTYPE:
            return
        dtype = _argument(node, "d")
        if dtype is None:
            return
        qualified = self.context.qualified_name(dtype)
        if qualified not in HALF_DTYPES:
            return
        written = self.context.code_for(dtype)
        self.report(
            node,
            f"The default dtype becomes `{written}`: every new floating tensor, the parameters, "
            "the loss and the optimizer state lose precision; keep float32 as the default and "
            "use autocast or an explicit `dtype=` where half precision is wanted",
        )


class Tf32Enabled(Check):
    """TF32 is switched on for float32 matmuls or convolutions: they run with a 10-bit
    mantissa on Ampere and newer GPUs. Informational."""

    code = "LML407"
    triggers = ("allow_tf32", "fp32_precision", "set_float32_matmul_precision")

    def visit_Assign(self, node: cst.Assign) -> None:
        value = node.value
        for target in node.targets:
            qualified = self.context.qualified_name(target.target)
            written = self.context.code_for(target.target).strip()
            ops = "convolutions" if qualified and ".cudnn" in qualified else "matmuls"
            if qualified in TF32_FLAGS and type(value) is cst.Name and value.value == "True":
                self._report(target.target, f"`{written} = True`", ops)
            elif qualified in TF32_PRECISION_FLAGS and _string(value) == "tf32":
                self._report(target.target, f'`{written} = "tf32"`', ops)

    def visit_Call(self, node: cst.Call) -> None:
        if self.context.qualified_name(node.func) != SET_MATMUL_PRECISION:
            return
        precision = _string(_argument(node, "precision"))
        if precision in TF32_MATMUL_PRECISIONS:
            self._report(node, f"`set_float32_matmul_precision({precision!r})`")

    def _report(self, node: cst.CSTNode, what: str, ops: str = "matmuls") -> None:
        self.report(
            node,
            f"{what} lets float32 {ops} run in TF32 (10-bit mantissa) on Ampere and newer GPUs: "
            "faster, but results differ from full float32",
        )


# -- LML401 / LML403: float16 models ---------------------------------------------------

FLOAT16_DTYPES = frozenset({"torch.float16", "torch.half"})
# dtype conversions of a module that are not float16
_OTHER_DTYPE_METHODS = frozenset({"float", "bfloat16", "double"})
_LOADERS = frozenset({"from_pretrained", "from_single_file"})
_DTYPE_KEYWORDS = ("torch_dtype", "dtype")
# words of an `if` test that make what it guards depend on the device
_DEVICE_GUARD = re.compile(r"cuda|gpu|cpu|device|mps|xpu|accelerat", re.I)
_CUDA_WORDS = re.compile(r"cuda|gpu", re.I)
_STORING_METHODS = frozenset({"save_pretrained", "push_to_hub", "state_dict", "save", "save_model"})
_RUNNING_METHODS = frozenset({"generate", "encode", "predict", "forward", "__call__", "eval", "sample"})


def _chain(expression: cst.BaseExpression) -> list[cst.Call]:
    """The calls of a chain `X.from_pretrained(...).half().to(device)`, outermost first."""
    calls: list[cst.Call] = []
    while type(expression) is cst.Call:
        calls.append(expression)
        if chain_base(expression) is expression:
            break
        expression = expression.func.value
    return calls


class _Float16(Check):
    """What LML401 and LML403 share: where a model is made float16."""

    def _is_float16(self, expression: cst.BaseExpression | None, function: Function, depth: int = 0) -> bool:
        """`torch.float16` / `torch.half`, or a name every binding of which is one; an
        `a if cond else b` is float16 only when both sides are."""
        if expression is None or depth > 4:
            return False
        if type(expression) is cst.IfExp:
            return self._is_float16(expression.body, function, depth + 1) and self._is_float16(
                expression.orelse, function, depth + 1
            )
        qualified = self.context.imports.qualified_name(expression, function.scope)
        if qualified in FLOAT16_DTYPES:
            return True
        if type(expression) is cst.SimpleString:
            return expression.evaluated_value in ("float16", "fp16", "half")
        key = function.key(expression)
        if key is None or qualified is not None:
            return False
        values = list(self.devices.bound_values(key, function))
        return bool(values) and all(
            value is not None and self._is_float16(value, scope, depth + 1) for value, scope in values
        )

    @property
    def devices(self) -> Devices:
        context = self.context
        if not hasattr(context, "_lintml_devices"):
            context._lintml_devices = Devices(context.program)
        return context._lintml_devices

    def _conversion(self, call: cst.Call, function: Function) -> cst.CSTNode | None:
        """The node that makes a float16 model in `call`: the `half` of `.half()`, the
        dtype of `.to(torch.float16)` or of `from_pretrained(..., torch_dtype=torch.float16)`."""
        func = call.func
        if type(func) is not cst.Attribute:
            return None
        method = func.attr.value
        if method == "half" and not call.args:
            if not self._model_subject(func.value, function, call):
                return None
            self._half_methods.add(id(func.attr))
            return func.attr
        if method == "to":
            for arg in call.args:
                if (arg.keyword is None and not arg.star) or (arg.keyword is not None and arg.keyword.value == "dtype"):
                    if self._is_float16(arg.value, function) and self._model_subject(func.value, function, call):
                        return arg.value
            return None
        if method in _LOADERS:
            for arg in call.args:
                if arg.keyword is not None and arg.keyword.value in _DTYPE_KEYWORDS:
                    if self._is_float16(arg.value, function):
                        site = self.context.program.site(call)
                        order = site.order if site is not None else function.end
                        if self.context.models.info(call, function, order).is_model:
                            return arg.value
        return None

    @property
    def _half_methods(self) -> set[int]:
        if not hasattr(self, "_half_method_ids"):
            self._half_method_ids: set[int] = set()
        return self._half_method_ids

    def _written(self, node: cst.CSTNode) -> str:
        return ".half()" if id(node) in self._half_methods else self.context.code_for(node).strip()

    def _model_subject(self, expression: cst.BaseExpression, function: Function, call: cst.Call) -> bool:
        site = self.context.program.site(call)
        order = site.order if site is not None else function.end
        return bool(self.context.models.info(expression, function, order).is_model)

    def _conversions(self) -> list[tuple[cst.Call, cst.CSTNode, Function]]:
        found = []
        for function in self.context.program.all_functions():
            for call in function.calls:
                node = self._conversion(call.node, function)
                if node is not None:
                    found.append((call.node, node, function))
        return found


class HalfPrecisionOnCpu(_Float16):
    """A model is made float16 while the file puts it on the CPU, where float16 matmul
    kernels are missing or far slower than float32 and bfloat16."""

    code = "LML401"
    triggers = ("half", "float16")

    def visit_Module(self, node: cst.Module) -> None:
        conversions = self._conversions()
        if not conversions:
            return
        tops = self._chain_tops()
        for call, reported, function in conversions:
            if self._guarded(call, function):
                continue
            top = tops.get(id(call), call)
            moves = self.devices.chain_moves(top, function)
            key = self._key_of(top, function)
            if key is not None:
                moves += self.devices.model_moves(key, function)
            if not moves or not all(CPU in move for move in moves):
                continue
            if key is not None and self._only_stored(key, function):
                continue
            place = "on the CPU" if all(move == frozenset({CPU}) for move in moves) else "on the CPU when no GPU is found"
            written = self._written(reported)
            self.report(
                reported,
                f"`{written}` makes the model float16 while it runs {place}: "
                "CPU float16 kernels are missing (\"not implemented for 'Half'\") or far slower than float32; "
                "keep float32 on the CPU (or use bfloat16), and convert only when the device is a GPU",
            )

    def _chain_tops(self) -> dict[int, cst.Call]:
        """For every call of a chain, the outermost call of that chain."""
        tops: dict[int, cst.Call] = {}
        lengths: dict[int, int] = {}
        for call in self.context.program.calls.values():
            chain = _chain(call.node)
            for inner in chain:
                if len(chain) > lengths.get(id(inner), 0):
                    tops[id(inner)], lengths[id(inner)] = call.node, len(chain)
        return tops

    def _only_stored(self, key: str, function: Function) -> bool:
        """The model is saved (`save_pretrained`, `state_dict`, `push_to_hub`) and never
        run or handed on: a float16 checkpoint converted on the CPU, no CPU compute."""
        models = self.context.models
        if key.startswith("self."):
            scopes = list(function.cls.methods.values()) if function.cls is not None else [function]
        else:
            owner = models.owner_of(key, function)
            scopes = [owner] if owner is function else [owner, function]
        saved = False
        for scope in scopes:
            for call in scope.calls:
                if call.receiver_key == key and call.method in _STORING_METHODS:
                    saved = True
                elif call.receiver_key == key and call.method in _RUNNING_METHODS:
                    return False
                elif models.forward_key(call.node, scope) == key:
                    return False
                elif any(scope.key(chain_base(arg.value)) == key for arg in call.node.args):
                    if call.method not in _STORING_METHODS and (self.context.qualified_name(call.node.func) or "") != "torch.save":
                        return False
            if any(scope.key(chain_base(value)) == key for value in scope.returns):
                return False
        return saved

    def _key_of(self, top: cst.Call, function: Function) -> str | None:
        """The model a chain converts: `model` in `model.half()`, or the name the chain
        is bound to (`model = X.from_pretrained(...)`, `self.model = ...`)."""
        key = function.key(chain_base(top))
        if key is not None:
            return key
        for bindings in function.bindings.values():
            for binding in bindings:
                if binding.value is top and binding.tuple_index is None:
                    return binding.key
        return None

    def _guarded(self, call: cst.Call, function: Function) -> bool:
        """Inside an `if` that tests the device or CUDA, or in a function that stops
        without CUDA (`if not torch.cuda.is_available(): raise ...`, an `assert`)."""
        site = self.context.program.site(call)
        if site is None:
            return True
        for statement in site.statements:
            if type(statement) in (cst.If, cst.While) and _DEVICE_GUARD.search(self.context.code_for(statement.test)):
                return True
        body = function.node.body
        statements = body.body if type(body) is cst.IndentedBlock else (body if isinstance(body, (list, tuple)) else ())
        for statement in statements:
            if type(statement) is cst.SimpleStatementLine:
                for small in statement.body:
                    if type(small) is cst.Assert and _CUDA_WORDS.search(self.context.code_for(small.test)):
                        return True
            elif type(statement) is cst.If and _CUDA_WORDS.search(self.context.code_for(statement.test)):
                text = self.context.code_for(statement.body)
                if re.search(r"\braise\b|\bexit\(|\breturn\b", text):
                    return True
        return False


class Fp16WeightsTrained(_Float16):
    """A float16 model whose own parameters an optimizer steps: there is no float32
    master copy, so updates below float16 resolution are lost."""

    code = "LML403"
    triggers = ("half", "float16")

    def visit_Module(self, node: cst.Module) -> None:
        conversions = self._conversions()
        if not conversions:
            return
        by_node = {id(call): reported for call, reported, _ in conversions}
        reported_nodes: set[int] = set()
        for function in self.context.program.all_functions():
            for training in self.context.contexts.training_loops(function):
                if training.loop.parent is not None:
                    continue
                for step in training.step_calls:
                    optimizer = self.context.optimizers.stepped_optimizer(step, function)
                    if optimizer is None or not self.context.optimizers.is_optimizer(optimizer, function, None, 0):
                        continue
                    for model in self._trained_models(optimizer, function):
                        conversion = self._float16_state(model, function, training.loop.start, by_node)
                        if conversion is None or id(conversion) in reported_nodes:
                            continue
                        reported_nodes.add(id(conversion))
                        written = self._written(conversion)
                        self.report(
                            conversion,
                            f"`{written}` makes `{model}` float16 and "
                            f"`{optimizer}` updates its weights in place: with no float32 master copy, updates "
                            "smaller than float16's resolution (about 1e-3 of the weight) round to nothing and "
                            "Adam's eps=1e-8 rounds to 0; keep the weights in float32 and train under "
                            "`torch.autocast` (bfloat16, or float16 with a GradScaler)",
                        )


    def _trained_models(self, optimizer: str, function: Function) -> list[str]:
        """The models whose whole `.parameters()` every binding of `optimizer` is built
        over: `AdamW(model.parameters())` or `AdamW(params=model.parameters())`. Filtered
        parameters (`[p for p in ... if p.requires_grad]`), groups and master copies
        are not read."""
        models: list[str] = []
        values = list(self.context.optimizers.bound_values(optimizer, function))
        if not values:
            return models
        for value, scope, _ in values:
            if type(value) is not cst.Call:
                return []
            first = next(
                (arg.value for arg in value.args if (arg.keyword is None and not arg.star) or (arg.keyword is not None and arg.keyword.value == "params")),
                None,
            )
            if not (
                type(first) is cst.Call
                and type(first.func) is cst.Attribute
                and first.func.attr.value == "parameters"
                and not first.args
            ):
                return []
            key = scope.key(first.func.value)
            if key is None or not self.context.models.is_model(key, scope):
                return []
            if self.context.models.frozen(key, scope):
                return []
            models.append(key)
        return models

    def _float16_state(self, key: str, function: Function, before: int, by_node: dict[int, cst.CSTNode]) -> cst.CSTNode | None:
        """The conversion that leaves `key` float16 when training starts, else None.
        Every rebinding and dtype change counts: the last one before `before` decides
        (in a class, any non-float16 change anywhere clears it)."""
        if key.startswith("self."):
            scopes = list(function.cls.methods.values()) if function.cls is not None else [function]
        else:
            owner = self.context.models.owner_of(key, function)
            scopes = [owner]
        events: list[tuple[int, cst.CSTNode | None]] = []
        for scope in scopes:
            same = scope is function
            for binding in scope.bindings.get(key, []):
                if same and binding.order >= before:
                    continue
                conversion = None
                value = binding.value
                if value is not None and binding.tuple_index is None:
                    chain = _chain(value)
                    conversion = next((by_node[id(c)] for c in chain if id(c) in by_node), None)
                    if conversion is not None and any(
                        _other_dtype(c, self) for c in chain[: self._index(value, conversion, by_node)]
                    ):
                        conversion = None
                    if conversion is None and scope.key(chain_base(value)) == key and not any(
                        _other_dtype(c, self) for c in chain
                    ):
                        continue  # `model = model.to(device)`: the same weights
                events.append((binding.order, conversion))
            for call in scope.calls:
                if call.receiver_key != key or (same and call.site.order >= before):
                    continue
                if id(call.node) in by_node:
                    events.append((call.site.order, by_node[id(call.node)]))
                elif _other_dtype(call.node, self):
                    events.append((call.site.order, None))
        if not events:
            return None
        if key.startswith("self.") and any(conversion is None for _, conversion in events):
            return None
        events.sort(key=lambda event: event[0])
        return events[-1][1]

    @staticmethod
    def _index(value: cst.BaseExpression, conversion: cst.CSTNode, by_node: dict[int, cst.CSTNode]) -> int:
        """How many calls of the chain come after (outside) the float16 conversion."""
        for index, call in enumerate(_chain(value)):
            if by_node.get(id(call)) is conversion:
                return index
        return 0


def _other_dtype(call: cst.Call, check: _Float16) -> bool:
    """`.float()`, `.bfloat16()`, `.double()`, `.to(torch.float32)`: a dtype that is not float16."""
    func = call.func
    if type(func) is not cst.Attribute:
        return False
    if func.attr.value in _OTHER_DTYPE_METHODS:
        return True
    if func.attr.value == "to":
        for arg in call.args:
            if (arg.keyword is None and not arg.star) or (arg.keyword is not None and arg.keyword.value == "dtype"):
                qualified = check.context.qualified_name(arg.value) or ""
                if qualified.startswith("torch.") and qualified.split(".")[-1] in ("float32", "float", "bfloat16", "float64", "double"):
                    return True
    return False
