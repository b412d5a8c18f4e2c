"""The ONNX backend: a graph becomes an ONNX model (opset 17) run by onnxruntime.

Registered under the entry-point group ``rnncompiler.backends`` as ``onnx``, and its
command-line options (``options.py``) under ``rnncompiler.backend_options``. The backend
is imported when first asked for, so that ``rnnc --help`` reads the options without
importing onnx.
"""


def __getattr__(name: str):
    if name in ("OnnxBackend", "OnnxModel"):
        from . import backend

        return getattr(backend, name)
    raise AttributeError(f"module 'rnnc_onnx' has no attribute '{name}'")
