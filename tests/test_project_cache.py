"""The result cache stays right when another file of the project changes: a file's
stored findings depend on the project facts its check used (issue 13, item 4)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from lintml.config import Config
from lintml.runner import run_targets

MODEL_WITHOUT_DROPOUT = """\
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(x)
"""

MODEL_WITH_DROPOUT = MODEL_WITHOUT_DROPOUT.replace(
    "        self.fc = nn.Linear(8, 2)\n", "        self.fc = nn.Linear(8, 2)\n        self.drop = nn.Dropout(0.1)\n"
)

PREDICT = """\
import torch
from models import Net


@torch.no_grad()
def predict(net, x):
    return net(x).argmax(-1)


def main(x):
    net = Net()
    return predict(net, x)
"""


def make_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (root / "models.py").write_text(MODEL_WITHOUT_DROPOUT)
    (root / "predict.py").write_text(PREDICT)
    (root / "notes.py").write_text("VERSION = 1\n")
    return root


def check(root: Path, cache_dir: Path):
    result = run_targets([(root, Config(root=root, select=("LML",)))], cache=True, cache_dir=cache_dir)
    [cache] = result.caches
    found = sorted((Path(f.filename).name, f.line, f.code) for f in result.findings)
    return found, cache.hits, cache.misses


def test_editing_a_model_class_rechecks_the_file_that_uses_it(tmp_path: Path):
    root = make_project(tmp_path)
    cache_dir = tmp_path / "cache"
    # a Linear-only model: eval mode changes nothing (Amendment 17), nothing to report
    assert check(root, cache_dir) == ([], 0, 3)
    assert check(root, cache_dir) == ([], 3, 0)
    # models.py gains a dropout: predict.py's stored result no longer holds
    (root / "models.py").write_text(MODEL_WITH_DROPOUT)
    found, hits, misses = check(root, cache_dir)
    assert found == [("predict.py", 7, "LML201")]
    assert (hits, misses) == (1, 2)  # notes.py from the cache; models.py and predict.py checked
    assert check(root, cache_dir) == ([("predict.py", 7, "LML201")], 3, 0)
    # and back: the finding disappears on the next warm run
    (root / "models.py").write_text(MODEL_WITHOUT_DROPOUT)
    found, hits, misses = check(root, cache_dir)
    assert found == [] and (hits, misses) == (1, 2)


def test_editing_an_unrelated_file_keeps_the_other_results(tmp_path: Path):
    root = make_project(tmp_path)
    (root / "models.py").write_text(MODEL_WITH_DROPOUT)
    cache_dir = tmp_path / "cache"
    assert check(root, cache_dir)[0] == [("predict.py", 7, "LML201")]
    (root / "notes.py").write_text("VERSION = 2\n")
    found, hits, misses = check(root, cache_dir)
    assert found == [("predict.py", 7, "LML201")]
    assert (hits, misses) == (2, 1)  # only notes.py itself is checked again


def test_a_new_caller_in_another_file_rechecks_the_callee(tmp_path: Path):
    """predict.py's `predict` is only called with a model built in predict.py; a new file
    that passes it a model in eval mode changes nothing, one that passes an unknown value
    makes the parameter's mode unknown: the cached finding must not survive either way
    unchecked."""
    root = make_project(tmp_path)
    (root / "models.py").write_text(MODEL_WITH_DROPOUT)
    cache_dir = tmp_path / "cache"
    assert check(root, cache_dir)[0] == [("predict.py", 7, "LML201")]
    (root / "serve.py").write_text(
        textwrap.dedent(
            """\
            from models import Net
            from predict import predict


            def serve(x):
                model = Net()
                model.eval()
                return predict(model, x)
            """
        )
    )
    found, hits, misses = check(root, cache_dir)
    # predict.py was checked again (its callers changed); models.py and notes.py were not
    assert (hits, misses) == (2, 2)
    # one caller passes a model in eval mode, the other one fresh from its class:
    # not every caller sets eval, so the forward is still reported
    assert found == [("predict.py", 7, "LML201")]


def test_the_command_line_sees_the_project_when_given_one_file(tmp_path: Path):
    """pre-commit passes only the changed files: their imports are still read."""
    root = make_project(tmp_path)
    (root / "models.py").write_text(MODEL_WITH_DROPOUT)
    process = subprocess.run(
        [sys.executable, "-m", "lintml", "check", "--select", "LML", "--output-format", "concise", "predict.py"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert process.returncode == 1, process.stderr
    assert process.stdout.startswith("predict.py:7:12: LML201 ")


def test_a_comment_in_a_dependency_changes_no_fact(tmp_path: Path):
    """A comment or docstring edited in models.py leaves its facts as they were: the
    files that depend on it keep their stored results (only models.py is checked)."""
    root = make_project(tmp_path)
    (root / "models.py").write_text(MODEL_WITH_DROPOUT)
    cache_dir = tmp_path / "cache"
    assert check(root, cache_dir)[0] == [("predict.py", 7, "LML201")]
    (root / "models.py").write_text(MODEL_WITH_DROPOUT + "# the classifier of the demo\n")
    found, hits, misses = check(root, cache_dir)
    assert found == [("predict.py", 7, "LML201")]
    assert (hits, misses) == (2, 1)


def _count_layouts(monkeypatch) -> list:
    """Every project layout built from now on (the real function, counted)."""
    from lintml.project import facts as project_facts

    built = []
    real = project_facts.build_layout

    def counted(root, config=None):
        built.append(Path(root).name)
        return real(root, config)

    monkeypatch.setattr(project_facts, "build_layout", counted)
    return built


def test_a_file_that_asks_nothing_of_its_project_never_lays_it_out(tmp_path: Path, monkeypatch):
    """A script in a large project (pre-commit passes one changed file) whose checks
    ask no cross-file question: neither the cold check nor the warm one walks the
    project's files. (A file that uses a model does: whether `transformers` is a
    folder of the project is a question of its layout.)"""
    root = make_project(tmp_path)
    (root / "tool.py").write_text("import torch\n\ntorch.set_default_dtype(torch.float16)\nwith torch.no_grad:\n    pass\n")
    built = _count_layouts(monkeypatch)
    config = Config(root=root, select=("LML",))
    cold = run_targets([(root / "tool.py", config)], cache=True, cache_dir=tmp_path / "cache")
    assert [(f.line, f.code) for f in cold.findings] == [(3, "LML404"), (4, "LML103")] and built == []
    warm = run_targets([(root / "tool.py", config)], cache=True, cache_dir=tmp_path / "cache")
    assert [(f.line, f.code) for f in warm.findings] == [(3, "LML404"), (4, "LML103")]
    assert warm.caches[0].hits == 1 and built == []


def test_a_file_that_uses_another_file_lays_the_project_out_once(tmp_path: Path, monkeypatch):
    root = make_project(tmp_path)
    (root / "models.py").write_text(MODEL_WITH_DROPOUT)
    built = _count_layouts(monkeypatch)
    assert check(root, tmp_path / "cache")[0] == [("predict.py", 7, "LML201")]
    assert built == ["project"]  # three files checked, one layout


def test_forgetting_the_projects_forgets_the_refs_their_indexes_shared(tmp_path: Path):
    """The language server forgets the projects on save: the shared refs go with them,
    or a long session would keep every ref it ever read."""
    from lintml.project import facts as project_facts
    from lintml.project import index

    root = make_project(tmp_path)
    (root / "models.py").write_text(MODEL_WITH_DROPOUT)
    assert check(root, tmp_path / "cache")[0] == [("predict.py", 7, "LML201")]
    assert index._REFS  # the indexes read share their refs
    project_facts.clear()
    assert index._REFS == {}


FACTS_DIGEST = """\
import sys
from pathlib import Path
from lintml.project.facts import ProjectFacts
from lintml.project.layout import build_layout
facts = ProjectFacts(build_layout(Path(sys.argv[1])))
print(facts.facts_digest("models"))
"""


def test_a_modules_facts_digest_is_the_same_in_every_process_and_follows_its_facts(tmp_path: Path):
    """A stored finding names the digest of each module's facts it used; a warm run in
    another process (another hash seed, so sets iterate in another order) must compute
    the same digest for the same facts, a comment must not change it, and a new layer
    must."""
    (tmp_path / "pyproject.toml").write_text("")
    models = tmp_path / "models.py"
    names = "\n".join(f"def helper_{n}(x):\n    return x\n" for n in range(20))  # a set of 20+ names
    layers = "".join(f"        self.fc{n} = nn.Linear(8, 8)\n" for n in range(10))
    methods = "".join(f"    def m{n}(self):\n        return self.fc{n}\n" for n in range(10))
    text = MODEL_WITHOUT_DROPOUT.replace("        self.fc = nn.Linear(8, 2)\n", layers) + methods + names

    def digests(seeds):
        found = set()
        for seed in seeds:
            env = {"PYTHONHASHSEED": str(seed), "PATH": "", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
            out = subprocess.run([sys.executable, "-c", FACTS_DIGEST, str(tmp_path)], env=env, capture_output=True, text=True, check=True)
            found.add(out.stdout.strip())
        return found

    models.write_text(text)
    first = digests([1, 2, 3])
    assert len(first) == 1 and "-" not in first
    models.write_text(text.replace("return x\n", "return x  # a comment: no fact changes\n", 1))
    assert digests([4]) == first
    models.write_text(text.replace("        self.fc0 = nn.Linear(8, 8)\n", "        self.fc0 = nn.Linear(8, 8)\n        self.drop = nn.Dropout(0.1)\n"))
    assert digests([5]) != first


def test_a_dependency_whose_index_was_not_read_is_not_read_to_store_a_result(tmp_path: Path):
    """An import that resolves to a module makes it a dependency, but a check that never
    read its index does not have it read just to digest its facts (a fifth of the index
    reads of a cold end-user run): the stored result holds while the module's bytes do."""
    from lintml.project.facts import UNREAD_FACTS, ProjectFacts
    from lintml.project.layout import build_layout

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "utils.py").write_text("def progress_bar(i, total):\n    print(i, total)\n")
    facts = ProjectFacts(build_layout(tmp_path))
    digest = facts.dependency_digest(("module", "utils"))
    assert digest.endswith(":" + UNREAD_FACTS) and "utils" not in dict.keys(facts.modules)
    assert facts.still_holds([["module", "utils", digest]], None)
    (tmp_path / "utils.py").write_text("def progress_bar(i, total):  # the same facts\n    print(i, total)\n")
    later = ProjectFacts(build_layout(tmp_path))
    assert not later.still_holds([["module", "utils", digest]], None)
    # once read, the facts' digest is stored, and a comment no longer matters
    later.modules.get("utils")
    read = later.dependency_digest(("module", "utils"))
    assert not read.endswith(":" + UNREAD_FACTS)
    (tmp_path / "utils.py").write_text("def progress_bar(i, total):  # another comment\n    print(i, total)\n")
    assert ProjectFacts(build_layout(tmp_path)).still_holds([["module", "utils", read]], None)
