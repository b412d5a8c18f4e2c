"""What the built-in cells do not compute, ``rnnc import`` writes as a custom cell
(rnncompiler/import_cells.py): ONNX LSTM peepholes (``P``), ``input_forget=1`` and
non-default ``activations`` of RNN / LSTM / GRU; Keras SimpleRNN / LSTM / GRU with other
activations; PyTorch ``nn.RNN(nonlinearity='relu')`` with ``--nonlinearity relu``.

Each imported spec computes what the source computes: onnxruntime on the source model
(it honours input_forget and activations; it runs layout 0 only, so layout 1 is checked
against onnx.reference, which honours P and layout but ignores activations and
input_forget), Keras's recorded outputs and gradients (tests/fixtures/keras/
activations.keras, made by real Keras), PyTorch's modules."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from test_import_keras import FIXTURES, edited, imported, needs_h5py, recorded

import rnncompiler as rc
from rnncompiler.cli import main
from rnncompiler.frontend.cells import builtin_cells
from rnncompiler.interop.cells import DEFAULTS, FUNCTIONS, generated_cell

ROOT = Path(__file__).resolve().parents[2]
B, T, I, H = 3, 5, 4, 6
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def compiled_module(spec_file, module_file):
    """`rnnc compile --backend numpy` of ``spec_file`` at T steps, imported."""
    assert main(["compile", str(spec_file), "--backend", "numpy", "-o", str(module_file),
                 "--steps", str(T)]) == 0
    loaded = importlib.util.spec_from_file_location(module_file.stem, module_file)
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- the cells

def test_every_generated_cell_is_a_valid_spec_cell():
    """Each base cell with every choice of activations, peepholes and coupling: a custom
    cell that passes the spec's checks, named apart from the built-ins, with the base
    cell's parameters (less the coupled forget gate's) and peepholes."""
    seen = set()
    for base, defaults in DEFAULTS.items():
        for acts in itertools.product(FUNCTIONS, repeat=len(defaults)):
            for peep, coupled in itertools.product((False, True), repeat=2):
                name, body = generated_cell(base, acts, peep, coupled)
                if body is None:
                    assert (name, acts) == (base, defaults) and not (
                        base == "lstm" and (peep or coupled))
                    continue
                assert name not in builtin_cells() and name.isidentifier()
                spec = rc.load_spec_text(f"rnnc: 1\nname: c\ninputs: {{x: {{features: 2}}}}\n"
                                         f"cells:\n  {name}:\n{body}layers:\n"
                                         f"  - {{name: R, type: rnn, cell: {name}, units: 3, "
                                         "input: x}\n")
                params = set(spec.cells[name].params)
                want = set(builtin_cells()[base].params)
                if base == "lstm":
                    want |= {"p_i", "p_f", "p_o"} if peep else set()
                    want -= {"W_xf", "W_hf", "b_f", "p_f"} if coupled else set()
                assert params == want, name
                seen.add(name)
    n = len(FUNCTIONS)  # simple; gru and gru_reset_before; lstm with peepholes, coupling
    assert len(seen) == n - 1 + 2 * (n ** 2 - 1) + n ** 3 * 4 - 1


# ---------------------------------------------------------------- ONNX

def _op_model(op, dirs=1, layout=0, peepholes=False, seed=0, name="op", **attrs):
    """One operator on a graph input; outputs Y and Y_h as the operator lays them out."""
    rng = np.random.default_rng(seed)
    g = GATES[op]
    inits = {"W": rng.standard_normal((dirs, g * H, I)), "R": rng.standard_normal((dirs, g * H, H)),
             "B": rng.standard_normal((dirs, 2 * g * H))}
    inputs = ["x", "W", "R", "B"]
    if peepholes:
        inits["P"] = rng.standard_normal((dirs, 3 * H))
        inputs += ["", "", "", "P"]
    direction = {1: "forward", 2: "bidirectional"}[dirs]
    node = helper.make_node(op, inputs, ["Y", "Y_h"], hidden_size=H, direction=direction,
                            layout=layout, name=name, **attrs)
    shape = [T, None, I] if layout == 0 else [None, T, I]
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in ("Y", "Y_h")],
        [numpy_helper.from_array((0.5 * v).astype(np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _import_onnx(tmp_path, model, name="m"):
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    spec_file, params = tmp_path / f"{name}.yaml", tmp_path / f"{name}.npz"
    assert main(["import", str(path), "--from", "onnx", "-o", str(spec_file),
                 "--params", str(params), "--name", name]) == 0
    assert main(["check", str(spec_file)]) == 0
    return rc.load_spec(spec_file), dict(np.load(params)), spec_file.read_text()


def _onnxruntime(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def _batch_first(y, layout):
    """Y ([T, D, B, H] or, layout 1, [B, T, D, H]) as a spec gives it: [B, T, D*H]."""
    return (y if layout else y.transpose(2, 0, 1, 3)).reshape(B, T, -1)


CASES = [  # (op, directions, attributes, peepholes, the generated cell)
    ("LSTM", 1, {}, True, "lstm_peephole"),
    ("LSTM", 2, {}, True, "lstm_peephole"),
    ("LSTM", 1, {"input_forget": 1}, False, "lstm_coupled"),
    ("LSTM", 2, {"input_forget": 1}, True, "lstm_peephole_coupled"),
    ("LSTM", 1, {"activations": ["Sigmoid", "Relu", "Tanh"]}, True,
     "lstm_sigmoid_relu_tanh_peephole"),
    ("LSTM", 2, {"activations": ["Tanh", "Tanh", "Relu"] * 2}, False, "lstm_tanh_tanh_relu"),
    ("RNN", 1, {"activations": ["Relu"]}, False, "simple_relu"),
    ("RNN", 2, {"activations": ["Sigmoid", "Sigmoid"]}, False, "simple_sigmoid"),
    ("GRU", 1, {"activations": ["Sigmoid", "Relu"]}, False, "gru_reset_before_sigmoid_relu"),
    ("GRU", 2, {"activations": ["Relu", "Tanh"] * 2, "linear_before_reset": 1}, False,
     "gru_relu_tanh"),
    ("GRU", 1, {"activations": ["Tanh", "Sigmoid"], "linear_before_reset": 1}, False,
     "gru_tanh_sigmoid"),
]


@pytest.mark.parametrize("op,dirs,attrs,peepholes,cell", CASES)
def test_onnx_operators_import_as_custom_cells_computing_what_onnxruntime_does(
        op, dirs, attrs, peepholes, cell, tmp_path):
    model = _op_model(op, dirs, peepholes=peepholes, **attrs)
    spec, params, text = _import_onnx(tmp_path, model)
    layer = spec.layers[0]
    assert (layer.cell, layer.returns) == (cell, "sequence") and f"  {cell}:\n" in text
    x = np.random.default_rng(1).standard_normal((T, B, I)).astype(np.float32)
    y, _ = _onnxruntime(model, x)
    got = rc.run(spec, params, {"x": x.transpose(1, 0, 2)})[layer.name]
    np.testing.assert_allclose(got, _batch_first(y, 0), rtol=1e-5, atol=1e-6)
    plain = _op_model(op, dirs, peepholes=False)  # the same weights, ONNX's default cell
    assert not np.allclose(_onnxruntime(plain, x)[0], y, atol=1e-3)  # onnxruntime honours them


@pytest.mark.parametrize("dirs", [1, 2])
def test_onnx_peepholes_with_layout_1(dirs, tmp_path):
    """onnxruntime runs layout 0 only: onnx.reference runs the layout 1 model, and
    onnxruntime the same operator with layout 0."""
    model = _op_model("LSTM", dirs, layout=1, peepholes=True)
    spec, params, _ = _import_onnx(tmp_path, model)
    assert spec.layers[0].cell == "lstm_peephole"
    x = np.random.default_rng(2).standard_normal((B, T, I)).astype(np.float32)
    got = rc.run(spec, params, {"x": x})[spec.layers[0].name]
    y, _ = ReferenceEvaluator(model).run(None, {"x": x})
    np.testing.assert_allclose(got, _batch_first(y, 1), rtol=1e-5, atol=1e-6)
    y0, _ = _onnxruntime(_op_model("LSTM", dirs, layout=0, peepholes=True),
                         x.transpose(1, 0, 2).copy())
    np.testing.assert_allclose(got, _batch_first(y0, 0), rtol=1e-5, atol=1e-6)


def test_onnx_peephole_cell_is_specs_peephole_yaml(tmp_path):
    """The same equations and parameters (names, shapes, initialisers) as the custom cell
    of specs/peephole.yaml; P's blocks i, o, f become p_i, p_o, p_f."""
    model = _op_model("LSTM", 2, peepholes=True)
    spec, params, _ = _import_onnx(tmp_path, model)
    ours = spec.cells["lstm_peephole"]
    theirs = rc.load_spec(ROOT / "specs" / "peephole.yaml").cells["peephole_lstm"]
    def math(cell):  # the equations as trees (they compare by their math, not where written)
        return [(e.target, e.is_state, e.expr) for e in cell.equations]

    assert math(ours) == math(theirs) and ours.states == theirs.states
    assert {(p.name, p.shape, p.init) for p in ours.params.values()} == \
        {(p.name, p.shape, p.init) for p in theirs.params.values()}
    p = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "P"))
    for index, tag in enumerate(("fwd", "bwd")):
        for gate, block in zip("iof", np.split(p[index], 3)):
            np.testing.assert_array_equal(params[f"{spec.layers[0].name}.{tag}.p_{gate}"], block)


def test_an_imported_custom_cell_trains_and_compiles(tmp_path):
    """`rnnc run` (numpy and ONNX backends), `grad` with a loss added, `compile` to a numpy
    module and to an ONNX model; ONNX's native mode has no operator for a custom cell."""
    model = _op_model("LSTM", 2, peepholes=True, input_forget=1, name="lstm_peephole_coupled")
    spec, params, text = _import_onnx(tmp_path, model)
    assert spec.layers[0].name == "lstm_peephole_coupled"  # the node's name: the cell's differs
    assert spec.layers[0].cell == "lstm_peephole_coupled_2"
    x = np.random.default_rng(3).standard_normal((B, T, I)).astype(np.float32)
    want = _batch_first(_onnxruntime(model, x.transpose(1, 0, 2).copy())[0], 0)
    np.savez(tmp_path / "x.npz", x=x)
    for backend in ("numpy", "onnx"):
        assert main(["run", str(tmp_path / "m.yaml"), "--params", str(tmp_path / "m.npz"),
                     "--inputs", str(tmp_path / "x.npz"), "-o", str(tmp_path / "out.npz"),
                     "--backend", backend]) == 0
        np.testing.assert_allclose(np.load(tmp_path / "out.npz")[spec.layers[0].name], want,
                                   rtol=1e-5, atol=1e-6)
    trained = tmp_path / "train.yaml"
    trained.write_text(text + f"targets: {{y: {{features: {2 * H}}}}}\n"
                              f"loss: {{type: mse, output: {spec.layers[0].name}, target: y}}\n")
    np.savez(tmp_path / "xy.npz", x=x, y=np.zeros((B, T, 2 * H), np.float32))
    assert main(["grad", str(trained), "--params", str(tmp_path / "m.npz"), "--inputs",
                 str(tmp_path / "xy.npz"), "-o", str(tmp_path / "g.npz")]) == 0
    grads = np.load(tmp_path / "g.npz")
    assert {f"grad.{k}" for k in params} == set(grads) - {"loss"}
    assert {k.rsplit(".", 1)[1] for k in params} >= {"p_i", "p_o"} and not any(
        k.endswith((".p_f", ".W_xf", ".b_f")) for k in params)  # coupled: no forget gate
    module = compiled_module(tmp_path / "m.yaml", tmp_path / "ours.py")
    np.testing.assert_allclose(module.forward(params, {"x": x})[spec.layers[0].name], want,
                               rtol=1e-5, atol=1e-6)
    compiled = tmp_path / "ours.onnx"
    assert main(["compile", str(tmp_path / "m.yaml"), "--backend", "onnx", "-o", str(compiled),
                 "--params", str(tmp_path / "m.npz")]) == 0
    session = ort.InferenceSession(str(compiled), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run([spec.layers[0].name], {"x": x})[0], want,
                               rtol=1e-5, atol=1e-6)
    assert main(["compile", str(tmp_path / "m.yaml"), "--backend", "onnx", "--onnx-mode",
                 "native", "-o", str(tmp_path / "native.onnx")]) == 1


# ---------------------------------------------------------------- Keras

@needs_h5py
def test_keras_activations_import_as_custom_cells(tmp_path):
    """A relu SimpleRNN, a bidirectional GRU with a linear candidate and an LSTM with relu
    and tanh gates compute what Keras computed: numpy, ONNX, a compiled module; and
    `rnnc grad` gives Keras's loss and gradients."""
    spec, params = imported("activations", tmp_path)
    assert [layer.cell for layer in spec.layers[:3]] == [
        "simple_relu", "gru_sigmoid_linear", "lstm_tanh_relu_relu"]
    text = (tmp_path / "activations.yaml").read_text()
    assert "n = W_xn @ x[t] + b_xn + r * (W_hn @ h[t-1] + b_hn)" in text  # linear: no function
    assert "h[t] = o * relu(c[t])" in text
    inputs, arrays = recorded("activations")
    want = arrays["out.0"]
    for backend in ("numpy", "onnx"):
        got = rc.run(spec, params, inputs, backend=backend)[spec.outputs[0]]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=backend)
    module = compiled_module(tmp_path / "activations.yaml", tmp_path / "keras_cells.py")
    np.testing.assert_allclose(module.forward(params, inputs)[spec.outputs[0]], want, rtol=1e-5,
                               atol=1e-6)
    np.savez(tmp_path / "xy.npz", **inputs, **{spec.loss.target: arrays["target.0"]})
    assert main(["grad", str(tmp_path / "activations.yaml"), "--params",
                 str(tmp_path / "activations.npz"), "--inputs", str(tmp_path / "xy.npz"),
                 "-o", str(tmp_path / "g.npz")]) == 0
    got = dict(np.load(tmp_path / "g.npz"))
    np.testing.assert_allclose(got["loss"], arrays["loss"], rtol=1e-5)
    # Keras's gradients, laid out as its weights, read as weights give ours; of a GRU's
    # bias [input, recurrent] only one side of r and z counts (our cell has one bias each)
    from rnncompiler.interop.from_keras import keras_spec, read_keras

    grads = {k[len("grad/"):]: v.copy() for k, v in arrays.items() if k.startswith("grad/")}
    for key, grad in grads.items():
        if key.endswith("cell/vars/2") and grad.ndim == 2:
            grad[1, :2 * grad.shape[1] // 3] = 0
    config, _, _ = read_keras(FIXTURES / "activations.keras")
    _, wanted = keras_spec(config, grads, "activations")
    assert {f"grad.{k}" for k in wanted} == set(got) - {"loss"}
    for key, value in wanted.items():
        np.testing.assert_allclose(got[f"grad.{key}"], value, rtol=1e-4, atol=1e-6, err_msg=key)


@needs_h5py
def test_keras_hard_sigmoid_gates_import(tmp_path):
    """Keras 2's default gates (hard_sigmoid, kept by older models) import as relu(a/6 + 0.5)
    - relu(a/6 - 0.5): the outputs, loss and gradients Keras computed."""
    spec, params = imported("hard_sigmoid", tmp_path)
    assert [layer.cell for layer in spec.layers[:2]] == [
        "lstm_hard_sigmoid_tanh_tanh", "gru_hard_sigmoid_tanh"]
    inputs, arrays = recorded("hard_sigmoid")
    for backend in ("numpy", "onnx"):
        got = rc.run(spec, params, inputs, backend=backend)[spec.outputs[0]]
        np.testing.assert_allclose(got, arrays["out.0"], rtol=1e-5, atol=1e-6, err_msg=backend)
    loss, _ = rc.loss_and_grads(spec, params, {**inputs, spec.loss.target: arrays["target.0"]})
    np.testing.assert_allclose(loss, arrays["loss"], rtol=1e-5)


@needs_h5py
def test_keras_generated_cells_are_named_apart_from_layers(tmp_path):
    """A Keras layer named as a generated cell keeps its name; the cell takes another."""
    def rename(layers):
        layers[1]["config"]["name"] = "simple_relu"

    source = edited(tmp_path, "activations", rename)
    assert main(["import", str(source), "--from", "keras", "-o", str(tmp_path / "m.yaml"),
                 "--params", str(tmp_path / "m.npz")]) == 0
    spec = rc.load_spec(tmp_path / "m.yaml")
    assert spec.layers[0].name == "simple_relu" and spec.layers[0].cell != "simple_relu"
    assert spec.layers[0].cell in spec.cells
    inputs, arrays = recorded("activations")
    got = rc.run(spec, dict(np.load(tmp_path / "m.npz")), inputs)[spec.outputs[0]]
    np.testing.assert_allclose(got, arrays["out.0"], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- PyTorch

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="needs torch")


def _relu_rnn():
    """Two bidirectional relu nn.RNN layers and a head on h_n."""
    import torch

    class ReluRNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.RNN(I, H, num_layers=2, nonlinearity="relu", batch_first=True,
                                    bidirectional=True)
            self.fc = torch.nn.Linear(2 * H, 3)

        def forward(self, x):
            _, h = self.rnn(x)
            return self.fc(torch.cat([h[-2], h[-1]], -1))

    torch.manual_seed(4)
    return ReluRNN()


@needs_torch
def test_torch_relu_rnn_imports_with_nonlinearity_relu(tmp_path):
    import torch

    module = _relu_rnn()
    state = tmp_path / "state.pt"
    torch.save(module.state_dict(), state)
    x = np.random.default_rng(5).standard_normal((B, T, I)).astype(np.float32)
    want = module(torch.tensor(x)).detach().numpy()
    results = {}
    for nonlinearity in ("relu", "tanh"):
        spec_file, params = tmp_path / f"{nonlinearity}.yaml", tmp_path / f"{nonlinearity}.npz"
        assert main(["import", str(state), "--from", "torch", "-o", str(spec_file), "--params",
                     str(params), "--nonlinearity", nonlinearity]) == 0
        assert main(["check", str(spec_file)]) == 0
        spec = rc.load_spec(spec_file)
        results[nonlinearity] = spec, rc.run(spec, dict(np.load(params)), {"x": x})["fc"]
    spec, got = results["relu"]
    assert [layer.cell for layer in spec.layers[:2]] == ["simple_relu", "simple_relu"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert [layer.cell for layer in results["tanh"][0].layers[:2]] == ["simple", "simple"]
    assert not np.allclose(results["tanh"][1], want, atol=1e-3)  # the flag is what tells


@needs_torch
def test_nonlinearity_is_for_torch_and_nn_rnn(tmp_path, capsys):
    import torch

    args = ["-o", str(tmp_path / "m.yaml"), "--params", str(tmp_path / "p.npz"),
            "--nonlinearity", "relu"]
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(_op_model("RNN").SerializeToString())
    assert main(["import", str(onnx_file), "--from", "onnx", *args]) == 2
    assert "--nonlinearity is for --from torch" in capsys.readouterr().err
    assert main(["import", str(onnx_file), "--from", "onnx", *args[:4], "--return",
                 "sequence"]) == 2
    assert "--return is for --from torch" in capsys.readouterr().err
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(I, H)
    np.savez(tmp_path / "lstm.npz", **{f"rnn.{k}": v.numpy() for k, v in
                                         lstm.state_dict().items()})
    assert main(["import", str(tmp_path / "lstm.npz"), "--from", "torch", *args]) == 1
    assert "the state_dict has no nn.RNN module" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.yaml")) and not (tmp_path / "p.npz").exists()
