"""Golden fixtures: every `fixtures/rules/<CODE>/*.py` reports exactly the lines it marks.

A reported line carries a trailing `# error: LML204` (or `# error: LML204, LML901`); a file
without markers must report nothing. Every rule is selected, the off-by-default ones too,
so a fixture also proves that no other rule fires on it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import lintml
from lintml.config import Config
from lintml.fixes import fix_source
from lintml.registry import RULES

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "rules"
FIXTURE_FILES = sorted(FIXTURES.rglob("*.py"))
ALL_RULES = Config(select=("LML",))
MARKER = re.compile(r"#\s*error:\s*(LML\d+(?:\s*,\s*LML\d+)*)")


def lint(text: str, filename: str = "example.py"):
    return lintml.check_source(text, filename=filename, config=ALL_RULES)


def fix(text: str, filename: str = "example.py") -> str:
    return fix_source(text, lambda source: lint(source, filename), unsafe=True).source


def relative(path: Path) -> str:
    return path.relative_to(FIXTURES).as_posix()


def read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def marked(text: str) -> Counter[tuple[int, str]]:
    """(line, code) of every marker; a code marked twice on a line is expected twice."""
    expected: Counter[tuple[int, str]] = Counter()
    for number, line in enumerate(text.splitlines(), start=1):
        for match in MARKER.finditer(line):
            expected.update((number, code.strip()) for code in match.group(1).split(","))
    return expected


def reported(findings) -> Counter[tuple[int, str]]:
    return Counter((finding.line, finding.code) for finding in findings)


def test_every_rule_has_a_fixture_folder_that_shows_it_firing():
    folders = {path.parent.name for path in FIXTURE_FILES}
    assert set(RULES) <= folders
    for folder in folders:
        files = [path for path in FIXTURE_FILES if path.parent.name == folder]
        codes = {code for path in files for _, code in marked(read(path))}
        assert folder in codes, f"no fixture in {folder}/ marks a {folder} finding"


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=relative)
def test_fixture_reports_exactly_its_marked_lines(path: Path):
    text = read(path)
    findings = lint(text, filename=relative(path))
    assert set(reported(findings)) == set(marked(text))
    # and no mistake is reported twice
    assert reported(findings) == marked(text)


def test_markers_are_parsed():
    text = "a  # error: LML204\nb\nc  # noqa: LML204  # error: LML204, LML901,LML901\n"
    assert marked(text) == Counter({(1, "LML204"): 1, (3, "LML204"): 1, (3, "LML901"): 2})


def test_a_file_level_suppression_that_silences_nothing_is_reported():
    # a marker cannot sit on a file-level `# lintml: noqa: ...` line (it must be the
    # whole comment), so this case is spelled out here
    text = "# lintml: noqa: LML301\nimport torch\n\nmodel.eval\n"
    assert [(f.line, f.column, f.code) for f in lint(text)] == [(1, 1, "LML901"), (4, 1, "LML204")]


def test_unused_noqa_is_reported_at_the_comment():
    text = "model.eval()  # noqa: LML204\n"
    [finding] = lint(text)
    assert (finding.code, finding.line, finding.column) == ("LML901", 1, 15)
    assert "LML204" in finding.message


# -- fixes ---------------------------------------------------------------------------

FIXABLE_FIXTURES = [path for path in FIXTURE_FILES if any(f.fix for f in lint(read(path), relative(path)))]


def test_some_fixtures_have_fixes():
    assert {path.parent.name for path in FIXABLE_FIXTURES} >= {"LML103", "LML204", "LML301"}


@pytest.mark.parametrize("path", FIXABLE_FIXTURES, ids=relative)
def test_fixing_a_fixture_leaves_only_the_unfixable_findings(path: Path):
    text = read(path)
    before = lint(text, relative(path))
    fixed = fix(text, relative(path))
    compile(fixed, relative(path), "exec")
    after = lint(fixed, relative(path))
    assert not any(finding.fix for finding in after)
    # what is left is what had no fix; a fix may also settle a finding without one (one
    # mistake, two findings: `optimizer.zero_grad` is LML204 and LML501, clarification 13)
    assert Counter(f.code for f in after) <= Counter(f.code for f in before if f.fix is None)
    assert fix(fixed, relative(path)) == fixed


def test_cli_fix_on_a_copy_of_the_fixtures_is_idempotent(tmp_path):
    copy = tmp_path / "rules"
    shutil.copytree(FIXTURES, copy)
    command = [sys.executable, "-m", "lintml", "check", "--select", "LML", "--fix", "--unsafe-fixes", "."]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert first.returncode == 1, first.stderr  # unfixable findings and syntax errors remain
    assert "Traceback" not in first.stderr
    fixed = {path: path.read_bytes() for path in copy.rglob("*.py")}
    for path in FIXABLE_FIXTURES:
        # the command line writes exactly what the API's fix gives
        assert fixed[copy / relative(path)] == fix(read(path), relative(path)).encode(), relative(path)
        assert fixed[copy / relative(path)] != path.read_bytes(), relative(path)
    for path in sorted(set(FIXTURE_FILES) - set(FIXABLE_FIXTURES)):
        assert fixed[copy / relative(path)] == path.read_bytes(), relative(path)
    second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert second.returncode == 1, second.stderr
    assert {path: path.read_bytes() for path in copy.rglob("*.py")} == fixed


# -- exact bytes of fixed files ------------------------------------------------------

EXACT_FIXES = {
    "with-no-grad": (
        "import torch\n\nwith torch.no_grad:\n    y = model(x)\n",
        "import torch\n\nwith torch.no_grad():\n    y = model(x)\n",
    ),
    "with-alias-and-two-items": (
        "from torch import inference_mode as im\n\nwith im, open(path) as f:\n    pass\n",
        "from torch import inference_mode as im\n\nwith im(), open(path) as f:\n    pass\n",
    ),
    "set-grad-enabled-has-no-fix": (
        "import torch\n\ntorch.set_grad_enabled()\n",
        "import torch\n\ntorch.set_grad_enabled()\n",
    ),
    "mode-methods": (
        "model.train\nfor x in loader:\n    optimizer.zero_grad  # reset\n    loss.backward\n",
        "model.train()\nfor x in loader:\n    optimizer.zero_grad()  # reset\n    loss.backward()\n",
    ),
    "generate-last-argument": (
        "model.generate(a, use_cache=False)\n",
        "model.generate(a)\n",
    ),
    "generate-first-argument": (
        "model.generate(use_cache=False, a=1)\n",
        "model.generate(a=1)\n",
    ),
    "generate-only-argument-trailing-comma": (
        "model.generate(use_cache=False,)\n",
        "model.generate()\n",
    ),
    "generate-before-double-star": (
        "model.generate(use_cache=False, **kw)\n",
        "model.generate(**kw)\n",
    ),
    "generate-last-argument-trailing-comma": (
        "model.generate(a, use_cache=False, )\n",
        "model.generate(a )\n",
    ),
    "generate-middle-argument": (
        "model.generate(**inputs, use_cache=False, max_new_tokens=20)\n",
        "model.generate(**inputs, max_new_tokens=20)\n",
    ),
    "generate-multi-line": (
        "out = model.generate(\n"
        "    **inputs,\n"
        "    max_new_tokens=20,  # budget\n"
        "    use_cache=False,  # debugging\n"
        ")\n",
        "out = model.generate(\n"
        "    **inputs,\n"
        "    max_new_tokens=20,  # budget\n"
        ")\n",
    ),
    "generate-multi-line-keeps-the-next-lines-comment": (
        "out = model.generate(\n"
        "    input_ids,\n"
        "    use_cache=False,\n"
        "    # sampling\n"
        "    do_sample=True)\n",
        "out = model.generate(\n"
        "    input_ids,\n"
        "    # sampling\n"
        "    do_sample=True)\n",
    ),
    "generate-hanging-indent": (
        "out = model.generate(input_ids,\n"
        "                     use_cache=False)\n",
        "out = model.generate(input_ids)\n",
    ),
    "generate-comment-before-last-argument": (
        "out = model.generate(input_ids,  # prompt\n"
        "                     use_cache=False)\n",
        "out = model.generate(input_ids,  # prompt\n"
        "                     )\n",
    ),
    "generation-config-call": (
        "from transformers import GenerationConfig\n"
        "config = GenerationConfig(max_new_tokens=8, use_cache=False)\n",
        "from transformers import GenerationConfig\n"
        "config = GenerationConfig(max_new_tokens=8)\n",
    ),
    "generation-config-attribute": (
        "model.generation_config.use_cache = False\n",
        "model.generation_config.use_cache = True\n",
    ),
    "crlf": (
        "import torch\r\n"
        "with torch.no_grad:\r\n"
        "    model.eval\r\n"
        "    out = model.generate(\r\n"
        "        **inputs,\r\n"
        "        use_cache=False,\r\n"
        "    )\r\n",
        "import torch\r\n"
        "with torch.no_grad():\r\n"
        "    model.eval()\r\n"
        "    out = model.generate(\r\n"
        "        **inputs,\r\n"
        "    )\r\n",
    ),
}


@pytest.mark.parametrize(("before", "after"), EXACT_FIXES.values(), ids=EXACT_FIXES.keys())
def test_fix_gives_exact_text(before: str, after: str):
    assert fix(before) == after
    compile(after, "fixed.py", "exec")


def test_cli_fix_keeps_crlf_line_ends(tmp_path):
    before, after = EXACT_FIXES["crlf"]
    target = tmp_path / "generate.py"
    target.write_bytes(before.encode())
    command = [sys.executable, "-m", "lintml", "check", "--fix", str(target.name)]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert target.read_bytes() == after.encode()
