"""``rnnc import MODEL.onnx --from onnx`` on whole recurrent models: several RNN / LSTM /
GRU operators, the plumbing exporters write between them, and dense heads. Each imported
spec computes what onnxruntime computes on the source model, on the same inputs.

Graphs built here with onnx.helper test the feature without torch; models exported by
torch.onnx.export (the TorchScript exporter, dynamo=False, and the dynamo one where
onnxscript is installed) test it on what users have."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import rnncompiler as rc
from rnncompiler.cli import main

B, T, I, H = 3, 5, 4, 6
RNG = np.random.default_rng(7)


def _import(tmp_path, model, *, expect=0, name="m"):
    """Write ``model`` (a ModelProto or a path), run `rnnc import`; (spec, params, text)."""
    path = tmp_path / f"{name}.onnx"
    if not isinstance(model, type(path)):
        path.write_bytes(model.SerializeToString())
    else:
        path = model
    spec_file, params = tmp_path / f"{name}.yaml", tmp_path / f"{name}.npz"
    code = main(["import", str(path), "--from", "onnx", "-o", str(spec_file),
                 "--params", str(params)])
    assert code == expect
    if expect:
        assert not spec_file.exists() and not params.exists()
        return None
    return rc.load_spec(spec_file), dict(np.load(params)), spec_file.read_text()


def _onnxruntime(model, feeds):
    """Outputs of a ModelProto, or of a model file (with its external data, if any)."""
    data = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _w(*shape):
    return (0.5 * RNG.standard_normal(shape)).astype(np.float32)


def _const(name, value):
    return helper.make_node("Constant", [], [name],
                            value=numpy_helper.from_array(np.asarray(value), name + "_v"))


def _model(nodes, inits, outputs, inputs=(("tokens", [None, None, I]),)):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _zeros_state(prefix, dirs, x="tokens", batch_axis=0):
    """initial_h as the TorchScript exporter writes it: ConstantOfShape of
    [directions, Shape(x)[batch], H]."""
    return [helper.make_node("Shape", [x], [f"{prefix}_shape"]),
            _const(f"{prefix}_i", np.array(batch_axis, dtype=np.int64)),
            helper.make_node("Gather", [f"{prefix}_shape", f"{prefix}_i"], [f"{prefix}_b"],
                             axis=0),
            _const(f"{prefix}_ax", np.array([0], dtype=np.int64)),
            helper.make_node("Unsqueeze", [f"{prefix}_b", f"{prefix}_ax"], [f"{prefix}_b1"]),
            _const(f"{prefix}_d", np.array([dirs], dtype=np.int64)),
            _const(f"{prefix}_h", np.array([H], dtype=np.int64)),
            helper.make_node("Concat", [f"{prefix}_d", f"{prefix}_b1", f"{prefix}_h"],
                             [f"{prefix}_dims"], axis=0),
            helper.make_node("ConstantOfShape", [f"{prefix}_dims"], [prefix])]


def _lstm(dirs, inputs):
    return {"W": _w(dirs, 4 * H, inputs), "R": _w(dirs, 4 * H, H), "B": _w(dirs, 8 * H)}


def stacked_lstm_model():
    """Batch-first tokens -> bidirectional LSTM -> [T, B, 2H] -> LSTM -> last step -> Gemm
    -> Tanh: two stacked operators with Transpose / Reshape / Squeeze plumbing."""
    l1, l2 = _lstm(2, I), _lstm(1, 2 * H)
    inits = {f"l1.{k}": v for k, v in l1.items()} | {f"l2.{k}": v for k, v in l2.items()}
    inits |= {"fc.weight": _w(3, H), "fc.bias": _w(3)}
    nodes = [
        helper.make_node("Transpose", ["tokens"], ["x_tm"], perm=[1, 0, 2]),
        *_zeros_state("h1", 2),
        helper.make_node("LSTM", ["x_tm", "l1.W", "l1.R", "l1.B", "", "h1", "h1"],
                         ["y1", "y1_h", "y1_c"], hidden_size=H, direction="bidirectional",
                         name="/encoder/LSTM"),
        helper.make_node("Transpose", ["y1"], ["y1_t"], perm=[0, 2, 1, 3]),
        _const("flat", np.array([0, 0, -1], dtype=np.int64)),
        helper.make_node("Reshape", ["y1_t", "flat"], ["y1_seq"]),
        helper.make_node("LSTM", ["y1_seq", "l2.W", "l2.R", "l2.B"], ["y2"], hidden_size=H,
                         name="/encoder/LSTM_1"),
        _const("one", np.array([1], dtype=np.int64)),
        helper.make_node("Squeeze", ["y2", "one"], ["y2_seq"]),
        _const("last", np.array(-1, dtype=np.int64)),
        helper.make_node("Gather", ["y2_seq", "last"], ["y2_last"], axis=0),
        helper.make_node("Gemm", ["y2_last", "fc.weight", "fc.bias"], ["fc_out"], transB=1,
                         name="/fc/Gemm"),
        helper.make_node("Tanh", ["fc_out"], ["score"]),
    ]
    return _model(nodes, inits, ["score"])


def test_stacked_lstm_ops_with_plumbing_and_a_gemm_head(tmp_path):
    model = stacked_lstm_model()
    spec, params, _text = _import(tmp_path, model)
    assert [(la.name, la.type, la.returns, la.direction) for la in spec.layers] == [
        ("encoder_LSTM", "rnn", "sequence", "bidirectional"),
        ("encoder_LSTM_1", "rnn", "last", "forward"),
        ("score", "dense", "last", "forward")]
    assert spec.layer("score").activation == "tanh" and list(spec.inputs) == ["tokens"]
    assert spec.outputs == ["score"]
    x = RNG.standard_normal((B, T, I)).astype(np.float32)
    (want,) = _onnxruntime(model, {"tokens": x})
    got = rc.run(spec, params, {"tokens": x})["score"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_a_tagger_head_per_step_on_a_time_major_gru(tmp_path):
    """X time-major straight from the graph input; Y squeezed; MatMul + Add (bias first, as
    the TorchScript exporter writes it) + Softmax at every step; output time-major."""
    inits = {"W": _w(1, 3 * H, I), "R": _w(1, 3 * H, H), "B": _w(1, 6 * H),
             "proj": _w(H, 2), "bias": _w(2)}
    nodes = [*_zeros_state("h0", 1, x="frames", batch_axis=1),
             helper.make_node("GRU", ["frames", "W", "R", "B", "", "h0"], ["y", "y_h"],
                              hidden_size=H, linear_before_reset=1),
             _const("one", np.array([1], dtype=np.int64)),
             helper.make_node("Squeeze", ["y", "one"], ["seq"]),
             helper.make_node("MatMul", ["seq", "proj"], ["mm"], name="/head/MatMul"),
             helper.make_node("Add", ["bias", "mm"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["tags"], axis=-1)]
    model = _model(nodes, inits, ["tags"], inputs=(("frames", [None, None, I]),))
    spec, params, text = _import(tmp_path, model)
    assert "graph input 'frames' is [T, batch, features]" in text
    assert [(la.name, la.type) for la in spec.layers] == [("R", "rnn"), ("tags", "dense")]
    assert spec.layer("R").cell == "gru" and spec.layer("tags").activation == "softmax"
    x = RNG.standard_normal((B, T, I)).astype(np.float32)
    (want,) = _onnxruntime(model, {"frames": x.transpose(1, 0, 2).copy()})
    got = rc.run(spec, params, {"frames": x})["tags"]  # batch-first
    np.testing.assert_allclose(got, want.transpose(1, 0, 2), rtol=1e-5, atol=1e-6)


def test_a_head_on_y_h_of_a_bidirectional_op(tmp_path):
    """PyTorch's fc(cat(h_n[-2], h_n[-1])): Y_h [2, B, H] -> two Gathers -> Concat."""
    inits = {"W": _w(2, 3 * H, I), "R": _w(2, 3 * H, H), "fc.weight": _w(2, 2 * H)}
    nodes = [helper.make_node("GRU", ["tokens", "W", "R"], ["", "h_n"], hidden_size=H,
                              direction="bidirectional", layout=1),
             _const("fwd", np.array(-2, dtype=np.int64)),
             _const("bwd", np.array(-1, dtype=np.int64)),
             helper.make_node("Gather", ["h_n", "fwd"], ["h_f"], axis=1),
             helper.make_node("Gather", ["h_n", "bwd"], ["h_b"], axis=1),
             helper.make_node("Concat", ["h_f", "h_b"], ["h"], axis=-1),
             helper.make_node("MatMul", ["h", "fc.weight"], ["out"])]
    inits["fc.weight"] = _w(2 * H, 2)
    model = _model(nodes, inits, ["out"], inputs=(("tokens", [B, T, I]),))
    spec, params, text = _import(tmp_path, model)
    assert spec.layer("R").returns == "last" and spec.layer("R").cell == "gru_reset_before"
    assert "unroll: {steps: 5}" in text  # the model's fixed length
    x = RNG.standard_normal((B, T, I)).astype(np.float32)
    from onnx.reference import ReferenceEvaluator  # onnxruntime runs layout 0 only
    (want,) = ReferenceEvaluator(model).run(None, {"tokens": x})
    got = rc.run(spec, params, {"tokens": x})["out"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_last_step_of_a_bidirectional_y_is_not_its_final_state(tmp_path):
    """Y[:, -1] of a bidirectional op is [forward's last, backward's FIRST step]: the head
    reads it through a step cell on the whole sequence; Y itself is an output too."""
    inits = {"W": _w(2, 4 * H, I), "R": _w(2, 4 * H, H), "B": _w(2, 8 * H),
             "k": _w(2 * H, 3), "b": _w(3)}
    nodes = [helper.make_node("Transpose", ["tokens"], ["tm"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["tm", "W", "R", "B"], ["y"], hidden_size=H,
                              direction="bidirectional"),
             helper.make_node("Transpose", ["y"], ["yt"], perm=[2, 0, 1, 3]),
             _const("shape", np.array([0, 0, 2 * H], dtype=np.int64)),
             helper.make_node("Reshape", ["yt", "shape"], ["states"]),
             _const("s", np.array([-1], dtype=np.int64)),
             _const("e", np.array([2**63 - 1], dtype=np.int64)),
             _const("a", np.array([1], dtype=np.int64)),
             helper.make_node("Slice", ["states", "s", "e", "a"], ["last1"]),
             helper.make_node("Squeeze", ["last1", "a"], ["last"]),
             helper.make_node("MatMul", ["last", "k"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["logits"]),
             helper.make_node("Sigmoid", ["logits"], ["p"])]
    model = _model(nodes, inits, ["p", "states"])
    spec, params, text = _import(tmp_path, model)
    assert spec.layer("R").returns == "sequence"
    assert spec.layer("p").type == "rnn" and spec.layer("p").returns == "last"
    assert "sigmoid(W @ x[t] + b)" in text and spec.outputs == ["p", "R"]
    x = RNG.standard_normal((B, T, I)).astype(np.float32)
    want = _onnxruntime(model, {"tokens": x})
    got = rc.run(spec, params, {"tokens": x})
    np.testing.assert_allclose(got["p"], want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["R"], want[1], rtol=1e-5, atol=1e-6)


def test_an_output_a_spec_cannot_give_is_left_out_with_a_note(tmp_path, capsys):
    inits = {"W": _w(2, H, I), "R": _w(2, H, H)}
    nodes = [helper.make_node("RNN", ["tokens", "W", "R"], ["Y", "Y_h"], hidden_size=H,
                              direction="bidirectional")]
    model = _model(nodes, inits, ["Y", "Y_h"])
    spec, params, text = _import(tmp_path, model)
    note = "graph output 'Y_h' is left out: RNN"
    assert note in capsys.readouterr().err and note in text
    assert spec.outputs == ["R"] and spec.layer("R").returns == "sequence"
    x = RNG.standard_normal((B, T, I)).astype(np.float32)
    y, _ = _onnxruntime(model, {"tokens": x.transpose(1, 0, 2).copy()})
    got = rc.run(spec, params, {"tokens": x})["R"]
    np.testing.assert_allclose(got, y.transpose(2, 0, 1, 3).reshape(B, T, 2 * H), rtol=1e-5,
                               atol=1e-6)


def test_the_imported_spec_trains_and_compiles(tmp_path):
    """`rnnc grad` (with a loss added) and `rnnc compile --backend onnx`, whose model gives
    what the source model gives."""
    model = stacked_lstm_model()
    _spec, params, text = _import(tmp_path, model)
    x = RNG.standard_normal((B, T, I)).astype(np.float32)
    trained = tmp_path / "train.yaml"
    trained.write_text(text + "targets: {y: {features: 3, sequence: false}}\n"
                              "loss: {type: mse, output: score, target: y}\n")
    data = tmp_path / "xy.npz"
    np.savez(data, tokens=x, y=np.zeros((B, 3), np.float32))
    assert main(["grad", str(trained), "--params", str(tmp_path / "m.npz"), "--inputs",
                 str(data), "-o", str(tmp_path / "g.npz")]) == 0
    grads = np.load(tmp_path / "g.npz")
    assert {f"grad.{k}" for k in params} <= set(grads) and np.isfinite(grads["loss"])
    compiled = tmp_path / "ours.onnx"
    assert main(["compile", str(tmp_path / "m.yaml"), "--backend", "onnx", "-o", str(compiled),
                 "--params", str(tmp_path / "m.npz"), "--steps", str(T)]) == 0
    session = ort.InferenceSession(str(compiled), providers=["CPUExecutionProvider"])
    got = session.run(["score"], {"tokens": x})[0]
    np.testing.assert_allclose(got, _onnxruntime(model, {"tokens": x})[0], rtol=1e-5, atol=1e-6)
    assert main(["compile", str(tmp_path / "m.yaml"), "--backend", "numpy", "-o",
                 str(tmp_path / "ours.py"), "--steps", str(T)]) == 0


# ---------------------------------------------------------------- what is refused

def _refused(tmp_path, capsys, model, *needles):
    assert _import(tmp_path, model, expect=1) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err  # one line
    for needle in needles:
        assert needle in err, err
    return err


def _gru_then(nodes, inits=None, inputs=(("tokens", [None, None, I]),), **attrs):
    inits = {"W": _w(1, 3 * H, I), "R": _w(1, 3 * H, H)} | (inits or {})
    gru = helper.make_node("GRU", ["tm", "W", "R", *attrs.pop("extra", [])], ["y", "y_h"],
                           hidden_size=H, name="/rnn/GRU", **attrs)
    head = [helper.make_node("Transpose", ["tokens"], ["tm"], perm=[1, 0, 2]), gru]
    return _model(head + nodes, inits, [nodes[-1].output[0]] if nodes else ["y"], inputs)


def test_a_mul_by_a_constant_on_the_recurrent_path_is_refused(tmp_path, capsys):
    model = _gru_then([_const("two", np.float32(2.0)),
                       helper.make_node("Mul", ["y", "two"], ["scaled"], name="/scale/Mul")])
    _refused(tmp_path, capsys, model, "Mul node '/scale/Mul'", "GRU '/rnn/GRU' (its Y)")


def test_dropout_in_training_mode_is_refused(tmp_path, capsys):
    model = _gru_then([_const("ratio", np.float32(0.5)), _const("train", np.bool_(True)),
                       helper.make_node("Dropout", ["y", "ratio", "train"], ["dropped"],
                                        name="drop")])
    _refused(tmp_path, capsys, model, "Dropout node 'drop'", "training mode")
    inference = _gru_then([helper.make_node("Dropout", ["y"], ["kept"])])
    assert _import(tmp_path, inference, name="eval") is not None


def test_an_initial_state_from_a_graph_input_is_refused(tmp_path, capsys):
    model = _gru_then([], extra=["", "", "h0"],
                      inputs=(("tokens", [None, None, I]), ("h0", [1, None, H])))
    _refused(tmp_path, capsys, model, "GRU node '/rnn/GRU'",
             "initial_h comes from graph input 'h0'")


def test_activations_no_generated_cell_computes_are_refused(tmp_path, capsys):
    """Peepholes, input_forget and Sigmoid / Tanh / Relu import as custom cells
    (tests/interop/test_import_cells.py); other activations, their alpha / beta, activations that
    differ between directions, and clip do not."""
    leaky = _gru_then([], activations=["Sigmoid", "LeakyRelu"], activation_alpha=[0.0, 0.1])
    _refused(tmp_path, capsys, leaky, "GRU node '/rnn/GRU'", "attribute 'activation_alpha'")
    hard = _gru_then([], activations=["HardSigmoid", "Tanh"])
    _refused(tmp_path, capsys, hard, "activations ['HardSigmoid', 'Tanh']: no equation "
             "function computes 'HardSigmoid' as it is (rnnc import writes cells of Sigmoid, "
             "Tanh, Relu)")
    inits = {"W": _w(2, 4 * H, I), "R": _w(2, 4 * H, H)}
    lstm = helper.make_node("LSTM", ["tokens", "W", "R"], ["y"], hidden_size=H, name="bi",
                            direction="bidirectional",
                            activations=["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Relu", "Relu"])
    _refused(tmp_path, capsys, _model([lstm], inits, ["y"]), "LSTM node 'bi'",
             "its directions differ", "runs one cell both ways")
    short = _gru_then([], activations=["Sigmoid"])
    _refused(tmp_path, capsys, short, "the GRU operator takes 2 per direction (f, g), 2 here")


def test_one_direction_or_the_cell_state_alone_is_refused(tmp_path, capsys):
    inits = {"W": _w(2, 4 * H, I), "R": _w(2, 4 * H, H)}
    nodes = [helper.make_node("LSTM", ["tokens", "W", "R"], ["y", "y_h", "y_c"], hidden_size=H,
                              direction="bidirectional", name="bi"),
             _const("bwd", np.array(-1, dtype=np.int64)),
             helper.make_node("Gather", ["y_h", "bwd"], ["h_bwd"], axis=0)]
    _refused(tmp_path, capsys, _model(nodes, inits, ["h_bwd"]),
             "graph output 'h_bwd' keeps one step or one direction of LSTM 'bi' (its Y_h)")
    _refused(tmp_path, capsys, _model(nodes[:1], inits, ["y_c"]), "the cell state")


def test_weights_that_are_computed_are_refused(tmp_path, capsys):
    model = _gru_then([], inputs=(("tokens", [None, None, I]), ("R", [1, 3 * H, H])))
    model.graph.initializer.pop()  # R: a graph input now
    _refused(tmp_path, capsys, model, "its R must be an initializer or a Constant")


def test_names_yaml_reads_otherwise_are_kept_apart(tmp_path):
    """An operator named `true` on a graph input named `null`: the spec's layer and input
    are `true_` and `null_` (written bare, `true` would read back as a boolean)."""
    inits = {"W": _w(1, 4 * H, I), "R": _w(1, 4 * H, H)}
    lstm = helper.make_node("LSTM", ["null", "W", "R"], ["y"], hidden_size=H, name="true")
    model = _model([lstm], inits, ["y"], (("null", [None, None, I]),))
    spec, _, _ = _import(tmp_path, model)
    assert list(spec.inputs) == ["null_"] and spec.layers[0].name == "true_"


def test_a_constant_too_large_to_fold_is_refused(tmp_path, capsys):
    """The walk folds constants (shapes, sizes) with onnx.reference; an Expand, Tile or
    Range of constants that would make 10^10 values is refused before it is made."""
    model = _gru_then([_const("one", np.ones((1, 1), np.float32)),
                       _const("huge", np.array([100000, 100000], np.int64)),
                       helper.make_node("Expand", ["one", "huge"], ["big"], name="grow"),
                       helper.make_node("Add", ["y", "big"], ["out"])])
    _refused(tmp_path, capsys, model, "Expand node 'grow'",
             "would make a constant of 10,000,000,000 values")


# ---------------------------------------------------------------- torch.onnx.export

@pytest.fixture(params=["torchscript", "dynamo"])
def export(request, tmp_path):
    """torch.onnx.export with one of its exporters, to a file; the dynamo one (the default
    in torch 2.9+) needs onnxscript."""
    torch = pytest.importorskip("torch")
    if request.param == "dynamo":
        pytest.importorskip("onnxscript")

    def run(module, x, batch_first=True):
        path = tmp_path / f"{request.param}.onnx"
        axes = (0, 1) if batch_first else (1, 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if request.param == "dynamo":
                dims = {axes[0]: torch.export.Dim("batch"), axes[1]: torch.export.Dim("steps")}
                torch.onnx.export(module, (x,), path, dynamo=True, input_names=["x"],
                                  output_names=["y"], dynamic_shapes=(dims,), verbose=False)
            else:
                torch.onnx.export(module, (x,), path, dynamo=False, input_names=["x"],
                                  output_names=["y"],
                                  dynamic_axes={"x": {axes[0]: "batch", axes[1]: "steps"}})
        return path

    run.kind = request.param
    return run


def _torch_models():
    import torch

    class LastStep(torch.nn.Module):
        """Two bidirectional LSTM layers, batch-first, a head on out[:, -1]."""

        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True)
            self.fc = torch.nn.Linear(2 * H, 3)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.fc(out[:, -1])

    class FinalStates(LastStep):
        """The same on h_n: cat(h_n[-2], h_n[-1]), then tanh."""

        def forward(self, x):
            _, (h, _) = self.rnn(x)
            return torch.tanh(self.fc(torch.cat([h[-2], h[-1]], -1)))

    class BothEnds(LastStep):
        """Forward's last step and backward's first: the final states, taken from out."""

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.fc(torch.cat([out[:, -1, :H], out[:, 0, H:]], -1))

    class Tagger(torch.nn.Module):
        """A GRU and a softmax head at every step."""

        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(I, H, batch_first=True)
            self.fc = torch.nn.Linear(H, 2)

        def forward(self, x):
            return torch.softmax(self.fc(self.gru(x)[0]), -1)

    class Stacked(torch.nn.Module):
        """nn.RNN, two layers, time-major: its output sequence."""

        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.RNN(I, H, num_layers=2)

        def forward(self, x):
            return self.rnn(x)[0]

    return {"last_step": LastStep, "final_states": FinalStates, "both_ends": BothEnds,
            "tagger": Tagger, "stacked": Stacked}


@pytest.mark.parametrize("which", ["last_step", "final_states", "both_ends", "tagger",
                                   "stacked"])
def test_import_a_torch_export(which, export, tmp_path, capsys):
    import torch

    torch.manual_seed(3)
    module = _torch_models()[which]().eval()
    batch_first = which != "stacked"
    x = torch.randn((B, T, I) if batch_first else (T, B, I))
    path = export(module, x, batch_first)
    if which == "stacked" and export.kind == "dynamo":  # it unrolls nn.RNN: no RNN operator
        _refused(tmp_path, capsys, path, "no RNN, LSTM or GRU operator", "dynamo=False")
        return
    spec, params, _ = _import(tmp_path, path)
    if which in ("final_states", "both_ends"):
        assert spec.layers[1].returns == "last"
    inputs = [x.numpy()]
    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape
    if all(d.dim_param for d in dims.dim[:2]):  # other sizes, where the export kept them free
        other = RNG.standard_normal((B + 1, T + 2, I)).astype(np.float32)
        inputs.append(other if batch_first else other.transpose(1, 0, 2).copy())
    for data in inputs:
        (want,) = _onnxruntime(path, {"x": data})
        ours = data if batch_first else data.transpose(1, 0, 2)
        got = rc.run(spec, params, {"x": ours})[spec.outputs[0]]
        if not batch_first:
            got = got.transpose(1, 0, 2)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if which != "stacked":  # a head is named after the graph output it gives
        assert spec.outputs == ["y"]
