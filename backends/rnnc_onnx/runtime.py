"""Running ONNX models on onnxruntime, on the CPU or a CUDA GPU."""

from __future__ import annotations

import weakref

import numpy as np
import onnxruntime as ort

from rnncompiler.errors import RnncError


def providers(device: str) -> list:
    """The execution providers for ``device``; a clear error when CUDA cannot be had."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device != "cuda":
        raise RnncError(f"unknown device '{device}'; choose cpu or cuda")
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" in available and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # CUDA and cuDNN from the nvidia-* wheels, where they are
    if "CUDAExecutionProvider" not in available:
        raise RnncError("--device cuda needs onnxruntime-gpu with a CUDA GPU; this onnxruntime "
                        f"offers {', '.join(available)} (pip install onnxruntime-gpu)")
    # full float32 matrix products (no TF32), so that the GPU computes what the CPU does
    return [("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"]


def session(model_bytes: bytes, device: str = "cpu") -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    chosen = providers(device)
    created = ort.InferenceSession(model_bytes, options, providers=chosen)
    if device == "cuda" and "CUDAExecutionProvider" not in created.get_providers():
        raise RnncError("--device cuda: onnxruntime could not start its CUDA provider "
                        "(is a GPU visible, with the CUDA and cuDNN libraries it needs?)")
    return created


def run(created: ort.InferenceSession, inputs: dict) -> dict[str, np.ndarray]:
    names = _NAMES.get(created)
    if names is None:  # (asked once: get_inputs() builds its answer afresh at every call)
        names = _NAMES[created] = ([i.name for i in created.get_inputs()],
                                   [o.name for o in created.get_outputs()])
    outputs = created.run(names[1], {name: inputs[name] for name in names[0]})
    return dict(zip(names[1], outputs))


_NAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # session -> (inputs, outputs)
