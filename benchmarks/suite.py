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
   (``scan``, ``unrolled``, ``native``) and its ratio to ``native``, which is
   onnxruntime's own RNN / LSTM / GRU operator; native against PyTorch's forward; the
   scan training graph (loss and gradients) against PyTorch's forward + backward. The
   models are the ones ``rnnc compile --backend onnx`` writes (parameters as
   initializers). Errors are against PyTorch, as in table 1.
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

``--quick``: C1, lstm and T = 10, 100 in table 4 only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np
from machine_load import busy_cpu_s, run_json

THREADS = 2
CELLS = ("simple", "lstm", "gru")
GATES = {"simple": 1, "lstm": 4, "gru": 3}
CONFIGS = {  # batch, T, input, hidden
    "C1": (32, 100, 64, 256),
    "C2": (1, 1000, 32, 128),
    "C3": (64, 50, 256, 512),
}
MEMORY_STEPS = (10, 100, 1000)  # table 4: an LSTM at C2's batch, input and hidden
MODES = ("scan", "unrolled", "native")
KINDS = ("numpy", "torch") + tuple(f"onnx-{mode}" for mode in MODES)
WARM_UP_S, MIN_S, MIN_CALLS, MAX_CALLS = 0.3, 0.5, 5, 100
BUSY = 0.1  # a measurement during which others took more than this share is retried
RETRIES = 3

SPEC = """
rnnc: 1
name: bench
inputs: {{x: {{features: {input}}}}}
targets: {{y: {{features: {hidden}}}}}
layers:
  - {{name: RNN, type: rnn, cell: {cell}, units: {hidden}, input: x, return: sequence}}
loss: {{type: mse, output: RNN, target: y}}
unroll: {{steps: {steps}}}
"""


# ----------------------------------------------------------------- in the subprocesses

def timed(call, warm_up_s: float = WARM_UP_S, min_s: float = MIN_S) -> tuple[float, list]:
    """The median time of ``call()`` after warm-up calls (at least 3 and 0.3 s; the first
    calls are slower), over at least 5 calls and 0.5 s (at most 100)."""
    start, calls = time.perf_counter(), 0
    while calls < 3 or (time.perf_counter() - start < warm_up_s and calls < MAX_CALLS):
        call()
        calls += 1
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < MIN_CALLS or (time.perf_counter() - start < min_s
                                     and len(times) < MAX_CALLS):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    return statistics.median(times), times


def gemm_speeds(product, make, case: dict) -> dict:
    """Seconds per call of the forward's two product shapes and of 1024^3, with
    ``make(rows, cols)`` the library's random float32 matrix and ``product(a, w)`` its
    ``a @ w.T`` (w stored [out, in], as both keep their weights); GFLOP/s of each."""
    batch, steps, inputs, hidden = case["batch"], case["steps"], case["input"], case["hidden"]
    out = GATES[case["cell"]] * hidden
    shapes = {"recurrent": (batch, hidden, out), "input": (batch * steps, inputs, out),
              "square": (1024, 1024, 1024)}
    result = {}
    for name, (m, k, n) in shapes.items():
        a, w = make(m, k), make(n, k)
        repeats = max(1, int(2e6 / (m * k * n) * 50))  # tiny products: time them in loops
        seconds, _ = timed(lambda a=a, w=w, repeats=repeats: [product(a, w)
                                                             for _ in range(repeats)],
                           warm_up_s=0.1, min_s=0.2)
        seconds /= repeats
        result[f"{name}_s"] = seconds
        result[f"{name}_gflops"] = 2 * m * k * n / seconds / 1e9
    result["bound_s"] = result["input_s"] + steps * result["recurrent_s"]
    return result


def rss_kib() -> dict:
    values = {}
    with open("/proc/self/status") as stream:
        for line in stream:
            key, value = line.split(":", 1)
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(value.split()[0])
    return values


def peak_rss_growth(call) -> float | None:
    """Peak RSS growth (bytes) during ``call()``: the kernel's high-water mark, reset
    first (Linux: /proc/self/clear_refs), less the RSS before."""
    try:
        with open("/proc/self/clear_refs", "w") as stream:
            stream.write("5")
    except OSError:
        return None
    before = rss_kib()["VmRSS"]
    call()
    return 1024.0 * (rss_kib()["VmHWM"] - before)


def load_case(folder: str) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    with open(os.path.join(folder, "case.json")) as stream:
        case = json.load(stream)
    with np.load(os.path.join(folder, "params.npz")) as stored:
        params = {name: stored[name] for name in stored.files}
    with np.load(os.path.join(folder, "data.npz")) as stored:
        x, y = stored["x"], stored["y"]
    return case, params, x, y


def prepare(folder: str) -> dict:
    """Parameters, data, the NumPy module's source and the ONNX models for one case,
    written to ``folder``; compile times as JSON."""
    import onnx  # noqa: F401  (imports outside the timed compiles)

    import rnncompiler as rc

    with open(os.path.join(folder, "case.json")) as stream:
        case = json.load(stream)
    spec = rc.load_spec_text(SPEC.format(**case), filename="bench.yaml")
    steps = case["steps"]
    params = rc.init_params(spec, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((case["batch"], steps, case["input"])).astype(np.float32)
    y = rng.standard_normal((case["batch"], steps, case["hidden"])).astype(np.float32)
    np.savez(os.path.join(folder, "params.npz"), **params)
    np.savez(os.path.join(folder, "data.npz"), x=x, y=y)
    rc.backend.get_backend("numpy")
    start = time.perf_counter()
    module = rc.compile_spec(spec, "numpy", steps=steps, train=True, level=2)
    result = {"compile_s": time.perf_counter() - start,
              "source_lines": len(module.source.splitlines())}
    module.save(os.path.join(folder, "module.py"))
    for mode in case["modes"]:
        rc.backend.get_backend("onnx")
        start = time.perf_counter()
        model = rc.compile_spec(spec, "onnx", steps=steps, onnx_mode=mode,
                                train=mode == "scan", params=params)
        with open(os.path.join(folder, f"{mode}.onnx"), "wb") as stream:
            stream.write(model.serialize())
        if mode == "scan":
            with open(os.path.join(folder, "scan_train.onnx"), "wb") as stream:
                stream.write(model.serialize(train=True))
        result[f"onnx_{mode}_compile_s"] = time.perf_counter() - start
    return result


def measure_numpy(folder: str, save: bool, memory: bool) -> dict:
    """The generated module: forward and loss_and_grads times, GEMM speeds (or, with
    ``memory``, one loss_and_grads call's peak memory and time)."""
    import tracemalloc

    case, params, x, y = load_case(folder)
    with open(os.path.join(folder, "module.py"), encoding="utf-8") as stream:
        source = stream.read()
    namespace = {"__name__": "rnnc_generated_bench"}  # as NumpyModule.namespace() does
    exec(compile(source, "<rnnc:bench>", "exec"), namespace)
    forward, loss_and_grads = namespace["forward"], namespace["loss_and_grads"]
    inputs, data = {"x": x}, {"x": x, "y": y}
    result: dict = {}
    if memory:
        loss_and_grads(params, data)  # once first: what the first call alone allocates
        result["rss_peak_bytes"] = peak_rss_growth(lambda: loss_and_grads(params, data))
        tracemalloc.start()
        loss_and_grads(params, data)
        result["tracemalloc_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        result["fwdbwd_s"], result["fwdbwd_all_s"] = timed(lambda: loss_and_grads(params, data))
        return result
    result["fwd_s"], result["fwd_all_s"] = timed(lambda: forward(params, inputs))
    result["fwdbwd_s"], result["fwdbwd_all_s"] = timed(lambda: loss_and_grads(params, data))
    rng = np.random.default_rng(1)
    result["gemm"] = gemm_speeds(lambda a, w: a @ w.T,
                                 lambda m, n: rng.standard_normal((m, n), np.float32), case)
    if save:
        loss, grads = loss_and_grads(params, data)
        np.savez(os.path.join(folder, "out_numpy.npz"), out=forward(params, inputs)["RNN"],
                 loss=np.asarray(loss), **grads)
    return result


def torch_layer(torch, case: dict, params: dict):
    """nn.RNN / nn.LSTM / nn.GRU holding ``params``, and a function mapping its
    gradients to ours (``grad.RNN.<param>``)."""
    cell, inputs, hidden = case["cell"], case["input"], case["hidden"]
    kind = {"simple": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    options = {"nonlinearity": "tanh"} if cell == "simple" else {}
    layer = kind(inputs, hidden, batch_first=True, **options)
    p = {name.split(".", 1)[1]: value for name, value in params.items()}
    zeros = np.zeros(hidden, np.float32)
    gates = {"simple": ["h"], "lstm": ["i", "f", "c", "o"], "gru": ["r", "z", "n"]}[cell]
    if cell == "simple":
        biases = [p["b_h"]], [zeros]
    elif cell == "lstm":
        biases = [p[f"b_{g}"] for g in gates], [zeros] * 4
    else:
        biases = [p["b_r"], p["b_z"], p["b_xn"]], [zeros, zeros, p["b_hn"]]
    values = {"weight_ih_l0": np.concatenate([p[f"W_x{g}"] for g in gates]),
              "weight_hh_l0": np.concatenate([p[f"W_h{g}"] for g in gates]),
              "bias_ih_l0": np.concatenate(biases[0]), "bias_hh_l0": np.concatenate(biases[1])}
    with torch.no_grad():
        for name, value in values.items():
            getattr(layer, name).copy_(torch.from_numpy(value))

    def grads() -> dict:
        got = {name: getattr(layer, name).grad.numpy() for name in values}
        split = {name: np.split(value, len(gates)) for name, value in got.items()}
        ours = {}
        for index, g in enumerate(gates):
            ours[f"grad.RNN.W_x{g}"] = split["weight_ih_l0"][index]
            ours[f"grad.RNN.W_h{g}"] = split["weight_hh_l0"][index]
        if cell == "simple":
            ours["grad.RNN.b_h"] = got["bias_ih_l0"]
        elif cell == "lstm":
            ours.update({f"grad.RNN.b_{g}": split["bias_ih_l0"][i] for i, g in enumerate(gates)})
        else:
            ours.update({"grad.RNN.b_r": split["bias_ih_l0"][0],
                         "grad.RNN.b_z": split["bias_ih_l0"][1],
                         "grad.RNN.b_xn": split["bias_ih_l0"][2],
                         "grad.RNN.b_hn": split["bias_hh_l0"][2]})
        return ours

    return layer, grads


def measure_torch(folder: str, save: bool, memory: bool) -> dict:
    import torch

    torch.set_num_threads(THREADS)
    torch.set_num_interop_threads(1)
    case, params, x, y = load_case(folder)
    layer, grads = torch_layer(torch, case, params)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def forward():
        with torch.no_grad():
            return layer(tx)[0]

    def forward_backward():
        layer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(layer(tx)[0], ty)
        loss.backward()
        return loss

    result: dict = {"torch": torch.__version__}
    if memory:
        forward_backward()  # once first: lazy initialisation, thread pools, oneDNN's caches
        result["rss_peak_bytes"] = peak_rss_growth(forward_backward)
        result["fwdbwd_s"], result["fwdbwd_all_s"] = timed(forward_backward)
        return result
    result["fwd_s"], result["fwd_all_s"] = timed(forward)
    result["fwdbwd_s"], result["fwdbwd_all_s"] = timed(forward_backward)
    if case["cell"] == "lstm" and torch.backends.mkldnn.is_available():
        # torch runs an LSTM on the CPU as one oneDNN RNN primitive (fused gates, packed
        # weights); without it, as NumPy does: a product per step and element-wise ops
        with torch.backends.mkldnn.flags(enabled=False):
            result["plain_fwd_s"], _ = timed(forward)
            result["plain_fwdbwd_s"], _ = timed(forward_backward)
    result["gemm"] = gemm_speeds(lambda a, w: torch.mm(a, w.t()),
                                 lambda m, n: torch.randn(m, n), case)
    if save:
        loss = forward_backward()
        np.savez(os.path.join(folder, "out_torch.npz"), out=forward().numpy(),
                 loss=loss.detach().numpy(), **grads())
    return result


def measure_onnx(folder: str, mode: str, save: bool) -> dict:
    """One ONNX mode's forward; in scan mode also the training graph."""
    import onnxruntime as ort

    _, _, x, y = load_case(folder)

    def session(name: str):
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = THREADS
        options.inter_op_num_threads = 1
        with open(os.path.join(folder, name), "rb") as stream:
            data = stream.read()
        start = time.perf_counter()
        created = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        return created, time.perf_counter() - start

    def runner(created, feeds):
        names = [o.name for o in created.get_outputs()]
        return lambda: dict(zip(names, created.run(None, feeds)))

    created, session_s = session(f"{mode}.onnx")
    run = runner(created, {"x": x})
    result: dict = {"onnxruntime": ort.__version__, "session_s": session_s}
    result["fwd_s"], result["fwd_all_s"] = timed(run)
    saved = {"out": run()["RNN"]} if save else {}
    if mode == "scan":
        created, result["train_session_s"] = session("scan_train.onnx")
        train = runner(created, {"x": x, "y": y})
        result["fwdbwd_s"], result["fwdbwd_all_s"] = timed(train)
        if save:
            outputs = train()
            saved.update(outputs)
    if save:
        np.savez(os.path.join(folder, f"out_onnx-{mode}.npz"), **saved)
    return result


def one(kind: str, folder: str, save: bool) -> dict:
    if kind == "prepare":
        return prepare(folder)
    if kind.startswith("numpy"):
        return measure_numpy(folder, save, memory=kind == "numpy-memory")
    if kind.startswith("torch"):
        return measure_torch(folder, save, memory=kind == "torch-memory")
    return measure_onnx(folder, kind.split("-", 1)[1], save)


# ---------------------------------------------------------------------- in the parent

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
            "hidden": hidden, "modes": modes}
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
            "input": inputs, "hidden": hidden, "modes": []}
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
        scan = res.get("onnx-scan", {})
        unrolled = res.get("onnx-unrolled", {}).get("fwd_s")
        fwd_errs = [res[k].get("fwd_err") for k in res if k.startswith("onnx-")
                    and res[k].get("fwd_err") is not None]
        lines.append([r["cell"], r["config"], ms(scan.get("fwd_s")),
                      ms(unrolled) if "onnx-unrolled" in res else "skipped", ms(native),
                      ratio(scan.get("fwd_s"), native),
                      ratio(unrolled, native) if "onnx-unrolled" in res else "-",
                      ms(t["fwd_s"]), ratio(native, t["fwd_s"]), ms(scan.get("fwdbwd_s")),
                      ms(t["fwdbwd_s"]), ratio(scan.get("fwdbwd_s"), t["fwdbwd_s"]),
                      err(max(fwd_errs) if fwd_errs else None), err(scan.get("grad_rel_err")),
                      others(r, [k for k in res if k.startswith("onnx-")])])
    table("2. ONNX on onnxruntime (forward per mode, ratio to native = onnxruntime's own "
          "operator; scan training graph vs PyTorch forward + backward)",
          ["cell", "cfg", "scan ms", "unrolled ms", "native ms", "scan/nat", "unr/nat",
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
                lines.append([str(m["steps"]), m["status"]] + ["-"] * 7)
                continue
            n, t = m["numpy"], m["torch"]

            def mib(v):
                return "-" if v is None else f"{v / 2**20:.1f}"

            lines.append([str(m["steps"]), f"{m['compile_s']:.2f}", str(m["source_lines"]),
                          ms(n.get("fwdbwd_s")), mib(n.get("tracemalloc_peak_bytes")),
                          mib(n.get("rss_peak_bytes")), ms(t.get("fwdbwd_s")),
                          mib(t.get("rss_peak_bytes")),
                          pct(max(n.get("others") or 0, t.get("others") or 0))])
        b, _, i, h = CONFIGS["C2"]
        table(f"4. LSTM training module vs T (batch {b}, input {i}, hidden {h}): compile, "
              "one loss_and_grads call, its peak memory",
              ["T", "compile s", "lines", "np f+b ms", "np tracemalloc MiB", "np RSS MiB",
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
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump({"threads": THREADS, "cpus": os.cpu_count(), "rounds": args.rounds,
                       "cases": rows, "memory": memory}, stream, indent=2)


if __name__ == "__main__":
    main()
