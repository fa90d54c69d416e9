"""Grad context, inference context and training loops (RULES.md "Shared analysis")."""

import pytest

from analysis_helpers import analyse

HEADER = """\
import torch
import torch.nn as nn
import pytorch_lightning as pl


class Net(nn.Module):
    def forward(self, x):
        return x


model = Net()
"""


def _analyse(body: str, filename: str = "example.py"):
    return analyse(HEADER + body, filename)


# -- grad context ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "disabled"),
    [
        ("with torch.no_grad():", True),
        ("with torch.inference_mode():", True),
        ("with torch.set_grad_enabled(False):", True),
        ("with torch.inference_mode(False):", False),
        ("with torch.set_grad_enabled(True):", False),
        ("with torch.autocast('cuda'):", False),
        ("if True:", False),
    ],
)
def test_lexical_grad_context(header, disabled):
    program = _analyse(
        f"""
def run(x):
    {header}
        return model(x)
"""
    )
    assert program.grad_disabled("model(x)") is disabled


@pytest.mark.parametrize(
    ("decorator", "disabled"),
    [
        ("@torch.no_grad()", True),
        ("@torch.no_grad", True),
        ("@torch.inference_mode()", True),
        ("@torch.inference_mode", True),
        ("@torch.inference_mode(mode=True)", True),
        ("@torch.inference_mode(False)", False),
        ("@torch.set_grad_enabled(False)", True),
        ("@torch.enable_grad()", False),
        ("@staticmethod", False),
    ],
)
def test_decorated_function(decorator, disabled):
    program = _analyse(
        f"""
{decorator}
def run(x):
    return model(x)
"""
    )
    assert program.grad_disabled("model(x)") is disabled


def test_decorator_through_an_alias():
    program = analyse(
        """
        from torch import no_grad as ng
        import torch.nn as nn

        model = nn.Linear(2, 2)

        @ng()
        def run(x):
            return model(x)
        """
    )
    assert program.grad_disabled("model(x)")


def test_a_function_nested_in_a_decorated_function():
    program = _analyse(
        """
@torch.no_grad()
def outer(x):
    def inner(y):
        return model(y)
    return inner(x)
"""
    )
    assert program.grad_disabled("model(y)")


def test_a_function_only_called_from_no_grad_places():
    program = _analyse(
        """
def leaf(x):
    return model(x)

def middle(x):
    return leaf(x)

def top(x):
    with torch.no_grad():
        middle(x)

@torch.inference_mode()
def other_top(x):
    return leaf(x)
"""
    )
    assert program.grad_disabled("model(x)")  # through `middle`, transitively
    assert program.grad_disabled("leaf(x)")
    assert program.contexts.function_grad_disabled(program.function("middle"))


def test_a_function_called_from_one_grad_enabled_place_is_not_disabled():
    program = _analyse(
        """
def leaf(x):
    return model(x)

def evaluate(x):
    with torch.no_grad():
        leaf(x)

def train(x):
    leaf(x).sum().backward()
"""
    )
    assert not program.grad_disabled("model(x)")


def test_a_function_with_no_caller_is_not_disabled():
    program = _analyse(
        """
def predict(x):
    return model(x)
"""
    )
    assert not program.grad_disabled("model(x)")


def test_a_method_only_called_through_self_from_no_grad():
    program = _analyse(
        """
class Predictor:
    def predict(self, x):
        with torch.no_grad():
            return self.run(x)

    def run(self, x):
        return model(x)
"""
    )
    assert program.grad_disabled("model(x)")


def test_recursion_does_not_prove_grad_disabled():
    program = _analyse(
        """
def walk(x):
    model(x)
    walk(x)
"""
    )
    assert not program.grad_disabled("model(x)")


def test_enable_grad_inside_no_grad_turns_it_back_on():
    program = _analyse(
        """
@torch.no_grad()
def decorated(x):
    with torch.enable_grad():
        model(x)

def lexical(x):
    with torch.no_grad():
        with torch.enable_grad():
            model(x + 1)
        model(x + 2)
"""
    )
    assert not program.grad_disabled("model(x)")
    assert not program.grad_disabled("model(x + 1)")
    assert program.grad_disabled("model(x + 2)")


def test_set_grad_enabled_false_statement_disables_what_follows():
    program = _analyse(
        """
def run(x):
    model(x)
    torch.set_grad_enabled(False)
    model(x + 1)
"""
    )
    assert not program.grad_disabled("model(x)")
    assert program.grad_disabled("model(x + 1)")


def test_set_grad_enabled_true_statement_turns_it_back_on():
    program = _analyse(
        """
torch.set_grad_enabled(False)
model(1)
torch.set_grad_enabled(True)
model(2)

@torch.no_grad()
def decorated(x):
    torch.set_grad_enabled(True)
    model(x)
"""
    )
    assert program.grad_disabled("model(1)")
    assert not program.grad_disabled("model(2)")
    assert not program.grad_disabled("model(x)")


@pytest.mark.parametrize(
    "statement",
    [
        "torch.no_grad()",
        "torch.inference_mode()",
        "ctx = torch.set_grad_enabled(False)",
        "print(torch.set_grad_enabled(False))",
    ],
)
def test_only_set_grad_enabled_on_its_own_sets_the_mode(statement):
    """`torch.no_grad()` alone makes a context manager and drops it; a call inside an
    expression is not a statement that switches the mode for what follows."""
    program = _analyse(
        f"""
def run(x):
    {statement}
    model(x)
"""
    )
    assert not program.grad_disabled("model(x)")


def test_a_broken_grad_mode_with_is_not_an_inference_concern():
    """Clarification 7: `with torch.no_grad:` is LML103's; nothing inside it is reported
    by LML101/LML201, which the site flag says."""
    program = _analyse(
        """
def predict(x):
    with torch.no_grad:
        return model(x)
"""
    )
    assert program.site("model(x)").broken_grad_with


# -- inference signals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "inference"),
    [
        ("predict", True),
        ("evaluate", True),
        ("run_eval", True),
        ("predict_batch", True),
        ("validationStep", True),
        ("validate", True),
        ("do_inference", True),
        ("infer", True),
        ("generate_text", True),
        ("sample", True),
        ("decode", True),
        ("translate", True),
        ("score", True),
        ("serve", True),
        ("benchmarkModel", True),
        ("test", True),
        ("latest", False),
        ("retrieval", False),
        ("decoder", False),
        ("evaluator", False),
        ("contest", False),
        ("forward_pass", False),
        ("main", False),
    ],
)
def test_inference_names_are_whole_words(name, inference):
    program = _analyse(
        f"""
def {name}(x):
    return model(x)
"""
    )
    assert (program.inference_signal("model(x)") is not None) is inference


@pytest.mark.parametrize(
    ("iterable", "inference"),
    [
        ("val_loader", True),
        ("self.val_loader", True),
        ("valid_dl", True),
        ("test_loader", True),
        ("eval_dataloader", True),
        ("validation_set", True),
        ("dev_data", True),
        ("loaders['val']", True),
        ("enumerate(testLoader)", True),
        ("train_loader", False),
        ("loader", False),
        ("interval_loader", False),  # `val` only as a substring
        ("latest_batches", False),
    ],
)
def test_a_loop_over_evaluation_data(iterable, inference):
    program = _analyse(
        f"""
class Runner:
    def run(self, val_loader, valid_dl, test_loader, eval_dataloader, validation_set, dev_data,
            loaders, testLoader, train_loader, loader, interval_loader, latest_batches):
        for batch in {iterable}:
            model(batch)
"""
    )
    assert (program.inference_signal("model(batch)") is not None) is inference


def test_an_inner_loop_inside_an_evaluation_loop():
    program = _analyse(
        """
def run(val_loader):
    for batch in val_loader:
        for chunk in batch:
            model(chunk)
"""
    )
    assert program.inference_signal("model(chunk)") is not None


def test_eval_called_before_in_the_function():
    program = _analyse(
        """
def run(x):
    model.eval()
    model(x)

def run_train_after(x):
    model.eval()
    model.train()
    model(x + 1)

def run_then_switch(x):
    model(x + 2)
    model.eval()

def run_train_false(x):
    model.train(False)
    model(x + 3)
"""
    )
    assert program.inference_signal("model(x)") is not None
    assert program.inference_signal("model(x + 1)") is None
    assert program.inference_signal("model(x + 2)") is None
    assert program.inference_signal("model(x + 3)") is not None


def test_eval_before_on_another_model_is_no_signal():
    program = _analyse(
        """
other = Net()

def run(x):
    other.eval()
    model(x)
"""
    )
    assert program.inference_signal("model(x)") is None


def test_a_function_only_called_for_inference():
    program = _analyse(
        """
def helper(x):
    return model(x)

def predict(x):
    return helper(x)

def run(x):
    with torch.no_grad():
        return helper(x)

def shared(x):
    return model(x + 1)

def evaluate(x):
    return shared(x)

def fit(x, opt):
    shared(x).sum().backward()
    opt.step()

def uncalled(x):
    return model(x + 2)
"""
    )
    assert program.inference_signal("model(x)") is not None
    assert program.inference_signal("model(x + 1)") is None
    assert program.inference_signal("model(x + 2)") is None


def test_a_function_only_called_after_the_caller_evals_the_model_it_passes():
    program = _analyse(
        """
def run(net, loader):
    return [net(batch) for batch in loader]

def main(loader):
    model.eval()
    run(model, loader)

def helper(net, x):
    return net(x)

def other(x):
    model.eval()
    helper(x, x)  # the evaluated model is not what it passes
"""
    )
    assert program.inference_signal("net(batch)") is not None
    assert program.inference_signal("net(x)") is None


def test_a_function_only_called_from_inference_transitively():
    program = _analyse(
        """
def leaf(x):
    return model(x)

def middle(x):
    return leaf(x)

def evaluate(x):
    return middle(x)
"""
    )
    assert program.inference_signal("model(x)") is not None


@pytest.mark.parametrize(
    "training",
    ["loss.backward()", "optimizer.step()", "torch.autograd.grad(loss, params)"],
)
def test_a_function_that_trains_is_not_inference_by_its_name(training):
    program = _analyse(
        f"""
def evaluate(x, optimizer, params):
    loss = model(x)
    {training}
"""
    )
    assert program.inference_signal("model(x)") is None


def test_never_in_a_training_loop():
    program = _analyse(
        """
def run(val_loader, opt):
    model.eval()
    for batch in val_loader:
        loss = model(batch)
        loss.backward()
        opt.step()
"""
    )
    assert program.inference_signal("model(batch)") is None


def test_a_forward_whose_graph_is_backpropagated_in_the_loop_is_not_inference():
    """Saliency maps and gradient accumulation: backward in the loop, no step there."""
    program = _analyse(
        """
def saliency(val_loader):
    model.eval()
    for batch in val_loader:
        model(batch).sum().backward()
"""
    )
    assert program.contexts.in_training_loop(program.site("model(batch)"))
    assert program.inference_signal("model(batch)") is None
    assert program.contexts.training_loops(program.function("saliency")) == []


def test_an_evaluation_loop_in_a_training_function_is_still_inference():
    program = _analyse(
        """
def fit(train_loader, val_loader, opt):
    for batch in train_loader:
        loss = model(batch)
        loss.backward()
        opt.step()
    for batch in val_loader:
        model(batch + 1)
"""
    )
    assert program.inference_signal("model(batch)") is None
    assert program.inference_signal("model(batch + 1)") is not None


def test_never_in_nn_module_methods():
    program = _analyse(
        """
class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 2)
        self.body.eval()

    def forward(self, x):
        return self.body(x)

    def predict(self, x):
        return self.body(x + 1)

    def evaluate(self, val_loader):
        for batch in val_loader:
            def step(b):
                return self.body(b)
            step(batch)
"""
    )
    for text in ("self.body(x)", "self.body(x + 1)", "self.body(b)"):
        assert program.inference_signal(text) is None, text
    assert program.contexts.is_model_code(program.function("Classifier.predict"))
    assert program.contexts.is_model_code(program.function("step"))


def test_a_plain_class_method_is_a_call_site():
    program = _analyse(
        """
class Predictor:
    def __init__(self):
        self.model = Net()

    def predict(self, x):
        return self.model(x)
"""
    )
    assert not program.contexts.is_model_code(program.function("Predictor.predict"))
    assert program.inference_signal("self.model(x)") is not None


TEST_BODY = """
def test_model_output(x):
    return model(x)

class TestModel:
    def evaluate(self, x):
        return model(x + 1)

def predict(x):
    return model(x + 2)
"""


@pytest.mark.parametrize("filename", ["tests/test_model.py", "model_test.py", "tests/conftest.py", "test_x.py"])
def test_never_in_test_functions_of_test_files(filename):
    program = _analyse(TEST_BODY, filename)
    assert program.contexts.is_test_function(program.function("test_model_output"))
    assert program.inference_signal("model(x)") is None
    assert program.inference_signal("model(x + 1)") is None  # a method of a Test class
    assert program.inference_signal("model(x + 2)") is not None  # not a test function


@pytest.mark.parametrize("filename", ["model.py", "src/testing_utils.py", "tests/helpers.py", "contest.py"])
def test_test_functions_outside_test_files_are_ordinary(filename):
    program = _analyse(TEST_BODY, filename)
    assert not program.contexts.is_test_function(program.function("test_model_output"))
    assert program.inference_signal("model(x)") is not None  # `test` is an inference word


@pytest.mark.parametrize("hook", ["validation_step", "test_step", "predict_step", "training_step", "forward"])
def test_lightning_hooks_are_never_inference_call_sites(hook):
    program = _analyse(
        f"""
class Lit(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = Net()

    def {hook}(self, batch, batch_idx):
        return self.net(batch)
"""
    )
    assert program.is_model("self.net", f"Lit.{hook}")
    assert program.inference_signal("self.net(batch)") is None
    assert program.contexts.is_model_code(program.function(f"Lit.{hook}"))


def test_module_level_is_a_scope_like_a_function_body():
    program = _analyse(
        """
for batch in test_loader:
    model(batch)

model(1)
model.eval()
model(2)
"""
    )
    assert program.inference_signal("model(batch)") is not None
    assert program.inference_signal("model(1)") is None
    assert program.inference_signal("model(2)") is not None


def test_signal_messages_name_the_reason():
    program = _analyse(
        """
def predict(x):
    return model(x)

def run(x, val_loader):
    for batch in val_loader:
        model(batch)
    model.eval()
    model(x)
"""
    )
    assert "predict" in program.inference_signal("model(x)")
    assert "evaluation data" in program.inference_signal("model(batch)")
    assert "eval mode" in program.inference_signal("model(x)", 1)


# -- training loops --------------------------------------------------------------------


def _training_loop_iterables(program, function):
    return [program.code(found.loop.node.iter) for found in program.contexts.training_loops(program.function(function))]


def test_a_loop_with_backward_and_an_optimizer_step_is_a_training_loop():
    program = _analyse(
        """
def train(loader, optimizer):
    for epoch in range(10):
        for batch in loader:
            loss = model(batch)
            loss.backward()
            optimizer.step()
"""
    )
    assert _training_loop_iterables(program, "train") == ["range(10)", "loader"]  # outermost first
    inner = program.contexts.training_loops(program.function("train"))[1]
    assert [program.code(call.node) for call in inner.step_calls] == ["optimizer.step()"]
    assert inner.first_step == program.site("loss.backward()").order
    assert program.contexts.in_training_loop(program.site("model(batch)"))


@pytest.mark.parametrize(
    "body",
    [
        "loss.backward()\n        scheduler.step()",
        "loss.backward()\n        lr_scheduler.step()",
        "loss.backward()\n        self.sched.step()",
        "loss.backward()",
        "optimizer.step()",
        "scheduler.step()",
        "env.step(action)",
    ],
)
def test_loops_that_are_not_training_loops(body):
    program = _analyse(
        f"""
class Runner:
    def run(self, loader, optimizer, scheduler, lr_scheduler, env, action):
        for batch in loader:
            loss = model(batch)
            {body.replace(chr(10) + "        ", chr(10) + "            ")}
"""
    )
    assert _training_loop_iterables(program, "Runner.run") == []


def test_a_scheduler_loop_around_a_training_loop():
    program = _analyse(
        """
def train(loader, optimizer, scheduler):
    for epoch in range(3):
        for batch in loader:
            model(batch).sum().backward()
            optimizer.step()
        scheduler.step()
"""
    )
    loops = program.contexts.training_loops(program.function("train"))
    assert [program.code(found.loop.node.iter) for found in loops] == ["range(3)", "loader"]
    assert [program.code(call.node) for call in loops[0].step_calls] == ["optimizer.step()"]


def test_manual_backward_and_a_scaler_step_make_a_training_loop():
    program = _analyse(
        """
def train(loader, optimizer, scaler):
    for batch in loader:
        scaler.scale(model(batch).sum()).backward()
        scaler.step(optimizer)
        scaler.update()
"""
    )
    assert _training_loop_iterables(program, "train") == ["loader"]
