"""What the project knows about its classes, functions and values, from every module's
index: which classes are models and whether they may hold a mode-dependent layer, what
each function does to each parameter (through the functions it calls), what callers
anywhere in the project pass, and the kind of a value.

Each answer is computed once per run and remembered; a question that meets itself
(mutual recursion, an import cycle, a name rebound from itself) answers "unknown" or
"no effect" for the inner ask, so the work is bounded by the number of questions, never
exponential in the length of a chain. `work` counts the answers computed.
"""

from __future__ import annotations

from dataclasses import dataclass

from lintml.analysis import kinds
from lintml.analysis.kinds import Value
from lintml.project.index import CallSite, ClassFacts, FunctionFacts, ModuleFacts

PASSTHROUGH = kinds.PASSTHROUGH  # calls that return the module they are given
MODEL_FACTORIES = frozenset({"timm.create_model", "timm.models.create_model", "torch.hub.load", "torch.jit.load"})
TENSOR_FACTORIES = frozenset(
    {"torch.randn", "torch.rand", "torch.randint", "torch.zeros", "torch.ones", "torch.tensor", "torch.empty",
     "torch.full", "torch.arange", "torch.linspace", "torch.cat", "torch.stack", "torch.randn_like"}
)  # fmt: skip
_MAX_CALLERS = 64  # a function called from more places than this: its parameters are what they are
# A function that more modules than this may call is a library's helper, not a script's:
# its callers are not read (each question stays bounded), and its parameters are unknown.
MAX_CALLING_MODULES = 24
# stands for the callers that were not read



@dataclass(frozen=True)
class Effect:
    """What a function does to one of its parameters (or `self.<attr>`), through the
    functions it calls as well."""

    mode: str | None = None  # the last mode it sets: "eval", "train", "mode" (a variable)
    trained_after: bool = False  # a backward follows the last `.train()`
    forward: str | None = None  # "grad" if some forward runs with grad on, else "nograd"
    zeroes: bool = False
    steps: bool = False
    backward: bool = False


NO_EFFECT = Effect()


@dataclass(frozen=True)
class FunctionRef:
    module: str
    name: str  # "train", "Trainer.fit", "<module>"


# the callers of a function called from too many modules (see MAX_CALLING_MODULES)
UNREAD_CALLER = FunctionRef("<unread>", "<unread>")
UNREAD_SITE = CallSite(0, None, (), {}, False)


class Summaries:
    def __init__(self, modules: dict[str, ModuleFacts], resolve) -> None:
        """`resolve(importer, absolute)` -> (module, rest) | None, the layout's import
        resolution."""
        self.modules = modules
        self._resolve = resolve
        self.work = 0
        self._memo: dict[tuple, object] = {}
        self._asking: set[tuple] = set()
        self._callers: dict[FunctionRef, list[tuple[FunctionRef, CallSite]]] | None = None
        # what the check of one file asked for: ("module", m), ("callers", ref), ("resolve", ...)
        self.record: set | None = None
        # name -> the modules whose text mentions it (None: every module may)
        self.candidates = None
        self._unread: set[str] = set()  # names whose callers were too many to read
        self._read_for: dict[str, tuple[str, tuple[str, ...]]] = {}  # name -> (its module, modules read)
        # (module, name) -> whether the module's text may assign `name` at its top level
        self.assigns = None

    # -- plumbing --------------------------------------------------------------------

    def _ask(self, key: tuple, compute, cycle):
        if key in self._memo:
            return self._memo[key]
        if key in self._asking:
            return cycle
        self._asking.add(key)
        self.work += 1
        try:
            answer = compute()
        finally:
            self._asking.discard(key)
        self._memo[key] = answer
        return answer

    def function(self, ref: FunctionRef) -> FunctionFacts | None:
        if self.record is not None:
            self.record.add(("module", ref.module))
        facts = self.modules.get(ref.module)
        if facts is None:
            return None
        if ref.name == "<module>":
            return facts.top
        cls_name, _, method = ref.name.partition(".")
        if method:
            cls = facts.classes.get(cls_name)
            return cls.methods.get(method) if cls is not None else None
        return facts.functions.get(ref.name)

    def resolve(self, importer: str, absolute: str) -> tuple[str, str] | None:
        """(module, rest) of a project name; a class or def of `importer` itself too."""
        prefix = f"{importer}."
        if absolute.startswith(prefix) and importer in self.modules:
            return importer, absolute[len(prefix):]
        found = self._ask(("resolve", importer, absolute), lambda: self._resolve(importer, absolute), None)
        if self.record is not None:
            self.record.add(("resolve", importer, absolute))
            if found is not None:
                self.record.add(("module", found[0]))
        return found

    def class_named(self, importer: str, absolute: str) -> tuple[str, ClassFacts] | None:
        found = self.resolve(importer, absolute)
        if found is None:
            return None
        module, rest = found
        facts = self.modules.get(module)
        if facts is None or not rest or "." in rest:
            return None
        cls = facts.classes.get(rest)
        if cls is None and rest in facts.imports:  # a re-export the layout did not follow
            target = facts.imports[rest]
            if target != absolute:
                return self.class_named(module, target)
        return (module, cls) if cls is not None else None

    def function_named(self, importer: str, absolute: str) -> FunctionRef | None:
        """The project function a call of `absolute` runs: a def, a method
        (`Trainer.fit`), or a class's `__init__`."""
        found = self.resolve(importer, absolute)
        if found is None:
            return None
        module, rest = found
        facts = self.modules.get(module)
        if facts is None or not rest:
            return None
        if rest in facts.functions:
            return FunctionRef(module, rest)
        head, _, tail = rest.partition(".")
        cls = facts.classes.get(head)
        if cls is not None:
            method = tail or "__init__"
            if "." not in method and method in cls.methods:
                return FunctionRef(module, f"{head}.{method}")
        return None

    # -- classes ---------------------------------------------------------------------

    def is_module_class(self, module: str, name: str) -> bool:
        """Subclasses nn.Module or a known model base, through the project's classes."""
        return self._derives("module-class", module, name, lambda base: base in kinds.MODULE_BASES or kinds.is_library_model_class(base))

    def is_pipeline_class(self, module: str, name: str) -> bool:
        """Derives from a diffusers pipeline: its instances are pipelines (Amendment 16)."""
        return self._derives("pipeline-class", module, name, kinds.is_pipeline_class)

    def _derives(self, question: str, module: str, name: str, library_base) -> bool:
        """Some base of the class, or of the project's classes it derives from, is a
        library class `library_base` accepts (a cycle of bases: no)."""

        def compute() -> bool:
            for base in self.modules[module].classes[name].bases:
                if library_base(base):
                    return True
                found = self.class_named(module, base)
                if found is not None and self._derives(question, found[0], found[1].name, library_base):
                    return True
            return False

        return self._ask((question, module, name), compute, False)

    def mode_dependent(self, module: str, name: str) -> bool | None:
        """Whether instances may hold a layer whose behaviour depends on the mode
        (Amendment 17): True, False, or None when some layer cannot be seen."""
        return self._ask(("mode-dependent", module, name), lambda: self._mode_dependent(module, name), None)

    def _mode_dependent(self, module: str, name: str) -> bool | None:
        cls = self.modules[module].classes[name]
        if cls.uses_training_flag:
            return True
        unknown = cls.opaque_layers or cls.injected_modules
        for base in cls.bases:
            if base in ("torch.nn.Module", "torch.nn.modules.module.Module", "object"):
                continue
            if base in ("torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.ModuleDict"):
                continue  # their layers are the arguments, read below as calls
            found = self.class_named(module, base)
            if found is None:
                unknown = True  # a library base (PreTrainedModel, LightningModule): its layers are not visible
                continue
            answer = self.mode_dependent(found[0], found[1].name)
            if answer:
                return True
            unknown = unknown or answer is None
        seen_functions: set[FunctionRef] = set()
        pending = list(cls.layer_calls)
        while pending:
            callee, args = pending.pop()
            answer = self._layer_mode_dependent(module, callee, args, seen_functions, pending, name)
            if answer:
                return True
            unknown = unknown or answer is None
        return None if unknown else False

    def _layer_mode_dependent(self, module, callee: str, args: dict, seen, pending, cls: str) -> bool | None:
        if callee.startswith("self."):
            facts = self.modules.get(module)
            if facts is not None and callee[5:] in facts.classes[cls].methods:  # `self._make_layer(...)`: what that method builds
                ref = FunctionRef(module, f"{cls}.{callee[5:]}")
                if ref not in seen:
                    seen.add(ref)
                    function = self.function(ref)
                    pending.extend((call.callee, {}) for call in function.calls if call.callee)
            return False
        answer = kinds.torch_layer_mode_dependent(callee, args)
        if answer is not None:
            return answer
        if callee.startswith(("torch.", "math.", "numpy.", "functools.", "collections.", "typing.", "copy.", "einops.")) or "." not in callee and callee in _BUILTINS:
            return False
        found = self.class_named(module, callee)
        if found is not None:
            if self.is_module_class(found[0], found[1].name):
                return self.mode_dependent(found[0], found[1].name)
            return False
        ref = self.function_named(module, callee)
        if ref is not None:
            if ref not in seen:
                seen.add(ref)
                function = self.function(ref)
                if function is not None:
                    pending.extend((call.callee, {}) for call in function.calls if call.callee and not call.callee.startswith("self."))
            return False
        if "." not in callee or callee.split(".", 1)[0] in self.modules or self.resolve(module, callee) is not None:
            return False  # a builtin, or a project name that builds no layer
        return None  # another library's factory (torchvision, timm, transformers): may hold any

    # -- functions -------------------------------------------------------------------

    def effect(self, ref: FunctionRef, target: str) -> Effect:
        """What `ref` does to its parameter (or `self.<attr>`) `target`."""
        return self.effects(ref).get(target, NO_EFFECT)

    def effects(self, ref: FunctionRef) -> dict[str, Effect]:
        return self._ask(("effects", ref), lambda: self._effects(ref), {})

    def _effects(self, ref: FunctionRef) -> dict[str, Effect]:
        function = self.function(ref)
        if function is None:
            return {}
        events: dict[str, list[tuple[int, str]]] = {}
        for line, target, op in function.ops:
            events.setdefault(target, []).append((line, op))
        backward_lines = [line for line, _, op in function.ops if op == "backward"]
        for call in function.calls:
            callee = self.callee_of(ref, call)
            if callee is None or callee == ref:
                continue
            inner = self.effects(callee)
            if not inner:
                continue
            for target, parameter in self._argument_targets(function, call, callee):
                effect = inner.get(parameter)
                if effect is None:
                    continue
                for op in _ops_of(effect):
                    events.setdefault(target, []).append((call.line, op))
            for target, effect in inner.items():  # `self.<attr>` through `self.helper()`
                if target.startswith("self.") and call.callee and call.callee.startswith("self."):
                    for op in _ops_of(effect):
                        events.setdefault(target, []).append((call.line, op))
            if any(effect.backward for effect in inner.values()):
                backward_lines.append(call.line)
        found = {}
        for target, happened in events.items():
            happened.sort(key=lambda event: event[0])
            mode_events = [(line, op) for line, op in happened if op in ("eval", "train", "mode")]
            last = mode_events[-1] if mode_events else None
            forwards = [op for _, op in happened if op.startswith("forward")]
            found[target] = Effect(
                mode=last[1] if last else None,
                trained_after=bool(last and last[1] == "train" and any(line > last[0] for line in backward_lines)),
                forward=("grad" if "forward" in forwards else "nograd") if forwards else None,
                zeroes=any(op == "zero" for _, op in happened),
                steps=any(op == "step" for _, op in happened),
                backward=any(op == "backward" for _, op in happened),
            )
        return found

    def _argument_targets(self, function: FunctionFacts, call: CallSite, callee: FunctionRef):
        """(what the caller passes, as a target of the caller; the callee's parameter)."""
        inner = self.function(callee)
        if inner is None:
            return
        params = list(inner.params)
        if inner.self_name is not None:
            params = params[1:]
        for position, value in enumerate(call.args):
            if position < len(params):
                target = _target_of_ref(value, function)
                if target is not None:
                    yield target, params[position]
        for keyword, value in call.kwargs.items():
            if keyword in inner.params:
                target = _target_of_ref(value, function)
                if target is not None:
                    yield target, keyword

    def callee_of(self, caller: FunctionRef, call: CallSite) -> FunctionRef | None:
        callee = call.callee
        if callee is None:
            return None
        if callee.startswith("self."):
            cls_name, dot, _ = caller.name.partition(".")
            if not dot:
                return None
            facts = self.modules.get(caller.module)
            cls = facts.classes.get(cls_name) if facts else None
            method = callee[5:]
            if cls is not None and method in cls.methods:
                return FunctionRef(caller.module, f"{cls_name}.{method}")
            return None
        return self.function_named(caller.module, callee)

    def may_be_called_from_outside(self, ref: FunctionRef) -> bool:
        """Some module other than `ref`'s own may call it: its name appears in one. Cheap
        (no module is read), so a check asks it before asking for the callers."""
        if "." in ref.name and not ref.name.endswith(".__init__"):
            return False  # see `callers`: a method's calls from outside are not tied to it
        if self.candidates is None:
            return len(self.modules) > 1
        name = ref.name.split(".", 1)[0] if ref.name.endswith(".__init__") else ref.name
        if self.record is not None:
            self.record.add(("naming", name, ref.module))
        return any(module != ref.module for module in self.candidates(name, ref.module))

    def callers(self, ref: FunctionRef) -> list[tuple[FunctionRef, CallSite]]:
        """Every call of `ref` in the project (computed for all functions at once)."""
        if self._callers is None:
            self._callers = {}
        name = ref.name.rsplit(".", 1)[-1]
        if name == "__init__":
            name = ref.name.split(".", 1)[0]  # `Trainer(...)` calls `Trainer.__init__`
        method = "." in ref.name and not ref.name.endswith(".__init__")
        if method:
            # other modules call a method through an instance (`trainer.fit()`), which the
            # index cannot tie to its class: only its own module's `self.<method>()` calls
            name = f"{ref.module}:{ref.name}"
        if name not in self._callers:
            # only modules whose text names the function can call it: read those alone
            found = self._callers[name] = {}
            if method:
                modules = [ref.module]
            elif self.candidates is not None:
                modules = self.candidates(name, ref.module)
            else:
                modules = [m for m, _ in self.modules.items()]
            if len(modules) > MAX_CALLING_MODULES:
                # read only its own module's calls; the others are one unread caller
                self._unread.add(name)
                modules = [module for module in modules if module == ref.module]
            self._read_for[name] = (ref.module, tuple(modules))
            for module in modules:
                facts = self.modules.get(module)
                if facts is None:
                    continue
                for caller, function in _functions_of(module, facts):
                    for call in function.calls:
                        tail = call.callee.rsplit(".", 1)[-1] if call.callee else None
                        if tail != (ref.name.rsplit(".", 1)[-1] if method else name):
                            continue
                        callee = self.callee_of(caller, call)
                        if callee is not None and callee != caller:
                            found.setdefault(callee, []).append((caller, call))
        if self.record is not None:
            # the callers are what the modules that name it say: depend on those modules,
            # and on which modules name it (a new file may start calling it)
            defined_in, modules = self._read_for.get(name, (ref.module, ()))
            if not method:
                self.record.add(("naming", name, defined_in))
            for module in modules:
                self.record.add(("module", module))
        found = self._callers[name].get(ref, [])
        if name in self._unread:
            return [*found, (UNREAD_CALLER, UNREAD_SITE)]
        return found

    def passed(
        self, ref: FunctionRef, parameter: str, params: list[str] | None = None
    ) -> list[tuple[FunctionRef, CallSite, object]] | None:
        """What each project caller passes for `parameter` (a Ref each), or None when
        some caller's argument cannot be matched (`*args`). `params`: the function's
        parameters after `self`, when the asker knows them (its module is not read)."""
        if params is None:
            function = self.function(ref)
            if function is None or parameter not in function.params:
                return None
            params = list(function.params)
            if function.self_name is not None:
                params = params[1:]
        elif parameter not in params:
            return None
        found = []
        for caller, call in self.callers(ref)[:_MAX_CALLERS]:
            if caller is UNREAD_CALLER:
                return None  # too many modules may call it: what they pass is not known
            if parameter in call.kwargs:
                found.append((caller, call, call.kwargs[parameter]))
                continue
            index = params.index(parameter) if parameter in params else -1
            if 0 <= index < len(call.args):
                if any(value is None for value in call.args[: index + 1]):
                    return None  # a `*args` before it
                found.append((caller, call, call.args[index]))
            # not passed: its default
        return found

    def grad_disabled(self, ref: FunctionRef) -> bool:
        """Every run of `ref` has autograd off: decorated with `torch.no_grad()` (or the
        like), or every project caller calls it where grad is off."""
        return self._ask(("grad-off", ref), lambda: self._grad_disabled(ref), False)

    def _grad_disabled(self, ref: FunctionRef) -> bool:
        function = self.function(ref)
        if function is None:
            return False
        if function.grad_off:
            return True
        callers = self.callers(ref)
        return bool(callers) and all(site.grad_off or self.grad_disabled(caller) for caller, site in callers)

    # -- values ----------------------------------------------------------------------

    def parameter_value(
        self, ref: FunctionRef, parameter: str, exclude_module: str | None = None, params: tuple | None = None
    ) -> Value:
        """What every project caller passes (callers in `exclude_module` left out: the
        checked file answers for its own)."""
        return self._ask(
            ("param", ref, parameter, exclude_module),
            lambda: self._parameter_value(ref, parameter, exclude_module, params),
            kinds.UNKNOWN,
        )

    def _parameter_value(self, ref: FunctionRef, parameter: str, exclude_module: str | None, params) -> Value:
        values = self.passed_values(ref, parameter, exclude_module, params)
        return kinds.join(values) if values else kinds.UNKNOWN

    def passed_values(
        self, ref: FunctionRef, parameter: str, exclude_module: str | None = None, params: tuple | None = None
    ) -> list[Value] | None:
        """The value each project caller (outside `exclude_module`) passes, at its call;
        [UNKNOWN] when some caller's argument cannot be matched."""
        if exclude_module == ref.module and not self.may_be_called_from_outside(ref):
            return []
        passed = self.passed(ref, parameter, list(params) if params is not None else None)
        if passed is None:
            return [kinds.UNKNOWN] if self.callers(ref) else []
        return [self._at_call(caller, value, site.line) for caller, site, value in passed if caller.module != exclude_module]

    def _at_call(self, caller: FunctionRef, ref, line: int) -> Value:
        """The value an argument has at the call: a model in the mode the caller left it."""
        value = self.value(caller, ref)
        function = self.function(caller)
        target = _target_of_ref(ref, function) if function is not None else None
        if value.only(kinds.MODEL) and target is not None and (ref[0] != "chain" or not ref[2]):
            value = _with_mode(value, self.mode_at(caller, target, line))
        return value

    def mode_at(self, where: FunctionRef, target: str, line: int | None) -> str | None:
        """The mode `where` leaves `target` in before `line` (None: at its end): "eval",
        "default" (training mode), "unknown" (set from a variable), or None when nothing
        there sets it."""
        function = self.function(where)
        if function is None:
            return None
        events = [(at, op) for at, name, op in function.ops if name == target and op in ("eval", "train", "mode")]
        for call in function.calls:
            if line is not None and call.line >= line:
                continue
            callee = self.callee_of(where, call)
            if callee is None or callee == where:
                continue
            for passed, parameter in self._argument_targets(function, call, callee):
                if passed == target:
                    effect = self.effect(callee, parameter)
                    if effect.mode is not None:
                        events.append((call.line, "train" if effect.trained_after else effect.mode))
        events = [event for event in events if line is None or event[0] < line]
        if not events:
            return None
        return {"eval": "eval", "train": "default"}.get(max(events)[1], "unknown")

    def value(self, where: FunctionRef, ref) -> Value:
        return self._ask(("value", where, ref), lambda: self._value(where, ref), kinds.UNKNOWN)

    def _value(self, where: FunctionRef, ref) -> Value:
        if ref is None:
            return kinds.UNKNOWN
        tag = ref[0]
        function = self.function(where)
        if tag == "scalar" or tag == "dict":
            return kinds.of(kinds.NON_TENSOR)
        if tag == "param":
            return self.parameter_value(where, ref[1])
        if tag == "either":
            return kinds.join(self.value(where, inner) for inner in ref[1])
        if tag == "self":
            return self.attribute_value(where, ref[1])
        if tag == "name":
            return self._name_value(where, function, ref[1])
        if tag == "chain":
            return _with_chain(self.value(where, ref[1]), ref[2])
        if tag == "pretrained":
            return self._pretrained_value(where, ref)
        if tag == "item":
            return self._item_value(where, ref[1], ref[2])
        if tag == "call":
            return self._call_value(where, ref)
        return kinds.UNKNOWN

    def _name_value(self, where: FunctionRef, function: FunctionFacts | None, name: str) -> Value:
        if function is not None and name in function.bindings and "." not in name:
            return kinds.join(self.value(where, bound) for bound in function.bindings[name])
        module = self.modules.get(where.module)
        if module is not None and where.name != "<module>" and name in module.bindings:
            top = FunctionRef(where.module, "<module>")
            return kinds.join(self.value(top, bound) for bound in module.bindings[name])
        if module is not None and "." not in name and name in module.imports:
            return self.module_binding(where.module, module.imports[name])  # `from models import model`
        return kinds.UNKNOWN

    def module_binding(self, importer: str, absolute: str) -> Value:
        """What a module-level name of another module holds (`from models import model`),
        its mode as that module's own top-level code leaves it."""
        found = self.resolve(importer, absolute)
        if found is None or not found[1] or "." in found[1]:
            return kinds.UNKNOWN
        module, name = found
        if self.assigns is not None and not self.assigns(module, name):
            return kinds.UNKNOWN  # the module's text binds no such name at its top level
        facts = self.modules.get(module)
        if facts is None or name not in facts.bindings:
            return kinds.UNKNOWN
        top = FunctionRef(module, "<module>")
        value = kinds.join(self.value(top, bound) for bound in facts.bindings[name])
        if value.only(kinds.MODEL):
            value = _with_mode(value, self.mode_at(top, name, None))
        if self.record is not None:
            self.record.add(("module", module))
        return value

    def attribute_value(self, where: FunctionRef, attr: str) -> Value:
        """`self.<attr>`: what the class's methods bind to it."""
        cls_name, dot, _ = where.name.partition(".")
        facts = self.modules.get(where.module)
        cls = facts.classes.get(cls_name) if (facts and dot) else None
        if cls is None:
            return kinds.UNKNOWN
        values = []
        for method_name, method in cls.methods.items():
            for bound in method.bindings.get(f"self.{attr}", []):
                values.append(self.value(FunctionRef(where.module, f"{cls_name}.{method_name}"), bound))
        return kinds.join(values) if values else kinds.UNKNOWN

    def _pretrained_value(self, where: FunctionRef, ref) -> Value:
        _, owner, chain, method = ref
        if owner is None:
            return kinds.UNKNOWN
        found = self.class_named(where.module, owner)
        if found is not None:
            return self._instance(*found, "eval" if method != "from_config" else "default", chain)
        if kinds.is_pipeline_class(owner):
            return kinds.of(kinds.PIPELINE)
        if kinds.is_library_model_class(owner):
            return _with_chain(kinds.of(kinds.MODEL, mode="eval" if method != "from_config" else "default"), chain)
        if owner.split(".", 1)[0] in kinds.MODEL_LIBRARIES:
            return kinds.of(kinds.NON_TENSOR)  # tokenizers, processors, configs
        return kinds.UNKNOWN

    def _instance(self, module: str, cls: ClassFacts, mode: str, chain) -> Value:
        """An instance of a project class: a pipeline, a model (in `mode`, then as the
        chain of `.eval()`/`.train()` leaves it), or a plain object."""
        if self.is_pipeline_class(module, cls.name):
            return kinds.of(kinds.PIPELINE)
        if not self.is_module_class(module, cls.name):
            return kinds.of(kinds.NON_TENSOR)
        value = kinds.of(kinds.MODEL, cls=f"{module}:{cls.name}", mode=mode, mode_dependent=self.mode_dependent(module, cls.name))
        return _with_chain(value, chain)

    def _item_value(self, where: FunctionRef, base, key) -> Value:
        """`base[key]` / `base.key` of a dict literal, an nn.ModuleDict, a tuple."""
        for container in self._containers(where, base, 0):
            if container[0] == "dict":
                values = [v for k, v in container[1] if key is None or k == key]
                return kinds.join(self.value(where, v) for v in values) if values else kinds.UNKNOWN
            if container[0] == "tuple" and isinstance(key, int) and key < len(container[1]):
                return self.value(where, container[1][key])
        return kinds.UNKNOWN

    def _containers(self, where: FunctionRef, ref, depth: int):
        if ref is None or depth > 3:
            return
        if ref[0] in ("dict", "tuple"):
            yield ref
        elif ref[0] == "name":
            function = self.function(where)
            if function is not None:
                for bound in function.bindings.get(ref[1], []):
                    yield from self._containers(where, bound, depth + 1)
        elif ref[0] == "self":
            cls_name, _, _ = where.name.partition(".")
            facts = self.modules.get(where.module)
            cls = facts.classes.get(cls_name) if facts else None
            if cls is not None:
                for method_name, method in cls.methods.items():
                    for bound in method.bindings.get(f"self.{ref[1]}", []):
                        yield from self._containers(FunctionRef(where.module, f"{cls_name}.{method_name}"), bound, depth + 1)

    def _call_value(self, where: FunctionRef, ref) -> Value:
        _, callee, chain, args = ref
        if callee is None:
            return kinds.UNKNOWN
        if callee.startswith("self."):
            target = self.callee_of(where, CallSite(0, callee, (), {}, False))
            return self.returned(target) if target is not None else kinds.UNKNOWN
        if callee in PASSTHROUGH and args:
            return _with_chain(self.value(where, args[0]), chain)
        found = self.class_named(where.module, callee)
        if found is not None:
            return self._instance(*found, "default", chain)
        function = self.function_named(where.module, callee)
        if function is not None:
            return _with_chain(self.returned(function), chain)
        if callee in MODEL_FACTORIES or (callee.startswith("torchvision.models.") and callee.rsplit(".", 1)[-1][:1].islower()):
            return _with_chain(kinds.of(kinds.MODEL, mode="default" if "timm" in callee or "torchvision" in callee else None), chain)
        if callee in TENSOR_FACTORIES:
            return kinds.of(kinds.TENSOR)
        kind = kinds.library_call_kind(callee)
        if kind == kinds.MODEL:
            return _with_chain(kinds.of(kinds.MODEL, mode="default"), chain)
        if kind is not None:
            return kinds.of(kind)
        if callee.startswith(kinds.TORCH_NN_PREFIXES) and callee.rsplit(".", 1)[-1][:1].isupper():
            tail = callee.rsplit(".", 1)[-1]
            if tail.endswith("Loss"):
                return kinds.of(kinds.NON_TENSOR)
            containers = ("Sequential", "ModuleList", "ModuleDict")  # their items are not kept here
            dependent = None if tail in containers else kinds.torch_layer_mode_dependent(callee, {})
            return _with_chain(kinds.of(kinds.MODEL, mode="default", mode_dependent=dependent), chain)
        return kinds.UNKNOWN

    def returned(self, ref: FunctionRef) -> Value:
        return self._ask(("returns", ref), lambda: self._returned(ref), kinds.UNKNOWN)

    def _returned(self, ref: FunctionRef) -> Value:
        function = self.function(ref)
        if function is None or not function.returns:
            return kinds.UNKNOWN
        values = []
        for returned in function.returns:
            value = self.value(ref, returned)
            target = _target_of_ref(returned, function)
            if value.only(kinds.MODEL) and target is not None:
                value = _with_mode(value, self.mode_at(ref, target, None))  # `m.eval(); return m`
            values.append(value)
        return kinds.join(values)


_BUILTINS = frozenset({"super", "range", "len", "int", "float", "str", "list", "tuple", "dict", "set", "print",
                       "isinstance", "getattr", "hasattr", "zip", "enumerate", "max", "min", "sum", "round",
                       "sorted", "reversed", "map", "filter", "abs", "any", "all", "bool", "type", "iter", "next"})  # fmt: skip


def _ops_of(effect: Effect):
    if effect.forward == "grad":
        yield "forward"
    elif effect.forward == "nograd":
        yield "forward-nograd"
    if effect.backward:
        yield "backward"
    if effect.zeroes:
        yield "zero"
    if effect.steps:
        yield "step"
    if effect.mode is not None:
        yield effect.mode
        if effect.trained_after:
            yield "backward"


def _target_of_ref(value, function: FunctionFacts) -> str | None:
    """The caller-side target an argument names: a parameter, a name, `self.<attr>`."""
    while value is not None and value[0] == "chain":
        value = value[1]
    if value is None:
        return None
    if value[0] in ("param", "name") and "." not in value[1]:
        return value[1]
    if value[0] == "self":
        return f"self.{value[1]}"
    return None


def _with_mode(value: Value, mode: str | None) -> Value:
    """`value` as `mode` leaves it (None: unchanged; "unknown": mode not known)."""
    if mode is None:
        return value
    return Value(value.kinds, value.cls, None if mode == "unknown" else mode, value.mode_dependent)


def _with_chain(value: Value, chain) -> Value:
    if not chain or not value.only(kinds.MODEL):
        return value
    last = chain[-1] if chain[-1] in ("eval", "train") else None
    if last is None:
        return value
    return Value(value.kinds, value.cls, "eval" if last == "eval" else "default", value.mode_dependent)


def _functions_of(module: str, facts: ModuleFacts):
    if facts.top is not None:
        yield FunctionRef(module, "<module>"), facts.top
    for name, function in facts.functions.items():
        yield FunctionRef(module, name), function
    for cls_name, cls in facts.classes.items():
        for name, method in cls.methods.items():
            yield FunctionRef(module, f"{cls_name}.{name}"), method
