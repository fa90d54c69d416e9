"""How fast `lintml check` is on real code, next to LibCST, TorchFix and flake8.

Corpora: the `.py` files of pinned wheels, unpacked into benchmarks/.cache/ by `precision.py`
(`timm`, `transformers`, ...), and the git corpora of corpora.toml (`transformers-examples`,
`enduser`: `.py` and `.ipynb` files at exact commits), rebuilt by `git_corpora.py`.
Each figure is the median of `--runs` fresh processes (the LibCST floor is timed in this one
too; the cold runs alternate with the fresh-process floor's, and the cold target is judged
on the median of those pairs' ratios);
TorchFix runs from its own venv, its timings kept in .cache/torchfix-times.json. Exit status 1
if a target fails, 2 if a corpus cannot be had.

    .venv/bin/python benchmarks/bench_static.py --torchfix-runs 1 --output /tmp/bench-static.md
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import multiprocessing
import os
import platform
import resource
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from types import SimpleNamespace
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version as dist_version
from pathlib import Path
from statistics import median

import libcst

sys.path.insert(0, str(Path(__file__).resolve().parent))
import git_corpora  # noqa: E402  (the git corpora: corpora.toml, rebuilt from git snapshots)
import precision  # noqa: E402  (the download/unpack code)
from lintml import runner  # noqa: E402
from lintml.config import load_config  # noqa: E402
from lintml.files import iter_python_files  # noqa: E402
from lintml.notebooks import build_program, parse_notebook  # noqa: E402  (imported before the floor's workers fork)

REPO = Path(__file__).resolve().parent.parent
PINS = {name: version for name, version, _ in precision.PACKAGES}
TORCHFIX = "0.7.0"
PY = sys.executable
FINDING = re.compile(r"^.+?:\d+:\d+: [A-Z]+\d+ ", re.M)
DEFAULT_CORPORA = "timm,transformers-examples,enduser"
# The targets. Issue "whole project": cold against the parse floor at
# equal parallelism (project facts included), cold / warm, one edited file against that
# file alone, peak RSS on transformers. Issue 7: TorchFix, flake8, start-up.
COLD_PER_FLOOR, COLD_PER_WARM, EDITED_PER_ALONE, PEAK_RSS_MB = 1.6, 50, 2.0, 500


class Corpus:
    """A corpus to measure: where its files are, what to call it, which file to edit."""

    def __init__(self, name, root, label, key, edit=None, kind="wheel", detail=""):
        self.name, self.root, self.label, self.key, self.edit, self.kind, self.detail = (
            name, root, label, key, edit, kind, detail)


def resolve(name, args, git) -> Corpus:
    """The corpus NAME: a wheel of precision.py's pin list, or a git corpus of corpora.toml."""
    if name in PINS:
        return Corpus(name, precision.fetch(name, PINS[name], args.cache), f"{name} {PINS[name]}", f"{name}-{PINS[name]}")
    corpus = git[name]
    root = git_corpora.build(corpus, args.cache, args.mirror)
    counts = git_corpora.file_counts(corpus, args.cache)
    digest = hashlib.sha256(json.dumps(corpus.spec(), sort_keys=True).encode()).hexdigest()[:12]
    label = f"{name} @{corpus.repos[0].commit[:7]}" if len(corpus.repos) == 1 else f"{name} ({len(corpus.repos)} repos)"
    detail = "; ".join(f"{repo.repo} `{repo.commit[:12]}` {', '.join(p or '.' for p in repo.paths)}"
                       f" ({counts.get(repo.repo, '?')} files)" for repo in corpus.repos)
    return Corpus(name, root, label, f"{name}-{digest}", corpus.edit, "git", detail)


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children, workers included
    return usage.ru_utime + usage.ru_stime  # user + system seconds


def timed(command, runs):
    """(median wall seconds, median CPU seconds of the process tree, last CompletedProcess).
    `command` is a list, or a function of the run number giving one (called before the clock starts)."""
    wall, cpu, process = [], [], None
    for run in range(runs):
        argv = command(run) if callable(command) else command
        cpu_before, started = cpu_children(), time.perf_counter()
        process = subprocess.run(argv, capture_output=True, text=True)
        wall.append(time.perf_counter() - started)
        cpu.append(cpu_children() - cpu_before)
        if process.returncode != 0:
            sys.exit(f"failed ({process.returncode}): {shlex.join(argv)}\n{process.stderr[-2000:]}")
    return median(wall), median(cpu), process


def program_text(path: str) -> str | None:
    """The text lintml parses for a file: a notebook's code cells joined into one program
    (lintml's own code for it); None for a notebook that is not Python (not parsed)."""
    text = Path(path).read_text(encoding="utf-8")
    if path.lower().endswith(".ipynb"):
        notebook = parse_notebook(text)
        return build_program(notebook.cells).text if notebook.is_python else None
    return text


def parse(path: str) -> int:
    """Read and LibCST-parse one file as lintml does."""
    try:  # a file LibCST cannot parse costs what it costs, as in lintml
        text = program_text(path)
        return 0 if text is None else bool(libcst.parse_module(text))
    except Exception:
        return 0


def lintml_workers(files: int, jobs: int) -> int:
    """The processes lintml checks FILES files in with `--jobs JOBS` (runner.run_targets:
    at least 4 files a worker, no pool under MIN_PARALLEL_FILES files)."""
    workers = min(jobs, files // 4)
    return 1 if workers <= 1 or files < getattr(runner, "MIN_PARALLEL_FILES", 8) else workers


def floor_batches(paths, workers) -> list[list[str]]:
    """The files in the batches lintml sends its workers (`runner.batch_order`: largest
    first, shrinking batches), so that the floor is fed as lintml is."""
    jobs = [SimpleNamespace(path=Path(path)) for path in paths]
    return [[paths[index] for index in batch] for batch in runner.batch_order(jobs, workers)]


def _parse_batch(paths) -> int:
    return sum(map(parse, paths))


def parse_floor(paths, jobs, runs):
    """Read + `libcst.parse_module` every file, in this process or, at equal parallelism with
    lintml, in a fresh fork pool of as many workers as lintml would start, fed the batches
    lintml sends (the pool's start-up counted). (median wall, median CPU, parsed, workers)."""
    workers = lintml_workers(len(paths), jobs)
    seconds, cpu = [], []
    for _ in range(runs):
        cpu_before, started = cpu_children() + time.process_time(), time.perf_counter()
        if workers == 1:
            parsed = sum(map(parse, paths))
        else:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                parsed = sum(pool.map(_parse_batch, floor_batches(paths, workers)))
        seconds.append(time.perf_counter() - started)
        cpu.append(cpu_children() + time.process_time() - cpu_before)
    return median(seconds), median(cpu), parsed, workers


def fresh_floor_command(paths, jobs, scratch: Path) -> list[str]:
    """The parse floor as a fresh process (parse_floor.py): Python's start, LibCST's import,
    the pool and the parse of every file, as `lintml check` pays them. A notebook is given
    as the program lintml checks for it, written out first."""
    workers = lintml_workers(len(paths), jobs)
    batched = floor_batches(paths, workers) if workers > 1 else [paths]
    paths = [path for batch in batched for path in batch]
    listed = []
    for number, path in enumerate(paths):
        if path.lower().endswith(".ipynb"):
            try:
                text = program_text(path) or ""
            except Exception:
                text = ""
            path = scratch / f"notebook-{number}.py"
            path.write_text(text, encoding="utf-8")
        listed.append(str(path))
    list_file = scratch / "floor-files.txt"
    list_file.write_text("\n".join(listed) + "\n", encoding="utf-8")
    sizes = ",".join(str(len(batch)) for batch in batched)
    return [PY, str(Path(__file__).with_name("parse_floor.py")), str(list_file), str(workers), sizes]


def paired(first, second, runs):
    """`first` and `second` (as for `timed`) run alternately, `runs` times each, so that a
    machine whose speed drifts (a shared host) slows both alike. (first's median wall and
    CPU, second's, the medians of the per-pair ratios second / first (wall, CPU), second's
    last CompletedProcess, every pair's (wall, CPU) ratio)."""
    a, b, ratios = [], [], []
    process = None
    for run in range(runs):
        wall_a, cpu_a, _ = timed(lambda _: first(run) if callable(first) else first, 1)
        wall_b, cpu_b, process = timed(lambda _: second(run) if callable(second) else second, 1)
        a.append((wall_a, cpu_a))
        b.append((wall_b, cpu_b))
        ratios.append((wall_b / wall_a, cpu_b / cpu_a))
    column = lambda rows, i: median(row[i] for row in rows)  # noqa: E731
    return (column(a, 0), column(a, 1)), (column(b, 0), column(b, 1)), (column(ratios, 0), column(ratios, 1)), process, ratios


def project_root(path: Path, top: Path) -> Path:
    """The nearest folder from `path` up to `top` with a project marker, else `top`."""
    for folder in path.parents:
        if any((folder / marker).is_file() for marker in git_corpora.ROOT_MARKERS) or folder == top:
            return folder
        if top not in folder.parents:
            break
    return top


def imports_project_file(path: Path, top: Path) -> bool:
    """Whether `path` imports a module of its own project (a relative import, or an absolute
    one found beside the file or at its project root): a cheap `ast` reading."""
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return False
    bases = (path.parent, project_root(path, top))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            heads = [(alias.name.split(".")[0], bases) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                names = [node.module.split(".")[0]] if node.module else [alias.name for alias in node.names]
                heads = [(name, (base,)) for name in names]
            elif node.module:
                heads = [(node.module.split(".")[0], bases)]
            else:
                continue
        else:
            continue
        for head, folders in heads:
            for folder in folders:
                module = folder / f"{head}.py"
                if (module.is_file() and module != path) or (folder / head).is_dir():
                    return True
    return False


def file_to_edit(corpus: Corpus, paths) -> Path:
    """The corpus's `edit` file, else the largest `.py` file that imports project files."""
    if corpus.edit:
        chosen = corpus.root / corpus.edit
        if str(chosen) not in paths:
            sys.exit(f"{corpus.name}: the file to edit, {corpus.edit}, is not among the files lintml checks")
        return chosen
    by_size = sorted((Path(p) for p in paths if p.endswith(".py")), key=lambda p: p.stat().st_size, reverse=True)
    return next((p for p in by_size if imports_project_file(p, corpus.root)), by_size[0])


def tree_rss(root_pid: int) -> int:
    """Resident set size in bytes summed over `root_pid` and all its descendants."""
    parents, rss = {}, {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:  # fields after "(name)": state ppid ...; rss (pages) is the 24th field
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry)], rss[int(entry)] = int(fields[1]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            pass
    tree, more = set(), {root_pid}
    while more:
        tree |= more
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
    return sum(rss.get(pid, 0) for pid in tree)


def peak_memory(command):
    """MB: (peak RSS summed over the process tree, sampled; peak of the largest process, exact)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_sum, done = [0], threading.Event()
    def sample():
        while not done.wait(0.05):
            peak_sum[0] = max(peak_sum[0], tree_rss(process.pid))
    (sampler := threading.Thread(target=sample)).start()
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0
    done.set()
    sampler.join()
    return peak_sum[0] / 2**20, usage.ru_maxrss / 1024  # ru_maxrss is in KB on Linux


def torchfix_seconds(cache: Path, corpus: str, root: Path, runs: int, jobs: int, rerun: bool):
    """(median seconds, record) of `torchfix -j JOBS ROOT`; measured once, then reused."""
    store = cache / "torchfix-times.json"
    known = json.loads(store.read_text()) if store.exists() else {}
    key = f"{corpus}|torchfix {TORCHFIX}|-j {jobs}"
    if rerun or key not in known or len(known[key]["seconds"]) < runs:
        venv = cache / "torchfix-venv"
        if not (venv / "bin" / "torchfix").exists():
            subprocess.run([PY, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"torchfix=={TORCHFIX}"], check=True)
        times = [timed([str(venv / "bin" / "torchfix"), "-j", str(jobs), str(root)], 1) for _ in range(runs)]
        seconds, cpu, process = [t[0] for t in times], [t[1] for t in times], times[-1][2]
        known[key] = {"seconds": seconds, "cpu": cpu, "tail": (process.stdout + process.stderr).strip().splitlines()[-2:],
                      "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        store.write_text(json.dumps(known, indent=1))
    return median(known[key]["seconds"]), known[key]


def lint_command(flags, neutral, jobs):
    lint = [PY, "-m", "lintml", "check", "--output-format", "concise", "--exit-zero", "--config", str(neutral)]
    return lint + (["--jobs", str(jobs)] if "--jobs" in flags else [])


def cold_command(lint, flags, root, cache_dir=None):
    """A cold run: an empty `--cache-dir` (it writes the cache, as a first run does), else `--no-cache`."""
    if "--cache-dir" in flags and cache_dir is not None:
        return lint + ["--cache-dir", str(cache_dir), str(root)]
    return lint + (["--no-cache"] if "--no-cache" in flags else []) + [str(root)]


def mark_project(root: Path) -> None:
    """Make the corpus folder its own project root: lintml reads the whole project
    around a checked file, and without a marker the root would be a folder above it
    (benchmarks/.cache/, with every other corpus in it)."""
    if not any((root / marker).exists() for marker in ("pyproject.toml", "setup.py", "setup.cfg", ".git")):
        (root / "setup.cfg").write_text("# written by bench_static.py: this corpus is one project\n")


def bench_corpus(corpus: Corpus, args, flags, neutral, jobs, scratch: Path) -> dict:
    mark_project(corpus.root)
    root, name = corpus.root, corpus.name
    # the files `lintml check` finds under root with that configuration (its own discovery)
    paths = [str(path) for path in iter_python_files(root, load_config(neutral), notebooks=True)]
    if not paths:
        sys.exit(f"no files to check under {root}")
    lint = lint_command(flags, neutral, jobs)
    no_cache = ["--no-cache"] if "--no-cache" in flags else []
    r = {"files": len(paths), "notebooks": sum(p.lower().endswith(".ipynb") for p in paths),
         "cold_cmd": cold_command(lint, flags, root, "EMPTY-DIR")}
    print(f"\n## {corpus.label}: {len(paths)} files ({r['notebooks']} notebooks) under {root}")
    r["floor1"], r["floor1_cpu"], r["parsed"], _ = parse_floor(paths, 1, args.runs)
    r["floorN"], r["floorN_cpu"], _, r["workers"] = parse_floor(paths, jobs if "--jobs" in flags else 1, args.runs)
    floor_command = fresh_floor_command(paths, jobs if "--jobs" in flags else 1, scratch)
    # cold: each run with a new, empty cache folder (the last one's is the warm runs'
    # cache), each right after a run of the fresh-process floor it is judged against
    cache_dirs = [Path(tempfile.mkdtemp(prefix="cold-", dir=scratch)) for _ in range(args.runs)]
    (r["fresh"], r["fresh_cpu"]), (r["cold"], r["cold_cpu"]), r["cold_per_fresh"], process, pairs = paired(
        floor_command, lambda run: cold_command(lint, flags, root, cache_dirs[run]), args.runs)
    r["pairs"] = sorted(wall for wall, _ in pairs)
    print(f"parse floor: {r['floor1']:.2f} s (1 process), {r['floorN']:.2f} s ({r['workers']} as lintml's --jobs {jobs}), "
          f"{r['fresh']:.2f} s (a fresh process: start-up and LibCST's import included)")
    print("cold / fresh floor, each pair (wall, sorted): " + " ".join(f"{ratio:.2f}" for ratio in r["pairs"]))
    found = FINDING.findall(process.stdout)
    r["findings"], r["files_with"] = len(found), len({line.split(":")[0] for line in found})
    if "no Python files" in process.stderr:
        sys.exit(f"lintml found no files under {root}: is the corpus excluded?")
    print(f"lintml cold: {r['cold']:.2f} s, {r['findings']} findings in {r['files_with']} files")
    if "--cache-dir" in flags:
        r["warm"], r["warm_cpu"], _ = timed(lint + ["--cache-dir", str(cache_dirs[-1]), str(root)], args.runs)
        # one edited file, in a copy of the corpus: its cache primed, then a comment appended before each run
        edited = file_to_edit(corpus, paths)
        r["changed_file"] = edited.relative_to(root).as_posix()
        copy = scratch / f"edited-{name}"
        shutil.copytree(root, copy, symlinks=True, ignore=shutil.ignore_patterns(".lintml_cache"))
        target, copy_cache = copy / r["changed_file"], scratch / f"edited-{name}-cache"
        original = target.read_bytes()
        edit_cmd = lint + ["--cache-dir", str(copy_cache), str(copy)]
        timed(edit_cmd, 1)  # primes the copy's cache

        def edit(run):
            target.write_bytes(original + f"\n# bench_static edit {run}\n".encode())
            return edit_cmd
        r["changed"], r["changed_cpu"], _ = timed(edit, args.runs)
        r["one_file"], r["one_file_cpu"], _ = timed(lint + no_cache + [str(target)], args.runs)
        print(f"warm {r['warm']:.2f} s; edited {r['changed_file']}: {r['changed']:.2f} s, "
              f"that file alone {r['one_file']:.2f} s")
    flake8_runs = args.runs if args.flake8_runs is None else args.flake8_runs
    if flake8_runs:
        flake8 = [PY, "-m", "flake8", "--isolated", "--exit-zero", "-j", str(jobs)]
        r["flake8"], r["flake8_cpu"], _ = timed(flake8 + ["--select", "E,F,W,C90", str(root)], flake8_runs)
        r["flake8_lml"], r["flake8_lml_cpu"], process = timed(flake8 + ["--select", "E,F,W,C90,LML", str(root)], flake8_runs)
        r["flake8_lml_findings"] = len(re.findall(r" LML\d+ ", process.stdout))
        print(f"flake8 {r['flake8']:.2f} s, +LML {r['flake8_lml']:.2f} s ({r['flake8_lml_findings']} LML findings)")
    if args.torchfix_runs:  # last: the slowest
        r["torchfix"], r["torchfix_record"] = torchfix_seconds(
            args.cache, corpus.key, root, args.torchfix_runs, jobs, args.torchfix_rerun)
        r["torchfix_cpu"] = median(r["torchfix_record"].get("cpu") or [float("nan")])
        print(f"torchfix: {r['torchfix']:.2f} s {r['torchfix_record']['tail']}")
    return r


def bench_memory(corpus: Corpus, flags, neutral, jobs, scratch: Path) -> dict:
    mark_project(corpus.root)
    """Peak memory of one cold run (an empty cache folder) on the corpus."""
    files = sum(1 for _ in iter_python_files(corpus.root, load_config(neutral), notebooks=True))
    cache_dir = Path(tempfile.mkdtemp(prefix="memory-", dir=scratch))
    rss_sum, rss_max = peak_memory(cold_command(lint_command(flags, neutral, jobs), flags, corpus.root, cache_dir))
    print(f"\n## peak RSS, {corpus.label} ({files} files): {rss_sum:.0f} MB (process tree), "
          f"{rss_max:.0f} MB (largest process)")
    return {"label": corpus.label, "name": corpus.name, "files": files, "rss_sum": rss_sum, "rss_max": rss_max}


def startup(flags, neutral, runs):
    """Seconds beyond `python -c pass`: --version, `check` of one small file served from the
    cache and checked anew (--no-cache), and `import libcst`, the part of a fresh check that
    lintml cannot make lazy."""
    small = neutral.parent / "startup_example.py"
    small.write_text("import torch\n\nx = torch.zeros(3).cuda()\n")
    base, _, _ = timed([PY, "-c", "pass"], runs)
    version, _, _ = timed([PY, "-m", "lintml", "--version"], runs)
    check = [PY, "-m", "lintml", "check", "--exit-zero", "--config", str(neutral), str(small)]
    subprocess.run(check, capture_output=True)  # prime the cache
    warm, _, _ = timed(check, runs)
    fresh, _, _ = timed([*check[:-1], "--no-cache", str(small)], runs)
    libcst_import, _, _ = timed([PY, "-c", "import libcst"], runs)
    return base, version - base, warm - base, fresh - base, libcst_import - base


def byte_compile_lintml() -> None:
    """Write lintml's .pyc files, as pip does when it installs a package: this machine sets
    PYTHONDONTWRITEBYTECODE, so an editable checkout would recompile every module on every
    start (about 15 ms for a cached run, 40 ms for a fresh one) where users' copies do not."""
    import lintml

    subprocess.run([PY, "-m", "compileall", "-q", str(Path(lintml.__file__).parent)], check=True, capture_output=True)


def machine(flags, jobs):
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    git = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = len(git("status", "--porcelain", "--", "lintml").splitlines())
    versions = ", ".join(f"{tool} {dist_version(tool)}" for tool in ("lintml", "libcst", "flake8"))
    return (f"{cpu}, {os.cpu_count()} cores (load average {os.getloadavg()[0]:.2f} at start), Python "
            f"{platform.python_version()}, {versions}, TorchFix {TORCHFIX}; lintml's working tree at commit "
            f"{git('rev-parse', 'HEAD')[:12]} + {dirty} changed file(s) under lintml/; lintml has "
            f"{', '.join(sorted(flags)) or 'none of --jobs, --no-cache, --cache-dir'}; lintml --jobs {jobs}")


def render(rows, corpora, memory, start, args, flags, jobs, info) -> tuple[str, bool]:
    ok = {True: "PASS", False: "FAIL"}
    lines = ["| corpus | files | measure | parse floor, 1 proc | parse floor, N proc | parse floor, fresh process, N proc "
             "| lintml cold | warm | one edited file | that file alone | TorchFix | flake8 E,F,W,C90 | + LML |",
             "|---|---:|---|" + "---:|" * 10]
    targets, failed = [], False

    def judge(name, what, target, value, cpu, limit):
        nonlocal failed
        passed = value <= limit if limit > 0 else value >= -limit
        cpu_text = "" if cpu != cpu else f"{cpu:.2f}"  # nan: no CPU figure
        targets.append(f"| {name} | {what} | {target} | {value:.2f} | {cpu_text} | {ok[passed]} |")
        failed |= not passed

    for name, r in rows.items():
        def cell(key):
            value = r.get(key)
            na = "n/a (no cache yet)" if key.split("_")[0] in ("warm", "changed") else "not run"
            return na if value is None or value != value else f"{value:.2f} s"
        for measure, suffix in (("wall", ""), ("CPU", "_cpu")):
            keys = ["floor1", "floorN", "fresh", "cold", "warm", "changed", "one_file", "torchfix", "flake8", "flake8_lml"]
            lines.append(f"| {corpora[name].label} | {r['files']} | {measure} | "
                         + " | ".join(cell(key + suffix) for key in keys) + " |")

        def ratio(a, b):  # (wall ratio, CPU ratio)
            return r[a] / r[b], r.get(a + "_cpu", float("nan")) / r.get(b + "_cpu", float("nan"))

        workers = r["workers"] if "--jobs" in flags else 1
        judge(name, f"lintml cold / parse floor, a fresh process at equal parallelism ({workers} proc; "
              "median of the ratios of runs side by side)", f"<= {COLD_PER_FLOOR}x", *r["cold_per_fresh"], COLD_PER_FLOOR)
        targets.append(f"| {name} | (for reference) median lintml cold / median fresh-process floor | | "
                       f"{r['cold'] / r['fresh']:.2f} | {r['cold_cpu'] / r['fresh_cpu']:.2f} | |")
        floor = "floorN" if "--jobs" in flags else "floor1"
        targets.append(f"| {name} | (for reference) lintml cold / parse floor in this process, no start-up ({workers} proc) | | "
                       f"{r['cold'] / r[floor]:.2f} | {r['cold_cpu'] / r[floor + '_cpu']:.2f} | |")
        if "warm" in r:
            judge(name, "lintml cold / warm", f">= {COLD_PER_WARM}x", *ratio("cold", "warm"), -COLD_PER_WARM)
            judge(name, f"one edited file (`{r['changed_file']}`) / that file checked alone", f"<= {EDITED_PER_ALONE}x",
                  *ratio("changed", "one_file"), EDITED_PER_ALONE)
            targets.append(f"| {name} | (for reference) (one edited file - warm) / that file alone | | "
                           f"{(r['changed'] - r['warm']) / r['one_file']:.2f} | | |")
        if "torchfix" in r:
            judge(name, "TorchFix / lintml cold (issue 7)", ">= 10x", *ratio("torchfix", "cold"), -10)
        if "flake8" in r:
            judge(name, "flake8+LML / flake8 (issue 7)", "<= 1.3x", *ratio("flake8_lml", "flake8"), 1.3)
    if memory:
        judge(memory["name"], f"peak RSS of lintml cold on {memory['label']}, process tree (MB)", f"<= {PEAK_RSS_MB}",
              memory["rss_sum"], float("nan"), PEAK_RSS_MB)
    base, version, warm, fresh, libcst_import = start
    for what, value in (("`lintml --version` minus `python -c pass`", version),
                        ("`lintml check` one small file, from the cache, minus `python -c pass`", warm),
                        ("`lintml check --no-cache` one small file minus `python -c pass`", fresh)):
        targets.append(f"| all | {what} (ms) (issue 7) | < 150 | {1000 * value:.0f} | | {ok[value < 0.15]} |")
        failed |= value >= 0.15
    targets.append(f"| all | (for reference) `python -c 'import libcst'` minus `python -c pass` (ms) | | "
                   f"{1000 * libcst_import:.0f} | | |")
    tf = [f"{n} {len(r['torchfix_record']['seconds'])} run(s)" for n, r in rows.items() if "torchfix_record" in r]
    first = next(iter(rows.values()))
    notes = [
        f"Medians of {args.runs} runs (start-up: {args.startup_runs}). `python -c pass` took {1000 * base:.0f} ms. "
        "lintml is byte-compiled first (`compileall`), as an installed copy is.",
        "lintml cold / fresh-process floor, each pair (wall, sorted): "
        + "; ".join(f"{name} {' '.join(f'{ratio:.2f}' for ratio in r['pairs'])}" for name, r in rows.items()) + ".",
        *[f"Corpus {c.name}: {c.detail}; {rows[c.name]['files']} files lintml checks "
          f"({rows[c.name]['notebooks']} notebooks)." for c in corpora.values() if c.kind == "git" and c.name in rows],
        f"TorchFix: `torchfix -j {jobs} CORPUS` (default rules, report only): {'; '.join(tf) or 'not run'}.",
        "Parse floor: read + `libcst.parse_module` of each file lintml checks (a notebook's code cells joined as "
        "lintml joins them), in this process (no start-up); fresh process: `benchmarks/parse_floor.py` in a new "
        "Python process (its start, `import libcst` and the pool included, as in lintml's cold run: the floor the "
        "cold target is judged against); N proc: a fresh fork pool of as many workers as lintml "
        f"starts with `--jobs {jobs}` (min(jobs, files // 4)), fed the batches lintml sends (`runner.batch_order`: "
        "the largest files first, in batches that shrink towards the end); workers: "
        + ", ".join(f"{n} {r['workers']}" for n, r in rows.items()) + ".",
        f"lintml cold: `{shlex.join(first['cold_cmd'][1:])}`, a new empty `--cache-dir` each run, each right after "
        "a run of the fresh-process floor (alternating: the cold target is the median of the pairs' ratios, so a "
        "shared machine's drifting speed slows both sides of each ratio alike) "
        "(a neutral pyproject.toml, since the repo's own excludes benchmarks/.cache); findings per corpus: "
        + ", ".join(f"{n} {r['findings']} in {r['files_with']} files" for n, r in rows.items()) + ".",
        "Warm: the same command again with the last cold run's cache folder.",
        "One edited file: in a copy of the corpus, its cache primed, a comment line appended to that file before "
        "each run, then the warm command on the copy; that file alone: `lintml check --no-cache FILE`.",
        "flake8: `E,F,W,C90` (pycodestyle, pyflakes, mccabe) against the same plus `LML`, `--isolated`, same `-j`; "
        "the plugin is installed in both, so the difference is what selecting it costs.",
        ("Peak RSS: one cold run (an empty cache folder) on " + memory["label"] + f" ({memory['files']} files), "
         f"summed over lintml and its workers, sampled every 50 ms; the largest process alone: {memory['rss_max']:.0f} MB."
         ) if memory else "Peak RSS: not measured (`--memory-corpus none`).",
        "CPU: user + system seconds of the process tree; steadier than wall time on a busy machine. "
        "Targets are judged on wall time.",
        f"Machine: {info}; load average at the end {os.getloadavg()[0]:.2f} (1 min), {os.getloadavg()[2]:.2f} (15 min).",
    ]
    text = "\n".join(["### Timings", "", *lines, "", "### Targets", "", "| corpus | measure | target | wall | CPU | result |",
                      "|---|---|---|---:|---:|---|", *targets, "", *[f"- {note}" for note in notes], "",
                      "Command: `" + shlex.join([".venv/bin/python", "benchmarks/bench_static.py", *sys.argv[1:]]) + "`"])
    return text, failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median), default 3")
    parser.add_argument("--torchfix-runs", type=int, default=3, help="TorchFix runs (slow); 0 skips it")
    parser.add_argument("--torchfix-rerun", action="store_true", help="measure TorchFix again, not from the cache")
    parser.add_argument("--flake8-runs", type=int, help="flake8 runs (default: --runs); 0 skips it")
    parser.add_argument("--startup-runs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes (default: all cores)")
    parser.add_argument("--corpora", default=DEFAULT_CORPORA,
                        help=f"wheels of precision.py's pin list and git corpora of corpora.toml (default {DEFAULT_CORPORA})")
    parser.add_argument("--memory-corpus", default="transformers",
                        help="corpus of the peak-RSS run, measured even when not in --corpora; none skips it")
    parser.add_argument("--corpora-file", type=Path, default=git_corpora.DEFAULT_LIST, help="the git corpora's commit list")
    parser.add_argument("--mirror", type=Path, default=git_corpora.DEFAULT_MIRROR, help="folder of the git snapshots")
    parser.add_argument("--cache", type=Path, default=precision.DEFAULT_CACHE)
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be 1 or more")
    try:
        git = git_corpora.load(args.corpora_file)
    except git_corpora.CorpusError as error:
        print(f"bench_static: {error}", file=sys.stderr)
        return 2
    names = [name.strip() for name in args.corpora.split(",") if name.strip()]
    memory_name = None if args.memory_corpus.lower() in ("", "none") else args.memory_corpus
    if unknown := [name for name in [*names, memory_name] if name and name not in PINS and name not in git]:
        parser.error(f"unknown corpora {unknown}; known: {', '.join([*PINS, *git])}")
    usage = subprocess.run([PY, "-m", "lintml", "check", "--help"], capture_output=True, text=True).stdout
    flags = {flag for flag in ("--no-cache", "--cache-dir", "--jobs") if flag in usage}  # what lintml has today
    jobs = args.jobs if "--jobs" in flags else 1
    neutral = args.cache / "pyproject.toml"  # the nearest pyproject for the corpora: lintml's defaults
    args.cache.mkdir(parents=True, exist_ok=True)
    neutral.write_text("# written by bench_static.py: lintml's defaults for the corpora\n[tool.lintml]\n")
    try:
        corpora = {name: resolve(name, args, git) for name in dict.fromkeys([*names, *([memory_name] if memory_name else [])])}
    except (git_corpora.CorpusError, precision.PackageError) as error:
        print(f"bench_static: {error}", file=sys.stderr)
        return 2
    byte_compile_lintml()
    print(info := machine(flags, jobs))
    scratch = Path(tempfile.mkdtemp(prefix="bench-static-", dir=args.cache))  # cache folders, edited copies
    try:
        rows = {name: bench_corpus(corpora[name], args, flags, neutral, jobs, scratch) for name in names}
        memory = bench_memory(corpora[memory_name], flags, neutral, jobs, scratch) if memory_name else None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    text, failed = render(rows, corpora, memory, startup(flags, neutral, args.startup_runs), args, flags, jobs, info)
    print("\n" + text)
    if args.output:
        args.output.write_text(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
