"""Names from the spec reach generated source only as checked identifiers: Python
keywords, builtins and the module's own names still give valid, correct code."""

from __future__ import annotations

import numpy as np

import rnncompiler as rc
from rnncompiler.ir.evaluate import evaluate

AWKWARD = """
rnnc: 1
name: class
inputs:
  np: {features: 2}
  params: {features: 3, sequence: false}
cells:
  lambda:
    state: [h]
    params: {W_in: [units, input], W_rec: [units, units], print: [units]}
    equations: |
      sum = W_in @ x[t] + print     # a local called sum
      np = tanh(sum + W_rec @ h[t-1])
      h[t] = np
layers:
  - {name: def, type: rnn, cell: lambda, units: 3, input: np, return: sequence,
     initial_state: {h: params}}
  - {name: forward, type: dense, units: 2, input: def, activation: softmax}
  - {name: batch, type: rnn, cell: simple, units: 3, input: forward,
     initial_state: {h: def.h}}
outputs: [forward, batch]
unroll: {steps: 4}
"""


def test_keywords_and_builtins_as_names_give_valid_code(rng):
    spec = rc.load_spec_text(AWKWARD)
    module = rc.compile_spec(spec)
    compile(module.source, "generated", "exec")
    params = {k: rng.standard_normal(v.shape).astype(np.float32)
              for k, v in rc.init_params(spec).items()}
    inputs = {"np": rng.standard_normal((2, 4, 2)).astype(np.float32),
              "params": rng.standard_normal((2, 3)).astype(np.float32)}
    outputs = rc.run(spec, params, inputs)
    reference = evaluate(rc.unroll(spec), params, inputs)
    assert set(outputs) == {"forward", "batch", "def.h", "batch.h"}
    for key, value in reference.items():
        np.testing.assert_allclose(outputs[key], value, rtol=1e-6, atol=1e-7)


def test_module_helpers_are_reserved_names():
    """A value named like a helper of the module (a node `sequence_mask`) must not shadow
    it: every helper a lowering calls is reserved."""
    from rnnc_numpy.lowering import HELPERS
    from rnnc_numpy.names import MODULE_NAMES
    assert {name for names in HELPERS.values() for name in names} <= MODULE_NAMES
