"""rnncompiler: recurrent networks written as YAML specs, compiled to NumPy and ONNX.

The public API::

    spec = load_spec("specs/sentiment.yaml")
    params = init_params(spec, seed=0)
    outputs = run(spec, params, {"x": x})
    trained = train(spec, "data.npz", epochs=10)       # .params, .history, .metrics
    evaluate(spec, trained.params, "test.npz")          # {"loss": ..., "accuracy": ...}
    generate(lm_spec, lm_params, "The ", length=200)    # a language model's text
"""

__version__ = "0.1.0"

_EXPORTS = {  # name -> the module that defines it
    "compile_spec": "api", "loss_and_grads": "api", "run": "api",
    "check_inputs": "arrays", "check_params": "arrays", "load_npz": "arrays",
    "RnncError": "errors",
    "Spec": "frontend.spec", "UnrollSpec": "frontend.spec", "load_spec": "frontend.spec",
    "load_spec_text": "frontend.spec", "param_infos": "frontend.params",
    "schema_text": "frontend.schema", "init_params": "build.params", "unroll": "build.unroll",
    "training_graph": "autodiff.bptt", "optimize": "passes.pipeline",
    "train": "training.api", "evaluate": "training.api", "generate": "generation",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    """The API, imported when first asked for: `rnnc --version` needs none of it."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rnncompiler' has no attribute '{name}'")
    from importlib import import_module

    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
