"""A check that crashes on one file: the rule and the file on stderr, every other file
(and every other rule) still checked and reported, exit status 2 (issue 8)."""

from __future__ import annotations

from helpers import lintml_main, make_project

from lintml.checks.modes import ModeMethodNotCalled

FILES = {
    "a.py": "model.eval\n",
    "b.py": "model.train\n",  # the check crashes on this file only
    "c.py": "optimizer.zero_grad\n",
}
CRASH_LINE = (
    "lintml: internal error: LML204 crashed on b.py (RuntimeError: boom on b.py); "
    "the other rules and files were still checked. Please report this."
)


def crash_on_b(monkeypatch) -> None:
    original = ModeMethodNotCalled.visit_Expr

    def visit_Expr(self, node):
        if self.context.filename == "b.py":
            raise RuntimeError("boom on b.py")
        return original(self, node)

    monkeypatch.setattr(ModeMethodNotCalled, "visit_Expr", visit_Expr)


def test_a_crash_on_one_file_names_rule_and_file_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    crash_on_b(monkeypatch)
    make_project(tmp_path, FILES)
    code, out, err = lintml_main(
        ["check", "--select", "LML204", "--output-format", "concise", "--no-cache", "--jobs", "1"],
        tmp_path,
        capsys,
        monkeypatch,
    )
    assert code == 2
    assert err.splitlines() == [CRASH_LINE]
    # the files before and after the crash are still checked and reported
    lines = out.splitlines()
    assert [line.split(" ")[0:2] for line in lines] == [["a.py:1:1:", "LML204"], ["c.py:1:1:", "LML204"]]


def test_the_other_rules_still_run_on_the_file_that_crashed(tmp_path, capsys, monkeypatch):
    crash_on_b(monkeypatch)
    make_project(tmp_path, {"b.py": "model.train\nmodel.generate(x, use_cache=False)\n"})
    code, out, err = lintml_main(
        ["check", "--select", "LML204,LML301", "--output-format", "concise", "--no-cache"], tmp_path, capsys, monkeypatch
    )
    assert code == 2
    assert err.splitlines() == [CRASH_LINE]
    assert [line.split(" ")[1] for line in out.splitlines()] == ["LML301"]


def test_a_crash_while_fixing_leaves_the_other_files_fixed(tmp_path, capsys, monkeypatch):
    crash_on_b(monkeypatch)
    make_project(tmp_path, FILES)
    code, out, err = lintml_main(
        ["check", "--select", "LML204", "--fix", "--output-format", "concise", "--no-cache"],
        tmp_path,
        capsys,
        monkeypatch,
    )
    assert code == 2
    assert err.splitlines() == [CRASH_LINE]
    assert (tmp_path / "a.py").read_text() == "model.eval()\n"
    assert (tmp_path / "b.py").read_text() == "model.train\n"  # nothing reported there, nothing fixed
    assert (tmp_path / "c.py").read_text() == "optimizer.zero_grad()\n"
    assert out == ""


def test_a_crash_with_the_cache_is_not_stored_and_crashes_again(tmp_path, capsys, monkeypatch):
    crash_on_b(monkeypatch)
    make_project(tmp_path, FILES)
    args = ["check", "--select", "LML204", "--output-format", "concise", "--cache-dir", str(tmp_path / "cache")]
    first = lintml_main(args, tmp_path, capsys, monkeypatch)
    second = lintml_main(args, tmp_path, capsys, monkeypatch)
    assert first == second
    assert first[0] == 2 and first[2].splitlines() == [CRASH_LINE]
