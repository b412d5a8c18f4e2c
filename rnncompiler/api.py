"""The public API: compile a spec with a backend, run it on arrays."""

from __future__ import annotations

import numpy as np

from .arrays import check_inputs, check_params
from .backend import Artifact, EmitOptions, check_supported, get_backend
from .spec import Spec
from .unroll import unroll


def compile_spec(spec: Spec, backend: str = "numpy", steps: int | None = None) -> Artifact:
    """Unroll ``spec`` over ``steps`` (default ``unroll.steps``) and lower it with ``backend``."""
    graph = unroll(spec, steps)
    chosen = get_backend(backend)
    check_supported(chosen, graph)
    return chosen.emit(graph, EmitOptions(spec_file=spec.file, steps=steps))


def run(spec: Spec, params: dict, inputs: dict, *, steps: int | None = None,
        backend: str = "numpy") -> dict[str, np.ndarray]:
    """Every output of ``spec`` on ``inputs``, keyed as ``rnnc run`` writes them.

    T is ``steps``, else ``unroll.steps``, else the length of the input sequences.
    """
    inputs, steps = check_inputs(spec, inputs, steps)
    params = check_params(spec, params)
    return compile_spec(spec, backend, steps).run(params, inputs)
