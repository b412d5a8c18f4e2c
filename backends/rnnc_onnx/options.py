"""The ONNX backend's command-line options (``rnnc run|grad|compile --backend onnx``);
imports nothing heavy, since ``rnnc --help`` reads it."""

from __future__ import annotations

MODES = ("auto", "scan", "native", "unrolled")
DEVICES = ("cpu", "cuda")


def add_arguments(group) -> None:
    group.add_argument("--onnx-mode", choices=MODES, default=None,
                       help="ONNX's own RNN/LSTM/GRU operators for built-in cells and a Scan "
                            "loop for the others (auto, default), Scan loops only, the "
                            "operators only (native), or every step written out")
    group.add_argument("--device", choices=DEVICES, default=None,
                       help="run on onnxruntime's CPU (default) or CUDA provider")
