"""The reference interpreter: runs a graph node by node with each op's NumPy evaluation.

Slow (one Python call per node per step) and plain on purpose: it is the yardstick that
backends and passes are checked against, straight from the op registry.
"""

from __future__ import annotations

import numpy as np

from . import ops
from .graph import Graph
from .ops import OP


def evaluate(graph: Graph, params: dict, inputs: dict) -> dict[str, np.ndarray]:
    """Every graph output, by name, for the given parameter and input arrays."""
    values = evaluate_all(graph, params, inputs)
    return {name: values[node] for name, node in graph.outputs.items()}


def evaluate_all(graph: Graph, params: dict, inputs: dict) -> dict[int, np.ndarray]:
    """The value of every node (for looking inside, e.g. at per-step gradients)."""
    dtype = np.dtype(graph.dtype)
    values: dict[int, np.ndarray] = {}
    for node in graph.topological_order():
        data = graph[node]
        op, attrs = data.op, data.attrs
        if op == OP.input:  # class ids stay ints
            values[node] = np.asarray(inputs[attrs["name"]],
                                      dtype=np.int64 if "classes" in attrs else dtype)
        elif op == OP.param:
            values[node] = np.asarray(params[attrs["name"]], dtype=dtype)
        elif op == OP.const:
            values[node] = attrs["value"]
        elif op == OP.zeros_shaped:
            values[node] = np.zeros(attrs["shape"], dtype=dtype)
        else:
            args = [values[arg] for arg in graph.args(node)]
            values[node] = ops.get(op).evaluate(*args, **attrs)
    return values
