"""Numerical robustness: saturating inputs, logits and parameters give finite outputs,
losses and gradients, without a single NumPy floating-point warning, in every op's
reference evaluation, in the generated NumPy module and in the ONNX model; and a float64
spec computes in float64 throughout (a float32 one in float32).

"Large" is ±1e4 for inputs and logits, and parameters scaled up until every gate
saturates. exp and log are the two ops that cannot take that range (e^1e4 is not a
float): they are checked on the range where their result exists, and the specs use the
exp-free functions (sigmoid, tanh, relu, softmax and the losses, which must be computed
stably from the logits).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnncompiler as rc
from rnncompiler.ir import ops
from rnncompiler.ir.evaluate import evaluate

BIG = 1e4
FILE = "numerics.yaml"
DTYPES = ("float32", "float64")


@contextlib.contextmanager
def strict_numpy():
    """Every floating-point problem and every warning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield


def assert_finite(value, what: str) -> None:
    array = np.asarray(value)
    assert np.all(np.isfinite(array)), f"{what}: not finite: {array[~np.isfinite(array)][:5]}"


def big(rng, shape, dtype, scale=BIG):
    """Values of magnitude scale/2 .. scale, both signs."""
    signs = rng.choice([-1.0, 1.0], size=shape)
    return (signs * rng.uniform(0.5, 1.0, size=shape) * scale).astype(dtype)


def probabilities(rng, shape, dtype, one_hot=False):
    if one_hot:
        out = np.zeros(shape)
        index = rng.integers(0, shape[-1], size=shape[:-1])
        np.put_along_axis(out, index[..., None], 1.0, axis=-1)
        return out.astype(dtype)
    p = rng.uniform(0.0, 1.0, size=shape)
    return (p / p.sum(-1, keepdims=True)).astype(dtype)


# --- every op's reference evaluation -----------------------------------------------------

B, T, N, M = 2, 3, 4, 5  # batch, steps, features, rows


def op_cases(rng, dtype):
    """op -> (args, attrs): saturating arguments for every op with an evaluation."""
    v = big(rng, (B, N), dtype)
    w = big(rng, (B, N), dtype)
    seq = big(rng, (B, T, N), dtype)
    weight = big(rng, (M, N), dtype)
    g_rows = big(rng, (B, M), dtype)
    logits = big(rng, (B, T, N), dtype)
    target = probabilities(rng, (B, T, N), dtype, one_hot=True)
    relu_out = np.maximum(big(rng, (B, N), dtype), 0)
    scalar = np.asarray(1.0, dtype)
    mask = np.array([[1, 1, 1], [1, 0, 0]], dtype)[:, :, None]  # lengths 3 and 1
    return {
        "zeros": ((v,), {"size": 3}),
        "identity": ((v,), {}),
        "take_step": ((seq,), {"index": 1}),
        "stack_steps": ((v, w, v), {}),
        "repeat_steps": ((v,), {"steps": 3}),
        "matvec": ((weight, v), {}),
        "add": ((v, w), {}),
        "sub": ((v, w), {}),
        "mul": ((v, w), {}),
        "div": ((v, w), {}),  # |w| >= BIG / 2: no division by zero
        "neg": ((v,), {}),
        "tanh": ((v,), {}),
        "sigmoid": ((v,), {}),
        "relu": ((v,), {}),
        # e^x exists for x <= 88 in float32: the large negative half still underflows to 0
        "exp": ((np.minimum(v, 80).astype(dtype),), {}),
        "log": ((np.abs(v),), {}),  # log of 5e3 .. 1e4
        "softmax": ((logits,), {}),
        "concat": ((v, w, seq[:, 0]), {}),
        "mse": ((seq, big(rng, (B, T, N), dtype)), {}),
        "cross_entropy": ((logits, target), {}),
        "zeros_shaped": ((), {"shape": (M, N), "dtype": dtype}),
        "matvec_t": ((weight, g_rows), {}),
        "outer_sum": ((big(rng, (B, T, M), dtype), seq), {}),
        "sum_batch": ((seq,), {"shape": (N,)}),
        "slice_features": ((v,), {"start": 1, "stop": 3}),
        "scatter_step": ((v,), {"index": 1, "steps": T, "dynamic": False}),
        "sum_steps": ((seq,), {}),
        "relu_grad": ((w, relu_out), {}),
        "softmax_grad": ((seq, ops.softmax(logits)), {}),
        "cut_chunk": ((seq,), {"index": 2, "chunk": 2, "shift": 0, "steps": 4,
                               "dynamic": False}),
        "mse_grad": ((scalar, seq, big(rng, (B, T, N), dtype)), {}),
        "cross_entropy_grad": ((scalar, logits, target), {}),
        "stack_rows": ((weight, big(rng, (M, N), dtype)), {}),
        "transpose": ((weight,), {}),
        "sequence_mask": ((np.array([3, 1]), seq), {}),
        "embed": ((weight, np.array([[0, 4, 4], [2, 1, 0]])), {}),
        "embed_grad": ((seq, np.array([[0, 4, 4], [2, 1, 0]])), {"classes": M}),
        "one_hot": ((np.array([[0, 4, 4], [2, 1, 0]]),), {"classes": M, "dtype": dtype}),
        "masked_mse": ((seq, big(rng, (B, T, N), dtype), mask), {}),
        "masked_cross_entropy": ((logits, target, mask), {}),
        "masked_mse_grad": ((scalar, seq, big(rng, (B, T, N), dtype), mask), {}),
        "masked_cross_entropy_grad": ((scalar, logits, target, mask), {}),
        "shift_steps": ((seq, v), {"backward": False}),
        "sum_all": ((seq,), {}),
        "mean_all": ((seq,), {}),
        "size": ((seq,), {}),
        "sum_features": ((seq,), {}),
        "log_softmax": ((logits,), {}),
    }


EVALUATED = sorted(name for name, op in ops.REGISTRY.items() if op.evaluate is not None)


def test_every_op_has_a_case():
    cases = op_cases(np.random.default_rng(0), np.float32)
    assert sorted(cases) == EVALUATED, "add the new op to op_cases"


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", EVALUATED)
def test_op_reference_is_finite_and_keeps_dtype(name, dtype, seed):
    args, attrs = op_cases(np.random.default_rng(seed), np.dtype(dtype))[name]
    with strict_numpy():
        out = np.asarray(ops.REGISTRY[name].evaluate(*args, **attrs))
    assert_finite(out, name)
    assert out.dtype == np.dtype(dtype), f"{name}: {dtype} in, {out.dtype} out"


@pytest.mark.parametrize("dtype", DTYPES)
def test_shift_steps_backward(dtype):
    rng = np.random.default_rng(0)
    seq, first = big(rng, (B, T, N), dtype), big(rng, (B, N), dtype)
    with strict_numpy():
        out = ops.REGISTRY["shift_steps"].evaluate(seq, first, backward=True)
    np.testing.assert_array_equal(out[:, -1], first)
    np.testing.assert_array_equal(out[:, :-1], seq[:, 1:])


@pytest.mark.parametrize("dtype", DTYPES)
def test_saturated_values_are_exact(dtype):
    """Saturation gives the limits themselves, not NaN or a value past them."""
    x = np.array([[-BIG, -50.0, 0.0, 50.0, BIG]], dtype)
    with strict_numpy():
        s = ops.sigmoid(x)
        p = ops.softmax(np.array([[BIG, -BIG, 0.0]], dtype))
        lsm = ops.log_softmax(np.array([[BIG, -BIG, 0.0]], dtype))
        ce = ops.cross_entropy(np.array([[BIG, -BIG]], dtype), np.array([[0.0, 1.0]], dtype))
        ce_grad = ops.cross_entropy_grad(np.asarray(1.0, dtype), np.array([[BIG, -BIG]], dtype),
                                         np.array([[0.0, 1.0]], dtype))
    assert s[0, 0] == 0 and s[0, -1] == 1 and s[0, 2] == 0.5
    assert np.all((s >= 0) & (s <= 1))
    np.testing.assert_array_equal(p, [[1, 0, 0]])
    np.testing.assert_allclose(lsm, [[0, -2 * BIG, -BIG]])
    np.testing.assert_allclose(ce, 2 * BIG)  # -log softmax of the wrong class
    np.testing.assert_allclose(ce_grad, [[1, -1]])


# --- whole specs, both backends ------------------------------------------------------------

# a custom cell free of exp and log: every activation, a division by a positive number
GATED_CELL = """\
cells:
  gated:
    state: [h, m]
    params:
      W_a: [units, input]
      U_a: [units, units]
      b_a: [units]
      W_r: [units, input]
      U_s: [units, units]
    equations: |
      a = sigmoid(W_a @ x[t] + U_a @ h[t-1] + b_a)
      r = relu(W_r @ x[t])
      s = softmax(U_s @ h[t-1] + m[t-1])
      m[t] = a * m[t-1] + (1 - a) * tanh(r / (1 + r) - s)
      h[t] = tanh(m[t]) * a + r / (2 + r * r) - s * 0.5
"""

CROSS_ENTROPY_SPEC = """\
rnnc: 1
name: saturate_ce
dtype: {dtype}
inputs:
  x: {{features: 3}}
targets:
  y: {{features: 4}}
{cells}
layers:
  - {{name: pre, type: dense, units: 3, input: x, activation: tanh}}
  - {{name: lstm, type: rnn, cell: lstm, units: 5, input: x, return: sequence}}
  - {{name: gru, type: rnn, cell: gru, units: 5, input: lstm, return: sequence,
     direction: bidirectional}}
  - {{name: cell, type: rnn, cell: gated, units: 4, input: gru, return: sequence}}
  - {{name: simple, type: rnn, cell: simple, units: 4, input: cell, return: sequence,
     direction: backward}}
  - {{name: out, type: dense, units: 4, input: simple, activation: softmax}}
outputs: [out, pre]
loss: {{type: cross_entropy, output: out, target: y}}
unroll: {{steps: 4}}
"""

MSE_SPEC = """\
rnnc: 1
name: saturate_mse
dtype: {dtype}
inputs:
  x: {{features: 3}}
  h0: {{features: 6, sequence: false}}
targets:
  y: {{features: 2, sequence: false}}
layers:
  - {{name: sig, type: dense, units: 4, input: x, activation: sigmoid}}
  - {{name: rec, type: rnn, cell: gru_reset_before, units: 6, input: sig,
     initial_state: {{h: h0}}}}
  - {{name: hidden, type: dense, units: 5, input: rec, activation: relu}}
  - {{name: rep, type: repeat, input: hidden, steps: 3}}
  - {{name: dec, type: rnn, cell: lstm, units: 4, input: rep}}
  - {{name: out, type: dense, units: 2, input: dec}}
outputs: [out, hidden]
loss: {{type: mse, output: out, target: y}}
unroll: {{steps: 4}}
"""

SPECS = {"cross_entropy": CROSS_ENTROPY_SPEC, "mse": MSE_SPEC}


def load(kind: str, dtype: str):
    text = SPECS[kind].format(dtype=dtype, cells=GATED_CELL)
    return rc.load_spec_text(text, FILE)


def saturating_data(spec, seed: int = 0, scale: float = 100.0):
    """Parameters `scale` times their initial values (biases pushed to ±scale; the output
    layer's weights so that its logits reach ±1e4), inputs of ±1e4 and targets to match:
    cross-entropy targets one-hot, MSE targets ±1e4."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(spec.dtype)
    params = {}
    for key, value in rc.init_params(spec, seed).items():
        value = value * scale
        if value.ndim == 1:
            value = value + rng.choice([-scale, scale], size=value.shape)
        params[key] = value.astype(dtype)
    # the output layer's logits reach ±1e4: its inputs are bounded by tanh, about ±1.5
    params["out.W"] = big(rng, params["out.W"].shape, dtype, scale=BIG / 4)
    inputs = {}
    for name, array in spec.inputs.items():
        shape = (3, 4, array.features) if array.sequence else (3, array.features)
        inputs[name] = big(rng, shape, dtype)
    targets = {}
    for name, array in spec.targets.items():
        shape = (3, 4, array.features) if array.sequence else (3, array.features)
        targets[name] = (probabilities(rng, shape, dtype, one_hot=True)
                         if spec.loss.type == "cross_entropy" else big(rng, shape, dtype))
    return params, inputs, targets


def check_outputs(outputs: dict, dtype, what: str) -> None:
    assert outputs
    for key, value in outputs.items():
        assert_finite(value, f"{what} {key}")
        assert np.asarray(value).dtype == np.dtype(dtype), f"{what} {key}: {value.dtype}"


def close(actual: dict, expected: dict, what: str, rtol: float) -> None:
    assert set(actual) == set(expected), what
    for key, value in expected.items():
        scale = max(1.0, float(np.max(np.abs(value))))
        np.testing.assert_allclose(actual[key], value, rtol=rtol, atol=rtol * scale,
                                   err_msg=f"{what}: {key}")


@pytest.fixture(scope="module", params=[(k, d) for k in SPECS for d in DTYPES],
                ids=lambda p: f"{p[0]}-{p[1]}")
def case(request):
    kind, dtype = request.param
    spec = load(kind, dtype)
    return spec, *saturating_data(spec)


def test_numpy_forward(case):
    spec, params, inputs, _ = case
    module = rc.compile_spec(spec, "numpy")
    with strict_numpy():
        outputs = module.run(params, inputs)
        reference = evaluate(rc.unroll(spec), params, inputs)
    check_outputs(outputs, spec.dtype, "numpy")
    check_outputs(reference, spec.dtype, "reference")
    close(outputs, reference, "numpy vs reference", 1e-5 if spec.dtype == "float64" else 1e-4)


def test_numpy_loss_and_grads(case):
    spec, params, inputs, targets = case
    module = rc.compile_spec(spec, "numpy", train=True)
    with strict_numpy():
        loss, grads = module.loss_and_grads(params, {**inputs, **targets})
        api_loss, api_grads = rc.loss_and_grads(spec, params, {**inputs, **targets})
    for key, grad in grads.items():
        np.testing.assert_array_equal(api_grads[key], grad)
    check_outputs({"loss": loss, **grads}, spec.dtype, "numpy")
    assert np.ndim(loss) == 0
    assert set(grads) == {f"grad.{k}" for k in params}
    assert any(np.any(g != 0) for g in grads.values()), "every gradient vanished"
    np.testing.assert_array_equal(api_loss, loss)


def test_numpy_saturation_is_reached(case):
    """The data does saturate: the cross-entropy loss is huge (confidently wrong) or the
    MSE is of the targets' own size; sigmoid outputs sit at 0 or 1."""
    spec, params, inputs, targets = case
    with strict_numpy():
        loss, _ = rc.loss_and_grads(spec, params, {**inputs, **targets})
        outputs = rc.run(spec, params, inputs)
    assert float(loss) > 10.0
    if spec.name == "saturate_ce":
        assert np.mean(np.abs(outputs["pre"]) > 0.999) > 0.9
        assert np.mean(np.max(outputs["out"], axis=-1) > 0.999) > 0.5


def test_onnx_forward(case):
    spec, params, inputs, _ = case
    artifact = rc.compile_spec(spec, "onnx")
    model = artifact.model(params)
    onnx.checker.check_model(model, full_check=True)
    wanted = onnx.TensorProto.DOUBLE if spec.dtype == "float64" else onnx.TensorProto.FLOAT
    assert {i.type.tensor_type.elem_type for i in model.graph.input} == {wanted}
    assert {o.type.tensor_type.elem_type for o in model.graph.output} == {wanted}
    assert {i.data_type for i in model.graph.initializer if i.name in params} == {wanted}
    outputs = artifact.run(params, inputs)
    check_outputs(outputs, spec.dtype, "onnx")
    with strict_numpy():
        expected = rc.compile_spec(spec, "numpy").run(params, inputs)
    close(outputs, expected, "onnx vs numpy", 1e-6 if spec.dtype == "float64" else 1e-3)


def test_onnx_loss_and_grads(case):
    spec, params, inputs, targets = case
    data = {**inputs, **targets}
    artifact = rc.compile_spec(spec, "onnx", train=True)
    onnx.checker.check_model(artifact.model(params, train=True), full_check=True)
    loss, grads = artifact.loss_and_grads(params, data)
    check_outputs({"loss": loss, **grads}, spec.dtype, "onnx")
    with strict_numpy():
        expected_loss, expected = rc.loss_and_grads(spec, params, data)
    rtol = 1e-6 if spec.dtype == "float64" else 1e-3
    np.testing.assert_allclose(loss, expected_loss, rtol=rtol)
    close(grads, expected, "onnx vs numpy gradients", rtol)


@pytest.mark.parametrize("mode", ["unrolled", "native"])
def test_onnx_other_modes(mode):
    """The other ONNX modes on the saturating float32 data (native: ONNX's own LSTM and
    GRU operators, for the spec of built-in cells only)."""
    spec = load("mse" if mode == "native" else "cross_entropy", "float32")
    params, inputs, _ = saturating_data(spec)
    outputs = rc.compile_spec(spec, "onnx", onnx_mode=mode).run(params, inputs)
    check_outputs(outputs, "float32", f"onnx {mode}")
    with strict_numpy():
        expected = rc.compile_spec(spec, "numpy").run(params, inputs)
    close(outputs, expected, f"onnx {mode} vs numpy", 1e-3)


@pytest.mark.parametrize("kind", list(SPECS))
def test_float64_differs_from_float32(kind):
    """float64 is really computed in float64: on tame data the two agree to float32's
    precision but not bit for bit."""
    spec64, spec32 = load(kind, "float64"), load(kind, "float32")
    params, inputs, _ = saturating_data(spec64, scale=0.5)
    with strict_numpy():
        out64 = rc.run(spec64, params, {k: v / BIG for k, v in inputs.items()})
        out32 = rc.run(spec32, params, {k: v / BIG for k, v in inputs.items()})
    for key in out64:
        assert out64[key].dtype == np.float64 and out32[key].dtype == np.float32
        np.testing.assert_allclose(out32[key], out64[key], rtol=1e-3, atol=1e-5)
    assert any(np.any(out64[k] != out32[k].astype(np.float64)) for k in out64)


@pytest.mark.parametrize("backend", ["numpy", "onnx"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_api_casts_to_the_spec_dtype(backend, dtype):
    """Arrays of the other float type are cast: results have the spec's dtype."""
    spec = load("mse", dtype)
    params, inputs, targets = saturating_data(spec)
    other = np.float32 if dtype == "float64" else np.float64
    params = {k: v.astype(other) for k, v in params.items()}
    data = {k: v.astype(other) for k, v in {**inputs, **targets}.items()}
    with strict_numpy() if backend == "numpy" else contextlib.nullcontext():
        outputs = rc.run(spec, params, inputs, backend=backend)
        loss, grads = rc.loss_and_grads(spec, params, data, backend=backend)
    check_outputs(outputs, dtype, backend)
    check_outputs({"loss": loss, **grads}, dtype, backend)


@pytest.mark.parametrize("dtype", DTYPES)
def test_generated_module_alone(dtype, tmp_path):
    """The saved module, imported on its own, computes in the spec's dtype without
    warnings on saturating data, from its own init_params too."""
    import importlib.util
    spec = load("cross_entropy", dtype)
    path = tmp_path / "generated_net.py"
    path.write_bytes(rc.compile_spec(spec, "numpy", train=True).serialize())
    loaded = importlib.util.spec_from_file_location("generated_net", path)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    _, inputs, targets = saturating_data(spec)
    params = {k: v * 100 for k, v in module.init_params(seed=3).items()}
    assert all(v.dtype == np.dtype(dtype) for v in params.values())
    with strict_numpy():
        outputs = module.forward(params, inputs)
        loss, grads = module.loss_and_grads(params, {**inputs, **targets})
        new_loss, new_params = module.train_step(params, {**inputs, **targets})
    check_outputs(outputs, dtype, "module")
    check_outputs({"loss": loss, **grads}, dtype, "module")
    check_outputs(new_params, dtype, "train_step")
    assert new_loss == loss


@settings(max_examples=25, deadline=None, database=None)
@given(kind=st.sampled_from(list(SPECS)), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**16), scale=st.floats(1.0, 1000.0),
       input_scale=st.sampled_from([1.0, 1e2, 1e4]))
def test_random_saturation_numpy(kind, dtype, seed, scale, input_scale):
    """Any mix of parameter and input scales: still finite and warning-free."""
    spec = load(kind, dtype)
    params, inputs, targets = saturating_data(spec, seed, scale)
    inputs = {k: (v / BIG * input_scale).astype(spec.dtype) for k, v in inputs.items()}
    module = rc.compile_spec(spec, "numpy", train=True)
    with strict_numpy():
        outputs = module.run(params, inputs)
        loss, grads = module.loss_and_grads(params, {**inputs, **targets})
    check_outputs(outputs, dtype, "numpy")
    check_outputs({"loss": loss, **grads}, dtype, "numpy")
