"""`--output-format full | concise | json | sarif | github`: exactly what a person or a
tool reads. Columns are 1-based (in characters) everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from helpers import (
    MSG_EVAL,
    MSG_GENERATE,
    MSG_NO_GRAD,
    MSG_SET_GRAD,
    MSG_TRAIN,
    SAMPLE,
    SAMPLE_FINDINGS,
    concise_lines,
    lintml_main,
    make_project,
    run_lintml,
)

from lintml.registry import RULES, page

SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "proj", {"src/train.py": SAMPLE})


def render(project, capsys, monkeypatch, fmt, *args, cwd=None):
    return lintml_main(["check", "--output-format", fmt, *args], cwd or project, capsys, monkeypatch)


def test_full_is_the_default(project, capsys, monkeypatch):
    code, out, err = lintml_main(["check"], project, capsys, monkeypatch)
    assert out.split("\n") == [
        f"src/train.py:5:5: LML204 [*] {MSG_EVAL}",
        "  |",
        "5 |     model.eval",
        "  |     ^^^^^^^^^^",
        "  |",
        "",
        f"src/train.py:6:10: LML103 [*] {MSG_NO_GRAD}",
        "  |",
        "6 |     with torch.no_grad:",
        "  |          ^^^^^^^^^^^^^",
        "  |",
        "",
        f"src/train.py:7:37: LML301 [*] {MSG_GENERATE}",
        "  |",
        "7 |         out = model.generate(batch, use_cache=False)",
        "  |                                     ^^^^^^^^^^^^^^^",
        "  |",
        "",
        f"src/train.py:8:5: LML103 {MSG_SET_GRAD}",
        "  |",
        "8 |     torch.set_grad_enabled()",
        "  |     ^^^^^^^^^^^^^^^^^^^^^^^^",
        "  |",
        "",
        f"src/train.py:9:24: LML204 [*] {MSG_TRAIN}",
        "  |",
        '9 |     label = "état 日本"; model.train',
        # the caret sits under `model.train` in a terminal: 日 and 本 take two cells each
        "  |                          ^^^^^^^^^^^",
        "  |",
        "",
        "Found 5 findings (4 fixable with `--fix`).",
        "",
    ]
    assert (code, err) == (1, "")


def test_full_when_clean(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": "model.eval()\n"})
    code, out, _ = lintml_main(["check", "--output-format", "full"], project, capsys, monkeypatch)
    assert (code, out) == (0, "All checks passed!\n")


def test_concise(project, capsys, monkeypatch):
    code, out, _ = render(project, capsys, monkeypatch, "concise")
    assert out.splitlines() == concise_lines("src/train.py")
    assert code == 1


def test_github(project, capsys, monkeypatch):
    code, out, _ = render(project, capsys, monkeypatch, "github")
    assert out.splitlines() == [
        f"::warning file=src/train.py,line=5,col=5,endLine=5,endColumn=15,title=LML204::{MSG_EVAL}",
        f"::warning file=src/train.py,line=6,col=10,endLine=6,endColumn=23,title=LML103::{MSG_NO_GRAD}",
        f"::warning file=src/train.py,line=7,col=37,endLine=7,endColumn=52,title=LML301::{MSG_GENERATE}",
        f"::warning file=src/train.py,line=8,col=5,endLine=8,endColumn=29,title=LML103::{MSG_SET_GRAD}",
        f"::warning file=src/train.py,line=9,col=24,endLine=9,endColumn=35,title=LML204::{MSG_TRAIN}",
    ]
    assert code == 1


def test_github_syntax_error_is_an_error_annotation(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"bad.py": "x = (\n"})
    _, out, _ = lintml_main(["check", "--output-format", "github"], project, capsys, monkeypatch)
    assert out.startswith("::error file=bad.py,line=1,col=5,endLine=1,endColumn=5,title=LML900::Cannot parse this file: ")


# -- JSON: Ruff's shape -------------------------------------------------------------------


def loc(row, column):
    return {"column": column, "row": row}


def test_json_has_ruffs_shape(project, capsys, monkeypatch):
    code, out, _ = render(project, capsys, monkeypatch, "json")
    data = json.loads(out)
    filename = str(project / "src" / "train.py")
    assert isinstance(data, list) and len(data) == 5
    for item in data:
        assert sorted(item) == [
            "cell", "code", "end_location", "filename", "fix", "location", "message", "noqa_row", "url",
        ]
        assert item["filename"] == filename
        assert item["cell"] is None
    assert data[0] == {
        "cell": None,
        "code": "LML204",
        "end_location": loc(5, 15),
        "filename": filename,
        "fix": {
            "applicability": "safe",
            "edits": [{"content": "()", "end_location": loc(5, 15), "location": loc(5, 15)}],
            "message": "Call `model.eval()`",
        },
        "location": loc(5, 5),
        "message": MSG_EVAL,
        "noqa_row": 5,
        "url": "https://github.com/lintml/lintml/blob/main/rules/LML204.md",
    }
    # the edit removes `, use_cache=False` (from the end of `batch`)
    assert data[2]["fix"] == {
        "applicability": "safe",
        "edits": [{"content": "", "end_location": loc(7, 52), "location": loc(7, 35)}],
        "message": "Remove `use_cache=False`",
    }
    # no fix: null
    assert data[3]["code"] == "LML103" and data[3]["fix"] is None
    assert [(d["location"]["row"], d["location"]["column"], d["code"], d["message"]) for d in data] == SAMPLE_FINDINGS
    assert code == 1


def test_json_when_clean_is_an_empty_list(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": "x = 1\n"})
    code, out, err = lintml_main(["check", "--output-format", "json"], project, capsys, monkeypatch)
    assert (code, json.loads(out), err) == (0, [], "")


def test_columns_are_one_based_in_every_format(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": "model.eval\n"})
    positions = {}
    for fmt in ("concise", "full", "github", "json", "sarif"):
        _, out, _ = lintml_main(["check", "--output-format", fmt], project, capsys, monkeypatch)
        positions[fmt] = out
    assert positions["concise"].startswith("a.py:1:1: LML204 ")
    assert positions["full"].startswith("a.py:1:1: LML204 ")
    assert ",line=1,col=1," in positions["github"]
    assert json.loads(positions["json"])[0]["location"] == loc(1, 1)
    region = json.loads(positions["sarif"])["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (1, 1)


# -- SARIF ---------------------------------------------------------------------------------


def sarif(project, capsys, monkeypatch, *args, cwd=None):
    code, out, err = render(project, capsys, monkeypatch, "sarif", *args, cwd=cwd)
    assert err == ""
    return code, json.loads(out)


def validate(document):
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    errors = sorted(validator(schema).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_copy_is_the_oasis_one():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"


def test_the_schema_catches_a_broken_document(project, capsys, monkeypatch):
    _, document = sarif(project, capsys, monkeypatch)
    document["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(AssertionError, match="fatal"):
        validate(document)


def test_sarif_is_valid_and_has_what_code_scanning_needs(project, capsys, monkeypatch):
    code, document = sarif(project, capsys, monkeypatch)
    validate(document)
    assert code == 1
    assert document["version"] == "2.1.0"
    (run,) = document["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "lintml"
    rules = driver["rules"]
    # every enabled rule is described, not only the ones that fired
    assert [rule["id"] for rule in rules] == ["LML101", "LML102", "LML103", "LML201", "LML202", "LML203", "LML204", "LML205", "LML301", "LML302", "LML303", "LML401", "LML402", "LML403", "LML404", "LML405", "LML406", "LML501", "LML502", "LML900"]
    for rule in rules:
        assert rule["name"] == RULES[rule["id"]].name
        for key in ("shortDescription", "fullDescription", "help"):
            assert rule[key]["text"].strip(), (rule["id"], key)
        rule_page = page(rule["id"])
        if rule_page is not None:  # the help is the rule page
            assert "Why is this bad?" in rule["help"]["markdown"]
    results = run["results"]
    assert len(results) == 5
    for result, (line, column, code_, message) in zip(results, SAMPLE_FINDINGS):
        assert result["ruleId"] == code_
        assert rules[result["ruleIndex"]]["id"] == code_
        assert result["level"] == "warning"
        assert result["message"]["text"] == message
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"] == {"uri": "src/train.py", "uriBaseId": "%SRCROOT%"}
        assert (physical["region"]["startLine"], physical["region"]["startColumn"]) == (line, column)
        assert result["partialFingerprints"]["primaryLocationLineHash"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.resolve().as_uri() + "/"
    fingerprints = [r["partialFingerprints"]["primaryLocationLineHash"] for r in results]
    assert len(set(fingerprints)) == 5


@pytest.mark.parametrize("where", ["subfolder", "outside"])
def test_sarif_uri_is_relative_to_the_project_root_wherever_lintml_runs(project, capsys, monkeypatch, where):
    if where == "subfolder":
        cwd, args = project / "src", ["train.py"]
    else:
        cwd = project.parent
        args = [str(project / "src")]
    _, document = sarif(project, capsys, monkeypatch, *args, cwd=cwd)
    validate(document)
    uris = {
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for result in document["runs"][0]["results"]
    }
    assert uris == {"src/train.py"}


def test_sarif_fingerprints_survive_lines_inserted_above(project, capsys, monkeypatch):
    _, before = sarif(project, capsys, monkeypatch)
    train = project / "src" / "train.py"
    train.write_text('"""Evaluation helpers."""\n\nimport os\n' + SAMPLE, encoding="utf-8")
    _, after = sarif(project, capsys, monkeypatch)

    def prints(document):
        return [
            (r["ruleId"], r["partialFingerprints"]["primaryLocationLineHash"], r["locations"][0]["physicalLocation"]["region"]["startLine"])
            for r in document["runs"][0]["results"]
        ]

    assert [(rule, fp) for rule, fp, _ in prints(after)] == [(rule, fp) for rule, fp, _ in prints(before)]
    assert [line for *_, line in prints(after)] == [line + 3 for *_, line in prints(before)]

    # the same mistake twice on identical lines: distinct fingerprints
    train.write_text("model.eval\nmodel.eval\n", encoding="utf-8")
    _, twice = sarif(project, capsys, monkeypatch)
    first, second = [fp for _, fp, _ in prints(twice)]
    assert first != second


def test_sarif_when_clean_still_lists_the_rules(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"a.py": "x = 1\n"})
    code, document = sarif(project, capsys, monkeypatch)
    validate(document)
    assert code == 0
    assert document["runs"][0]["results"] == []
    assert [r["id"] for r in document["runs"][0]["tool"]["driver"]["rules"]] == ["LML101", "LML102", "LML103", "LML201", "LML202", "LML203", "LML204", "LML205", "LML301", "LML302", "LML303", "LML401", "LML402", "LML403", "LML404", "LML405", "LML406", "LML501", "LML502", "LML900"]


def test_sarif_syntax_error_is_an_error(tmp_path, capsys, monkeypatch):
    project = make_project(tmp_path, {"bad.py": "x = (\n"})
    _, document = sarif(project, capsys, monkeypatch)
    validate(document)
    (result,) = document["runs"][0]["results"]
    assert (result["ruleId"], result["level"]) == ("LML900", "error")


def test_sarif_from_a_subprocess_is_valid(project):
    result = run_lintml("check", "--output-format", "sarif", cwd=project)
    assert result.returncode == 1
    validate(json.loads(result.stdout))
