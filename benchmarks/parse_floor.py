"""The LibCST parse floor as a process of its own, for bench_static.py: start Python,
import LibCST, then read and `libcst.parse_module` every file of a list, in a fork pool
of WORKERS processes fed batches of BATCH files (one process: no pool). This is what any
LibCST-based linter pays at least, start-up included, as `lintml check` does.

    python benchmarks/parse_floor.py LIST_FILE WORKERS BATCH

LIST_FILE holds one path a line (notebooks already joined into `.py` text by the caller).
BATCH is one size, or the size of each batch in turn, comma-separated (the list is then in
the order the batches take it: lintml's, from `runner.batch_order`). Prints the number of
files that parsed.
"""

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor

import libcst


def parse(path: str) -> int:
    try:  # a file LibCST cannot parse costs what it costs
        with open(path, encoding="utf-8") as handle:
            return bool(libcst.parse_module(handle.read()))
    except Exception:
        return 0


def parse_batch(paths: list[str]) -> int:
    return sum(map(parse, paths))


def batches(paths: list[str], sizes: list[int]) -> list[list[str]]:
    if len(sizes) == 1:
        return [paths[i : i + sizes[0]] for i in range(0, len(paths), sizes[0])]
    found, start = [], 0
    for size in sizes:
        found.append(paths[start : start + size])
        start += size
    return found


def main(argv) -> int:
    list_file, workers, sizes = argv[0], int(argv[1]), [int(size) for size in argv[2].split(",")]
    with open(list_file, encoding="utf-8") as handle:
        paths = handle.read().splitlines()
    if workers <= 1:
        parsed = sum(map(parse, paths))
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            parsed = sum(pool.map(parse_batch, batches(paths, sizes)))
    print(parsed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
