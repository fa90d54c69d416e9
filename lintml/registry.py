"""Every rule lintml knows: its code, name, family, default, fix safety and page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lintml.findings import Applicability

SYNTAX_ERROR = "LML900"
UNUSED_SUPPRESSION = "LML901"

DOCS_URL = "https://github.com/lintml/lintml/blob/main/rules/{code}.md"


@dataclass(frozen=True)
class Rule:
    code: str
    name: str  # kebab-case, stable
    family: str
    summary: str  # one line: what is reported
    default_enabled: bool
    fix_safety: Applicability | None

    @property
    def url(self) -> str:
        return DOCS_URL.format(code=self.code)


# The table every command reads. It names no check class, so that configuration, the
# result cache and the outputs work without importing the checks (and LibCST): a run
# whose files all come from the cache starts in tens of milliseconds. The checks
# (lintml.checks.CHECKS) each name their code; tests/test_rule_pages.py keeps the two equal.
RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule("LML101", "inference-without-no-grad", "gradients", "A model runs forward for inference with autograd on", True, Applicability.UNSAFE),
        Rule("LML102", "loss-accumulated-with-graph", "gradients", "A loss tensor that carries its graph is accumulated across loop iterations", True, Applicability.SAFE),
        Rule("LML103", "grad-mode-not-called", "gradients", "A grad-mode context manager is used without being called", True, Applicability.SAFE),
        Rule("LML201", "inference-without-eval", "train/eval mode", "A model runs inference while in training mode", True, Applicability.UNSAFE),
        Rule("LML202", "train-mode-not-restored", "train/eval mode", "A training loop puts the model in eval mode and never back in training mode", True, Applicability.SAFE),
        Rule("LML203", "training-in-eval-mode", "train/eval mode", "A model is trained while in eval mode", True, None),
        Rule("LML204", "mode-method-not-called", "train/eval mode", "A side-effect method (`eval`, `train`, `zero_grad`, `step`, `backward`) is named but not called", True, Applicability.SAFE),
        Rule("LML205", "quantize-without-eval", "train/eval mode", "Post-training quantization is applied to a model not in eval mode", True, None),
        Rule("LML301", "generate-without-kv-cache", "KV cache", "Generation runs with `use_cache=False`", True, Applicability.SAFE),
        Rule("LML302", "cache-disabled-in-config", "KV cache", "The model's config keeps `use_cache=False` into generation, inference or saving", True, None),
        Rule("LML303", "decoding-loop-without-cache", "KV cache", "A decoding loop re-runs the model on the whole growing sequence without `past_key_values`", True, None),
        Rule("LML401", "half-precision-on-cpu", "precision", "A model is converted to float16 while the file puts it on the CPU", True, None),
        Rule("LML402", "fp16-autocast-without-grad-scaler", "precision", "A loss computed under float16 autocast is backpropagated without a GradScaler", True, None),
        Rule("LML403", "fp16-weights-trained", "precision", "An optimizer updates the weights of a model converted to float16", True, None),
        Rule("LML404", "half-default-dtype", "precision", "`torch.set_default_dtype` is set to a 16-bit float type", True, None),
        Rule("LML405", "grad-scaler-bypassed", "precision", "A GradScaler exists but the loss, the optimizer step or the update bypasses it", True, None),
        Rule("LML406", "clip-before-unscale", "precision", "Gradients are clipped before `scaler.unscale_(optimizer)`", True, None),
        Rule("LML407", "tf32-enabled", "precision", "TF32 is enabled for float32 matmuls or convolutions", False, None),
        Rule("LML501", "missing-zero-grad", "training-loop hygiene", "A training loop steps an optimizer but never zeroes its gradients", True, None),
        Rule("LML502", "forward-called-directly", "training-loop hygiene", "`model.forward(...)` is called directly instead of `model(...)`, skipping hooks", True, Applicability.SAFE),
        Rule("LML900", "syntax-error", "meta", "The file could not be parsed", True, None),
        Rule("LML901", "unused-suppression", "meta", "A suppression comment names a code that reported nothing on its line", False, None),
    )
}


def codes_matching(selector: str) -> list[str]:
    """The codes a selector (`LML204`, `LML2`, `LML`) picks out."""
    return [code for code in RULES if code.startswith(selector)]


# -- rule pages ----------------------------------------------------------------------

PAGE_SECTIONS = (
    "What it does",
    "Why is this bad?",
    "Example",
    "Use instead",
    "Fix safety",
    "Runtime confirmation",
)


@dataclass(frozen=True)
class RulePage:
    code: str
    front_matter: dict[str, str]
    title: str
    sections: dict[str, str]
    text: str

    def code_block(self, section: str) -> str:
        """The first ```python block of a section."""
        match = re.search(r"```python\n(.*?)```", self.sections.get(section, ""), re.S)
        return match.group(1) if match else ""

    @property
    def short_description(self) -> str:
        """The first sentence of "What it does"."""
        what = " ".join(self.sections.get("What it does", "").split())
        match = re.match(r"(.+?[.!?])(\s|$)", what)
        return match.group(1) if match else what


def rules_dir() -> Path:
    """Installed wheels carry the pages inside the package; a checkout has them at its root."""
    packaged = Path(__file__).parent / "rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).parent.parent / "rules"


def parse_page(code: str, text: str) -> RulePage:
    front: dict[str, str] = {}
    body = text
    if text.startswith("---\n"):
        head, _, body = text[4:].partition("\n---\n")
        for line in head.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                front[key.strip()] = value.strip()
    title_match = re.search(r"^# (.+)$", body, re.M)
    sections: dict[str, str] = {}
    parts = re.split(r"^## (.+)$", body, flags=re.M)
    for heading, content in zip(parts[1::2], parts[2::2]):
        sections[heading.strip()] = content.strip("\n")
    return RulePage(code, front, title_match.group(1) if title_match else code, sections, text)


@lru_cache(maxsize=None)
def page(code: str) -> RulePage | None:
    path = rules_dir() / f"{code}.md"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    return parse_page(code, text)
