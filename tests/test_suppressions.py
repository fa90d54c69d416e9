"""Suppression comments and LML901 (unused suppression), as the user sees them."""

from __future__ import annotations

import pytest

from helpers import MSG_EVAL, lintml_main, make_project, msg_unused

import lintml
from lintml.config import Config

WITH_901 = Config(extend_select=("LML901",))


def reported(source: str, config: Config = WITH_901) -> list[tuple[int, str]]:
    return [(f.line, f.code) for f in lintml.check_source(source, filename="t.py", config=config)]


@pytest.mark.parametrize(
    "comment",
    [
        "# noqa",
        "# NOQA",
        "#noqa",
        "# noqa: LML204",
        "# noqa:LML204",
        "# noqa: LML103, LML204",
        "# noqa: E501,LML204",
        "# noqa: lml204",
        "# lintml: ignore[LML204]",
        "# lintml: ignore[LML103, LML204]",
        "# explained here  # noqa: LML204",
    ],
)
def test_line_suppressions_silence_the_finding(comment):
    assert reported(f"x = 1\nmodel.eval  {comment}\n", Config()) == []


@pytest.mark.parametrize(
    "comment", ["# noqa: LML103", "# lintml: ignore[LML301]", "# noqa: E501", "# lintml: noqa"]
)
def test_a_suppression_for_other_codes_does_not_silence(comment):
    assert reported(f"x = 1\nmodel.eval  {comment}\n", Config()) == [(2, "LML204")]


def test_a_suppression_only_covers_its_own_line():
    assert reported("model.eval  # noqa: LML204\nmodel.eval\n", Config()) == [(2, "LML204")]


def test_a_hash_inside_a_string_is_not_a_comment():
    source = (
        'label = "# noqa"; model.eval\n'
        "text = '# lintml: ignore[LML204]'; model.train\n"
        'doc = """\n'
        "# lintml: noqa\n"
        '"""\n'
        "model.eval\n"
    )
    assert reported(source, Config()) == [(1, "LML204"), (2, "LML204"), (6, "LML204")]


def test_file_level_noqa_on_its_own_line():
    source = "import torch\n# lintml: noqa\nmodel.eval\nwith torch.no_grad:\n    pass\n"
    assert reported(source, Config()) == []
    # with codes: only those
    source = "import torch\n\n# lintml: noqa: LML204\nmodel.eval\nwith torch.no_grad:\n    pass\n"
    assert reported(source, Config()) == [(5, "LML103")]
    # indented, it is still on its own line
    source = "def f(model):\n    # lintml: noqa\n    model.eval\n"
    assert reported(source, Config()) == []


def test_file_level_noqa_after_code_is_not_file_level():
    source = "model.eval\nx = 1  # lintml: noqa\nmodel.train\n"
    assert reported(source, Config()) == [(1, "LML204"), (3, "LML204")]


def test_unused_suppressions_are_LML901_when_enabled():
    source = (
        "model.eval  # noqa: LML204\n"  # used
        "x = 1  # noqa: LML204\n"  # unused
        "model.eval  # noqa: LML103\n"  # wrong code: finding stays, suppression unused
        "y = 2  # lintml: ignore[LML204, LML301]\n"  # both unused
        "z = 3  # noqa\n"  # bare: may serve other linters, never reported
        "w = 4  # noqa: E501\n"  # another linter's code
        "v = 5  # noqa: LML999\n"  # not a lintml code
        "u = 6  # noqa: LML204  # noqa: LML901\n"  # the LML901 it would get is silenced
        "# lintml: noqa: LML301\n"  # file-level, unused
    )
    findings = lintml.check_source(source, filename="t.py", config=WITH_901)
    assert [(f.line, f.column, f.code, f.message) for f in findings] == [
        (2, 8, "LML901", msg_unused("LML204")),
        (3, 1, "LML204", MSG_EVAL),
        (3, 13, "LML901", msg_unused("LML103")),
        (4, 8, "LML901", msg_unused("LML204, LML301")),
        (7, 8, "LML901", "Unused suppression: LML999 is not a lintml code; remove it from the comment"),
        (9, 1, "LML901", msg_unused("LML301")),
    ]
    # off by default
    assert reported(source, Config()) == [(3, "LML204")]


def test_a_suppression_for_a_rule_that_is_not_selected_is_not_unused():
    config = Config(ignore=("LML204",), extend_select=("LML901",))
    assert reported("model.eval  # noqa: LML204\nx = 1  # noqa: LML204\n", config) == []


def test_LML901_from_the_command_line(tmp_path, capsys, monkeypatch):
    project = make_project(
        tmp_path, {"a.py": "model.eval  # noqa: LML204\nx = 1  # lintml: ignore[LML204]\n"}
    )
    code, out, err = lintml_main(["check", "--output-format", "concise"], project, capsys, monkeypatch)
    assert (code, out, err) == (0, "", "")
    code, out, _ = lintml_main(
        ["check", "--output-format", "concise", "--extend-select", "LML901"], project, capsys, monkeypatch
    )
    assert out.splitlines() == [f"a.py:2:8: LML901 {msg_unused('LML204')}"]
    assert code == 1
