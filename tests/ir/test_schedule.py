"""Re-rolling the unrolled graph into loops, including cells whose states read each
other's previous values after reassignment, and states copied unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import rnncompiler as rc
from rnncompiler.ir.evaluate import evaluate
from rnncompiler.ir.loops import Loop, schedule

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
    return {item.block.name: item for item in schedule(graph).items if isinstance(item, Loop)}


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
    loops = _loops(rc.api.training_graph(rc.load_spec_text(SIMPLE), 4))
    forward = loops["R"]
    backward = next(loop for loop in loops.values() if loop.block.gradient_of)
    (stack,) = forward.collected
    assert forward.saved == set()
    reads = [arg for args in backward.args.values() for arg in args]
    assert any(arg.kind == "slice" and arg.ref == stack for arg in reads)
    assert not any(arg.kind == "stepwise" for arg in reads)
