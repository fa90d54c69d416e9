"""The LibCST parse floor as a process of its own, for bench_static.py: start Python,
import LibCST, then read and `libcst.parse_module` every file of a list, in a fork pool
of WORKERS processes fed batches of BATCH files (one process: no pool). This is what any
LibCST-based linter pays at least, start-up included, as `lintml check` does.

    python benchmarks/parse_floor.py LIST_FILE WORKERS BATCH

LIST_FILE holds one path a line (notebooks already joined into `.py` text by the caller).
Prints the number of files that parsed.
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


def main(argv) -> int:
    list_file, workers, batch = argv[0], int(argv[1]), int(argv[2])
    with open(list_file, encoding="utf-8") as handle:
        paths = handle.read().splitlines()
    if workers <= 1:
        parsed = sum(map(parse, paths))
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            parsed = sum(pool.map(parse, paths, chunksize=batch))
    print(parsed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
