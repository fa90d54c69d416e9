"""Instructions, not seconds: a cold `lintml check` against the LibCST parse floor, each
run once under valgrind's callgrind, which counts the machine instructions a process
executes. On a shared host whose speed drifts by 20-30% within a minute, this is the
measure a change can be judged by side by side (the same code gives the same count,
give or take a few hundredths of a percent); bench_static.py's timed ratio stays the
target. Both sides run in one process (lintml `--jobs 1 --no-cache`; the floor,
benchmarks/parse_floor.py, with one worker: Python's start, `import libcst`, the parse of
every file lintml checks, notebooks as lintml joins them), so the ratio is the cold
target's without the scheduling. About 50 times slower than the runs themselves
(5 minutes for the end-user corpus).

    .venv/bin/python benchmarks/instructions.py --corpora enduser
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_static  # noqa: E402  (corpora, the floor's command, lintml's command)
import git_corpora  # noqa: E402
import precision  # noqa: E402
from lintml.config import load_config  # noqa: E402
from lintml.files import iter_python_files  # noqa: E402

_COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(argv: list[str]) -> int:
    """The instructions `argv` executes, its children included."""
    with tempfile.TemporaryDirectory() as folder:
        completed = subprocess.run(
            ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={folder}/out.%p", *argv],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
        )  # fmt: skip
    counts = [int(found) for found in _COLLECTED.findall(completed.stderr)]
    if completed.returncode not in (0, 1) or not counts:
        sys.exit(f"instructions: {argv[0]} failed under valgrind:\n{completed.stderr[-2000:]}")
    return sum(counts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", default="enduser", help="as for bench_static.py (default enduser)")
    parser.add_argument("--corpora-file", type=Path, default=git_corpora.DEFAULT_LIST)
    parser.add_argument("--mirror", type=Path, default=git_corpora.DEFAULT_MIRROR)
    parser.add_argument("--cache", type=Path, default=precision.DEFAULT_CACHE)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("instructions: valgrind is not installed", file=sys.stderr)
        return 2
    git = git_corpora.load(args.corpora_file)
    neutral = args.cache / "pyproject.toml"
    args.cache.mkdir(parents=True, exist_ok=True)
    neutral.write_text("# written by bench_static.py: lintml's defaults for the corpora\n[tool.lintml]\n")
    bench_static.byte_compile_lintml()
    print("| corpus | files | lintml cold, instructions | parse floor, instructions | ratio |")
    print("|---|---:|---:|---:|---:|")
    for name in [name.strip() for name in args.corpora.split(",") if name.strip()]:
        corpus = bench_static.resolve(name, args, git)
        bench_static.mark_project(corpus.root)
        paths = [str(path) for path in iter_python_files(corpus.root, load_config(neutral), notebooks=True)]
        with tempfile.TemporaryDirectory() as scratch:
            floor = instructions(bench_static.fresh_floor_command(paths, 1, Path(scratch)))
        lint = bench_static.lint_command({"--jobs"}, neutral, 1) + ["--no-cache", str(corpus.root)]
        cold = instructions(lint)
        print(f"| {corpus.label} | {len(paths)} | {cold / 1e9:.2f} G | {floor / 1e9:.2f} G | {cold / floor:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
