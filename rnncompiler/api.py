"""The public API: compile a spec with a backend, run it on arrays, differentiate it."""

from __future__ import annotations

import weakref

import numpy as np

from .arrays import check_inputs, check_params
from .autodiff import training_graph
from .backend import Artifact, EmitOptions, check_supported, get_backend
from .spec import Spec
from .unroll import unroll

_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # spec -> {key: artifact}


def compile_spec(spec: Spec, backend: str = "numpy", steps: int | None = None,
                 train: bool = False) -> Artifact:
    """Unroll ``spec`` over ``steps`` (default ``unroll.steps``) and lower it with
    ``backend``; with ``train``, the artifact also computes the loss and its gradients.
    The artifact is kept with the spec, so compiling the same thing again is free."""
    cache = _compiled.setdefault(spec, {})
    key = (backend, steps if steps is not None else spec.unroll.steps, train)
    if key not in cache:
        cache[key] = _compile(spec, backend, key[1], train)
    return cache[key]


def _compile(spec: Spec, backend: str, steps: int | None, train: bool) -> Artifact:
    chosen = get_backend(backend)
    graph = unroll(spec, steps)
    check_supported(chosen, graph)
    options = EmitOptions(spec_file=spec.file, steps=steps)
    if not train:
        return chosen.emit(graph, options)
    training = training_graph(spec, steps)
    check_supported(chosen, training)
    return chosen.emit(graph, options, training=training)


def run(spec: Spec, params: dict, inputs: dict, *, steps: int | None = None,
        backend: str = "numpy") -> dict[str, np.ndarray]:
    """Every output of ``spec`` on ``inputs``, keyed as ``rnnc run`` writes them.

    T is ``steps``, else ``unroll.steps``, else the length of the input sequences.
    """
    inputs, steps = check_inputs(spec, inputs, steps)
    params = check_params(spec, params)
    return compile_spec(spec, backend, steps).run(params, inputs)


def loss_and_grads(spec: Spec, params: dict, data: dict, *, steps: int | None = None,
                   backend: str = "numpy") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The loss on ``data`` (inputs and targets) and its gradient for every parameter,
    keyed ``grad.<param>``, with the truncation of ``unroll.bptt``."""
    data, steps = check_inputs(spec, data, steps, with_targets=True)
    params = check_params(spec, params)
    loss, grads = compile_spec(spec, backend, steps, train=True).loss_and_grads(params, data)
    return np.asarray(loss), grads
