"""Which onnxruntime session options the project's runtime should set: the forward of one
recurrent layer (``auto`` and ``scan`` models, as ``rnnc compile --backend onnx`` writes
them) under intra-op threads (1, 2), thread spinning (on, off) and graph optimisation
(basic, all), per cell and config (C1, C2, C3 of ``suite.py``).

Each (cell, config, mode) runs in a process of its own; its sessions alternate, round by
round, and each session's time is the median over rounds of the median of 7 calls after 3
warm-up calls. Ratios are to onnxruntime's defaults (all optimisations, threads = cores,
spinning on).

    python benchmarks/onnx_session_options.py [--rounds 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIGS = {"C1": (32, 100, 64, 256), "C2": (1, 1000, 32, 128), "C3": (64, 50, 256, 512)}
VARIANTS = {  # name -> (intra-op threads (0: onnxruntime's default), spinning, level)
    "default": (0, True, "all"),
    "1 thread": (1, True, "all"),
    "1 thread, no spin": (1, False, "all"),
    "2 threads, no spin": (2, False, "all"),
    "basic optimisation": (0, True, "basic"),
}


def measure(cell: str, config: str, mode: str, rounds: int) -> dict:
    import onnxruntime as ort

    sys.path.insert(0, str(HERE))
    from suite_measure import SPEC

    import rnncompiler as rc

    batch, steps, inputs, hidden = CONFIGS[config]
    spec = rc.load_spec_text(SPEC.format(cell=cell, hidden=hidden, input=inputs, steps=steps))
    params = {k: v.astype(np.float32) for k, v in rc.init_params(spec, seed=0).items()}
    x = np.random.default_rng(0).standard_normal((batch, steps, inputs)).astype(np.float32)
    model = rc.compile_spec(spec, "onnx", steps=steps, onnx_mode=mode).serialize()
    del params
    levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    sessions = {}
    for name, (threads, spin, level) in VARIANTS.items():
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = levels[level]
        options.add_session_config_entry("session.intra_op.allow_spinning", str(int(spin)))
        sessions[name] = ort.InferenceSession(model, options,
                                              providers=["CPUExecutionProvider"])
    medians = {name: [] for name in sessions}
    names = list(sessions)
    for index in range(rounds):
        for name in names[index % len(names):] + names[:index % len(names)]:
            session = sessions[name]
            for _ in range(3):
                session.run(None, {"x": x})
            times = []
            for _ in range(7):
                start = time.perf_counter()
                session.run(None, {"x": x})
                times.append(time.perf_counter() - start)
            medians[name].append(statistics.median(times))
    seconds = {name: statistics.median(v) for name, v in medians.items()}
    return {"cell": cell, "config": config, "mode": mode, "seconds": seconds,
            "ratio_to_default": {k: v / seconds["default"] for k, v in seconds.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru"])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS))
    parser.add_argument("--modes", nargs="+", default=["auto", "scan"])
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.rounds)))
        return
    results = []
    print("| cell | cfg | mode | " + " | ".join(VARIANTS) + " |")
    print("|---|---|---|" + "---|" * len(VARIANTS))
    for cell in args.cells:
        for config in args.configs:
            for mode in args.modes:
                out = subprocess.run([sys.executable, __file__, "--rounds", str(args.rounds),
                                      "--one", cell, config, mode], check=True,
                                     capture_output=True, text=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                results.append(row)
                seconds = row["seconds"]
                cells = [f"{seconds['default'] * 1e3:.2f} ms"] + [
                    f"{row['ratio_to_default'][name]:.2f}" for name in list(VARIANTS)[1:]]
                print(f"| {cell} | {config} | {mode} | " + " | ".join(cells) + " |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
