"""Gradient checkpointing (``unroll.checkpoint``): peak activation memory and time of one
loss-and-gradients call, with full storage and with the states kept every k ≈ √T steps.

A many-to-one LSTM at C2 sizes (batch 1, input 32, hidden 128, float32), so that no
output sequence is O(T) memory; T = 1,000, 10,000 and 100,000. Memory is tracemalloc's
peak over one call, made after ``release_workspace()`` (the arrays a module keeps between
calls are allocated inside the call measured); time is the median of calls with the
workspace kept, as training runs. The two modules alternate, in one process.

    OPENBLAS_NUM_THREADS=1 python benchmarks/checkpointing.py [--steps 1000 10000 100000]

writes benchmarks/results/checkpointing.json. On this project's shared 2-core machines,
run it with one BLAS thread: a checkpointed call makes two small products per weight a
segment (instead of one large one a call), and OpenBLAS's second thread, which it takes
for products from [128, 32] @ [32, 128] up, waits for a core that other jobs hold: at
T = 10,000 a call took 7.8 times full storage's with two threads there, 1.3 with one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np
from bptt_scaling import SPEC  # the same LSTM (many-to-one, input 32, hidden 128)

import rnncompiler as rc

RESULTS = Path(__file__).resolve().parent / "results" / "checkpointing.json"


def module_for(steps: int, checkpoint: int | None):
    unroll = f"steps: {steps}" + (f", checkpoint: {checkpoint}" if checkpoint else "")
    spec = rc.load_spec_text(SPEC.format(unroll=unroll), filename="lstm_checkpointing.yaml")
    return spec, rc.compile_spec(spec, steps=steps, train=True)


def peak_bytes(module, params, data) -> int:
    namespace = module.namespace()
    namespace["release_workspace"]()
    tracemalloc.start()
    module.loss_and_grads(params, data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def measure(steps: int, repeats: int) -> dict:
    every = math.ceil(math.sqrt(steps))
    (spec, full), (_, kept) = module_for(steps, None), module_for(steps, every)
    rng = np.random.default_rng(0)
    params = rc.init_params(spec, seed=0)
    data = {"x": rng.standard_normal((1, steps, 32)).astype(np.float32),
            "y": rng.standard_normal((1, 1)).astype(np.float32)}
    loss_full, grads_full = full.loss_and_grads(params, data)
    loss_kept, grads_kept = kept.loss_and_grads(params, data)
    worst = max(float(np.max(np.abs(grads_full[k] - grads_kept[k]))
                      / (np.max(np.abs(grads_full[k])) + 1e-30)) for k in grads_full)
    memory = {"full": peak_bytes(full, params, data), "checkpoint": peak_bytes(kept, params, data)}
    times: dict = {"full": [], "checkpoint": []}
    for _ in range(repeats):
        for name, module in (("full", full), ("checkpoint", kept)):
            start = time.perf_counter()
            module.loss_and_grads(params, data)
            times[name].append(time.perf_counter() - start)
    for module in (full, kept):
        module.namespace()["release_workspace"]()
    median = {name: statistics.median(values) for name, values in times.items()}
    return {"steps": steps, "checkpoint": every,
            "peak_mib_full": memory["full"] / 2**20,
            "peak_mib_checkpoint": memory["checkpoint"] / 2**20,
            "memory_ratio": memory["full"] / memory["checkpoint"],
            "seconds_full": median["full"], "seconds_checkpoint": median["checkpoint"],
            "time_ratio": median["checkpoint"] / median["full"],
            "times_full": times["full"], "times_checkpoint": times["checkpoint"],
            "loss_difference": float(abs(loss_full - loss_kept)),
            "worst_relative_gradient_difference": worst}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=str(RESULTS), help="where to write the rows")
    args = parser.parse_args()
    print(f"{'T':>7}{'k':>5}{'full MiB':>10}{'ckpt MiB':>10}{'mem x':>8}"
          f"{'full s':>9}{'ckpt s':>9}{'time x':>8}")
    rows = []
    for steps in args.steps:
        row = measure(steps, args.repeats)
        rows.append(row)
        print(f"{steps:>7}{row['checkpoint']:>5}{row['peak_mib_full']:>10.2f}"
              f"{row['peak_mib_checkpoint']:>10.2f}{row['memory_ratio']:>8.1f}"
              f"{row['seconds_full']:>9.3f}{row['seconds_checkpoint']:>9.3f}"
              f"{row['time_ratio']:>8.2f}", flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as stream:
        json.dump({"machine": "2 shared cores; medians of alternating calls in one process",
                   "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                   "rows": rows}, stream, indent=2)


if __name__ == "__main__":
    main()
