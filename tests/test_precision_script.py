"""benchmarks/precision.py on a tiny fake package made in tmp_path: no download."""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "precision.py"


@pytest.fixture(scope="module")
def precision():
    spec = importlib.util.spec_from_file_location("lintml_benchmark_precision", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


TWO_FINDINGS = """\
import torch


def evaluate(model, batch):
    model.eval
    with torch.no_grad:
        return model(batch)
"""

ONE_FINDING = """\
def train(model):
    model.train
    return model
"""

CLEAN = """\
import torch


def evaluate(model, batch):
    model.eval()
    with torch.no_grad():
        return model(batch)
"""


@pytest.fixture
def fake_package(tmp_path: Path) -> Path:
    root = tmp_path / "fakepkg-1.0"
    (root / "fakepkg" / "sub").mkdir(parents=True)
    (root / "fakepkg" / "__init__.py").write_text("", encoding="utf-8")
    (root / "fakepkg" / "a.py").write_text(TWO_FINDINGS, encoding="utf-8")
    (root / "fakepkg" / "sub" / "b.py").write_text(ONE_FINDING, encoding="utf-8")
    (root / "fakepkg" / "sub" / "clean.py").write_text(CLEAN, encoding="utf-8")
    (root / "fakepkg-1.0.dist-info").mkdir()
    (root / "fakepkg-1.0.dist-info" / "METADATA").write_text("Name: fakepkg\n", encoding="utf-8")
    return root


def test_counts_share_and_findings_file(precision, fake_package: Path, tmp_path: Path):
    package = precision.lint_package("fakepkg", "1.0", fake_package, ("LML103", "LML204"))
    assert package.files == 4
    assert package.lines == 7 + 3 + 7
    assert not package.internal_errors and not package.input_errors
    assert [(hit.path, hit.line, hit.code) for hit in package.hits] == [
        ("fakepkg/a.py", 5, "LML204"),
        ("fakepkg/a.py", 6, "LML103"),
        ("fakepkg/sub/b.py", 2, "LML204"),
    ]

    stats = precision.rule_stats([package], ["LML103", "LML204", "LML900"])
    assert (stats["LML204"].findings, stats["LML204"].files_with, stats["LML204"].share) == (2, 2, 0.5)
    assert (stats["LML103"].findings, stats["LML103"].files_with, stats["LML103"].share) == (1, 1, 0.25)
    assert stats["LML204"].per_package == {"fakepkg": (2, 2)}
    assert stats["LML900"].findings == 0

    report = precision.render([package], ["LML103", "LML204", "LML900"], command="x", select=["LML1"], unknown=[])
    assert "| LML204 | mode-method-not-called | 2 | 2 | 50.00% | fakepkg 2 (2) |" in report
    assert "- LML900 syntax-error" in report.split("## Silent on real code")[1]

    out = tmp_path / "findings.jsonl"
    precision.write_findings(out, package.hits)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3
    first = rows[0]
    assert {"package", "path", "line", "column", "code", "message", "source", "sampled"} <= set(first)
    assert (first["package"], first["path"], first["line"], first["column"], first["code"]) == (
        "fakepkg", "fakepkg/a.py", 5, 5, "LML204",
    )  # fmt: skip
    assert "model.eval" in first["message"]
    # the line itself, marked, with 3 lines either side (cut at the file's 7 lines)
    assert first["source"].splitlines() == [
        "  2 | ",
        "  3 | ",
        "  4 | def evaluate(model, batch):",
        "> 5 |     model.eval",
        "  6 |     with torch.no_grad:",
        "  7 |         return model(batch)",
    ]
    assert first["sampled"] is False
    assert rows[2]["source"].splitlines()[0] == "  1 | def train(model):"


def test_sampling_is_deterministic(precision):
    def hits():
        made = [
            precision.Hit(f"pkg{index % 3}", f"m{index % 7}.py", index, 1, "LML204", "m", "s")
            for index in range(50)
        ]
        made += [precision.Hit("pkg0", "x.py", line, 1, "LML103", "m", "s") for line in (3, 1, 2)]
        return made

    first, second = hits(), hits()
    second.reverse()  # run order must not matter
    chosen_first = precision.sample(first, 10, seed=7)
    chosen_second = precision.sample(second, 10, seed=7)
    key = lambda chosen: {code: [hit.sort_key() for hit in picked] for code, picked in chosen.items()}  # noqa: E731
    assert key(chosen_first) == key(chosen_second)
    assert len(chosen_first["LML204"]) == 10
    assert sum(hit.sampled for hit in first if hit.code == "LML204") == 10
    # a rule with no more findings than N is taken whole
    assert all(hit.sampled for hit in first if hit.code == "LML103")
    assert len(chosen_first["LML103"]) == 3
    # another seed picks another sample
    assert key(precision.sample(hits(), 10, seed=8))["LML204"] != key(chosen_first)["LML204"]


def test_fetch_uses_what_is_cached(precision, tmp_path: Path, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("must not download")

    monkeypatch.setattr(precision, "_pip_download", no_download)
    unpacked = tmp_path / "src" / "timm-1.0.31"
    unpacked.mkdir(parents=True)
    assert precision.fetch("timm", "1.0.31", tmp_path) == unpacked

    # a wheel already downloaded (name normalized as in wheel file names) is unpacked
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "open_clip_torch-3.3.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("open_clip/model.py", "x = 1\n")
    root = precision.fetch("open-clip-torch", "3.3.0", tmp_path)
    assert root == tmp_path / "src" / "open-clip-torch-3.3.0"
    assert (root / "open_clip" / "model.py").read_text() == "x = 1\n"
    assert not (tmp_path / "src" / "open-clip-torch-3.3.0.partial").exists()


def test_download_failure_is_one_line_and_fails_the_run(precision, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(precision, "_pip_download", lambda *args, **kwargs: (False, "ERROR: no such version"))
    status = precision.main(["--packages", "litgpt", "--cache", str(tmp_path), "--jobs", "1"])
    assert status == 1
    err = capsys.readouterr().err
    assert "litgpt==0.5.13: download failed: ERROR: no such version" in err
