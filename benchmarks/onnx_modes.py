"""The ONNX backend's three modes against each other, for one recurrent layer (batch 16,
input 32, hidden 128, returning its whole sequence, float32): an LSTM for T = 10, 100,
1000 and a GRU for T = 100, each in ``unrolled``, ``scan`` and ``native`` mode.

For each (cell, T, mode):

- compile s: ``compile_spec(spec, "onnx", ...)`` plus ``model(params)`` (spec to checked
  ModelProto, ``onnx.checker`` full check included; imports done beforehand);
- nodes: the model's top-level nodes (a Scan's body counts as one);
- model KiB: the serialized model; graph KiB: the same less the initializers' bytes
  (init KiB), that is what the mode itself writes (the weights are the same in every mode;
  native mode packs them in ONNX's gate layout);
- session ms: creating an onnxruntime CPU InferenceSession from the bytes (median of 3);
- run ms: one forward call on [16, T, 32] inputs (median of 5, after warm-up calls for
  at least 0.5 s: the first calls of a fresh session are 2-4x slower at T = 100), and its
  ratio to native (onnxruntime's own LSTM / GRU operator) at the same cell and T;
- max err: the largest |difference| of the layer's output from the NumPy backend's.

Every measurement runs in its own subprocess, with onnxruntime on 2 intra-op threads
(1 inter-op): idle threads of one measurement would distort the next on a small machine.
Each (cell, T, mode) is measured in ``--rounds`` fresh subprocesses (default 3), the modes
alternating; the table gives the medians over rounds, and ``spread`` is the slowest
round's run time over the fastest's. ``others`` is the largest share of the machine's CPUs
that other processes took during a round (from /proc/stat): run it on an idle machine, as
on 2 cores another busy process easily doubles the run times. A subprocess that runs past
``--timeout`` seconds (default 300) is reported as a timeout.

    python benchmarks/onnx_modes.py [--steps 10 100 1000] [--rounds 3] [--json out.json]

What to look at: the run ratio to native (native is the floor; scan pays for running its
body's small ops one step at a time, unrolled for the same ops written out T times), and
how graph size and session time grow with T in unrolled mode (linearly; at T = 1000 the
session takes seconds) but stay constant in scan and native mode. Compile time grows with
T in every mode, since every mode starts from the unrolled graph.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
from machine_load import run_json

BATCH, INPUT, UNITS = 16, 32, 128
THREADS = 2
WARM_UP_S = 0.5  # warm-up calls: at least 3 and at least this long
MODES = ("unrolled", "scan", "native")

SPEC = """
rnnc: 1
name: {cell}_onnx_modes
inputs: {{x: {{features: {input}}}}}
layers:
  - {{name: RNN, type: rnn, cell: {cell}, units: {units}, input: x, return: sequence}}
"""


def session(model_bytes: bytes):
    """As ``rnnc_onnx.runtime.session(bytes, "cpu")``, with the thread counts fixed."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def measure(mode: str, steps: int, cell: str, repeats: int = 5, sessions: int = 3) -> dict:
    """One (mode, T, cell) measurement, in this process."""
    import onnx  # noqa: F401  (imports outside the timed compile)
    from rnnc_onnx import runtime

    import rnncompiler as rc

    rc.backend.get_backend("onnx")
    spec = rc.load_spec_text(SPEC.format(cell=cell, input=INPUT, units=UNITS),
                             filename=f"{cell}_onnx_modes.yaml")
    params = rc.init_params(spec, seed=0)
    x = np.random.default_rng(0).standard_normal((BATCH, steps, INPUT)).astype(np.float32)

    start = time.perf_counter()
    module = rc.compile_spec(spec, "onnx", steps=steps, onnx_mode=mode, params=params)
    model = module.model(params)
    compile_s = time.perf_counter() - start

    data = module.serialize()
    init_bytes = sum(init.ByteSize() for init in model.graph.initializer)
    nodes = len(model.graph.node)

    session_times = []
    for _ in range(sessions):
        start = time.perf_counter()
        created = session(data)
        session_times.append(time.perf_counter() - start)

    warm_up = time.perf_counter()  # a single warm-up call is not enough: the next few
    for calls in range(1, 1000):   # calls of a fresh session can be 2-4x slower
        runtime.run(created, {"x": x})
        if calls >= 3 and time.perf_counter() - warm_up > WARM_UP_S:
            break
    run_times = []
    for _ in range(repeats):
        start = time.perf_counter()
        outputs = runtime.run(created, {"x": x})
        run_times.append(time.perf_counter() - start)

    expected = rc.run(spec, params, {"x": x}, steps=steps)["RNN"]
    error = float(np.max(np.abs(outputs["RNN"] - expected)))
    return {"cell": cell, "steps": steps, "mode": mode, "status": "ok",
            "compile_s": compile_s, "model_bytes": len(data), "init_bytes": init_bytes,
            "graph_bytes": len(data) - init_bytes, "nodes": nodes,
            "session_s": statistics.median(session_times), "session_all_s": session_times,
            "run_s": statistics.median(run_times), "run_all_s": run_times,
            "run_us_per_step": 1e6 * statistics.median(run_times) / steps,
            "max_err": error}


def measure_in_subprocess(mode: str, steps: int, cell: str, timeout: float) -> dict:
    """One measurement in a fresh process; ``others`` is the share of the machine's CPUs
    that other processes used meanwhile (0 on an idle machine)."""
    row = {"cell": cell, "steps": steps, "mode": mode}
    command = [sys.executable, __file__, "--one", mode, str(steps), cell]
    return {**row, **run_json(command, timeout)}


def combine(rounds: list[dict]) -> dict:
    """One row from a (cell, T, mode)'s rounds: medians of the rounds' medians."""
    ok = [r for r in rounds if r["status"] == "ok"]
    first = rounds[0]
    row = {"cell": first["cell"], "steps": first["steps"], "mode": first["mode"]}
    if not ok:
        return {**row, "status": first["status"], "rounds": rounds}
    row.update({key: ok[0][key] for key in ("model_bytes", "init_bytes", "graph_bytes",
                                            "nodes")})
    for key in ("compile_s", "session_s", "run_s", "max_err"):
        row[key] = statistics.median(r[key] for r in ok)
    row["run_us_per_step"] = 1e6 * row["run_s"] / row["steps"]
    row["run_spread"] = max(r["run_s"] for r in ok) / min(r["run_s"] for r in ok)
    loads = [r["others"] for r in ok if r.get("others") is not None]
    row["others_max"] = max(loads) if loads else None
    failed = len(rounds) - len(ok)
    row["status"] = "ok" if not failed else f"ok ({failed} of {len(rounds)} rounds failed)"
    row["rounds"] = rounds
    return row


def fmt(row: dict, native: dict | None) -> str:
    head = f"{row['cell']:<6}{row['steps']:>6}  {row['mode']:<10}"
    if "run_s" not in row:
        return f"{head}{row['status']}"
    ratio = (f"{row['run_s'] / native['run_s']:>8.2f}"
             if native and "run_s" in native else f"{'-':>8}")
    note = "" if row["status"] == "ok" else f"  {row['status']}"
    others = "-" if row.get("others_max") is None else f"{100 * row['others_max']:.0f}%"
    return (f"{head}{row['compile_s']:>10.2f}{row['nodes']:>7}{row['model_bytes'] / 1024:>10.1f}"
            f"{row['graph_bytes'] / 1024:>10.1f}{row['init_bytes'] / 1024:>9.1f}"
            f"{1e3 * row['session_s']:>11.1f}{1e3 * row['run_s']:>9.2f}{ratio}"
            f"{row['run_us_per_step']:>9.1f}{row['run_spread']:>8.2f}{others:>8}"
            f"{row['max_err']:>9.1e}{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 100, 1000],
                        help="sequence lengths for the LSTM")
    parser.add_argument("--gru-steps", type=int, nargs="*", default=[100],
                        help="sequence lengths for the GRU (none: skip it)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--rounds", type=int, default=3,
                        help="fresh subprocesses per (cell, T, mode), the modes alternating")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds allowed to each measurement's subprocess")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--one", nargs=3, metavar=("MODE", "T", "CELL"),
                        help=argparse.SUPPRESS)  # one measurement, as JSON on stdout
    args = parser.parse_args()
    if args.one:
        mode, steps, cell = args.one
        print(json.dumps(measure(mode, int(steps), cell)))
        return

    cases = [("lstm", t) for t in args.steps] + [("gru", t) for t in args.gru_steps]
    header = (f"{'cell':<6}{'T':>6}  {'mode':<10}{'compile s':>10}{'nodes':>7}"
              f"{'model KiB':>10}{'graph KiB':>10}{'init KiB':>9}{'session ms':>11}"
              f"{'run ms':>9}{'/native':>8}{'us/step':>9}{'spread':>8}{'others':>8}{'max err':>9}")
    print(f"onnx modes: batch {BATCH}, input {INPUT}, hidden {UNITS}, float32, onnxruntime CPU "
          f"on {THREADS} intra-op threads; medians over {args.rounds} round(s) of a session "
          "median of 3 and a run median of 5")
    print(header)
    rows = []
    for cell, steps in cases:
        rounds: dict[str, list] = {mode: [] for mode in args.modes}
        for _ in range(args.rounds):
            for mode in args.modes:  # the modes alternate, each in its own process
                rounds[mode].append(measure_in_subprocess(mode, steps, cell, args.timeout))
        done = {mode: combine(rounds[mode]) for mode in args.modes}
        native = done.get("native")
        for mode in args.modes:
            row = done[mode]
            if "run_s" in row and native and "run_s" in native:
                row["run_vs_native"] = row["run_s"] / native["run_s"]
            rows.append(row)
            print(fmt(row, native), flush=True)
    loaded = [r for r in rows if (r.get("others_max") or 0) > 0.1]
    if loaded:
        print(f"warning: other processes used over 10% of the CPUs during {len(loaded)} "
              "measurement(s) (column others); their times are not to be trusted")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(rows, stream, indent=2)


if __name__ == "__main__":
    main()
