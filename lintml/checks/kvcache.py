"""LML3xx: generation that throws the KV cache away and re-encodes the prefix each step."""

from __future__ import annotations

import libcst as cst

from lintml.checks.base import Anchor, Check, NodeFix, delete_between, replace_node
from lintml.findings import Applicability

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
    return isinstance(node, cst.Name) and node.value == "False"


def _use_cache_false(call: cst.Call) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "use_cache" and _is_false(arg.value):
            return arg
    return None


def _has_comment(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.Comment) or any(_has_comment(child) for child in node.children)


def _drop_argument(call: cst.Call, arg: cst.Arg) -> NodeFix:
    """Delete `arg` and the comma that separates it from its neighbour, never a comment
    that belongs to another line."""
    args = list(call.args)
    index = args.index(arg)
    has_comma = isinstance(arg.comma, cst.Comma)
    before = args[index - 1].comma.whitespace_after if index > 0 else call.whitespace_before_args
    after = arg.comma.whitespace_after if has_comma else arg.whitespace_after_arg
    # a comment between the previous argument's comma and this one's end
    comment_after_previous = index > 0 and (_has_comment(args[index - 1].comma) or _has_comment(arg))
    if isinstance(before, cst.ParenthesizedWhitespace) and isinstance(after, cst.ParenthesizedWhitespace):
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
    name = "generate-without-kv-cache"
    family = "KV cache"
    summary = "Generation runs with `use_cache=False`"
    fix_safety = Applicability.SAFE
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
                isinstance(attribute, cst.Attribute)
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
        if isinstance(target, cst.Name):
            self.generation_configs.add((id(self.context.scope.node), target.value))

    def _is_generate(self, func: cst.BaseExpression) -> bool:
        return isinstance(func, cst.Attribute) and func.attr.value == "generate"

    def _is_generation_config_update(self, func: cst.BaseExpression) -> bool:
        """`model.generation_config.update(...)`: GenerationConfig.update sets attributes."""
        return (
            isinstance(func, cst.Attribute)
            and func.attr.value == "update"
            and self._is_generation_config(func.value)
        )

    def _is_generation_config(self, node: cst.BaseExpression) -> bool:
        """`model.generation_config`, `GenerationConfig(...)`, or a name bound to one."""
        if isinstance(node, cst.Attribute):
            return node.attr.value == "generation_config"
        if isinstance(node, cst.Name):
            return self._names_generation_config(node.value)
        if isinstance(node, cst.Call):
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
