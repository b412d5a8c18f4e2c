"""``rnnc import MODEL.keras --from keras``: models saved by real Keras 3
(tests/fixtures/keras, made by its make_fixtures.py) import to specs that compute what
Keras computed, and train with the gradients Keras takes; what cannot map is refused."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import rnncompiler as rc
from rnncompiler.cli import main
from rnncompiler.interop.from_keras import _groups, keras_spec, read_keras

# h5py is in the `test` extra; without it only the tests that need no weights run
needs_h5py = pytest.mark.skipif(importlib.util.find_spec("h5py") is None,
                                reason="pip install 'rnncompiler[keras]'")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "keras"
MODELS = ["sentiment", "stacked", "bigru_tagger", "gru_before", "functional", "seq2seq",
          "autoencoder", "embedding"]
TRAINED = ["stacked", "bigru_tagger"]  # compiled with mse / categorical cross-entropy
MASKED = ["embedding_masked", "embedding_tagger", "masking"]  # padded at the end: lengths


def imported(name, tmp_path):
    """(spec, params) that ``rnnc import`` writes for the fixture ``name``."""
    spec_file, params = tmp_path / f"{name}.yaml", tmp_path / f"{name}.npz"
    assert main(["import", str(FIXTURES / f"{name}.keras"), "--from", "keras",
                 "-o", str(spec_file), "--params", str(params), "--name", name]) == 0
    return rc.load_spec(spec_file), dict(np.load(params))


def recorded(name):
    """Keras's inputs (by input name, and ``<input>.lengths`` where padded) and outputs
    (``out.<k>``; ``state.<layer>.<h|c>``) for the fixture."""
    with np.load(FIXTURES / f"{name}.npz") as data:
        arrays = dict(data)
    inputs = {k: v for k, v in arrays.items()
              if not k.startswith(("out.", "target.", "grad/", "state.")) and k != "loss"}
    return inputs, arrays


@needs_h5py
@pytest.mark.parametrize("name", MODELS)
def test_the_import_computes_what_keras_computed(name, tmp_path):
    spec, params = imported(name, tmp_path)
    inputs, arrays = recorded(name)
    assert set(spec.inputs) == set(inputs)  # the Keras input names
    got = rc.run(spec, params, inputs)
    assert len(spec.outputs) == sum(k.startswith("out.") for k in arrays)
    for k, output in enumerate(spec.outputs):
        assert got[output].dtype == np.float32
        np.testing.assert_allclose(got[output], arrays[f"out.{k}"], rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name}: {output}")


@needs_h5py
@pytest.mark.parametrize("name", MODELS)
def test_the_onnx_backend_and_a_compiled_module_agree(name, tmp_path):
    spec, params = imported(name, tmp_path)
    inputs, arrays = recorded(name)
    want = arrays["out.0"]
    got = rc.run(spec, params, inputs, backend="onnx")[spec.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    steps = next(v.shape[1] for k, v in inputs.items() if spec.inputs[k].sequence)
    module_file = tmp_path / f"{name}_model.py"
    assert main(["compile", str(tmp_path / f"{name}.yaml"), "--backend", "numpy", "-o",
                 str(module_file), "--params", str(tmp_path / f"{name}.npz"),
                 "--steps", str(steps)]) == 0
    loaded = importlib.util.spec_from_file_location(f"keras_{name}", module_file)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    got = module.forward(params, inputs)[spec.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@needs_h5py
@pytest.mark.parametrize("name", TRAINED)
def test_rnnc_grad_gives_the_loss_and_gradients_keras_took(name, tmp_path):
    """A compiled model's loss becomes the spec's; Keras's gradients (saved laid out as its
    weights) read as weights give ours."""
    spec, _ = imported(name, tmp_path)
    inputs, arrays = recorded(name)
    assert spec.loss is not None
    np.savez(tmp_path / "xy.npz", **inputs, **{spec.loss.target: arrays["target.0"]})
    assert main(["grad", str(tmp_path / f"{name}.yaml"), "--params",
                 str(tmp_path / f"{name}.npz"), "--inputs", str(tmp_path / "xy.npz"),
                 "-o", str(tmp_path / "g.npz")]) == 0
    got = dict(np.load(tmp_path / "g.npz"))
    np.testing.assert_allclose(got["loss"], arrays["loss"], rtol=1e-5)
    config, _, _ = read_keras(FIXTURES / f"{name}.keras")
    grads = {k[len("grad/"):]: v.copy() for k, v in arrays.items() if k.startswith("grad/")}
    for key, grad in grads.items():
        if key.endswith("cell/vars/2") and grad.ndim == 2:  # a GRU bias [input, recurrent]
            # r and z have one bias in our cell, the sum of Keras's two: each side's
            # gradient is that bias's, so the recurrent side's r, z blocks are left out
            width = 2 * grad.shape[1] // 3
            np.testing.assert_allclose(grad[1, :width], grad[0, :width], atol=1e-7)
            grad[1, :width] = 0
    _, want = keras_spec(config, grads, name)
    assert {f"grad.{k}" for k in want} == set(got) - {"loss"}
    for key, value in want.items():
        np.testing.assert_allclose(got[f"grad.{key}"], value, rtol=1e-4, atol=1e-6,
                                   err_msg=key)


@needs_h5py
def test_what_the_specs_say(tmp_path):
    """Names, cells, directions and lengths as the Keras models have them."""
    functional, _ = imported("functional", tmp_path)
    assert list(functional.inputs) == ["features"] and functional.outputs == ["head", "tags"]
    assert [(l.name, l.type) for l in functional.layers] == [
        ("encoder", "rnn"), ("drop", "dropout"), ("summary", "rnn"), ("head", "dense"),
        ("tags", "dense")]
    assert functional.layers[2].direction == "bidirectional"
    assert functional.unroll.steps is None  # any length, as Keras's Input((None, 3))
    before, _ = imported("gru_before", tmp_path)
    assert (before.layers[0].cell, before.layers[0].direction) == ("gru_reset_before",
                                                                  "backward")
    seq2seq, _ = imported("seq2seq", tmp_path)
    assert seq2seq.layers[1].initial_state == {"h": "encoder.h", "c": "encoder.c"}
    assert (seq2seq.inputs["source"].steps, seq2seq.inputs["target_in"].steps) == (5, 4)
    sentiment, _ = imported("sentiment", tmp_path)
    assert sentiment.loss is None  # binary cross-entropy: no counterpart
    assert sentiment.unroll.steps == 6


@needs_h5py
@pytest.mark.parametrize("backend", ["numpy", "onnx"])
@pytest.mark.parametrize("name", MASKED)
def test_a_masked_model_computes_what_keras_computed_at_the_real_steps(name, backend,
                                                                      tmp_path):
    """Embedding(mask_zero=True) and Masking: fed ``<input>.lengths``, the spec gives Keras's
    outputs at each example's real steps (Keras repeats the last output over the padding,
    a spec gives zeros there) and the final states Keras's layers reach under the mask."""
    spec, params = imported(name, tmp_path)
    inputs, arrays = recorded(name)
    (source,) = [k for k in inputs if not k.endswith(".lengths")]
    assert spec.inputs[source].lengths and f"{source}.lengths" in inputs
    lengths = inputs[f"{source}.lengths"]
    states = [k for k in arrays if k.startswith("state.")]
    assert len(states) == {"embedding_tagger": 0}.get(name, 3)

    def compared(got):  # (ours, Keras's) at the real steps, and the final states
        out, want = got[spec.outputs[0]], arrays["out.0"]
        if want.ndim == 3:  # a sequence
            return [(out[k, :n], want[k, :n]) for k, n in enumerate(lengths)]
        return [(out, want)] + [(got[key[len("state."):]], arrays[key]) for key in states]

    for ours, theirs in compared(rc.run(spec, params, inputs, backend=backend)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    whole = inputs | {f"{source}.lengths": np.full_like(lengths, inputs[source].shape[1])}
    assert not all(np.allclose(ours, theirs, rtol=1e-5, atol=1e-6)  # the lengths tell
                   for ours, theirs in compared(rc.run(spec, params, whole, backend=backend)))


@needs_h5py
def test_masks_dropout_and_ids_in_the_spec(tmp_path):
    """Inputs of class ids, padding_id 0 and lengths from mask_zero; dropout as dropout
    layers and keys; comments for what differs: per-gate recurrent masks and the trailing
    padding lengths assume."""
    spec, params = imported("embedding_masked", tmp_path)
    ids = spec.inputs["ids"]
    assert (ids.classes, ids.lengths, ids.sequence) == (12, True, True)
    embed = spec.layers[0]
    assert (embed.type, embed.units, embed.padding_id) == ("embedding", 4, 0)
    assert params["embedding.W"].shape == (12, 4)
    text = (tmp_path / "embedding_masked.yaml").read_text()
    for line in ("  # keras Embedding(mask_zero=True) on ids: id 0 is padding\n"
                 "  #   feed ids.lengths: each example's number of steps before its trailing 0s"
                 "\n  #   (a mask with holes, padding between real steps, is not what lengths "
                 "express)\n",
                 "  # keras LSTM(recurrent_dropout=0.1) as lstm: Keras draws a mask per gate, "
                 "rnnc one mask for h[t-1] (docs/spec.md)\n"):
        assert line in text
    lstm = next(layer for layer in spec.layers if layer.type == "rnn")
    assert (lstm.dropout, lstm.recurrent_dropout) == (0.2, 0.1)
    dropped = next(layer for layer in spec.layers if layer.type == "dropout")
    assert (dropped.input, dropped.rate) == (lstm.name, 0.3)
    text = (imported("masking", tmp_path) and tmp_path / "masking.yaml").read_text()
    assert "# keras Masking(mask_value=-1.0) on signal: steps whose features all equal -1.0 " \
           "are padding\n" in text
    assert "# keras GaussianNoise(0.1) after lstm: identity at inference; training noise is " \
           "not imported" in text
    plain, _ = imported("embedding", tmp_path)
    assert plain.inputs["ids"].classes == 10 and not plain.inputs["ids"].lengths
    assert plain.layers[0].padding_id is None


@needs_h5py
@pytest.mark.parametrize("name", MODELS + MASKED)
def test_weights_are_found_where_keras_put_them(name):
    """Counted by class (``lstm``, ``lstm_1``...), each layer's group is the one whose
    ``vars`` Keras marked with the layer's own name."""
    import h5py

    with zipfile.ZipFile(FIXTURES / f"{name}.keras") as archive:
        config = json.loads(archive.read("config.json"))
        with h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
            names = {key: h5[key]["vars"].attrs["name"] for key in
                     (f"layers/{k}" for k in h5["layers"])}
    body = [(layer, None, {}) for layer in config["config"]["layers"]
            if layer["class_name"] not in ("InputLayer", "NotEqual", "Any")]
    groups = _groups(body)
    assert len(groups) >= 2 and all(names[group] == layer for layer, group in groups.items())


# ---------------------------------------------------------------- refusals

def edited(tmp_path, name, edit):
    """A copy of the fixture ``name`` whose config.json ``edit`` changed."""
    target = tmp_path / f"{name}_edited.keras"
    with zipfile.ZipFile(FIXTURES / f"{name}.keras") as source, \
            zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                edit(config["config"]["layers"])
                data = json.dumps(config).encode()
            out.writestr(info.filename, data)
    return target


def _set(index, key, value, inner=None):
    def edit(layers):
        config = layers[index]["config"]
        (config[inner]["config"] if inner else config)[key] = value
    return edit


def _named(name, edit):
    """Applies ``edit`` to the layer called ``name`` (or the first of that class: op layers
    are numbered across models, ``not_equal_1``)."""
    def apply(layers):
        edit(next(layer for layer in layers if name in (layer["config"]["name"],
                                                        layer["class_name"])))
    return apply


def _reads(name, source):
    return _named(name, lambda layer: layer["inbound_nodes"][0]["args"][0]["config"].update(
        keras_history=[source, 0, 0]))


REFUSALS = [
    ("stacked", _set(1, "activation", "elu"),
     "layer 'simple_rnn' (SimpleRNN): SimpleRNN has activation 'elu': no equation function "
     "computes 'elu' as it is (rnnc import writes cells of sigmoid, tanh, relu, linear, "
     "hard_sigmoid)"),
    ("sentiment", _set(1, "recurrent_activation", "hard_silu"),
     "LSTM has recurrent_activation 'hard_silu': no equation function computes "
     "'hard_silu' as it is"),
    ("sentiment", _set(1, "stateful", True), "(LSTM): stateful: a spec carries no state"),
    ("sentiment", _set(2, "activation", "elu"), "(Dense): activation 'elu': a spec's dense"),
    ("bigru_tagger", _set(1, "merge_mode", "sum"),
     "layer 'bidirectional' (Bidirectional): merge_mode 'sum'"),
    ("bigru_tagger", _set(1, "activation", "softsign", inner="layer"),
     "layer 'bidirectional' (Bidirectional): its GRU has activation 'softsign'"),
    ("stacked", _set(1, "go_backwards", True),
     "go_backwards with return_sequences: Keras returns the steps in reverse order"),
    ("bigru_tagger", lambda layers: layers[2]["config"]["layer"].update(class_name="Conv1D"),
     "TimeDistributed(Conv1D): only TimeDistributed(Dense) maps"),
    ("seq2seq", lambda layers: layers[-1]["inbound_nodes"][0]["args"][0]["config"].update(
        keras_history=["encoder", 0, 2]),  # the head reads the encoder's final c
     "layer 'next' (Dense): reads the final state encoder.c; a spec feeds a final state "
     "only as another rnn layer's initial_state"),
    ("sentiment", lambda layers: layers[1]["config"].pop("units"),
     "config.json is not a Keras 3 model as rnnc import reads one (KeyError: 'units')"),
    # class ids, Embedding and masks
    ("embedding", _set(1, "input_length", 8),
     "layer 'embedding' (Embedding): input_length 8, but its input 'ids' has 6 steps"),
    ("embedding", _set(1, "lora_rank", 4),
     "(Embedding): lora_rank: rnnc import reads an Embedding's plain table only"),
    ("embedding", lambda layers: layers.pop(1),
     "(LSTM): reads the class ids of input 'ids'; a spec reads class ids with an embedding "
     "layer only"),
    ("embedding", lambda layers: layers[0]["config"].update(batch_shape=[None, 6, 1],
                                                            dtype="float32"),
     "layer 'embedding' (Embedding): reads input 'ids' of shape [None, 6, 1]; an Embedding "
     "reads class ids: an integer Input [batch, steps] or [batch]"),
    ("masking", _named("gru", lambda layer: layer.update(class_name="Embedding", config={
        "name": "gru", "input_dim": 5, "output_dim": 2})),
     "layer 'gru' (Embedding): reads 'noise', not an Input: an Embedding maps where it reads "
     "class ids from an Input"),
    ("masking", _named("noise", lambda layer: layer.update(class_name="Masking")),
     "layer 'noise' (Masking): Masking maps on a sequence Input directly"),
    ("masking", _reads("lstm", "signal"),
     "layer 'lstm' (LSTM): reads input 'signal' without its Masking; a spec's lengths apply "
     "to every layer that reads the input"),
    ("masking", _named("lstm", lambda layer: layer["inbound_nodes"][0]["kwargs"].pop("mask")),
     "layer 'lstm' (LSTM): reads the padded steps of 'signal' without its mask"),
    ("embedding_tagger", _named("NotEqual", lambda layer: layer["inbound_nodes"][0][
        "args"].__setitem__(1, 5)),
     "layer 'encoder' (Bidirectional): called with a mask other than that of the Embedding "
     "(mask_zero=True) or Masking on the input it reads"),
    ("masking", _named("Any", lambda layer: layer["config"].update(axis=1)),
     "layer 'any' (Any): rnnc import maps the ops of a mask Keras computes from an Input"),
]


@needs_h5py
@pytest.mark.parametrize("name,edit,message", REFUSALS)
def test_what_cannot_map_is_refused_in_one_line(name, edit, message, tmp_path, capsys):
    source = edited(tmp_path, name, edit)
    assert main(["import", str(source), "--from", "keras", "-o", str(tmp_path / "m.yaml"),
                 "--params", str(tmp_path / "p.npz")]) == 1
    err = capsys.readouterr().err
    assert message in err and err.startswith(f"{source}: error: ") and err.count("\n") == 1
    assert not (tmp_path / "m.yaml").exists() and not (tmp_path / "p.npz").exists()


@needs_h5py
def test_names_yaml_reads_otherwise_are_kept_apart(tmp_path):
    """A layer named `yes` (YAML's true) or `null` becomes `yes_`, `null_`: a spec's names
    are written bare, and the spec must read back."""
    def rename(layers):
        for layer, name in ((layers[1], "yes"), (layers[2], "null")):
            layer["config"]["name"] = name
            layer.pop("name", None)
    source = edited(tmp_path, "stacked", rename)
    assert main(["import", str(source), "--from", "keras", "-o", str(tmp_path / "m.yaml"),
                 "--params", str(tmp_path / "p.npz")]) == 0
    spec = rc.load_spec(tmp_path / "m.yaml")
    assert [layer.name for layer in spec.layers[:2]] == ["yes_", "null_"]
    inputs, arrays = recorded("stacked")
    got = rc.run(spec, dict(np.load(tmp_path / "p.npz")), inputs)[spec.outputs[0]]
    np.testing.assert_allclose(got, arrays["out.0"], rtol=1e-5, atol=1e-6)


@needs_h5py
def test_an_unknown_layer_is_refused(tmp_path, capsys):
    source = edited(tmp_path, "sentiment", lambda layers: layers[1].update(class_name="Conv1D"))
    assert main(["import", str(source), "--from", "keras", "-o", str(tmp_path / "m.yaml"),
                 "--params", str(tmp_path / "p.npz")]) == 1
    err = capsys.readouterr().err
    assert "layer 'lstm' (Conv1D): a spec has no Conv1D layer" in err
    assert err.count("\n") == 1 and not (tmp_path / "m.yaml").exists()


def test_a_file_that_is_not_a_keras_zip(tmp_path, capsys):
    (tmp_path / "m.keras").write_text("not a zip")
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as archive:
        archive.writestr("metadata.json", "{}")
    for source, message in (("m.keras", "not a .keras file"),
                            ("empty.keras", "not a Keras 3 .keras file: it has no config.json"),
                            ("missing.keras", "not a .keras file")):
        assert main(["import", str(tmp_path / source), "--from", "keras", "-o",
                     str(tmp_path / "m.yaml"), "--params", str(tmp_path / "p.npz")]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert not (tmp_path / "m.yaml").exists() and not (tmp_path / "p.npz").exists()


def test_without_h5py_the_error_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py raises ImportError
    assert main(["import", str(FIXTURES / "sentiment.keras"), "--from", "keras", "-o",
                 str(tmp_path / "m.yaml"), "--params", str(tmp_path / "p.npz")]) == 1
    err = capsys.readouterr().err
    assert "pip install 'rnncompiler[keras]'" in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- live, where Keras is

def new_inputs(spec, recorded_inputs, rng, batch=5):
    """Random inputs shaped as the recorded ones: class ids from 1 where the spec says
    classes; a padded input gets random lengths (the first example whole) and the padding
    value the recording has (its first example is padded at its last step)."""
    inputs = {}
    for key, value in recorded_inputs.items():
        if key.endswith(".lengths"):
            continue
        given, shape = spec.inputs[key], (batch,) + value.shape[1:]
        inputs[key] = rng.integers(1, given.classes, shape) if given.classes else \
            rng.standard_normal(shape).astype(np.float32)
        if given.lengths:
            lengths = rng.integers(1, shape[1] + 1, batch)
            lengths[0] = shape[1]
            inputs[key][np.arange(shape[1]) >= lengths[:, None]] = value[0, -1]
            inputs[f"{key}.lengths"] = lengths
    return inputs


@needs_h5py
@pytest.mark.parametrize("name", MODELS + MASKED)
def test_live_keras_computes_the_same(name, tmp_path):
    """Keras itself (installed in CI, on PyTorch) loads the fixture and runs it on new
    inputs (new lengths where masked: compared at the real steps)."""
    keras = pytest.importorskip("keras")
    model = keras.saving.load_model(FIXTURES / f"{name}.keras")
    spec, params = imported(name, tmp_path)
    inputs = new_inputs(spec, recorded(name)[0], np.random.default_rng(7))
    feed = [inputs[t.name] for t in model.inputs]
    want = model.predict(feed if len(feed) > 1 else feed[0], verbose=0)
    want = want if isinstance(want, list) else [want]
    got = rc.run(spec, params, inputs)
    lengths = next((v for k, v in inputs.items() if k.endswith(".lengths")), None)
    for k, output in enumerate(spec.outputs):
        ours, theirs = got[output], np.asarray(want[k])
        if lengths is not None and theirs.ndim == 3:
            real = np.arange(theirs.shape[1]) < lengths[:, None]
            ours, theirs = ours[real], theirs[real]
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@needs_h5py
def test_live_keras_ids_as_a_vector_and_from_a_built_sequential(tmp_path):
    """A Sequential built with model.build((None, T)) has a float32 Input, which Keras's
    Embedding casts to ids: it imports as class ids; an int Input of shape () is a vector of
    ids (mask_zero there masks no steps: a comment, and padding_id 0)."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    built = keras.Sequential([keras.layers.Embedding(7, 3, embeddings_initializer="normal"),
                              keras.layers.GRU(4), keras.layers.Dense(2)])
    built.build((None, 5))
    label = keras.Input((), dtype="int32", name="label")
    vector = keras.Model(label, keras.layers.Dense(2)(
        keras.layers.Embedding(6, 3, mask_zero=True, name="embed")(label)))
    rng = np.random.default_rng(0)
    for model, ids in ((built, rng.integers(0, 7, (3, 5))), (vector, np.array([0, 3, 5]))):
        model.save(tmp_path / "m.keras")
        assert main(["import", str(tmp_path / "m.keras"), "-o", str(tmp_path / "m.yaml"),
                     "--params", str(tmp_path / "p.npz")]) == 0
        spec = rc.load_spec(tmp_path / "m.yaml")
        (name,) = spec.inputs
        assert spec.inputs[name].classes == (7 if model is built else 6)
        assert spec.inputs[name].sequence == (model is built)
        got = rc.run(spec, dict(np.load(tmp_path / "p.npz")), {name: ids})[spec.outputs[0]]
        np.testing.assert_allclose(got, model.predict(ids, verbose=0), rtol=1e-5, atol=1e-6)
    assert spec.layers[0].padding_id == 0 and "a vector of ids: no steps to mask" in \
        (tmp_path / "m.yaml").read_text()


@needs_h5py
@pytest.mark.parametrize("loss,activation", [("mse", "linear"),
                                             ("categorical_crossentropy", "softmax")])
def test_live_keras_masked_loss_is_the_spec_loss_over_the_real_steps(loss, activation,
                                                                      tmp_path):
    """A masked model compiled with a loss: Keras averages over the unmasked steps, as a
    spec's loss does over each example's lengths."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6,), dtype="int32", name="ids"),
        keras.layers.Embedding(7, 3, mask_zero=True, embeddings_initializer="normal"),
        keras.layers.GRU(4, return_sequences=True), keras.layers.Dense(2, activation=activation)])
    model.compile(loss=loss)
    model.save(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    lengths = np.array([6, 2, 4])
    ids = rng.integers(1, 7, (3, 6))
    ids[np.arange(6) >= lengths[:, None]] = 0
    y = rng.standard_normal((3, 6, 2)).astype(np.float32)
    if loss != "mse":
        y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, (3, 6))]
    want = model.evaluate(ids, y, verbose=0)
    assert main(["import", str(tmp_path / "m.keras"), "-o", str(tmp_path / "m.yaml"),
                 "--params", str(tmp_path / "p.npz")]) == 0
    np.savez(tmp_path / "xy.npz", ids=ids, y=y, **{"ids.lengths": lengths})
    assert main(["grad", str(tmp_path / "m.yaml"), "--params", str(tmp_path / "p.npz"),
                 "--inputs", str(tmp_path / "xy.npz"), "-o", str(tmp_path / "g.npz")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "g.npz")["loss"], want, rtol=1e-5)
