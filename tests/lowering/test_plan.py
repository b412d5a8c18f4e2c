"""Re-rolling the unrolled graph into loops and the loop plan every backend prints: cells
whose states read each other's previous values after reassignment, states copied
unchanged, maps over whole sequences, and both backends running the plan's loops as it
says."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import ROOT

import rnncompiler as rc
from rnncompiler.api import training_graph
from rnncompiler.ir.evaluate import evaluate
from rnncompiler.lowering import make_plan
from rnncompiler.passes.pipeline import optimize

CROSSED = """
rnnc: 1
name: crossed
inputs: {x: {features: 3}}
cells:
  crossed:
    state: [h, m]
    params: {V: [units, input], W: [units, units]}
    equations: |
      h[t] = tanh(V @ x[t] + W @ m[t-1])
      m[t] = h[t-1] * h[t]      # reads the previous h after h[t] is assigned
  delay:
    state: [h, m]
    params: {V: [units, input], W: [units, units]}
    equations: |
      h[t] = tanh(V @ x[t] + W @ m[t-1])
      m[t] = h[t-1]             # a delay line: a state copied unchanged
layers:
  - {name: A, type: rnn, cell: crossed, units: 4, input: x, return: sequence}
  - {name: B, type: rnn, cell: delay, units: 4, input: A, direction: backward}
"""


def _loops(graph):
    return {loop.block.name: loop for loop in make_plan(graph).loops}


def test_loops_classify_carried_states_and_collected_sequences():
    spec = rc.load_spec_text(CROSSED)
    loops = _loops(rc.unroll(spec, 5))
    assert set(loops["A"].carried) == {"h", "m"}
    assert list(loops["A"].collected.values()) == ["h"]
    assert loops["A"].keep_previous == {"h"}  # m[t] needs h[t-1] after h is reassigned
    assert loops["B"].block.backward and loops["B"].finals == {"h", "m"}


@pytest.mark.parametrize("steps", [1, 2, 6])
def test_crossed_and_delayed_states_run_as_the_graph_says(steps, rng):
    spec = rc.load_spec_text(CROSSED)
    params = {k: rng.standard_normal(v.shape).astype(np.float32) * 0.5
              for k, v in rc.init_params(spec).items()}
    inputs = {"x": rng.standard_normal((2, steps, 3)).astype(np.float32)}
    reference = evaluate(rc.unroll(spec, steps), params, inputs)
    outputs = rc.run(spec, params, inputs)
    for key, value in reference.items():
        np.testing.assert_allclose(outputs[key], value, rtol=1e-6, atol=1e-7)
    # and by hand, for the delay line: B.m is h one step later (backward: step 1)
    if steps > 1:
        np.testing.assert_allclose(outputs["B.h"], outputs["B"])


def test_generated_loop_keeps_previous_value_when_needed():
    source = rc.compile_spec(rc.load_spec_text(CROSSED), steps=3).source
    assert "h_prev = A_h" in source
    assert "for t in reversed(range(steps)):" in source


SIMPLE = """
rnnc: 1
name: simple
inputs: {x: {features: 3}}
targets: {y: {features: 4}}
layers:
  - {name: R, type: rnn, cell: simple, units: 4, input: x, return: sequence}
loss: {type: mse, output: R, target: y}
"""


def test_a_collected_place_is_read_from_its_sequence():
    """A simple cell's backward loop reads h[t], which the forward loop collects into the
    layer's sequence anyway: it reads that sequence (``slice``), and nothing is saved."""
    loops = _loops(training_graph(rc.load_spec_text(SIMPLE), 4))
    forward = loops["R"]
    backward = next(loop for loop in loops.values() if loop.block.gradient_of)
    (stack,) = forward.collected
    assert forward.saved == set()
    reads = [arg for args in backward.args.values() for arg in args]
    assert any(arg.kind == "slice" and arg.ref == stack for arg in reads)
    assert not any(arg.kind == "stepwise" for arg in reads)


MEMORYLESS = """
rnnc: 1
name: memoryless
dtype: float64
inputs: {x: {features: 3}}
targets: {y: {features: 4}}
cells:
  memoryless:
    state: [h]
    params: {W: [units, input]}
    equations: |
      a = W @ x[t]
      h[t] = tanh(a) * a
layers:
  - {name: R, type: rnn, cell: memoryless, units: 4, input: x, return: sequence}
loss: {type: mse, output: R, target: y}
"""


def test_a_map_that_saves_values_runs_over_whole_sequences_in_every_backend(rng):
    """A cell with no recurrence is a map; its backward loop reads ``a`` step by step, so
    the map saves it. The plan runs the map over whole sequences; the ONNX Scan of the
    backward loop reads the saved [batch, T, n] sequence along its axis 1."""
    spec = rc.load_spec_text(MEMORYLESS)
    plan = {loop.block.name: loop for loop in make_plan(training_graph(spec, 5)).loops}
    assert plan["R"].whole and plan["R"].saved
    assert not plan["R.grad"].whole
    params = {k: rng.standard_normal(v.shape) for k, v in rc.init_params(spec).items()}
    data = {"x": rng.standard_normal((2, 7, 3)), "y": rng.standard_normal((2, 7, 4))}
    reference = evaluate(training_graph(spec, 7), params, data)
    for level in (0, 1, 2):
        for backend, options in (("numpy", {}), ("onnx", {"onnx_mode": "scan"})):
            artifact = rc.compile_spec(spec, backend, 7, train=True, level=level, **options)
            loss, grads = artifact.loss_and_grads(params, data)
            np.testing.assert_allclose(loss, reference["loss"], rtol=1e-12)
            np.testing.assert_allclose(grads["grad.R.W"], reference["grad.R.W"], rtol=1e-10)
    model = onnx.load_from_string(rc.compile_spec(spec, "onnx", 7, train=True, level=0)
                                  .serialize(train=True))
    assert [node.op_type for node in model.graph.node].count("Scan") == 1  # the backward


@pytest.mark.parametrize("name", ["sentiment_lstm", "tagger_bilstm", "translate_generate"])
@pytest.mark.parametrize("level", [0, 2])
def test_both_backends_run_the_loops_the_plan_runs_step_by_step(name, level):
    """One ``for t`` loop in each layout of the NumPy module's function and one Scan in
    the ONNX model for every loop the plan runs one step at a time, none for those it
    runs over whole sequences."""
    spec = rc.load_spec(str(ROOT / "specs" / f"{name}.yaml"))
    graph = training_graph(spec, 4)
    optimize(graph, level)
    stepwise = [loop for loop in make_plan(graph).loops if not loop.whole]
    assert stepwise
    source = rc.compile_spec(spec, "numpy", 4, train=True, level=level).source
    for layout in ("batch_major", "feature_major"):
        function = source[source.index(f"def _loss_and_grads_{layout}"):]
        function = function[:function.index("\ndef ")]
        assert function.count("for t in ") == len(stepwise)
    model = onnx.load_from_string(
        rc.compile_spec(spec, "onnx", 4, train=True, level=level).serialize(train=True))
    assert [node.op_type for node in model.graph.node].count("Scan") == len(stepwise)


def test_the_plan_describes_itself():
    spec = rc.load_spec_text(MEMORYLESS)
    text = make_plan(training_graph(spec, 3)).describe()
    assert "loop R (over whole sequences)" in text
    assert "loop R.grad (backward one step at a time)" in text
