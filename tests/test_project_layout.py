"""The project layout: which folder is the root, which files are its modules and what
they are called, and which module an import means, as Python would resolve it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lintml.config import Config, load_config
from lintml.project.layout import ROOT_MARKERS, Layout, build_layout, find_root


def make(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def layout_of(root: Path, files: dict[str, str], config: Config | None = None) -> Layout:
    return build_layout(make(root, files), config)


def notebook(*cells: str) -> str:
    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {},
            "cells": [{"cell_type": "code", "metadata": {}, "source": cell, "outputs": []} for cell in cells],
        }
    )


# -- the root ---------------------------------------------------------------------------


@pytest.mark.parametrize("marker", ROOT_MARKERS)
def test_each_marker_makes_a_root(tmp_path, marker):
    project = tmp_path / "project"
    if marker == ".git":
        (project / ".git").mkdir(parents=True)
    else:
        make(project, {marker: ""})
    make(project, {"pkg/deep/train.py": ""})
    assert find_root(project / "pkg" / "deep" / "train.py") == project.resolve()
    assert find_root(project / "pkg" / "deep") == project.resolve()
    assert find_root(project) == project.resolve()


def test_a_git_file_of_a_worktree_is_a_marker(tmp_path):
    make(tmp_path, {"checkout/.git": "gitdir: /elsewhere/.git/worktrees/checkout\n", "checkout/a/b.py": ""})
    assert find_root(tmp_path / "checkout" / "a" / "b.py") == (tmp_path / "checkout").resolve()


def test_the_nearest_marker_wins(tmp_path):
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    make(tmp_path, {"repo/pyproject.toml": "", "repo/libs/inner/setup.cfg": "", "repo/libs/inner/pkg/mod.py": ""})
    assert find_root(tmp_path / "repo/libs/inner/pkg/mod.py") == (tmp_path / "repo/libs/inner").resolve()
    assert find_root(tmp_path / "repo/libs") == (tmp_path / "repo").resolve()


def test_a_file_s_own_folder_is_looked_at_first(tmp_path):
    make(tmp_path, {"outer/pyproject.toml": "", "outer/tool/setup.py": "", "outer/tool/setup_helpers.py": ""})
    assert find_root(tmp_path / "outer/tool/setup_helpers.py") == (tmp_path / "outer/tool").resolve()


def test_without_a_marker_the_checked_folder_is_the_root(tmp_path, monkeypatch):
    # tmp_path may lie below a repository of the machine's; look from a folder with no marker above
    if any(
        any((parent / marker).exists() for marker in ROOT_MARKERS)
        for parent in (tmp_path.resolve(), *tmp_path.resolve().parents)
    ):
        pytest.skip("the temporary folder lies inside a project")
    make(tmp_path, {"scripts/train.py": ""})
    assert find_root(tmp_path / "scripts") == (tmp_path / "scripts").resolve()
    assert find_root(tmp_path / "scripts" / "train.py") == (tmp_path / "scripts").resolve()
    monkeypatch.chdir(tmp_path)
    found = find_root(Path("scripts/train.py"))
    assert found.is_absolute() and found == (tmp_path / "scripts").resolve()


# -- modules and their ids ----------------------------------------------------------------


def test_module_ids(tmp_path):
    layout = layout_of(
        tmp_path,
        {
            "pyproject.toml": "",
            "train.py": "",
            "models/__init__.py": "",
            "models/unet.py": "",
            "models/blocks/attention.py": "",
            "examples/text-classification/run.py": "",
            "notebooks/eval.ipynb": notebook("x = 1"),
            "README.md": "",
        },
    )
    assert layout.root == tmp_path.resolve()
    assert sorted(layout.modules) == [
        "examples.text-classification.run",
        "models",
        "models.blocks.attention",
        "models.unet",
        "notebooks.eval.ipynb",
        "train",
    ]
    assert layout.path_of("models") == tmp_path.resolve() / "models" / "__init__.py"
    assert layout.module_of(tmp_path / "models" / "unet.py") == "models.unet"
    assert layout.is_package("models") and not layout.is_package("models.unet")
    assert not layout.is_package("models.blocks")  # a folder without __init__.py has no file
    assert layout.path_of("nothing") is None and not layout.is_package("nothing")


def test_module_of_compares_resolved_paths(tmp_path, monkeypatch):
    layout = layout_of(tmp_path / "project", {"pyproject.toml": "", "pkg/mod.py": ""})
    monkeypatch.chdir(tmp_path / "project" / "pkg")
    assert layout.module_of(Path("mod.py")) == "pkg.mod"
    assert layout.module_of(Path("../pkg/./mod.py")) == "pkg.mod"
    os.symlink(tmp_path / "project" / "pkg" / "mod.py", tmp_path / "link.py")
    assert layout.module_of(tmp_path / "link.py") == "pkg.mod"
    make(tmp_path, {"outside.py": "", "shared/real.py": ""})
    os.symlink(tmp_path / "shared" / "real.py", tmp_path / "project" / "pkg" / "linked.py")
    layout = build_layout(tmp_path / "project")
    assert layout.path_of("pkg.linked") == (tmp_path / "shared" / "real.py").resolve()
    assert layout.module_of(tmp_path / "shared" / "real.py") == "pkg.linked"
    assert layout.resolve_module(None, "pkg.linked") == "pkg.linked"
    assert layout.module_of(tmp_path / "outside.py") is None
    assert layout.module_of(tmp_path / "project" / "pkg" / "missing.py") is None


def test_a_layout_made_from_its_modules_alone(tmp_path):
    # for code that builds a Layout by hand, as tests of other parts may
    root = tmp_path.resolve()
    make(root, {"pkg/__init__.py": "from .mod import f\n", "pkg/mod.py": "def f(): ...\n"})
    layout = Layout(root, {"pkg": root / "pkg" / "__init__.py", "pkg.mod": root / "pkg" / "mod.py"})
    assert layout.is_package("pkg") and layout.module_of(root / "pkg" / "mod.py") == "pkg.mod"
    assert layout.resolve_module("pkg", "mod", 1) == "pkg.mod"
    assert layout.resolve(None, "pkg.f") == ("pkg.mod", "f")


def test_an_init_file_at_the_root_is_no_package(tmp_path):
    layout = layout_of(tmp_path, {"pyproject.toml": "", "__init__.py": "from . import train\n", "train.py": ""})
    assert sorted(layout.modules) == ["__init__", "train"]
    assert layout.resolve_module("__init__", "train", 1) is None
    assert layout.resolve_module("__init__", "train") == "train"


def test_src_layout(tmp_path):
    layout = layout_of(
        tmp_path,
        {
            "pyproject.toml": "",
            "src/mypkg/__init__.py": "",
            "src/mypkg/mod.py": "",
            "src/mypkg/sub/deep.py": "",
            "scripts/train.py": "",
            "tests/test_mod.py": "",
        },
    )
    assert sorted(layout.modules) == ["mypkg", "mypkg.mod", "mypkg.sub.deep", "scripts.train", "tests.test_mod"]
    assert layout.resolve_module("scripts.train", "mypkg.mod") == "mypkg.mod"
    assert layout.resolve_module("tests.test_mod", "mypkg.sub.deep") == "mypkg.sub.deep"
    assert layout.resolve_module("mypkg.sub.deep", "mypkg", level=0) == "mypkg"
    assert layout.resolve_module("mypkg.sub.deep", "mod", level=2) == "mypkg.mod"
    assert layout.resolve_module("mypkg.mod", "", level=2) is None  # above the top
    # `from src.mypkg import mod`, as ML repositories often write it, finds the same file
    assert layout.resolve_module("scripts.train", "src.mypkg.mod") == "mypkg.mod"
    assert layout.resolve(None, "mypkg.mod.f") == ("mypkg.mod", "f")


def test_ids_are_unique_the_first_file_in_path_order_keeps_one(tmp_path):
    layout = layout_of(tmp_path, {"pyproject.toml": "", "models.py": "", "src/models.py": "", "src/other.py": ""})
    assert layout.path_of("models") == tmp_path.resolve() / "models.py"
    assert layout.module_of(tmp_path / "src" / "models.py") is None
    assert layout.resolve_module(None, "models") == "models"
    assert layout.resolve_module(None, "other") == "other"


# -- relative imports ---------------------------------------------------------------------

RELATIVE = {
    "pyproject.toml": "",
    "pkg/__init__.py": "",
    "pkg/top.py": "",
    "pkg/a/__init__.py": "",
    "pkg/a/b.py": "",
    "pkg/a/x.py": "",
    "pkg/a/c/__init__.py": "",
    "pkg/a/c/d.py": "",
}


@pytest.mark.parametrize(
    "importer, name, level, expected",
    [
        ("pkg.a.b", "x", 1, "pkg.a.x"),
        ("pkg.a.b", "", 1, "pkg.a"),
        ("pkg.a.b", "c.d", 1, "pkg.a.c.d"),
        ("pkg.a.b", "top", 2, "pkg.top"),
        ("pkg.a.b", "", 2, "pkg"),
        ("pkg.a.b", "", 3, None),  # beyond the top
        ("pkg.a.b", "missing", 1, None),
        # in a package's __init__.py, one dot is the package itself
        ("pkg.a", "x", 1, "pkg.a.x"),
        ("pkg.a", "", 1, "pkg.a"),
        ("pkg.a", "top", 2, "pkg.top"),
        ("pkg.a", "", 3, None),
        ("pkg.a.c.d", "b", 2, "pkg.a.b"),
        ("pkg.a.c.d", "top", 3, "pkg.top"),
        ("pkg.a.c.d", "", 4, None),
        ("pkg", "top", 1, "pkg.top"),
        ("pkg", "", 2, None),
        (None, "x", 1, None),  # stdin is in no package
        ("not.a.module", "x", 1, None),
    ],
)
def test_relative_imports(tmp_path, importer, name, level, expected):
    layout = layout_of(tmp_path, RELATIVE)
    assert layout.resolve_module(importer, name, level) == expected


def test_a_top_level_script_has_no_package_for_relative_imports(tmp_path):
    layout = layout_of(tmp_path, {"pyproject.toml": "", "train.py": "from . import utils\n", "utils.py": ""})
    assert layout.resolve_module("train", "utils", 1) is None
    assert layout.resolve_module("train", "", 1) is None
    assert layout.module_imports("train") == {}


def test_from_dot_import_a_submodule(tmp_path):
    layout = layout_of(tmp_path, {**RELATIVE, "pkg/a/b.py": "from . import x\nfrom .. import top as t\n"})
    assert layout.module_imports("pkg.a.b") == {"x": "pkg.a.x", "t": "pkg.top"}
    assert layout.resolve("pkg.a.b", "pkg.a.x") == ("pkg.a.x", "")
    assert layout.resolve("pkg.a.b", "pkg.a.x.helper") == ("pkg.a.x", "helper")
    assert layout.resolve("pkg.a.b", "pkg.top") == ("pkg.top", "")


# -- absolute imports ---------------------------------------------------------------------


def test_import_as_and_attribute(tmp_path):
    layout = layout_of(
        tmp_path,
        {
            "pyproject.toml": "",
            "pkg/__init__.py": "",
            "pkg/mod.py": "class Trainer:\n    def fit(self): ...\n",
            "utils.py": "import pkg.mod as m\nimport pkg.mod\nimport os.path\n",
        },
    )
    assert layout.module_imports("utils") == {"m": "pkg.mod", "pkg": "pkg", "os": "os"}
    assert layout.resolve("utils", "pkg.mod.Trainer") == ("pkg.mod", "Trainer")
    assert layout.resolve("utils", "pkg.mod.Trainer.fit") == ("pkg.mod", "Trainer.fit")
    # `m.Trainer` seen from a file that imports `utils`
    assert layout.resolve(None, "utils.m.Trainer.fit") == ("pkg.mod", "Trainer.fit")
    assert layout.resolve(None, "utils.pkg.mod.Trainer") == ("pkg.mod", "Trainer")
    assert layout.resolve(None, "utils") == ("utils", "")


def test_library_imports_are_unknown(tmp_path):
    layout = layout_of(
        tmp_path,
        {
            "pyproject.toml": "",
            "train.py": "import torch\nimport numpy as np\n",
            "utils.py": "from torch import nn\n",
        },
    )
    for name in ("torch", "torch.nn", "numpy", "transformers.Trainer", "utlis", ""):
        assert layout.resolve_module("train", name) is None
        assert layout.resolve("train", name) is None
    assert layout.module_imports("train") == {"torch": "torch", "np": "numpy"}
    # re-exported from a library: the project knows only where it was imported
    assert layout.resolve("train", "utils.nn.Linear") == ("utils", "nn.Linear")


def test_script_folder_imports(tmp_path):
    layout = layout_of(
        tmp_path,
        {
            "pyproject.toml": "",
            "examples/a/train.py": "from utils import set_seed\n",
            "examples/a/utils.py": "def set_seed(): ...\n",
            "examples/b/train.py": "from utils import set_seed\n",
        },
    )
    assert layout.resolve_module("examples.a.train", "utils") == "examples.a.utils"
    assert layout.resolve("examples.a.train", "utils.set_seed") == ("examples.a.utils", "set_seed")
    assert layout.resolve_module("examples.b.train", "utils") is None
    assert layout.resolve("examples.b.train", "utils.set_seed") is None
    assert layout.resolve_module(None, "utils") is None  # stdin: from the root only
    assert layout.resolve_module(None, "examples.a.utils") == "examples.a.utils"


def test_the_script_folder_comes_before_the_root(tmp_path):
    layout = layout_of(
        tmp_path,
        {
            "pyproject.toml": "",
            "utils.py": "",
            "examples/a/train.py": "",
            "examples/a/utils.py": "",
            "examples/b/train.py": "",
        },
    )
    assert layout.resolve_module("examples.a.train", "utils") == "examples.a.utils"
    assert layout.resolve_module("examples.b.train", "utils") == "utils"
    assert layout.resolve_module(None, "utils") == "utils"


def test_packages_as_python_finds_them(tmp_path):
    layout = layout_of(
        tmp_path,
        {
            "pyproject.toml": "",
            # namespace packages: no __init__.py in `ns` nor in `ns/sub`
            "ns/sub/mod.py": "",
            "models/__init__.py": "",
            "models/unet.py": "",
            # a regular package in the script's folder hides the root's `models`
            "examples/a/models/__init__.py": "",
            "examples/a/train.py": "",
            # a module has no submodules
            "helpers.py": "",
        },
    )
    assert layout.resolve_module(None, "ns.sub.mod") == "ns.sub.mod"
    assert layout.resolve_module(None, "ns.sub") is None and layout.resolve_module(None, "ns") is None
    assert layout.resolve(None, "ns.sub.mod.f") == ("ns.sub.mod", "f")
    assert layout.resolve(None, "ns.sub") is None
    assert layout.resolve_module("examples.a.train", "models") == "examples.a.models"
    assert layout.resolve_module("examples.a.train", "models.unet") is None
    assert layout.resolve("examples.a.train", "models.unet.UNet") == ("examples.a.models", "unet.UNet")
    assert layout.resolve_module(None, "models.unet") == "models.unet"
    assert layout.resolve_module(None, "helpers.sub") is None
    assert layout.resolve(None, "helpers.sub") == ("helpers", "sub")


# -- re-exports -----------------------------------------------------------------------------


def test_re_export_through_two_init_files(tmp_path):
    layout = layout_of(
        tmp_path,
        {
            "pyproject.toml": "",
            "models/__init__.py": "from .blocks import UNet\nfrom .blocks import UNet as Net\n",
            "models/blocks/__init__.py": "from .unet import UNet\n",
            "models/blocks/unet.py": "class UNet:\n    def forward(self): ...\n",
            "utils.py": "from models import UNet\n\ndef get_model():\n    return UNet()\n",
            "train.py": "from utils import get_model\n",
            "cli.py": "from train import get_model\n",
        },
    )
    assert layout.module_imports("models") == {"UNet": "models.blocks.UNet", "Net": "models.blocks.UNet"}
    assert layout.resolve("train", "models.UNet") == ("models.blocks.unet", "UNet")
    assert layout.resolve("train", "models.Net.forward") == ("models.blocks.unet", "UNet.forward")
    assert layout.resolve("train", "utils.UNet") == ("models.blocks.unet", "UNet")
    assert layout.resolve("train", "utils.get_model") == ("utils", "get_model")
    assert layout.resolve(None, "cli.get_model") == ("utils", "get_model")
    assert layout.resolve("train", "models.blocks.unet.UNet") == ("models.blocks.unet", "UNet")
    # a name that nothing binds stays where it was asked for
    assert layout.resolve("train", "models.Missing") == ("models", "Missing")


def test_a_definition_stops_the_chain(tmp_path):
    layout = layout_of(
        tmp_path,
        {
            "pyproject.toml": "",
            "fast.py": "class LayerNorm: ...\n",
            "norms.py": (
                "try:\n    from fast import LayerNorm\nexcept ImportError:\n    LayerNorm = None\n"
                "if True:\n    from fast import LayerNorm as Other\n"
            ),
        },
    )
    assert layout.resolve(None, "norms.LayerNorm") == ("norms", "LayerNorm")
    assert layout.resolve(None, "norms.Other") == ("fast", "LayerNorm")


def test_star_re_exports(tmp_path):
    layout = layout_of(
        tmp_path,
        {
            "pyproject.toml": "",
            "models/__init__.py": "from .unet import *\nfrom .hidden import *\n",
            "models/unet.py": "from .layers import *\nclass UNet: ...\n",
            "models/layers.py": "def conv(): ...\ndef _private(): ...\n",
            "models/hidden.py": "__all__ = ['Shown']\nclass Shown: ...\nclass Hidden: ...\n",
        },
    )
    assert layout.resolve(None, "models.UNet") == ("models.unet", "UNet")
    assert layout.resolve(None, "models.conv") == ("models.layers", "conv")
    assert layout.resolve(None, "models.Shown") == ("models.hidden", "Shown")
    assert layout.resolve(None, "models.Hidden") == ("models", "Hidden")
    assert layout.resolve(None, "models._private") == ("models", "_private")


def test_a_long_star_chain_is_followed_without_recursion(tmp_path):
    count = 1500
    files = {"pyproject.toml": "", "pkg/__init__.py": "from .s0 import *\n"}
    files.update({f"pkg/s{index}.py": f"from .s{index + 1} import *\n" for index in range(count - 1)})
    files[f"pkg/s{count - 1}.py"] = "class Z: ...\n"
    layout = layout_of(tmp_path, files)
    assert layout.resolve(None, "pkg.Z") == (f"pkg.s{count - 1}", "Z")
    assert layout.parses == count + 1


def test_an_import_cycle_between_two_init_files_terminates(tmp_path):
    layout = layout_of(
        tmp_path,
        {
            "pyproject.toml": "",
            "a/__init__.py": "from b import X\nfrom b import *\n",
            "b/__init__.py": "from a import X\nfrom a import *\n",
            "c/__init__.py": "from .d import *\n",
            "c/d.py": "from c import *\n",
        },
    )
    assert layout.resolve(None, "a.X") in {("a", "X"), ("b", "X")}
    assert layout.resolve(None, "b.X.y") in {("a", "X.y"), ("b", "X.y")}
    assert layout.resolve(None, "a.Y") == ("a", "Y")  # bound nowhere: the stars go round
    assert layout.resolve(None, "c.Z") == ("c", "Z")
    assert layout.parses == 4


def test_files_that_cannot_be_parsed_have_no_imports(tmp_path):
    make(
        tmp_path,
        {
            "pyproject.toml": "",
            "broken.py": "from models import UNet\ndef f(:\n",
            "models.py": "class UNet: ...\n",
            "escapes.py": 'from models import UNet\npattern = "\\d+"\n',
        },
    )
    (tmp_path / "latin.py").write_bytes(b"from models import UNet\nname = '\xe9'\n")
    (tmp_path / "nul.py").write_bytes(b"from models import UNet\n\x00\n")
    layout = build_layout(tmp_path)
    for module in ("broken", "latin", "nul"):
        assert layout.module_imports(module) == {}
        assert layout.resolve(None, f"{module}.UNet") == (module, "UNet")
    assert layout.resolve(None, "escapes.UNet") == ("models", "UNet")


def test_a_coding_cookie_is_honoured(tmp_path):
    make(tmp_path, {"pyproject.toml": "", "models.py": "class UNet: ...\n"})
    (tmp_path / "latin.py").write_bytes(b"# -*- coding: latin-1 -*-\nfrom models import UNet\nname = '\xe9'\n")
    layout = build_layout(tmp_path)
    assert layout.resolve(None, "latin.UNet") == ("models", "UNet")


# -- what is not in the project ----------------------------------------------------------


def test_excludes_and_virtual_environments(tmp_path):
    make(
        tmp_path,
        {
            "pyproject.toml": '[tool.lintml]\nextend-exclude = ["generated"]\n',
            "train.py": "",
            "venv/pyvenv.cfg": "",
            "venv/lib/python3.11/site-packages/torch/__init__.py": "",
            "my-env/pyvenv.cfg": "",  # a virtual environment by its pyvenv.cfg, not its name
            "my-env/lib/helpers.py": "",
            "generated/proto_pb2.py": "",
            "build/lib/pkg/mod.py": "",
        },
    )
    layout = build_layout(tmp_path, load_config(tmp_path / "pyproject.toml"))
    assert list(layout.modules) == ["train"]
    assert build_layout(tmp_path).modules.keys() == {"train", "generated.proto_pb2"}
    assert layout.resolve_module("train", "torch") is None


def test_notebooks_are_importers_never_targets(tmp_path):
    layout = layout_of(
        tmp_path,
        {
            "pyproject.toml": "",
            "notebooks/eval.ipynb": notebook(
                "%matplotlib inline\nimport helpers\nfrom models import UNet", "from . import x"
            ),
            "notebooks/helpers.py": "",
            "models.py": "class UNet: ...\n",
            "explore.ipynb": notebook("x = 1"),
        },
    )
    assert {"notebooks.eval.ipynb", "explore.ipynb"} <= layout.modules.keys()
    assert layout.module_of(tmp_path / "notebooks" / "eval.ipynb") == "notebooks.eval.ipynb"
    for name in ("notebooks.eval", "notebooks.eval.ipynb", "explore", "explore.ipynb"):
        assert layout.resolve_module(None, name) is None
    assert layout.resolve(None, "explore.x") is None
    assert layout.resolve_module("notebooks.eval.ipynb", "helpers") == "notebooks.helpers"
    assert layout.resolve_module("notebooks.eval.ipynb", "x", 1) is None
    assert layout.module_imports("notebooks.eval.ipynb") == {"helpers": "helpers", "UNet": "models.UNet"}
    assert not layout.is_package("notebooks.eval.ipynb")


# -- the work done ------------------------------------------------------------------------


def test_each_module_is_parsed_at_most_once(tmp_path):
    count = 300
    files = {"pyproject.toml": "", "pkg/__init__.py": ""}
    for index in range(count - 1):
        files[f"pkg/m{index}.py"] = f"from .m{index + 1} import X\nfrom .loop_a import Y\n"
    files[f"pkg/m{count - 1}.py"] = "from .loop_a import Y\nclass X:\n    def fit(self): ...\n"
    files["pkg/loop_a.py"] = "from .loop_b import Y\n"
    files["pkg/loop_b.py"] = "from pkg.loop_a import Y\n"
    layout = layout_of(tmp_path, files)
    assert layout.parses == 0  # laying out reads no file
    for index in range(count):
        assert layout.resolve(None, f"pkg.m{index}.X.fit") == (f"pkg.m{count - 1}", "X.fit")
        assert layout.resolve(None, f"pkg.m{index}.Y")[0] in {"pkg.loop_a", "pkg.loop_b"}
    assert layout.parses == count + 2
    for index in reversed(range(count)):
        layout.resolve(f"pkg.m{index}", f"pkg.m{index}.X")
        layout.module_imports(f"pkg.m{index}")
    assert layout.parses == count + 2
