"""rnncompiler: recurrent networks written as YAML specs, compiled to NumPy and ONNX.

The public API::

    spec = load_spec("specs/sentiment.yaml")
    params = init_params(spec, seed=0)
    outputs = run(spec, params, {"x": x})
"""

__version__ = "0.1.0"

from .api import compile_spec, run  # noqa: E402
from .errors import RnncError  # noqa: E402
from .params import init_params  # noqa: E402
from .spec import Spec, load_spec, load_spec_text  # noqa: E402
from .unroll import unroll  # noqa: E402

__all__ = ["RnncError", "Spec", "compile_spec", "init_params", "load_spec", "load_spec_text",
           "run", "unroll", "__version__"]
