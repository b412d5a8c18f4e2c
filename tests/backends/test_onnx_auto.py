"""ONNX ``auto`` mode, the default: every LSTM or GRU layer that ONNX's own operator can
compute becomes that operator, the others (simple cells, whose RNN operator is slower than
a Scan; custom cells, feedback, float64) ``Scan`` loops, in one model, at every
optimisation level. Checked against the NumPy backend and against onnxruntime's
operators on their own (``oracles/onnx_rnn.py``)."""

from collections import Counter

import numpy as np
import onnx
import pytest
from conftest import PEEPHOLE_CELL, ROOT
from oracles.onnx_rnn import onnx_rnn_forward
from test_forward_onnx import build, per_direction, rnn_layer, spec_text

import rnncompiler as rc
from rnncompiler.cli import main

LOOPS = ("Scan", "LSTM", "GRU", "RNN")


def loop_ops(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in model.graph.node if n.op_type in LOOPS)


def assert_same(got: dict, want: dict, rtol=1e-5, atol=1e-6) -> None:
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=atol, err_msg=key)


MIXED = spec_text([rnn_layer("low", "lstm", "x", ret="sequence", direction="bidirectional"),
                   rnn_layer("peep", "peephole_lstm", "low", ret="sequence"),
                   rnn_layer("top", "gru", "peep")], {"x": {"features": 3}},
                  outputs=["low", "top"], cells=PEEPHOLE_CELL)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_built_in_layers_are_operators_and_custom_cells_scans_in_one_model(level):
    spec, params, rng = build(MIXED, seed=1)
    x = {"x": rng.standard_normal((3, 6, 3)).astype(np.float32)}
    artifact = rc.compile_spec(spec, "onnx", steps=4, onnx_mode="auto", level=level)
    assert loop_ops(artifact.model(params)) == {"LSTM": 1, "Scan": 1, "GRU": 1}
    got = artifact.run(params, x)  # compiled at 4 steps, run at 6
    assert_same(got, rc.run(spec, params, x, steps=6))
    assert_same(got, rc.run(spec, params, x, steps=6, backend="onnx", onnx_mode="scan"))


def test_the_operator_it_writes_computes_what_onnxruntime_s_operator_does():
    layer = rnn_layer("R", "lstm", "x", ret="sequence", direction="bidirectional")
    spec, params, rng = build(spec_text([layer], {"x": {"features": 3}}), seed=2)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    got = rc.run(spec, params, {"x": x}, steps=5, backend="onnx")  # the default mode
    want = onnx_rnn_forward("lstm", per_direction(params, "R", "bidirectional"), x,
                            direction="bidirectional")
    np.testing.assert_allclose(got["R"], want["Y"], rtol=1e-5, atol=1e-6)


def test_a_simple_cell_stays_a_scan_the_faster_of_the_two():
    """onnxruntime's RNN operator took 1.4-4x as long as the Scan (docs/onnx.md)."""
    spec = rc.load_spec(ROOT / "specs" / "sentiment.yaml")
    params = rc.init_params(spec, seed=0)
    assert set(loop_ops(rc.compile_spec(spec, "onnx").model(params))) == {"Scan"}
    native = rc.compile_spec(spec, "onnx", onnx_mode="native").model(params)
    assert set(loop_ops(native)) == {"RNN"}


def test_default_is_auto_and_training_graphs_stay_scans(tmp_path):
    spec = rc.load_spec(ROOT / "specs" / "sentiment_lstm.yaml")
    artifact = rc.compile_spec(spec, "onnx", train=True)
    params = rc.init_params(spec, seed=0)
    assert loop_ops(artifact.model(params)) == {"LSTM": 1}
    assert set(loop_ops(artifact.model(params, train=True))) == {"Scan"}
    out = tmp_path / "net.onnx"
    assert main(["compile", str(ROOT / "specs" / "sentiment_lstm.yaml"), "--backend", "onnx",
                 "-o", str(out)]) == 0
    assert loop_ops(onnx.load(str(out))) == {"LSTM": 1}


@pytest.mark.parametrize("name,dtype", [("peephole", "float32"), ("caption_generate", "float32"),
                                        ("sentiment_lstm", "float64")])
def test_what_the_operators_cannot_compute_is_a_scan(name, dtype):
    """A custom cell, a layer fed its own output, float64 (the operators have none)."""
    text = (ROOT / "specs" / f"{name}.yaml").read_text()
    spec = rc.load_spec_text(f"dtype: {dtype}\n{text}" if dtype == "float64" else text,
                             filename=f"{name}.yaml")
    artifact = rc.compile_spec(spec, "onnx", onnx_mode="auto")
    assert set(loop_ops(artifact.model(rc.init_params(spec, seed=0)))) == {"Scan"}
