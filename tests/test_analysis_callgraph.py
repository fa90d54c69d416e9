"""Same-file callers, and what each caller passes for a parameter."""

from analysis_helpers import analyse


def _callers(program, function):
    return sorted(program.code(call.node) for call in program.callgraph.callers(program.function(function)))


def _argument(program, call_text, function, parameter):
    call = program.call(call_text)
    expression = program.callgraph.argument(call, program.function(function), parameter)
    return None if expression is None else program.code(expression)


# -- who calls a function --------------------------------------------------------------


def test_callers_of_a_module_level_function():
    program = analyse(
        """
        def evaluate(model, loader):
            pass

        def main():
            evaluate(model, val_loader)

        evaluate(model, test_loader)
        other.evaluate(model)  # a method of something else
        """
    )
    assert _callers(program, "evaluate") == ["evaluate(model, test_loader)", "evaluate(model, val_loader)"]
    assert _callers(program, "main") == []


def test_callers_of_a_method_through_self():
    program = analyse(
        """
        class Predictor:
            def predict(self, x):
                return self.run(x)

            def run(self, x):
                pass

        class Other:
            def go(self, x):
                return self.run(x)  # Other has no `run`: not Predictor's

        def run(x):
            pass
        """
    )
    assert _callers(program, "Predictor.run") == ["self.run(x)"]
    assert program.callgraph.resolve(program.call("self.run(x)", 1)) is None
    assert _callers(program, "run") == []  # `self.run` is never the module-level `run`


def test_callers_of_init_through_the_class():
    program = analyse(
        """
        class Predictor:
            def __init__(self, model, device="cpu"):
                self.model = model

        def main(model):
            predictor = Predictor(model)
        """
    )
    assert _callers(program, "Predictor.__init__") == ["Predictor(model)"]


def test_a_class_without_init_has_no_callee():
    program = analyse(
        """
        class Config:
            pass

        Config()
        """
    )
    assert program.callgraph.resolve(program.call("Config()")) is None


def test_a_nested_function_is_called_from_its_parent():
    program = analyse(
        """
        def main(model):
            def step(x):
                return model(x)
            step(1)

        def step(x):
            pass
        """
    )
    (nested, module_level) = sorted(
        (f for f in program.program.all_functions() if f.name == "step"), key=lambda f: f.parent.is_module_level
    )
    assert [program.code(c.node) for c in program.callgraph.callers(nested)] == ["step(1)"]
    assert program.callgraph.callers(module_level) == []


def test_a_local_binding_shadows_the_function():
    program = analyse(
        """
        def helper(model, x):
            pass

        def uses_def(model):
            helper(model, 1)

        def shadows(model, make):
            helper = make()
            helper(model, 2)

        def parameter_shadows(model, helper):
            helper(model, 3)
        """
    )
    assert _callers(program, "helper") == ["helper(model, 1)"]


def test_an_imported_name_is_not_a_same_file_function():
    program = analyse(
        """
        from utils import evaluate

        def run(model):
            evaluate(model)
        """
    )
    assert program.callgraph.resolve(program.call("evaluate(model)")) is None


def test_recursion_is_a_caller_of_itself():
    program = analyse(
        """
        def walk(node):
            walk(node.child)
        """
    )
    assert _callers(program, "walk") == ["walk(node.child)"]


# -- argument mapping ------------------------------------------------------------------


SOURCE = """
def evaluate(model, loader, limit=None):
    pass

def main(m, dl):
    evaluate(m, dl)
    evaluate(loader=dl, model=m)
    evaluate(m, loader=dl)
    evaluate(*args)
    evaluate(m, *rest)
    evaluate(**kwargs)
    evaluate(m)
"""


def test_arguments_by_position():
    program = analyse(SOURCE)
    assert _argument(program, "evaluate(m, dl)", "evaluate", "model") == "m"
    assert _argument(program, "evaluate(m, dl)", "evaluate", "loader") == "dl"


def test_arguments_by_keyword():
    program = analyse(SOURCE)
    assert _argument(program, "evaluate(loader=dl, model=m)", "evaluate", "model") == "m"
    assert _argument(program, "evaluate(loader=dl, model=m)", "evaluate", "loader") == "dl"
    assert _argument(program, "evaluate(m, loader=dl)", "evaluate", "model") == "m"
    assert _argument(program, "evaluate(m, loader=dl)", "evaluate", "loader") == "dl"


def test_a_parameter_not_passed_is_unknown():
    program = analyse(SOURCE)
    assert _argument(program, "evaluate(m)", "evaluate", "loader") is None
    assert _argument(program, "evaluate(m, dl)", "evaluate", "limit") is None
    assert _argument(program, "evaluate(m, dl)", "evaluate", "no_such_parameter") is None


def test_star_arguments_make_positions_unknown():
    program = analyse(SOURCE)
    assert _argument(program, "evaluate(*args)", "evaluate", "model") is None
    assert _argument(program, "evaluate(m, *rest)", "evaluate", "loader") is None
    assert _argument(program, "evaluate(**kwargs)", "evaluate", "model") is None


def test_self_is_skipped_for_method_calls_and_construction():
    program = analyse(
        """
        class Predictor:
            def __init__(self, model, device):
                pass

            def predict(self, batch, labels=None):
                pass

            def run(self, x):
                self.predict(x, labels=None)

            @staticmethod
            def helper(model, x):
                pass

            def go(self, m):
                self.helper(m, 2)

        Predictor(net, "cuda")
        """
    )
    assert _argument(program, 'Predictor(net, "cuda")', "Predictor.__init__", "model") == "net"
    assert _argument(program, 'Predictor(net, "cuda")', "Predictor.__init__", "device") == '"cuda"'
    assert _argument(program, "self.predict(x, labels=None)", "Predictor.predict", "batch") == "x"
    assert _argument(program, "self.predict(x, labels=None)", "Predictor.predict", "labels") == "None"
    assert _argument(program, "self.predict(x, labels=None)", "Predictor.predict", "self") is None
    # a staticmethod has no self: its first parameter is the first argument
    assert _argument(program, "self.helper(m, 2)", "Predictor.helper", "model") == "m"
    assert _argument(program, "self.helper(m, 2)", "Predictor.helper", "x") == "2"


def test_cls_is_skipped_for_classmethod_calls():
    program = analyse(
        """
        class Predictor:
            @classmethod
            def build(cls, model, device):
                pass

            @classmethod
            def make(cls, m):
                return cls.build(m, "cpu")

            def go(self, m):
                return self.build(m, "cuda")
        """
    )
    build = program.function("Predictor.build")
    assert program.callgraph.resolve(program.call('cls.build(m, "cpu")')) is build
    assert _argument(program, 'cls.build(m, "cpu")', "Predictor.build", "model") == "m"
    assert _argument(program, 'cls.build(m, "cpu")', "Predictor.build", "device") == '"cpu"'
    assert _argument(program, 'self.build(m, "cuda")', "Predictor.build", "model") == "m"
    assert _argument(program, 'self.build(m, "cuda")', "Predictor.build", "device") == '"cuda"'
