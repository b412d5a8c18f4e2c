"""Parameters in PyTorch's, Keras's and ONNX's layouts: round trips are exact, and each
framework (or its equations as its documentation gives them) computes with the exported
parameters what we compute with ours."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from conftest import ROOT
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import rnncompiler as rc
from rnncompiler.cli import main
from rnncompiler.errors import RnncError
from rnncompiler.interop.layouts import export_params, import_params, layers_of
from rnncompiler.ir.ops import sigmoid

B, T, I, H = 3, 5, 4, 6
CELLS = ["simple", "lstm", "gru", "gru_reset_before"]


def case(cell, direction, dtype="float64", seed=0):
    spec = rc.load_spec_text(f"""
rnnc: 1
name: case
dtype: {dtype}
inputs: {{x: {{features: {I}}}}}
layers:
  - {{name: R, type: rnn, cell: {cell}, units: {H}, input: x, return: sequence,
     direction: {direction}}}
  - {{name: out, type: dense, units: 2, input: R}}
outputs: [R, out]
unroll: {{steps: {T}}}
""")
    rng = np.random.default_rng(seed)
    params = {k: (0.5 * rng.standard_normal(v.shape)).astype(dtype)
              for k, v in rc.init_params(spec).items()}
    x = rng.standard_normal((B, T, I)).astype(dtype)
    return spec, params, x


@pytest.mark.parametrize("layout", ["torch", "keras", "onnx"])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("cell", CELLS)
def test_round_trip_is_exact(cell, direction, layout):
    _, params, _ = case(cell, direction)
    if layout == "torch" and cell == "gru_reset_before":
        with pytest.raises(RnncError, match="PyTorch has no gru_reset_before cell"):
            export_params(params, layout)
        return
    back = import_params(export_params(params, layout), layers_of(params), layout)
    assert set(back) == set(params)
    for key, value in params.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_torch_computes_the_same_with_exported_params(cell, direction):
    spec, params, x = case(cell, direction)
    exported = export_params(params, "torch")
    module = {"simple": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        I, H, batch_first=True, bidirectional=direction == "bidirectional").double()
    module.load_state_dict({k[2:]: torch.tensor(v) for k, v in exported.items()
                            if k.startswith("R.")})
    want, _ = module(torch.tensor(x))
    got = rc.run(spec, params, {"x": x})["R"]
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_torch_state_dict_imports(cell):
    """Parameters made by PyTorch (its own initialisation, two biases each side)."""
    spec, params, x = case(cell, "bidirectional")
    torch.manual_seed(0)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        I, H, batch_first=True, bidirectional=True).double()
    head = torch.nn.Linear(2 * H, 2).double()
    arrays = {f"R.{k}": v.detach().numpy() for k, v in module.state_dict().items()}
    arrays |= {f"out.{k}": v.detach().numpy() for k, v in head.state_dict().items()}
    ours = import_params(arrays, layers_of(params), "torch")
    got = rc.run(spec, ours, {"x": x})
    seq, _ = module(torch.tensor(x))
    np.testing.assert_allclose(got["R"], seq.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got["out"], head(seq).detach().numpy(), rtol=1e-10, atol=1e-12)


ONNX_OP = {"simple": "RNN", "lstm": "LSTM", "gru": "GRU", "gru_reset_before": "GRU"}


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
@pytest.mark.parametrize("cell", CELLS)
def test_onnxruntime_computes_the_same_with_exported_params(cell, direction):
    spec, params, x = case(cell, direction, dtype="float32")
    exported = export_params(params, "onnx")
    attrs = {"hidden_size": H, "direction": "bidirectional" if direction == "bidirectional"
             else "forward"}
    if cell.startswith("gru"):
        attrs["linear_before_reset"] = int(cell == "gru")
    node = helper.make_node(ONNX_OP[cell], ["X", "W", "R", "B"], ["Y"], **attrs)
    dirs = 2 if direction == "bidirectional" else 1
    graph = helper.make_graph(
        [node], "one", [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                        for n in ("X", "W", "R", "B")],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"X": x.transpose(1, 0, 2).copy(), "W": exported["R.W"],
                              "R": exported["R.R"], "B": exported["R.B"]})
    want = y.transpose(2, 0, 1, 3).reshape(B, T, dirs * H)  # [T, D, B, H] -> [B, T, D*H]
    got = rc.run(spec, params, {"x": x})["R"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _keras_lstm(a, x):
    """Keras's LSTM as its source writes it: z = x K + h R + b, split i, f, c, o."""
    h = c = np.zeros((x.shape[0], a["recurrent_kernel"].shape[0]))
    out = []
    for t in range(x.shape[1]):
        i, f, g, o = np.split(x[:, t] @ a["kernel"] + h @ a["recurrent_kernel"] + a["bias"], 4,
                              axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1)


def _keras_gru(a, x, reset_after):
    """Keras's GRU: gates z, r, h; reset_after: bias (2, 3H), r applied after the product."""
    h = np.zeros((x.shape[0], a["recurrent_kernel"].shape[0]))
    bias = a["bias"] if reset_after else np.stack([a["bias"], np.zeros_like(a["bias"])])
    out = []
    for t in range(x.shape[1]):
        xz, xr, xh = np.split(x[:, t] @ a["kernel"] + bias[0], 3, axis=-1)
        rk = np.split(a["recurrent_kernel"], 3, axis=-1)
        hz, hr = h @ rk[0] + np.split(bias[1], 3)[0], h @ rk[1] + np.split(bias[1], 3)[1]
        z, r = sigmoid(xz + hz), sigmoid(xr + hr)
        hh = r * (h @ rk[2] + np.split(bias[1], 3)[2]) if reset_after else (r * h) @ rk[2]
        h = z * h + (1 - z) * np.tanh(xh + hh)
        out.append(h)
    return np.stack(out, axis=1)


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru_reset_before"])
def test_keras_equations_compute_the_same_with_exported_params(cell):
    spec, params, x = case(cell, "forward")
    exported = export_params(params, "keras")
    a = {k.split("/")[-1]: v for k, v in exported.items() if k.startswith("R/")}
    want = _keras_lstm(a, x) if cell == "lstm" else _keras_gru(a, x, cell == "gru")
    np.testing.assert_allclose(rc.run(spec, params, {"x": x})["R"], want, rtol=1e-10)


def test_cli_round_trip(tmp_path, capsys):
    spec = str(ROOT / "specs" / "tagger_bilstm.yaml")
    p, out, back = tmp_path / "p.npz", tmp_path / "torch.npz", tmp_path / "back.npz"
    assert main(["init", spec, "-o", str(p)]) == 0
    assert main(["export-params", str(p), "--to", "torch", "-o", str(out)]) == 0
    assert main(["import-params", str(out), "--from", "torch", "--spec", spec,
                 "-o", str(back)]) == 0
    for key, value in np.load(p).items():
        np.testing.assert_array_equal(np.load(back)[key], value)
    assert main(["export-params", str(p), "--to", "torch", "-o", str(out)]) == 0
    assert main(["import-params", str(out), "--from", "keras", "--spec", spec,
                 "-o", str(tmp_path / "x.npz")]) == 1
    assert "the arrays are named as torch names them, but --from is keras" in \
        capsys.readouterr().err
    for layout in ("torch", "keras", "onnx"):  # without --from: told by the names
        assert main(["export-params", str(p), "--to", layout, "-o", str(out)]) == 0
        assert main(["import-params", str(out), "--spec", spec, "-o", str(back)]) == 0
        assert f"(read as {layout}'s layout)" in capsys.readouterr().out
        for key, value in np.load(p).items():
            np.testing.assert_array_equal(np.load(back)[key], value)
    np.savez(out, **{"encoder/forward/kernel": np.zeros((2, 2))})  # names it; too few arrays
    assert main(["import-params", str(out), "--spec", spec, "-o", str(back)]) == 1
    assert "missing array 'encoder/forward/recurrent_kernel'" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


# ---------------------------------------------------------------- rnnc import --from torch

class _Stacked(torch.nn.Module):
    """Two bidirectional LSTM layers and a head on h_n (many-to-one)."""

    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.LSTM(I, H, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = torch.nn.Linear(2 * H, 3)

    def forward(self, x):
        _, (h, _) = self.rnn(x)
        return self.fc(torch.cat([h[-2], h[-1]], -1))


class _Tagger(torch.nn.Module):
    """A GRU and a head at every step (synced many-to-many)."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.GRU(I, H, batch_first=True)
        self.head = torch.nn.Linear(H, 2)

    def forward(self, x):
        return self.head(self.encoder(x)[0])


@pytest.mark.parametrize("model,returns,suffix", [(_Stacked, "last", ".pt"),
                                                  (_Tagger, "sequence", ".npz")])
def test_import_a_torch_model(model, returns, suffix, tmp_path):
    torch.manual_seed(1)
    module = model()
    state = tmp_path / f"state{suffix}"
    if suffix == ".pt":
        torch.save(module.state_dict(), state)
    else:  # a state_dict saved without torch's pickle
        np.savez(state, **{k: v.numpy() for k, v in module.state_dict().items()})
    spec_file, params = tmp_path / "m.yaml", tmp_path / "p.npz"
    assert main(["import", str(state), "--from", "torch", "-o", str(spec_file), "--params",
                 str(params), "--return", returns]) == 0
    spec = rc.load_spec(spec_file)
    x = np.random.default_rng(2).standard_normal((B, T, I)).astype(np.float32)
    got = rc.run(spec, dict(np.load(params)), {"x": x})[spec.outputs[0]]
    want = module(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_import_refuses_what_it_cannot_map(tmp_path, capsys):
    np.savez(tmp_path / "s.npz", **{"conv.weight": np.zeros((2, 3, 4))})
    assert main(["import", str(tmp_path / "s.npz"), "--from", "torch", "-o",
                 str(tmp_path / "m.yaml"), "--params", str(tmp_path / "p.npz")]) == 1
    assert f"{tmp_path / 's.npz'}: error: state_dict entry 'conv.weight' is neither an " \
        "nn.RNN/LSTM/GRU, an nn.Linear nor an nn.Embedding parameter" in capsys.readouterr().err
    assert not (tmp_path / "m.yaml").exists() and not (tmp_path / "p.npz").exists()


def test_a_module_named_as_yaml_reads_otherwise(tmp_path):
    """A Linear head named `yes` (YAML's true) after a GRU `null`: layers `null_l0` and
    `yes_`, and the spec reads back."""
    rng = np.random.default_rng(0)
    state = {"null.weight_ih_l0": rng.standard_normal((3 * H, I)),
             "null.weight_hh_l0": rng.standard_normal((3 * H, H)),
             "yes.weight": rng.standard_normal((2, H)), "yes.bias": rng.standard_normal(2)}
    np.savez(tmp_path / "s.npz", **state)
    assert main(["import", str(tmp_path / "s.npz"), "--from", "torch", "-o",
                 str(tmp_path / "m.yaml"), "--params", str(tmp_path / "p.npz")]) == 0
    spec = rc.load_spec(tmp_path / "m.yaml")
    assert [layer.name for layer in spec.layers] == ["null_l0", "yes_"]


@pytest.mark.parametrize("name,content,message", [
    ("bad.npz", b"not a zip", "not an .npz file of a PyTorch state_dict"),
    ("pickled.npz", None, "not a valid .npz file of a PyTorch state_dict"),
    ("missing.pt", False, "no such file"),
])
def test_import_a_file_that_is_no_state_dict(name, content, message, tmp_path, capsys):
    """One located line and no traceback, whatever the file holds (a pickled .npz once
    reached NumPy's own ValueError)."""
    path = tmp_path / name
    if content is None:
        np.savez(path, w=np.array([{"a": 1}], dtype=object))
    elif content:
        path.write_bytes(content)
    assert main(["import", str(path), "--from", "torch", "-o", str(tmp_path / "m.yaml"),
                 "--params", str(tmp_path / "p.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "m.yaml").exists() and not (tmp_path / "p.npz").exists()


# ---------------------------------------------------------------- rnnc import --from onnx

def _onnx_model(cell, direction, layout, rng, bias=True):
    dirs = 2 if direction == "bidirectional" else 1
    gates = {"simple": 1, "lstm": 4}.get(cell, 3)
    inits = {"W": 0.5 * rng.standard_normal((dirs, gates * H, I)),
             "R": 0.5 * rng.standard_normal((dirs, gates * H, H)),
             "B": 0.5 * rng.standard_normal((dirs, 2 * gates * H))}
    names = ["features", "W", "R", "B"] if bias else ["features", "W", "R"]
    attrs = {"hidden_size": H, "direction": direction, "layout": layout}
    if cell.startswith("gru"):
        attrs["linear_before_reset"] = int(cell == "gru")
    node = helper.make_node(ONNX_OP[cell], names, ["Y"], **attrs)
    graph = helper.make_graph(
        [node], "one", [helper.make_tensor_value_info("features", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()
         if k in names])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("layout", [0, 1])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
@pytest.mark.parametrize("cell", CELLS)
def test_import_an_onnx_model(cell, direction, layout, tmp_path):
    rng = np.random.default_rng(3)
    model = _onnx_model(cell, direction, layout, rng, bias=cell != "simple")
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    spec_file, params = tmp_path / "m.yaml", tmp_path / "p.npz"
    assert main(["import", str(path), "--from", "onnx", "-o", str(spec_file),
                 "--params", str(params)]) == 0
    x = rng.standard_normal((B, T, I)).astype(np.float32)  # batch-first, as docs/spec.md says
    if layout:  # onnxruntime runs layout 0 only: the reference implementation runs both
        (y,) = ReferenceEvaluator(model).run(None, {"features": x})
    else:
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        (y,) = session.run(None, {"features": x.transpose(1, 0, 2).copy()})
    # Y: layout 0 [T, D, B, H], layout 1 [B, T, D, H]
    want = (y if layout else y.transpose(2, 0, 1, 3)).reshape(B, T, -1)
    got = rc.run(rc.load_spec(spec_file), dict(np.load(params)), {"features": x})["R"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_import_onnx_refuses_what_it_cannot_map(tmp_path, capsys):
    model = _onnx_model("lstm", "forward", 0, np.random.default_rng(0))
    model.graph.node[0].attribute.append(helper.make_attribute("clip", 1.0))
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    assert main(["import", str(path), "--from", "onnx", "-o", str(tmp_path / "m.yaml"),
                 "--params", str(tmp_path / "p.npz")]) == 1
    assert "attribute 'clip' has no counterpart" in capsys.readouterr().err


def peephole_case(direction):
    """specs/peephole.yaml's cell in a layer R (float32, random parameters)."""
    text = (ROOT / "specs" / "peephole.yaml").read_text()
    cells = text[text.index("cells:"):text.index("layers:")]
    spec = rc.load_spec_text(f"""
rnnc: 1
name: case
inputs: {{x: {{features: {I}}}}}
{cells}layers:
  - {{name: R, type: rnn, cell: peephole_lstm, units: {H}, input: x, return: sequence,
     direction: {direction}}}
unroll: {{steps: {T}}}
""")
    rng = np.random.default_rng(7)
    params = {k: (0.5 * rng.standard_normal(v.shape)).astype(np.float32)
              for k, v in rc.init_params(spec).items()}
    return spec, params, rng.standard_normal((B, T, I)).astype(np.float32)


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_peepholes_export_as_onnx_p(direction):
    """An LSTM with peepholes (p_i, p_f, p_o) goes to ONNX with P [dirs, 3H] (i, o, f) and
    back exactly; onnxruntime's LSTM fed W, R, B, P computes what the spec does."""
    spec, params, x = peephole_case(direction)
    exported = export_params(params, "onnx")
    dirs = 2 if direction == "bidirectional" else 1
    assert exported["R.P"].shape == (dirs, 3 * H)
    back = import_params(exported, layers_of(rc.init_params(spec)), "onnx")
    assert set(back) == set(params)
    for key, value in params.items():
        np.testing.assert_array_equal(back[key], value)
    node = helper.make_node("LSTM", ["X", "W", "R", "B", "", "", "", "P"], ["Y"],
                            hidden_size=H, direction=direction)
    graph = helper.make_graph(
        [node], "one", [helper.make_tensor_value_info(n, TensorProto.FLOAT, None)
                        for n in ("X", "W", "R", "B", "P")],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"X": x.transpose(1, 0, 2).copy(),
                              **{k: exported[f"R.{k}"] for k in "WRBP"}})
    want = y.transpose(2, 0, 1, 3).reshape(B, T, dirs * H)
    np.testing.assert_allclose(rc.run(spec, params, {"x": x})["R"], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layout", ["torch", "keras"])
def test_peepholes_have_no_torch_or_keras_layout(layout):
    _, params, _ = peephole_case("forward")
    with pytest.raises(RnncError, match=f"peepholes has no {layout} layout"):
        export_params(params, layout)
