"""Sequences in ``scan`` models are time-major where Scans read and write them
(backends/rnnc_onnx/layouts.py): onnxruntime transposes a scan input or output along any
other axis than the first into a copy at every run. What the models compute is checked
against the oracles in test_onnx_backend.py, test_lengths.py and test_topologies.py; here,
that the copies are gone, and that time-major sums equal batch-first ones.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import SPECS

import rnncompiler as rc
from rnncompiler.frontend.spec import load_spec_text

NETWORK = """
rnnc: 1
name: one_layer
inputs: {{x: {{features: 5}}}}
targets: {{y: {{features: 4}}}}
layers:
  - {{name: rnn, type: rnn, cell: {cell}, units: 4, input: x, return: sequence}}
loss: {{type: mse, output: rnn, target: y}}
unroll: {{steps: 6}}
"""


def scan_axes(model: onnx.ModelProto) -> tuple[list, list]:
    inputs, outputs = [], []
    for node in model.graph.node:
        if node.op_type == "Scan":
            attrs = {a.name: list(a.ints) for a in node.attribute}
            inputs += attrs.get("scan_input_axes", [])
            outputs += attrs.get("scan_output_axes", [])
    return inputs, outputs


def transposed_sequences(model: onnx.ModelProto) -> list[str]:
    return [node.input[0] for node in model.graph.node if node.op_type == "Transpose"
            and list(node.attribute[0].ints) == [1, 0, 2]]


@pytest.mark.parametrize("train", [False, True], ids=["forward", "training"])
@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
def test_one_layer_transposes_its_input_and_target_only(cell, train):
    """Forward: x becomes time-major before its product with W_x (the smallest array), the
    Scan reads that and writes its sequence time-major, one Transpose makes the output.
    Training: the forward Scan's saved values go to the backward Scan as they are, and the
    loss, its gradient and the weight gradients read the sequences time-major (y too)."""
    spec = load_spec_text(NETWORK.format(cell=cell))
    model = rc.compile_spec(spec, "onnx", train=train, onnx_mode="scan").model(
        rc.init_params(spec), train)
    inputs, outputs = scan_axes(model)
    assert set(inputs) == {0} and set(outputs) == {0}
    expected = ["x", "y"] if train else ["x", model.graph.output[0].name]
    if not train:  # the output is written by the Transpose itself
        produced = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Transpose"}
        expected[1] = produced[model.graph.output[0].name]
    assert sorted(transposed_sequences(model)) == sorted(expected)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_scans_write_time_major(path):
    spec = rc.load_spec(path)
    for train in (False, True):
        model = rc.compile_spec(spec, "onnx", train=train, onnx_mode="scan").model(
            rc.init_params(spec), train)
        assert set(scan_axes(model)[1]) <= {0}


def test_time_major_gradients_equal_batch_first_ones(rng):
    """The weight and bias gradients, summed over [T, batch] rows instead of [batch, T]
    rows, against the NumPy module's (the same sums in another order: float64, 1e-12)."""
    text = NETWORK.format(cell="lstm").replace("rnnc: 1", "rnnc: 1\ndtype: float64")
    spec = load_spec_text(text)
    params = rc.init_params(spec)
    feeds = {"x": rng.standard_normal((3, 6, 5)), "y": rng.standard_normal((3, 6, 4))}
    model = rc.compile_spec(spec, "onnx", train=True, onnx_mode="scan").model(params, True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    loss, grads = rc.compile_spec(spec, train=True).loss_and_grads(params, feeds)
    np.testing.assert_allclose(got["loss"], loss, rtol=1e-12)
    for name, value in grads.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-10, atol=1e-14, err_msg=name)
