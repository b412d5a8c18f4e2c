"""Class ids in and out — an ``embedding`` layer, targets of class ids, cross-entropy from
logits — against PyTorch: ``nn.Embedding`` (with ``padding_idx``), ``nn.LSTM``/``nn.GRU``,
``nn.Linear`` and ``F.cross_entropy`` on the same float64 weights give the same loss and
gradients as both backends at -O0 and -O2."""

import numpy as np
import pytest

import rnncompiler as rc

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

VOCAB, EMBED, UNITS, CLASSES, BATCH, T = 11, 5, 6, 4, 3, 7


def spec_text(*, cell="lstm", padding=None, sequence=True, lengths=False, target_ids=True,
              softmax=False):
    padding_key = f", padding_id: {padding}" if padding is not None else ""
    length_key = ", lengths: true" if lengths else ""
    target = f"classes: {CLASSES}" if target_ids else f"features: {CLASSES}"
    returns = "sequence" if sequence else "last"
    target_kind = "" if sequence else ", sequence: false"
    activation = ", activation: softmax" if softmax else ""
    return f"""
rnnc: 1
name: ids
dtype: float64
inputs:
  tokens: {{classes: {VOCAB}{length_key}}}
targets:
  y: {{{target}{target_kind}}}
layers:
  - {{name: E, type: embedding, input: tokens, units: {EMBED}{padding_key}}}
  - {{name: R, type: rnn, cell: {cell}, units: {UNITS}, input: E, return: {returns}}}
  - {{name: out, type: dense, units: {CLASSES}, input: R{activation}}}
loss: {{type: cross_entropy, output: out, target: y}}
unroll: {{steps: {T}}}
"""


GATES = {"lstm": ["i", "f", "c", "o"], "gru": ["r", "z", "n"]}


def torch_loss_and_grads(cell, params, data, *, padding=None, sequence=True,
                         target_ids=True):
    embedding = nn.Embedding(VOCAB, EMBED, padding_idx=padding).double()
    module = (nn.LSTM if cell == "lstm" else nn.GRU)(EMBED, UNITS, batch_first=True).double()
    head = nn.Linear(UNITS, CLASSES).double()
    gates = GATES[cell]
    biases_ih = [f"b_{g}" for g in gates] if cell == "lstm" else ["b_r", "b_z", "b_xn"]
    with torch.no_grad():
        embedding.weight.copy_(torch.tensor(params["E.W"]))
        module.weight_ih_l0.copy_(torch.tensor(np.concatenate([params[f"R.W_x{g}"]
                                                               for g in gates])))
        module.weight_hh_l0.copy_(torch.tensor(np.concatenate([params[f"R.W_h{g}"]
                                                               for g in gates])))
        module.bias_ih_l0.copy_(torch.tensor(np.concatenate([params[f"R.{b}"]
                                                             for b in biases_ih])))
        hh = np.zeros(len(gates) * UNITS)
        if cell == "gru":
            hh[2 * UNITS:] = params["R.b_hn"]
        module.bias_hh_l0.copy_(torch.tensor(hh))
        head.weight.copy_(torch.tensor(params["out.W"]))
        head.bias.copy_(torch.tensor(params["out.b"]))
    tokens = torch.tensor(data["tokens"])
    sequence_out, final = module(embedding(tokens))
    h = final[0] if cell == "lstm" else final
    logits = head(sequence_out if sequence else h[0])
    y = torch.tensor(data["y"])
    if "tokens.lengths" in data:  # padded steps count for nothing: ignore_index
        steps = torch.arange(T)[None, :]
        y = torch.where(steps < torch.tensor(data["tokens.lengths"])[:, None], y, -100)
    if target_ids:
        loss = F.cross_entropy(logits.reshape(-1, CLASSES), y.reshape(-1))
    else:
        loss = -(y * torch.log_softmax(logits, -1)).sum(-1).mean()
    loss.backward()
    grads = {"grad.E.W": embedding.weight.grad, "grad.out.W": head.weight.grad,
             "grad.out.b": head.bias.grad}
    for name, stacked in (("W_x", module.weight_ih_l0.grad), ("W_h", module.weight_hh_l0.grad)):
        for gate, block in zip(gates, stacked.chunk(len(gates))):
            grads[f"grad.R.{name}{gate}"] = block
    for bias, block in zip(biases_ih, module.bias_ih_l0.grad.chunk(len(gates))):
        grads[f"grad.R.{bias}"] = block
    if cell == "gru":
        grads["grad.R.b_hn"] = module.bias_hh_l0.grad.chunk(3)[2]
    return loss.item(), {k: v.numpy() for k, v in grads.items()}


def make_data(rng, *, sequence=True, lengths=False, target_ids=True, padding=None):
    tokens = rng.integers(0, VOCAB, (BATCH, T))
    if padding is not None:
        tokens[:, -2:] = padding  # padding ids at the end, and one inside
        tokens[0, 1] = padding
    shape = (BATCH, T) if sequence else (BATCH,)
    data = {"tokens": tokens}
    if target_ids:
        data["y"] = rng.integers(0, CLASSES, shape)
    else:
        raw = rng.uniform(0.1, 1.0, shape + (CLASSES,))
        data["y"] = raw / raw.sum(-1, keepdims=True)
    if lengths:
        data["tokens.lengths"] = np.array([T, 3, 1])
    return data


CASES = {
    "lm_lstm": dict(cell="lstm"),
    "lm_gru": dict(cell="gru"),
    "padding_id": dict(cell="lstm", padding=0),
    "many_to_one": dict(cell="gru", sequence=False),
    "lengths": dict(cell="lstm", lengths=True),
    "softmax_layer": dict(cell="lstm", softmax=True),
    "probability_targets": dict(cell="gru", target_ids=False),
}


@pytest.mark.parametrize("backend", ["numpy", "onnx"])
@pytest.mark.parametrize("level", [0, 2])
@pytest.mark.parametrize("case", CASES)
def test_matches_torch(case, level, backend):
    options = CASES[case]
    spec = rc.load_spec_text(spec_text(**options))
    params = rc.init_params(spec, seed=3)
    for key in params:  # nothing zero but the padding row, so that every gradient shows
        if key != "E.W":
            params[key] = params[key] + 0.1 * np.random.default_rng(len(key)).standard_normal(
                params[key].shape)
    rng = np.random.default_rng(7)
    data = make_data(rng, **{k: v for k, v in options.items()
                             if k in ("sequence", "lengths", "target_ids", "padding")})
    want_loss, want = torch_loss_and_grads(
        options["cell"], params, data, padding=options.get("padding"),
        sequence=options.get("sequence", True), target_ids=options.get("target_ids", True))
    loss, grads = rc.loss_and_grads(spec, params, data, backend=backend, level=level)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-9, err_msg="loss")
    assert set(grads) == set(want)
    for key, value in want.items():
        np.testing.assert_allclose(grads[key], value, rtol=1e-7, atol=1e-12, err_msg=key)


def test_padding_row_starts_at_zero_and_gets_no_gradient():
    spec = rc.load_spec_text(spec_text(padding=2))
    params = rc.init_params(spec)
    assert not params["E.W"][2].any() and params["E.W"][1].any()
    data = make_data(np.random.default_rng(0), padding=2)
    _, grads = rc.loss_and_grads(spec, params, data)
    assert not grads["grad.E.W"][2].any() and grads["grad.E.W"][data["tokens"][0, 0]].any()


def test_forward_matches_torch_embedding_lookup():
    """`rnnc run` of an embedding alone is the table's rows (the identity of lookups)."""
    spec = rc.load_spec_text(f"""
rnnc: 1
name: lookup
inputs:
  ids: {{classes: {VOCAB}, sequence: false}}
layers:
  - {{name: E, type: embedding, input: ids, units: {EMBED}}}
""")
    params = rc.init_params(spec, seed=1)
    ids = np.array([3, 0, 10, 3])
    embedding = nn.Embedding.from_pretrained(torch.tensor(params["E.W"]))
    want = embedding(torch.tensor(ids)).numpy()
    for backend in ("numpy", "onnx"):
        got = rc.run(spec, params, {"ids": ids}, backend=backend)["E"]
        np.testing.assert_array_equal(got, want)


def test_models_of_ids_take_any_length():
    """A sequence of ids follows T like a sequence of numbers: the ONNX scan model and the
    NumPy module made at one T run at another (their inputs say T, not a fixed size)."""
    spec = rc.load_spec_text(spec_text(cell="gru"))
    params = rc.init_params(spec, seed=2)
    ids = np.random.default_rng(0).integers(0, VOCAB, (2, 13))
    want = rc.run(spec, params, {"tokens": ids}, steps=13)["out"]
    model = rc.compile_spec(spec, "onnx", steps=T)
    np.testing.assert_allclose(model.run(params, {"tokens": ids})["out"], want, rtol=1e-9)
    dims = [d.dim_param or d.dim_value for d in
            model.model().graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "T"]
