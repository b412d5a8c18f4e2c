"""Self-checks of the ONNX oracle (tests/oracles/onnx_rnn.py).

A plain NumPy loop, written here straight from the equations of docs/spec.md's Built-in
cells (and the peephole LSTM of its Custom cells), must agree with the oracle for every
cell and direction: that validates the oracle's conversions (gate order, bias packing,
layouts, reverse), so other tests can trust it.  The same models are also run on onnx's
ReferenceEvaluator.
"""

import numpy as np
import pytest
from oracles.onnx_rnn import build_model, onnx_rnn_forward, run_model

CELLS = ["simple", "lstm", "gru", "gru_reset_before"]
DIRECTIONS = ["forward", "backward", "bidirectional"]
BATCH, STEPS, INPUT, UNITS = 3, 4, 2, 5


def param_shapes(cell, units=UNITS, inputs=INPUT):
    """The built-in cells' parameter names (docs/spec.md) -> shapes."""
    gates = {"simple": "h", "lstm": "ifco", "gru": "rzn", "gru_reset_before": "rzn"}[cell]
    shapes = {}
    for g in gates:
        shapes[f"W_x{g}"] = (units, inputs)
        shapes[f"W_h{g}"] = (units, units)
    biases = {"simple": ["b_h"], "lstm": ["b_i", "b_f", "b_c", "b_o"],
              "gru": ["b_r", "b_z", "b_xn", "b_hn"],
              "gru_reset_before": ["b_r", "b_z", "b_n"]}[cell]
    shapes.update({b: (units,) for b in biases})
    return shapes


def random_params(rng, cell, dtype=np.float32, scale=0.5, zero_bias=False, **sizes):
    return {k: (np.zeros(s) if zero_bias and k.startswith("b_") else
                scale * rng.standard_normal(s)).astype(dtype)
            for k, s in param_shapes(cell, **sizes).items()}


def num_dirs(direction):
    return 2 if direction == "bidirectional" else 1


def state_names(cell):
    return ["h", "c"] if cell == "lstm" else ["h"]


# ---------------------------------------------------------------- the NumPy loop

def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def numpy_step(cell, p, x, h, c, peep):
    """One step for a batch: rows of x, h, c are examples, so `W @ v` is `v @ W.T`."""
    def mv(name, v):
        return v @ p[name].T

    if cell == "simple":
        return np.tanh(mv("W_xh", x) + mv("W_hh", h) + p["b_h"]), None
    if cell == "lstm":
        pi, pf, po = (peep[k] if peep else 0.0 for k in ("p_i", "p_f", "p_o"))
        i = sigmoid(mv("W_xi", x) + mv("W_hi", h) + pi * c + p["b_i"])
        f = sigmoid(mv("W_xf", x) + mv("W_hf", h) + pf * c + p["b_f"])
        g = np.tanh(mv("W_xc", x) + mv("W_hc", h) + p["b_c"])
        c_new = f * c + i * g
        o = sigmoid(mv("W_xo", x) + mv("W_ho", h) + po * c_new + p["b_o"])
        return o * np.tanh(c_new), c_new
    r = sigmoid(mv("W_xr", x) + mv("W_hr", h) + p["b_r"])
    z = sigmoid(mv("W_xz", x) + mv("W_hz", h) + p["b_z"])
    if cell == "gru":
        n = np.tanh(mv("W_xn", x) + p["b_xn"] + r * (mv("W_hn", h) + p["b_hn"]))
    else:
        n = np.tanh(mv("W_xn", x) + mv("W_hn", r * h) + p["b_n"])
    return (1 - z) * n + z * h, None


def numpy_rnn_forward(cell, params, x, *, direction="forward", initial=None, peepholes=None):
    """Same contract as onnx_rnn_forward, by a loop over steps."""
    batch, steps, _ = x.shape
    backwards = {"forward": [False], "backward": [True], "bidirectional": [False, True]}[direction]
    ys, finals = [], {s: [] for s in state_names(cell)}
    for d, backward in enumerate(backwards):
        p = params[d]
        units = p[next(iter(p))].shape[0]
        init = initial[d] if initial else {}
        h = init.get("h", np.zeros((batch, units), x.dtype))
        c = init.get("c", np.zeros((batch, units), x.dtype))
        y = np.zeros((batch, steps, units), x.dtype)
        for t in (reversed(range(steps)) if backward else range(steps)):
            h, c = numpy_step(cell, p, x[:, t], h, c, peepholes[d] if peepholes else None)
            y[:, t] = h
        ys.append(y)
        finals["h"].append(h)
        if cell == "lstm":
            finals["c"].append(c)
    return {"Y": np.concatenate(ys, axis=-1), **finals}


# ---------------------------------------------------------------- helpers

def make_case(seed, cell, direction, *, with_initial=False, peephole=False, zero_bias=False,
              dtype=np.float32):
    rng = np.random.default_rng(seed)
    nd = num_dirs(direction)
    params = [random_params(rng, cell, dtype, zero_bias=zero_bias) for _ in range(nd)]
    x = rng.standard_normal((BATCH, STEPS, INPUT)).astype(dtype)
    initial = ([{s: rng.standard_normal((BATCH, UNITS)).astype(dtype) for s in state_names(cell)}
                for _ in range(nd)] if with_initial else None)
    peepholes = ([{k: (0.5 * rng.standard_normal(UNITS)).astype(dtype)
                   for k in ("p_i", "p_o", "p_f")} for _ in range(nd)] if peephole else None)
    return dict(cell=cell, params=params, x=x, direction=direction, initial=initial,
                peepholes=peepholes)


def assert_same(got, want, cell, rtol, atol):
    np.testing.assert_allclose(got["Y"], want["Y"], rtol=rtol, atol=atol)
    for s in state_names(cell):
        assert len(got[s]) == len(want[s])
        for g, w in zip(got[s], want[s]):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("with_initial", [False, True], ids=["zeros", "initial"])
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("cell", CELLS)
def test_oracle_matches_numpy_loop(cell, direction, with_initial):
    case = make_case(1, cell, direction, with_initial=with_initial)
    got = onnx_rnn_forward(**case)
    assert got["Y"].dtype == np.float32
    assert got["Y"].shape == (BATCH, STEPS, num_dirs(direction) * UNITS)
    assert_same(got, numpy_rnn_forward(**case), cell, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_oracle_without_bias_input(cell):
    case = make_case(2, cell, "bidirectional", zero_bias=True, with_initial=True)
    got = onnx_rnn_forward(**case, use_bias=False)
    model, _ = build_model(**case, use_bias=False)
    assert model.graph.node[0].input[3] == ""  # B really omitted
    assert_same(got, numpy_rnn_forward(**case), cell, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_oracle_lstm_peepholes_match_numpy_loop(direction):
    case = make_case(3, "lstm", direction, peephole=True, with_initial=True)
    got = onnx_rnn_forward(**case)
    assert_same(got, numpy_rnn_forward(**case), "lstm", rtol=1e-5, atol=1e-6)
    # the peepholes matter (so P's i, o, f order is really tested)
    no_peep = numpy_rnn_forward(**{**case, "peepholes": None})
    assert not np.allclose(got["Y"], no_peep["Y"], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("cell", CELLS)
def test_oracle_y_agrees_with_final_states(cell, direction):
    """Forward's final h is Y[:, -1]; backward's is Y[:, 0] (its state after step 0)."""
    out = onnx_rnn_forward(**make_case(4, cell, direction, with_initial=True))
    halves = np.split(out["Y"], num_dirs(direction), axis=-1)
    backwards = {"forward": [False], "backward": [True], "bidirectional": [False, True]}[direction]
    for y, h, backward in zip(halves, out["h"], backwards):
        np.testing.assert_array_equal(y[:, 0 if backward else -1], h)


@pytest.mark.parametrize("cell,direction", [
    ("simple", "backward"), ("lstm", "bidirectional"),
    ("gru", "bidirectional"), ("gru_reset_before", "backward"),
])
def test_onnxruntime_matches_reference_evaluator(cell, direction):
    case = make_case(5, cell, direction, with_initial=True, peephole=cell == "lstm")
    model, feeds = build_model(**case)
    ort_out = run_model(model, feeds, "onnxruntime")
    ref_out = run_model(model, feeds, "reference")
    assert ort_out.keys() == ref_out.keys()
    for name in ort_out:
        np.testing.assert_allclose(ort_out[name], ref_out[name], rtol=1e-5, atol=1e-6)


def test_onnxruntime_rejects_float64_reference_accepts_it():
    case = make_case(6, "simple", "bidirectional", with_initial=True, dtype=np.float64)
    with pytest.raises(TypeError, match="float32 only"):
        onnx_rnn_forward(**case)
    got = onnx_rnn_forward(**case, engine="reference")
    assert got["Y"].dtype == np.float64
    assert_same(got, numpy_rnn_forward(**case), "simple", rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru_reset_before"])
def test_reference_float64_other_cells(cell):
    case = make_case(7, cell, "bidirectional", with_initial=True, dtype=np.float64)
    got = onnx_rnn_forward(**case, engine="reference")
    assert_same(got, numpy_rnn_forward(**case), cell, rtol=1e-12, atol=1e-14)
