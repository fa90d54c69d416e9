"""Grad context, inference context and training loops, as RULES.md defines them.

- Grad context: autograd is off inside `with torch.no_grad()` / `inference_mode()` /
  `set_grad_enabled(False)`, in a function decorated with one of them, after a
  `torch.set_grad_enabled(False)` statement, and in a function of the file that is only
  called from such places.
- Inference context: a forward that is inference, not training: its function does not
  train (no backward, no optimizer step) and a strong signal holds (an inference name,
  a loop over a val/test loader, the model put in eval mode before, or only inference
  callers). A function that also trains elsewhere still has inference loops when the
  loop itself says so (a loop over a validation loader, or the model in eval mode).
- Training loop: a loop whose body calls backward and steps an optimizer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst

from lintml.analysis.callgraph import CallGraph
from lintml.analysis.models import Mode, Models
from lintml.analysis.program import Call, Function, Loop, Program, Site, grad_mode_of, words

INFERENCE_WORDS = frozenset(
    {"predict", "prediction", "predictions", "infer", "inference", "evaluate", "evaluation", "eval",
     "validate", "validation", "test", "generate", "sample", "decode", "translate", "score", "serve",
     "benchmark"}
)  # fmt: skip
EVAL_DATA_WORDS = frozenset({"val", "valid", "validation", "test", "testing", "eval", "evaluation", "dev"})
# Lightning runs these in eval mode without grad; their bodies are never reported.
LIGHTNING_EVAL_HOOKS = frozenset({"validation_step", "test_step", "predict_step"})
LIGHTNING_TRAIN_HOOKS = frozenset({"training_step"})
_TEST_FILE = re.compile(r"(^|/)(test_[^/]*|[^/]*_test|conftest)\.py$")
_SCHEDULER_WORDS = frozenset({"scheduler", "sched", "lr", "warmup", "env", "environment"})


@dataclass
class TrainingLoop:
    loop: Loop
    backward_orders: list[int]
    step_calls: list[Call]
    models: list[str] = field(default_factory=list)  # keys of the models forwarded in it

    @property
    def first_step(self) -> int:
        return min([*self.backward_orders, *(call.site.order for call in self.step_calls)])


class Contexts:
    def __init__(self, program: Program, models: Models, callgraph: CallGraph) -> None:
        self.program = program
        self.models = models
        self.callgraph = callgraph
        self._grad_memo: dict[int, bool] = {}
        self._inference_memo: dict[int, bool] = {}

    # -- grad context ----------------------------------------------------------------

    def grad_disabled(self, site: Site) -> bool:
        if site.grad == "off":
            return True
        if site.grad == "on":
            return False
        function = site.function
        if function.grad_off_statement_order is not None and function.grad_off_statement_order < site.order:
            return True
        return self.function_grad_disabled(function)

    def function_grad_disabled(self, function: Function) -> bool:
        """Every run of `function` has autograd off: decorated, nested in such a
        function, or only called from grad-disabled places of the file."""
        key = id(function.node)
        if key in self._grad_memo:
            return self._grad_memo[key]
        self._grad_memo[key] = False  # recursion: not proven
        result = False
        if not function.is_module_level:
            if any(grad_mode_of(d, self.program.imports, function.parent.scope) == "off" for d in function.decorators):
                result = True
            elif function.parent is not None and not function.parent.is_module_level and function.cls is None:
                result = self.function_grad_disabled(function.parent)
            if not result:
                callers = self.callgraph.callers(function)
                result = bool(callers) and all(self.grad_disabled(call.site) for call in callers)
        self._grad_memo[key] = result
        return result

    # -- where forwards are inference ------------------------------------------------

    def is_model_code(self, function: Function) -> bool:
        """Inside an nn.Module's (or LightningModule's) own methods: not a call site."""
        return self.models.in_module_class(function)

    def is_test_function(self, function: Function) -> bool:
        """Test functions in test files are not inference code (clarification 4)."""
        if not _TEST_FILE.search(self.program.filename.replace("\\", "/")):
            return False
        current: Function | None = function
        while current is not None and not current.is_module_level:
            if current.name.startswith("test") or (current.cls and current.cls.name.startswith("Test")):
                return True
            current = current.parent
        return False

    def in_training_loop(self, site: Site) -> bool:
        """The innermost loop around `site` trains (backward and a step in it)."""
        return site.loop is not None and bool(site.loop.backward_orders or site.loop.step_calls)

    def eval_data_loop(self, site: Site) -> Loop | None:
        """An enclosing loop over a loader/dataset whose name says val/test/eval."""
        loop = site.loop
        while loop is not None:
            if loop.iter_words & EVAL_DATA_WORDS:
                return loop
            loop = loop.parent
        return None

    def inference_signal(self, site: Site, model_key: str | None) -> str | None:
        """Why `site` is inference, in words for a message; None when it is not."""
        function = site.function
        if self.is_model_code(function) or self.is_test_function(function):
            return None
        if self.in_training_loop(site):
            return None
        loop = self.eval_data_loop(site)
        if loop is not None:
            return "it runs in a loop over evaluation data"
        if model_key is not None and self._eval_before(model_key, site):
            return f"`{model_key}` was put in eval mode before it"
        if function.trains:
            return None
        if not function.is_module_level and set(words(function.name)) & INFERENCE_WORDS:
            return f"`{function.name}` is an inference function"
        if self.function_only_called_for_inference(function):
            return f"`{function.name}` is only called for inference"
        return None

    def _eval_before(self, key: str, site: Site) -> bool:
        events = self.models.mode_events(key, site.function)
        before = [event for event in events if event[0] < site.order and event[2] in (".eval()", ".train()")]
        return bool(before) and before[-1][1] is Mode.EVAL

    def function_only_called_for_inference(self, function: Function) -> bool:
        key = id(function.node)
        if key in self._inference_memo:
            return self._inference_memo[key]
        self._inference_memo[key] = False
        callers = self.callgraph.callers(function)
        result = bool(callers) and all(
            self.grad_disabled(call.site) or self.inference_signal(call.site, None) is not None for call in callers
        )
        self._inference_memo[key] = result
        return result

    # -- training loops --------------------------------------------------------------

    def training_loops(self, function: Function) -> list[TrainingLoop]:
        """Loops of `function` that call backward and step an optimizer, outermost first."""
        found = []
        for loop in function.loops:
            steps = [call for call in loop.step_calls if self._is_optimizer_step(call)]
            if loop.backward_orders and steps:
                found.append(TrainingLoop(loop, loop.backward_orders, steps))
        return found

    def _is_optimizer_step(self, call: Call) -> bool:
        func = call.node.func
        if not isinstance(func, cst.Attribute):
            return False
        receiver = self.program.module.code_for_node(func.value)
        identifiers = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", receiver)
        receiver_words = {word for identifier in identifiers for word in words(identifier)}
        return not (receiver_words & _SCHEDULER_WORDS)
