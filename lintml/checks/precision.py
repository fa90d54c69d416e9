"""LML4xx: numeric precision."""

from __future__ import annotations

import libcst as cst

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
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


class HalfDefaultDtype(Check):
    """`torch.set_default_dtype(torch.float16)` (or `bfloat16`): every floating tensor
    created without an explicit dtype, parameters and optimizer state included, is half
    precision."""

    code = "LML404"
    name = "half-default-dtype"
    family = "precision"
    summary = "`torch.set_default_dtype` is set to a 16-bit float type"
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
            f"the default dtype becomes `{written}`: every new floating tensor, the parameters, "
            "the loss and the optimizer state lose precision; keep float32 as the default and "
            "use autocast or an explicit `dtype=` where half precision is wanted",
        )


class Tf32Enabled(Check):
    """TF32 is switched on for float32 matmuls or convolutions: they run with a 10-bit
    mantissa on Ampere and newer GPUs. Informational."""

    code = "LML407"
    name = "tf32-enabled"
    family = "precision"
    summary = "TF32 is enabled for float32 matmuls or convolutions"
    default_enabled = False
    triggers = ("allow_tf32", "fp32_precision", "set_float32_matmul_precision")

    def visit_Assign(self, node: cst.Assign) -> None:
        value = node.value
        for target in node.targets:
            qualified = self.context.qualified_name(target.target)
            written = self.context.code_for(target.target).strip()
            ops = "convolutions" if qualified and ".cudnn" in qualified else "matmuls"
            if qualified in TF32_FLAGS and isinstance(value, cst.Name) and value.value == "True":
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
