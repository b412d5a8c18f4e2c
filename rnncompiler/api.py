"""The public API: compile a spec with a backend, run it on arrays, differentiate it."""

from __future__ import annotations

import copy
import functools
import weakref

import numpy as np

from .arrays import check_inputs, check_params
from .autodiff.bptt import training_graph
from .backend import Artifact, EmitOptions, backend_options, check_supported, get_backend
from .build.params import init_params
from .build.unroll import unroll
from .errors import RnncError
from .frontend.spec import Spec
from .passes.pipeline import optimize

_compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # spec -> {key: artifact}


def compile_spec(spec: Spec, backend: str = "numpy", steps: int | None = None,
                 train: bool = False, *, params: dict | None = None, state_io: bool = False,
                 level: int = 2, **options) -> Artifact:
    """Unroll ``spec`` over ``steps`` (default ``unroll.steps``) and lower it with
    ``backend``; with ``train``, the artifact also computes the loss and its gradients.
    ``options`` are the backend's own (``onnx_mode="native"``, ``device="cuda"`` for
    the ONNX backend; None is not given); ``params`` are the values a saved artifact
    embeds (default: fresh ones). The artifact is kept with the spec, so compiling the
    same thing again is free."""
    given = {name: value for name, value in options.items() if value is not None}
    steps = steps if steps is not None else spec.unroll.steps
    cache = _compiled.setdefault(spec, {})
    key = (backend, steps, train, tuple(sorted(given.items())), state_io, level)
    if key not in cache:
        chosen = get_backend(backend)
        cache[key] = _compile(spec, chosen, steps, train, backend_options(chosen, given),
                              state_io, level)
    artifact = cache[key]
    if hasattr(artifact, "params"):  # the values it embeds: this caller's own copy
        artifact = copy.copy(artifact)
        artifact.params = params if params is not None else init_params(spec)
    return artifact


# Compiling at a few steps: the passes and the backends see every step of the unrolled
# graph, but the artifact is the same for every T past the first and last steps' special
# cases (its loops run over T read off the inputs). So a long T compiles at REPRESENTATIVE
# steps, twice (at n and n + 1): equal artifacts are the artifact for every T; unequal
# ones (something depends on T) fall back to compiling at T itself.
REPRESENTATIVE_STEPS = 8


def representative_steps(spec: Spec) -> int:
    """The fewest steps at which ``spec``'s artifact has its general form: a truncation
    window or chunk of k steps needs two of them and a few more; neither of the two
    compiles may meet the length of a sequence the spec fixes (``steps: N``), where a
    sequence of T steps would meet it alike or clash with it."""
    k = spec.unroll.k or 0
    few = max(REPRESENTATIVE_STEPS, 2 * k + 4)
    fixed = fixed_lengths(spec)
    while few in fixed or few + 1 in fixed:
        few += 1
    return few


def fixed_lengths(spec: Spec) -> set[int]:
    """The lengths of the sequences that do not follow T (``steps: N`` in the spec)."""
    arrays = [*spec.inputs.values(), *spec.targets.values()]
    return {array.steps for array in arrays if array.sequence and array.steps} | {
        layer.output.steps for layer in spec.layers
        if layer.output.sequence and layer.output.steps}


def _compile(spec: Spec, chosen, steps: int | None, train: bool, own: dict, state_io: bool,
             level: int):
    build = functools.partial(_build, spec, chosen, train=train, own=own, state_io=state_io,
                              level=level, steps=steps)
    few = representative_steps(spec)
    if steps is not None and steps > few + 1 and steps not in fixed_lengths(spec) \
            and not chosen.writes_every_step(EmitOptions(own=own)):
        try:
            first = build(unrolled_steps=few)
            second = build(unrolled_steps=few + 1)
        except RnncError:  # (a spec whose fixed lengths fit T only): compiled at T below
            first = second = None
        if hasattr(first, "fingerprint") and first.fingerprint() == second.fingerprint():
            return first
    return build(unrolled_steps=steps)


def _build(spec: Spec, chosen, *, unrolled_steps: int | None, steps: int | None, train: bool,
           own: dict, state_io: bool, level: int):
    """The artifact for ``steps``, from the graph unrolled over ``unrolled_steps``."""
    graph = unroll(spec, unrolled_steps, state_io)
    options = EmitOptions(spec_file=spec.file, steps=steps, own=own)
    optimize(graph, chosen.forward_level(options, level))
    check_supported(chosen, graph)
    if not train:
        return chosen.emit(graph, options)
    training = training_graph(spec, unrolled_steps)
    optimize(training, level)
    check_supported(chosen, training)
    return chosen.emit(graph, options, training=training)


def run(spec: Spec, params: dict, inputs: dict, *, steps: int | None = None,
        backend: str = "numpy", **options) -> dict[str, np.ndarray]:
    """Every output of ``spec`` on ``inputs``, keyed as ``rnnc run`` writes them.

    T is ``steps``, else ``unroll.steps``, else the length of the input sequences.
    """
    inputs, steps = check_inputs(spec, inputs, steps, state_io=options.get("state_io", False))
    params = check_params(spec, params)
    return compile_spec(spec, backend, steps, **options).run(params, inputs)


def loss_and_grads(spec: Spec, params: dict, data: dict, *, steps: int | None = None,
                   backend: str = "numpy", **options) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The loss on ``data`` (inputs and targets) and its gradient for every parameter,
    keyed ``grad.<param>``, with the truncation of ``unroll.bptt``."""
    data, steps = check_inputs(spec, data, steps, with_targets=True)
    params = check_params(spec, params)
    artifact = compile_spec(spec, backend, steps, train=True, **options)
    loss, grads = artifact.loss_and_grads(params, data)
    return np.asarray(loss), grads
