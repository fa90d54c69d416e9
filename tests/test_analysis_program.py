"""The program facts: functions, loops, sites, bindings and calls, in source order."""

import libcst as cst
import pytest

from analysis_helpers import analyse
from lintml.analysis.program import chain_base, words


# -- words -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("val_loader", ["val", "loader"]),
        ("validationStep", ["validation", "step"]),
        ("run_evalLoop2", ["run", "eval", "loop", "2"]),
        ("HTTPServer", ["http", "server"]),
        ("latest", ["latest"]),
    ],
)
def test_words_split_snake_and_camel_case(identifier, expected):
    assert words(identifier) == expected


# -- functions and classes -------------------------------------------------------------


def test_functions_know_their_class_parent_and_parameters():
    program = analyse(
        """
        import torch.nn as nn

        class Net(nn.Module):
            def forward(self, x, *, scale: float = 1.0):
                def inner(y):
                    return y
                return inner(x)

        async def serve(model: nn.Module, /, request):
            return model(request)
        """
    )
    forward = program.function("Net.forward")
    assert forward.cls is not None and forward.cls.name == "Net"
    assert forward.params == ["self", "x", "scale"]
    assert forward.self_name == "self"
    assert program.program.classes["Net"][0].methods["forward"] is forward
    inner = program.function("inner")
    assert inner.parent is forward
    assert inner.cls is None  # a function nested in a method is not a method
    assert inner.self_name is None
    serve = program.function("serve")
    assert serve.is_async
    assert serve.params == ["model", "request"]
    assert program.code(serve.annotations["model"]) == "nn.Module"
    assert serve.parent is program.function("<module>")
    assert program.function().is_module_level


def test_calls_and_bindings_belong_to_the_innermost_function():
    program = analyse(
        """
        x = load()
        def f():
            y = run()
            def g():
                z = go()
        """
    )
    assert program.site("load()").function is program.function()
    assert program.site("run()").function is program.function("f")
    assert program.site("go()").function is program.function("g")
    assert set(program.function().bindings) == {"x"}
    assert set(program.function("f").bindings) == {"y"}
    assert set(program.function("g").bindings) == {"z"}


def test_a_function_ends_after_its_last_node():
    program = analyse(
        """
        def f():
            a()
            b()
        c()
        """
    )
    f = program.function("f")
    assert f.node is not None
    assert program.site("a()").order < program.site("b()").order <= f.end < program.site("c()").order
    assert program.function().end >= program.site("c()").order


# -- loops -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loop", "expected"),
    [
        ("for b in val_loader:", {"val", "loader"}),
        ("for b in self.val_loader:", {"val", "loader"}),
        ("for i, b in enumerate(testLoader):", {"enumerate", "test", "loader"}),
        ("for b in loaders['valid']:", {"loaders", "valid"}),
        ("while step < max_steps:", {"step", "max", "steps"}),
    ],
)
def test_loop_iterable_words(loop, expected):
    program = analyse(
        f"""
        class Trainer:
            def run(self, val_loader, testLoader, loaders, step, max_steps):
                {loop}
                    pass
        """
    )
    assert program.loop("Trainer.run").iter_words == expected


def test_nested_loops_know_their_parent_and_extent():
    program = analyse(
        """
        for epoch in range(3):
            for batch in loader:
                step(batch)
            log(epoch)
        after()
        """
    )
    outer, inner = program.function().loops
    assert inner.parent is outer and outer.parent is None
    assert list(inner.outer_loops) == [inner, outer]
    assert program.site("step(batch)").loop is inner
    assert program.site("log(epoch)").loop is outer
    assert program.site("after()").loop is None
    assert inner.encloses(program.site("step(batch)").order)
    assert not inner.encloses(program.site("log(epoch)").order)
    assert outer.encloses(program.site("log(epoch)").order)
    assert not outer.encloses(program.site("after()").order)


def test_the_iterable_and_else_clause_are_outside_the_loop():
    program = analyse(
        """
        for batch in make_loader():
            use(batch)
        else:
            done()
        """
    )
    loop = program.loop()
    assert program.site("make_loader()").loop is None
    assert program.site("use(batch)").loop is loop
    assert program.site("done()").loop is None


def test_a_nested_function_does_not_inherit_the_loop_around_its_def():
    program = analyse(
        """
        for batch in loader:
            def callback():
                fire()
        """
    )
    assert program.site("fire()").loop is None
    assert program.function("callback").loops == []


def test_backward_and_step_are_recorded_on_every_enclosing_loop():
    program = analyse(
        """
        def train(model, loader, opt, scheduler):
            for epoch in range(3):
                for batch in loader:
                    loss = model(batch)
                    loss.backward()
                    opt.step()
                scheduler.step()
        """
    )
    train = program.function("train")
    outer, inner = train.loops
    backward = program.site("loss.backward()").order
    assert inner.backward_orders == [backward]
    assert outer.backward_orders == [backward]
    assert train.backward_orders == [backward]
    assert [program.code(call.node) for call in inner.step_calls] == ["opt.step()"]
    assert [program.code(call.node) for call in outer.step_calls] == ["opt.step()", "scheduler.step()"]
    assert train.trains


def test_autograd_grad_and_manual_backward_count_as_backward():
    program = analyse(
        """
        import torch
        def penalty(out, x):
            return torch.autograd.grad(out, x)
        def training_step(self, batch):
            self.manual_backward(batch)
        def inference(model, x):
            return model(x)
        """
    )
    assert program.function("penalty").trains
    assert program.function("training_step").trains
    assert not program.function("inference").trains


# -- lexical grad mode -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "grad"),
    [
        ("with torch.no_grad():", "off"),
        ("with torch.inference_mode():", "off"),
        ("with torch.inference_mode(True):", "off"),
        ("with torch.inference_mode(False):", None),
        ("with torch.set_grad_enabled(False):", "off"),
        ("with torch.set_grad_enabled(True):", "on"),
        ("with torch.set_grad_enabled(training):", None),  # depends on a value
        ("with torch.enable_grad():", "on"),
        ("with torch.autograd.no_grad():", "off"),
        ("with T.no_grad():", "off"),
        ("with ng():", "off"),
        ("with open(path) as f, torch.no_grad():", "off"),
        ("with torch.autocast('cuda'):", None),
        ("with no_grad():", None),  # not torch's: `no_grad` is defined in the file below
    ],
)
def test_lexical_grad_mode_of_a_site(header, grad):
    program = analyse(
        f"""
        import torch
        import torch as T
        from torch import no_grad as ng

        def run(model, x, path, training):
            {header}
                model(x)

        def no_grad():
            pass
        """
    )
    assert program.site("model(x)").grad == grad


def test_inner_grad_mode_wins_and_outer_mode_returns_after_the_block():
    program = analyse(
        """
        import torch
        with torch.no_grad():
            a()
            with torch.enable_grad():
                b()
                with torch.inference_mode(False):
                    c()  # leaves the mode around it alone
            d()
        e()
        """
    )
    assert program.site("a()").grad == "off"
    assert program.site("b()").grad == "on"
    assert program.site("c()").grad == "on"
    assert program.site("d()").grad == "off"
    assert program.site("e()").grad is None


def test_grad_mode_does_not_leak_into_a_function_defined_in_the_block():
    program = analyse(
        """
        import torch
        with torch.no_grad():
            def later(model, x):
                return model(x)
        """
    )
    assert program.site("model(x)").grad is None


@pytest.mark.parametrize(
    "header",
    ["with torch.no_grad:", "with torch.inference_mode:", "with torch.enable_grad:", "with torch.set_grad_enabled:"],
)
def test_broken_grad_mode_with_is_flagged(header):
    program = analyse(
        f"""
        import torch
        {header}
            inside()
        outside()
        """
    )
    assert program.site("inside()").broken_grad_with
    assert not program.site("outside()").broken_grad_with


def test_called_grad_mode_with_is_not_broken():
    program = analyse(
        """
        import torch
        with torch.no_grad():
            inside()
        class no_grad_like:
            pass
        with no_grad_like:
            other()
        """
    )
    assert not program.site("inside()").broken_grad_with
    assert not program.site("other()").broken_grad_with


def test_set_grad_enabled_false_as_a_statement():
    program = analyse(
        """
        import torch
        def off(model, x):
            model(x)
            torch.set_grad_enabled(False)
            model(x + 1)

        def on(model, x):
            torch.set_grad_enabled(True)
            model(x)

        def managed(model, x):
            with torch.set_grad_enabled(False):
                pass
            model(x)
        """
    )
    off = program.function("off")
    assert off.grad_off_statement_order == program.site("torch.set_grad_enabled(False)").order
    assert off.grad_off_statement_order > program.site("model(x)").order
    assert off.grad_off_statement_order < program.site("model(x + 1)").order
    assert program.function("on").grad_off_statement_order is None
    assert program.function("managed").grad_off_statement_order is None
    assert off.grad_statements == [(off.grad_off_statement_order, "off")]
    assert [mode for _, mode in program.function("on").grad_statements] == ["on"]
    assert program.function("managed").grad_statements == []


def test_grad_mode_calls_inside_expressions_are_not_statements():
    program = analyse(
        """
        import torch
        def f(flag):
            torch.no_grad()
            ctx = torch.set_grad_enabled(False)
            log(torch.set_grad_enabled(False))
        """
    )
    f = program.function("f")
    assert f.grad_off_statement_order is None
    assert f.grad_statements == []


# -- bindings --------------------------------------------------------------------------


def test_the_value_is_evaluated_before_the_binding():
    program = analyse(
        """
        def f(model, x):
            x = model(x)
        """
    )
    f = program.function("f")
    (binding,) = f.bindings["x"]
    assert program.code(binding.value) == "model(x)"
    assert program.site("model(x)").order < binding.order
    assert binding.statement is not None


def test_bindings_are_kept_in_source_order():
    program = analyse(
        """
        model = build()
        model = model.to(device)
        model: Net = wrap(model)
        """
    )
    bindings = program.function().bindings["model"]
    assert [program.code(b.value) for b in bindings] == ["build()", "model.to(device)", "wrap(model)"]
    assert [b.order for b in bindings] == sorted(b.order for b in bindings)


def test_parameters_are_bound_without_a_value():
    program = analyse(
        """
        def f(model, x):
            pass
        """
    )
    assert program.function("f").bindings == {"model": [], "x": []}


def test_tuple_bindings_record_their_position():
    program = analyse(
        """
        model, optimizer = accelerator.prepare(model, optimizer)
        [a, (b, c)] = pair
        first, *rest = items
        """
    )
    bindings = program.function().bindings
    assert [(b.tuple_index, program.code(b.value)) for b in bindings["model"]] == [
        (0, "accelerator.prepare(model, optimizer)")
    ]
    assert bindings["optimizer"][0].tuple_index == 1
    assert bindings["a"][0].tuple_index == 0
    assert bindings["c"][0].tuple_index == 1  # its index in the inner tuple
    assert bindings["first"][0].tuple_index == 0
    assert bindings["rest"][0].value is None  # a starred target: no single element


def test_for_and_with_targets_are_bound_without_a_value():
    program = analyse(
        """
        for batch in loader:
            pass
        with open(path) as handle:
            pass
        """
    )
    bindings = program.function().bindings
    assert bindings["batch"][0].value is None
    assert bindings["handle"][0].value is None


def test_chained_assignment_binds_every_target():
    program = analyse("a = b = make()\n")
    bindings = program.function().bindings
    assert program.code(bindings["a"][0].value) == "make()"
    assert program.code(bindings["b"][0].value) == "make()"


def test_self_attributes_are_bound_in_methods_only():
    program = analyse(
        """
        class Runner:
            def __init__(self, model):
                self.model = model
                self.model.device = "cpu"  # not `self.model` itself

            @staticmethod
            def build(self):
                self.model = 1

            @classmethod
            def create(cls):
                cls.model = 2

        def outside(self):
            self.model = 3
        """
    )
    assert [program.code(b.value) for b in program.function("Runner.__init__").bindings["self.model"]] == ["model"]
    assert "self.model" not in program.function("Runner.build").bindings
    assert "self.model" not in program.function("Runner.create").bindings
    assert "self.model" not in program.function("outside").bindings


def test_self_is_whatever_the_first_parameter_is_called():
    program = analyse(
        """
        class Runner:
            def run(me, x):
                me.model = load()
                return me.model(x)
        """
    )
    run = program.function("Runner.run")
    assert run.self_name == "me"
    assert "self.model" in run.bindings


# -- calls -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "receiver", "method"),
    [
        ("model.eval()", "model", "eval"),
        ("model.to(dev).eval()", "model", "eval"),
        ("model.cuda().half().train()", "model", "train"),
        ("model.float().parameters()", "model", "parameters"),
        ("self.model.eval()", "self.model", "eval"),
        ("self.model.to(dev).eval()", "self.model", "eval"),
        ("model.encoder.eval()", None, "eval"),  # a submodule is not the model's key
        ("get_model().eval()", None, "eval"),
        ("model.state_dict()", "model", "state_dict"),
    ],
)
def test_call_receiver_through_module_chains(text, receiver, method):
    program = analyse(
        f"""
        class Runner:
            def run(self, model, dev):
                {text}
        """
    )
    call = program.call(text)
    assert call.receiver_key == receiver
    assert call.method == method


def test_self_keys_are_not_made_in_static_methods():
    program = analyse(
        """
        class Runner:
            @staticmethod
            def run(self, x):
                self.model.eval()
        """
    )
    assert program.call("self.model.eval()").receiver_key is None


def test_callee_of_plain_and_self_calls():
    program = analyse(
        """
        class Runner:
            def run(self, model, x):
                evaluate(model)
                self.evaluate(model)
                model.evaluate(x)

            @classmethod
            def make(cls):
                return cls.build()
        """
    )
    plain = program.call("evaluate(model)")
    assert (plain.callee, plain.via_self, plain.method) == ("evaluate", False, None)
    method = program.call("self.evaluate(model)")
    assert (method.callee, method.via_self) == ("evaluate", True)
    other = program.call("model.evaluate(x)")
    assert (other.callee, other.via_self, other.method) == (None, False, "evaluate")
    classmethod_call = program.call("cls.build()")
    assert (classmethod_call.callee, classmethod_call.via_self) == ("build", True)


def test_a_call_comes_after_its_arguments():
    program = analyse("outer(inner(x))\n")
    assert program.site("inner(x)").order < program.site("outer(inner(x))").order


def test_enclosing_statements_outermost_first():
    program = analyse(
        """
        for batch in loader:
            if batch:
                step(batch)
        """
    )
    statements = program.site("step(batch)").statements
    assert [type(statement).__name__ for statement in statements] == ["For", "If", "SimpleStatementLine"]


def test_chain_base_strips_module_returning_methods_only():
    assert cst.Module([]).code_for_node(chain_base(cst.parse_expression("m.to(d).cuda().half()"))) == "m"
    assert cst.Module([]).code_for_node(chain_base(cst.parse_expression("m.generate(x).cpu()"))) == "m.generate(x)"


def test_calls_are_found_by_line():
    program = analyse(
        """
        import torch
        out = model(x).argmax(-1)
        """
    )
    # line 1 is the blank line the dedented snippet starts with
    assert [program.code(call.node) for call in program.calls_on_line(3)] == ["model(x)", "model(x).argmax(-1)"]
    assert program.call_on_line(3, "model(x)") is program.call("model(x)")
