"""Tiny offline assets for running the `fixtures/demo` scripts, and the arguments that run them.

The demo scripts default to the `gpt2` hub checkpoint and read corpus files from
`data/`; neither exists offline. `build_demo_assets(root)` writes, in a couple of
seconds and with no network:

- `model/`: a 2-layer, 64-wide GPT-2 causal LM with random weights (`save_pretrained`)
  and, beside it, a byte-level BPE tokenizer trained on a small synthetic corpus, saved
  with `PreTrainedTokenizerFast.save_pretrained` so that `AutoTokenizer.from_pretrained`
  loads it offline. `AutoModelForSequenceClassification.from_pretrained(model)`
  (classify.py) builds a classifier from it too (the score head is freshly initialised),
  so no separate classification checkpoint is needed.
- `corpus/{train,validation,test}.txt`: documents separated by blank lines (data.py).
- `step-4.pt`: `{"model": state_dict, "step": 4}`, the checkpoint format train.py writes
  and evaluate.py reads.
- `story_endings.jsonl`: `{"context", "choices", "label"}` lines (evaluate.py, classify.py).
- `quality.jsonl`: `{"text", "keep"}` lines (quality.py).
- `filter.pt`: a `QualityFilter` state dict (quality.py `quantize`), built here with the
  same parameter names and shapes rather than by importing the fixture.

`DEMO_RUNS` maps each demo script to a `DemoRun`: call it with `(assets, tmp)` to get
the argv after the script path (every output goes under `tmp`), and read `needs_cuda`
and `stops` for what happens on a CPU-only machine. Run the scripts with
`fixtures/demo` as the working directory (they `import data`) and `HF_HUB_OFFLINE=1`.
The data loader caches tokenized splits next to the text (`corpus/*.pt`), so the
assets folder should be a temporary one.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

EOS = "<|endoftext|>"

# Tiny model shape. n_positions bounds --block-size / --max-length / prompt + new tokens.
N_LAYER = 2
N_EMBD = 64
N_HEAD = 2
N_POSITIONS = 256
TOKENIZER_VOCAB = 400  # 256 byte symbols + the special token + ~143 merges

# Small enough to stay fast, large enough for several blocks of BLOCK_SIZE tokens.
BLOCK_SIZE = 32
CHECKPOINT_STEP = 4

_NAMES = ["Tom", "Lily", "Ben", "Mia", "Sam", "Anna", "Max", "Zoe"]
_ANIMALS = ["cat", "dog", "bird", "fox", "frog", "bear", "duck", "rabbit"]
_PLACES = ["park", "garden", "forest", "river", "house", "beach", "hill", "farm"]
_THINGS = ["ball", "kite", "hat", "box", "cake", "book", "boat", "apple"]
_FEELINGS = ["happy", "sad", "scared", "proud", "tired", "excited", "angry", "calm"]
_VERBS = ["found", "lost", "shared", "painted", "carried", "hid", "saw", "liked"]


def _story(rng: random.Random) -> tuple[str, str]:
    """A short TinyStories-like story, split into its context and its own ending."""
    name, friend = rng.sample(_NAMES, 2)
    animal, place, thing = rng.choice(_ANIMALS), rng.choice(_PLACES), rng.choice(_THINGS)
    feeling, verb = rng.choice(_FEELINGS), rng.choice(_VERBS)
    context = (
        f"Once upon a time, {name} went to the {place} with a little {animal}. "
        f"They {verb} a {thing} near a big tree. {name} felt {feeling}. "
        f"Then {friend} came and asked about the {thing}."
    )
    ending = f"{name} and {friend} played with the {thing} and the {animal} all day."
    return context, ending


def _junk(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return " ".join(rng.choice(["Home", "Login", "Menu", "Cookies", "Privacy", "Terms"]) for _ in range(12))
    if kind == 1:
        return "\n".join(f"- item {rng.randrange(1000)}" for _ in range(6))
    return "".join(rng.choice("Ã©â€™Â¢Ã¨$#@%&*") for _ in range(60))


def _corpus(rng: random.Random, n_docs: int) -> str:
    return "\n\n".join(" ".join(_story(rng)) for _ in range(n_docs)) + "\n"


def _build_tokenizer(corpus: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus.split("\n\n"), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=EOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,
        model_max_length=N_POSITIONS,
    )


def build_demo_assets(root: Path) -> dict:
    """Write the demo's tiny model, tokenizer and data files under `root`; return their paths."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)

    # corpus: documents separated by blank lines, as data.py reads them
    corpus_dir = root / "corpus"
    corpus_dir.mkdir(exist_ok=True)
    splits = {"train": _corpus(rng, 40), "validation": _corpus(rng, 12), "test": _corpus(rng, 12)}
    for split, text in splits.items():
        (corpus_dir / f"{split}.txt").write_text(text, encoding="utf-8")

    # tokenizer + tiny GPT-2, saved together like a hub checkpoint
    tokenizer = _build_tokenizer(splits["train"])
    vocab_size = len(tokenizer)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=N_POSITIONS,
        n_embd=N_EMBD,
        n_layer=N_LAYER,
        n_head=N_HEAD,
        n_inner=4 * N_EMBD,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    model_dir = root / "model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)

    # a train.py-style step checkpoint for evaluate.py
    checkpoint = root / f"step-{CHECKPOINT_STEP}.pt"
    torch.save({"model": model.state_dict(), "step": CHECKPOINT_STEP}, checkpoint)

    # multiple-choice story endings: the story's own ending and two from other stories
    choices = root / "story_endings.jsonl"
    with choices.open("w", encoding="utf-8") as out:
        for _ in range(12):
            context, ending = _story(rng)
            others = [_story(rng)[1] for _ in range(2)]
            label = rng.randrange(3)
            options = others[:label] + [ending] + others[label:]
            out.write(json.dumps({"context": context, "choices": options, "label": label}) + "\n")

    # labelled documents for the quality filter: stories to keep, junk to drop
    quality = root / "quality.jsonl"
    with quality.open("w", encoding="utf-8") as out:
        for index in range(40):
            keep = index % 2
            text = " ".join(_story(rng)) if keep else _junk(rng)
            out.write(json.dumps({"text": text, "keep": keep}) + "\n")

    # a trained-filter stand-in: QualityFilter(vocab_size) with dim=64, hidden=128
    quality_dir = root / "quality"
    quality_dir.mkdir(exist_ok=True)
    filter_checkpoint = quality_dir / "filter.pt"
    generator = torch.Generator().manual_seed(0)
    filter_state = {
        "embed.weight": torch.randn(tokenizer.vocab_size, 64, generator=generator),
        "hidden.weight": torch.randn(128, 64, generator=generator) * 0.1,
        "hidden.bias": torch.zeros(128),
        "head.weight": torch.randn(2, 128, generator=generator) * 0.1,
        "head.bias": torch.zeros(2),
    }
    torch.save(filter_state, filter_checkpoint)

    return {
        "root": root,
        "model": model_dir,
        "tokenizer": model_dir,
        "classifier": model_dir,
        "corpus": corpus_dir,
        "checkpoint": checkpoint,
        "choices": choices,
        "quality_labels": quality,
        "quality_checkpoint": filter_checkpoint,
        "vocab_size": vocab_size,
        "block_size": BLOCK_SIZE,
    }


@dataclass(frozen=True)
class DemoRun:
    """How to run one demo script: `run(assets, tmp)` gives its argv after the script path."""

    argv: Callable[[dict, Path], list[str]]
    needs_cuda: bool
    # what happens on a CPU-only machine (torch 2.13 CPU, transformers 5.23)
    stops: str

    def __call__(self, assets: dict, tmp: Path) -> list[str]:
        return self.argv(assets, tmp)


def _train(assets: dict, tmp: Path) -> list[str]:
    # 40 docs -> 70 blocks of 32 -> 17 batches of 4; eval every 2 steps hits the
    # mid-epoch validation (and its `with torch.no_grad:`) on step 2
    return [
        "--model", str(assets["model"]), "--data", str(assets["corpus"]), "--out", str(tmp / "runs" / "train"),
        "--epochs", "1", "--batch-size", "4", "--block-size", str(BLOCK_SIZE), "--warmup-steps", "1",
        "--log-every", "2", "--eval-every", "2", "--save-every", "3",
    ]  # fmt: skip


def _evaluate(assets: dict, tmp: Path) -> list[str]:
    return [
        str(assets["checkpoint"]), "--base-model", str(assets["model"]), "--data", str(assets["corpus"]),
        "--choices", str(assets["choices"]), "--block-size", str(BLOCK_SIZE), "--batch-size", "4",
        "--out", str(tmp / "results" / "eval.json"),
    ]  # fmt: skip


def _generate(assets: dict, tmp: Path) -> list[str]:
    # batch mode: generate_batch -> model.generate(..., use_cache=False)
    return [str(assets["model"]), "--prompt", "Once upon a time", "--prompt", "Tom went", "--max-new-tokens", "8",
            "--seed", "0"]  # fmt: skip


def _generate_stream(assets: dict, tmp: Path) -> list[str]:
    # stream mode: sample_stream, the hand-written decoding loop
    return [str(assets["model"]), "--prompt", "Once upon a time", "--max-new-tokens", "8", "--stream",
            "--seed", "0"]  # fmt: skip


def _classify(assets: dict, tmp: Path) -> list[str]:
    return [
        "--model", str(assets["classifier"]), "--choices", str(assets["choices"]),
        "--out", str(tmp / "runs" / "classifier"), "--epochs", "1", "--batch-size", "4",
        "--max-length", "128", "--val-fraction", "0.25",
    ]  # fmt: skip


def _quality_train(assets: dict, tmp: Path) -> list[str]:
    return [
        "--tokenizer", str(assets["tokenizer"]), "--max-tokens", "128", "train",
        "--labels", str(assets["quality_labels"]), "--out", str(tmp / "runs" / "quality"),
        "--epochs", "2", "--batch-size", "8",
    ]  # fmt: skip


def _quality_quantize(assets: dict, tmp: Path) -> list[str]:
    # writes filter-int8.pt next to the checkpoint, so quantize a copy under tmp
    import shutil

    checkpoint = tmp / "runs" / "quality-int8" / "filter.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(assets["quality_checkpoint"], checkpoint)
    return [
        "--tokenizer", str(assets["tokenizer"]), "--max-tokens", "128", "quantize", str(checkpoint),
        "--labels", str(assets["quality_labels"]), "--calibration-docs", "32",
    ]  # fmt: skip


def _amp_train(assets: dict, tmp: Path) -> list[str]:
    # 70 blocks / batch 4 = 17 batches: 2 warm-up batches, then one epoch
    return [
        "--model", str(assets["model"]), "--data", str(assets["corpus"]), "--out", str(tmp / "runs" / "amp"),
        "--epochs", "1", "--batch-size", "4", "--block-size", str(BLOCK_SIZE), "--warmup-batches", "2",
    ]  # fmt: skip


def _amp_train_pure_fp16(assets: dict, tmp: Path) -> list[str]:
    return _amp_train(assets, tmp)[:-1] + ["0", "--pure-fp16"]


def _memory(assets: dict, tmp: Path) -> list[str]:
    return ["--model", str(assets["model"])]


DEMO_RUNS: dict[str, DemoRun] = {
    "train": DemoRun(
        _train,
        needs_cuda=True,
        stops='CPU: device = torch.device("cuda") is hard-coded, so model.to(device) (train.py:66) raises '
        "AssertionError('Torch not compiled with CUDA enabled'), after line 65 ran. "
        "GPU (H100): step 2's mid-epoch validation raises TypeError at train.py:44 (`with torch.no_grad:`), "
        "after every other planted line of train.py has run once",
    ),
    "evaluate": DemoRun(_evaluate, needs_cuda=False, stops="runs to completion on CPU"),
    "generate": DemoRun(
        _generate, needs_cuda=False, stops="runs to completion on CPU (float16 weights on CPU) and on a GPU"
    ),
    "classify": DemoRun(
        _classify,
        needs_cuda=True,
        stops='CPU: device = torch.device("cuda") is hard-coded, so model.to(device) (classify.py:74) raises '
        "AssertionError. GPU: runs to completion",
    ),
    "quality": DemoRun(_quality_quantize, needs_cuda=False, stops="runs to completion on CPU (`quantize` mode)"),
    "amp_train": DemoRun(
        _amp_train,
        needs_cuda=True,
        stops='CPU: from_pretrained(...).to("cuda") (amp_train.py:92) raises AssertionError, after line 19 ran. '
        "GPU: the first warm-up batch's scaler.step (amp_train.py:49) raises AssertionError "
        "('Attempted step but _scale is None'), after line 48 ran; line 59 is never reached",
    ),
    "memory": DemoRun(_memory, needs_cuda=False, stops="runs to completion on CPU"),
}

# Other modes of the same scripts, for the planted mistakes the main run does not reach.
# Each value is (script name, run).
DEMO_EXTRA_RUNS: dict[str, tuple[str, DemoRun]] = {
    "generate_stream": (
        "generate",
        DemoRun(_generate_stream, needs_cuda=False, stops="runs to completion on CPU and on a GPU"),
    ),
    "quality_train": ("quality", DemoRun(_quality_train, needs_cuda=False, stops="runs to completion on CPU")),
    "amp_train_pure_fp16": (
        "amp_train",
        DemoRun(
            _amp_train_pure_fp16,
            needs_cuda=True,
            stops='CPU: from_pretrained(...).to("cuda").half() (amp_train.py:68) raises AssertionError before '
            ".half() runs. GPU: runs to completion (last loss nan)",
        ),
    ),
}
