"""Every topology of the seed: one-to-many with feedback, encoder-decoder (teacher forcing
in training, feedback at inference, the same parameters), every example spec through the
CLI on both backends.

Oracles: float64 central differences, an encoder-decoder written out here in NumPy, and
the NumPy backend against onnxruntime running the ONNX backend's model."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, SPECS
from test_gradcheck import gradcheck, make_case, rnn

import rnncompiler as rc
from rnncompiler.cli import main
from rnncompiler.errors import SpecError
from rnncompiler.ir.ops import sigmoid, softmax


def feedback_decoder(cell, *, vector_input=True, activation="tanh"):
    """A decoder fed back the dense layer `word` it is followed by; with a vector input,
    the cell reads [image, word[t-1]] at step t, without, word[t-1] alone."""
    extra = {"feedback": "word", "steps": 5}
    layer = rnn("dec", cell, "image" if vector_input else None, ret="sequence", **extra)
    if not vector_input:
        del layer["input"]
    return [layer, {"name": "word", "type": "dense", "units": 3, "input": "dec",
                    "activation": activation}]


@pytest.mark.parametrize("vector_input", [True, False], ids=["image_and_word", "word_only"])
@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_feedback_gradients_match_finite_differences(cell, vector_input):
    """The gradient flows through the fed-back outputs too (it would not match otherwise:
    each step's input depends on every parameter through the steps before)."""
    inputs = {"image": {"features": 2, "sequence": False}}
    if not vector_input:
        inputs["start"] = {"features": 4, "sequence": False}
    layers = feedback_decoder(cell, vector_input=vector_input)
    if not vector_input:
        layers[0]["initial_state"] = {"h": "start"}
    spec, params, data = make_case(layers, inputs=inputs, steps=5, seed=2, target_steps=5)
    gradcheck(spec, params, data)


def test_feedback_is_the_previous_output():
    """word[t-1] reaches the cell at step t: the generated sequence equals one computed
    step by step here with the cell's own equations (a simple cell)."""
    inputs = {"image": {"features": 2, "sequence": False}}
    spec, params, data = make_case(feedback_decoder("simple"), inputs=inputs, steps=5,
                                   target_steps=5)
    out = rc.run(spec, params, {"image": data["image"]}, steps=5)["word"]
    p = params
    h = np.zeros((data["image"].shape[0], 4))
    word = np.zeros((h.shape[0], 3))
    for t in range(5):
        x = np.concatenate([data["image"], word], axis=-1)
        h = np.tanh(x @ p["dec.W_xh"].T + h @ p["dec.W_hh"].T + p["dec.b_h"])
        word = np.tanh(h @ p["word.W"].T + p["word.b"])
        np.testing.assert_allclose(out[:, t], word, rtol=1e-12)


def _lstm(p, prefix, x, h, c):
    gate = {g: x @ p[f"{prefix}.W_x{g}"].T + h @ p[f"{prefix}.W_h{g}"].T + p[f"{prefix}.b_{g}"]
            for g in "ifco"}
    c = sigmoid(gate["f"]) * c + sigmoid(gate["i"]) * np.tanh(gate["c"])
    return sigmoid(gate["o"]) * np.tanh(c), c


def _float64(name):
    text = (ROOT / "specs" / f"{name}.yaml").read_text()
    text = text.replace("rnnc: 1", "rnnc: 1\ndtype: float64")
    return rc.load_spec_text(text, filename=f"{name}.yaml")


def test_encoder_decoder_equals_its_equations():
    """translate.yaml against the network written out: the encoder's final (h, c) start
    the decoder, which reads the target sentence shifted by one (teacher forcing)."""
    spec = _float64("translate")
    params = rc.init_params(spec, seed=3)
    rng = np.random.default_rng(0)
    source, target_in = rng.standard_normal((2, 7, 8)), rng.standard_normal((2, 5, 6))
    out = rc.run(spec, params, {"source": source, "target_in": target_in})
    h = c = np.zeros((2, 24))
    for t in range(7):
        h, c = _lstm(params, "encoder", source[:, t], h, c)
    np.testing.assert_allclose(out["encoder.h"], h, rtol=1e-12)
    for t in range(5):
        h, c = _lstm(params, "decoder", target_in[:, t], h, c)
        words = softmax(h @ params["words.W"].T + params["words.b"])
        np.testing.assert_allclose(out["words"][:, t], words, rtol=1e-10)
    np.testing.assert_allclose(out["decoder.c"], c, rtol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "onnx"])
def test_generation_is_teacher_forcing_on_its_own_words(backend):
    """translate_generate.yaml (feedback) and translate.yaml (teacher forcing) share their
    parameters: fed the generated words shifted by one, the training network writes
    the same words."""
    generate, teach = _float64("translate_generate"), _float64("translate")
    params = rc.init_params(teach, seed=4)
    assert {k: v.shape for k, v in rc.init_params(generate).items()} == \
        {k: v.shape for k, v in params.items()}
    source = np.random.default_rng(1).standard_normal((3, 7, 8))
    words = rc.run(generate, params, {"source": source}, backend=backend)["words"]
    shifted = np.concatenate([np.zeros_like(words[:, :1]), words[:, :-1]], axis=1)
    taught = rc.run(teach, params, {"source": source, "target_in": shifted},
                    backend=backend)["words"]
    np.testing.assert_allclose(taught, words, rtol=1e-10)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_example_runs_on_both_backends(path, tmp_path):
    """`rnnc run` and `rnnc grad` on each example with --backend numpy and onnx agree."""
    data = ROOT / "specs" / "data" / f"{path.stem}.npz"
    params = tmp_path / "p.npz"
    assert main(["init", str(path), "-o", str(params)]) == 0
    results = {}
    for backend in ("numpy", "onnx"):
        out, grads = tmp_path / f"out_{backend}.npz", tmp_path / f"grads_{backend}.npz"
        assert main(["run", str(path), "--params", str(params), "--inputs", str(data),
                     "-o", str(out), "--backend", backend]) == 0
        results[backend] = dict(np.load(out))
        if rc.load_spec(path).loss is not None:
            assert main(["grad", str(path), "--params", str(params), "--inputs", str(data),
                         "-o", str(grads), "--backend", backend]) == 0
            results[backend] |= dict(np.load(grads))
    assert set(results["numpy"]) == set(results["onnx"])
    for key, value in results["numpy"].items():
        np.testing.assert_allclose(results["onnx"][key], value, rtol=1e-4, atol=1e-6,
                                   err_msg=key)


# ---------------------------------------------------------------- bad feedback

BASE = """\
rnnc: 1
name: bad
inputs:
  image: {{features: 2, sequence: false}}
layers:
  - {{name: dec, type: rnn, cell: gru, units: 4, {rnn}}}
  - {{name: word, type: dense, units: 3, input: {dense_input}}}
"""


@pytest.mark.parametrize("rnn_keys,dense_input,message", [
    ("input: image, steps: 3, return: sequence, feedback: wrod", "dec",
     r"6:\d+: error: layers\[0\]\.feedback: layer dec: unknown layer 'wrod' \(did you mean "
     r"'word'\?\); `feedback` names a later dense layer"),
    ("input: image, steps: 3, return: sequence, feedback: word", "image",
     r"layer 'word' must be a dense layer with `input: dec`"),
    ("input: image, steps: 3, feedback: word", "dec", r"set `return: sequence`"),
    ("input: image, steps: 3, return: sequence, feedback: word, direction: bidirectional",
     "dec", r"it needs `direction: forward`"),
    ("return: sequence, feedback: word", "dec",
     r"layer dec: with `feedback` and no `input`, give `steps: N`"),
])
def test_bad_feedback_is_a_located_error(rnn_keys, dense_input, message):
    with pytest.raises(SpecError, match=message):
        rc.load_spec_text(BASE.format(rnn=rnn_keys, dense_input=dense_input),
                          filename="bad.yaml")


def test_feedback_past_a_broken_layer_name_is_an_error_not_a_crash():
    """A later layer whose name is not even a string (found by the fuzz tests): the one
    error is its name, not the feedback that names it."""
    text = (ROOT / "specs" / "translate_generate.yaml").read_text()
    with pytest.raises(SpecError, match=r"layer name must be an identifier") as error:
        rc.load_spec_text(text.replace("{name: words,", "{name: [words, 1],"))
    assert "unknown layer 'words'" not in str(error.value)


def test_feedback_with_variable_lengths():
    """A decoder fed back its word and reading a sequence with lengths: the padding changes
    nothing, and the gradients match central differences."""
    inputs = {"x": {"features": 2, "lengths": True}}
    layers = [rnn("dec", "lstm", "x", ret="sequence", feedback="word"),
              {"name": "word", "type": "dense", "units": 3, "input": "dec",
               "activation": "tanh"}]
    spec, params, data = make_case(layers, inputs=inputs, steps=5, seed=4)
    data["x.lengths"] = np.array([5, 2, 3])
    first = rc.run(spec, params, {"x": data["x"], "x.lengths": data["x.lengths"]})
    padded = data["x"].copy()
    padded[1, 2:] = padded[2, 3:] = 50.0
    second = rc.run(spec, params, {"x": padded, "x.lengths": data["x.lengths"]})
    for key in first:
        np.testing.assert_allclose(second[key], first[key], rtol=1e-12, err_msg=key)
    gradcheck(spec, params, data)
