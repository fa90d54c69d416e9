"""Which names are models (RULES.md "Model tracking", clarifications 1-3), and their modes."""

import pytest

from analysis_helpers import analyse
from lintml.analysis.models import Kind, Mode

HEADER = """\
import timm
import torch
import torch.nn as nn
import torchvision
from torchvision.models import resnet50
import pytorch_lightning as pl
from transformers import (
    AutoConfig, AutoFeatureExtractor, AutoImageProcessor, AutoModel, AutoModelForCausalLM,
    AutoProcessor, AutoTokenizer, BertModel, BertTokenizerFast, CLIPProcessor,
    PreTrainedModel, T5ForConditionalGeneration, Trainer, WhisperFeatureExtractor,
)
from diffusers import DiffusionPipeline, StableDiffusionPipeline, UNet2DConditionModel
from peft import PeftModel, get_peft_model
from sentence_transformers import SentenceTransformer
"""


def _module_level(body: str):
    return analyse(HEADER + body)


# -- classes of the file ---------------------------------------------------------------


def test_module_classes_directly_through_file_classes_and_known_bases():
    program = _module_level(
        """
class Base(nn.Module):
    pass

class Net(Base):
    pass

class Deeper(Net):
    pass

class Lit(pl.LightningModule):
    pass

class Custom(PreTrainedModel):
    pass

class Plain:
    pass

class Child(Plain):
    pass

class Loopy(Loopy2):
    pass

class Loopy2(Loopy):
    pass
"""
    )
    classes = program.program.classes
    is_module = {name: program.models.is_module_class(found[0]) for name, found in classes.items()}
    assert is_module == {
        "Base": True, "Net": True, "Deeper": True, "Lit": True, "Custom": True,
        "Plain": False, "Child": False, "Loopy": False, "Loopy2": False,
    }  # fmt: skip


def test_a_base_that_does_not_resolve_counts_only_with_module_evidence():
    program = analyse(
        """
        from .layers import Module, Helper

        class A(Module):
            pass

        class B(Helper):
            def forward(self, x):
                return x

        class C(Helper):
            def run(self, x):
                return x
        """
    )
    classes = program.program.classes
    assert program.models.is_module_class(classes["A"][0])
    assert program.models.is_module_class(classes["B"][0])
    assert not program.models.is_module_class(classes["C"][0])


# -- what makes a name a model ---------------------------------------------------------


@pytest.mark.parametrize(
    "assignment",
    [
        "model = Net()",
        "model = Deeper()",
        "model = Lit()",
        "model = nn.Linear(4, 2)",
        "model = nn.Sequential(nn.Linear(4, 2), nn.ReLU())",
        "model = AutoModel.from_pretrained('bert-base-uncased')",
        "model = AutoModelForCausalLM.from_pretrained('gpt2')",
        "model = BertModel.from_pretrained('bert-base-uncased')",
        "model = T5ForConditionalGeneration.from_pretrained('t5-small')",
        "model = UNet2DConditionModel.from_pretrained('sd', subfolder='unet')",
        "model = PeftModel.from_pretrained(base, 'adapter')",
        "model = SentenceTransformer('all-MiniLM-L6-v2')",
        "model = timm.create_model('resnet50', pretrained=True)",
        "model = torchvision.models.resnet18()",
        "model = resnet50(weights='IMAGENET1K_V2')",
        "model = torch.hub.load('pytorch/vision', 'resnet18')",
        "model = torch.jit.load('model.pt')",
        "model = Net().to(device)",
        "model = Net().cuda().half()",
        "model = Net().eval()",
        "model = torch.compile(Net())",
        "model = nn.DataParallel(Net())",
        "model = build()",  # a function of the file that returns a model
        "model = accelerator.prepare(Net())",
        "model, optimizer = accelerator.prepare(Net(), opt)",
        "model, optimizer = Net(), opt",
    ],
)
def test_bound_to_something_that_makes_a_model(assignment):
    program = _module_level(
        f"""
class Base(nn.Module):
    pass

class Net(Base):
    pass

class Deeper(Net):
    pass

class Lit(pl.LightningModule):
    pass

def build():
    return Net()

{assignment}
"""
    )
    assert program.is_model("model")


@pytest.mark.parametrize(
    "assignment",
    [
        "model = AutoTokenizer.from_pretrained('gpt2')",
        "model = BertTokenizerFast.from_pretrained('bert-base-uncased')",
        "model = AutoProcessor.from_pretrained('openai/whisper-small')",
        "model = CLIPProcessor.from_pretrained('openai/clip-vit-base-patch32')",
        "model = AutoConfig.from_pretrained('gpt2')",
        "model = AutoImageProcessor.from_pretrained('google/vit-base-patch16-224')",
        "model = AutoFeatureExtractor.from_pretrained('facebook/wav2vec2-base')",
        "model = WhisperFeatureExtractor.from_pretrained('openai/whisper-small')",
        "model = Trainer(model=net, args=args)",
        "model = torch.optim.AdamW(params, lr=1e-3)",
        "model = nn.CrossEntropyLoss()",
        "model = Helper()",  # a plain class of the file
        "model = make_model()",  # a function from another module: unknown, not a model
        "model = net.generate(x)",  # a method of a model that does not return it
    ],
)
def test_bound_to_something_that_is_not_a_model(assignment):
    program = _module_level(
        f"""
from factory import make_model

class Helper:
    def eval(self):
        pass

{assignment}
model.train()
model(x)
"""
    )
    assert not program.is_model("model")


def test_tokenizers_processors_and_configs_are_never_models_even_with_state_dict():
    program = _module_level(
        """
tokenizer = AutoTokenizer.from_pretrained("gpt2")
processor = AutoProcessor.from_pretrained("openai/whisper-small")
config = AutoConfig.from_pretrained("gpt2")
tokenizer.state_dict()
processor.eval()
config.parameters()
"""
    )
    assert not program.is_model("tokenizer")
    assert not program.is_model("processor")
    assert not program.is_model("config")


def test_diffusers_pipelines_are_pipelines_not_forwards():
    program = _module_level(
        """
pipe = StableDiffusionPipeline.from_pretrained("runwayml/stable-diffusion-v1-5")
generic = DiffusionPipeline.from_pretrained("stabilityai/sdxl")
unet = UNet2DConditionModel.from_pretrained("sd", subfolder="unet")
pipe("a cat")
generic("a dog")
unet(latents, t)
"""
    )
    module = program.function()
    assert program.is_model("pipe")
    assert program.models.kind("pipe", module) is Kind.PIPELINE
    assert program.models.kind("generic", module) is Kind.PIPELINE
    assert program.models.kind("unet", module) is Kind.MODULE
    assert program.forward_key('pipe("a cat")') is None
    assert program.forward_key('generic("a dog")') is None
    assert program.forward_key("unet(latents, t)") == "unet"


def test_a_pipeline_moved_to_a_device_is_still_a_pipeline():
    program = _module_level(
        """
pipe = DiffusionPipeline.from_pretrained("stabilityai/sdxl").to("cuda")
pipe("a cat")
"""
    )
    assert program.models.kind("pipe", program.function()) is Kind.PIPELINE
    assert program.forward_key('pipe("a cat")') is None


@pytest.mark.parametrize(
    "annotation", ["nn.Module", "torch.nn.Module", "Net", "PreTrainedModel", "AutoModelForCausalLM"]
)
def test_a_parameter_annotated_as_a_module(annotation):
    program = _module_level(
        f"""
class Net(nn.Module):
    pass

def predict(model: {annotation}, x):
    return model(x)
"""
    )
    assert program.is_model("model", "predict")


@pytest.mark.parametrize("annotation", ["torch.Tensor", "int", "Helper", "AutoTokenizer"])
def test_a_parameter_annotated_as_something_else(annotation):
    program = _module_level(
        f"""
class Helper:
    pass

def predict(model: {annotation}, x):
    return model(x)
"""
    )
    assert not program.is_model("model", "predict")


def test_an_unannotated_parameter_is_a_model_when_a_caller_passes_one():
    program = _module_level(
        """
class Net(nn.Module):
    pass

def predict(model, x):
    return model(x)

def predict_keyword(model, x):
    return model(x)

def main():
    net = Net()
    predict(net, 1)
    predict_keyword(x=2, model=net)
"""
    )
    assert program.is_model("model", "predict")
    assert program.is_model("model", "predict_keyword")


def test_an_unannotated_parameter_without_evidence_is_unknown():
    program = _module_level(
        """
def predict(model, x):
    return model(x)

def caller():
    predict(lambda x: x, 1)

def uncalled(model, x):
    return model(x)
"""
    )
    assert not program.is_model("model", "predict")
    assert not program.is_model("model", "uncalled")
    assert program.forward_key("model(x)") is None


@pytest.mark.parametrize(
    "evidence",
    ["model.eval()", "model.parameters()", "model.state_dict()", "model.named_parameters()", "model.to(dev).eval()"],
)
def test_methods_that_only_modules_have_are_evidence(evidence):
    program = _module_level(
        f"""
def predict(model, x, dev):
    {evidence}
    return model(x)
"""
    )
    assert program.is_model("model", "predict")
    assert program.forward_key("model(x)") == "model"


def test_train_alone_is_not_evidence():
    program = _module_level(
        """
def run(model, x):
    model.train()
    return model(x)

trainer = make_trainer()
trainer.train()
"""
    )
    assert not program.is_model("model", "run")
    assert not program.is_model("trainer")


def test_pandas_eval_with_an_expression_is_not_evidence():
    program = _module_level(
        """
import pandas as pd
df = pd.read_csv("data.csv")
frame = load()
frame.eval("a + b")
"""
    )
    assert not program.is_model("frame")


def test_an_instance_of_a_plain_class_is_never_a_model():
    program = _module_level(
        """
class Evaluator:
    def eval(self):
        pass
    def parameters(self):
        return {}

evaluator = Evaluator()
evaluator.eval()
evaluator.parameters()
"""
    )
    assert not program.is_model("evaluator")


def test_an_optimizer_state_dict_does_not_make_it_a_model():
    program = _module_level(
        """
optimizer = torch.optim.Adam(params, lr=1e-3)
scaler = torch.cuda.amp.GradScaler()
torch.save({"opt": optimizer.state_dict(), "scaler": scaler.state_dict()}, "ckpt.pt")
"""
    )
    assert not program.is_model("optimizer")
    assert not program.is_model("scaler")


def test_names_alone_are_never_enough():
    program = _module_level(
        """
def run(model, net, encoder, x):
    return model(x) + net(x) + encoder(x)

model = get_it()
model(x)
"""
    )
    for name in ("model", "net", "encoder"):
        assert not program.is_model(name, "run")
    assert not program.is_model("model")


def test_a_global_model_is_a_model_inside_functions():
    program = _module_level(
        """
model = AutoModel.from_pretrained("bert-base-uncased")

def predict(x):
    return model(x)
"""
    )
    assert program.is_model("model", "predict")
    assert program.forward_key("model(x)") == "model"


# -- self attributes -------------------------------------------------------------------


def test_self_attribute_set_in_init_is_a_model_in_every_method():
    program = _module_level(
        """
class Predictor:
    def __init__(self, name):
        self.model = AutoModelForCausalLM.from_pretrained(name)
        self.tokenizer = AutoTokenizer.from_pretrained(name)

    def predict(self, text):
        ids = self.tokenizer(text)
        return self.model(ids)
"""
    )
    assert program.is_model("self.model", "Predictor.predict")
    assert not program.is_model("self.tokenizer", "Predictor.predict")
    assert program.forward_key("self.model(ids)") == "self.model"
    assert program.forward_key("self.tokenizer(text)") is None


def test_self_attribute_from_a_model_parameter():
    program = _module_level(
        """
class Net(nn.Module):
    pass

class Predictor:
    def __init__(self, model):
        self.model = model

    def predict(self, x):
        return self.model(x)

predictor = Predictor(Net())
"""
    )
    assert program.is_model("self.model", "Predictor.predict")


# -- forward calls ---------------------------------------------------------------------


def test_forward_keys():
    program = _module_level(
        """
class Net(nn.Module):
    def forward(self, x):
        return self(x)

model = Net()
model(x)
model.forward(x)
model.generate(x)
"""
    )
    assert program.forward_key("model(x)") == "model"
    assert program.forward_key("model.forward(x)") == "model"
    assert program.forward_key("model.generate(x)") is None
    assert program.forward_key("self(x)") is None


# -- modes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "mode"),
    [
        ("model = AutoModelForCausalLM.from_pretrained('gpt2')", Mode.EVAL),
        ("model = PeftModel.from_pretrained(base, 'adapter')", Mode.EVAL),
        ("model = Net()", Mode.DEFAULT),
        ("model = nn.Linear(4, 2)", Mode.DEFAULT),
        ("model = timm.create_model('resnet50')", Mode.DEFAULT),
        ("model = torchvision.models.resnet18()", Mode.DEFAULT),
        ("model = Net().to(device)", Mode.DEFAULT),
        ("model = Net().eval()", Mode.EVAL),
        ("model = Net().eval().cuda()", Mode.EVAL),
        ("model = Net()\nmodel.eval()", Mode.EVAL),
        ("model = Net()\nmodel.to(device).eval()", Mode.EVAL),
        ("model = Net()\nmodel.train()", Mode.TRAIN),
        ("model = Net()\nmodel.train(True)", Mode.TRAIN),
        ("model = Net()\nmodel.train(False)", Mode.EVAL),
        ("model = Net()\nmodel.train(is_training)", Mode.OPAQUE),  # set on purpose, to an unknown mode
        ("model = AutoModel.from_pretrained('bert')\nmodel.train()", Mode.TRAIN),
        ("model = Net()\nmodel.eval()\nmodel.train()", Mode.TRAIN),
        ("model = Net()\nmodel.train()\nmodel.eval()", Mode.EVAL),
        ("model = torch.hub.load('repo', 'net')", Mode.OPAQUE),
        ("model = Net()\nmodel.eval()\nmodel = wrap(model)", Mode.OPAQUE),  # from an unknown function
        ("model = AutoModel.from_pretrained('bert')\nmodel = get_peft_model(model, config)", Mode.EVAL),
        ("model = Net()\nmodel.train()\nmodel = get_peft_model(model, config)", Mode.TRAIN),
        ("model = Net()\nmodel = torch.compile(model)", Mode.DEFAULT),
    ],
)
def test_mode_at_a_forward(body, mode):
    program = _module_level(
        f"""
from wrappers import wrap

class Net(nn.Module):
    pass

{body}
model(x)
"""
    )
    assert program.mode_at_call("model", "model(x)") is mode


def test_mode_is_read_at_the_place_not_at_the_end():
    program = _module_level(
        """
class Net(nn.Module):
    pass

model = Net()
model(1)
model.eval()
model(2)
model.train()
model(3)
"""
    )
    assert program.mode_at_call("model", "model(1)") is Mode.DEFAULT
    assert program.mode_at_call("model", "model(2)") is Mode.EVAL
    assert program.mode_at_call("model", "model(3)") is Mode.TRAIN


def test_a_parameter_is_in_eval_mode_when_every_caller_evals_it():
    program = _module_level(
        """
class Net(nn.Module):
    pass

def evaluate(model, x):
    return model(x)

def main():
    net = Net()
    net.eval()
    evaluate(net, 1)
    other = AutoModel.from_pretrained("bert")
    evaluate(other, 2)
"""
    )
    assert program.mode_at_call("model", "model(x)") is Mode.EVAL


def test_a_parameter_is_not_in_eval_mode_when_one_caller_trains_it():
    program = _module_level(
        """
class Net(nn.Module):
    pass

def evaluate(model, x):
    return model(x)

def main():
    net = Net()
    net.eval()
    evaluate(net, 1)
    net.train()
    evaluate(net, 2)
"""
    )
    assert program.mode_at_call("model", "model(x)") is not Mode.EVAL


def test_a_parameter_with_no_caller_has_an_unknown_mode():
    program = _module_level(
        """
def evaluate(model: nn.Module, x):
    return model(x)
"""
    )
    assert program.mode_at_call("model", "model(x)") is Mode.UNKNOWN


def test_eval_in_the_function_itself_wins_over_callers():
    program = _module_level(
        """
class Net(nn.Module):
    pass

def evaluate(model, x):
    model.eval()
    return model(x)

evaluate(Net(), 1)
"""
    )
    assert program.mode_at_call("model", "model(x)") is Mode.EVAL


def test_class_state_from_pretrained_in_init_holds_in_other_methods():
    program = _module_level(
        """
class Predictor:
    def __init__(self, name):
        self.model = AutoModelForCausalLM.from_pretrained(name)

    def predict(self, x):
        return self.model(x)
"""
    )
    assert program.mode_at_call("self.model", "self.model(x)") is Mode.EVAL


def test_class_state_eval_in_init_holds_in_other_methods():
    program = _module_level(
        """
class Net(nn.Module):
    pass

class Predictor:
    def __init__(self):
        self.model = Net()
        self.model.eval()

    def predict(self, x):
        return self.model(x)
"""
    )
    assert program.mode_at_call("self.model", "self.model(x)") is Mode.EVAL


def test_class_state_does_not_hold_when_some_method_trains():
    program = _module_level(
        """
class Runner:
    def __init__(self, name):
        self.model = AutoModelForCausalLM.from_pretrained(name)

    def fit(self, batch):
        self.model.train()

    def predict(self, x):
        return self.model(x)
"""
    )
    assert program.mode_at_call("self.model", "self.model(x)") is not Mode.EVAL


def test_class_state_of_a_constructed_module_is_default():
    program = _module_level(
        """
class Net(nn.Module):
    pass

class Predictor:
    def __init__(self):
        self.model = Net()

    def predict(self, x):
        return self.model(x)
"""
    )
    assert program.mode_at_call("self.model", "self.model(x)") is Mode.DEFAULT


def test_a_method_switching_mode_before_the_forward_wins():
    program = _module_level(
        """
class Runner:
    def __init__(self, name):
        self.model = AutoModelForCausalLM.from_pretrained(name)

    def fit(self, x):
        self.model.train()
        return self.model(x)
"""
    )
    assert program.mode_at_call("self.model", "self.model(x)") is Mode.TRAIN


def test_info_of_expressions():
    program = _module_level(
        """
class Net(nn.Module):
    pass

Net()
Net().eval()
AutoTokenizer.from_pretrained("gpt2")
StableDiffusionPipeline.from_pretrained("sd")
unknown_call()
"""
    )
    assert program.info("Net()").is_model and program.info("Net()").mode is Mode.DEFAULT
    assert program.info("Net().eval()").mode is Mode.EVAL
    assert program.info('AutoTokenizer.from_pretrained("gpt2")').is_model is False
    pipeline = program.info('StableDiffusionPipeline.from_pretrained("sd")')
    assert pipeline.is_model and pipeline.kind is Kind.PIPELINE
    assert program.info("unknown_call()").is_model is None


def test_a_parameter_rebound_through_a_chain_stays_the_same_model():
    program = _module_level(
        """
def run(model, x):
    model = model.cuda()
    return model(x)

def evaluate(model, loader, device):
    model = model.to(device)
    model.eval()
    for batch in loader:
        model(batch)

def main():
    run(AutoModel.from_pretrained("bert"), 1)
"""
    )
    assert program.is_model("model", "run")
    assert program.mode_at_call("model", "model(x)") is Mode.EVAL  # from the caller, through `.cuda()`
    assert program.is_model("model", "evaluate")
    assert program.mode_at_call("model", "model(batch)") is Mode.EVAL


def test_a_loaded_object_is_a_model_with_module_evidence():
    program = _module_level(
        """
model = torch.load("model.pt", weights_only=False)
model.eval()
weights = torch.load("weights.pt")
"""
    )
    assert program.is_model("model")
    assert not program.is_model("weights")


def test_self_attribute_from_a_parameter_takes_the_callers_mode():
    program = _module_level(
        """
class Predictor:
    def __init__(self, model):
        self.model = model

    def predict(self, x):
        return self.model(x)

predictor = Predictor(AutoModel.from_pretrained("bert"))
"""
    )
    assert program.is_model("self.model", "Predictor.predict")
    assert program.mode_at_call("self.model", "self.model(x)") is Mode.EVAL
