"""Dropout (docs/spec.md, `dropout` and `rnn`): with the same weights and the same masks,
PyTorch's LSTMCell and GRU/RNN equations written out with autograd compute the loss and
gradients that `loss_and_grads` computes on both backends; the forward pass ignores
dropout; masks enter the training graph only, named as documented; the trainer's masks
have the right scale, are reproducible by seed and survive a resumed run; gradients with
given masks equal finite differences; bad rates are one located line."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import rnncompiler as rc
from rnncompiler.autodiff.bptt import training_graph
from rnncompiler.build.dropout import batch_rng, dropout_masks, sample_masks
from rnncompiler.errors import SpecError
from rnncompiler.gradcheck import gradcheck
from rnncompiler.training.loop import Optimizer, TrainOptions, train
from rnncompiler.training.tasks import get_task, task_data

torch = pytest.importorskip("torch")

BATCH, STEPS = 3, 5
TIGHT = {"rtol": 1e-9, "atol": 1e-12}

LSTM_SPEC = """\
rnnc: 1
name: lstm_dropout
dtype: float64
inputs:
  x: {features: 3}
targets:
  y: {features: 2, sequence: false}
layers:
  - {name: D, type: dropout, input: x, rate: 0.3}          # on a sequence
  - {name: R, type: rnn, cell: lstm, units: 4, input: D, dropout: 0.25,
     recurrent_dropout: 0.4}
  - {name: E, type: dropout, input: R, rate: 0.5}          # on a vector
  - {name: out, type: dense, units: 2, input: E}
loss: {type: mse, output: out, target: y}
unroll: {steps: 5}
"""

BIDIRECTIONAL_SPEC = """\
rnnc: 1
name: bidirectional_dropout
dtype: float64
inputs:
  x: {{features: 3}}
targets:
  y: {{features: 2}}
layers:
  - {{name: R, type: rnn, cell: {cell}, units: 4, input: x, direction: bidirectional,
     return: sequence, dropout: 0.3, recurrent_dropout: 0.4}}
  - {{name: out, type: dense, units: 2, input: R}}
loss: {{type: mse, output: out, target: y}}
unroll: {{steps: 5}}
"""

CUSTOM_SPEC = """\
rnnc: 1
name: custom_dropout
dtype: float64
inputs:
  x: {features: 3}
targets:
  y: {features: 4, sequence: false}
cells:
  concat_rnn:
    state: h
    params:
      W: [units, input + units]
      b: [units]
    equations:
      - z = concat(x[t], h[t-1])          # read by a product: masked
      - h[t] = tanh(W @ z + b) + 0.5 * h[t-1]   # not in a product: as it is
layers:
  - {name: R, type: rnn, cell: concat_rnn, units: 4, input: x, dropout: 0.3,
     recurrent_dropout: 0.5}
loss: {type: mse, output: R, target: y}
unroll: {steps: 5}
"""


def case(text: str, seed: int = 0):
    """(spec, params, data with masks drawn as training draws them)."""
    spec = rc.load_spec_text(text, "dropout.yaml")
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0.0, 0.5, v.shape) for k, v in rc.init_params(spec).items()}
    data = {name: rng.standard_normal((BATCH, STEPS, a.features) if a.sequence
                                      else (BATCH, a.features))
            for name, a in {**spec.inputs, **spec.targets}.items()}
    masks = sample_masks(spec, BATCH, STEPS, rng)
    assert all((m == 0).any() for m in masks.values()), "draw masks that drop something"
    return spec, params, {**data, **masks}


def ours(spec, params, data, backend):
    loss, grads = rc.loss_and_grads(spec, params, data, backend=backend)
    return float(loss), {k.removeprefix("grad."): v for k, v in grads.items()}


def leaves(params):
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True)
            for k, v in params.items()}


def assert_matches(spec, params, data, loss, tensors):
    """``loss`` (a torch scalar built from ``tensors``) and its gradients equal ours."""
    loss.backward()
    for backend in ("numpy", "onnx"):
        got_loss, got = ours(spec, params, data, backend)
        np.testing.assert_allclose(got_loss, loss.item(), **TIGHT, err_msg=backend)
        for key, tensor in tensors.items():
            np.testing.assert_allclose(got[key], tensor.grad.numpy(), **TIGHT,
                                       err_msg=f"{backend}: grad.{key}")


def t(array):
    return torch.tensor(array, dtype=torch.float64)


# --- against PyTorch ------------------------------------------------------------------


def test_lstm_and_dropout_layers_match_torch_lstmcell():
    """nn.LSTMCell(x * m_x, (h * m_h, c)): Keras's placement, h masked in the recurrent
    products only, c not at all; a dropout layer's mask at every step of a sequence."""
    spec, params, data = case(LSTM_SPEC)
    cell = torch.nn.LSTMCell(3, 4).double()
    gates = ("i", "f", "c", "o")  # PyTorch's order: input, forget, cell (g), output
    with torch.no_grad():
        cell.weight_ih.copy_(t(np.concatenate([params[f"R.W_x{g}"] for g in gates])))
        cell.weight_hh.copy_(t(np.concatenate([params[f"R.W_h{g}"] for g in gates])))
        cell.bias_ih.copy_(t(np.concatenate([params[f"R.b_{g}"] for g in gates])))
        cell.bias_hh.zero_()
    dense = leaves({k: params[k] for k in ("out.W", "out.b")})
    x = t(data["x"]) * t(data["D.dropout"])
    h = c = torch.zeros(BATCH, 4, dtype=torch.float64)
    for step in range(STEPS):
        h, c = cell(x[:, step] * t(data["R.dropout"]),
                    (h * t(data["R.recurrent_dropout"]), c))
    out = (h * t(data["E.dropout"])) @ dense["out.W"].T + dense["out.b"]
    loss = ((out - t(data["y"])) ** 2).mean()
    loss.backward()
    for backend in ("numpy", "onnx"):
        got_loss, got = ours(spec, params, data, backend)
        np.testing.assert_allclose(got_loss, loss.item(), **TIGHT)
        for k, g in enumerate(gates):
            rows = slice(4 * k, 4 * k + 4)
            np.testing.assert_allclose(got[f"R.W_x{g}"], cell.weight_ih.grad[rows], **TIGHT)
            np.testing.assert_allclose(got[f"R.W_h{g}"], cell.weight_hh.grad[rows], **TIGHT)
            np.testing.assert_allclose(got[f"R.b_{g}"], cell.bias_ih.grad[rows], **TIGHT)
        for key in dense:
            np.testing.assert_allclose(got[key], dense[key].grad.numpy(), **TIGHT)


def _step(cell, p, x, h, mx, mh):
    """One step of a built-in cell, written out, with Keras's masks: x[t] * mx wherever it
    is read, h[t-1] * mh in the recurrent products, h[t-1] as it is in GRU's blend."""
    x, hm = x * mx, h * mh
    if cell == "simple":
        return torch.tanh(x @ p["W_xh"].T + hm @ p["W_hh"].T + p["b_h"])
    r = torch.sigmoid(x @ p["W_xr"].T + hm @ p["W_hr"].T + p["b_r"])
    z = torch.sigmoid(x @ p["W_xz"].T + hm @ p["W_hz"].T + p["b_z"])
    if cell == "gru":
        n = torch.tanh(x @ p["W_xn"].T + p["b_xn"] + r * (hm @ p["W_hn"].T + p["b_hn"]))
    else:  # gru_reset_before: the reset gate times the masked state, in the product
        n = torch.tanh(x @ p["W_xn"].T + (r * hm) @ p["W_hn"].T + p["b_n"])
    return (1 - z) * n + z * h


@pytest.mark.parametrize("cell", ["gru", "gru_reset_before", "simple"])
def test_bidirectional_recurrent_dropout_matches_written_out_cells(cell):
    """Each direction its own masks, ``R.fwd.…`` and ``R.bwd.…``."""
    spec, params, data = case(BIDIRECTIONAL_SPEC.format(cell=cell), seed=1)
    tensors = leaves(params)
    x = t(data["x"])
    sides = []
    for side in ("fwd", "bwd"):
        p = {k.split(".")[-1]: v for k, v in tensors.items() if k.startswith(f"R.{side}.")}
        h = torch.zeros(BATCH, 4, dtype=torch.float64)
        outputs = [None] * STEPS
        for step in (range(STEPS) if side == "fwd" else reversed(range(STEPS))):
            h = outputs[step] = _step(cell, p, x[:, step], h, t(data[f"R.{side}.dropout"]),
                                      t(data[f"R.{side}.recurrent_dropout"]))
        sides.append(torch.stack(outputs, 1))
    out = torch.cat(sides, -1) @ tensors["out.W"].T + tensors["out.b"]
    loss = ((out - t(data["y"])) ** 2).mean()
    assert_matches(spec, params, data, loss, tensors)


def test_a_custom_cell_masks_h_where_a_product_reads_it_through_a_local():
    spec, params, data = case(CUSTOM_SPEC, seed=2)
    tensors = leaves(params)
    h = torch.zeros(BATCH, 4, dtype=torch.float64)
    for step in range(STEPS):
        z = torch.cat([t(data["x"])[:, step] * t(data["R.dropout"]),
                       h * t(data["R.recurrent_dropout"])], -1)
        h = torch.tanh(z @ tensors["R.W"].T + tensors["R.b"]) + 0.5 * h
    loss = ((h - t(data["y"])) ** 2).mean()
    assert_matches(spec, params, data, loss, tensors)


# --- what dropout is outside training, and its inputs ---------------------------------


def _without_dropout(text: str) -> str:
    """The same network with every dropout removed (rates of 0)."""
    for key in ("rate: 0.3", "rate: 0.5", "dropout: 0.25", "dropout: 0.4", "dropout: 0.3"):
        text = text.replace(key, key.split(":")[0] + ": 0")
    return text


@pytest.mark.parametrize("text", [LSTM_SPEC, BIDIRECTIONAL_SPEC.format(cell="gru")],
                         ids=["lstm", "bidirectional"])
def test_the_forward_pass_ignores_dropout(text):
    text = text.replace("dtype: float64\n", "")  # float32, as ONNX native needs
    spec, params, data = case(text)
    plain = rc.load_spec_text(_without_dropout(text), "plain.yaml")
    assert dropout_masks(spec) and not dropout_masks(plain)
    inputs = {"x": data["x"]}
    expected = rc.run(plain, params, inputs)
    for options in ({}, {"backend": "onnx", "onnx_mode": "scan"},
                    {"backend": "onnx", "onnx_mode": "unrolled"},
                    {"backend": "onnx", "onnx_mode": "native"}):
        got = rc.run(spec, params, inputs, **options)
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-6,
                                       err_msg=str(options))
    # and without masks, gradients are those of the network without dropout
    assert ours(spec, params, {k: data[k] for k in ("x", "y")}, "numpy")[0] == \
        pytest.approx(ours(plain, params, {k: data[k] for k in ("x", "y")}, "numpy")[0],
                      rel=1e-12)


def test_masks_are_inputs_of_the_training_graph_only():
    spec = rc.load_spec_text(BIDIRECTIONAL_SPEC.format(cell="lstm"), "bi.yaml")
    names = ["R.fwd.dropout", "R.fwd.recurrent_dropout", "R.bwd.dropout",
             "R.bwd.recurrent_dropout"]
    assert [mask.name for mask in dropout_masks(spec)] == names
    graph = training_graph(spec, 4)
    assert {name: graph[graph.inputs[name]].shape for name in names} == {
        "R.fwd.dropout": (3,), "R.fwd.recurrent_dropout": (4,), "R.bwd.dropout": (3,),
        "R.bwd.recurrent_dropout": (4,)}
    assert not set(names) & set(rc.unroll(spec, 4).inputs)
    onnx = pytest.importorskip("onnx")
    artifact = rc.compile_spec(spec, "onnx", 4, train=True)
    trained = onnx.load_from_string(artifact.serialize(train=True))
    assert set(names) <= {i.name for i in trained.graph.input}
    forward = onnx.load_from_string(artifact.serialize())
    assert not set(names) & {i.name for i in forward.graph.input}
    lstm = rc.load_spec_text(LSTM_SPEC, "lstm.yaml")
    assert {m.name: m.shape(2, 7) for m in dropout_masks(lstm)} == {
        "D.dropout": (2, 7, 3), "R.dropout": (2, 3), "R.recurrent_dropout": (2, 4),
        "E.dropout": (2, 4)}


def test_a_rate_of_zero_makes_no_mask():
    text = BIDIRECTIONAL_SPEC.format(cell="gru").replace("dropout: 0.3", "dropout: 0")
    spec = rc.load_spec_text(text, "zero.yaml")
    inputs = set(training_graph(spec, 4).inputs)
    assert {"R.fwd.recurrent_dropout", "R.bwd.recurrent_dropout"} <= inputs
    assert not {"R.fwd.dropout", "R.bwd.dropout"} & inputs


def test_a_mask_of_the_wrong_shape_is_a_clear_error():
    spec, params, data = case(LSTM_SPEC)
    data["R.recurrent_dropout"] = np.ones((BATCH, 5))
    with pytest.raises(rc.RnncError, match=r"dropout mask 'R.recurrent_dropout' has shape "
                                           r"\[3, 5\], expected \[3, 4\]"):
        rc.loss_and_grads(spec, params, data)


# --- the trainer's masks ---------------------------------------------------------------


def test_sampled_masks_have_the_rate_and_scale_and_follow_the_seed():
    spec = rc.load_spec_text(LSTM_SPEC.replace("dtype: float64\n", ""), "lstm.yaml")
    masks = sample_masks(spec, 2000, 10, batch_rng(3, 1, 4))
    for mask in dropout_masks(spec):
        values = masks[mask.name]
        assert values.dtype == np.float32 and values.shape == mask.shape(2000, 10)
        scale = np.float32(1 / (1 - mask.rate))
        assert set(np.unique(values)) <= {0.0, scale}
        assert np.mean(values == 0) == pytest.approx(mask.rate, abs=0.02)
        assert values.mean() == pytest.approx(1.0, abs=0.03)  # inverted dropout
    again = sample_masks(spec, 2000, 10, batch_rng(3, 1, 4))
    other = sample_masks(spec, 2000, 10, batch_rng(3, 1, 5))
    for name, values in masks.items():
        np.testing.assert_array_equal(again[name], values)
        assert not np.array_equal(other[name], values)


TRAIN_SPEC = """\
rnnc: 1
name: sine_dropout
inputs:
  x: {features: 1}
targets:
  y: {features: 1, sequence: false}
layers:
  - {name: X, type: dropout, input: x, rate: 0.1}
  - {name: R, type: rnn, cell: gru, units: 16, input: X, dropout: 0.1,
     recurrent_dropout: 0.2}
  - {name: D, type: dropout, input: R, rate: 0.1}
  - {name: out, type: dense, units: 1, input: D}
loss: {type: mse, output: out, target: y}
unroll: {steps: 6}
"""

QUIET = {"progress": False}


def _train_case():
    spec = rc.load_spec_text(TRAIN_SPEC, "sine.yaml")
    return spec, task_data(spec, get_task("sine"), 200, 6, seed=2)


def test_training_with_dropout_lowers_the_loss_and_draws_masks():
    spec, data = _train_case()
    options = TrainOptions(epochs=4, batch_size=32, lr=0.02, **QUIET)
    trained, history, final = train(spec, data, options)
    assert history.train_loss[-1] < 0.8 * history.train_loss[0], history.train_loss
    before = rc.loss_and_grads(spec, rc.init_params(spec, options.seed), data)[0]
    assert history.val_loss[-1] < 0.5 * float(before), (float(before), history.val_loss)
    # the same seed trains the same; and the masks made a difference
    again, _, _ = train(spec, data, options)
    plain = rc.load_spec_text(_without_dropout(TRAIN_SPEC).replace("rate: 0.1", "rate: 0")
                              .replace("dropout: 0.1", "dropout: 0")
                              .replace("dropout: 0.2", "dropout: 0"), "plain.yaml")
    assert not dropout_masks(plain)
    without, _, _ = train(plain, data, options)
    for key, value in trained.items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)
    assert any(not np.allclose(without[key], value) for key, value in trained.items())
    # measured without dropout: the final figures are the loss of the plain network
    plain_loss = rc.loss_and_grads(plain, trained, {k: v[:1] for k, v in data.items()})[0]
    with_ones = rc.loss_and_grads(spec, trained, {k: v[:1] for k, v in data.items()})[0]
    assert float(plain_loss) == pytest.approx(float(with_ones), rel=1e-6)
    assert "loss" in final


def test_a_run_resumed_inside_an_epoch_draws_the_same_masks(tmp_path, monkeypatch):
    spec, data = _train_case()
    options = {"epochs": 2, "batch_size": 16, **QUIET}
    whole, _, _ = train(spec, data, TrainOptions(**options))
    real, calls = Optimizer.step, []

    def step_then_interrupt(self, params, grads):
        calls.append(1)
        if len(calls) == 15:  # inside epoch 2 (12 steps an epoch)
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, params, grads)

    with monkeypatch.context() as patch:
        patch.setattr(Optimizer, "step", step_then_interrupt)
        _, history, _ = train(spec, data, TrainOptions(checkpoint=str(tmp_path), **options))
    assert history.stopped and "epoch 2" in history.stopped
    resumed, _, _ = train(spec, data, TrainOptions(checkpoint=str(tmp_path), resume=True,
                                                   **options))
    for key, value in whole.items():
        np.testing.assert_array_equal(resumed[key], value, err_msg=key)


# --- gradients with given masks ---------------------------------------------------------


@pytest.mark.parametrize("text", [LSTM_SPEC, CUSTOM_SPEC], ids=["lstm", "custom"])
def test_gradients_with_masks_equal_finite_differences(text):
    spec = rc.load_spec_text(text, "check.yaml")
    for check in gradcheck(spec, 4, batch=3, directions=2):
        assert check.beyond_own_error <= 1e-7, (check.name, check.worst)


def test_rnnc_grad_reads_masks_from_the_inputs(tmp_path, capsys):
    from rnncompiler.cli import main

    spec, params, data = case(LSTM_SPEC)
    (tmp_path / "net.yaml").write_text(LSTM_SPEC)
    np.savez(tmp_path / "p.npz", **params)
    np.savez(tmp_path / "masked.npz", **data)
    np.savez(tmp_path / "plain.npz", x=data["x"], y=data["y"])
    for name in ("masked", "plain"):
        assert main(["grad", str(tmp_path / "net.yaml"), "--params", str(tmp_path / "p.npz"),
                     "--inputs", str(tmp_path / f"{name}.npz"), "-o",
                     str(tmp_path / f"g_{name}.npz")]) == 0
    masked, plain = np.load(tmp_path / "g_masked.npz"), np.load(tmp_path / "g_plain.npz")
    loss, _ = rc.loss_and_grads(spec, params, data)
    np.testing.assert_allclose(masked["loss"], loss, rtol=1e-12)
    assert not np.isclose(masked["loss"], plain["loss"])


# --- the spec ---------------------------------------------------------------------------


@pytest.mark.parametrize("layer, message", [
    ("{name: D, type: dropout, input: x, rate: 1}", "layers[0].rate: expected a rate from 0 "
     "to below 1 (the fraction of values dropped), got 1: a rate of 1 or more drops every"),
    ("{name: D, type: dropout, input: x, rate: -0.1}", "layers[0].rate: expected a rate"),
    ("{name: D, type: dropout, input: x, rate: high}", "got 'high'"),
    ("{name: D, type: dropout, input: x}", "layers[0]: missing required key 'rate'"),
    ("{name: D, type: dropout, input: x, dropout: 0.2}",
     "a dropout layer's fraction is `rate`: write `rate: 0.2`"),
    ("{name: D, type: dense, units: 2, input: x, dropout: 0.2}",
     "layers[0].dropout: layer D: `dropout` is a key of rnn layers; to drop values of this "
     "layer's input, put a layer `{type: dropout, input: ..., rate: ...}` before it"),
    ("{name: D, type: rnn, cell: gru, units: 2, input: x, recurrent_dropout: true}",
     "layers[0].recurrent_dropout: expected a rate from 0 to below 1"),
    ("{name: D, type: rnn, cell: gru, units: 2, input: x, dropout: .nan}", "got nan"),
])
def test_bad_rates_are_one_located_line(layer, message):
    text = f"rnnc: 1\nname: bad\ninputs:\n  x: {{features: 3}}\nlayers:\n  - {layer}\n"
    with pytest.raises(SpecError) as error:
        rc.load_spec_text(text, "bad.yaml")
    line = str(error.value).splitlines()[0]
    assert line.startswith("bad.yaml:6:") and message in line, line
