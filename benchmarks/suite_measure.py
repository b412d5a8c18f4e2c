"""The measurements of ``benchmarks/suite.py``, each run in a process of its own
(``suite.py --one KIND FOLDER``): preparing a case (compiling the spec once), the
generated NumPy module, PyTorch, and each ONNX mode on onnxruntime; GEMM speeds and
memory."""

from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np

THREADS = 2
GATES = {"simple": 1, "lstm": 4, "gru": 3}
WARM_UP_S, MIN_S, MIN_CALLS, MAX_CALLS = 0.3, 0.5, 5, 100

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
    from rnncompiler.backend import get_backend  # (the package's lazy API names no submodule)

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
    get_backend("numpy")
    start = time.perf_counter()
    module = rc.compile_spec(spec, "numpy", steps=steps, train=True, level=2)
    result = {"compile_s": time.perf_counter() - start,
              "source_lines": len(module.source.splitlines())}
    module.save(os.path.join(folder, "module.py"))
    for mode in case["modes"]:
        get_backend("onnx")
        start = time.perf_counter()
        model = rc.compile_spec(spec, "onnx", steps=steps, onnx_mode=mode,
                                train=mode == "scan", params=params)
        with open(os.path.join(folder, f"{mode}.onnx"), "wb") as stream:
            stream.write(model.serialize())
        if mode == "scan":
            with open(os.path.join(folder, "scan_train.onnx"), "wb") as stream:
                stream.write(model.serialize(train=True))
        result[f"onnx_{mode}_compile_s"] = time.perf_counter() - start
    if "scan" in case["modes"]:  # creating onnxruntime sessions for the scan models
        import onnxruntime as ort

        for model in ("scan", "scan_train"):
            start = time.perf_counter()
            ort.InferenceSession(os.path.join(folder, f"{model}.onnx"),
                                 providers=["CPUExecutionProvider"])
            result[f"onnx_{model}_session_s"] = time.perf_counter() - start
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
    cuda = case.get("device") == "cuda"
    if cuda:  # on the GPU: a call is timed until the GPU is done with it
        layer, tx, ty = layer.cuda(), tx.cuda(), ty.cuda()
    done = torch.cuda.synchronize if cuda else (lambda: None)

    def forward():
        with torch.no_grad():
            out = layer(tx)[0]
        done()
        return out

    def forward_backward():
        layer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(layer(tx)[0], ty)
        loss.backward()
        done()
        return loss

    result: dict = {"torch": torch.__version__}
    if memory:
        forward_backward()  # once first: lazy initialisation, thread pools, oneDNN's caches
        result["rss_peak_bytes"] = peak_rss_growth(forward_backward)
        result["fwdbwd_s"], result["fwdbwd_all_s"] = timed(forward_backward)
        return result
    result["fwd_s"], result["fwd_all_s"] = timed(forward)
    result["fwdbwd_s"], result["fwdbwd_all_s"] = timed(forward_backward)
    if cuda:
        result["device_name"] = torch.cuda.get_device_name()
        if save:
            loss = forward_backward()
            np.savez(os.path.join(folder, "out_torch.npz"), out=forward().cpu().numpy(),
                     loss=loss.detach().cpu().numpy(),
                     **{k: v for k, v in _cpu_grads(layer, grads).items()})
        return result
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


def _cpu_grads(layer, grads) -> dict:
    """``grads()`` of a layer on the GPU: computed on a CPU copy of its gradients."""
    copy = {name: p.grad.detach().cpu() for name, p in layer.named_parameters()}
    layer.cpu()
    for name, p in layer.named_parameters():
        p.grad = copy[name]
    return grads()


def measure_onnx(folder: str, mode: str, save: bool) -> dict:
    """One ONNX mode's forward; in scan mode also the training graph."""
    import onnxruntime as ort

    case, _, x, y = load_case(folder)
    providers = ["CPUExecutionProvider"]
    if case.get("device") == "cuda":  # TF32 off, as the project's runtime sets it
        providers.insert(0, ("CUDAExecutionProvider", {"use_tf32": "0"}))

    def session(name: str):
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = THREADS
        options.inter_op_num_threads = 1
        with open(os.path.join(folder, name), "rb") as stream:
            data = stream.read()
        start = time.perf_counter()
        created = ort.InferenceSession(data, options, providers=providers)
        if providers[0] != "CPUExecutionProvider" and \
                created.get_providers()[0] != "CUDAExecutionProvider":
            raise RuntimeError("onnxruntime could not start its CUDA provider")
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


