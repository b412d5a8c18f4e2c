"""The project's forward pass (rc.run) against the ONNX oracle (tests/oracles/onnx_rnn.py).

Specs are written as YAML text; parameters come from rc.init_params (which fixes the
keys and shapes, checked against docs/spec.md's Built-in cells) and are then replaced by random
values of scale ~0.5 so that every bias is nonzero.
"""

import numpy as np
import pytest
from conftest import PEEPHOLE_CELL
from oracles.onnx_rnn import onnx_rnn_forward
from test_oracles import CELLS, DIRECTIONS, num_dirs, numpy_rnn_forward, param_shapes, state_names

import rnncompiler as rc

BATCH, STEPS, INPUT, UNITS = 3, 4, 2, 5
RTOL, ATOL = 1e-5, 1e-6
# key infix per direction: '<layer>.<param>' or '<layer>.fwd.<param>' / '<layer>.bwd.<param>'
TAGS = {"forward": [""], "backward": [""], "bidirectional": ["fwd.", "bwd."]}


# ---------------------------------------------------------------- spec text

def flow(mapping):
    """A YAML flow mapping from a dict of plain scalars (or nested dicts)."""
    return "{" + ", ".join(f"{k}: {flow(v) if isinstance(v, dict) else v}"
                           for k, v in mapping.items()) + "}"


def rnn_layer(name, cell, input, *, direction="forward", ret="last", units=UNITS,
              initial_state=None):
    layer = {"name": name, "type": "rnn", "cell": cell, "units": units, "input": input,
             "return": ret, "direction": direction}
    if initial_state:
        layer["initial_state"] = initial_state
    return layer


def spec_text(layers, inputs, *, outputs=None, dtype="float32", cells=""):
    lines = ["rnnc: 1", "name: case", f"dtype: {dtype}", "inputs:"]
    lines += [f"  {n}: {flow(v)}" for n, v in inputs.items()]
    lines += [cells.rstrip()] if cells else []
    lines += ["layers:"] + [f"  - {flow(layer)}" for layer in layers]
    lines += [f"outputs: [{', '.join(outputs or [layers[-1]['name']])}]",
              f"unroll: {{steps: {STEPS}}}"]
    return "\n".join(lines) + "\n"


def initial_state_inputs(cell, direction, units=UNITS):
    """(initial_state map for the layer, the vector inputs it names)."""
    mapping, inputs = {}, {}
    for tag in TAGS[direction]:
        for s in state_names(cell):
            name = "h0_" + (tag + s).replace(".", "_")
            mapping[tag + s] = name
            inputs[name] = {"features": units, "sequence": "false"}
    return mapping, inputs


# ---------------------------------------------------------------- params and checks

def randomized(params, rng, dtype, zero_bias=False):
    """Same keys and shapes as `params`, fresh N(0, 0.5^2) values; zero biases if asked."""
    out = {}
    for key, value in params.items():
        assert value.dtype == dtype, f"{key}: {value.dtype}, spec says {np.dtype(dtype)}"
        leaf = key.rsplit(".", 1)[-1]
        out[key] = (np.zeros(value.shape) if zero_bias and leaf.startswith("b_")
                    else 0.5 * rng.standard_normal(value.shape)).astype(dtype)
    return out


def per_direction(params, layer, direction, expected_shapes=None):
    """Strip '<layer>.' (and 'fwd.'/'bwd.') -> list of per-direction dicts for the oracle."""
    dicts = []
    for tag in TAGS[direction]:
        prefix = f"{layer}.{tag}"
        d = {k[len(prefix):]: v for k, v in params.items()
             if k.startswith(prefix) and "." not in k[len(prefix):]}
        if expected_shapes is not None:
            assert {k: v.shape for k, v in d.items()} == expected_shapes, prefix
        dicts.append(d)
    return dicts


def assert_close(got, want, what, rtol=RTOL, atol=ATOL):
    got = np.asarray(got)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, want {want.shape}"
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


def check_layer(out, layer, cell, direction, ret, want, **tol):
    """Layer output and final states of `layer` in rc.run's result vs the oracle's."""
    expected = want["Y"] if ret == "sequence" else np.concatenate(want["h"], axis=-1)
    assert_close(out[layer], expected, layer, **tol)
    for s in state_names(cell):
        for tag, value in zip(TAGS[direction], want[s]):
            assert_close(out[f"{layer}.{tag}{s}"], value, f"{layer}.{tag}{s}", **tol)


def build(text, seed, dtype=np.float32, zero_bias=False):
    spec = rc.load_spec_text(text, filename="case.yaml")
    rng = np.random.default_rng(seed)
    params = randomized(rc.init_params(spec, seed=0), rng, dtype, zero_bias)
    return spec, params, rng


def random_inputs(rng, shapes, dtype=np.float32):
    return {n: rng.standard_normal(s).astype(dtype) for n, s in shapes.items()}


# ---------------------------------------------------------------- built-in cells

@pytest.mark.parametrize("bias", ["bias", "zero_bias"])
@pytest.mark.parametrize("with_initial", [False, True], ids=["zeros", "initial"])
@pytest.mark.parametrize("ret", ["last", "sequence"])
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("cell", CELLS)
def test_builtin_cell_matches_onnx(cell, direction, ret, with_initial, bias):
    initial_state, state_inputs = (initial_state_inputs(cell, direction) if with_initial
                                   else (None, {}))
    layer = rnn_layer("RNN", cell, "x", direction=direction, ret=ret,
                      initial_state=initial_state)
    text = spec_text([layer], {"x": {"features": INPUT}, **state_inputs})
    spec, params, rng = build(text, seed=10, zero_bias=bias == "zero_bias")
    inputs = random_inputs(rng, {"x": (BATCH, STEPS, INPUT),
                                 **{n: (BATCH, UNITS) for n in state_inputs}})

    out = rc.run(spec, params, inputs)

    initial = None
    if with_initial:
        initial = [{s: inputs[initial_state[tag + s]] for s in state_names(cell)}
                   for tag in TAGS[direction]]
    want = onnx_rnn_forward(cell, per_direction(params, "RNN", direction, param_shapes(cell)),
                            inputs["x"], direction=direction, initial=initial,
                            use_bias=bias == "bias")
    check_layer(out, "RNN", cell, direction, ret, want)
    assert np.asarray(out["RNN"]).dtype == np.float32


# ---------------------------------------------------------------- custom peephole LSTM



@pytest.mark.parametrize("with_initial", [False, True], ids=["zeros", "initial"])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_custom_peephole_lstm_matches_onnx_lstm_with_P(direction, with_initial):
    initial_state, state_inputs = (initial_state_inputs("lstm", direction) if with_initial
                                   else (None, {}))
    layer = rnn_layer("RNN", "peephole_lstm", "x", direction=direction, ret="sequence",
                      initial_state=initial_state)
    text = spec_text([layer], {"x": {"features": INPUT}, **state_inputs}, cells=PEEPHOLE_CELL)
    spec, params, rng = build(text, seed=20)
    inputs = random_inputs(rng, {"x": (BATCH, STEPS, INPUT),
                                 **{n: (BATCH, UNITS) for n in state_inputs}})

    out = rc.run(spec, params, inputs)

    shapes = {**param_shapes("lstm"), **{k: (UNITS,) for k in ("p_i", "p_f", "p_o")}}
    dicts = per_direction(params, "RNN", direction, shapes)
    weights = [{k: v for k, v in d.items() if not k.startswith("p_")} for d in dicts]
    peepholes = [{k: v for k, v in d.items() if k.startswith("p_")} for d in dicts]
    initial = None
    if with_initial:
        initial = [{s: inputs[initial_state[tag + s]] for s in ("h", "c")}
                   for tag in TAGS[direction]]
    want = onnx_rnn_forward("lstm", weights, inputs["x"], direction=direction,
                            initial=initial, peepholes=peepholes)
    check_layer(out, "RNN", "lstm", direction, "sequence", want)


# ---------------------------------------------------------------- stacked layers

@pytest.mark.parametrize("first,second", [
    (("lstm", "bidirectional"), ("gru", "forward")),
    (("simple", "forward"), ("gru_reset_before", "backward")),
    (("gru", "backward"), ("lstm", "bidirectional")),
])
@pytest.mark.parametrize("ret", ["last", "sequence"])
def test_stacked_layers_match_chained_oracle(first, second, ret):
    (cell1, dir1), (cell2, dir2) = first, second
    units2 = 4
    layers = [rnn_layer("L1", cell1, "x", direction=dir1, ret="sequence"),
              rnn_layer("L2", cell2, "L1", direction=dir2, ret=ret, units=units2)]
    text = spec_text(layers, {"x": {"features": INPUT}}, outputs=["L1", "L2"])
    spec, params, rng = build(text, seed=30)
    inputs = random_inputs(rng, {"x": (BATCH, STEPS, INPUT)})

    out = rc.run(spec, params, inputs)

    want1 = onnx_rnn_forward(cell1, per_direction(params, "L1", dir1, param_shapes(cell1)),
                             inputs["x"], direction=dir1)
    shapes2 = param_shapes(cell2, units=units2, inputs=num_dirs(dir1) * UNITS)
    want2 = onnx_rnn_forward(cell2, per_direction(params, "L2", dir2, shapes2),
                             want1["Y"], direction=dir2)
    check_layer(out, "L1", cell1, dir1, "sequence", want1)
    check_layer(out, "L2", cell2, dir2, ret, want2)


# ---------------------------------------------------------------- float64

@pytest.mark.parametrize("ret", ["last", "sequence"])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_float64_simple_cell(direction, ret):
    """onnxruntime's RNN kernel is float32-only, so float64 is checked against the NumPy
    loop of test_oracles.py and onnx's ReferenceEvaluator running the oracle's model."""
    initial_state, state_inputs = initial_state_inputs("simple", direction)
    layer = rnn_layer("RNN", "simple", "x", direction=direction, ret=ret,
                      initial_state=initial_state)
    text = spec_text([layer], {"x": {"features": INPUT}, **state_inputs}, dtype="float64")
    spec, params, rng = build(text, seed=40, dtype=np.float64)
    inputs = random_inputs(rng, {"x": (BATCH, STEPS, INPUT),
                                 **{n: (BATCH, UNITS) for n in state_inputs}}, np.float64)

    out = rc.run(spec, params, inputs)

    case = dict(params=per_direction(params, "RNN", direction, param_shapes("simple")),
                x=inputs["x"], direction=direction,
                initial=[{"h": inputs[initial_state[tag + "h"]]} for tag in TAGS[direction]])
    assert np.asarray(out["RNN"]).dtype == np.float64
    for want in (numpy_rnn_forward("simple", **case),
                 onnx_rnn_forward("simple", **case, engine="reference")):
        check_layer(out, "RNN", "simple", direction, ret, want, rtol=1e-12, atol=1e-14)
