"""Value kinds (RULES.md Amendment 15): what a name, attribute or call result may hold.

A kind is one of a small set; a value is the set of kinds it may hold (a name bound on
two branches may hold both). The empty set is "unknown". Rules that need a kind stay
silent where it is unknown or mixed.

This module also knows what library names make: which qualified names are model
classes, pipelines, optimizers, schedulers, scalers and loaders. The project facts
(computed from CPython's `ast` for every file) and the per-file model questions (on the
LibCST tree of a checked file) both ask it, so the two never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MODEL = "model"
PIPELINE = "pipeline"
TENSOR = "tensor"  # may carry an autograd graph
NON_TENSOR = "non-tensor"  # PIL images, arrays, Python numbers, pipeline outputs, plain objects
OPTIMIZER = "optimizer"
SCHEDULER = "scheduler"
SCALER = "scaler"
LOADER = "loader"


@dataclass(frozen=True)
class Value:
    """What an expression may hold: its kinds and, for a model, what is known of it."""

    kinds: frozenset[str] = frozenset()
    cls: str | None = None  # the project class it is an instance of ("models.unet:UNet")
    mode: str | None = None  # "eval" or "default" (training mode, as built) when known
    # may it hold a layer whose behaviour depends on the mode (Amendment 17)? None: unknown
    mode_dependent: bool | None = None

    @property
    def known(self) -> bool:
        return bool(self.kinds)

    def only(self, kind: str) -> bool:
        """Every value it may hold is of `kind`."""
        return self.kinds == {kind}

    def may_be(self, kind: str) -> bool:
        return kind in self.kinds


UNKNOWN = Value()


def of(kind: str, **facts) -> Value:
    return Value(frozenset({kind}), **facts)


def join(values) -> Value:
    """The value of a name bound to each of `values` on some path. Unknown joins to
    unknown: one branch lintml cannot read makes the whole name unknown."""
    values = list(values)
    if not values or any(not value.known for value in values):
        return UNKNOWN
    kinds = frozenset().union(*(value.kinds for value in values))
    classes = {value.cls for value in values}
    modes = {value.mode for value in values}
    dependent = {value.mode_dependent for value in values}
    return Value(
        kinds,
        classes.pop() if len(classes) == 1 else None,
        modes.pop() if len(modes) == 1 else None,
        True if True in dependent else (False if dependent == {False} else None),
    )


# -- what library names make -------------------------------------------------------

# Libraries whose `from_pretrained` makes models when the class is a model class.
MODEL_LIBRARIES = ("transformers", "diffusers", "peft", "sentence_transformers", "optimum", "timm")
NOT_MODEL_CLASS = re.compile(
    r"(Tokenizer|Processor|Config|FeatureExtractor|ImageProcessor|Scheduler|Collator|Args|Arguments|"
    r"Output|Pipeline|Trainer|Callback|Quantizer|Extractor|Encoding|Dataset)"
)
MODEL_CLASS = re.compile(r"(^Auto.*Model|Model|For[A-Z]|^[A-Z][A-Za-z0-9]*Net|Transformer$|^SentenceTransformer|^UNet|^VQ|^Autoencoder)")
PIPELINE_CLASS = re.compile(r"Pipeline$|^DiffusionPipeline")
# Well-known nn.Module bases besides torch.nn.Module itself.
MODULE_BASES = frozenset(
    {"torch.nn.Module", "torch.nn.modules.module.Module", "torch.nn.Sequential", "torch.nn.ModuleList",
     "transformers.PreTrainedModel", "transformers.modeling_utils.PreTrainedModel",
     "pytorch_lightning.LightningModule", "lightning.LightningModule", "lightning.pytorch.LightningModule",
     "lightning.pytorch.core.LightningModule", "pytorch_lightning.core.LightningModule",
     "diffusers.ModelMixin", "diffusers.models.modeling_utils.ModelMixin",
     "sentence_transformers.SentenceTransformer"}
)  # fmt: skip
OPTIMIZER_CLASS = re.compile(
    r"(Adam|SGD|RMSprop|Adagrad|Adadelta|Adamax|LBFGS|Lion|Adafactor|Lamb|LAMB|Rprop|ASGD|Optimizer|Sophia|Muon"
    r"|Shampoo|Lars|LARS|Novograd|NovoGrad|Prodigy|Yogi|Adan|Ranger|Lookahead)"
)
NOT_OPTIMIZER = ("lr_scheduler", "swa_utils", "Scheduler", "GradScaler", "tensorflow", "keras", "optax", "jax")
# Calls that return the module they are given (wrappers keep the wrapped model's mode).
PASSTHROUGH = frozenset(
    {"torch.compile", "copy.deepcopy", "torch.nn.DataParallel", "torch.nn.parallel.DataParallel",
     "torch.nn.parallel.DistributedDataParallel", "torch.nn.parallel.distributed.DistributedDataParallel",
     "peft.get_peft_model", "peft.mapping.get_peft_model", "torch.jit.script", "torch.jit.trace",
     "torch.nn.SyncBatchNorm.convert_sync_batchnorm"}
)  # fmt: skip
# transformers' and diffusers' pipeline factories: they run their model without grad
PIPELINE_FACTORIES = frozenset({"transformers.pipeline", "transformers.pipelines.pipeline"})


def is_library_model_class(qualified: str) -> bool:
    library = qualified.split(".", 1)[0]
    if library not in MODEL_LIBRARIES:
        return False
    tail = qualified.rsplit(".", 1)[-1]
    if not tail[:1].isupper():
        return False
    if PIPELINE_CLASS.search(tail):
        return library in ("diffusers",)
    if NOT_MODEL_CLASS.search(tail):
        return False
    return bool(MODEL_CLASS.search(tail)) or qualified in MODULE_BASES


def is_pipeline_class(qualified: str) -> bool:
    return qualified.split(".", 1)[0] == "diffusers" and bool(PIPELINE_CLASS.search(qualified.rsplit(".", 1)[-1]))


def is_optimizer_class(qualified: str) -> bool:
    """A class of `torch.optim` or of an optimizer library, known by its name."""
    if any(part in qualified for part in NOT_OPTIMIZER):
        return False
    last = qualified.rsplit(".", 1)[-1]
    return qualified.startswith("torch.optim.") or bool(OPTIMIZER_CLASS.search(last))


def library_call_kind(qualified: str) -> str | None:
    """The kind a call of library name `qualified` returns, where its name says so."""
    if qualified in PIPELINE_FACTORIES:
        return PIPELINE
    tail = qualified.rsplit(".", 1)[-1]
    if "lr_scheduler" in qualified or tail.endswith("Scheduler") and qualified.startswith(("torch.", "transformers.")):
        return SCHEDULER
    if tail == "GradScaler":
        return SCALER
    if qualified in ("torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"):
        return LOADER
    if qualified.startswith("torch.optim.") and tail[:1].isupper() or is_optimizer_class(qualified) and tail[:1].isupper():
        return OPTIMIZER
    if is_pipeline_class(qualified):
        return PIPELINE
    if is_library_model_class(qualified):
        return MODEL
    if qualified.split(".", 1)[0] in ("PIL", "numpy", "pandas"):
        return NON_TENSOR
    return None


# -- which torch.nn layers behave differently in train and eval mode (Amendment 17) --

_ALWAYS_MODE_DEPENDENT = re.compile(
    r"^(Dropout\d?d?|AlphaDropout|FeatureAlphaDropout|BatchNorm\dd|LazyBatchNorm\dd|SyncBatchNorm"
    r"|Transformer|TransformerEncoderLayer|TransformerDecoderLayer|TransformerEncoder|TransformerDecoder)$"
)
_DROPOUT_LAYERS = re.compile(r"^(Dropout\d?d?|AlphaDropout|FeatureAlphaDropout)$")
_INSTANCE_NORM = re.compile(r"^(Lazy)?InstanceNorm\dd$")
_RECURRENT = frozenset({"RNN", "LSTM", "GRU"})
TORCH_NN_PREFIXES = ("torch.nn.", "torch.nn.modules.")


def torch_layer_mode_dependent(qualified: str, args: dict[str, object]) -> bool | None:
    """Whether a torch.nn layer built with `args` behaves differently in the two modes.

    `args` maps keyword names, and positions as "0", "1", ..., to literal values (or to
    `...` for a value that is not a literal). None when `qualified` is not a torch.nn layer.
    """
    if not qualified.startswith(TORCH_NN_PREFIXES):
        return None
    tail = qualified.rsplit(".", 1)[-1]
    if _DROPOUT_LAYERS.match(tail):
        p = args.get("p", args.get("0", 0.5))
        return not _is_zero(p)
    if _ALWAYS_MODE_DEPENDENT.match(tail):
        if tail.startswith("Transformer"):
            return not _is_zero(args.get("dropout", 0.1))
        return True
    if _INSTANCE_NORM.match(tail):
        return args.get("track_running_stats", False) is not False
    if tail == "MultiheadAttention":
        return not _is_zero(args.get("dropout", 0.0))
    if tail in _RECURRENT:
        layers = args.get("num_layers", args.get("2", 1))
        dropout = args.get("dropout", 0.0)
        return not _is_zero(dropout) and layers != 1
    return False


def _is_zero(value: object) -> bool:
    return value is not ... and isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0
