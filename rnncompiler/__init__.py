"""rnncompiler: recurrent networks written as YAML specs, compiled to NumPy and ONNX.

The public API::

    spec = load_spec("specs/sentiment.yaml")
    params = init_params(spec, seed=0)
    outputs = run(spec, params, {"x": x})
"""

__version__ = "0.1.0"

_EXPORTS = {"compile_spec": "api", "loss_and_grads": "api", "run": "api",
            "RnncError": "errors", "init_params": "build.params", "Spec": "frontend.spec",
            "load_spec": "frontend.spec", "load_spec_text": "frontend.spec",
            "unroll": "build.unroll"}

__all__ = ["RnncError", "Spec", "__version__", "compile_spec", "init_params", "load_spec",
           "load_spec_text", "loss_and_grads", "run", "unroll"]


def __getattr__(name: str):
    """The API, imported when first asked for: `rnnc --version` needs none of it."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rnncompiler' has no attribute '{name}'")
    from importlib import import_module

    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
