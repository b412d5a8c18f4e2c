"""The unrolled graph: one node per op per step, one node per parameter shared by all steps."""

from __future__ import annotations

import numpy as np
import pytest

import rnncompiler as rc
from rnncompiler.ir import ops
from rnncompiler.ir.evaluate import evaluate
from rnncompiler.ir.graph import Graph
from rnncompiler.ir.ops import OP

SIMPLE = """
rnnc: 1
name: net
inputs: {x: {features: 2}}
layers:
  - {name: RNN, type: rnn, cell: simple, units: 3, input: x, return: sequence}
  - {name: out, type: dense, units: 1, input: RNN}
"""


@pytest.mark.parametrize("steps", [1, 2, 5, 17])
def test_node_counts_grow_with_steps_and_parameters_do_not(steps):
    graph = rc.unroll(rc.load_spec_text(SIMPLE), steps)
    graph.verify()
    per_step = {}
    for _, data in graph.items():
        if data.step is not None:
            per_step.setdefault((data.layer, data.step), []).append(data.op)
    assert len(per_step) == 2 * steps
    # h[t] = tanh(W_xh @ x[t] + W_hh @ h[t-1] + b_h): take_step, 2 matvec, 2 add, tanh
    assert sorted(per_step[("RNN", steps - 1)]) == sorted(
        ["take_step", "matvec", "matvec", "add", "add", "tanh"])
    assert len(graph.params) == 5
    for name in ("RNN.W_xh", "RNN.W_hh", "RNN.b_h"):
        node = graph.params[name]
        used_at = {graph[user].step for user in graph.users(node)}
        assert used_at == set(range(steps)), name  # ONE node, an edge to every step
        assert graph[node].step is None and graph[node].op == "param"


def test_nodes_know_their_place_in_the_cell():
    graph = rc.unroll(rc.load_spec_text(SIMPLE), 4)
    places = {(d.step, d.place) for _, d in graph.items() if d.block == "RNN"}
    assert {(t, "h") for t in range(4)} <= places
    states = [n for n, d in graph.items() if d.place == "h"]
    assert all(graph[n].comment.startswith("h[t] = tanh(") for n in states)


def test_repeated_argument_is_kept_in_order():
    spec = rc.load_spec_text("""
rnnc: 1
name: net
inputs: {x: {features: 2}}
cells:
  square:
    state: [h]
    params: {V: [units, input]}
    equations: |
      a = V @ x[t]
      h[t] = a * a - h[t-1] / 2
layers: [{name: R, type: rnn, cell: square, units: 2, input: x}]
""")
    graph = rc.unroll(spec, 2)
    graph.verify()
    square = next(n for n, d in graph.items() if d.op == "mul")
    first, second = graph.args(square)
    assert first == second
    params = {"R.V": np.array([[1.0, 2.0], [0.5, -1.0]], np.float32)}
    x = np.array([[[1.0, 1.0], [2.0, 0.0]]], np.float32)
    a = x @ params["R.V"].T
    h1 = a[:, 0] ** 2
    h2 = a[:, 1] ** 2 - h1 / 2
    np.testing.assert_allclose(evaluate(graph, params, {"x": x})["R"], h2, rtol=1e-6)


def test_every_op_is_declared_completely():
    for name, op in ops.REGISTRY.items():
        assert op.name == name
        assert callable(op.shape), name
        if name not in ("input", "param", "const"):
            assert callable(op.evaluate), name
        assert hasattr(op, "vjp")  # the slot the BPTT rules fill


def test_shape_rules_reject_what_numpy_would_broadcast():
    with pytest.raises(ops.ShapeError):
        ops.get("add").shape([(3,), (4,)], {})
    with pytest.raises(ops.ShapeError):
        ops.get("matvec").shape([(3, 4), (3,)], {})
    assert ops.get("matvec").shape([(3, 4), (5, 4)], {}) == (5, 3)
    assert ops.get("concat").shape([(2,), (3,)], {}) == (5,)


def test_stable_reference_evaluations():
    big = np.array([-1e4, 0.0, 1e4], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_allclose(ops.sigmoid(big), [0.0, 0.5, 1.0])
        np.testing.assert_allclose(ops.softmax(np.array([[1e4, 0.0]], np.float32)), [[1, 0]])


def test_nodes_change_only_through_the_graph():
    """A node is frozen; ``graph.update`` changes what the graph holds, and refuses a
    field a node does not have."""
    import dataclasses

    graph = Graph()
    x = graph.add_input("x", (3,))
    node = graph.add(OP.tanh, [x], place="h")
    with pytest.raises(dataclasses.FrozenInstanceError):
        graph[node].place = "other"
    before = graph[node]
    graph.update(node, place="a", comment="a = tanh(x)")
    assert (graph[node].place, graph[node].comment) == ("a", "a = tanh(x)")
    assert before.place == "h"  # a reader's node stays what it read
    assert graph[node].where == {"step": None, "layer": None, "block": None}
    with pytest.raises(TypeError, match="no \\['colour'\\]"):
        graph.update(node, colour="red")
    with pytest.raises(TypeError, match="add a new node"):
        graph.update(node, op=OP.sigmoid)
