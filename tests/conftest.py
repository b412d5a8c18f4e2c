"""Shared fixtures: the example specs and their data files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Keras 3, where installed (.ci/run installs it), runs on PyTorch: the peer comparisons of
# test_import_keras.py need no TensorFlow
os.environ.setdefault("KERAS_BACKEND", "torch")

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))

# docs/spec.md, Custom cells: an LSTM with peepholes, c[t-1] in i and f, c[t] in o (ONNX LSTM's P)
PEEPHOLE_CELL = """\
cells:
  peephole_lstm:
    state: [h, c]
    params:
      W_xi: [units, input]
      W_xf: [units, input]
      W_xc: [units, input]
      W_xo: [units, input]
      W_hi: [units, units]
      W_hf: [units, units]
      W_hc: [units, units]
      W_ho: [units, units]
      b_i: [units]
      b_f: [units]
      b_c: [units]
      b_o: [units]
      p_i: {shape: [units], init: zeros}
      p_f: {shape: [units], init: zeros}
      p_o: {shape: [units], init: zeros}
    equations: |
      i = sigmoid(W_xi @ x[t] + W_hi @ h[t-1] + p_i * c[t-1] + b_i)
      f = sigmoid(W_xf @ x[t] + W_hf @ h[t-1] + p_f * c[t-1] + b_f)
      g = tanh(W_xc @ x[t] + W_hc @ h[t-1] + b_c)
      c[t] = f * c[t-1] + i * g
      o = sigmoid(W_xo @ x[t] + W_ho @ h[t-1] + p_o * c[t] + b_o)
      h[t] = o * tanh(c[t])
"""


def spec_inputs(spec, data: dict) -> dict:
    """The arrays of ``data`` that are inputs of ``spec`` (data files also hold targets),
    with the lengths of those that have them."""
    names = [*spec.inputs, *(f"{n}.lengths" for n, a in spec.inputs.items() if a.lengths)]
    return {name: data[name] for name in names}


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
