"""Check the ONNX backend on a CUDA GPU: with --device cuda, every mode's inference model
and every training model gives what the CPU gives, on the example specs; then time an
LSTM forward (batch 64, T 100, input 256, hidden 512) on both.

Needs onnxruntime-gpu and a GPU; prints one JSON line per check and exits 1 on a mismatch.

    python benchmarks/onnx_cuda_check.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import rnncompiler as rc

ROOT = Path(__file__).resolve().parent.parent
SPECS = ["sentiment_lstm", "tagger_bilstm", "translate", "synced", "peephole",
         "sentiment_lengths", "tagger_lengths", "translate_generate", "caption_generate"]
BENCH = """
rnnc: 1
name: lstm_c3
inputs: {x: {features: 256}}
layers:
  - {name: RNN, type: rnn, cell: lstm, units: 512, input: x, return: sequence}
"""


def report(**row) -> None:
    print(json.dumps(row), flush=True)


def check_specs() -> bool:
    good = True
    for name in SPECS:
        spec = rc.load_spec(ROOT / "specs" / f"{name}.yaml")
        params = rc.init_params(spec, seed=3)
        data = dict(np.load(ROOT / "specs" / "data" / f"{name}.npz"))
        inputs = {k: v for k, v in data.items() if k.split(".")[0] in spec.inputs}
        for mode in ("unrolled", "scan", "native", "auto"):
            try:
                cpu = rc.compile_spec(spec, "onnx", onnx_mode=mode, device="cpu", train=True)
                gpu = rc.compile_spec(spec, "onnx", onnx_mode=mode, device="cuda", train=True)
                a, b = cpu.run(params, inputs), gpu.run(params, inputs)
            except rc.RnncError as error:  # native mode: no custom cells, no feedback
                report(spec=name, mode=mode, refused=str(error).splitlines()[0])
                continue
            forward = max(float(np.abs(a[k] - b[k]).max()) for k in a)
            (la, ga), (lb, gb) = cpu.loss_and_grads(params, data), gpu.loss_and_grads(params, data)
            grads = max(float(np.abs(ga[k] - gb[k]).max() / (np.abs(ga[k]).max() + 1e-6))
                        for k in ga)
            providers = gpu.session().get_providers()
            ok = forward < 1e-4 and grads < 1e-3 and providers[0] == "CUDAExecutionProvider"
            good &= ok
            report(spec=name, mode=mode, forward_max_abs=forward, grad_max_rel=grads,
                   loss_cpu=float(la), loss_gpu=float(lb), providers=providers, ok=ok)
    return good


def time_forward() -> None:
    """An LSTM forward on both devices: C3's size (batch 64, T 100) and C2's (batch 1,
    T 1000, compiled over a few steps like any long T), each mode against native."""
    for batch, steps, features, hidden in ((64, 100, 256, 512), (1, 1000, 32, 128)):
        spec = rc.load_spec_text(BENCH.replace("256", str(features)).replace(
            "512", str(hidden)))
        params = rc.init_params(spec, seed=0)
        x = np.random.default_rng(0).standard_normal((batch, steps, features)).astype(
            np.float32)
        outputs = {}
        for mode in ("native", "scan"):
            for device in ("cpu", "cuda"):
                model = rc.compile_spec(spec, "onnx", steps=steps, onnx_mode=mode,
                                        device=device)
                outputs[(mode, device)] = model.run(params, {"x": x})["RNN"]
                times = []
                for _ in range(10):
                    start = time.perf_counter()
                    model.run(params, {"x": x})
                    times.append(time.perf_counter() - start)
                report(bench=f"lstm b{batch} T{steps} in{features} h{hidden} forward",
                       mode=mode, device=device, median_ms=1e3 * statistics.median(times),
                       max_abs_vs_native_cpu=float(np.abs(
                           outputs[(mode, device)] - outputs[("native", "cpu")]).max()))


def main() -> int:
    report(onnxruntime=ort.__version__, providers=ort.get_available_providers())
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        report(error="this onnxruntime has no CUDAExecutionProvider: pip install onnxruntime-gpu")
        return 1
    try:
        good = check_specs()
    except rc.RnncError as error:
        report(error=str(error))
        return 1
    time_forward()
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
