"""Which names are models, and which mode (train/eval) a model is in at a place.

Evidence-based, as RULES.md "Model tracking" defines it: a name is a model when it is
bound to something that makes a module (a class of the file that subclasses
`nn.Module`, `from_pretrained` of a model class, `timm.create_model`, ...), when a
parameter is annotated as one or a same-file caller passes one, or when `.eval()`,
`.parameters()`, `.named_parameters()` or `.state_dict()` is called on it. A name
alone (`model`, `net`) is never enough, and a name bound to an optimizer, a tokenizer
or an instance of a plain class of the file is never a model.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import cached_property

import libcst as cst

from lintml.analysis import kinds
from lintml.analysis.callgraph import CallGraph
from lintml.analysis.imports import dotted_name
from lintml.analysis.program import Binding, Call, Class, Function, Program, chain_base, owner_of
from lintml.project.summaries import FunctionRef


class Mode(enum.Enum):
    EVAL = "eval"
    TRAIN = "train"  # `.train()` called, and no backward since: training mode on purpose
    DEFAULT = "default"  # freshly built (nn.Module starts in training mode), or left so by training
    UNKNOWN = "unknown"  # nothing sets it that lintml can see
    OPAQUE = "opaque"  # set by something lintml cannot see into (another module's function)


class Kind(enum.Enum):
    MODULE = "module"
    PIPELINE = "pipeline"  # diffusers/transformers pipelines: not nn.Modules, call them freely


@dataclass(frozen=True)
class ModelInfo:
    """What an expression is: a model (and its mode), not a model, or unknown."""

    is_model: bool | None  # None: no evidence either way
    mode: Mode = Mode.UNKNOWN
    kind: Kind = Kind.MODULE
    origin: str = ""  # what made it, for messages: "from_pretrained", ".eval()", ...


NOT_A_MODEL = ModelInfo(False)
UNKNOWN = ModelInfo(None)

# What library names make is kinds' to say (shared with the project facts).
MODEL_LIBRARIES = kinds.MODEL_LIBRARIES
_NOT_MODEL_CLASS = kinds.NOT_MODEL_CLASS
_MODEL_CLASS = kinds.MODEL_CLASS
_PIPELINE_CLASS = kinds.PIPELINE_CLASS
MODULE_BASES = kinds.MODULE_BASES
_MODULE_BASE_NAMES = frozenset({"Module", "ModelMixin", "PreTrainedModel", "LightningModule", "Sequential", "ModuleList"})
# nn classes that are modules but never "the model": losses and containers of parameters
_NN_NOT_MODELS = re.compile(
    r"Loss$|^Parameter|^Uninitialized|^Buffer$"
    # stateless layers: no parameters, nothing that depends on train/eval mode
    r"|^(ReLU6?|Sigmoid|Tanh|GELU|SiLU|Mish|ELU|SELU|CELU|LeakyReLU|Softmax2?d?|Softmin|LogSoftmax"
    r"|Softplus|Softsign|Hardtanh|Hardswish|Hardsigmoid|Hardshrink|Softshrink|Tanhshrink|Threshold"
    r"|LogSigmoid|GLU|Identity|Flatten|Unflatten|Upsample.*|PixelShuffle|PixelUnshuffle"
    r"|(Zero|Constant|Reflection|Replication|Circular)Pad\dd|(Max|Avg|AdaptiveAvg|AdaptiveMax|LP)Pool\dd)$"
)
# Calls that return the module they are given (wrappers keep the wrapped model's mode).
PASSTHROUGH = kinds.PASSTHROUGH
# torch.ao.quantization and its legacy name: what fuses, prepares or converts a model
# returns it (or its copy) in the mode it had; `quantize` and `quantize_dynamic` call
# `.eval()` on it themselves.
QUANTIZATION_MODULES = (
    "torch.ao.quantization", "torch.quantization", "torch.ao.quantization.quantize_fx",
    "torch.quantization.quantize_fx", "torch.ao.quantization.quantize", "torch.quantization.quantize",
    "torch.ao.quantization.fuse_modules", "torch.quantization.fuse_modules",
)  # fmt: skip
QUANTIZATION_PASSTHROUGH = frozenset(
    f"{module}.{name}"
    for module in QUANTIZATION_MODULES
    for name in ("prepare", "convert", "prepare_fx", "convert_fx", "prepare_qat", "prepare_qat_fx",
                 "fuse_modules", "fuse_modules_qat", "fuse_fx")
)  # fmt: skip
QUANTIZATION_EVAL = frozenset(f"{module}.{name}" for module in QUANTIZATION_MODULES for name in ("quantize", "quantize_dynamic"))
# Calls that make a model whose mode lintml cannot know.
MODEL_FACTORIES_UNKNOWN_MODE = frozenset({"torch.hub.load", "torch.jit.load", "torch.export.load"})
MODEL_FACTORIES_TRAIN_MODE = frozenset({"timm.create_model", "timm.models.create_model"})
NOT_MODEL_MODULES = ("torch.optim", "torch.cuda.amp", "torch.amp", "torch.utils.data", "transformers.optimization")
EVIDENCE_METHODS = frozenset({"eval", "parameters", "named_parameters", "state_dict"})


_MAX_NESTING = 24


def qualname(function: Function) -> str | None:
    """The project-wide name of a function of the file: `train`, `Trainer.fit`, `<module>`;
    None for a nested function (nothing outside the file calls it)."""
    if function.is_module_level:
        return "<module>"
    if function.parent is None or not function.parent.is_module_level:
        return None
    return f"{function.cls.name}.{function.name}" if function.cls is not None else function.name


class Models:
    def __init__(self, program: Program, callgraph: CallGraph, facts=None) -> None:
        """`facts`: the FileFacts of the file, or a function giving them (asked on the
        first question about another file or a summary; None: the file on its own)."""
        self._facts = facts
        self.program = program
        self.imports = program.imports
        self.callgraph = callgraph
        self._is_model: dict[tuple[int, str], bool] = {}
        self._forward_keys: dict[tuple[int, int], str | None] = {}
        self._module_class: dict[int, bool] = {}
        self._nesting = 0
        # memos: these questions are asked again and again by every forward of a file
        self._events_memo: dict[tuple[int, str], list] = {}
        self._binding_memo: dict[int, ModelInfo] = {}
        self._mode_memo: dict[tuple, tuple[Mode, str]] = {}
        self._returned_memo: dict[tuple[int, int], ModelInfo] = {}
        self._non_model_memo: dict[tuple[int, str], bool] = {}
        self._kind_memo: dict[tuple[int, str], Kind] = {}
        self._is_model_memo_extra: dict[tuple, bool | None] = {}
        # The questions in progress, outermost first (see `_ask`): the index of each
        # one's marker, and for each the lowest index its answer depends on so far.
        self._frames: dict[tuple, int] = {}
        self._lows: list[int] = []
        # Answers that depend on a question still in progress (a recursion guard fired
        # for it): valid until that question is answered, then dropped.
        self._provisional: dict[tuple, tuple[object, int]] = {}
        self._held_by: dict[int, list[tuple]] = {}
        # Each computation not answered from a memo (`_info`, `_decide_is_model`,
        # `_compute_binding_info`, `_mode_at`, and those of call events, returned
        # values and non-model bindings): a measure of the work done, for the tests
        # that keep it bounded.
        self.work = 0

    @cached_property
    def facts(self):
        facts = self._facts() if callable(self._facts) else self._facts
        if facts is None:
            from lintml.project.facts import FileFacts

            program = self.program
            facts = FileFacts.alone(program.module.code if not program.filename else _source_of(program))
        return facts

    @cached_property
    def summaries(self):
        return self.facts.summaries

    # -- answering with memos and recursion guards -------------------------------------

    def _ask(self, memo: dict, memo_key, marker: tuple, guard, compute):
        """The answer of `compute()` for the question `marker`, remembered in `memo`.

        The questions are demand-driven and recursive, and recursion may come back to a
        question in progress (a model rebound from itself, functions that pass the model
        to each other): there the guard answers `guard`, and what is computed around it
        holds only while that question is in progress. As in Tarjan's algorithm, each
        question in progress records the lowest one (by stack index) its answer depends
        on. An answer that depends on no question below its own is what the question
        answers when asked afresh, and goes into `memo`; any other is provisional:
        reused while the question it depends on is in progress (so that within one
        cycle nothing is computed twice: before, every answer computed around a guard
        was computed again on every ask, exponentially often in a script that rebinds
        its model), and dropped when that question is answered. Where a chain of
        evidence grows too long (`_MAX_NESTING`), the cut depends on where the chain
        began: on the outermost question.
        """
        if memo_key in memo:
            return memo[memo_key]
        held = self._provisional.get(marker + (memo_key,))
        if held is not None:
            self._depend(held[1])
            return held[0]
        index = self._frames.get(marker)
        if index is not None:
            self._depend(index)  # a cycle: what the question in progress says is not known yet
            return guard
        index = len(self._lows)
        self._frames[marker] = index
        self._lows.append(index)
        try:
            answer = compute()
        finally:
            del self._frames[marker]
            low = self._lows.pop()
            self._drop(index)
        if low >= index:
            memo[memo_key] = answer
        else:
            self._provisional[marker + (memo_key,)] = (answer, low)
            self._held_by.setdefault(low, []).append(marker + (memo_key,))
            self._depend(low)
        return answer

    def _depend(self, index: int) -> None:
        """The question being computed depends on the one at `index` of the stack."""
        if self._lows and index < self._lows[-1]:
            self._lows[-1] = index

    def _drop(self, index: int) -> None:
        for key in self._held_by.pop(index, ()):
            self._provisional.pop(key, None)

    # -- classes of the file ---------------------------------------------------------

    def is_module_class(self, cls: Class) -> bool:
        """Subclasses nn.Module (or a known model base), directly or through classes of the file."""
        key = id(cls.node)
        if key in self._module_class:
            return self._module_class[key]
        self._module_class[key] = False  # cycles: not a module
        result = False
        for base in cls.node.bases:
            qualified = self.imports.qualified_name(base.value, cls.scope)
            if qualified in MODULE_BASES or (qualified and _is_library_model_class(qualified)):
                result = True
            elif qualified is not None and (found := self.project_class(qualified)) is not None:
                result = self.summaries.is_module_class(*found)
            elif type(base.value) is cst.Name and base.value.value in self.program.classes:
                others = self.program.classes[base.value.value]
                result = any(self.is_module_class(other) for other in others)
                if not result and "forward" in cls.methods:
                    # `class DacModel(DacPreTrainedModel)` with its own `forward`, where the
                    # file's base class derives from a base lintml cannot resolve
                    result = any(self._unresolved_ancestry(other, set()) for other in others)
            elif qualified is None or self._unread_project_name(qualified):
                # a base lintml cannot resolve (a relative import in a library, or a name
                # of the project it cannot read as a class: a lazy `__init__`): known
                # module base names and model class names (`...ForCausalLM`) are modules
                name = (dotted_name(base.value) or "").rsplit(".", 1)[-1]
                result = (
                    name in _MODULE_BASE_NAMES
                    or name.endswith("PreTrainedModel")
                    or (bool(_MODEL_CLASS.search(name)) and not _NOT_MODEL_CLASS.search(name))
                )
            if result:
                break
        # a class with its own `forward` and a base of another file (one lintml cannot
        # read, such as peft's BasePromptEncoder) is a module; a plain class with a
        # `forward` method is not (clarification 1)
        if not result and "forward" in cls.methods:
            result = any(
                (dotted_name(base.value) or "object") != "object"
                and not (type(base.value) is cst.Name and base.value.value in self.program.classes)
                for base in cls.node.bases
            )
        self._module_class[key] = result
        return result

    def _unread_project_name(self, qualified: str) -> bool:
        """A name of the file's own package (a relative import made absolute) that the
        project facts do not read as a class: a lazy `__init__`, a module outside the
        project's layout. It is as unknown as an import lintml cannot resolve."""
        package = self.imports.package
        if not package:
            return self.summaries.resolve(self.facts.module, qualified) is not None
        return qualified.split(".", 1)[0] == package.split(".", 1)[0]

    def _unresolved_ancestry(self, cls: Class, seen: set[int]) -> bool:
        """Some base of `cls`, or of the file's classes it derives from, cannot be resolved."""
        if id(cls.node) in seen:
            return False
        seen.add(id(cls.node))
        for base in cls.node.bases:
            if type(base.value) is cst.Name and base.value.value in self.program.classes:
                if any(self._unresolved_ancestry(other, seen) for other in self.program.classes[base.value.value]):
                    return True
            elif self.imports.qualified_name(base.value, cls.scope) is None:
                return True
        return False

    def file_class(self, name: str) -> Class | None:
        classes = self.program.classes.get(name)
        return classes[0] if classes else None

    def in_module_class(self, function: Function) -> bool:
        """Code inside an nn.Module's own methods (and functions nested in them)."""
        current: Function | None = function
        while current is not None:
            if current.cls is not None and self.is_module_class(current.cls):
                return True
            current = current.parent
        return False

    # -- what an expression is -------------------------------------------------------

    def info(self, expression: cst.BaseExpression, function: Function, order: int, depth: int = 0) -> ModelInfo:
        """What `expression`, evaluated in `function` at `order`, is."""
        if self._nesting > _MAX_NESTING:
            self._depend(0)
            return UNKNOWN  # a chain of evidence this long proves nothing
        self._nesting += 1
        try:
            return self._info(expression, function, order, depth)
        finally:
            self._nesting -= 1

    def _info(self, expression: cst.BaseExpression, function: Function, order: int, depth: int) -> ModelInfo:
        self.work += 1
        if depth > 8:
            return UNKNOWN
        if type(expression) is cst.Call:
            return self._call_info(expression, function, order, depth)
        key = function.key(expression)
        if key is not None:
            if not self.is_model(key, function):
                return NOT_A_MODEL if self._bound_to_non_model(key, function) else UNKNOWN
            mode, origin = self.mode_at(key, function, order, depth + 1)
            return ModelInfo(True, mode, self.kind(key, function), origin)
        return UNKNOWN

    def _call_info(self, call: cst.Call, function: Function, order: int, depth: int) -> ModelInfo:
        func = call.func
        scope = function.scope
        qualified = self.imports.qualified_name(func, scope)
        if type(func) is cst.Attribute:
            method = func.attr.value
            if method in ("from_pretrained", "from_single_file"):
                return self._from_pretrained(func.value, function, call)
            if method in ("from_config", "_from_config"):
                cls_info = self._class_expression(func.value, function)
                return ModelInfo(True, Mode.DEFAULT, cls_info.kind, "from_config") if cls_info.is_model else cls_info
            if qualified is None or not qualified.startswith(("torch", "transformers")):
                base = self.info(func.value, function, order, depth + 1)
                if base.is_model:
                    if method == "eval":
                        return ModelInfo(True, Mode.EVAL, base.kind, ".eval()")
                    if method == "train":
                        return ModelInfo(True, _train_call_mode(call), base.kind, ".train()")
                    if method in ("to", "cuda", "cpu", "half", "float", "bfloat16", "double", "requires_grad_", "to_empty", "xpu", "type"):
                        return base
                    return UNKNOWN
                if base.is_model is False and method in ("to", "cuda", "cpu"):
                    return NOT_A_MODEL
            if method == "prepare" and len(call.args) == 1:
                # accelerator.prepare(model) returns the model
                return self.info(call.args[0].value, function, order, depth + 1)
        if qualified is not None and (project := self._project_call(qualified, call, function, order, depth)) is not None:
            return project
        if qualified is not None:
            if qualified in QUANTIZATION_EVAL and call.args:
                return ModelInfo(True, Mode.EVAL, Kind.MODULE, qualified.rsplit(".", 1)[-1])
            if (qualified in PASSTHROUGH or qualified in QUANTIZATION_PASSTHROUGH) and call.args:
                return self.info(call.args[0].value, function, order, depth + 1)
            if qualified in MODEL_FACTORIES_TRAIN_MODE or qualified.startswith("torchvision.models."):
                tail = qualified.rsplit(".", 1)[-1]
                if tail[:1].islower() and not tail.startswith("get_"):
                    return ModelInfo(True, Mode.DEFAULT, Kind.MODULE, qualified)
            if qualified in MODEL_FACTORIES_UNKNOWN_MODE:
                return ModelInfo(True, Mode.OPAQUE, Kind.MODULE, qualified)
            if qualified.startswith(NOT_MODEL_MODULES):
                return NOT_A_MODEL
            if qualified.startswith("torch.nn."):
                tail = qualified.rsplit(".", 1)[-1]
                if tail[:1].isupper() and not _NN_NOT_MODELS.search(tail) and qualified.count(".") == 2:
                    return ModelInfo(True, Mode.DEFAULT, Kind.MODULE, qualified)
                return NOT_A_MODEL if tail[:1].isupper() else UNKNOWN
            if qualified.split(".", 1)[0] in MODEL_LIBRARIES:
                tail = qualified.rsplit(".", 1)[-1]
                if _is_library_model_class(qualified):
                    kind = Kind.PIPELINE if _PIPELINE_CLASS.search(tail) else Kind.MODULE
                    return ModelInfo(True, Mode.DEFAULT, kind, tail)
                if tail[:1].isupper():
                    return NOT_A_MODEL
            return UNKNOWN
        if type(func) is cst.Name:
            cls = self._visible_class(func.value, function)
            if cls is not None:
                if self.is_pipeline_class(cls):
                    return ModelInfo(True, Mode.OPAQUE, Kind.PIPELINE, cls.name)
                if not self.is_module_class(cls):
                    return NOT_A_MODEL
                for arg in call.args:
                    wrapped = self.info(arg.value, function, order, depth + 1)
                    if wrapped.is_model:
                        # a wrapper around a model: the mode-dependent layers are the
                        # wrapped model's, in whatever mode it was
                        return ModelInfo(True, wrapped.mode, Kind.MODULE, wrapped.origin)
                return ModelInfo(True, Mode.DEFAULT, Kind.MODULE, cls.name)
            callee = self._visible_function(func.value, function)
            if callee is not None and callee.returns:
                return self._returned(callee, depth)
        return UNKNOWN

    def _from_pretrained(self, owner: cst.BaseExpression, function: Function, call: cst.Call) -> ModelInfo:
        info = self._class_expression(owner, function)
        if not info.is_model:
            return info
        if info.kind is Kind.PIPELINE:
            return ModelInfo(True, Mode.OPAQUE, Kind.PIPELINE, "from_pretrained")
        qualified = self.imports.qualified_name(owner, function.scope) or ""
        if qualified.startswith("peft"):
            # PeftModel.from_pretrained(base, ...) is in eval mode unless is_trainable=True
            trainable = any(a.keyword and a.keyword.value == "is_trainable" and not _is_false(a.value) for a in call.args)
            return ModelInfo(True, Mode.OPAQUE if trainable else Mode.EVAL, Kind.MODULE, "from_pretrained")
        return ModelInfo(True, Mode.EVAL, Kind.MODULE, "from_pretrained")

    def _class_expression(self, owner: cst.BaseExpression, function: Function) -> ModelInfo:
        """Whether `owner` (the `X` of `X.from_pretrained`) is a model class."""
        qualified = self.imports.qualified_name(owner, function.scope)
        if qualified is not None and (found := self.project_class(qualified)) is not None:
            if self.summaries.is_pipeline_class(*found):
                return ModelInfo(True, Mode.DEFAULT, Kind.PIPELINE)
            return ModelInfo(True) if self.summaries.is_module_class(*found) else NOT_A_MODEL
        if qualified is not None:
            if qualified.split(".", 1)[0] in MODEL_LIBRARIES and _is_library_model_class(qualified):
                tail = qualified.rsplit(".", 1)[-1]
                return ModelInfo(True, Mode.DEFAULT, Kind.PIPELINE if _PIPELINE_CLASS.search(tail) else Kind.MODULE)
            return NOT_A_MODEL
        if type(owner) is cst.Name:
            cls = self._visible_class(owner.value, function)
            if cls is not None:
                if self.is_pipeline_class(cls):
                    return ModelInfo(True, Mode.DEFAULT, Kind.PIPELINE)
                return ModelInfo(True) if self.is_module_class(cls) else NOT_A_MODEL
        return UNKNOWN

    def is_pipeline_class(self, cls: Class, seen: frozenset = frozenset()) -> bool:
        """A class of the file that derives from a diffusers pipeline (through the file's
        or the project's classes): its instances are pipelines (Amendment 16)."""
        if id(cls.node) in seen:
            return False
        for base in cls.node.bases:
            qualified = self.imports.qualified_name(base.value, cls.scope)
            if qualified is not None:
                if kinds.is_pipeline_class(qualified):
                    return True
                found = self.project_class(qualified)
                if found is not None and self.summaries.is_pipeline_class(*found):
                    return True
            elif type(base.value) is cst.Name:
                for other in self.program.classes.get(base.value.value, []):
                    if self.is_pipeline_class(other, seen | {id(cls.node)}):
                        return True
        return False

    def _visible_class(self, name: str, function: Function) -> Class | None:
        """A class of the file that `name` means here (not shadowed by an import)."""
        if self.imports.resolve_name(name, function.scope) is not None:
            return None
        for cls in self.program.classes.get(name, []):
            return cls
        return None

    def _visible_function(self, name: str, function: Function) -> Function | None:
        for candidate in self.program.all_functions():
            if candidate.name == name and candidate.cls is None and candidate.parent is not None and (
                candidate.parent is function or candidate.parent.is_module_level
            ):
                return candidate
        return None

    def _returned(self, callee: Function, depth: int) -> ModelInfo:
        """A same-file function that returns a model (every return is one)."""
        return self._ask(
            self._returned_memo, (id(callee.node), depth), ("returns", id(callee.node)), UNKNOWN,
            lambda: self._compute_returned(callee, depth),
        )

    def _compute_returned(self, callee: Function, depth: int) -> ModelInfo:
        self.work += 1
        infos = [self.info(value, callee, callee.end, depth + 1) for value in callee.returns]
        if infos and all(info.is_model for info in infos):
            modes = {info.mode for info in infos}
            return ModelInfo(True, modes.pop() if len(modes) == 1 else Mode.OPAQUE, infos[0].kind, callee.name)
        return UNKNOWN

    # -- the project's facts (other files of the project) -----------------------------

    def project_class(self, qualified: str):
        """(module, class name) of the project class that `qualified` names."""
        found = self.summaries.class_named(self.facts.module, qualified)
        return (found[0], found[1].name) if found is not None else None

    def project_callee(self, call: Call):
        """The project function (of another file, or of this one by import) a call runs."""
        qualified = self.imports.qualified_name(call.node.func, call.site.function.scope)
        if qualified is None:
            return None
        return self.summaries.function_named(self.facts.module, qualified)

    def callable_ref(self, function: Function) -> FunctionRef | None:
        """The project's name of a function other files can call; None for the module's
        own code, a nested function, and the methods of an nn.Module (model code: its
        `__init__(norm_layer=...)` factories are not call sites any rule reports)."""
        name = qualname(function)
        if name is None or name == "<module>" or self.in_module_class(function):
            return None
        return FunctionRef(self.facts.module, name)

    def project_parameter(self, parameter: str, function: Function) -> kinds.Value:
        """What callers in the project's other files pass for `parameter`."""
        ref = self.callable_ref(function)
        if ref is None:
            return kinds.UNKNOWN
        return self.summaries.parameter_value(ref, parameter, self.facts.module, _passed_params(function))

    def project_arguments(self, parameter: str, function: Function) -> list[kinds.Value]:
        """What each caller in the project's other files passes for `parameter`."""
        ref = self.callable_ref(function)
        if ref is None:
            return []
        return self.summaries.passed_values(ref, parameter, self.facts.module, _passed_params(function)) or []

    def outside_callers(self, function: Function) -> list:
        """(caller, call site) of each call of `function` in the project's other files."""
        ref = self.callable_ref(function)
        if ref is None or not self.summaries.may_be_called_from_outside(ref):
            return []
        return [(caller, site) for caller, site in self.summaries.callers(ref) if caller.module != self.facts.module]

    def _has_project_callers(self, function: Function) -> bool:
        return bool(self.outside_callers(function))

    def _project_call(self, qualified: str, call: cst.Call, function: Function, order: int, depth: int) -> ModelInfo | None:
        """What a call of a project class or function of another file makes."""
        found = self.project_class(qualified)
        if found is not None:
            if self.summaries.is_pipeline_class(*found):
                return ModelInfo(True, Mode.OPAQUE, Kind.PIPELINE, found[1])
            if not self.summaries.is_module_class(*found):
                return NOT_A_MODEL
            for arg in call.args:
                wrapped = self.info(arg.value, function, order, depth + 1)
                if wrapped.is_model:
                    return ModelInfo(True, wrapped.mode, Kind.MODULE, wrapped.origin)
            return ModelInfo(True, Mode.DEFAULT, Kind.MODULE, found[1])
        ref = self.summaries.function_named(self.facts.module, qualified)
        if ref is not None:
            return model_info_of(self.summaries.returned(ref), ref.name.rsplit(".", 1)[-1])
        return None

    def _project_callee_effect(self, call: Call, key: str) -> tuple[Mode, str] | None:
        """The mode a call into a function of another file leaves `key` in."""
        if call.callee is None:
            return None
        caller = call.site.function
        if not any(caller.key(chain_base(arg.value)) == key for arg in call.node.args):
            return None  # `key` is not passed: nothing of the callee's module is read
        ref = self.project_callee(call)
        if ref is None:
            return None
        callee = self.summaries.function(ref)
        if callee is None:
            return None
        params = list(callee.params)
        if callee.self_name is not None:
            params = params[1:]
        positional = [arg for arg in call.node.args if arg.keyword is None]
        last = None
        for arg in call.node.args:
            if arg.keyword is not None:
                parameter = arg.keyword.value
            elif not arg.star and positional.index(arg) < len(params):
                parameter = params[positional.index(arg)]
            else:
                continue
            if caller.key(chain_base(arg.value)) != key:
                continue
            effect = self.summaries.effect(ref, parameter)
            if effect.mode is not None:
                last = effect
        if last is None:
            return None
        name = f"{ref.name.rsplit('.', 1)[-1]}()"
        if last.mode == "eval":
            return Mode.EVAL, name
        if last.mode == "train":
            return (Mode.DEFAULT, "training") if last.trained_after else (Mode.TRAIN, name)
        return Mode.OPAQUE, name

    # -- names -----------------------------------------------------------------------

    def owner_of(self, key: str, function: Function) -> Function:
        """The function whose binding of `key` is visible in `function` (for globals: the module)."""
        return owner_of(key, function)

    def is_model(self, key: str, function: Function) -> bool:
        owner = self.owner_of(key, function)
        holder = owner.cls.node if key.startswith("self.") and owner.cls is not None else owner.node
        memo_key = (id(holder), key)
        return self._ask(self._is_model, memo_key, memo_key, False, lambda: self._decide_is_model(key, owner))

    def _decide_is_model(self, key: str, owner: Function) -> bool:
        self.work += 1
        if key.startswith("self."):
            return self._attribute_is_model(key, owner)
        infos = [self._binding_info(binding, owner) for binding in owner.bindings.get(key, [])]
        if any(info.is_model is False for info in infos) and not any(info.is_model for info in infos):
            return False
        if any(info.is_model for info in infos):
            return True
        if key in owner.params:
            if self._annotated_module(owner.annotations.get(key), owner):
                return True
            if self._callers_pass_models(key, owner):
                return True
        if not infos and key not in owner.params and self.imported_value(key, owner).only(kinds.MODEL):
            return True  # `from models import model`: a model another module builds
        return self._has_evidence(key, [owner])

    def imported_value(self, key: str, function: Function) -> kinds.Value:
        """What a name imported from another module of the project holds there
        (`model = Net()` at the top level of models.py)."""
        if "." in key:
            return kinds.UNKNOWN
        qualified = self.imports.resolve_name(key, function.scope)
        if qualified is None:
            return kinds.UNKNOWN
        return self.summaries.module_binding(self.facts.module, qualified)

    def _binding_info(self, binding: Binding, function: Function) -> ModelInfo:
        return self._ask(
            self._binding_memo, id(binding), ("binding", id(binding)), UNKNOWN,
            lambda: self._compute_binding_info(binding, function),
        )

    def _compute_binding_info(self, binding: Binding, function: Function) -> ModelInfo:
        self.work += 1
        if binding.value is None:
            return UNKNOWN
        value = binding.value
        if binding.tuple_index is not None:
            # `model, opt = accelerator.prepare(model, opt)`: element-wise
            if type(value) is cst.Call and type(value.func) is cst.Attribute and value.func.attr.value == "prepare":
                if binding.tuple_index < len(value.args):
                    return self.info(value.args[binding.tuple_index].value, function, binding.order)
                return UNKNOWN
            if type(value) in (cst.Tuple, cst.List) and binding.tuple_index < len(value.elements):
                return self.info(value.elements[binding.tuple_index].value, function, binding.order)
            return UNKNOWN
        return self.info(value, function, binding.order)

    def _attribute_is_model(self, key: str, method: Function) -> bool:
        cls = method.cls
        if cls is None:
            return False
        methods = list(cls.methods.values())
        infos = []
        for other in methods:
            for binding in other.bindings.get(key, []):
                info = self._binding_info(binding, other)
                if info.is_model is None and type(binding.value) is cst.Name and binding.value.value in other.params:
                    # `self.model = model` with `model` a parameter
                    if self.is_model(binding.value.value, other):
                        info = ModelInfo(True)
                infos.append(info)
        if any(info.is_model for info in infos):
            return True
        if any(info.is_model is False for info in infos):
            return False
        return self._has_evidence(key, methods)

    def _has_evidence(self, key: str, functions: list[Function]) -> bool:
        for function in functions:
            for call in function.calls:
                if call.receiver_key != key or call.method not in EVIDENCE_METHODS:
                    continue
                if call.method == "eval" and call.node.args:
                    continue  # `df.eval("a + b")` is pandas
                if call.method == "state_dict" and self._bound_to_non_model(key, function):
                    continue
                return True
        return False

    def _bound_to_non_model(self, key: str, function: Function) -> bool:
        owner = self.owner_of(key, function)
        memo_key = (id(owner.node), key)
        # asked again while its bindings are being asked about (`model = model.to(d)`,
        # while `model` is): not known to be bound to a non-model
        return self._ask(
            self._non_model_memo, memo_key, ("non-model", memo_key), False,
            lambda: self._compute_bound_to_non_model(key, owner),
        )

    def _compute_bound_to_non_model(self, key: str, owner: Function) -> bool:
        self.work += 1
        return any(self._binding_info(b, owner).is_model is False for b in owner.bindings.get(key, []))

    def _annotated_module(self, annotation: cst.BaseExpression | None, function: Function) -> bool:
        if annotation is None:
            return False
        if type(annotation) is cst.SimpleString:
            return False
        qualified = self.imports.qualified_name(annotation, function.scope)
        if qualified is not None and (found := self.project_class(qualified)) is not None:
            return self.summaries.is_module_class(*found)
        if qualified is not None:
            return qualified in MODULE_BASES or _is_library_model_class(qualified)
        if type(annotation) is cst.Name:
            cls = self._visible_class(annotation.value, function)
            return cls is not None and self.is_module_class(cls)
        return False

    def _callers_pass_models(self, parameter: str, function: Function) -> bool:
        for call in self.callgraph.callers(function):
            argument = self.callgraph.argument(call, function, parameter)
            if argument is not None and self.info(argument, call.site.function, call.site.order).is_model:
                return True
        value = self.project_parameter(parameter, function)
        return value.only(kinds.MODEL) or value.only(kinds.PIPELINE)

    def kind(self, key: str, function: Function) -> Kind:
        owner = self.owner_of(key, function)
        memo_key = (id(owner.node), key)
        if memo_key not in self._kind_memo:
            self._kind_memo[memo_key] = Kind.MODULE  # a cycle of parameters: a module
            kind = next(
                (Kind.PIPELINE for b in owner.bindings.get(key, []) if self._binding_info(b, owner).kind is Kind.PIPELINE),
                Kind.MODULE,
            )
            if kind is Kind.MODULE and key in owner.params and self._callers_pass_pipelines(key, owner):
                kind = Kind.PIPELINE
            self._kind_memo[memo_key] = kind
        return self._kind_memo[memo_key]

    def _callers_pass_pipelines(self, parameter: str, function: Function) -> bool:
        """Every caller, in the file and in the project, passes a pipeline."""
        infos = []
        for call in self.callgraph.callers(function):
            argument = self.callgraph.argument(call, function, parameter)
            if argument is None:
                return False
            infos.append(self.info(argument, call.site.function, call.site.order).kind is Kind.PIPELINE)
        value = self.project_parameter(parameter, function)
        if value.known:
            infos.append(value.only(kinds.PIPELINE))
        return bool(infos) and all(infos)

    def forward_key(self, call: cst.Call, function: Function) -> str | None:
        """The model a call runs forward (`model(x)`, `self.model(x)`), else None.
        Pipelines are not forwards: they manage grad mode themselves. Asked of every call
        by several checks: remembered, when asked with no question in progress (then
        the answer is final, not one that holds only inside a cycle)."""
        memo_key = (id(call), id(function))
        if memo_key in self._forward_keys:
            return self._forward_keys[memo_key]
        key = self._forward_key(call, function)
        if not self._frames:
            self._forward_keys[memo_key] = key
        return key

    def _forward_key(self, call: cst.Call, function: Function) -> str | None:
        func = call.func
        if type(func) is cst.Attribute and func.attr.value == "forward":
            func = func.value  # `model.forward(x)` runs the forward too (without hooks)
        item = type(func) is cst.Subscript
        if item:
            func = func.value  # `self.models["generator"](z)`: an item of a ModuleDict/ModuleList
        key = function.key(func)
        if key is None or key == function.self_name:
            return None
        if not self.is_model(key, function) or self.kind(key, function) is Kind.PIPELINE:
            return None
        if item and not self._is_module_container(key, function):
            return None
        return key

    def _is_module_container(self, key: str, function: Function) -> bool:
        """`key` is bound to an nn.ModuleDict / nn.ModuleList (whose items share its mode)."""
        owner = self.owner_of(key, function)
        scopes = list(owner.cls.methods.values()) if key.startswith("self.") and owner.cls is not None else [owner]
        for scope in scopes:
            for binding in scope.bindings.get(key, []):
                value = chain_base(binding.value) if binding.value is not None else None
                if type(value) is cst.Call:
                    qualified = self.imports.qualified_name(value.func, scope.scope) or ""
                    if qualified.rsplit(".", 1)[-1] in ("ModuleDict", "ModuleList", "Sequential"):
                        return True
        return False

    # -- mode-dependent layers (Amendment 17) ------------------------------------------

    def mode_dependent(self, key: str, function: Function) -> bool | None:
        """Whether model `key` may hold a layer that behaves differently in train and eval
        mode: False only when every value it may hold is known to hold none."""
        owner = self.owner_of(key, function)
        holder = owner.cls.node if key.startswith("self.") and owner.cls is not None else owner.node
        memo_key = ("mode-dependent", id(holder), key)
        if memo_key in self._is_model_memo_extra:
            return self._is_model_memo_extra[memo_key]
        self._is_model_memo_extra[memo_key] = None  # a cycle: unknown
        answers = [self._value_mode_dependent(value, scope) for value, scope in self._bound_expressions(key, owner)]
        answer = _all_false(answers)
        self._is_model_memo_extra[memo_key] = answer
        return answer

    def _bound_expressions(self, key: str, owner: Function):
        """(expression, function) of what `key` is bound to; (None, function) for a value
        lintml cannot read; a parameter: what the callers pass."""
        scopes = list(owner.cls.methods.values()) if key.startswith("self.") and owner.cls is not None else [owner]
        found = False
        for scope in scopes:
            for binding in scope.bindings.get(key, []):
                found = True
                value = binding.value
                if binding.tuple_index is not None and type(value) in (cst.Tuple, cst.List):
                    elements = value.elements  # `net, plain = Net(), Plain()`
                    element = elements[binding.tuple_index] if binding.tuple_index < len(elements) else None
                    if element is None or type(element) is cst.StarredElement:
                        yield None, scope
                    else:
                        yield element.value, scope
                elif value is None or binding.tuple_index is not None:
                    yield None, scope
                elif type(binding.value) is cst.Name and binding.value.value in scope.params:
                    yield from self._passed_expressions(binding.value.value, scope)
                else:
                    yield binding.value, scope
        if not key.startswith("self.") and key in owner.params:
            found = True
            yield from self._passed_expressions(key, owner)
        if not found:
            yield None, owner

    def _passed_expressions(self, parameter: str, function: Function):
        if self.callgraph.escapes(function):
            yield None, function
            return
        for call in self.callgraph.callers(function):
            argument = self.callgraph.argument(call, function, parameter)
            yield argument, call.site.function
        if self._has_project_callers(function):
            value = self.project_parameter(parameter, function)
            yield ("value", value.mode_dependent), function
        elif not self.callgraph.callers(function):
            yield None, function

    def _value_mode_dependent(self, expression, function: Function) -> bool | None:
        if expression is None:
            return None
        if isinstance(expression, tuple):  # a project fact: ("value", answer)
            return expression[1]
        expression = chain_base(expression)
        if type(expression) is cst.Name or (
            type(expression) is cst.Attribute and function.key(expression) is not None
        ):
            key = function.key(expression)
            return self.mode_dependent(key, function) if key is not None else None
        if type(expression) is not cst.Call:
            return None
        func = expression.func
        qualified = self.imports.qualified_name(func, function.scope)
        if qualified is not None:
            if (qualified in PASSTHROUGH or qualified in QUANTIZATION_PASSTHROUGH) and expression.args:
                return self._value_mode_dependent(expression.args[0].value, function)
            found = self.project_class(qualified)
            if found is not None:
                return self.summaries.mode_dependent(*found)
            if qualified.startswith(kinds.TORCH_NN_PREFIXES):
                if qualified.rsplit(".", 1)[-1] in ("Sequential", "ModuleList", "ModuleDict"):
                    return _all_false(self._value_mode_dependent(item, function) for item in _container_items(expression))
                return kinds.torch_layer_mode_dependent(qualified, _literal_arguments(expression))
            return None
        if type(func) is cst.Name:
            cls = self._visible_class(func.value, function)
            if cls is not None and self.facts.module and cls.scope is self.program.module_function.scope:
                facts = self.summaries.modules.get(self.facts.module)
                if facts is not None and cls.name in facts.classes:
                    answer = self.summaries.mode_dependent(self.facts.module, cls.name)
                    if answer is False:
                        for arg in expression.args:  # a wrapper: the wrapped model's layers
                            if self.info(arg.value, function, 0).is_model:
                                return self._value_mode_dependent(arg.value, function)
                    return answer
        return None

    def helper_forward(self, call: cst.Call, function: Function) -> tuple[str, Function] | None:
        """The model a call into a helper of the file runs forward with grad on
        (`self._forward_pass(batch)` running `self.model(...)`; `step(model, x)`), and the
        helper; None when the call runs none."""
        known = self.program.calls.get(id(call))
        if known is None or known.callee is None:
            return None
        if not known.via_self:
            return None  # Amendment 20 names a trainer class's helpers, reached through `self`
        callee = self.callgraph.resolve(known)
        name = qualname(callee) if callee is not None and callee is not function else None
        if name is None or name == "<module>":
            return None
        for target, effect in self.summaries.effects(FunctionRef(self.facts.module, name)).items():
            if effect.forward != "grad":
                continue
            if target.startswith("self."):
                key = target if known.via_self else None
            elif target in callee.params:
                argument = self.callgraph.argument(known, callee, target)
                key = function.key(chain_base(argument)) if argument is not None else None
            else:
                key = None
            if key is not None and self.is_model(key, function) and self.kind(key, function) is not Kind.PIPELINE:
                return key, callee
        return None

    def frozen(self, key: str, function: Function, before: int | None = None) -> bool:
        """`model.requires_grad_(False)` (also at the end of the chain that made it), or
        `for p in model.parameters(): p.requires_grad = False`: with no parameter that
        requires grad, a forward records no graph and no optimizer trains it. Inside
        `function` it counts only before `before`; elsewhere (the module, the class's
        other methods) anywhere."""
        if key.startswith("self."):
            scopes = list(function.cls.methods.values()) if function.cls is not None else [function]
        else:
            owner = self.owner_of(key, function)
            scopes = [function] if owner is function else [function, owner]
        for scope in scopes:
            def counts(order: int) -> bool:
                return scope is not function or before is None or order < before

            for call in scope.calls:
                if call.receiver_key == key and call.method == "requires_grad_" and _only_false(call.node.args):
                    if counts(call.site.order):
                        return True
            for binding in scope.bindings.get(key, []):
                if binding.value is not None and _chain_freezes(binding.value) and counts(binding.order):
                    return True
            for loop in scope.loops:
                node = loop.node
                if (
                    type(node) is cst.For
                    and type(node.iter) is cst.Call
                    and type(node.iter.func) is cst.Attribute
                    and node.iter.func.attr.value in ("parameters", "named_parameters")
                    and scope.key(chain_base(node.iter.func.value)) == key
                    and _freezes_every_parameter(node)
                    and counts(loop.start)
                ):
                    return True
        return False

    # -- modes -----------------------------------------------------------------------

    def mode_events(
        self, key: str, function: Function, before: int | None = None
    ) -> list[tuple[int, Mode, str, cst.CSTNode]]:
        """(order, mode, origin, node) of what sets `key`'s mode in `function`, in
        order; with `before`, only what happens before that order. A binding's mode only
        depends on what came before it, so the recursion always ends."""
        events = [event for event in self._call_events(key, function) if before is None or event[0] < before]
        for binding in function.bindings.get(key, []):
            if before is not None and binding.order >= before:
                continue
            event = self._binding_event(binding, function)
            if event is not None:
                events.append(event)
        events.sort(key=lambda event: event[0])
        return events

    def _last_event(self, key: str, function: Function, before: int) -> tuple[int, Mode, str, cst.CSTNode] | None:
        """`mode_events(key, function, before)[-1]` (None: no event), without asking
        about the bindings that an event after them hides: the mode at a place is what
        the last event before it left, and asking about every earlier rebinding of a
        model makes each question about a long script ask about all of the script."""
        calls = [event for event in self._call_events(key, function) if event[0] < before]
        # the order `mode_events` sorts its events in: by order, calls before bindings
        candidates = [(event[0], 0, index, event) for index, event in enumerate(calls)]
        candidates += [
            (binding.order, 1, index, binding)
            for index, binding in enumerate(function.bindings.get(key, []))
            if binding.order < before
        ]
        candidates.sort(key=lambda candidate: candidate[:3])
        for _, is_binding, _, candidate in reversed(candidates):
            if not is_binding:
                return candidate
            event = self._binding_event(candidate, function)
            if event is not None:
                return event
        return None

    def _binding_event(self, binding: Binding, function: Function) -> tuple[int, Mode, str, cst.CSTNode] | None:
        """What a binding of a name does to its mode: a model's mode, or an opaque one
        (rebound to something else); None for a name bound by a loop or an import."""
        info = self._binding_info(binding, function)
        if info.is_model:
            return binding.order, info.mode, info.origin, binding.statement or binding.value
        if binding.value is not None or binding.tuple_index is not None:
            return binding.order, Mode.OPAQUE, "", binding.statement or binding.value
        return None

    def _call_events(self, key: str, function: Function) -> list[tuple[int, Mode, str, cst.CSTNode]]:
        """`.eval()`/`.train()` on `key`, and calls into same-file functions that switch it."""
        memo_key = (id(function.node), key)
        # a same-file call cycle: what the cycle does is not known
        return self._ask(
            self._events_memo, memo_key, ("events", memo_key), [], lambda: self._compute_call_events(key, function)
        )

    def _compute_call_events(self, key: str, function: Function) -> list[tuple[int, Mode, str, cst.CSTNode]]:
        self.work += 1
        events = []
        for call in function.calls:
            if call.receiver_key == key and call.method in ("eval", "train") and _is_mode_call(call.node):
                mode = Mode.EVAL if call.method == "eval" else _train_call_mode(call.node)
                events.append((call.site.order, mode, f".{call.method}()", call.node))
            elif call.callee is not None:
                effect = self._callee_effect(call, key)
                if effect is not None:
                    events.append((call.site.order, *effect, call.node))
        return events

    def _callee_effect(self, call: Call, key: str) -> tuple[Mode, str] | None:
        """The mode a call into a same-file function leaves `key` in, when that function
        calls `.eval()`/`.train()` on it (`freeze(teacher)`, `self.freeze_backbone()`)."""
        caller = call.site.function
        callee = self.callgraph.resolve(call)
        if callee is None:
            return self._project_callee_effect(call, key)
        if callee is caller:
            return None
        targets = [
            parameter for parameter in callee.params
            if (argument := self.callgraph.argument(call, callee, parameter)) is not None
            and caller.key(chain_base(argument)) == key
        ]  # fmt: skip
        if key.startswith("self.") and call.via_self:
            targets.append(key)
        elif not key.startswith("self.") and key not in callee.bindings and key not in callee.params:
            targets.append(key)  # a global model the callee uses
        last = None
        for target in targets:
            for callee_call in callee.calls:
                if callee_call.receiver_key == target and callee_call.method in ("eval", "train") and _is_mode_call(callee_call.node):
                    mode = Mode.EVAL if callee_call.method == "eval" else _train_call_mode(callee_call.node)
                    if last is None or callee_call.site.order > last[0]:
                        last = (callee_call.site.order, mode)
        if last is None:
            return None
        order, mode = last
        if mode is Mode.TRAIN and self._trains_between(callee, order, callee.end + 1):
            return Mode.DEFAULT, "training"
        return mode, f"{callee.name}()"

    def mode_at(self, key: str, function: Function, order: int, depth: int = 0) -> tuple[Mode, str]:
        """The mode of model `key` when `function` reaches `order` (straight-line order)."""
        if depth > 8:
            return Mode.UNKNOWN, ""  # a chain of callers this long proves nothing
        marker = ("mode", id(function.node), key, order)
        return self._ask(
            self._mode_memo, (*marker, depth), marker, (Mode.UNKNOWN, ""),
            lambda: self._mode_at(key, function, order, depth),
        )

    def _mode_at(self, key: str, function: Function, order: int, depth: int) -> tuple[Mode, str]:
        self.work += 1
        if key.startswith("self."):
            last = self._last_event(key, function, order)
            if last is not None:
                return self._settled(last, function, order)
            # a method the class calls (`self.validate()`): the mode at those calls
            callers = self.callgraph.callers(function)
            if callers:
                combined = _combined([self.mode_at(key, call.site.function, call.site.order, depth + 1) for call in callers])
                if combined[0] is not Mode.UNKNOWN:
                    return combined
            return self._class_state(key, function, depth)
        owner = self.owner_of(key, function)
        if owner is function:
            last = self._last_event(key, function, order)
            if last is not None:
                return self._settled(last, function, order)
            if key in function.params:
                return self._mode_from_callers(key, function, depth)
            if not function.bindings.get(key):  # not bound here: imported from another module?
                return self._imported_mode(key, function)
            return Mode.UNKNOWN, ""
        # a model of an enclosing scope (a script's global): what this function set it
        # to before `order`; else, unless some function switches it to training, its
        # mode where the file calls this function, or what it ends up as there
        own = self._last_event(key, function, order)
        if own is not None:
            return self._settled(own, function, order)
        for other in self.program.all_functions():
            if other is not owner and key not in other.bindings:
                if any(e[1] is Mode.TRAIN for e in self.mode_events(key, other)):
                    return Mode.UNKNOWN, ""
        callers = self.callgraph.callers(function)
        if callers:
            return _combined([self.mode_at(key, call.site.function, call.site.order, depth + 1) for call in callers])
        limit = owner.end + 1
        last = self._last_event(key, owner, limit)
        if last is None and owner.is_module_level and not owner.bindings.get(key):
            return self._imported_mode(key, owner)
        return self._settled(last, owner, limit) if last is not None else (Mode.UNKNOWN, "")

    def _imported_mode(self, key: str, function: Function) -> tuple[Mode, str]:
        value = self.imported_value(key, function)
        if not value.only(kinds.MODEL):
            return Mode.UNKNOWN, ""
        return {"eval": (Mode.EVAL, "its module"), "default": (Mode.DEFAULT, "its module")}.get(value.mode, (Mode.OPAQUE, ""))

    def _settled(self, event, function: Function, order: int) -> tuple[Mode, str]:
        """The mode the last event before `order` leaves. A `.train()` followed by a
        backward was for that training: afterwards the model is merely still in
        training mode, not put there on purpose for what comes next."""
        event_order, mode, origin, _ = event
        if mode is Mode.TRAIN and self._trains_between(function, event_order, order):
            return Mode.DEFAULT, "training"
        return mode, origin

    def _trains_between(self, function: Function, start: int, end: int, depth: int = 0) -> bool:
        """A backward runs in `function` between two orders, or in a same-file function
        called there."""
        if any(start < backward < end for backward in function.backward_orders):
            return True
        if depth >= 3:
            return False
        for call in function.calls:
            if start < call.site.order < end:
                if call.callee is not None and (project := self.project_callee(call)) is not None:
                    facts = self.summaries.function(project)
                    if facts is not None and (facts.backward or any(e.backward for e in self.summaries.effects(project).values())):
                        return True
                    continue
                callee = self.callgraph.resolve(call)
                if callee is not None and callee is not function and self._trains_between(callee, 0, callee.end + 1, depth + 1):
                    return True
        return False

    def _mode_from_callers(self, parameter: str, function: Function, depth: int) -> tuple[Mode, str]:
        if self.callgraph.escapes(function):
            return Mode.OPAQUE, ""  # called from places lintml cannot see as well
        modes = []
        for call in self.callgraph.callers(function):
            argument = self.callgraph.argument(call, function, parameter)
            if argument is None:
                return Mode.OPAQUE, ""
            info = self.info(argument, call.site.function, call.site.order, depth + 1)
            modes.append(info.mode if info.is_model else Mode.OPAQUE)
        if self._has_project_callers(function):
            for value in self.project_arguments(parameter, function):
                if value.only(kinds.MODEL):
                    modes.append({"eval": Mode.EVAL, "default": Mode.DEFAULT}.get(value.mode, Mode.OPAQUE))
                else:
                    modes.append(Mode.OPAQUE)
        if not modes:
            return Mode.UNKNOWN, ""
        if all(mode is Mode.EVAL for mode in modes):
            return Mode.EVAL, "every caller"
        if any(mode is Mode.TRAIN for mode in modes):
            return Mode.TRAIN, "a caller"
        if any(mode is Mode.OPAQUE for mode in modes):
            return Mode.OPAQUE, ""
        if all(mode is Mode.DEFAULT for mode in modes):
            return Mode.DEFAULT, "every caller"
        return Mode.UNKNOWN, ""

    def _class_state(self, key: str, method: Function, depth: int) -> tuple[Mode, str]:
        """What the class's methods establish for `self.<attr>` (RULES.md clarification 3)."""
        cls = method.cls
        if cls is None:
            return Mode.UNKNOWN, ""
        established: list[tuple[Mode, str]] = []
        for other in cls.methods.values():
            for _, mode, origin, _ in self.mode_events(key, other):
                if mode is Mode.TRAIN:
                    return Mode.UNKNOWN, ""  # some method trains it: no mode holds everywhere
                established.append((mode, origin))
            for binding in other.bindings.get(key, []):
                if type(binding.value) is cst.Name and binding.value.value in other.params:
                    mode, origin = self._mode_from_callers(binding.value.value, other, depth + 1)
                    # a component handed to the constructor by code outside the file:
                    # whoever built it chose its mode
                    established.append((Mode.OPAQUE if mode is Mode.UNKNOWN else mode, origin))
        if any(mode is Mode.EVAL for mode, _ in established):
            return Mode.EVAL, next(origin for mode, origin in established if mode is Mode.EVAL)
        if any(mode is Mode.OPAQUE for mode, _ in established):
            return Mode.OPAQUE, ""
        if established and all(mode is Mode.DEFAULT for mode, _ in established):
            return Mode.DEFAULT, established[0][1]
        if not established:
            # nothing in the class sets it (`register_modules`, `setattr`, a base class
            # of another file): its mode is decided where lintml cannot see
            return Mode.OPAQUE, ""
        return Mode.UNKNOWN, ""


def _source_of(program: Program) -> str:
    return program.module.code


def model_info_of(value: kinds.Value, origin: str) -> ModelInfo:
    """A project fact's value as the file's model questions see it."""
    if value.only(kinds.MODEL):
        mode = {"eval": Mode.EVAL, "default": Mode.DEFAULT}.get(value.mode, Mode.OPAQUE)
        return ModelInfo(True, mode, Kind.MODULE, origin)
    if value.only(kinds.PIPELINE):
        return ModelInfo(True, Mode.OPAQUE, Kind.PIPELINE, origin)
    if value.known and not value.may_be(kinds.MODEL) and not value.may_be(kinds.PIPELINE):
        return NOT_A_MODEL
    return UNKNOWN


def _passed_params(function: Function) -> tuple[str, ...]:
    """The parameters a call passes arguments to (after `self`)."""
    params = tuple(function.params)
    return params[1:] if function.self_name is not None else params


def _all_false(answers) -> bool | None:
    answers = list(answers)
    if any(answer is True for answer in answers):
        return True
    return False if answers and all(answer is False for answer in answers) else None


def _container_items(call: cst.Call):
    """The layers an `nn.Sequential(a, b)`, `nn.ModuleList([a, b])` or
    `nn.ModuleDict({"a": a})` holds; None for one lintml cannot list (`*layers`)."""
    for arg in call.args:
        value = arg.value
        if arg.star:
            yield None
        elif type(value) in (cst.List, cst.Tuple):
            for element in value.elements:
                yield None if type(element) is cst.StarredElement else element.value
        elif type(value) is cst.Dict:
            for element in value.elements:
                yield element.value if type(element) is cst.DictElement else None
        elif type(value) in (cst.ListComp, cst.GeneratorExp):
            yield value.elt
        else:
            yield value


def _literal_arguments(call: cst.Call) -> dict:
    """Positions ("0", "1", ...) and keywords of a call, to literal values (`...` for
    anything else)."""
    found: dict = {}
    position = 0
    for arg in call.args:
        value = _literal_value(arg.value)
        if arg.keyword is not None:
            found[arg.keyword.value] = value
        elif not arg.star:
            found[str(position)] = value
            position += 1
    return found


def _literal_value(node: cst.BaseExpression):
    if type(node) is cst.Integer:
        return int(node.value.replace("_", ""), 0) if not node.value.startswith("0") or node.value == "0" else ...
    if type(node) is cst.Float:
        try:
            return float(node.value.replace("_", ""))
        except ValueError:
            return ...
    if type(node) is cst.Name and node.value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[node.value]
    return ...


def _only_false(args) -> bool:
    """`(False)` / `(requires_grad=False)`."""
    return len(args) == 1 and isinstance(args[0].value, cst.Name) and args[0].value.value == "False"


def _chain_freezes(value: cst.BaseExpression) -> bool:
    """`AutoModel.from_pretrained(name).eval().requires_grad_(False)`."""
    while type(value) is cst.Call and type(value.func) is cst.Attribute:
        if value.func.attr.value == "requires_grad_" and _only_false(value.args):
            return True
        value = value.func.value
    return False


def _freezes_every_parameter(loop: cst.For) -> bool:
    """The loop body itself (not under an `if`) sets `.requires_grad = False` or calls
    `.requires_grad_(False)`."""
    body = loop.body.body if type(loop.body) is cst.IndentedBlock else (loop.body,)
    for statement in body:
        if type(statement) not in (cst.SimpleStatementLine, cst.SimpleStatementSuite):
            continue
        for small in statement.body:
            if type(small) is cst.Assign and _is_false(small.value):
                if any(
                    type(target.target) is cst.Attribute and target.target.attr.value == "requires_grad"
                    for target in small.targets
                ):
                    return True
            if (
                type(small) is cst.Expr
                and type(small.value) is cst.Call
                and type(small.value.func) is cst.Attribute
                and small.value.func.attr.value == "requires_grad_"
                and _only_false(small.value.args)
            ):
                return True
    return False


def _is_false(node: cst.BaseExpression) -> bool:
    return type(node) is cst.Name and node.value == "False"


def _combined(modes: list[tuple[Mode, str]]) -> tuple[Mode, str]:
    """One mode for the several places a function is called from: the mode they all
    agree on, else unknown."""
    if modes and all(mode is modes[0][0] for mode, _ in modes):
        return modes[0]
    return Mode.UNKNOWN, ""


def _is_mode_call(call: cst.Call) -> bool:
    """`m.eval()` / `m.train()` / `m.train(False)`: a mode switch, not `df.eval("expr")`."""
    method = call.func.attr.value if type(call.func) is cst.Attribute else ""
    if method == "eval":
        return not call.args
    return len(call.args) <= 1


def _train_call_mode(call: cst.Call) -> Mode:
    if call.args and _is_false(call.args[0].value):
        return Mode.EVAL
    if call.args and not (isinstance(call.args[0].value, cst.Name) and call.args[0].value.value == "True"):
        return Mode.OPAQUE  # `model.train(mode)`: set on purpose, to what the argument says
    return Mode.TRAIN


_is_library_model_class = kinds.is_library_model_class
