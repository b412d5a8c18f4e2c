"""Optimisation passes leave every value unchanged (to rounding), keep the graph valid
and its loops periodic, and do what they say to the graph."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from conftest import ROOT, SPECS

import rnncompiler as rc
from rnncompiler.autodiff.bptt import training_graph
from rnncompiler.ir.evaluate import evaluate
from rnncompiler.ir.graph import Graph
from rnncompiler.lowering import make_plan
from rnncompiler.passes.eliminate_common_subexpressions import eliminate_common_subexpressions
from rnncompiler.passes.eliminate_dead_nodes import eliminate_dead_nodes
from rnncompiler.passes.pipeline import LEVELS, optimize
from rnncompiler.passes.simplify_algebra import simplify_algebra


def _graphs(spec):
    return {"forward": lambda: rc.unroll(spec), "training": lambda: training_graph(spec)}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
@pytest.mark.parametrize("which", ["forward", "training"])
def test_every_pass_keeps_values(path, which):
    spec = rc.load_spec(path)
    spec.dtype = "float64"
    params = {k: v.astype(np.float64) for k, v in rc.init_params(spec, seed=4).items()}
    data = {k: v.astype(np.float64)
            for k, v in np.load(ROOT / "specs" / "data" / f"{path.stem}.npz").items()}
    build = _graphs(spec)[which]
    reference = evaluate(build(), params, data)
    for rewrite in LEVELS[2]:  # each pass alone, then all of them
        graph = build()
        rewrite(graph)
        graph.verify()
        make_plan(graph)  # still re-rolls into loops
        for key, value in evaluate(graph, params, data).items():
            np.testing.assert_allclose(value, reference[key], rtol=1e-10, atol=1e-12)
    graph = build()
    optimize(graph, 2, verify=True)
    for key, value in evaluate(graph, params, data).items():
        np.testing.assert_allclose(value, reference[key], rtol=1e-10, atol=1e-12)


def _ops(graph):
    return [data.op for _, data in graph.items()]


def test_lstm_products_are_fused_hoisted_and_batched():
    spec = rc.load_spec(ROOT / "specs" / "sentiment_lstm.yaml")
    forward = rc.unroll(spec, 20)
    assert _ops(forward).count("matvec") == 20 * 8 + 1  # 8 gate products a step, 1 dense
    optimize(forward, 2)
    # one hoisted product for the inputs, one fused recurrent product a step (on the
    # weights stacked and transposed once), the dense
    assert _ops(forward).count("matvec") == 1 + 1
    assert _ops(forward).count("matvec_t") == 20
    assert _ops(forward).count("stack_rows") == 2
    assert _ops(forward).count("transpose") == 1
    per_step = Counter(d.op for _, d in forward.items() if d.step == 7)
    # the step's gates: one addition, one sigmoid over i, f and o, one tanh for g
    assert per_step["sigmoid"] == 1 and per_step["add"] == 2  # and c = f*c + i*g
    assert per_step["tanh"] == 2
    training = training_graph(spec, 20)
    optimize(training, 2)
    per_step = [d for _, d in training.items()
                if d.op in ("outer_sum", "sum_batch") and d.step is not None]
    assert per_step == []  # every weight gradient is one product after the loop
    assert _ops(training).count("outer_sum") == 8 + 1


def test_gru_biases_join_the_hoisted_products():
    """A GRU step reads slices of the hoisted input product (r and z together, n apart),
    each adding its bias: the biases join into one vector added to the whole product before
    the loop, so the step adds no bias but b_hn, inside r * (W_hn h + b_hn)."""
    spec = rc.load_spec(ROOT / "specs" / "sentiment_gru.yaml")
    forward = rc.unroll(spec, 20)
    optimize(forward, 2)
    per_step = Counter(d.op for _, d in forward.items() if d.step == 7)
    # r and z: one sum; n: (W_hn h + b_hn), then x's part + r * that; h: (1 - z) n + z h
    assert per_step["add"] == 4 and per_step["sigmoid"] == 1
    biased = [node for node, d in forward.items() if d.step is None
              and d.op == "add" and d.place.endswith(".biased")]
    assert len(biased) == 1
    bias = forward.args(biased[0])[1]
    assert forward[bias].op == "concat"
    assert [forward[a].attrs["name"] for a in forward.args(bias)] == [
        "RNN.b_r", "RNN.b_z", "RNN.b_xn"]


def test_gru_backward_sends_one_product_a_step():
    """A GRU step sends back dh * z + W_hnᵀ dn + W_hrᵀ dr + W_hzᵀ dz: the three products
    become one, on the forward's stacked weight, and dh * z is added to it."""
    spec = rc.load_spec(ROOT / "specs" / "sentiment_gru.yaml")
    training = training_graph(spec, 20)
    optimize(training, 2)
    backward = [d for _, d in training.items()
                if d.step == 7 and d.block == "RNN.grad"]
    assert Counter(d.op for d in backward)["matvec_t"] == 1
    (fused,) = [n for n, d in training.items() if d.step == 7
                and d.block == "RNN.grad" and d.op == "matvec_t"]
    weight = training.args(fused)[0]
    assert training[weight].op == "stack_rows"
    assert [training[a].attrs["name"] for a in training.args(weight)] == [
        "RNN.W_hn", "RNN.W_hr", "RNN.W_hz"]  # the forward's order: one stacked weight


def test_levels_give_the_same_gradients(rng):
    spec = rc.load_spec(ROOT / "specs" / "tagger_bilstm.yaml")
    params = rc.init_params(spec, seed=2)
    data = dict(np.load(ROOT / "specs" / "data" / "tagger_bilstm.npz"))
    results = [rc.compile_spec(spec, train=True, level=level).loss_and_grads(params, data)
               for level in (0, 1, 2)]
    for loss, grads in results[1:]:
        np.testing.assert_allclose(loss, results[0][0], rtol=1e-6)
        for key, value in grads.items():
            np.testing.assert_allclose(value, results[0][1][key], rtol=2e-4, atol=1e-6)


def _count(graph, op, step=None):
    return sum(d.op == op and (step is None or d.step == step)
               for _, d in graph.items())


def test_last_step_gradient_starts_the_carry():
    """Many-to-one: dL/dh_T was scattered into a sequence of zeros and added at every
    step; simplified, the backward loop's carried gradient starts from it."""
    spec = rc.load_spec(ROOT / "specs" / "sentiment.yaml")
    graph = training_graph(spec, 6)
    assert _count(graph, "scatter_step") == 1
    adds = _count(graph, "add")
    assert simplify_algebra(graph)
    eliminate_dead_nodes(graph)
    assert _count(graph, "scatter_step") == 0
    assert _count(graph, "add") == adds - 6  # one addition a step fewer
    make_plan(graph)


def test_simplify_rules():
    graph = Graph()
    x = graph.add_input("x", (3,))
    zero = graph.add("zeros", [x], size=3)
    one = graph.const(1.0)
    terms = [graph.add("add", [x, zero]), graph.add("add", [zero, x]),
             graph.add("sub", [x, zero]), graph.add("mul", [one, x]),
             graph.add("div", [x, one]), graph.add("neg", [graph.add("neg", [x])]),
             graph.add("identity", [x])]
    kept = [graph.add("div", [one, x]), graph.add("sub", [zero, x])]  # not x
    for i, node in enumerate(terms + kept):
        graph.outputs[f"o{i}"] = node
    assert simplify_algebra(graph)
    assert [graph.outputs[f"o{i}"] for i in range(len(terms))] == [x] * len(terms)
    assert [graph.outputs[f"o{i}"] for i in range(len(terms), len(terms) + 2)] == kept


def test_common_subexpressions_merge_alike_at_every_step():
    spec = rc.load_spec_text(TWICE)
    graph = rc.unroll(spec, 5)
    before = _count(graph, "matvec")
    assert eliminate_common_subexpressions(graph)
    assert _count(graph, "matvec") == before - 5  # W @ h[t-1] once a step, not twice
    assert _count(graph, "tanh") == 5
    make_plan(graph)


def test_common_subexpressions_keep_states_that_start_alike():
    """h and s both start from one input, so at the first step ``U @ h[t-1]`` and
    ``U @ s[t-1]`` look alike; they differ at every other step and stay apart."""
    spec = rc.load_spec_text(ALIKE_AT_FIRST_STEP)
    graph = rc.unroll(spec, 4)
    before = _count(graph, "matvec")
    eliminate_common_subexpressions(graph)
    assert _count(graph, "matvec") == before
    make_plan(graph)


TWICE = """
rnnc: 1
name: twice
cells:
  twice:
    state: [h]
    params: {W: [units, units], V: [units, input]}
    equations: |
      h[t] = tanh(W @ h[t-1] + V @ x[t]) * sigmoid(W @ h[t-1])
inputs: {x: {features: 3}}
layers:
  - {name: R, type: rnn, cell: twice, units: 4, input: x}
"""

ALIKE_AT_FIRST_STEP = """
rnnc: 1
name: alike
cells:
  two:
    state: [h, s]
    params: {U: [units, units], V: [units, input]}
    equations: |
      h[t] = tanh(U @ h[t-1] + V @ x[t])
      s[t] = tanh(U @ s[t-1]) + h[t]
inputs: {x: {features: 3}, start: {features: 4, sequence: false}}
layers:
  - {name: R, type: rnn, cell: two, units: 4, input: x, initial_state: {h: start, s: start}}
"""


def test_pass_report_says_what_changed(capsys):
    from rnncompiler.cli import main
    assert main(["inspect", str(ROOT / "specs" / "sentiment_lstm.yaml"), "--grad",
                 "-O2"]) == 0
    out = capsys.readouterr().out
    assert "fuse_elementwise:" in out and "sigmoid" in out
    assert "simplify_algebra:" in out and "scatter_step 1 -> 0" in out
