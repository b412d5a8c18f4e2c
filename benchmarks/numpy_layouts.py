"""The generated NumPy module's two layouts against each other, per cell and size (the
configurations of ``suite.py``): ``_forward_batch_major`` and ``_forward_feature_major``
(and ``_loss_and_grads_*``) of one module, called in one process, alternating, each
round's order swapped; medians of ``--rounds`` x 5 calls. Batch-major is what ``forward``
ran before it chose a layout per call, so the ratio is the change at C1 and C3.

    python benchmarks/numpy_layouts.py [--cells lstm gru simple] [--configs C1 C3]
        [--rounds 7] [--cpu]

``--cpu`` times in CPU seconds (``time.process_time``): on a machine others load, with
``OPENBLAS_NUM_THREADS=1``, steadier than wall-clock time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from suite_measure import SPEC

import rnncompiler as rc

CONFIGS = {"C1": (32, 100, 64, 256), "C2": (1, 1000, 32, 128), "C3": (64, 50, 256, 512)}


def medians(functions: list, args: tuple, rounds: int, clock) -> list[float]:
    times: list[list[float]] = [[] for _ in functions]
    for k in range(rounds):
        order = list(range(len(functions)))[::1 if k % 2 == 0 else -1]
        for i in order:
            functions[i](*args)  # warm
            for _ in range(5):
                start = clock()
                functions[i](*args)
                times[i].append(clock() - start)
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru", "simple"])
    parser.add_argument("--configs", nargs="+", default=["C1", "C3"], choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cpu", action="store_true", help="CPU time, not wall-clock time")
    args = parser.parse_args()
    clock = time.process_time if args.cpu else time.perf_counter
    for cell in args.cells:
        for config in args.configs:
            batch, steps, inputs, hidden = CONFIGS[config]
            spec = rc.load_spec_text(SPEC.format(cell=cell, steps=steps, input=inputs,
                                                 hidden=hidden), filename="bench.yaml")
            module = rc.compile_spec(spec, "numpy", steps=steps, train=True).namespace()
            params = rc.init_params(spec, seed=0)
            rng = np.random.default_rng(0)
            data = {"x": rng.standard_normal((batch, steps, inputs), np.float32),
                    "y": rng.standard_normal((batch, steps, hidden), np.float32)}
            line = f"{cell:6s} {config}:"
            for name in ("forward", "loss_and_grads"):
                functions = [module[f"_{name}_{layout}"]
                             for layout in ("batch_major", "feature_major")]
                before, after = medians(functions, (params, data), args.rounds, clock)
                line += (f"  {name} {before * 1e3:.2f} -> {after * 1e3:.2f} ms "
                         f"({after / before:.2f}x)")
            print(line, flush=True)


if __name__ == "__main__":
    main()
