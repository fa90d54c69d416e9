"""Jupyter notebooks: the code cells checked as one program, positions as cell and line,
magics skipped, fixes written back into the cells."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import jsonschema
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from helpers import MSG_EVAL, lintml_main, make_project

from lintml.notebooks import transform_cell

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures" / "notebooks"
SCHEMA_PATH = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"

# fixtures/notebooks/EXPECTED.md: (cell, line, column, code) per notebook, exactly
EXPECTED = {
    "train.ipynb": [
        (5, 4, 20, "LML203"),
        (5, 8, 5, "LML501"),
        (5, 9, 21, "LML102"),
        (8, 4, 6, "LML103"),
    ],
    "evaluate.ipynb": [
        (6, 6, 18, "LML502"),
        (8, 7, 18, "LML101"),
        (10, 1, 6, "LML900"),
    ],
    "generate.ipynb": [
        (3, 6, 83, "LML401"),
        (5, 5, 71, "LML301"),
        (7, 3, 14, "LML101"),
        (7, 3, 14, "LML303"),
    ],
}

# what `--fix` (safe fixes only) makes of the cells it changes: (notebook, cell) -> source
FIXED_CELLS = {
    ("train.ipynb", 5): (
        "%%time\n"
        "losses = []\n"
        "running_loss = 0.0\n"
        "for step, batch in enumerate(loader):\n"
        '    input_ids = batch["input_ids"].to(device)\n'
        "    loss = model(input_ids=input_ids, labels=input_ids).loss\n"
        "    loss.backward()\n"
        "    optimizer.step()\n"
        "    running_loss += loss.detach()\n"
        "    if step % 100 == 99:\n"
        "        !nvidia-smi --query-gpu=memory.used --format=csv,noheader\n"
        "        losses.append(running_loss.item() / 100)\n"
        "        running_loss = 0.0"
    ),
    ("train.ipynb", 8): (
        'val_loader = DataLoader(load_split("data/tinystories", tokenizer, 512, "validation"), batch_size=8)\n'
        "model.eval()\n"
        "total = 0.0\n"
        "with torch.no_grad():\n"
        "    for batch in val_loader:\n"
        '        input_ids = batch["input_ids"].to(device)\n'
        "        total += model(input_ids=input_ids, labels=input_ids).loss.item()\n"
        'print(f"validation loss {total / len(val_loader):.3f}")'
    ),
    ("evaluate.ipynb", 6): (
        'test_loader = DataLoader(load_split("data/tinystories", tokenizer, 512, "test"), batch_size=8)\n'
        "total_loss, total_tokens = 0.0, 0\n"
        "with torch.no_grad():\n"
        "    for batch in test_loader:\n"
        '        input_ids = batch["input_ids"].to(device)\n'
        "        output = model(input_ids=input_ids, labels=input_ids)\n"
        "        n_targets = input_ids.numel() - input_ids.size(0)\n"
        "        total_loss += output.loss.item() * n_targets\n"
        "        total_tokens += n_targets\n"
        "math.exp(total_loss / total_tokens)"
    ),
    ("generate.ipynb", 5): (
        'tokenizer.padding_side = "left"\n'
        "tokenizer.pad_token = tokenizer.eos_token\n"
        'prompts = ["Once upon a time", "The little dog"]\n'
        'inputs = tokenizer(prompts, return_tensors="pt", padding=True).to(device)\n'
        "outputs = model.generate(**inputs, max_new_tokens=50, do_sample=True)\n"
        "tokenizer.batch_decode(outputs, skip_special_tokens=True)"
    ),
}
FIXED_CODES = {"train.ipynb": {"LML102", "LML103"}, "evaluate.ipynb": {"LML502"}, "generate.ipynb": {"LML301"}}


@pytest.fixture
def project(tmp_path):
    root = make_project(tmp_path / "proj", {})
    for name in EXPECTED:
        shutil.copy(FIXTURES / name, root / name)
    return root


def concise(project, capsys, monkeypatch, *args):
    code, out, err = lintml_main(["check", "--output-format", "concise", *args], project, capsys, monkeypatch)
    return code, out.splitlines(), err


def parse_concise(lines: list[str]) -> dict[str, list[tuple[int, int, int, str]]]:
    found: dict[str, list] = {}
    for line in lines:
        name, cell, row, column, rest = line.split(":", 4)
        assert cell.startswith("cell "), line
        found.setdefault(name, []).append((int(cell[5:]), int(row), int(column), rest.split()[0]))
    return found


def write_notebook(path: Path, cells: list[str | tuple[str, str]]) -> Path:
    """A notebook of code cells (a ("markdown", text) pair for a markdown cell)."""
    nb = new_notebook()
    nb.cells = [new_markdown_cell(c[1]) if isinstance(c, tuple) else new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


# -- what is reported ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_reports_exactly_its_answer_key(project, capsys, monkeypatch, name):
    code, lines, err = concise(project, capsys, monkeypatch, name)
    assert err == ""
    assert code == 1
    assert parse_concise(lines) == {name: EXPECTED[name]}


def test_the_answer_key_file_lists_the_same_findings():
    text = (FIXTURES / "EXPECTED.md").read_text(encoding="utf-8")
    rows = {
        (cells[1].strip("` "), int(cells[2]), int(cells[3]), cells[4].strip())
        for cells in (line.split("|") for line in text.splitlines())
        if len(cells) > 5 and cells[1].strip().startswith("`") and cells[2].strip().isdigit()
    }
    assert rows == {(name, cell, line, code) for name, found in EXPECTED.items() for cell, line, _, code in found}


def test_concise_line_format(project, capsys, monkeypatch):
    _, lines, _ = concise(project, capsys, monkeypatch, "evaluate.ipynb")
    assert lines[0] == (
        "evaluate.ipynb:cell 6:6:18: LML502 `model.forward(...)` skips the module's forward and "
        "backward hooks; call `model(...)` instead"
    )
    assert lines[2] == "evaluate.ipynb:cell 10:1:6: LML900 Cannot parse this cell: '(' was never closed"


def test_full_output_shows_the_cell_line(project, capsys, monkeypatch):
    _, out, _ = lintml_main(["check", "generate.ipynb"], project, capsys, monkeypatch)
    assert (
        "generate.ipynb:cell 5:5:71: LML301 [*] `model.generate(..., use_cache=False)`" in out
        and "5 | outputs = model.generate(**inputs, max_new_tokens=50, do_sample=True, use_cache=False)\n"
        "  |                                                                       ^^^^^^^^^^^^^^^\n" in out
    )


def test_the_cells_are_one_program(project, capsys, monkeypatch):
    """`model.eval()` in cell 4 is what keeps cells 6 and 8 from LML201."""
    nb = nbformat.read(project / "evaluate.ipynb", as_version=4)
    assert nb.cells[3].source == "model.eval()\nmodel.generate?"
    nb.cells[3].source = "model.generate?"
    nbformat.write(nb, project / "evaluate.ipynb")
    _, lines, _ = concise(project, capsys, monkeypatch, "evaluate.ipynb")
    found = parse_concise(lines)["evaluate.ipynb"]
    assert (6, 6, 18, "LML201") in found and (8, 7, 18, "LML201") in found


def test_folder_walk_picks_up_notebooks_and_honours_excludes(tmp_path, capsys, monkeypatch):
    root = make_project(
        tmp_path / "proj",
        {"train.py": "model.eval\n", "scratch/old.ipynb": "not json"},
        pyproject='[tool.lintml]\nextend-exclude = ["scratch"]\n',
    )
    write_notebook(root / "nb" / "a.ipynb", ["import torch", "model.eval"])
    write_notebook(root / ".ipynb_checkpoints" / "a-checkpoint.ipynb", ["model.eval"])
    write_notebook(root / ".venv" / "x.ipynb", ["model.eval"])
    code, lines, err = concise(root, capsys, monkeypatch)  # Jupyter's autosave copies are skipped
    assert err == ""
    assert lines == [f"nb/a.ipynb:cell 2:1:1: LML204 {MSG_EVAL}", f"train.py:1:1: LML204 {MSG_EVAL}"]
    assert code == 1


# -- magics -------------------------------------------------------------------------------


MAGIC_CELLS = [
    "%matplotlib inline\n!pip install -q torch \\\n    transformers\n%load_ext autoreload",
    "files = !ls\nout = %sx echo hi\nresult = %timeit -o sum(range(10))\nmodel?\n?model\nmodel.eval??\n%pinfo model",
    "for name in files:\n    !echo $name\n    %time f(name)\nif files:\n    %env A=1",
    "%%bash\nmodel.eval\nfor x in y: echo $x",
    "%%writefile helper.py\nmodel.eval\n",
    "%%time\nimport torch\nx = 1",
    "  \n%%capture captured\nprint('hi')",
    'doc = """\n!not a shell line\n%not a magic\n"""\nratio = 3 % 2\nflag = x != 1  # why?\nlabel = "a=%d" % 3',
]


def test_magics_produce_no_findings(tmp_path, capsys, monkeypatch):
    root = make_project(tmp_path / "proj", {}, pyproject='[tool.lintml]\nextend-select = ["LML901"]\n')
    write_notebook(root / "magic.ipynb", MAGIC_CELLS)
    code, lines, err = concise(root, capsys, monkeypatch, "magic.ipynb")
    assert (code, lines, err) == (0, [], "")


def test_transform_keeps_lines_one_to_one():
    lines, skipped = transform_cell(MAGIC_CELLS[2])
    assert lines == ["for name in files:", "    pass", "    pass", "if files:", "    pass"]
    assert skipped == {2, 3, 5}
    lines, skipped = transform_cell(MAGIC_CELLS[0])
    assert lines == ["", "", "", ""] and skipped == {1, 2, 3, 4}
    lines, skipped = transform_cell(MAGIC_CELLS[7])
    assert skipped == set() and lines == MAGIC_CELLS[7].split("\n")
    assert transform_cell("%%bash\necho hi") == (["", ""], {1, 2})
    assert transform_cell("%%time\nx = 1\n") == (["", "x = 1"], {1})


def test_a_cell_that_does_not_parse_is_reported_alone(tmp_path, capsys, monkeypatch):
    root = make_project(tmp_path / "proj", {})
    write_notebook(root / "nb.ipynb", [("markdown", "# t"), "import torch", "x = 1\ny = (1,\n", "model.eval"])
    code, lines, _ = concise(root, capsys, monkeypatch, "nb.ipynb")
    assert lines == [
        "nb.ipynb:cell 3:2:5: LML900 Cannot parse this cell: '(' was never closed",
        f"nb.ipynb:cell 4:1:1: LML204 {MSG_EVAL}",
    ]
    assert code == 1


def test_noqa_inside_a_cell(tmp_path, capsys, monkeypatch):
    root = make_project(tmp_path / "proj", {}, pyproject='[tool.lintml]\nextend-select = ["LML901"]\n')
    write_notebook(root / "nb.ipynb", ["!ls", "model.eval  # noqa: LML204\nx = 1  # noqa: LML103"])
    _, lines, _ = concise(root, capsys, monkeypatch, "nb.ipynb")
    assert lines == [
        "nb.ipynb:cell 2:2:8: LML901 Unused suppression: nothing reported LML103 here; remove it from the comment"
    ]


def test_a_non_python_notebook_is_skipped(tmp_path, capsys, monkeypatch):
    root = make_project(tmp_path / "proj", {})
    path = write_notebook(root / "r.ipynb", ["model.eval"])
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "ir", "language": "R", "display_name": "R"}
    nbformat.write(nb, path)
    assert concise(root, capsys, monkeypatch, "r.ipynb")[:2] == (0, [])


# -- unreadable notebooks -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content, reason",
    [
        ('{"cells": [', "not valid JSON: Expecting value at line 1 column 12"),
        ("[1, 2]", "not a Jupyter notebook: no `cells` list"),
        ('{"nbformat": 3, "worksheets": []}', "notebook format 3 is not supported; convert it to format 4"),
        ('{"nbformat": 4, "cells": [{"cell_type": "code", "source": 3}]}', "a cell's `source` is neither"),
    ],
)
def test_a_corrupt_notebook_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, content, reason):
    root = make_project(tmp_path / "proj", {"bad.ipynb": content, "ok.py": "model.eval\n"})
    code, lines, err = concise(root, capsys, monkeypatch, "bad.ipynb", "ok.py")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"lintml: error: bad.ipynb: cannot read the notebook: {reason}")
    assert lines == [f"ok.py:1:1: LML204 {MSG_EVAL}"]  # the other files are still checked


def test_stdin_notebook(tmp_path, capsys, monkeypatch):
    root = make_project(tmp_path / "proj", {})
    text = write_notebook(root / "nb.ipynb", ["import torch", "model.eval"]).read_text(encoding="utf-8")
    monkeypatch.setattr("sys.stdin", type("In", (), {"buffer": __import__("io").BytesIO(text.encode())})())
    code, lines, _ = concise(root, capsys, monkeypatch, "-", "--stdin-filename", "nb.ipynb")
    assert (code, lines) == (1, [f"nb.ipynb:cell 2:1:1: LML204 {MSG_EVAL}"])


# -- machine formats ----------------------------------------------------------------------


def test_json_has_the_cell_and_positions_within_it(project, capsys, monkeypatch):
    code, out, _ = lintml_main(["check", "--output-format", "json", "generate.ipynb"], project, capsys, monkeypatch)
    items = json.loads(out)
    assert [(i["cell"], i["location"]["row"], i["location"]["column"], i["code"]) for i in items] == EXPECTED[
        "generate.ipynb"
    ]
    cache = items[1]
    assert cache["filename"] == str(project / "generate.ipynb")
    assert cache["end_location"] == {"row": 5, "column": 86}
    assert cache["noqa_row"] == 5
    assert cache["fix"]["edits"] == [
        {"content": "", "end_location": {"row": 5, "column": 86}, "location": {"row": 5, "column": 69}}
    ]


def test_sarif_validates_and_names_the_cell(project, capsys, monkeypatch):
    code, out, _ = lintml_main(["check", "--output-format", "sarif", "."], project, capsys, monkeypatch)
    document = json.loads(out)
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)
    assert list(validator(schema).iter_errors(document)) == []
    results = document["runs"][0]["results"]
    got = {}
    for result in results:
        (location,) = result["locations"]
        uri = location["physicalLocation"]["artifactLocation"]["uri"]
        region = location["physicalLocation"]["region"]
        (logical,) = location["logicalLocations"]
        assert logical["name"] == f"cell {result['properties']['cell']}"
        assert logical["fullyQualifiedName"] == f"{uri}:{logical['name']}"
        got.setdefault(uri, []).append(
            (result["properties"]["cell"], region["startLine"], region["startColumn"], result["ruleId"])
        )
    assert got == EXPECTED
    # fingerprints hash the cell's line: distinct for the two findings on one line of generate cell 7
    hashes = [r["partialFingerprints"]["primaryLocationLineHash"] for r in results]
    assert len(set(hashes)) == len(hashes)


def test_github_names_the_cell(project, capsys, monkeypatch):
    _, out, _ = lintml_main(["check", "--output-format", "github", "evaluate.ipynb"], project, capsys, monkeypatch)
    lines = out.splitlines()
    assert lines[0] == (
        "::warning file=evaluate.ipynb,line=6,col=18,endLine=6,endColumn=70,title=LML502 (cell 6)::"
        "cell 6, line 6: `model.forward(...)` skips the module's forward and backward hooks; call `model(...)` instead"
    )
    assert lines[2].startswith("::error file=evaluate.ipynb,line=1,col=6,endLine=1,endColumn=6,title=LML900 (cell 10)::cell 10, line 1: ")


def test_gitlab_names_the_cell(project, capsys, monkeypatch):
    import json

    _, out, _ = lintml_main(["check", "--output-format", "gitlab", "evaluate.ipynb"], project, capsys, monkeypatch)
    first = json.loads(out)[0]
    assert first["description"].startswith("LML502 (cell 6) `model.forward(...)` skips")
    assert first["location"]["positions"]["begin"] == {"line": 6, "column": 18}


# -- fixing -------------------------------------------------------------------------------


def _without_sources(nb: dict) -> dict:
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        cell.pop("source")
    return nb


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fix_round_trip(project, capsys, monkeypatch, name):
    path = project / name
    before = json.loads(path.read_text(encoding="utf-8"))
    code, out, err = lintml_main(["check", "--fix", "--output-format", "concise", name], project, capsys, monkeypatch)
    assert err == ""
    after_text = path.read_text(encoding="utf-8")
    after = json.loads(after_text)
    # a valid nbformat 4 notebook; outputs, metadata, execution counts and ids kept
    nbformat.validate(nbformat.reads(after_text, as_version=4))
    assert _without_sources(after) == _without_sources(before)
    for number, (old, new) in enumerate(zip(before["cells"], after["cells"]), start=1):
        expected = FIXED_CELLS.get((name, number))
        if expected is None:
            assert new["source"] == old["source"], number
        else:
            assert "".join(new["source"]) == expected
            assert isinstance(new["source"], list)  # as nbformat stores it
    # what is left is the answer key less the fixed codes
    left = [f for f in EXPECTED[name] if f[3] not in FIXED_CODES[name]]
    assert parse_concise(out.splitlines()) == ({name: left} if left else {})
    # the file is written as nbformat writes it: only the fixed lines differ
    original = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    changed = [a for a, b in zip(original, after_text.splitlines()) if a != b]
    assert len(after_text.splitlines()) == len(original)
    assert len(changed) == sum(1 for key in FIXED_CELLS if key[0] == name)
    # idempotent: a second --fix changes nothing
    lintml_main(["check", "--fix", name], project, capsys, monkeypatch)
    assert path.read_text(encoding="utf-8") == after_text


def test_diff_shows_each_changed_cell(project, capsys, monkeypatch):
    code, out, _ = lintml_main(["check", "--diff", "train.ipynb"], project, capsys, monkeypatch)
    assert code == 1
    assert out.startswith(
        "--- a/train.ipynb:cell 5\n+++ b/train.ipynb:cell 5\n@@ -6,7 +6,7 @@\n"
        "     loss = model(input_ids=input_ids, labels=input_ids).loss\n"
    )
    assert "--- a/train.ipynb:cell 8\n+++ b/train.ipynb:cell 8\n" in out
    assert "-    running_loss += loss\n+    running_loss += loss.detach()\n" in out
    assert (project / "train.ipynb").read_bytes() == (FIXTURES / "train.ipynb").read_bytes()


def test_a_fix_never_touches_a_magic_line(tmp_path, capsys, monkeypatch):
    """LML101's unsafe fix would indent the loop into `with torch.inference_mode():`,
    magic lines included: it is not offered in a notebook, and the finding stays."""
    root = make_project(tmp_path / "proj", {})
    loop = (
        "for _ in range(5):\n"
        "    !echo step\n"
        "    logits = model(input_ids).logits[:, -1, :]\n"
        "    input_ids = torch.cat([input_ids, logits.argmax(-1, keepdim=True)], dim=-1)"
    )
    path = write_notebook(root / "nb.ipynb", ["import torch\nmodel.eval()\ninput_ids = torch.zeros(1, 1)", loop])
    before = path.read_bytes()
    code, out, _ = lintml_main(["check", "--fix", "--unsafe-fixes", "nb.ipynb"], root, capsys, monkeypatch)
    assert path.read_bytes() == before
    assert "nb.ipynb:cell 2:3:14: LML101 `model(...)`" in out and "[*]" not in out
    # without the magic line the same fix applies, inside the cell only
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = loop.replace("    !echo step\n", "")
    nbformat.write(nb, path)
    lintml_main(["check", "--fix", "--unsafe-fixes", "nb.ipynb"], root, capsys, monkeypatch)
    fixed = nbformat.read(path, as_version=4)
    assert fixed.cells[1].source.startswith("with torch.inference_mode():\n    for _ in range(5):\n")
    assert fixed.cells[0].source == nb.cells[0].source


def test_fix_keeps_a_string_source_a_string_and_the_file_layout(tmp_path, capsys, monkeypatch):
    root = make_project(tmp_path / "proj", {})
    document = {
        "cells": [
            {"cell_type": "code", "execution_count": 3, "id": "a1", "metadata": {"tags": ["x"]},
             "outputs": [{"name": "stdout", "output_type": "stream", "text": "é\n"}],
             "source": "%time 1\nmodel.eval\n"},
        ],
        "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "P"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = root / "nb.ipynb"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lintml_main(["check", "--fix", "nb.ipynb"], root, capsys, monkeypatch)
    document["cells"][0]["source"] = "%time 1\nmodel.eval()\n"
    assert path.read_text(encoding="utf-8") == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    nbformat.validate(nbformat.read(path, as_version=4))


def test_a_notebook_imports_project_modules_like_a_script(tmp_path, capsys, monkeypatch):
    """The model class comes from `models.py` beside the notebook (issue 13)."""
    root = make_project(
        tmp_path / "proj",
        {
            "models.py": "from torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
            "        super().__init__()\n        self.drop = nn.Dropout(0.1)\n",
            "plain.py": "from torch import nn\n\n\nclass Plain(nn.Module):\n    def __init__(self):\n"
            "        super().__init__()\n        self.fc = nn.Linear(2, 2)\n",
        },
    )
    write_notebook(
        root / "explore.ipynb",
        [
            ("markdown", "# Try the model"),
            "import torch\nfrom models import Net\nfrom plain import Plain",
            "net, plain = Net(), Plain()\nx = torch.ones(1, 2)",
            "with torch.no_grad():\n    y = net(x)\n    z = plain(x)",
        ],
    )
    code, lines, _ = concise(root, capsys, monkeypatch, "--select", "LML201", "explore.ipynb")
    assert code == 1
    assert parse_concise(lines) == {"explore.ipynb": [(4, 2, 9, "LML201")]}


def test_a_notebooks_calls_count_as_callers_of_project_functions(tmp_path, capsys, monkeypatch):
    """`train(model, optimizer, loader)` in utils.py is only called from a notebook, with
    an SGD optimizer: its missing zero_grad is LML501 when utils.py is checked."""
    root = make_project(
        tmp_path / "proj",
        {
            "utils.py": "def train(model, optimizer, loader):\n    for x, y in loader:\n"
            "        loss = (model(x) - y).pow(2).mean()\n        loss.backward()\n        optimizer.step()\n",
        },
    )
    write_notebook(
        root / "run.ipynb",
        [
            "import torch\nfrom utils import train",
            "%matplotlib inline\nmodel = torch.nn.Linear(2, 1)\ntrain(model, torch.optim.SGD(model.parameters(), lr=0.1), loader)",
        ],
    )
    code, lines, _ = concise(root, capsys, monkeypatch, "--select", "LML501", "utils.py")
    assert code == 1
    assert [line.split(" ", 2)[:2] for line in lines] == [["utils.py:5:9:", "LML501"]]
