"""The generated NumPy module and the ONNX models against PyTorch, for one recurrent layer
returning its whole sequence (float32, mse loss on that sequence), per cell (``simple``,
``lstm``, ``gru``) and size:

    C1: batch 32, T 100,  input 64,  hidden 256
    C2: batch 1,  T 1000, input 32,  hidden 128
    C3: batch 64, T 50,   input 256, hidden 512

Four tables:

1. NumPy vs PyTorch: the forward (``run``) and the forward + backward
   (``loss_and_grads``) of the generated NumPy module (``compile_spec(spec, "numpy",
   steps=T, train=True, level=2)``) against ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``
   (batch_first, on 2 threads) holding the same weights: the forward under
   ``torch.no_grad()``, the forward + backward as ``mse_loss(out, y).backward()``. Ratio
   NumPy / PyTorch (above 1: NumPy is slower). ``fwd err``: the largest |difference| of
   the sequence outputs; ``grad err``: the largest |difference| of the gradients over the
   largest |gradient| (every parameter, mapped to torch's layout).
2. ONNX on onnxruntime (CPU, 2 intra-op threads, 1 inter-op): the forward in each mode
   (``auto``, the default, ``scan``, ``unrolled``, ``native``) and its ratio to
   ``native``, which is onnxruntime's own RNN / LSTM / GRU operator; native against
   PyTorch's forward; the scan training graph (loss and gradients) against PyTorch's
   forward + backward. The models are the ones ``rnnc compile --backend onnx`` writes
   (parameters as initializers). Errors are against PyTorch, as in table 1. With
   ``--device cuda``, onnxruntime's CUDA provider and PyTorch on the same GPU.
3. What bounds the ratios: the forward's GEMM work, 2*B*T*(I+H)*G*H flops (G = 1, 4, 3
   gate blocks for simple, lstm, gru), as GFLOP/s achieved, next to the matmul peak each
   library reaches on this machine, measured in the process that runs it (NumPy's
   OpenBLAS, ``torch.mm``): at the recurrent product's shape ([B, H] @ [H, G*H], T of
   them, one after another) and at 1024^3. ``gemm ms`` is the time the forward's products
   alone take at the measured speed of their shapes (the input product [B*T, I] @ [I, G*H],
   hoisted out of the loop by both, plus T recurrent products): a floor for the forward
   that leaves out every element-wise op. ``gemm ratio`` is NumPy's floor over torch's:
   how much of the forward ratio the BLAS libraries alone explain. PyTorch runs an LSTM
   on the CPU as one oneDNN RNN primitive (gates fused, weights packed once), which can
   beat the ``torch.mm`` floor; ``torch-1dnn`` (LSTM only) is PyTorch with oneDNN
   disabled (``torch.backends.mkldnn.flags(enabled=False)``: a product per step and
   element-wise ops, as NumPy does), and ``np/that`` NumPy's ratio to it.
4. The LSTM training module at C2 sizes against T (default 10, 100, 1000): compile time
   (``compile_spec(..., train=True)``, in a fresh process), the generated source's lines,
   one ``loss_and_grads`` call's time and peak memory (tracemalloc, which sees every NumPy
   array; and peak RSS growth during a second call in a fresh process, for NumPy and
   PyTorch alike, with glibc told to map every large block so that freed memory is given
   back).

5. What a user feels: ``rnnc train``'s seconds per epoch with each backend against a plain
   PyTorch training loop over the same model, optimizer, batch and data, on the adding
   problem (T = 100) and the character language model (``train_epoch.py``).

Every measurement runs in its own subprocess, since idle BLAS / OpenMP threads of one
library spin on a small machine's cores and distort the next: one process for NumPy, one
for PyTorch, one per ONNX mode (scan's also runs its training graph). A case is measured
in ``--rounds`` rounds (default 3), the implementations alternating (their order rotates
from round to round); the tables give the medians over rounds of each process's median
(after warm-up calls for at least 0.3 s; then at least 5 calls and 0.5 s). The spec is
compiled once per case, in a preparing subprocess that writes the generated source and
the ONNX models for the measuring ones (the NumPy process runs the source as
``NumpyModule.run`` does, without the compiler). ``others`` is the largest share of the
machine's CPUs that other processes took during the row's measurements; a measurement
during which others took over 10% is retried (up to 3 times, after waiting for the CPUs to
idle), and the least disturbed try kept.

Unrolled ONNX is skipped where T > ``--unrolled-max-steps`` (default 500, so C2):
onnxruntime takes long to create a session for 1000 unrolled steps.

    python benchmarks/suite.py [--quick] [--rounds 3] [--json out.json]

``--quick``: C1, lstm and T = 10, 100 in table 4 only. ``--train-rounds 0`` skips table 5;
``--device cuda`` measures tables 1-3 with PyTorch and onnxruntime on a CUDA GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from machine_load import busy_cpu_s, run_json
from suite_measure import GATES, THREADS, one

CELLS = ("simple", "lstm", "gru")
CONFIGS = {  # batch, T, input, hidden
    "C1": (32, 100, 64, 256),
    "C2": (1, 1000, 32, 128),
    "C3": (64, 50, 256, 512),
}
MEMORY_STEPS = (10, 100, 1000)  # table 4: an LSTM at C2's batch, input and hidden
MODES = ("scan", "unrolled", "native", "auto")
KINDS = ("numpy", "torch") + tuple(f"onnx-{mode}" for mode in MODES)
BUSY = 0.1  # a measurement during which others took more than this share is retried
RETRIES = 3



def others_now(seconds: float = 1.0) -> float | None:
    """The share of the CPUs that other processes take, over ``seconds``."""
    busy = busy_cpu_s()
    if busy is None:
        return None
    time.sleep(seconds)
    return (busy_cpu_s() - busy) / (seconds * (os.cpu_count() or 1))


def wait_for_idle(limit_s: float) -> float | None:
    """Waits (at most ``limit_s``) until others take under BUSY of the CPUs; their share."""
    waited = time.perf_counter()
    while True:
        share = others_now()
        if share is None or share < BUSY or time.perf_counter() - waited > limit_s:
            return share
        print(f"  (others use {100 * share:.0f}% of the CPUs: waiting)", flush=True)
        time.sleep(4)


def in_subprocess(kind: str, folder: str, timeout: float, save: bool = False) -> dict:
    """One measurement in a fresh process; ``others`` is the share of the machine's CPUs
    that other processes used meanwhile (0 on an idle machine)."""
    command = [sys.executable, os.path.abspath(__file__), "--one", kind, folder]
    if save:
        command.append("--save")
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = str(THREADS if kind in ("numpy", "prepare") else 1)
    if kind.endswith("-memory"):  # every large block mapped, so that freeing it shows in RSS
        env["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)
    return {"kind": kind, **run_json(command, timeout, env)}


IDLE_WAIT = {"s": 300.0}  # --idle-wait


def measured(kind: str, folder: str, timeout: float, save: bool = False) -> dict:
    """``in_subprocess``, retried (at most RETRIES times) after waiting for the machine to
    idle while others took over BUSY of the CPUs meanwhile; the least disturbed try."""
    tries = [in_subprocess(kind, folder, timeout, save)]
    while (tries[-1].get("others") or 0) > BUSY and len(tries) <= RETRIES:
        wait_for_idle(IDLE_WAIT["s"])
        tries.append(in_subprocess(kind, folder, timeout, save))
    result = min(tries, key=lambda r: r.get("others") or 0)
    if len(tries) > 1:
        result["others_of_tries"] = [r.get("others") for r in tries]
    return result


def median_of(rounds: list[dict], *keys: str) -> float | None:
    values = []
    for r in rounds:
        value = r
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            values.append(value)
    return statistics.median(values) if values else None


def compare(folder: str, name: str, reference: str = "torch") -> dict:
    """Largest |difference| of the outputs of ``name`` from ``reference``'s; of the
    gradients, relative to the largest |gradient|."""
    paths = [os.path.join(folder, f"out_{n}.npz") for n in (name, reference)]
    if not all(os.path.exists(path) for path in paths):
        return {}
    with np.load(paths[0]) as got, np.load(paths[1]) as want:
        result = {}
        if "out" in got.files:
            result["fwd_err"] = float(np.max(np.abs(got["out"] - want["out"])))
        grads = [k for k in got.files if k.startswith("grad.")]
        if grads:
            scale = max(float(np.max(np.abs(want[k]))) for k in grads)
            result["grad_err"] = max(float(np.max(np.abs(got[k] - want[k]))) for k in grads)
            result["grad_rel_err"] = result["grad_err"] / scale
            result["loss_err"] = float(abs(got["loss"] - want["loss"]))
        missing = sorted(set(want.files) - set(got.files) - {"out"})
        if grads and missing:
            result["missing"] = missing
    return result


def make_folder(root: str, name: str, case: dict) -> str:
    folder = os.path.join(root, name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "case.json"), "w") as stream:
        json.dump(case, stream)
    return folder


def run_case(root: str, cell: str, config: str, args) -> dict:
    batch, steps, inputs, hidden = CONFIGS[config]
    modes = [m for m in MODES if not (m == "unrolled" and steps > args.unrolled_max_steps)]
    case = {"cell": cell, "config": config, "batch": batch, "steps": steps, "input": inputs,
            "hidden": hidden, "modes": modes, "device": args.device}
    folder = make_folder(root, f"{cell}_{config}", case)
    row = {**case, "skipped": {}, "others_before": wait_for_idle(IDLE_WAIT["s"])}
    if "unrolled" not in modes:
        row["skipped"]["onnx-unrolled"] = (f"T = {steps} > --unrolled-max-steps "
                                           f"{args.unrolled_max_steps}")
    prepared = in_subprocess("prepare", folder, args.timeout * 2)
    row["prepare"] = prepared
    if prepared["status"] != "ok":
        row["status"] = f"prepare: {prepared['status']}"
        return row
    kinds = ["numpy", "torch"] + [f"onnx-{m}" for m in modes]
    rounds: dict[str, list] = {kind: [] for kind in kinds}
    for index in range(args.rounds):
        order = kinds[index % len(kinds):] + kinds[:index % len(kinds)]
        for kind in order:  # alternating, each in a fresh process
            rounds[kind].append(measured(kind, folder, args.timeout, save=index == 0))
    row["status"] = "ok"
    row["results"] = {}
    for kind in kinds:
        ok = [r for r in rounds[kind] if r["status"] == "ok"]
        summary: dict = {"rounds": rounds[kind], "ok_rounds": len(ok)}
        if not ok:
            summary["status"] = rounds[kind][0]["status"]
            row["status"] = "some failed"
        for key in ("fwd_s", "fwdbwd_s", "session_s", "plain_fwd_s", "plain_fwdbwd_s"):
            summary[key] = median_of(ok, key)
        for key in ("recurrent", "input", "square"):
            summary[f"{key}_gflops"] = median_of(ok, "gemm", f"{key}_gflops")
        summary["gemm_bound_s"] = median_of(ok, "gemm", "bound_s")
        fwd = [r["fwd_s"] for r in ok if r.get("fwd_s")]
        summary["fwd_spread"] = max(fwd) / min(fwd) if fwd else None
        loads = [r["others"] for r in ok if r.get("others") is not None]
        summary["others_max"] = max(loads) if loads else None
        if kind != "torch":
            summary.update(compare(folder, kind))
        row["results"][kind] = summary
    return row


def run_memory(root: str, steps: int, args, reuse: dict | None) -> dict:
    """Table 4's row for T = ``steps``: an LSTM training module at C2's other sizes."""
    batch, _, inputs, hidden = CONFIGS["C2"]
    case = {"cell": "lstm", "config": f"C2@T{steps}", "batch": batch, "steps": steps,
            "input": inputs, "hidden": hidden, "modes": ["scan"]}
    row: dict = {"steps": steps, "batch": batch, "input": inputs, "hidden": hidden}
    if reuse is not None:  # the same spec was compiled for table 1 already
        folder, prepared = reuse["folder"], reuse["prepare"]
    else:
        wait_for_idle(IDLE_WAIT["s"])
        folder = make_folder(root, f"memory_T{steps}", case)
        prepared = in_subprocess("prepare", folder, args.timeout * 2)
    row["prepare"] = prepared
    if prepared["status"] != "ok":
        row["status"] = f"prepare: {prepared['status']}"
        return row
    row["compile_s"], row["source_lines"] = prepared["compile_s"], prepared["source_lines"]
    row["numpy"] = measured("numpy-memory", folder, args.timeout)
    row["torch"] = measured("torch-memory", folder, args.timeout)
    row["status"] = "ok" if all(row[k]["status"] == "ok" for k in ("numpy", "torch")) \
        else "some failed"
    return row


def ms(value) -> str:
    return "-" if value is None else f"{1e3 * value:.2f}"


def seconds(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def ratio(a, b) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}"


def err(value) -> str:
    return "-" if value is None else f"{value:.1e}"


def pct(value) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def table(title: str, header: list[str], rows: list[list[str]], first: int = 2) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for r in [header, *rows]:
        print("  ".join(f"{v:<{w}}" if i < first else f"{v:>{w}}"
                        for i, (v, w) in enumerate(zip(r, widths))).rstrip())


def print_tables(rows: list[dict], memory: list[dict], args) -> None:
    ok = [r for r in rows if "results" in r]
    for r in rows:
        if "results" not in r:
            print(f"{r['cell']} {r['config']}: {r['status']}")

    def others(r, kinds):
        loads = [r["results"][k]["others_max"] for k in kinds if k in r["results"]
                 and r["results"][k]["others_max"] is not None]
        return pct(max(loads)) if loads else "-"

    lines = []
    for r in ok:
        n, t = r["results"]["numpy"], r["results"]["torch"]
        lines.append([r["cell"], r["config"], ms(n["fwd_s"]), ms(t["fwd_s"]),
                      ratio(n["fwd_s"], t["fwd_s"]), ms(n["fwdbwd_s"]), ms(t["fwdbwd_s"]),
                      ratio(n["fwdbwd_s"], t["fwdbwd_s"]), err(n.get("fwd_err")),
                      err(n.get("grad_rel_err")), ratio(n["fwd_spread"], 1),
                      ratio(t["fwd_spread"], 1), others(r, ["numpy", "torch"])])
    version = ok[0]["results"]["torch"]["rounds"][0].get("torch", "") if ok else ""
    table(f"1. NumPy (generated, level 2) vs PyTorch {version} (ratios above 1: NumPy slower)",
          ["cell", "cfg", "np fwd ms", "torch fwd ms", "np/torch", "np f+b ms",
           "torch f+b ms", "np/torch", "fwd err", "grad err", "np spread", "torch spread",
           "others"], lines)

    lines = []
    for r in ok:
        res, t = r["results"], r["results"]["torch"]
        native = res.get("onnx-native", {}).get("fwd_s")
        auto = res.get("onnx-auto", {}).get("fwd_s")
        scan = res.get("onnx-scan", {})
        unrolled = res.get("onnx-unrolled", {}).get("fwd_s")
        fwd_errs = [res[k].get("fwd_err") for k in res if k.startswith("onnx-")
                    and res[k].get("fwd_err") is not None]
        lines.append([r["cell"], r["config"], ms(auto), ms(scan.get("fwd_s")),
                      ms(unrolled) if "onnx-unrolled" in res else "skipped", ms(native),
                      ratio(auto, native), ratio(scan.get("fwd_s"), native),
                      ratio(unrolled, native) if "onnx-unrolled" in res else "-",
                      ms(t["fwd_s"]), ratio(native, t["fwd_s"]), ms(scan.get("fwdbwd_s")),
                      ms(t["fwdbwd_s"]), ratio(scan.get("fwdbwd_s"), t["fwdbwd_s"]),
                      err(max(fwd_errs) if fwd_errs else None), err(scan.get("grad_rel_err")),
                      others(r, [k for k in res if k.startswith("onnx-")])])
    table(f"2. ONNX on onnxruntime ({args.device}; forward per mode, auto the default, "
          "ratio to native = onnxruntime's own operator; scan training graph vs PyTorch "
          "forward + backward)",
          ["cell", "cfg", "auto ms", "scan ms", "unrolled ms", "native ms", "auto/nat",
           "scan/nat", "unr/nat",
           "torch fwd ms", "nat/torch", "scan train ms", "torch f+b ms", "train/torch",
           "fwd err", "grad err", "others"], lines)

    def rate(flops, s):
        return None if s is None else flops / s / 1e9

    def share(a, b):
        return None if a is None or b is None else a / b

    def num(v):
        return "-" if v is None else f"{v:.1f}"

    lines = []
    for r in ok:
        n, t = r["results"]["numpy"], r["results"]["torch"]
        flops = 2 * r["batch"] * r["steps"] * (r["input"] + r["hidden"]) * GATES[r["cell"]] \
            * r["hidden"]
        r["fwd_gflop"] = flops / 1e9
        lines.append([r["cell"], r["config"], f"{flops / 1e9:.2f}",
                      num(rate(flops, n["fwd_s"])), num(n["recurrent_gflops"]),
                      num(n["square_gflops"]),
                      pct(share(rate(flops, n["fwd_s"]), n["square_gflops"])),
                      num(rate(flops, t["fwd_s"])), num(t["recurrent_gflops"]),
                      num(t["square_gflops"]),
                      pct(share(rate(flops, t["fwd_s"]), t["square_gflops"])),
                      ms(n["gemm_bound_s"]), ms(t["gemm_bound_s"]),
                      ratio(n["gemm_bound_s"], t["gemm_bound_s"]),
                      ratio(n["fwd_s"], t["fwd_s"]), ms(t["plain_fwd_s"]),
                      ratio(n["fwd_s"], t["plain_fwd_s"]), ms(t["plain_fwdbwd_s"]),
                      ratio(n["fwdbwd_s"], t["plain_fwdbwd_s"])])
    table("3. Forward GEMM work: GFLOP/s achieved vs each library's measured matmul peak "
          "(rec = [B,H]@[H,G*H], sq = 1024^3); gemm ms = the forward's products alone",
          ["cell", "cfg", "GFLOP", "np GF/s", "np rec", "np sq", "np %sq", "torch GF/s",
           "torch rec", "torch sq", "torch %sq", "np gemm ms", "torch gemm ms",
           "gemm np/torch", "fwd np/torch", "torch-1dnn fwd", "np/that", "torch-1dnn f+b",
           "np/that"], lines)

    if memory:
        lines = []
        for m in memory:
            if m["status"] != "ok" and "numpy" not in m:
                lines.append([str(m["steps"]), m["status"]] + ["-"] * 9)
                continue
            n, t = m["numpy"], m["torch"]

            def mib(v):
                return "-" if v is None else f"{v / 2**20:.1f}"

            prepared = m["prepare"]
            lines.append([str(m["steps"]), f"{m['compile_s']:.2f}",
                          seconds(prepared.get("onnx_scan_compile_s")),
                          seconds(prepared.get("onnx_scan_train_session_s")),
                          str(m["source_lines"]),
                          ms(n.get("fwdbwd_s")), mib(n.get("tracemalloc_peak_bytes")),
                          mib(n.get("rss_peak_bytes")), ms(t.get("fwdbwd_s")),
                          mib(t.get("rss_peak_bytes")),
                          pct(max(n.get("others") or 0, t.get("others") or 0))])
        b, _, i, h = CONFIGS["C2"]
        table(f"4. LSTM training module vs T (batch {b}, input {i}, hidden {h}): compile, "
              "one loss_and_grads call, its peak memory",
              ["T", "np compile s", "onnx compile s", "onnx train session s", "lines",
               "np f+b ms", "np tracemalloc MiB", "np RSS MiB",
               "torch f+b ms", "torch RSS MiB", "others"], lines, first=1)

    notes = sorted({f"onnx-unrolled skipped at {r['config']}: {why}" for r in rows
                    for why in r.get("skipped", {}).values()})
    for note in notes:
        print(f"note: {note}")
    loaded = [r for r in ok if any((v.get("others_max") or 0) > 0.1
                                   for v in r["results"].values())]
    if loaded:
        print(f"warning: other processes used over 10% of the CPUs during {len(loaded)} "
              "row(s) (column others); their times are not to be trusted")


def train_epochs(rounds: int) -> list:
    """Table 5: `rnnc train`'s seconds per epoch (each backend) against a plain PyTorch
    loop, from ``train_epoch.py`` (its docstring says how)."""
    if rounds <= 0:
        return []
    wait_for_idle(IDLE_WAIT["s"])
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "train.json")
        subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__),
                                                     "train_epoch.py"),
                        "--rounds", str(rounds), "--json", path], check=True)
        with open(path) as stream:
            results = json.load(stream)["results"]
    lines = [[r["task"], str(r["examples"])] + [seconds(r["epoch_s"].get(who))
                                                for who in ("numpy", "onnx", "torch")]
             + [ratio(r["epoch_s"].get(who), r["epoch_s"].get("torch"))
                for who in ("numpy", "onnx")] for r in results]
    table("5. `rnnc train`, seconds per epoch, against a plain PyTorch loop (same model, "
          "Adam, batch 32, data)", ["task", "examples", "numpy s", "onnx s", "torch s",
                                    "numpy/torch", "onnx/torch"], lines)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--memory-steps", type=int, nargs="*", default=list(MEMORY_STEPS),
                        help="table 4's sequence lengths (none: skip it)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="fresh subprocesses per (case, implementation), alternating")
    parser.add_argument("--unrolled-max-steps", type=int, default=500,
                        help="skip unrolled ONNX above this T (session creation is slow)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds allowed to each measurement's subprocess")
    parser.add_argument("--idle-wait", type=float, default=300.0,
                        help="seconds to wait, at most, for other processes to leave the "
                             "CPUs before a case and before retrying a disturbed measurement")
    parser.add_argument("--quick", action="store_true",
                        help="C1 and lstm only, and T = 10, 100 in table 4")
    parser.add_argument("--train-rounds", type=int, default=3,
                        help="rounds of table 5, `rnnc train` epochs against a PyTorch "
                             "loop (0: skip it)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where PyTorch and onnxruntime run (cuda: onnxruntime-gpu's CUDA "
                             "provider and PyTorch on the same GPU; NumPy stays on the CPU)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--keep", help="keep the generated modules and models in this folder")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "FOLDER"),
                        help=argparse.SUPPRESS)  # one measurement, as JSON on stdout
    parser.add_argument("--save", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.save)))
        return
    IDLE_WAIT["s"] = args.idle_wait
    if args.quick:
        args.cells, args.configs = ["lstm"], ["C1"]
        args.memory_steps = [t for t in args.memory_steps if t <= 100]

    started = time.perf_counter()
    share = wait_for_idle(IDLE_WAIT["s"])
    print(f"suite: {os.cpu_count()} CPUs, {THREADS} threads per library (OpenBLAS, torch, "
          f"onnxruntime intra-op); {args.rounds} round(s), medians; others at start: "
          f"{pct(share)}", flush=True)
    root = args.keep or tempfile.mkdtemp(prefix="rnnc_suite_")
    os.makedirs(root, exist_ok=True)
    rows, memory = [], []
    try:
        for config in args.configs:
            for cell in args.cells:
                t0 = time.perf_counter()
                row = run_case(root, cell, config, args)
                rows.append(row)
                res = row.get("results", {})
                print(f"  {cell} {config}: {row['status']} ({time.perf_counter() - t0:.0f} s; "
                      f"numpy fwd {ms(res.get('numpy', {}).get('fwd_s'))} ms, torch fwd "
                      f"{ms(res.get('torch', {}).get('fwd_s'))} ms)", flush=True)
        for steps in args.memory_steps:
            reuse = None
            c2_steps = CONFIGS["C2"][1]
            for r in rows:
                if r["cell"] == "lstm" and r["config"] == "C2" and steps == c2_steps \
                        and r["prepare"]["status"] == "ok":
                    reuse = {"folder": os.path.join(root, "lstm_C2"), "prepare": r["prepare"]}
            t0 = time.perf_counter()
            memory.append(run_memory(root, steps, args, reuse))
            print(f"  memory T={steps}: {memory[-1]['status']} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print_tables(rows, memory, args)
    training = train_epochs(args.train_rounds)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"threads": THREADS, "cpus": os.cpu_count(), "rounds": args.rounds,
                       "cases": rows, "memory": memory, "train_epochs": training}, stream,
                      indent=2)


if __name__ == "__main__":
    main()
