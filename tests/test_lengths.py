"""Variable lengths (`lengths: true`): past each example's length its state is kept and
its sequence output is zero, `last` is step length-1, a backward direction starts at
length-1, and the loss ignores the padded steps.

Oracles: PyTorch's packed sequences (forward and gradients, float64), onnxruntime's own
RNN / LSTM / GRU operators with ``sequence_lens``, float64 central differences."""

from __future__ import annotations

import numpy as np
import pytest
from test_gradcheck import (
    BATCH,
    CELLS,
    INPUT,
    STEPS,
    TAGS,
    gradcheck,
    inputs_of,
    make_data,
    rnn,
    spec_text,
    with_head,
)

import rnncompiler as rc
from rnncompiler.errors import ArrayError

LENGTHS = np.array([STEPS, 2, 4])  # one full, two padded
INPUTS = {"x": {"features": INPUT, "lengths": True}}


def case_text(layers, loss="mse", dtype="float64", lengths=True):
    text = spec_text(layers, loss, inputs=INPUTS if lengths else None)
    last = layers[-1]
    if last.get("direction") == "bidirectional":  # the target is as wide as both directions
        text = text.replace(f"y: {{features: {last['units']}",
                            f"y: {{features: {2 * last['units']}")
    return text.replace("dtype: float64", f"dtype: {dtype}")


def case(layers, loss="mse", seed=0, dtype="float64"):
    """(spec, random params, data with lengths): as test_gradcheck's cases."""
    spec = rc.load_spec_text(case_text(layers, loss, dtype), filename="case.yaml")
    rng = np.random.default_rng(seed)
    params = {k: (0.5 * rng.standard_normal(v.shape)).astype(dtype)
              for k, v in rc.init_params(spec, seed=0).items()}
    data = {k: v.astype(dtype) for k, v in make_data(spec, rng).items()}
    data["x.lengths"] = LENGTHS
    assert data["x"].shape[0] == BATCH == len(LENGTHS)
    return spec, params, data


# ---------------------------------------------------------------- forward semantics

@pytest.mark.parametrize("direction", ["forward", "backward", "bidirectional"])
@pytest.mark.parametrize("cell", CELLS)
def test_padding_changes_nothing(cell, direction):
    """The outputs at an example's own steps, and its final states, do not depend on
    what its padded steps hold; its sequence output there is zero."""
    spec, params, data = case([rnn("R", cell, direction=direction, ret="sequence")])
    first = rc.run(spec, params, inputs_of(spec, data) | {"x.lengths": LENGTHS})
    noisy = dict(data)
    noisy["x"] = data["x"].copy()
    for example, length in enumerate(LENGTHS):
        noisy["x"][example, length:] = 100.0
    second = rc.run(spec, params, inputs_of(spec, noisy) | {"x.lengths": LENGTHS})
    for key in first:
        np.testing.assert_allclose(second[key], first[key], rtol=1e-12, err_msg=key)
    for example, length in enumerate(LENGTHS):
        assert not first["R"][example, length:].any()
        assert first["R"][example, length - 1].any()


@pytest.mark.parametrize("direction", ["forward", "backward", "bidirectional"])
@pytest.mark.parametrize("cell", CELLS)
def test_each_example_equals_itself_cut_to_its_length(cell, direction):
    """An example of length L gives what the same network gives on its first L steps."""
    layers = [rnn("R", cell, direction=direction, ret="sequence")]
    spec, params, data = case(layers)
    padded = rc.run(spec, params, inputs_of(spec, data) | {"x.lengths": LENGTHS})
    plain = rc.load_spec_text(case_text(layers, lengths=False))
    for example, length in enumerate(LENGTHS):
        alone = rc.run(plain, params, {"x": data["x"][example:example + 1, :length]},
                       steps=length)
        np.testing.assert_allclose(padded["R"][example, :length], alone["R"][0], rtol=1e-12)
        for key in alone:
            if key != "R":
                np.testing.assert_allclose(padded[key][example], alone[key][0], rtol=1e-12,
                                           err_msg=key)


@pytest.mark.parametrize("mode", ["scan", "unrolled", "native"])
@pytest.mark.parametrize("direction", ["forward", "backward", "bidirectional"])
@pytest.mark.parametrize("cell", CELLS)
def test_onnx_sequence_lens(cell, direction, mode):
    """The ONNX model (native: onnxruntime's own operator fed ``sequence_lens``) equals the
    NumPy module; float32, as onnxruntime's recurrent kernels are."""
    spec, params, data = case([rnn("R", cell, direction=direction, ret="sequence")],
                              dtype="float32")
    inputs = inputs_of(spec, data) | {"x.lengths": LENGTHS}
    want = rc.run(spec, params, inputs)
    got = rc.run(spec, params, inputs, backend="onnx", onnx_mode=mode)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)


# ---------------------------------------------------------------- gradients

torch = pytest.importorskip("torch")


def torch_packed(cell, direction, ret, params, data):
    """Loss and gradients by nn.RNN / LSTM / GRU on a packed sequence, the loss the mean
    squared error over the steps each example has."""
    from test_bptt_torch import TORCH_LAYOUT, TORCH_NAMES, from_torch, layer_params, to_torch
    nn = torch.nn
    x = torch.tensor(data["x"])
    module = TORCH_LAYOUT[cell]["module"](INPUT, 4, direction == "bidirectional").double()
    owners = []
    for tag, suffix in zip(TAGS[direction], ["_l0", "_l0_reverse"]):
        prefix = f"R.{tag}".rstrip(".")
        ours = {k: torch.tensor(v) for k, v in layer_params(params, prefix).items()}
        tparams = {t: getattr(module, t + suffix) for t in TORCH_NAMES}
        with torch.no_grad():
            for t, value in to_torch(cell, ours).items():
                tparams[t].copy_(value)
        owners.append((prefix, tparams))
    head = nn.Linear(4 * len(TAGS[direction]), 3).double()
    with torch.no_grad():
        head.weight.copy_(torch.tensor(params["out.W"]))
        head.bias.copy_(torch.tensor(params["out.b"]))
    packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor(LENGTHS), batch_first=True,
                                               enforce_sorted=False)
    seq, final = module(packed)
    final = final[0] if cell == "lstm" else final
    y = torch.tensor(data["y"])
    seq, _ = nn.utils.rnn.pad_packed_sequence(seq, batch_first=True, total_length=STEPS)
    forward = {"R": seq.detach().numpy(), "final": torch.cat(list(final), -1).detach().numpy()}
    if ret == "sequence":
        mask = (torch.arange(STEPS)[None, :] < torch.tensor(LENGTHS)[:, None]).double()
        diff = (head(seq) - y) ** 2 * mask[:, :, None]
        loss = diff.sum() / (mask.sum() * y.shape[-1])
    else:
        loss = ((head(torch.cat(list(final), -1)) - y) ** 2).mean()
    loss.backward()
    grads = {"grad.out.W": head.weight.grad.numpy(), "grad.out.b": head.bias.grad.numpy()}
    for prefix, tparams in owners:
        for k, v in from_torch(cell, {t: p.grad for t, p in tparams.items()}).items():
            grads[f"grad.{prefix}.{k}"] = v.detach().numpy()
    return loss.detach().numpy(), grads, forward


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_forward_matches_torch_packed_sequences(cell, direction):
    """The sequence (zeros past each length) and `last` (h_n: the forward direction's
    state at length-1, the backward's after step 0, started at length-1)."""
    layers = [rnn("R", cell, direction=direction, ret="sequence")]
    spec, params, data = case(layers)
    # (torch_packed also computes a loss, through a head this spec does not have)
    head = {"out.W": np.zeros((3, 4 * len(TAGS[direction]))), "out.b": np.zeros(3)}
    _, _, want = torch_packed(cell, direction, "sequence", params | head,
                              data | {"y": np.zeros((BATCH, STEPS, 3))})
    got = rc.run(spec, params, inputs_of(spec, data) | {"x.lengths": LENGTHS})
    np.testing.assert_allclose(got["R"], want["R"], rtol=1e-10, atol=1e-14)
    last = np.concatenate([got[f"R.{tag}h"] for tag in TAGS[direction]], axis=-1)
    np.testing.assert_allclose(last, want["final"], rtol=1e-10)


@pytest.mark.parametrize("ret", ["last", "sequence"])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_gradients_match_torch_packed_sequences(cell, direction, ret):
    spec, params, data = case(with_head([rnn("R", cell, direction=direction, ret=ret)]))
    want_loss, want, _ = torch_packed(cell, direction, ret, params, data)
    loss, grads = rc.loss_and_grads(spec, params, data)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-10)
    assert set(grads) == set(want)
    for key in want:
        np.testing.assert_allclose(grads[key], want[key], rtol=1e-7, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("cell", ["lstm", "gru_reset_before"])
def test_gradients_match_finite_differences(cell, loss):
    layers = with_head([rnn("A", cell, ret="sequence"),
                        rnn("R", cell, "A", direction="bidirectional", ret="sequence")], loss)
    spec, params, data = case(layers, loss, seed=3)
    gradcheck(spec, params, data)


@pytest.mark.parametrize("backend", ["numpy", "onnx"])
def test_padded_steps_count_for_nothing(backend):
    """The loss and every gradient stay put whatever the targets hold at padded steps."""
    spec, params, data = case(with_head([rnn("R", "gru", ret="sequence")], "cross_entropy"),
                              "cross_entropy", dtype="float32")
    first = rc.loss_and_grads(spec, params, data, backend=backend)
    other = dict(data, y=data["y"].copy())
    for example, length in enumerate(LENGTHS):
        other["y"][example, length:] = other["y"][example, length:][..., ::-1] * 3
    second = rc.loss_and_grads(spec, params, other, backend=backend)
    np.testing.assert_allclose(second[0], first[0], rtol=1e-6)
    for key in first[1]:
        np.testing.assert_allclose(second[1][key], first[1][key], rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- bad arrays

@pytest.mark.parametrize("lengths,message", [
    (None, r"missing array 'x.lengths' \(`lengths: true` on 'x'"),
    (np.array([5.0, 2.0, 4.0]), r"'x.lengths' has float64 values of shape \[3\]; expected ints"),
    (np.array([5, 2]), r"expected ints of shape \[3\]"),
    (np.array([5, 0, 4]), r"lengths from 0 to 5; each must be from 1 to 5"),
    (np.array([6, 2, 4]), r"lengths from 2 to 6; each must be from 1 to 5"),
])
def test_bad_lengths_are_clear_errors(lengths, message):
    spec, params, data = case([rnn("R", "lstm", ret="sequence")])
    inputs = inputs_of(spec, data)
    if lengths is not None:
        inputs["x.lengths"] = lengths
    with pytest.raises(ArrayError, match=message):
        rc.run(spec, params, inputs)


def test_gradient_flow_stops_at_the_lengths(tmp_path):
    """`rnnc inspect --grad-flow` (all examples of length 3 here): the forward direction's
    ‖∂L/∂h_t‖ is zero past the length and not before; the backward direction holds its
    initial state over the padding, so there every step carries the same gradient, the
    one that reaches the initial state."""
    pytest.importorskip("matplotlib")
    from rnncompiler.cli import main
    layers = with_head([rnn("R", "lstm", direction="bidirectional", ret="sequence")])
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(case_text(layers))
    _, params, data = case(layers)
    data["x.lengths"] = np.full(BATCH, 3)
    np.savez(tmp_path / "p.npz", **params)
    np.savez(tmp_path / "d.npz", **data)
    assert main(["inspect", str(spec_file), "--grad-flow", "--params", str(tmp_path / "p.npz"),
                 "--inputs", str(tmp_path / "d.npz"), "-o", str(tmp_path / "f.png")]) == 0
    rows = [line.split(",") for line in (tmp_path / "f.csv").read_text().split()[1:]]
    assert {layer for layer, _, _ in rows} == {"R.fwd", "R.bwd"}
    for layer, step, norm in rows:
        if layer == "R.fwd":
            assert (float(norm) == 0.0) == (int(step) >= 3), (step, norm)
    padded = {norm for layer, step, norm in rows if layer == "R.bwd" and int(step) >= 3}
    assert len(padded) == 1 and float(padded.pop()) > 0
