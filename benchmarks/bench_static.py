"""How fast `lintml check` is on real code, next to LibCST, TorchFix and flake8 (issue 7).

Corpora: the `.py` files of pinned wheels, unpacked into benchmarks/.cache/ by `precision.py`.
Each figure is the median of `--runs` fresh processes (the LibCST floor is timed in this one);
TorchFix runs from its own venv, its timings kept in .cache/torchfix-times.json. Exit status 1 if a target fails.

    .venv/bin/python benchmarks/bench_static.py --torchfix-runs 1 --output /tmp/bench-static.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version as dist_version
from pathlib import Path
from statistics import median

import libcst

sys.path.insert(0, str(Path(__file__).resolve().parent))
import precision  # noqa: E402  (the download/unpack code)
from lintml.config import load_config  # noqa: E402
from lintml.files import iter_python_files  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PINS = {name: version for name, version, _ in precision.PACKAGES}
TORCHFIX = "0.7.0"
PY = sys.executable
FINDING = re.compile(r"^.+?:\d+:\d+: [A-Z]+\d+ ", re.M)


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # waited-for children, workers included
    return usage.ru_utime + usage.ru_stime  # user + system seconds


def timed(command, runs):
    """(median wall seconds, median CPU seconds of the process tree, last CompletedProcess)."""
    wall, cpu, process = [], [], None
    for _ in range(runs):
        cpu_before, started = cpu_children(), time.perf_counter()
        process = subprocess.run(command, capture_output=True, text=True)
        wall.append(time.perf_counter() - started)
        cpu.append(cpu_children() - cpu_before)
        if process.returncode != 0:
            sys.exit(f"failed ({process.returncode}): {shlex.join(command)}\n{process.stderr[-2000:]}")
    return median(wall), median(cpu), process


def parse(path: str) -> int:
    try:  # a file LibCST cannot parse costs what it costs, as in lintml
        return bool(libcst.parse_module(Path(path).read_text(encoding="utf-8")))
    except Exception:
        return 0


def parse_floor(paths, workers, runs):
    """Read + `libcst.parse_module` every file here, or in a fresh pool (its start-up counted)."""
    seconds, cpu = [], []
    for _ in range(runs):
        cpu_before, started = cpu_children() + time.process_time(), time.perf_counter()
        if workers == 1:
            parsed = sum(map(parse, paths))
        else:
            with ProcessPoolExecutor(workers) as pool:
                parsed = sum(pool.map(parse, paths, chunksize=8))
        seconds.append(time.perf_counter() - started)
        cpu.append(cpu_children() + time.process_time() - cpu_before)
    return median(seconds), median(cpu), parsed


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


def bench_corpus(name, root, args, flags, neutral, jobs) -> dict:
    # the files `lintml check` finds under root with that configuration (its own discovery)
    paths = [str(path) for path in iter_python_files(root, load_config(neutral))]
    lint = [PY, "-m", "lintml", "check", "--output-format", "concise", "--exit-zero", "--config", str(neutral)]
    lint += ["--jobs", str(jobs)] if "--jobs" in flags else []
    no_cache = ["--no-cache"] if "--no-cache" in flags else []
    cold_cmd = lint + no_cache + [str(root)]
    r = {"files": len(paths), "cold_cmd": cold_cmd}
    print(f"\n## {name}: {len(paths)} .py files")
    r["floor1"], r["floor1_cpu"], r["parsed"] = parse_floor(paths, 1, args.runs)
    r["floorN"], r["floorN_cpu"], _ = parse_floor(paths, jobs, args.runs)
    print(f"parse floor: {r['floor1']:.2f} s (1 process), {r['floorN']:.2f} s ({jobs})")
    r["cold"], r["cold_cpu"], process = timed(cold_cmd, args.runs)
    found = FINDING.findall(process.stdout)
    r["findings"], r["files_with"] = len(found), len({line.split(":")[0] for line in found})
    if "no Python files" in process.stderr:
        sys.exit(f"lintml found no files under {root}: is the corpus excluded?")
    print(f"lintml cold: {r['cold']:.2f} s, {r['findings']} findings in {r['files_with']} files")
    if "--cache-dir" in flags:
        with tempfile.TemporaryDirectory() as cache_dir:
            warm_cmd = lint + ["--cache-dir", cache_dir, str(root)]
            timed(warm_cmd, 1)  # primes the cache
            r["warm"], r["warm_cpu"], _ = timed(warm_cmd, args.runs)
            changed = Path(max(paths, key=lambda p: Path(p).stat().st_size))  # the largest file
            original = changed.read_bytes()
            try:
                seconds = []
                for run in range(args.runs):
                    changed.write_bytes(original + f"\n# bench_static edit {run}\n".encode())
                    seconds.append(timed(warm_cmd, 1)[0])
            finally:
                changed.write_bytes(original)
            r["changed"], r["changed_file"] = median(seconds), changed.relative_to(root).as_posix()
        r["one_file"], _, _ = timed(lint + no_cache + [str(changed)], args.runs)
        print(f"warm {r['warm']:.2f} s; changed {r['changed_file']}: {r['changed']:.2f} s, alone {r['one_file']:.2f} s")
    flake8 = [PY, "-m", "flake8", "--isolated", "--exit-zero", "-j", str(jobs)]
    r["flake8"], r["flake8_cpu"], _ = timed(flake8 + ["--select", "E,F,W,C90", str(root)], args.runs)
    r["flake8_lml"], r["flake8_lml_cpu"], process = timed(flake8 + ["--select", "E,F,W,C90,LML", str(root)], args.runs)
    r["flake8_lml_findings"] = len(re.findall(r" LML\d+ ", process.stdout))
    print(f"flake8 {r['flake8']:.2f} s, +LML {r['flake8_lml']:.2f} s ({r['flake8_lml_findings']} LML findings)")
    if name == args.memory_corpus:
        r["rss_sum"], r["rss_max"] = peak_memory(cold_cmd)
        print(f"peak RSS: {r['rss_sum']:.0f} MB (process tree), {r['rss_max']:.0f} MB (largest process)")
    if args.torchfix_runs:  # last: the slowest
        r["torchfix"], r["torchfix_record"] = torchfix_seconds(
            args.cache, f"{name}-{PINS[name]}", root, args.torchfix_runs, jobs, args.torchfix_rerun)
        r["torchfix_cpu"] = median(r["torchfix_record"].get("cpu") or [float("nan")])
        print(f"torchfix: {r['torchfix']:.2f} s {r['torchfix_record']['tail']}")
    return r


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
            f"{', '.join(sorted(flags)) or 'none of --jobs, --no-cache, --cache-dir'}; lintml workers: {jobs}")


def render(rows, start, args, flags, jobs, info) -> tuple[str, bool]:
    ok = {True: "PASS", False: "FAIL"}
    lines = ["| corpus | files | measure | parse floor, 1 proc | parse floor, N proc | lintml cold | warm "
             "| one changed file | TorchFix | flake8 E,F,W,C90 | + LML |", "|---|---:|---|" + "---:|" * 8]
    targets, failed = [], False
    for name, r in rows.items():
        def cell(key):
            value, na = r.get(key), "n/a (no cache yet)" if key in ("warm", "changed") else "not run"
            return na if value is None or value != value else f"{value:.2f} s"
        for measure, suffix in (("wall", ""), ("CPU", "_cpu")):
            keys = ["floor1", "floorN", "cold", "warm", "changed", "torchfix", "flake8", "flake8_lml"]
            lines.append(f"| {name} {PINS[name]} | {r['files']} | {measure} | "
                         + " | ".join(cell(key + suffix) if key != "changed" or not suffix else "-" for key in keys) + " |")

        def ratio(a, b):  # (wall ratio, CPU ratio)
            return r[a] / r[b], r.get(a + "_cpu", float("nan")) / r.get(b + "_cpu", float("nan"))

        floor = "floorN" if "--jobs" in flags else "floor1"
        checks = [(f"lintml cold / parse floor, equal parallelism ({jobs} proc)", "<= 1.5x", *ratio("cold", floor), 1.5)]
        if "torchfix" in r:
            checks.append(("TorchFix / lintml cold", ">= 10x", *ratio("torchfix", "cold"), -10))
        if "warm" in r:
            checks.append(("lintml cold / warm", ">= 50x", *ratio("cold", "warm"), -50))
            checks.append(("(one changed file - warm) / that file checked alone", "<= 1.0x",
                           (r["changed"] - r["warm"]) / r["one_file"], float("nan"), 1.0))
        checks.append(("flake8+LML / flake8", "<= 1.3x", *ratio("flake8_lml", "flake8"), 1.3))
        if "rss_sum" in r:
            checks.append(("peak RSS of lintml cold, process tree (MB)", "<= 400", r["rss_sum"], float("nan"), 400))
        for what, target, value, cpu, limit in checks:
            passed = value <= limit if limit > 0 else value >= -limit
            cpu_text = "" if cpu != cpu else f"{cpu:.2f}"  # nan: no CPU figure
            targets.append(f"| {name} | {what} | {target} | {value:.2f} | {cpu_text} | {ok[passed]} |")
            failed |= not passed
    base, version, warm, fresh, libcst_import = start
    for what, value in (("`lintml --version` minus `python -c pass`", version),
                        ("`lintml check` one small file, from the cache, minus `python -c pass`", warm),
                        ("`lintml check --no-cache` one small file minus `python -c pass`", fresh)):
        targets.append(f"| all | {what} (ms) | < 150 | {1000 * value:.0f} | | {ok[value < 0.15]} |")
        failed |= value >= 0.15
    targets.append(f"| all | (for reference) `python -c 'import libcst'` minus `python -c pass` (ms) | | "
                   f"{1000 * libcst_import:.0f} | | |")
    tf = [f"{n} {len(r['torchfix_record']['seconds'])} run(s)" for n, r in rows.items() if "torchfix_record" in r]
    notes = [
        f"Medians of {args.runs} runs (start-up: {args.startup_runs}). `python -c pass` took {1000 * base:.0f} ms. "
        "lintml is byte-compiled first (`compileall`), as an installed copy is.",
        f"TorchFix: `torchfix -j {args.jobs} CORPUS` (default rules, report only): {'; '.join(tf) or 'not run'}.",
        "Parse floor: read + `libcst.parse_module` of each file lintml checks, in this process (no start-up).",
        f"lintml cold: `{shlex.join(next(iter(rows.values()))['cold_cmd'][1:])}` (a neutral pyproject.toml, since "
        "the repo's own excludes benchmarks/.cache); findings per corpus: "
        + ", ".join(f"{n} {r['findings']} in {r['files_with']} files" for n, r in rows.items()) + ".",
        "One changed file: the largest, a comment appended before each run (restored after); that file checked "
        "alone, cold, is what the change should cost.",
        "flake8: `E,F,W,C90` (pycodestyle, pyflakes, mccabe) against the same plus `LML`, `--isolated`, same `-j`; "
        "the plugin is installed in both, so the difference is what selecting it costs.",
        "Peak RSS: summed over lintml and its workers, sampled every 50 ms; the largest process alone: "
        + ", ".join(f"{r['rss_max']:.0f} MB" for r in rows.values() if "rss_max" in r) + ".",
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
    parser.add_argument("--startup-runs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes (default: all cores)")
    parser.add_argument("--corpora", default="timm,transformers")
    parser.add_argument("--memory-corpus", default="transformers")
    parser.add_argument("--cache", type=Path, default=precision.DEFAULT_CACHE)
    parser.add_argument("--output", type=Path, help="also write the Markdown report here")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.corpora.split(",") if name.strip()]
    if unknown := [name for name in names if name not in PINS]:
        parser.error(f"unknown corpora {unknown}; known: {', '.join(PINS)}")
    usage = subprocess.run([PY, "-m", "lintml", "check", "--help"], capture_output=True, text=True).stdout
    flags = {flag for flag in ("--no-cache", "--cache-dir", "--jobs") if flag in usage}  # what lintml has today
    jobs = args.jobs if "--jobs" in flags else 1
    neutral = args.cache / "pyproject.toml"  # the nearest pyproject for the corpora: lintml's defaults
    args.cache.mkdir(parents=True, exist_ok=True)
    neutral.write_text("# written by bench_static.py: lintml's defaults for the corpora\n[tool.lintml]\n")
    byte_compile_lintml()
    print(info := machine(flags, jobs))
    rows = {name: bench_corpus(name, precision.fetch(name, PINS[name], args.cache), args, flags, neutral, args.jobs)
            for name in names}
    text, failed = render(rows, startup(flags, neutral, args.startup_runs), args, flags, jobs, info)
    print("\n" + text)
    if args.output:
        args.output.write_text(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
