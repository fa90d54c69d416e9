"""The `LML` flake8 plugin, through real flake8 in a subprocess."""

from __future__ import annotations

from importlib.metadata import entry_points

from helpers import MSG_EVAL, MSG_GENERATE, MSG_NO_GRAD, SAMPLE, concise_lines, make_project, run_flake8, run_lintml

# SAMPLE plus what flake8 must agree on too: a suppression only lintml understands, a
# finding after wide characters, and two findings on one line.
PARITY = SAMPLE + (
    "\n\n"
    "def more(model, optimizer):\n"
    "    model.eval  # lintml: ignore[LML204]\n"
    "    note = '日本語のテキスト'; optimizer.zero_grad; model.generate(x, use_cache=False)\n"
)


def test_the_plugin_is_registered():
    (plugin,) = [ep for ep in entry_points(group="flake8.extension") if ep.name == "LML"]
    assert plugin.value == "lintml.flake8_plugin:Plugin"


def test_flake8_version_lists_lintml(tmp_path):
    result = run_flake8("--version", cwd=tmp_path)
    assert "lintml: " in result.stdout


def test_flake8_reports_what_lintml_concise_reports(tmp_path):
    project = make_project(tmp_path, {"src/train.py": PARITY})
    flake8 = run_flake8("--isolated", "--select", "LML", "src/train.py", cwd=project)
    lintml = run_lintml("check", "--output-format", "concise", "src/train.py", cwd=project)
    expected = concise_lines("src/train.py") + [
        "src/train.py:15:24: LML204 `optimizer.zero_grad` is not called, so this statement "
        "does nothing; write `optimizer.zero_grad()`",
        f"src/train.py:15:63: LML301 {MSG_GENERATE}",
    ]
    assert lintml.stdout.splitlines() == expected
    assert flake8.stdout.splitlines() == lintml.stdout.splitlines()
    assert flake8.returncode == lintml.returncode == 1
    assert flake8.stderr == ""


def test_flake8_reads_stdin_and_never_the_file(tmp_path):
    # on disk: one finding; on stdin, under the same name: two others
    project = make_project(tmp_path, {"src/train.py": "x = 1\nmodel.eval\n"})
    stdin = "import torch\nwith torch.no_grad:\n    y = model.generate(x, use_cache=False)\n"
    result = run_flake8(
        "--isolated", "--select", "LML", "--stdin-display-name", "src/train.py", "-", cwd=project, stdin=stdin
    )
    assert result.stdout.splitlines() == [
        f"src/train.py:2:6: LML103 {MSG_NO_GRAD}",
        f"src/train.py:3:27: LML301 {MSG_GENERATE}",
    ]
    assert result.returncode == 1

    # and the same text through `lintml check -` gives the same lines
    lintml = run_lintml("check", "--output-format", "concise", "-", "--stdin-filename", "src/train.py", cwd=project, stdin=stdin)
    assert lintml.stdout == result.stdout


def test_flake8_applies_the_lintml_configuration(tmp_path):
    project = make_project(
        tmp_path, {"a.py": "model.eval\nmodel.generate(x, use_cache=False)\n"}, pyproject='[tool.lintml]\nignore = ["LML3"]\n'
    )
    result = run_flake8("--isolated", "--select", "LML", "a.py", cwd=project)
    assert result.stdout.splitlines() == [f"a.py:1:1: LML204 {MSG_EVAL}"]


def test_flake8_reads_the_project_of_the_file_it_checks(tmp_path):
    """A model class of another file of the project is known to flake8 as to lintml."""
    project = make_project(
        tmp_path,
        {
            "models.py": "from torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
            "        super().__init__()\n        self.drop = nn.Dropout(0.1)\n",
            "predict.py": "import torch\nfrom models import Net\n\nnet = Net()\nwith torch.no_grad():\n    y = net(torch.ones(1, 2))\n",
        },
    )
    flake8 = run_flake8("--isolated", "--select", "LML", "predict.py", cwd=project)
    assert [line.split(" ", 2)[:2] for line in flake8.stdout.splitlines()] == [["predict.py:6:9:", "LML201"]]
