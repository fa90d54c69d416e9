"""LML3xx: generation that throws the KV cache away and re-encodes the prefix each step."""

from __future__ import annotations

import re

import libcst as cst

from lintml.analysis.program import chain_base
from lintml.checks.base import Anchor, Check, NodeFix, delete_between, replace_node

# transformers exports GenerationConfig from several modules
_GENERATION_CONFIG_MODULES = (
    "transformers",
    "transformers.generation",
    "transformers.generation.configuration_utils",
)
GENERATION_CONFIG = frozenset(f"{m}.GenerationConfig" for m in _GENERATION_CONFIG_MODULES)
GENERATION_CONFIG_FACTORIES = GENERATION_CONFIG | frozenset(
    f"{name}.{factory}" for name in GENERATION_CONFIG for factory in ("from_pretrained", "from_dict")
)


def _is_false(node: cst.BaseExpression) -> bool:
    return type(node) is cst.Name and node.value == "False"


def _use_cache_false(call: cst.Call) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "use_cache" and _is_false(arg.value):
            return arg
    return None


def _has_comment(node: cst.CSTNode) -> bool:
    return type(node) is cst.Comment or any(_has_comment(child) for child in node.children)


def _drop_argument(call: cst.Call, arg: cst.Arg) -> NodeFix:
    """Delete `arg` and the comma that separates it from its neighbour, never a comment
    that belongs to another line."""
    args = list(call.args)
    index = args.index(arg)
    has_comma = type(arg.comma) is cst.Comma
    before = args[index - 1].comma.whitespace_after if index > 0 else call.whitespace_before_args
    after = arg.comma.whitespace_after if has_comma else arg.whitespace_after_arg
    # a comment between the previous argument's comma and this one's end
    comment_after_previous = index > 0 and (_has_comment(args[index - 1].comma) or _has_comment(arg))
    if type(before) is cst.ParenthesizedWhitespace and type(after) is cst.ParenthesizedWhitespace:
        # the argument has a line of its own: delete that line, with its own comment
        line_start = before.empty_lines[-1] if before.empty_lines else before.first_line
        edit = delete_between(Anchor(line_start, "end"), Anchor(after.first_line, "end"))
    elif index + 1 < len(args) and not _has_comment(arg):
        # `f(use_cache=False, x)`: up to the start of the next argument
        edit = delete_between(Anchor(arg, "start"), Anchor(args[index + 1], "start"))
    elif index > 0 and index + 1 == len(args) and not comment_after_previous:
        # `f(x, use_cache=False)`: from the end of the previous argument
        edit = delete_between(Anchor(args[index - 1], "end"), Anchor(arg.comma if has_comma else arg, "end"))
    else:
        # the only argument, or comments around it: the argument and its own comma
        edit = delete_between(Anchor(arg, "start"), Anchor(arg.comma if has_comma else arg, "end"))
    return NodeFix("Remove `use_cache=False`", (edit,))


class GenerateWithoutKvCache(Check):
    """Generation with `use_cache=False`: every new token re-encodes the whole prefix.

    Without the key/value cache, step n of decoding runs the model over all n tokens
    so far instead of the one new token: generation costs O(n^2) forwards' worth of
    compute instead of O(n).
    """

    code = "LML301"
    triggers = ("use_cache",)

    def __init__(self, context) -> None:
        super().__init__(context)
        # (scope node id, name) of names bound to a generation config
        self.generation_configs: set[tuple[int, str]] = set()

    def visit_Call(self, node: cst.Call) -> None:
        arg = _use_cache_false(node)
        if arg is None:
            return
        if self._is_generate(node.func) or self._is_generation_config_update(node.func):
            what = f"`{self.context.code_for(node.func)}(..., use_cache=False)`"
        elif self.context.qualified_name(node.func) in GENERATION_CONFIG_FACTORIES:
            what = "A generation config with `use_cache=False`"
        else:
            return
        self.report(
            arg,
            f"{what} disables the KV cache: each new token re-encodes the whole prefix "
            f"(quadratic in the output length); remove `use_cache=False`",
            _drop_argument(node, arg),
        )

    def visit_Assign(self, node: cst.Assign) -> None:
        if self._is_generation_config(node.value):
            for target in node.targets:
                self._remember_generation_config(target.target)
        if not _is_false(node.value):
            return
        for target in node.targets:
            attribute = target.target
            if (
                type(attribute) is cst.Attribute
                and attribute.attr.value == "use_cache"
                and self._is_generation_config(attribute.value)
            ):
                written = self.context.code_for(attribute)
                self.report(
                    node.value,
                    f"`{written} = False` disables the KV cache for generation: each new "
                    f"token re-encodes the whole prefix; set it to `True`",
                    NodeFix("Set `use_cache` to `True`", (replace_node(node.value, "True"),)),
                )
                return  # `a.use_cache = b.use_cache = False` is one mistake, fixed once

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None and self._is_generation_config(node.value):
            self._remember_generation_config(node.target)

    def _remember_generation_config(self, target: cst.BaseExpression) -> None:
        if type(target) is cst.Name:
            self.generation_configs.add((id(self.context.scope.node), target.value))

    def _is_generate(self, func: cst.BaseExpression) -> bool:
        return type(func) is cst.Attribute and func.attr.value == "generate"

    def _is_generation_config_update(self, func: cst.BaseExpression) -> bool:
        """`model.generation_config.update(...)`: GenerationConfig.update sets attributes."""
        return (
            type(func) is cst.Attribute
            and func.attr.value == "update"
            and self._is_generation_config(func.value)
        )

    def _is_generation_config(self, node: cst.BaseExpression) -> bool:
        """`model.generation_config`, `GenerationConfig(...)`, or a name bound to one."""
        if type(node) is cst.Attribute:
            return node.attr.value == "generation_config"
        if type(node) is cst.Name:
            return self._names_generation_config(node.value)
        if type(node) is cst.Call:
            return self.context.qualified_name(node.func) in GENERATION_CONFIG_FACTORIES
        return False

    def _names_generation_config(self, name: str) -> bool:
        """Whether `name`, looked up from the current scope as Python would, is bound
        to a generation config (a config made at module level and changed in a function
        counts; a parameter or other binding of the same name in between hides it)."""
        scope = self.context.scope
        innermost = True
        while scope is not None:
            if scope.is_class and not innermost:
                scope = scope.parent
                continue  # class bodies are not visible from their methods
            innermost = False
            if (id(scope.node), name) in self.generation_configs:
                return True
            if name in scope.bindings:
                return False
            scope = scope.parent
        return False


# -- LML302 ---------------------------------------------------------------------------

_SAVE_METHODS = frozenset({"save_pretrained", "push_to_hub"})
_TRAINER_SAVE_METHODS = frozenset({"save_model", "push_to_hub"})


def _is_true(node: cst.BaseExpression) -> bool:
    return type(node) is cst.Name and node.value == "True"


def _config_use_cache_owner(target: cst.BaseExpression) -> cst.BaseExpression | None:
    """`model` in `model.config.use_cache`."""
    if (
        type(target) is cst.Attribute
        and target.attr.value == "use_cache"
        and type(target.value) is cst.Attribute
        and target.value.attr.value == "config"
    ):
        return target.value.value
    return None


def _may_set_use_cache(node: cst.Assign) -> bool:
    """`model.config.use_cache = ...` or `x = ...from_pretrained(..., use_cache=False)`:
    the only assignments LML302 looks at, told apart by shape (generating the
    statement's code to search it for `use_cache` cost a tenth of a run on transformers)."""
    if any(_config_use_cache_owner(target.target) is not None for target in node.targets):
        return True
    value = chain_base(node.value)
    return (
        type(value) is cst.Call
        and type(value.func) is cst.Attribute
        and value.func.attr.value == "from_pretrained"
        and _use_cache_false(value) is not None
    )


class CacheDisabledInConfig(Check):
    """`model.config.use_cache = False` left in place on a model that then generates,
    runs inference, or is saved: the slow setting ships with the model."""

    code = "LML302"
    triggers = ("use_cache",)

    def __init__(self, context) -> None:
        super().__init__(context)
        # (function, key, order, node to report, how it was written)
        self.disabled: list[tuple[object, str, int, cst.CSTNode, str]] = []
        # (id(function node), key) -> orders where `key.config.use_cache` is set to something else
        self.restored: dict[tuple[int, str], list[int]] = {}

    def visit_Assign(self, node: cst.Assign) -> None:
        if not _may_set_use_cache(node):
            return
        site = self.context.program.site(node)
        if site is None:
            return
        function = site.function
        if self.context.contexts.is_model_code(function):
            return
        for target in node.targets:
            owner = _config_use_cache_owner(target.target)
            if owner is not None:
                key = function.key(chain_base(owner))
                if key is None or key == function.self_name:
                    continue
                if _is_false(node.value):
                    written = f"`{self.context.code_for(target.target)} = False`"
                    self.disabled.append((function, key, site.order, node.value, written))
                else:
                    self.restored.setdefault((id(function.node), key), []).append(site.order)
            value = chain_base(node.value)
            if (
                type(value) is cst.Call
                and type(value.func) is cst.Attribute
                and value.func.attr.value == "from_pretrained"
            ):
                arg = _use_cache_false(value)
                key = function.key(target.target)
                if arg is None or key is None or not self.context.models.is_model(key, function):
                    continue
                self.disabled.append((function, key, site.order, arg, "`from_pretrained(..., use_cache=False)`"))

    def leave_Module(self, original_node: cst.Module) -> None:
        for function, key, order, node, written in self.disabled:
            use = self._first_use(function, key, order, 0)
            if use == "restored":
                continue
            if key.startswith("self.") and function.cls is not None:
                # the other methods of the class see the same attribute
                others = [m for m in function.cls.methods.values() if m is not function]
                if any(self.restored.get((id(m.node), key)) for m in others):
                    continue
                if use is None:
                    use = next((u for m in others if (u := self._first_use(m, key, -1, 1)) is not None), None)
            if use is None:
                continue
            self.report(
                node,
                f"{written} turns the KV cache off in `{key}`'s config, and {use} without setting "
                f"`{key}.config.use_cache = True` first: generation re-encodes the whole prefix "
                f"each step, and the saved config keeps the slow setting",
            )

    def _first_use(self, function, key: str, after: int, depth: int) -> str | None:
        """"restored", a description of the first generation/inference/save of `key`
        in `function` after `after`, or None."""
        context = self.context
        events: list[tuple[int, str]] = [
            (order, "restored") for order in self.restored.get((id(function.node), key), []) if order > after
        ]
        trainers = self._trainers(function, key)
        for call in function.calls:
            order = call.site.order
            if order <= after:
                continue
            use = None
            if call.receiver_key == key and call.method == "generate":
                use = f"`{key}` generates with it"
            elif call.receiver_key == key and call.method in _SAVE_METHODS:
                use = f"it is saved with `{call.method}`"
            elif call.receiver_key in trainers and call.method in _TRAINER_SAVE_METHODS:
                use = f"it is saved with `{call.receiver_key}.{call.method}()`"
            elif context.models.forward_key(call.node, function) == key and (
                context.contexts.grad_disabled(call.site) or context.contexts.inference_signal(call.site, key)
            ):
                use = "it runs inference"
            elif depth < 3:
                callee = context.callgraph.resolve(call)
                inner = self._key_in_callee(call, callee, key, function) if callee is not None else None
                if inner is not None and callee is not function:
                    found = self._first_use(callee, inner, -1, depth + 1)
                    if found is not None:
                        use = found
            if use is not None:
                events.append((order, use))
        if not events:
            return None
        return min(events, key=lambda event: event[0])[1]

    def _key_in_callee(self, call, callee, key: str, caller) -> str | None:
        for parameter in callee.params:
            argument = self.context.callgraph.argument(call, callee, parameter)
            if argument is not None and caller.key(chain_base(argument)) == key:
                return parameter
        if key.startswith("self.") and call.via_self:
            return key
        if not key.startswith("self.") and key not in callee.bindings and key not in callee.params:
            if self.context.models.owner_of(key, callee) is caller:
                return key  # a global or closure variable
        return None

    def _trainers(self, function, key: str) -> set[str]:
        """Names bound to a `...Trainer(model=key, ...)` in `function`."""
        names: set[str] = set()
        for name, bindings in function.bindings.items():
            for binding in bindings:
                value = binding.value
                if type(value) is not cst.Call or binding.tuple_index is not None:
                    continue
                dotted = self.context.code_for(value.func)
                if not dotted.endswith("Trainer"):
                    continue
                given = [arg.value for arg in value.args if arg.keyword is not None and arg.keyword.value == "model"]
                positional = [arg.value for arg in value.args if arg.keyword is None and not arg.star]
                if positional:
                    given.append(positional[0])
                if any(function.key(chain_base(expression)) == key for expression in given):
                    names.add(name)
        return names


# -- LML303 ---------------------------------------------------------------------------

_GROWING_CALLS = frozenset(
    f"torch.{name}" for name in ("cat", "concat", "concatenate", "hstack", "column_stack")
)
_CACHE_ARGUMENTS = frozenset({"past_key_values", "past", "mems", "cache_params", "past_key_value"})
_SEQUENCE_KEYWORDS = ("input_ids", "decoder_input_ids", "inputs_embeds", "idx", "x", "input", "inputs")


def _mentions(value: cst.BaseExpression | None, name: str) -> bool:
    """`value` uses `name` (`seq[idx]`, `seq.expand(...)`): the sequence carries over."""
    if value is None:
        return False
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", cst.Module([]).code_for_node(value)) is not None


class DecodingLoopWithoutCache(Check):
    """A hand-written decoding loop that feeds the whole, growing sequence to the model
    each step without a cache: every step re-encodes the prefix."""

    code = "LML303"
    triggers = ("cat", "hstack", "column_stack")

    def visit_Call(self, node: cst.Call) -> None:
        context = self.context
        site = context.program.site(node)
        if site is None or site.loop is None:
            return
        function = site.function
        if context.contexts.is_model_code(function) and function.name == "forward":
            return
        model = context.models.forward_key(node, function)
        if model is None:
            return
        if any(arg.keyword is not None and arg.keyword.value in _CACHE_ARGUMENTS for arg in node.args):
            return
        if any(arg.star == "**" for arg in node.args):
            return  # `model(**inputs)`: what it holds is not known
        for sequence in self._sequences(node):
            grown = self._grown_by(sequence, function, site)
            if grown is not None:
                break
        else:
            return
        self.report(
            node,
            f"`{context.code_for(node.func)}` runs on `{sequence}`, which this loop grows with "
            f"`{grown}` every step, and gets no `past_key_values`: each step re-encodes the whole "
            f"prefix (quadratic in the output length); pass `past_key_values=` from the previous "
            f"step's output and only the new token, or use `model.generate`",
        )

    def _sequences(self, node: cst.Call) -> list[str]:
        """The names the model is called on: the first positional argument and the
        `input_ids=` / `decoder_input_ids=` keywords, through `.to(...)` chains."""
        candidates = [arg.value for arg in node.args if arg.keyword is None and not arg.star][:1]
        candidates += [
            arg.value for arg in node.args if arg.keyword is not None and arg.keyword.value in _SEQUENCE_KEYWORDS
        ]
        names = []
        for candidate in candidates:
            base = chain_base(candidate)
            if type(base) is cst.Name:
                names.append(base.value)
        return names

    @staticmethod
    def _conditional_in(binding, loop) -> bool:
        """The binding's statement sits under an `if` (or `try`) inside the loop body."""
        statements = binding.site.statements
        index = next((i for i, s in enumerate(statements) if s is loop.node), None)
        if index is None:
            return False
        return any(type(s) in (cst.If, cst.Try) for s in statements[index + 1 :])

    def _grown_by(self, name: str, function, site) -> str | None:
        """How a loop around `site` grows `name`: `torch.cat` of a list holding `name`."""
        loops = []
        loop = site.loop
        while loop is not None:
            loops.append(loop)
            loop = loop.parent
        bindings = function.bindings.get(name, [])
        for binding in bindings:
            value = binding.value
            if binding.tuple_index is not None or type(value) is not cst.Call:
                continue
            growing = [loop for loop in loops if loop.encloses(binding.order)]
            if not growing:
                continue
            if self._conditional_in(binding, growing[0]):
                continue  # grown once under a condition (a class token), not every step
            if any(
                other is not binding
                and growing[0].encloses(other.order)
                and not _mentions(other.value, name)
                for other in bindings
            ):
                continue  # rebound from scratch in the loop: it does not grow across steps
            qualified = self.context.program.imports.qualified_name(value.func, function.scope)
            if qualified not in _GROWING_CALLS or not value.args:
                continue
            parts = value.args[0].value
            if type(parts) not in (cst.List, cst.Tuple):
                continue
            if any(
                isinstance(chain_base(element.value), cst.Name) and chain_base(element.value).value == name
                for element in parts.elements
            ):
                return self.context.code_for(value.func) + "(...)"
        return None
