"""How much slower code runs inside `lintml.runtime.watch()` than without it.

Two workloads, each timed watched and unwatched in one process, the repetitions
interleaved (A B, B A, A B, ...) so that machine noise hits both modes alike:

- cnn-train: N training steps (zero_grad, forward, loss, backward, AdamW step) of a
  small CNN (2 conv + BatchNorm2d + Dropout + linear head), batch 32 of 3x32x32;
- gpt2-generate: greedy `generate` of exactly 64 new tokens by a tiny random GPT-2
  (2 layers, 64 wide) for a batch of 4 prompts of 16 tokens, KV cache on.

Each watched repetition enters a fresh `watch()` around the block (as users do), so
its time includes installing and removing the hooks and building the observations.
Exit status 1 if a workload's overhead exceeds --max-overhead percent, 2 for bad options.

    .venv/bin/python benchmarks/runtime_overhead.py --output /tmp/overhead.md
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cnn_workload(torch, device, steps):
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.1), nn.Linear(32 * 8 * 8, 10),
    ).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.randn(32, 3, 32, 32, device=device)
    labels = torch.randint(0, 10, (32,), device=device)
    loss_fn = nn.CrossEntropyLoss()

    def run():
        for _ in range(steps):
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()

    return run


def gpt2_workload(torch, device, new_tokens=64):
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.manual_seed(0)
    config = GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=1000, n_positions=256)
    model = GPT2LMHeadModel(config).to(device).eval()
    prompts = torch.randint(1, 1000, (4, 16), device=device)
    mask = torch.ones_like(prompts)

    def run():
        out = model.generate(prompts, attention_mask=mask, do_sample=False, pad_token_id=0,
                             max_new_tokens=new_tokens, min_new_tokens=new_tokens)
        assert out.shape[1] == 16 + new_tokens, out.shape

    return run


WORKLOADS = {"cnn-train": cnn_workload, "gpt2-generate": gpt2_workload}


def measure(torch, watch, run, device, repeats, warmup):
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def once(watched):
        sync()
        start = time.perf_counter()
        if watched:
            with watch() as w:
                run()
                sync()
        else:
            run()
            sync()
        elapsed = time.perf_counter() - start
        if watched:
            w.observations  # noqa: B018 -- ready after exit; raises if the watch broke
        return elapsed * 1000.0

    for _ in range(warmup):
        once(False)
        once(True)
    plain, watched = [], []
    for i in range(repeats):
        order = (False, True) if i % 2 == 0 else (True, False)  # ABBA: no first-mover bias
        for mode in order:
            (watched if mode else plain).append(once(mode))
    ratios = [w / p for w, p in zip(watched, plain)]
    return plain, watched, ratios


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repetitions per mode (default: 40 for cnn-train, 60 for gpt2-generate)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed repetitions per mode first")
    parser.add_argument("--steps", type=int, default=20, help="training steps per cnn-train repetition")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated subset of: " + ", ".join(WORKLOADS))
    parser.add_argument("--max-overhead", type=float, default=5.0, help="percent; exit 1 above it")
    parser.add_argument("--output", help="also write the Markdown table to this file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names or (args.repeats is not None and args.repeats < 1):
        parser.error(f"unknown workload(s) {unknown}" if unknown else "nothing to run")

    import torch
    from lintml.runtime import watch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("--device cuda: torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else cpu_name()
    command = " ".join(shlex.quote(a) for a in [sys.executable.replace(sys.prefix, ".venv"), *sys.argv])
    header = (f"torch {torch.__version__}, device {args.device} ({device_name}), "
              f"{args.threads} thread(s), python {platform.python_version()}")
    if not args.json:
        print(header, flush=True)

    rows = []
    for name in names:
        repeats = args.repeats or {"cnn-train": 40, "gpt2-generate": 60}[name]
        make = WORKLOADS[name]
        run = make(torch, args.device, args.steps) if name == "cnn-train" else make(torch, args.device)
        started = time.perf_counter()
        plain, watched, ratios = measure(torch, watch, run, args.device, repeats, args.warmup)
        p, w = statistics.median(plain), statistics.median(watched)
        row = {
            "workload": name + (f" ({args.steps} steps)" if name == "cnn-train" else " (64 tokens)"),
            "device": args.device, "unwatched_ms": round(p, 3), "watched_ms": round(w, 3),
            "overhead_pct": round((w / p - 1) * 100, 2),
            "paired_overhead_pct": round((statistics.median(ratios) - 1) * 100, 2),
            "unwatched_iqr_ms": [round(q, 3) for q in statistics.quantiles(plain, n=4)[::2]] if repeats > 1 else None,
            "repeats": repeats, "seconds": round(time.perf_counter() - started, 1),
        }
        rows.append(row)
        if not args.json:
            print(f"{row['workload']}: unwatched {p:.2f} ms, watched {w:.2f} ms, overhead {row['overhead_pct']:+.2f}% "
                  f"(median of paired ratios {row['paired_overhead_pct']:+.2f}%), {repeats} repeats, "
                  f"{row['seconds']} s", flush=True)

    table = ["| workload | device | unwatched median ms | watched median ms | overhead % | repeats |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        table.append(f"| {r['workload']} | {r['device']} | {r['unwatched_ms']:.2f} | {r['watched_ms']:.2f} "
                     f"| {r['overhead_pct']:+.2f} | {r['repeats']} |")
    markdown = "\n".join([f"{header}", "", *table, "", "```sh", command, "```", ""])
    if args.output:
        with open(args.output, "w") as f:
            f.write(markdown)
    if args.json:
        print(json.dumps({"torch": torch.__version__, "device": args.device, "device_name": device_name,
                          "threads": args.threads, "command": command, "results": rows}, indent=2))
    else:
        print("\n" + "\n".join(table))
    over = [r["workload"] for r in rows if r["overhead_pct"] > args.max_overhead]
    if over:
        print(f"overhead above {args.max_overhead}%: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
