"""Every rule lintml knows: its code, name, family, default, fix safety and page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lintml.checks.amp import ClipBeforeUnscale, Fp16AutocastWithoutGradScaler, GradScalerBypassed
from lintml.checks.base import Check
from lintml.checks.gradients import GradModeNotCalled, InferenceWithoutNoGrad, LossAccumulatedWithGraph
from lintml.checks.hygiene import MissingZeroGrad
from lintml.checks.kvcache import CacheDisabledInConfig, DecodingLoopWithoutCache, GenerateWithoutKvCache
from lintml.checks.loops import ForwardCalledDirectly
from lintml.checks.modes import (
    InferenceWithoutEval,
    ModeMethodNotCalled,
    QuantizeWithoutEval,
    TrainingInEvalMode,
    TrainModeNotRestored,
)
from lintml.checks.precision import Fp16WeightsTrained, HalfDefaultDtype, HalfPrecisionOnCpu, Tf32Enabled
from lintml.findings import Applicability

CHECKS: tuple[type[Check], ...] = (
    InferenceWithoutNoGrad,
    LossAccumulatedWithGraph,
    GradModeNotCalled,
    InferenceWithoutEval,
    TrainModeNotRestored,
    TrainingInEvalMode,
    ModeMethodNotCalled,
    QuantizeWithoutEval,
    GenerateWithoutKvCache,
    CacheDisabledInConfig,
    DecodingLoopWithoutCache,
    HalfDefaultDtype,
    Tf32Enabled,
    HalfPrecisionOnCpu,
    Fp16WeightsTrained,
    Fp16AutocastWithoutGradScaler,
    GradScalerBypassed,
    ClipBeforeUnscale,
    ForwardCalledDirectly,
    MissingZeroGrad,
)

SYNTAX_ERROR = "LML900"
UNUSED_SUPPRESSION = "LML901"

DOCS_URL = "https://github.com/lintml/lintml/blob/main/rules/{code}.md"


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    family: str
    summary: str
    default_enabled: bool
    fix_safety: Applicability | None
    check: type[Check] | None = None

    @property
    def url(self) -> str:
        return DOCS_URL.format(code=self.code)


def _rule_of(check: type[Check]) -> Rule:
    return Rule(
        check.code, check.name, check.family, check.summary, check.default_enabled, check.fix_safety, check
    )


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in sorted(
        [
            *(_rule_of(check) for check in CHECKS),
            Rule(SYNTAX_ERROR, "syntax-error", "meta", "The file could not be parsed", True, None),
            Rule(
                UNUSED_SUPPRESSION,
                "unused-suppression",
                "meta",
                "A suppression comment names a code that reported nothing on its line",
                False,
                None,
            ),
        ],
        key=lambda rule: rule.code,
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
