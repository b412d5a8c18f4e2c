"""How BPTT's cost grows with the sequence length T, for an LSTM (batch 8, input 32,
hidden 128, many-to-one, float32): compile time, the time of one loss-and-gradients call
(median of repeats) and its peak memory, for T = 10 .. 1000, per truncation mode.

Full BPTT and chunks should grow linearly in T (time per step and memory per step
roughly constant); a window of k costs about k times full per step (O(T*k)).

    python benchmarks/bptt_scaling.py [--steps 10 30 100 300 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc

import numpy as np

import rnncompiler as rc

SPEC = """
rnnc: 1
name: lstm_scaling
inputs: {{x: {{features: 32}}}}
targets: {{y: {{features: 1, sequence: false}}}}
layers:
  - {{name: RNN, type: rnn, cell: lstm, units: 128, input: x}}
  - {{name: out, type: dense, units: 1, input: RNN}}
loss: {{type: mse, output: out, target: y}}
unroll: {{{unroll}}}
"""


def measure(bptt: str, steps: int, batch: int = 8, repeats: int = 5) -> dict:
    spec = rc.load_spec_text(SPEC.format(unroll=f"bptt: {bptt}"), filename="lstm_scaling.yaml")
    rng = np.random.default_rng(0)
    params = rc.init_params(spec, seed=0)
    data = {"x": rng.standard_normal((batch, steps, 32)).astype(np.float32),
            "y": rng.standard_normal((batch, 1)).astype(np.float32)}
    start = time.perf_counter()
    module = rc.compile_spec(spec, steps=steps, train=True)
    compile_s = time.perf_counter() - start
    module.loss_and_grads(params, data)  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        module.loss_and_grads(params, data)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    module.loss_and_grads(params, data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    median = statistics.median(times)
    return {"bptt": bptt, "steps": steps, "compile_s": compile_s, "grad_s": median,
            "grad_us_per_step": 1e6 * median / steps, "peak_mib": peak / 2**20,
            "peak_kib_per_step": peak / 1024 / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 30, 100, 300, 1000])
    parser.add_argument("--modes", nargs="+", default=["full", "{chunk: 20}", "{window: 5}"])
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    rows = []
    header = f"{'bptt':<13}{'T':>6}{'compile s':>11}{'grad ms':>10}{'us/step':>9}" \
             f"{'peak MiB':>10}{'KiB/step':>10}"
    print(header)
    for mode in args.modes:
        for steps in args.steps:
            row = measure(mode, steps)
            rows.append(row)
            print(f"{mode:<13}{steps:>6}{row['compile_s']:>11.2f}{1e3 * row['grad_s']:>10.2f}"
                  f"{row['grad_us_per_step']:>9.0f}{row['peak_mib']:>10.2f}"
                  f"{row['peak_kib_per_step']:>10.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(rows, stream, indent=2)


if __name__ == "__main__":
    main()
