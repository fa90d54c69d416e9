"""Rule pages (`rules/<CODE>.md`): one per rule, agreeing with the registry, with the
fixed sections, and examples that do what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import lintml
from lintml.config import Config
from lintml.registry import PAGE_SECTIONS, RULES, SYNTAX_ERROR, UNUSED_SUPPRESSION, page, parse_page, rules_dir

ROOT = Path(__file__).resolve().parent.parent
PAGES_DIR = ROOT / "rules"
ALL_RULES = Config(select=("LML",))
CODES = sorted(RULES)


def lint(text: str):
    return lintml.check_source(text, filename="example.py", config=ALL_RULES)


def read_page(code: str):
    return parse_page(code, (PAGES_DIR / f"{code}.md").read_text(encoding="utf-8"))


def test_every_check_has_a_rule_and_every_rule_a_check():
    """The registry's table is written out (so that reading it imports no check);
    every check must be in it once, and every rule but the meta codes a check."""
    from lintml.checks import CHECKS

    check_codes = [check.code for check in CHECKS]
    assert len(check_codes) == len(set(check_codes))
    assert sorted(check_codes) == sorted(code for code, rule in RULES.items() if rule.family != "meta")
    assert sorted(code for code, rule in RULES.items() if rule.family == "meta") == [SYNTAX_ERROR, UNUSED_SUPPRESSION]


@pytest.mark.parametrize("code", [code for code in CODES if RULES[code].family != "meta"])
def test_the_fixes_a_check_offers_have_the_registry_s_safety(code: str):
    findings = [f for f in lint(read_page(code).code_block("Example")) if f.code == code]
    assert findings
    safety = {finding.fix.applicability for finding in findings if finding.fix is not None}
    assert safety == ({RULES[code].fix_safety} if RULES[code].fix_safety else set())


def test_every_rule_has_a_page_and_every_page_a_rule():
    assert rules_dir() == PAGES_DIR  # a checkout reads the pages at its root
    assert sorted(path.stem for path in PAGES_DIR.glob("*.md")) == CODES


@pytest.mark.parametrize("code", CODES)
def test_front_matter_agrees_with_the_registry(code: str):
    rule = RULES[code]
    assert read_page(code).front_matter == {
        "code": code,
        "name": rule.name,
        "family": rule.family,
        "default": "on" if rule.default_enabled else "off",
        "fix": rule.fix_safety.value if rule.fix_safety else "none",
    }


@pytest.mark.parametrize("code", CODES)
def test_page_has_the_title_and_the_six_sections_in_order(code: str):
    rule_page = read_page(code)
    assert rule_page.title == f"{code} {RULES[code].name}"
    assert tuple(rule_page.sections) == PAGE_SECTIONS
    for heading, content in rule_page.sections.items():
        assert content.strip(), f"{code}: section {heading!r} is empty"


@pytest.mark.parametrize("code", CODES)
def test_short_description_is_one_complete_sentence(code: str):
    description = read_page(code).short_description
    assert description[0].isupper() and description.endswith("."), description
    assert "|" not in description  # it goes into the README's Markdown table
    assert 30 <= len(description) <= 250, description


@pytest.mark.parametrize("code", CODES)
def test_example_reports_the_rule(code: str):
    example = read_page(code).code_block("Example")
    assert example.strip()
    findings = lint(example)
    assert code in {finding.code for finding in findings}
    if code == SYNTAX_ERROR:
        with pytest.raises(SyntaxError):
            compile(example, "example.py", "exec")


@pytest.mark.parametrize("code", CODES)
def test_use_instead_reports_nothing(code: str):
    corrected = read_page(code).code_block("Use instead")
    assert corrected.strip()
    compile(corrected, "example.py", "exec")
    assert [(f.line, f.code) for f in lint(corrected)] == []


@pytest.mark.parametrize("code", CODES)
def test_fix_safety_section_matches_the_fix(code: str):
    text = read_page(code).sections["Fix safety"].lower()
    if RULES[code].fix_safety is None:
        assert "no automatic fix" in text
    else:
        assert RULES[code].fix_safety.value in text


def test_the_unused_suppression_example_needs_its_rule_selected():
    example = read_page("LML901").code_block("Example")
    assert lintml.check_source(example, filename="example.py", config=Config()) == []


def test_explain_prints_the_page_without_front_matter():
    result = subprocess.run(
        [sys.executable, "-m", "lintml", "explain", "lml204"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# LML204 mode-method-not-called\n")
    assert "code: LML204" not in result.stdout
    assert result.stdout == page("LML204").text.split("\n---\n", 1)[1].lstrip("\n")
    assert result.stderr == ""


def test_explain_of_an_unknown_code_fails_with_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "lintml", "explain", "LML999"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert "LML999" in result.stderr
