"""Embedding tables across frameworks: ``rnnc import`` of a PyTorch state_dict that starts
with an ``nn.Embedding`` (and ``--padding-id``), and the table in PyTorch's, Keras's and
ONNX's layouts (``export-params`` / ``import-params``). The Keras importer's Embedding and
masks are in test_import_keras.py."""

from __future__ import annotations

import numpy as np
import pytest

import rnncompiler as rc
from rnncompiler.cli import main
from rnncompiler.interop.layouts import export_params, import_params, infer_layout, layers_of

torch = pytest.importorskip("torch")

B, T, IDS, E, H = 3, 7, 11, 4, 5

SPEC = f"""
rnnc: 1
name: ids
inputs:
  words: {{classes: {IDS}}}
layers:
  - {{name: embed, type: embedding, input: words, units: {E}, padding_id: 0}}
  - {{name: R, type: rnn, cell: gru, units: {H}, input: embed, return: sequence}}
  - {{name: out, type: dense, units: 2, input: R}}
outputs: [R, out]
unroll: {{steps: {T}}}
"""


class _Classifier(torch.nn.Module):
    """Token ids -> nn.Embedding -> nn.LSTM -> nn.Linear on h_n (many-to-one), or on every
    step (``per_step``)."""

    def __init__(self, padding_idx=None, per_step=False):
        super().__init__()
        self.tokens = torch.nn.Embedding(IDS, E, padding_idx=padding_idx)
        self.lstm = torch.nn.LSTM(E, H, batch_first=True, dropout=0.0)
        self.head = torch.nn.Linear(H, 3)
        self.per_step = per_step

    def forward(self, ids):
        out, (h, _) = self.lstm(self.tokens(ids))
        return self.head(out if self.per_step else h[-1])


def _ids(seed=2):
    return np.random.default_rng(seed).integers(0, IDS, (B, T))


def _import(tmp_path, module, *options, suffix=".pt"):
    state = tmp_path / f"state{suffix}"
    if suffix == ".pt":
        torch.save(module.state_dict(), state)
    else:
        np.savez(state, **{k: v.numpy() for k, v in module.state_dict().items()})
    spec_file, params = tmp_path / "m.yaml", tmp_path / "p.npz"
    assert main(["import", str(state), "-o", str(spec_file), "--params", str(params),
                 *options]) == 0
    return rc.load_spec(spec_file), dict(np.load(params))


@pytest.mark.parametrize("per_step,padding_idx,suffix", [(False, None, ".pt"),
                                                         (True, 0, ".npz"),
                                                         (False, 3, ".pt")])
def test_a_torch_embedding_lstm_linear_imports(per_step, padding_idx, suffix, tmp_path):
    torch.manual_seed(1)
    module = _Classifier(padding_idx, per_step)
    options = ["--return", "sequence"] if per_step else []
    options += [] if padding_idx is None else ["--padding-id", str(padding_idx)]
    spec, params = _import(tmp_path, module, *options, suffix=suffix)
    assert spec.inputs["x"].classes == IDS
    embed = spec.layers[0]
    assert (embed.name, embed.type, embed.units, embed.padding_id) == (
        "tokens", "embedding", E, padding_idx)
    np.testing.assert_array_equal(params["tokens.W"], module.tokens.weight.detach().numpy())
    ids = _ids()
    got = rc.run(spec, params, {"x": ids})["head"]
    want = module(torch.tensor(ids)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_padding_id_is_for_an_embedding_of_a_state_dict(tmp_path, capsys):
    torch.manual_seed(1)
    state = tmp_path / "s.pt"
    torch.save(_Classifier().state_dict(), state)
    args = ["-o", str(tmp_path / "m.yaml"), "--params", str(tmp_path / "p.npz")]
    assert main(["import", str(state), *args, "--padding-id", str(IDS)]) == 1
    assert f"--padding-id {IDS} is not an id of the nn.Embedding 'tokens' (0 to {IDS - 1})" \
        in capsys.readouterr().err
    lstm = torch.nn.LSTM(E, H)
    torch.save({f"rnn.{k}": v for k, v in lstm.state_dict().items()}, state)
    assert main(["import", str(state), *args, "--padding-id", "0"]) == 1
    err = capsys.readouterr().err
    assert "--padding-id is nn.Embedding's padding_idx, but the state_dict has no " \
           "nn.Embedding" in err and err.count("\n") == 1
    keras_file = tmp_path / "m.keras"
    keras_file.write_bytes(b"")
    assert main(["import", str(keras_file), *args, "--padding-id", "0"]) == 2
    assert "--padding-id is for --from torch" in capsys.readouterr().err
    assert not (tmp_path / "m.yaml").exists() and not (tmp_path / "p.npz").exists()


def test_a_first_linear_without_bias_is_no_embedding(tmp_path, capsys):
    """A bias-free nn.Linear [out, in] in front of the GRU stays a dense layer on `in`
    features (the GRU reads `out`); a 2-D first weight that fits neither is refused."""
    torch.manual_seed(3)
    project = torch.nn.Linear(3, E, bias=False)
    gru = torch.nn.GRU(E, H, batch_first=True)
    state = {f"project.{k}": v for k, v in project.state_dict().items()}
    state |= {f"gru.{k}": v for k, v in gru.state_dict().items()}
    torch.save(state, tmp_path / "s.pt")
    spec_file, params = tmp_path / "m.yaml", tmp_path / "p.npz"
    assert main(["import", str(tmp_path / "s.pt"), "-o", str(spec_file), "--params",
                 str(params), "--return", "sequence"]) == 0
    spec = rc.load_spec(spec_file)
    assert spec.inputs["x"].features == 3 and spec.layers[0].type == "dense"
    x = np.random.default_rng(0).standard_normal((B, T, 3)).astype(np.float32)
    want = gru(project(torch.tensor(x)))[0].detach().numpy()
    got = rc.run(spec, dict(np.load(params)), {"x": x})["gru_l0"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    state["project.weight"] = torch.zeros(6, 2)
    torch.save(state, tmp_path / "s.pt")
    assert main(["import", str(tmp_path / "s.pt"), "-o", str(spec_file), "--params",
                 str(params)]) == 1
    assert "state_dict entry 'project.weight' [6, 2], the first and without a bias, is " \
           "neither an nn.Embedding table" in capsys.readouterr().err


# ---------------------------------------------------------------- layouts

def _params():
    spec = rc.load_spec_text(SPEC)
    rng = np.random.default_rng(0)
    return spec, {k: rng.standard_normal(v.shape).astype(v.dtype)
                  for k, v in rc.init_params(spec).items()}


@pytest.mark.parametrize("layout,key", [("torch", "embed.weight"), ("keras", "embed/embeddings"),
                                        ("onnx", "embed.weight")])
def test_the_table_round_trips_in_every_layout(layout, key):
    _, params = _params()
    exported = export_params(params, layout)
    np.testing.assert_array_equal(exported[key], params["embed.W"])  # [classes, units] as ours
    assert layers_of(params)["embed"]["cell"] == "embedding"
    back = import_params(exported, layers_of(params), layout)
    assert set(back) == set(params)
    for name, value in params.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)


def test_exported_to_torch_an_embedding_and_gru_compute_the_same(tmp_path):
    spec, params = _params()
    p, theirs, back = tmp_path / "p.npz", tmp_path / "torch.npz", tmp_path / "back.npz"
    np.savez(p, **params)
    assert main(["export-params", str(p), "--to", "torch", "-o", str(theirs)]) == 0
    exported = dict(np.load(theirs))
    assert infer_layout(exported) == "torch"
    embed, gru = torch.nn.Embedding(IDS, E, padding_idx=0), torch.nn.GRU(E, H, batch_first=True)
    embed.load_state_dict({"weight": torch.tensor(exported["embed.weight"])})
    gru.load_state_dict({k[2:]: torch.tensor(v) for k, v in exported.items()
                         if k.startswith("R.")})
    ids = _ids()
    want = gru(embed(torch.tensor(ids)))[0].detach().numpy()
    np.testing.assert_allclose(rc.run(spec, params, {"words": ids})["R"], want, rtol=1e-5,
                               atol=1e-6)
    spec_file = tmp_path / "ids.yaml"
    spec_file.write_text(SPEC)
    for layout in ("torch", "keras", "onnx"):
        assert main(["export-params", str(p), "--to", layout, "-o", str(theirs)]) == 0
        assert main(["import-params", str(theirs), "--from", layout, "--spec", str(spec_file),
                     "-o", str(back)]) == 0
        for key, value in params.items():
            np.testing.assert_array_equal(np.load(back)[key], value, err_msg=f"{layout} {key}")
