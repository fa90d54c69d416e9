"""`lintml verify SCRIPT ARGS...`: how it runs the script, how static findings and
runtime observations are joined, what it prints and how it exits."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from lintml.cli import main

HELPER = '''
import torch


def predict(model: torch.nn.Module, batch):
    return model(batch).argmax(-1)
'''

SCRIPT = '''
"""Score a batch with a small classifier."""
import argparse
import sys

import torch

from helper import predict

parser = argparse.ArgumentParser()
parser.add_argument("--batches", type=int, default=2)
parser.add_argument("--fail", action="store_true")
args = parser.parse_args()
print("argv", sys.argv[1:], __name__)

model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.1), torch.nn.Linear(8, 2))
model.eval()
for _ in range(args.batches):
    predict(model, torch.randn(3, 4))
if args.batches == 0:
    model.zero_grad
held = [model(torch.randn(2, 4)) for _ in range(4)]
if args.fail:
    raise KeyError("missing column")
'''


def _project(tmp_path: Path) -> Path:
    (tmp_path / "helper.py").write_text(textwrap.dedent(HELPER).lstrip(), encoding="utf-8")
    script = tmp_path / "score.py"
    script.write_text(textwrap.dedent(SCRIPT).lstrip(), encoding="utf-8")
    return script


def _json(capsys, *argv) -> tuple[int, dict]:
    code = main(["verify", "--output-format", "json", *argv])
    out = capsys.readouterr().out
    return code, json.loads(out[out.index("{\n"):])


def _statuses(report: dict) -> set[tuple[str, int, str, str]]:
    return {(Path(f["filename"]).name, f["line"], f["code"], f["status"]) for f in report["findings"]}


def test_confirms_a_finding_in_an_imported_local_module(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = _project(tmp_path)
    code, report = _json(capsys, str(script.name), "--batches", "3")
    assert code == 1
    assert _statuses(report) == {
        ("helper.py", 5, "LML101", "confirmed"),
        # no LML201 in the helper: its only caller (score.py) calls eval() first, which
        # the project facts see (issue 13); the run agrees
        ("score.py", 20, "LML204", "no-probe"),
        ("score.py", 21, "LML101", "confirmed"),
    }
    finding = report["findings"][0]
    assert finding["observation"]["count"] == 3
    # Linear(4, 8) saves its 3x4 input, Linear(8, 2) its 3x8 input: 36 floats a call
    assert finding["observation"]["evidence"]["saved_bytes"] == 3 * 36 * 4
    # the list comprehension keeps four graphs alive at once: no rule predicted that
    (pile,) = report["runtime_only"]
    assert (pile["line"], pile["code"], pile["evidence"]["graphs_alive"]) == (21, "LML102", 4)
    assert report["files"] == ["helper.py", "score.py"]
    assert report["summary"] == {"confirmed": 2, "refuted": 0, "not-exercised": 0, "no-probe": 1, "runtime-only": 1}


def test_runs_the_script_as_python_would(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = _project(tmp_path)
    before_argv, before_path = list(sys.argv), list(sys.path)
    main(["verify", "score.py", "--batches", "1"])
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "argv ['--batches', '1'] __main__"
    assert sys.argv == before_argv and sys.path == before_path  # restored afterwards
    assert "helper" not in sys.modules
    assert script.exists()


def test_not_exercised_and_no_probe(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _project(tmp_path)
    code, report = _json(capsys, "score.py", "--batches", "0")
    assert _statuses(report) == {
        ("helper.py", 5, "LML101", "not-exercised"),  # predict never ran
        ("score.py", 20, "LML204", "no-probe"),
        ("score.py", 21, "LML101", "confirmed"),
    }
    assert code == 1


def test_text_output_shows_evidence_and_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _project(tmp_path)
    assert main(["verify", "score.py"]) == 1
    out = capsys.readouterr().out.splitlines()
    start = out.index(next(line for line in out if line.startswith("helper.py:5:")))
    assert out[start].startswith("helper.py:5:12: LML101 confirmed: `model(...)` runs with autograd on")
    assert out[start + 1] == (
        "    runtime: 2 forwards ran with grad enabled and no backward used the graph; "
        "288 B saved for backward in all (largest call 144 B)"
    )
    assert out[out.index("Runtime observations that no static finding predicted:") + 1].startswith(
        "score.py:21: LML102 confirmed: up to 4 autograd graphs from this forward were alive at once"
    )
    assert out[-1] == (
        "verify: 2 confirmed, 0 refuted, 0 not exercised, 1 without a runtime probe; 1 runtime-only observation"
    )


def test_script_failure_exits_2_with_its_traceback_and_keeps_observations(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _project(tmp_path)
    code = main(["verify", "--output-format", "json", "score.py", "--fail"])
    captured = capsys.readouterr()
    assert code == 2
    err = captured.err.splitlines()
    assert err[0] == "Traceback (most recent call last):"
    assert err[1].startswith('  File "') and err[1].endswith('score.py", line 23, in <module>')
    assert err[-1] == "KeyError: 'missing column'"
    assert "verify.py" not in captured.err  # lintml's own frames are not the script's
    report = json.loads(captured.out[captured.out.index("{\n"):])
    assert report["script_failed"] is True and report["exit_code"] == 2
    assert ("helper.py", 5, "LML101", "confirmed") in _statuses(report)


def test_sys_exit_status_is_the_scripts(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.py").write_text("import sys\nsys.exit(0)\n", encoding="utf-8")
    (tmp_path / "bad.py").write_text("import sys\nsys.exit(3)\n", encoding="utf-8")
    assert main(["verify", "ok.py"]) == 0
    assert main(["verify", "bad.py"]) == 2
    assert "bad.py exited with status 3" in capsys.readouterr().err


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["verify", "missing.py"]) == 2
    assert capsys.readouterr().err == "lintml: error: missing.py: no such file\n"
    (tmp_path / "s.py").write_text("x = 1\n", encoding="utf-8")
    assert main(["verify", "--probes", "LML999", "s.py"]) == 2
    assert capsys.readouterr().err.startswith("lintml: error: no runtime probe for LML999 (probes: LML101,")
    (tmp_path / "broken.py").write_text("def f(:\n", encoding="utf-8")
    assert main(["verify", "broken.py"]) == 2
    err = capsys.readouterr().err
    assert "SyntaxError" in err and "Traceback" not in err


def test_console_script_exit_codes(tmp_path):
    clean = tmp_path / "clean.py"
    clean.write_text(
        "import torch\nm = torch.nn.Linear(2, 2).eval()\nwith torch.no_grad():\n    m(torch.randn(1, 2))\n",
        encoding="utf-8",
    )
    lintml = Path(sys.executable).with_name("lintml")
    result = subprocess.run([str(lintml), "verify", str(clean)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "verify: 0 confirmed, 0 refuted, 0 not exercised, 0 without a runtime probe; 0 runtime-only observations"
    )


def test_process_wide_torch_settings_do_not_leak_into_the_caller(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    (tmp_path / "half.py").write_text(
        "import torch\ntorch.set_default_dtype(torch.float16)\ntorch.set_grad_enabled(False)\n", encoding="utf-8"
    )
    assert main(["verify", "half.py"]) == 0
    assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()


def test_the_working_directory_is_restored(tmp_path, capsys, monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "cd.py").write_text("import os\nos.chdir('sub')\n", encoding="utf-8")
    assert main(["verify", "cd.py"]) == 0
    assert os.getcwd() == str(tmp_path)


def test_without_torch_verify_says_what_to_install(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("x = 1\n", encoding="utf-8")
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from lintml.cli import main\n"
        f"sys.exit(main(['verify', {str(script)!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == "lintml: error: `lintml verify` needs PyTorch: pip install 'lintml[runtime]'\n"
    assert result.stdout == ""
