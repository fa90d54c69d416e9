"""Fuzzing (issue 8): programs from hypothesmith and mutated fixtures never crash a
check, never raise out of lintml, and only ever get real codes (LML900 included).

Also checks the core of benchmarks/corpus_check.py offline, on a fake corpus made in
tmp_path (the full run downloads real packages: see benchmarks/README.md)."""

from __future__ import annotations

import importlib.util
import random
import sys
import warnings
from collections import Counter
from pathlib import Path

import hypothesmith
import pytest
from hypothesis import HealthCheck, given, settings

from lintml.config import Config
from lintml.engine import lint_source
from lintml.registry import RULES, SYNTAX_ERROR

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "corpus_check.py"
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")  # compile() of fuzzed programs
ENABLED = Config(select=("LML",)).enabled_codes()  # every rule, the off-by-default ones too
FUZZ = settings(
    max_examples=300,
    derandomize=True,  # the same programs on every run
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def corpus_check():
    spec = importlib.util.spec_from_file_location("lintml_benchmark_corpus_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def assert_sound(text: str) -> list[str]:
    """Check `text` with every rule: no internal error, only real codes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        result = lint_source(text, "fuzzed.py", ENABLED)
    assert result.errors == [], text
    codes = [finding.code for finding in result.findings]
    assert set(codes) <= set(RULES), text
    return codes


@FUZZ
@given(hypothesmith.from_grammar())
def test_hypothesmith_programs_never_crash_a_check(corpus_check, program):
    assert_sound(program)
    # few programs name anything a check looks for, so most are only compiled: after an
    # import preamble LibCST parses them and every check walks them
    assert_sound(corpus_check.PREAMBLE + program)
    # and with torch-flavoured names, so that the checks meet their subjects
    variant = corpus_check.torchify(program, random.Random(len(program)))
    if variant is not None:
        assert_sound(variant)


def test_mutated_fixtures_never_crash_a_check_or_a_fix(corpus_check):
    fuzz = corpus_check.fuzz_mutants(300, seed=0)
    assert fuzz.programs == 300
    assert fuzz.internal == [] and fuzz.unknown_codes == [] and fuzz.fix_breakages == []
    # the mutants reach the checks, not only the parser
    assert fuzz.syntax_errors < 250
    assert fuzz.with_findings > 30 and fuzz.fixed_programs > 10


def test_mutations_are_deterministic_and_change_tokens(corpus_check):
    text = "model.eval()\nx = torch.cat([a, b], dim=1)\n"
    first = [corpus_check.mutate(text, random.Random(seed)) for seed in range(20)]
    assert first == [corpus_check.mutate(text, random.Random(seed)) for seed in range(20)]
    assert all(mutant != text for mutant in first[:5])
    renamed = corpus_check.torchify("def f(a):\n    return a.b(a)\n", random.Random(0))
    assert renamed.startswith(corpus_check.PREAMBLE)
    body = renamed[len(corpus_check.PREAMBLE) :]
    assert body.startswith("def ") and body.count("return ") == 1


# -- benchmarks/corpus_check.py on a fake corpus ------------------------------------------

FIXABLE = "import torch\n\n\ndef evaluate(model, batch):\n    model.eval\n    with torch.no_grad():\n        return model(batch)\n"
CLEAN = "def add(a, b):\n    return a + b\n"


@pytest.fixture
def fake_corpus(tmp_path: Path, corpus_check):
    root = tmp_path / "fakepkg-1.0"
    (root / "fakepkg" / "build").mkdir(parents=True)  # lintml's default excludes would skip it
    (root / "fakepkg" / "fixable.py").write_text(FIXABLE, encoding="utf-8")
    (root / "fakepkg" / "clean.py").write_text(CLEAN, encoding="utf-8")
    (root / "fakepkg" / "build" / "broken.py").write_text("def f(:\n", encoding="utf-8")
    (root / "fakepkg" / "latin.py").write_bytes(b"x = '\xff'\n")  # not UTF-8, no cookie
    (root / "fakepkg" / "data.txt").write_text("not python\n", encoding="utf-8")
    return corpus_check.Corpus("fakepkg", "1.0", root, "made by the test")


def test_check_phase_counts_findings_lml900_and_input_errors(corpus_check, fake_corpus):
    check = corpus_check.check_corpus(fake_corpus)
    assert check.files == 4 and check.checked == 3
    assert check.internal == []
    assert len(check.input) == 1 and "latin.py" in check.input[0]
    assert check.codes() == Counter({"LML204": 1, SYNTAX_ERROR: 1})
    assert check.fixable_files() == {"fakepkg/fixable.py"}


def test_fix_phase_runs_the_cli_twice_and_finds_nothing_unsafe(corpus_check, fake_corpus, tmp_path):
    work = tmp_path / "work"
    copy = corpus_check.copy_corpus(fake_corpus, work)  # both phases read this copy: one project
    assert copy.root == work / "fakepkg" and (work / "pyproject.toml").is_file()
    check = corpus_check.check_corpus(copy)
    assert check.fixable_files() == {"fakepkg/fixable.py"}
    check.corpus = fake_corpus
    fix = corpus_check.fix_corpus(fake_corpus, check, work)
    assert fix.changed == ["fakepkg/fixable.py"]
    assert fix.fixes == Counter({"LML204": 1}) and fix.cli_fixed == 1
    assert (work / "fakepkg" / "fakepkg" / "fixable.py").read_text(encoding="utf-8") == FIXABLE.replace(
        "model.eval\n", "model.eval()\n"
    )
    assert fix.unsafe() == 0
    assert fix.compile_failures == fix.survived == fix.second_fix_changes == fix.untouched_violations == []
    assert fix.cli_exit == [2, 2]  # the undecodable file is an input error in both runs
    assert any("latin.py" in line for line in fix.cli_stderr)
    # the original corpus is never changed
    assert (fake_corpus.root / "fakepkg" / "fixable.py").read_text(encoding="utf-8") == FIXABLE


def test_line_map_follows_inserted_and_replaced_lines(corpus_check):
    before = ["a", "b", "c", "d"]
    after = ["a", "new", "b", "C", "d"]
    mapped = corpus_check.line_map(before, after)
    assert mapped(1, 1) == (1, 1)
    assert mapped(2, 2) == (2, 3)  # with the line inserted just above it (a fix may add one)
    assert mapped(3, 3) == (4, 4)  # replaced: the line that replaced it
    assert mapped(4, 4) == (5, 5)
    assert mapped(2, 4) == (2, 5)
    assert corpus_check.line_map(["a", "b", "c"], ["a", "c"])(2, 2) == (2, 2)  # deleted: where it was


def test_a_fix_that_does_not_take_is_a_survivor(corpus_check, tmp_path):
    config = corpus_check.all_rules_config(tmp_path)
    replay = corpus_check.replay_fixes("model.eval\n", "a.py", tmp_path / "a.py", config)
    assert replay.text == "model.eval()\n" and [f.code for _, f in replay.fixed] == ["LML204"]
    assert corpus_check.survivors(replay) == []
    # as if the fix had left the text as it was
    replay.text, replay.texts, replay.remaining = "model.eval\n", ["model.eval\n"], [f for _, f in replay.fixed]
    assert [fixed.code for fixed, _ in corpus_check.survivors(replay)] == ["LML204"]


def test_main_fuzz_phase_reports_and_exits_0(corpus_check, capsys, tmp_path):
    output = tmp_path / "report.md"
    code = corpus_check.main(["--phases", "fuzz", "--fuzz", "0", "--mutants", "20", "--output", str(output)])
    assert code == 0
    report = capsys.readouterr().out
    assert "| mutated fixtures (token deletions and swaps) | 20 |" in report
    assert "- Internal errors: 0" in report and "- Unsafe fixes: 0" in report
    assert output.read_text(encoding="utf-8") == report
