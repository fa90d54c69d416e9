"""Shared helpers for the CLI, config, output, fix, flake8 and API tests.

Every test builds its own small project in `tmp_path` with a `pyproject.toml` that has a
`[tool.lintml]` table, so no configuration from outside the test can leak in.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lintml import cli

# The messages a user reads, in one place: the tests below compare whole output lines.
MSG_EVAL = "`model.eval` is not called, so this statement does nothing; write `model.eval()`"
MSG_TRAIN = "`model.train` is not called, so this statement does nothing; write `model.train()`"
MSG_NO_GRAD = (
    "`torch.no_grad` is used without being called: `with torch.no_grad:` fails at run "
    "time (the class is not a context manager, its instances are); write `with torch.no_grad():`"
)
MSG_SET_GRAD = (
    "`torch.set_grad_enabled()` is called without the mode and raises TypeError; "
    "write `torch.set_grad_enabled(False)` (or `True`)"
)
MSG_GENERATE = (
    "`model.generate(..., use_cache=False)` disables the KV cache: each new token re-encodes "
    "the whole prefix (quadratic in the output length); remove `use_cache=False`"
)


def msg_unused(codes: str) -> str:
    return f"Unused suppression: nothing reported {codes} here; remove it from the comment"


# One finding of each implemented rule, one without a fix (set_grad_enabled), and a
# multi-byte character before a finding on the same line.
SAMPLE = """\
import torch


def evaluate(model, batch):
    model.eval
    with torch.no_grad:
        out = model.generate(batch, use_cache=False)
    torch.set_grad_enabled()
    label = "état 日本"; model.train
    return out
"""

# (line, column, code, message) of SAMPLE's findings, columns 1-based in characters
SAMPLE_FINDINGS = [
    (5, 5, "LML204", MSG_EVAL),
    (6, 10, "LML103", MSG_NO_GRAD),
    (7, 37, "LML301", MSG_GENERATE),
    (8, 5, "LML103", MSG_SET_GRAD),
    (9, 24, "LML204", MSG_TRAIN),
]

SAMPLE_FIXED = """\
import torch


def evaluate(model, batch):
    model.eval()
    with torch.no_grad():
        out = model.generate(batch)
    torch.set_grad_enabled()
    label = "état 日本"; model.train()
    return out
"""


def concise_lines(path: str, findings=SAMPLE_FINDINGS) -> list[str]:
    return [f"{path}:{line}:{column}: {code} {message}" for line, column, code, message in findings]


def make_project(root: Path, files: dict[str, str | bytes], pyproject: str = "[tool.lintml]\n") -> Path:
    """Write `files` (relative path -> text or bytes) under `root`, plus a pyproject.toml."""
    root.mkdir(parents=True, exist_ok=True)
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_bytes(content.encode("utf-8"))
    return root


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONSTARTUP", None)
    env["PYTHONIOENCODING"] = "utf-8"
    env["NO_COLOR"] = "1"
    return env


def run_lintml(*args: str, cwd: Path, stdin: bytes | str | None = None) -> subprocess.CompletedProcess:
    """`python -m lintml ARGS` in a subprocess; stdout/stderr decoded as UTF-8 text with
    the line ends kept as written."""
    return _run([sys.executable, "-m", "lintml", *args], cwd, stdin)


def run_flake8(*args: str, cwd: Path, stdin: bytes | str | None = None) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "flake8", *args], cwd, stdin)


def _run(command: list[str], cwd: Path, stdin) -> subprocess.CompletedProcess:
    if isinstance(stdin, str):
        stdin = stdin.encode("utf-8")
    completed = subprocess.run(
        command,
        cwd=cwd,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=_env(),
        timeout=60,
    )
    completed.stdout_bytes = completed.stdout
    completed.stdout = completed.stdout.decode("utf-8")
    completed.stderr = completed.stderr.decode("utf-8")
    return completed


def lintml_main(args: list[str], cwd: Path, capsys, monkeypatch) -> tuple[int, str, str]:
    """`lintml ARGS` in this process, from `cwd`: (exit code, stdout, stderr)."""
    monkeypatch.chdir(cwd)
    capsys.readouterr()  # drop anything printed before
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
