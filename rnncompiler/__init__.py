"""rnncompiler: recurrent networks written as YAML specs, compiled to NumPy and ONNX.

The public API::

    spec = load_spec("specs/sentiment.yaml")
    params = init_params(spec, seed=0)
    outputs = run(spec, params, {"x": x})
"""

__version__ = "0.1.0"

from .api import compile_spec, loss_and_grads, run
from .errors import RnncError
from .params import init_params
from .spec import Spec, load_spec, load_spec_text
from .unroll import unroll

__all__ = ["RnncError", "Spec", "__version__", "compile_spec", "init_params", "load_spec",
           "load_spec_text", "loss_and_grads", "run", "unroll"]
