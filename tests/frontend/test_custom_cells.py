"""Custom cells: the seed's tanh(W [h; x]) written with a concatenation and a parameter
of size `units + input`, equal to the built-in simple cell with the two weights side by
side, forward and in gradient."""

from __future__ import annotations

import numpy as np

import rnncompiler as rc
from rnncompiler.gradcheck import gradcheck

SEED_FORM = """
rnnc: 1
name: seed_form
dtype: float64
inputs: {{x: {{features: 2}}}}
targets: {{y: {{features: 1, sequence: false}}}}
cells:
  stacked_weights:
    state: [h]
    params:
      W: [units, units + input]
      b: [units]
    equations: |
      h[t] = tanh(W @ concat(h[t-1], x[t]) + b)     # the seed: tanh(W [h; x])
layers:
  - {{name: R, type: rnn, cell: {cell}, units: 3, input: x}}
  - {{name: out, type: dense, units: 1, input: R}}
loss: {{type: mse, output: out, target: y}}
unroll: {{steps: 5}}
"""


def test_stacked_weights_equal_the_simple_cell(rng):
    custom = rc.load_spec_text(SEED_FORM.format(cell="stacked_weights"))
    simple = rc.load_spec_text(SEED_FORM.format(cell="simple"))
    assert rc.init_params(custom)["R.W"].shape == (3, 5)
    params = {k: rng.normal(0, 0.5, v.shape) for k, v in rc.init_params(simple).items()}
    stacked = {"R.W": np.concatenate([params["R.W_hh"], params["R.W_xh"]], axis=1),
               "R.b": params["R.b_h"], "out.W": params["out.W"], "out.b": params["out.b"]}
    data = {"x": rng.standard_normal((4, 5, 2)), "y": rng.standard_normal((4, 1))}
    inputs = {"x": data["x"]}
    np.testing.assert_allclose(rc.run(custom, stacked, inputs)["out"],
                               rc.run(simple, params, inputs)["out"], rtol=1e-12)
    loss_c, grads_c = rc.loss_and_grads(custom, stacked, data)
    loss_s, grads_s = rc.loss_and_grads(simple, params, data)
    np.testing.assert_allclose(loss_c, loss_s, rtol=1e-12)
    both = np.concatenate([grads_s["grad.R.W_hh"], grads_s["grad.R.W_xh"]], axis=1)
    np.testing.assert_allclose(grads_c["grad.R.W"], both, rtol=1e-10)


def test_stacked_weights_gradcheck():
    custom = rc.load_spec_text(SEED_FORM.format(cell="stacked_weights"))
    assert all(result.worst < 1e-6 for result in gradcheck(custom))
