"""Helpers for the runtime tests: run a snippet as a real file under `watch()`, find its
marked lines, build tiny real models."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import torch

from lintml.runtime.watcher import Watch

MARK = re.compile(r"#\s*\[(\w+)\]")

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


def marks(source: str) -> dict[str, int]:
    """`# [name]` markers -> line numbers (1-based) in the dedented source."""
    found = {}
    for number, line in enumerate(textwrap.dedent(source).splitlines(), start=1):
        match = MARK.search(line)
        if match:
            found[match.group(1)] = number
    return found


def run_watched(tmp_path: Path, source: str, codes=None, name: str = "snippet.py", **globals_):
    """Write `source` to a file, run it under a fresh watch, return (watch, namespace)."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
    namespace = {"__name__": "__snippet__", "__file__": str(path), **globals_}
    with Watch(codes) as watcher:
        exec(code, namespace)
    return watcher, namespace


def verdicts(watcher) -> set[tuple[int, str, str]]:
    """{(line, code, status)} of every observation."""
    return {(o.line, o.code, o.status) for o in watcher.observations}


def confirmed(watcher) -> set[tuple[int, str]]:
    return {(o.line, o.code) for o in watcher.observations if o.confirmed}


def tiny_gpt2(device: str = "cpu", seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=128, n_positions=128,
                        bos_token_id=0, eos_token_id=1, pad_token_id=1)
    return GPT2LMHeadModel(config).to(device)
