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
  A forward whose value a backward differentiates is never inference, and neither is a
  function with an inference name whose result a same-file caller differentiates.
- Training loop: a loop whose body calls backward and steps an optimizer.
"""

from __future__ import annotations

from functools import cached_property

import re
from dataclasses import dataclass, field

import libcst as cst

from lintml.analysis.callgraph import CallGraph
from lintml.analysis.flow import ValueFlow
from lintml.analysis.models import Mode, Models
from lintml.analysis.program import Call, Function, Loop, Program, Site, chain_base, grad_mode_of, named_grad_off, words

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
        self.flow = ValueFlow(program)
        self._grad_memo: dict[int, bool] = {}
        self._inference_memo: dict[int, bool] = {}
        self._call_at_site = {id(call.site): call for call in program.calls.values()}

    # -- grad context ----------------------------------------------------------------

    def grad_disabled(self, site: Site) -> bool:
        if site.grad == "off":
            return True
        if site.grad == "on":
            return False
        function = site.function
        # the last `torch.set_grad_enabled(...)` statement before the site decides
        toggles = [mode for order, mode in function.grad_statements if order < site.order]
        if toggles:
            return toggles[-1] == "off"
        return self.function_grad_disabled(function)

    def grad_unknown(self, site: Site) -> bool:
        """Nothing at the site says whether grad is on, and its function runs from places
        lintml cannot see (it is used as a value: a callback, `torch.compile(fn)`)."""
        if site.grad is not None or self.grad_disabled(site):
            return False
        function: Function | None = site.function
        while function is not None and not function.is_module_level:
            if self.callgraph.escapes(function):
                return True
            function = function.parent
        return False

    def function_grad_disabled(self, function: Function) -> bool:
        """Every run of `function` has autograd off: decorated, nested in such a
        function, or only called from grad-disabled places of the file."""
        key = id(function.node)
        if key in self._grad_memo:
            return self._grad_memo[key]
        self._grad_memo[key] = False  # recursion: not proven
        result = False
        if not function.is_module_level:
            imports, scope = self.program.imports, function.parent.scope
            decorators = function.decorators
            if any(grad_mode_of(d, imports, scope) == "off" or named_grad_off(d, imports, scope) for d in decorators):
                result = True
            elif function.parent is not None and not function.parent.is_module_level and function.cls is None:
                result = self.function_grad_disabled(function.parent)
            if not result:
                callers = self.callgraph.callers(function)
                elsewhere = self.models.outside_callers(function)
                result = (
                    bool(callers or elsewhere)
                    and all(self.grad_disabled(call.site) for call in callers)
                    and all(site.grad_off or self.models.summaries.grad_disabled(caller) for caller, site in elsewhere)
                )
        self._grad_memo[key] = result
        return result

    # -- where forwards are inference ------------------------------------------------

    def is_model_code(self, function: Function) -> bool:
        """Inside an nn.Module's (or LightningModule's) own methods: not a call site."""
        return self.models.in_module_class(function)

    @cached_property
    def _in_test_file(self) -> bool:
        return bool(_TEST_FILE.search(self.program.filename.replace("\\", "/")))

    def is_test_function(self, function: Function) -> bool:
        """Test functions in test files are not inference code (clarification 4)."""
        if not self._in_test_file:
            return False
        current: Function | None = function
        while current is not None and not current.is_module_level:
            if current.name.startswith("test") or (current.cls and current.cls.name.startswith("Test")):
                return True
            current = current.parent
        return False

    def in_training_loop(self, site: Site) -> bool:
        """The innermost loop around `site` trains (a backward or an optimizer step in it;
        `env.step(action)` and `scheduler.step()` are not training)."""
        loop = site.loop
        return loop is not None and (
            bool(loop.backward_orders) or any(self._is_optimizer_step(call) for call in loop.step_calls)
        )

    def trains(self, function: Function) -> bool:
        """The function calls backward or steps an optimizer."""
        return bool(function.backward_orders) or any(self._is_optimizer_step(call) for call in function.step_calls)

    def eval_data_loop(self, site: Site) -> Loop | None:
        """An enclosing loop over a loader/dataset whose name says val/test/eval."""
        loop = site.loop
        while loop is not None:
            if loop.iter_words & EVAL_DATA_WORDS:
                return loop
            loop = loop.parent
        return None

    def over_eval_data(self, site: Site) -> bool:
        """A loop or a comprehension around `site` runs over val/test/eval data."""
        return self.eval_data_loop(site) is not None or bool(site.comprehension_words & EVAL_DATA_WORDS)

    def inference_signal(self, site: Site, model_key: str | None) -> str | None:
        """Why `site` is inference, in words for a message; None when it is not."""
        function = site.function
        if self.is_model_code(function) or self.is_test_function(function):
            return None
        if self.in_training_loop(site):
            return None
        if self.feeds_backward(site):
            return None
        if self.over_eval_data(site):
            return "it runs in a loop over evaluation data"
        if model_key is not None and self._eval_before(model_key, site):
            return f"`{model_key}` was put in eval mode before it"
        if self.trains(function):
            return None
        if (
            not function.is_module_level
            and set(words(function.name)) & INFERENCE_WORDS
            and not self.called_for_training(function)
        ):
            return f"`{function.name}` is an inference function"
        if self.function_only_called_for_inference(function):
            return f"`{function.name}` is only called for inference"
        return None

    def helper_forward(self, call: cst.Call, site: Site) -> str | None:
        """The model a helper call runs forward, when the helper is shared with training
        and so reports nothing itself (Amendment 20: the finding is at the call in the
        inference method)."""
        if self.is_model_code(site.function) or self.is_test_function(site.function):
            return None  # nothing there is reported: the helper is not looked into
        found = self.models.helper_forward(call, site.function)
        if found is None:
            return None
        key, helper = found
        if self.trains(helper) or set(words(helper.name)) & INFERENCE_WORDS or self.function_only_called_for_inference(helper):
            return None  # a training step, or an inference function reported on its own
        if self.function_grad_disabled(helper) or self.is_model_code(helper):
            return None
        return key

    def feeds_backward(self, site: Site) -> bool:
        """The call at `site` computes what a backward later differentiates
        (`loss = criterion(model(x), y); loss.backward()`): training, not inference."""
        call = self._call_at_site.get(id(site))
        return call is not None and self.flow.feeds_backward(call)

    def called_for_training(self, function: Function) -> bool:
        """A same-file caller differentiates what `function` returns (a `decode`
        helper called in a training loop)."""
        return any(self.feeds_backward(call.site) for call in self.callgraph.callers(function))

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
        # a caller in another file counts only where it runs without grad: its other
        # inference signals are not known here
        elsewhere = self.models.outside_callers(function)
        result = (
            bool(callers or elsewhere)
            and all(self._inference_call(call) for call in callers)
            and all(site.grad_off for _, site in elsewhere)
        )
        self._inference_memo[key] = result
        return result

    def _inference_call(self, call: Call) -> bool:
        """A call made from an inference place: grad off there, or a signal holds there,
        also the model passed being put in eval mode before the call."""
        if self.grad_disabled(call.site):
            return True
        function = call.site.function
        passed = [function.key(chain_base(arg.value)) for arg in call.node.args]
        keys = [None, *(key for key in passed if key is not None)]
        return any(self.inference_signal(call.site, key) is not None for key in keys)

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
        if type(func) is not cst.Attribute:
            return False
        receiver = self.program.module.code_for_node(func.value)
        identifiers = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", receiver)
        receiver_words = {word for identifier in identifiers for word in words(identifier)}
        return not (receiver_words & _SCHEDULER_WORDS)
