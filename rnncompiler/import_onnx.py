"""``rnnc import MODEL.onnx --from onnx``: a spec and its parameters from an ONNX model
whose network is one RNN / LSTM / GRU operator on a graph input.

The operator's weights (``W``, ``R``, ``B``) must be initializers; ``direction``
(forward, reverse, bidirectional), ``layout`` (0: [T, batch, input], 1: batch-first)
and GRU's ``linear_before_reset`` (1: cell ``gru``, 0: ``gru_reset_before``) are read.
The spec takes arrays batch-first (SPEC.md §7) whatever the model's layout, and its
layer ``R`` returns ONNX's ``Y`` as one sequence: [batch, T, directions * hidden].
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from .errors import RnncError
from .interop import import_params, layers_of
from .params import init_params
from .spec import load_spec_text

CELLS = {"RNN": "simple", "LSTM": "lstm", "GRU": "gru"}
DIRECTIONS = {"forward": "forward", "reverse": "backward", "bidirectional": "bidirectional"}
UNSUPPORTED = ("clip", "input_forget", "activations")  # attributes no built-in cell has


def import_onnx(path: str, name: str) -> tuple[str, dict]:
    """(spec YAML text, our parameters) for the model in ``path``."""
    try:
        model = onnx.load(path)
    except Exception as error:  # protobuf and file errors alike
        raise RnncError(f"{path}: not an ONNX model: {error}") from None
    graph = model.graph
    nodes = [n for n in graph.node if n.op_type in CELLS]
    if len(nodes) != 1:
        raise RnncError(f"{path}: rnnc import takes a model with one RNN, LSTM or GRU "
                        f"operator; this one has {len(nodes)}")
    node = nodes[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    for key in UNSUPPORTED:
        if key in attrs:
            raise RnncError(f"{path}: {node.op_type} attribute '{key}' has no counterpart in "
                            "the built-in cells; write the cell as a custom cell")
    inputs = list(node.input) + [""] * (8 - len(node.input))
    if any(inputs[4:]):
        raise RnncError(f"{path}: {node.op_type} takes sequence_lens, initial states or "
                        "peepholes here; rnnc import maps the operator on X, W, R, B only "
                        "(peepholes: a custom cell, as specs/peephole.yaml)")
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    graph_inputs = [i.name for i in graph.input if i.name not in weights]
    if inputs[0] not in graph_inputs:
        raise RnncError(f"{path}: the {node.op_type}'s input X must be a graph input")
    for slot, label in ((1, "W"), (2, "R")):
        if inputs[slot] not in weights:
            raise RnncError(f"{path}: {node.op_type}'s {label} must be an initializer")
    w, r = weights[inputs[1]], weights[inputs[2]]
    directions, rows, features = w.shape
    hidden = int(attrs.get("hidden_size", r.shape[-1]))
    b = weights.get(inputs[3]) if inputs[3] else None
    if inputs[3] and b is None:
        raise RnncError(f"{path}: {node.op_type}'s B must be an initializer")
    if b is None:  # no bias: zeros
        b = np.zeros((directions, 2 * rows), dtype=w.dtype)
    cell = CELLS[node.op_type]
    if cell == "gru" and not attrs.get("linear_before_reset", 0):
        cell = "gru_reset_before"
    direction = attrs.get("direction", b"forward")
    direction = DIRECTIONS[direction.decode() if isinstance(direction, bytes) else direction]
    x_name = inputs[0] if inputs[0].isidentifier() else "x"
    text = "\n".join([
        f"# imported from {node.op_type} of an ONNX model (layout {attrs.get('layout', 0)}) "
        "by rnnc import; arrays are batch-first", "rnnc: 1", f"name: {name}",
        f"dtype: {'float64' if w.dtype.itemsize == 8 else 'float32'}",
        "inputs:", f"  {x_name}: {{features: {features}}}", "layers:",
        f"  - {{name: R, type: rnn, cell: {cell}, units: {hidden}, input: {x_name}, "
        f"return: sequence, direction: {direction}}}"]) + "\n"
    wanted = init_params(load_spec_text(text, filename=f"{name}.yaml"))
    params = import_params({"R.W": w, "R.R": r, "R.B": b}, layers_of(wanted), "onnx")
    return text, {k: v.astype(wanted[k].dtype) for k, v in params.items()}
