"""What the workers of one run share (lintml.project.shared): a module's index and its
import bindings, read by one worker, are loaded by the others, and equal what they would
have read; a damaged or missing file only means reading it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from lintml.project import facts as facts_module
from lintml.project import shared
from lintml.project.facts import ProjectFacts
from lintml.project.layout import build_layout
from lintml.project.summaries import FunctionRef

FILES = {
    "models/__init__.py": "from .net import Net\n",
    "models/net.py": "from torch import nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.drop = nn.Dropout()\n",
    "train.py": "from models import Net\nfrom utils import evaluate\nnet = Net()\nevaluate(net)\n",
    "utils.py": "import torch\n@torch.no_grad()\ndef evaluate(net):\n    net.eval()\n    return net(1)\n",
}


@pytest.fixture
def folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shared.share_through(str(run))
    yield run
    shared.share_through(None)


@pytest.fixture
def parses(monkeypatch):
    counted: list[str] = []
    real = facts_module.parse_module

    def counting(data, module, *args, **kwargs):
        counted.append(module)
        return real(data, module, *args, **kwargs)

    monkeypatch.setattr(facts_module, "parse_module", counting)
    return counted


def _project(root: Path) -> Path:
    root.mkdir()
    (root / "pyproject.toml").write_text("")
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _ask(project: ProjectFacts):
    """What a check asks: the class behind an import through a package (a re-export the
    layout follows), its layers, and a function's callers in another module."""
    resolved = project.layout.resolve("train", "models.Net")
    layers = project.modules.get("models.net").classes["Net"].layer_calls
    callers = project.summaries.callers(FunctionRef("utils", "evaluate"))
    return resolved, layers, sorted(caller.module for caller, _ in callers)


def test_a_second_worker_loads_what_the_first_read(tmp_path, folder, parses):
    root = _project(tmp_path / "p")
    first = ProjectFacts(build_layout(root))  # one worker
    answers = _ask(first)
    read_by_first = sorted(parses)
    assert answers[0] == ("models.net", "Net") and answers[2] == ["train"]
    assert read_by_first and first.layout.parses > 0
    parses.clear()
    second = ProjectFacts(build_layout(root))  # another worker of the same run
    assert _ask(second) == answers
    assert parses == [] and second.layout.parses == 0  # nothing parsed again


def test_without_a_run_folder_every_process_reads_for_itself(tmp_path, parses):
    root = _project(tmp_path / "p")
    answers = _ask(ProjectFacts(build_layout(root)))
    count = len(parses)
    assert _ask(ProjectFacts(build_layout(root))) == answers
    assert len(parses) == 2 * count


def test_a_damaged_shared_file_is_read_again(tmp_path, folder, parses):
    root = _project(tmp_path / "p")
    answers = _ask(ProjectFacts(build_layout(root)))
    for path in folder.iterdir():
        path.write_bytes(b"not a pickle")
    parses.clear()
    assert _ask(ProjectFacts(build_layout(root))) == answers
    assert parses  # read again, not loaded


def test_an_edited_file_is_not_loaded_from_before(tmp_path, folder, parses):
    """The key is the file's bytes: a file changed between two reads is read anew."""
    root = _project(tmp_path / "p")
    _ask(ProjectFacts(build_layout(root)))
    (root / "models" / "net.py").write_text(FILES["models/net.py"].replace("self.drop = nn.Dropout()", "self.fc = nn.Linear(1, 1)"))
    parses.clear()
    project = ProjectFacts(build_layout(root))
    layers = project.modules.get("models.net").classes["Net"].layer_calls
    assert [name for name, _ in layers] == ["torch.nn.Linear"] and parses == ["models.net"]


def test_a_module_read_for_its_imports_and_for_its_index_is_parsed_once(tmp_path):
    from lintml.project import layout as layout_module

    root = _project(tmp_path / "p")
    facts_module.clear()
    project = ProjectFacts(build_layout(root))
    before = layout_module.tree_parses
    # the re-export is followed: the imports of models/__init__.py and models/net.py read
    assert project.layout.resolve("train", "models.Net") == ("models.net", "Net")
    assert layout_module.tree_parses - before == 2
    assert project.modules.get("models").imports == {"Net": "models.net.Net"}
    assert "Net" in project.modules.get("models.net").classes
    assert layout_module.tree_parses - before == 2  # their indexes: from the same trees
    assert "evaluate" in project.modules.get("utils").functions
    assert layout_module.tree_parses - before == 3
