"""The ONNX backend's command-line options (``rnnc run|grad|compile --backend onnx``);
imports nothing heavy, since ``rnnc --help`` reads it."""

from __future__ import annotations

MODES = ("unrolled", "scan", "native")
DEVICES = ("cpu", "cuda")


def add_arguments(group) -> None:
    group.add_argument("--onnx-mode", choices=MODES, default=None,
                       help="every step written out, a Scan loop (default; any T at run "
                            "time) or ONNX's own RNN/LSTM/GRU operators")
    group.add_argument("--device", choices=DEVICES, default=None,
                       help="run on onnxruntime's CPU (default) or CUDA provider")
