"""Every op's VJP rule against float64 central differences along random directions.

The rules build graph nodes; here they are evaluated by the reference interpreter and
compared with (f(x + εd) - f(x - εd)) / 2ε of <g, f(x)>, for each input x and a random
direction d, including parameters (no batch axis) broadcast against batched values."""

from __future__ import annotations

import numpy as np
import pytest

from rnncompiler.autodiff.vjp import VjpBuilder
from rnncompiler.ir import ops
from rnncompiler.ir.evaluate import evaluate
from rnncompiler.ir.graph import Graph

BATCH = 3
IDS = 5  # the classes of an "ids" argument
# op -> (argument specs, attrs); a spec is (shape, batched, domain)
CASES = {
    "identity": ([((4,), True, "any")], {}),
    "take_step": ([((3, 4), True, "any")], {"index": 1}),
    "stack_steps": ([((4,), True, "any")] * 3, {}),
    "repeat_steps": ([((4,), True, "any")], {"steps": 3}),
    "matvec": ([((3, 4), False, "any"), ((4,), True, "any")], {}),
    "add": ([((4,), True, "any"), ((4,), False, "any")], {}),
    "sub": ([((4,), False, "any"), ((4,), True, "any")], {}),
    "mul": ([((4,), True, "any"), ((4,), True, "any")], {}),
    "div": ([((4,), True, "any"), ((4,), False, "positive")], {}),
    "neg": ([((4,), True, "any")], {}),
    "tanh": ([((4,), True, "any")], {}),
    "sigmoid": ([((4,), True, "any")], {}),
    "relu": ([((4,), True, "away_from_zero")], {}),
    "exp": ([((4,), True, "any")], {}),
    "log": ([((4,), True, "positive")], {}),
    "softmax": ([((4,), True, "any")], {}),
    "concat": ([((2,), True, "any"), ((3,), True, "any")], {}),
    "mse": ([((2, 4), True, "any"), ((2, 4), True, "any")], {}),
    "cross_entropy": ([((4,), True, "any"), ((4,), True, "probability")], {}),
    "masked_mse": ([((2, 4), True, "any"), ((2, 4), True, "any"), ((2, 1), True, "mask")],
                   {}),
    "masked_cross_entropy": ([((2, 4), True, "any"), ((2, 4), True, "probability"),
                              ((2, 1), True, "mask")], {}),
    # an id used twice in a row sums two cotangents into its row
    "embed": ([((IDS, 3), False, "any"), ((4,), True, "ids")], {}),
    "embed_padded": ([((IDS, 3), False, "any"), ((4,), True, "ids")], {"padding_id": 1}),
}
NO_GRADIENT = {"zeros", "sequence_mask"}  # values that no parameter moves


def _value(rng, shape, batched, domain):
    full = ((BATCH,) if batched else ()) + shape
    if domain == "positive":
        return rng.uniform(0.5, 2.0, full)
    if domain == "away_from_zero":
        return rng.choice([-1, 1], full) * rng.uniform(0.2, 1.0, full)
    if domain == "mask":  # steps that count (1) or not (0), the first always
        mask = rng.integers(0, 2, full).astype(float)
        mask.reshape(-1)[0] = 1.0
        return mask
    if domain == "ids":
        return rng.integers(0, IDS, full)
    if domain == "probability":
        raw = rng.uniform(0.1, 1.0, full)
        return raw / raw.sum(axis=-1, keepdims=True)
    return rng.standard_normal(full)


def _build(op, specs, attrs):
    graph = Graph("vjp", "float64")
    args = [graph.add_input(f"a{i}", shape) if batched else
            graph.add_param(f"a{i}", shape, "zeros", "test")
            for i, (shape, batched, _) in enumerate(specs)]
    for arg, (_, _, domain) in zip(args, specs):
        if domain == "ids":
            graph[arg].attrs.update(integer=True, classes=IDS)
    op = op.removesuffix("_padded")
    out = graph.add(op, args, **attrs)
    cotangent = graph.add_input("g", graph[out].shape) if graph[out].batched else \
        graph.add_param("g", graph[out].shape, "zeros", "test")
    builder = VjpBuilder(graph, {}, "d", [True] * len(args))
    grads = ops.get(op).vjp(builder, cotangent, out, args, graph[out].attrs)
    graph.outputs = {"y": out, **{f"d{i}": g for i, g in enumerate(grads) if g is not None}}
    return graph, [f"a{i}" for i in range(len(args))]


def _feeds(graph, values):
    """(params, inputs) for the reference interpreter."""
    params, inputs = {}, {}
    for name, value in values.items():
        (params if name in graph.params else inputs)[name] = value
    return params, inputs


def test_every_forward_op_has_a_rule_and_a_case():
    leaves = {"input", "param", "const"}
    forward = {name for name, op in ops.REGISTRY.items() if op.vjp is not None}
    assert forward - NO_GRADIENT == {case.removesuffix("_padded") for case in CASES}
    for name, op in ops.REGISTRY.items():
        if name in leaves:
            assert op.evaluate is None and op.vjp is None
        else:
            assert op.evaluate is not None, name


@pytest.mark.parametrize("op", sorted(CASES))
def test_vjp_matches_central_differences(op):
    rng = np.random.default_rng(list(op.encode()))  # the same data in every run
    specs, attrs = CASES[op]
    graph, names = _build(op, specs, attrs)
    values = {name: _value(rng, *spec) for name, spec in zip(names, specs)}
    y_shape = graph[graph.outputs["y"]].shape
    batched = graph[graph.outputs["y"]].batched
    values["g"] = rng.standard_normal(((BATCH,) if batched else ()) + y_shape)
    grads = evaluate(graph, *_feeds(graph, values))

    def objective(vals):
        return float(np.sum(evaluate(graph, *_feeds(graph, vals))["y"] * values["g"]))

    eps = 1e-6
    for i, name in enumerate(names):
        if f"d{i}" not in grads:
            # targets, masks, ids
            assert "mse" in op or ("cross_entropy" in op and i >= 1) or "embed" in op
            continue
        direction = rng.standard_normal(values[name].shape)
        if "padding_id" in attrs:  # the padding row is held fixed: its gradient is zero
            assert not grads[f"d{i}"][attrs["padding_id"]].any()
            direction[attrs["padding_id"]] = 0
        plus = {**values, name: values[name] + eps * direction}
        minus = {**values, name: values[name] - eps * direction}
        numeric = (objective(plus) - objective(minus)) / (2 * eps)
        analytic = float(np.sum(grads[f"d{i}"] * direction))
        assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-8), (op, name)
