"""`--fix`, `--unsafe-fixes` and `--diff`: the exact bytes that end up on disk or stdout."""

from __future__ import annotations

import os
import stat

import pytest

from helpers import MSG_SET_GRAD, SAMPLE, SAMPLE_FIXED, lintml_main, make_project, run_lintml

from lintml.findings import Applicability, Edit, Finding, Fix, Position
from lintml.fixes import apply_edits
from lintml.output import Report, render

BEFORE = """\
import torch
from transformers import GenerationConfig


def run(model, optimizer, loss, batch):
    model.train
    optimizer.zero_grad; loss.backward
    optimizer.step
    with torch.no_grad, torch.inference_mode:
        model.eval
        out = model.generate(**batch, use_cache=False, max_new_tokens=8)
        out = model.generate(
            batch,
            use_cache=False,
        )
        out = model.generate(use_cache=False, max_new_tokens=8)
    config = GenerationConfig(use_cache=False)
    model.generation_config.use_cache = False
    torch.set_grad_enabled()
    return out
"""

AFTER = """\
import torch
from transformers import GenerationConfig


def run(model, optimizer, loss, batch):
    model.train()
    optimizer.zero_grad(); loss.backward()
    optimizer.step()
    with torch.no_grad(), torch.inference_mode():
        model.eval()
        out = model.generate(**batch, max_new_tokens=8)
        out = model.generate(
            batch,
        )
        out = model.generate(max_new_tokens=8)
    config = GenerationConfig()
    model.generation_config.use_cache = True
    torch.set_grad_enabled()
    return out
"""


def check(project, capsys, monkeypatch, *args):
    return lintml_main(["check", *args], project, capsys, monkeypatch)


def test_fix_writes_the_exact_fixed_file(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"train.py": BEFORE})
    target = project / "train.py"
    target.chmod(0o754)
    before_listing = sorted(os.listdir(project))

    code, out, err = check(project, capsys, monkeypatch, "--fix")

    assert target.read_bytes() == AFTER.encode()
    # what is left is reported; the one finding without a fix keeps the exit code at 1
    assert out.split("\n") == [
        f"train.py:18:5: LML103 {MSG_SET_GRAD}",
        "   |",
        "18 |     torch.set_grad_enabled()",
        "   |     ^^^^^^^^^^^^^^^^^^^^^^^^",
        "   |",
        "",
        "Fixed 12 findings. Found 1 finding.",
        "",
    ]
    assert (code, err) == (1, "")
    # written atomically: no temporary file left next to it, the mode kept, and it parses
    assert sorted(os.listdir(project)) == before_listing
    assert stat.S_IMODE(target.stat().st_mode) == 0o754
    compile(target.read_text(), str(target), "exec")

    # re-checking no longer reports what was fixed
    code, out, _ = check(project, capsys, monkeypatch, "--output-format", "concise")
    assert out.splitlines() == [f"train.py:18:5: LML103 {MSG_SET_GRAD}"]
    assert code == 1


def test_fix_twice_changes_nothing_the_second_time(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"eval.py": SAMPLE, "clean.py": "x = 1\n"})
    target = project / "eval.py"
    code, out, _ = check(project, capsys, monkeypatch, "--fix", "--output-format", "concise")
    assert target.read_text(encoding="utf-8") == SAMPLE_FIXED
    assert out.splitlines() == [f"eval.py:8:5: LML103 {MSG_SET_GRAD}"]
    first = target.stat()
    clean_inode = (project / "clean.py").stat().st_ino

    code, out, _ = check(project, capsys, monkeypatch, "--fix", "--output-format", "concise")
    second = target.stat()
    assert target.read_text(encoding="utf-8") == SAMPLE_FIXED
    assert out.splitlines() == [f"eval.py:8:5: LML103 {MSG_SET_GRAD}"]
    # not even rewritten: the same inode (an atomic rewrite would replace it)
    assert (second.st_ino, second.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert (project / "clean.py").stat().st_ino == clean_inode


def test_fix_everything_exits_0(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": "model.eval\nmodel.train\n"})
    code, out, err = check(project, capsys, monkeypatch, "--fix")
    assert (project / "a.py").read_text() == "model.eval()\nmodel.train()\n"
    assert (code, out, err) == (0, "Fixed 2 findings. No findings.\n", "")


@pytest.mark.parametrize(
    "before, after",
    [
        # a UTF-8 BOM and CRLF line ends
        (
            b"\xef\xbb\xbfimport torch\r\nwith torch.no_grad:\r\n    model.eval\r\n",
            b"\xef\xbb\xbfimport torch\r\nwith torch.no_grad():\r\n    model.eval()\r\n",
        ),
        # CRLF alone, with a multi-byte character before the fix on the same line
        (
            "s = 'é'; model.eval\r\nout = m.generate(x, use_cache=False)\r\n".encode(),
            "s = 'é'; model.eval()\r\nout = m.generate(x)\r\n".encode(),
        ),
        # a BOM alone
        (b"\xef\xbb\xbfmodel.eval\n", b"\xef\xbb\xbfmodel.eval()\n"),
        # a coding cookie: written back in that encoding
        (
            b"# -*- coding: latin-1 -*-\ns = '\xe9t\xe9'; model.eval\n",
            b"# -*- coding: latin-1 -*-\ns = '\xe9t\xe9'; model.eval()\n",
        ),
        # no newline at the end of the file
        (b"model.eval", b"model.eval()"),
    ],
    ids=["bom-crlf", "crlf-unicode", "bom", "latin-1", "no-final-newline"],
)
def test_fix_keeps_bom_line_ends_and_encoding(tmp_path, capsys, monkeypatch, before, after):
    project = make_project(tmp_path, {"a.py": before})
    code, _, _ = check(project, capsys, monkeypatch, "--fix")
    assert (project / "a.py").read_bytes() == after
    assert code == 0


def test_unsafe_fixes_flag_is_accepted(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"eval.py": SAMPLE})
    code, _, _ = check(project, capsys, monkeypatch, "--fix", "--unsafe-fixes")
    assert (project / "eval.py").read_text(encoding="utf-8") == SAMPLE_FIXED
    assert code == 1


def _finding(applicability):
    return Finding(
        "LML204",
        "message",
        "a.py",
        Position(1, 1),
        Position(1, 11),
        Fix("Call it", (Edit(Position(1, 11), Position(1, 11), "()"),), applicability),
        noqa_line=1,
    )


def test_unsafe_fixes_only_with_the_flag():
    unsafe = _finding(Applicability.UNSAFE)
    assert apply_edits("model.eval\n", [unsafe], unsafe=False) == ("model.eval\n", [])
    assert apply_edits("model.eval\n", [unsafe], unsafe=True) == ("model.eval()\n", [unsafe])
    safe = _finding(Applicability.SAFE)
    assert apply_edits("model.eval\n", [safe], unsafe=False) == ("model.eval()\n", [safe])
    summary = render("concise", Report([unsafe])), render("full", Report([unsafe], sources={"a.py": "model.eval\n"}))
    assert summary[1].splitlines()[-1] == "Found 1 finding. 1 more can be fixed with `--fix --unsafe-fixes`."
    marked = render("full", Report([unsafe], sources={"a.py": "model.eval\n"}, unsafe_fixes=True))
    assert marked.splitlines()[0] == "a.py:1:1: LML204 [*] message"
    assert marked.splitlines()[-1] == "Found 1 finding (1 fixable with `--fix`)."


# -- --diff --------------------------------------------------------------------------------


def test_diff_prints_a_unified_diff_and_changes_nothing(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"src/eval.py": SAMPLE, "src/ok.py": "x = 1\n"})
    target = project / "src" / "eval.py"
    before = target.stat()
    code, out, err = check(project, capsys, monkeypatch, "--diff")
    assert out.split("\n") == [
        "--- a/src/eval.py",
        "+++ b/src/eval.py",
        "@@ -2,9 +2,9 @@",
        " ",
        " ",
        " def evaluate(model, batch):",
        "-    model.eval",
        "-    with torch.no_grad:",
        "-        out = model.generate(batch, use_cache=False)",
        "+    model.eval()",
        "+    with torch.no_grad():",
        "+        out = model.generate(batch)",
        "     torch.set_grad_enabled()",
        '-    label = "état 日本"; model.train',
        '+    label = "état 日本"; model.train()',
        "     return out",
        "",
    ]
    assert (code, err) == (1, "")
    assert target.read_text(encoding="utf-8") == SAMPLE
    assert target.stat().st_mtime_ns == before.st_mtime_ns

    code, out, _ = check(project, capsys, monkeypatch, "--diff", "--exit-zero")
    assert code == 0 and out.startswith("--- a/src/eval.py\n")


def test_diff_with_nothing_to_fix(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": "import torch\ntorch.set_grad_enabled()\n"})
    code, out, _ = check(project, capsys, monkeypatch, "--diff")
    assert (code, out) == (0, "")


# -- standard input ----------------------------------------------------------------------


def test_fix_from_stdin_prints_the_fixed_code(tmp_path):
    project = make_project(tmp_path, {})
    result = run_lintml("check", "--fix", "-", "--stdin-filename", "eval.py", cwd=project, stdin=SAMPLE)
    assert result.stdout == SAMPLE_FIXED
    assert result.stderr.splitlines()[-1] == "Fixed 4 findings. Found 1 finding."
    assert result.returncode == 1
    assert not (project / "eval.py").exists()


def test_fix_from_stdin_reports_on_stderr_with_the_fixed_text(tmp_path):
    project = make_project(tmp_path, {})
    source = "import torch\nmodel.eval; torch.set_grad_enabled()\n"
    result = run_lintml("check", "--fix", "-", "--stdin-filename", "eval.py", cwd=project, stdin=source)
    assert result.stdout == "import torch\nmodel.eval(); torch.set_grad_enabled()\n"
    # the snippet shows the line as fixed, the caret under what is left
    assert result.stderr.split("\n") == [
        f"eval.py:2:15: LML103 {MSG_SET_GRAD}",
        "  |",
        "2 | model.eval(); torch.set_grad_enabled()",
        "  |               ^^^^^^^^^^^^^^^^^^^^^^^^",
        "  |",
        "",
        "Fixed 1 finding. Found 1 finding.",
        "",
    ]
    assert result.returncode == 1


def test_fix_from_stdin_keeps_the_bytes(tmp_path):
    project = make_project(tmp_path, {})
    result = run_lintml("check", "--fix", "-", cwd=project, stdin=b"\xef\xbb\xbfx = 1\r\nmodel.eval\r\n")
    assert result.stdout_bytes == b"\xef\xbb\xbfx = 1\r\nmodel.eval()\r\n"
    assert result.returncode == 0
    # nothing to fix: the input comes back unchanged
    result = run_lintml("check", "--fix", "-", cwd=project, stdin=b"x = 1\r\n")
    assert (result.stdout_bytes, result.returncode) == (b"x = 1\r\n", 0)


def test_diff_from_stdin(tmp_path):
    project = make_project(tmp_path, {})
    result = run_lintml("check", "--diff", "-", cwd=project, stdin="x = 1\nmodel.eval\n")
    assert result.stdout.splitlines() == [
        "--- a/<stdin>",
        "+++ b/<stdin>",
        "@@ -1,2 +1,2 @@",
        " x = 1",
        "-model.eval",
        "+model.eval()",
    ]
    assert result.returncode == 1
