"""The ONNX backend (backends/rnnc_onnx) in all four modes: forward pass against the NumPy
backend and two independent oracles (onnxruntime's own RNN/LSTM/GRU ops, and
onnx.reference), training graph against the NumPy backend and finite differences, the
model's names as docs/spec.md gives them, run-time batch and T, state_io streaming, errors, CLI."""

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import PEEPHOLE_CELL, ROOT
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun
from onnx.reference.ops.op_scan import Scan as _ReferenceScan
from oracles.onnx_rnn import onnx_rnn_forward
from test_forward_onnx import TAGS, build, check_layer, per_direction, rnn_layer, spec_text
from test_oracles import CELLS, DIRECTIONS, param_shapes, state_names

import rnncompiler as rc
from rnncompiler.cli import main
from rnncompiler.errors import RnncError

MODES = ["unrolled", "scan", "native", "auto"]
STEPS = 4


def spec_yaml(body, *, dtype="float64", steps=STEPS, bptt="full", cells=""):
    head = f"rnnc: 1\nname: case\ndtype: {dtype}\n{cells}"
    return f"{head}{body}unroll: {{steps: {steps}, bptt: {bptt}}}\n"


def make(text, seed=0):
    return build(text, seed, np.float64 if "dtype: float64" in text else np.float32)


def make_data(spec, rng, batch=2, steps=STEPS):
    """Random inputs and targets (probability vectors for a cross_entropy loss)."""
    data = {}
    for name, a in {**spec.inputs, **spec.targets}.items():
        value = rng.standard_normal((batch, a.steps or steps, a.features) if a.sequence
                                    else (batch, a.features))
        if name in spec.targets and spec.loss.type == "cross_entropy":
            value = np.exp(value) / np.exp(value).sum(-1, keepdims=True)
        data[name] = value.astype(spec.dtype)
    return data


def inputs_of(spec, data):
    return {k: data[k] for k in spec.inputs}


def assert_same(got, want, rtol=1e-5, atol=1e-6):
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=atol, err_msg=key)


def ort_run(model, feeds):
    """The model on onnxruntime directly, no rnncompiler involved."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {i.name: feeds[i.name]
                                                for i in session.get_inputs()})))


def all_nodes(graph):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from all_nodes(attr.g)


# ---------------------------------------------------------------- 1. forward, every mode

FORWARD = [(c, d, "sequence") for c in CELLS for d in DIRECTIONS] + [
    ("simple", "backward", "last"), ("lstm", "bidirectional", "last"),
    ("gru", "forward", "last"), ("gru_reset_before", "bidirectional", "last")]


@pytest.mark.parametrize("cell,direction,ret", FORWARD)
def test_every_mode_matches_numpy_and_onnx_rnn_ops(cell, direction, ret):
    """The `last` cases also start from given initial states."""
    keys = [tag + s for tag in TAGS[direction] for s in state_names(cell)] * (ret == "last")
    names = {key: "s0_" + key.replace(".", "_") for key in keys}
    layer = rnn_layer("RNN", cell, "x", direction=direction, ret=ret, initial_state=names)
    text = spec_text([layer], {"x": {"features": 2},
                               **{n: {"features": 5, "sequence": "false"} for n in names.values()}})
    spec, params, rng = build(text, seed=11)
    inputs = make_data(spec, rng, batch=3)
    initial = [{s: inputs[names[tag + s]] for s in state_names(cell)}
               for tag in TAGS[direction]] if names else None
    want = onnx_rnn_forward(cell, per_direction(params, "RNN", direction, param_shapes(cell)),
                            inputs["x"], direction=direction, initial=initial)
    reference = rc.run(spec, params, inputs)
    for mode in MODES:
        out = rc.run(spec, params, inputs, backend="onnx", onnx_mode=mode)
        assert_same(out, reference)
        check_layer(out, "RNN", cell, direction, ret, want)
        assert all(v.dtype == np.float32 for v in out.values()), mode


# ---------------------------------------------------------------- 2. training graph

X2 = "inputs: {x: {features: 2}}\n"


def net(io, *layers, loss):
    """Spec text: inputs/targets lines, layers as flow mappings, loss 'type output target'."""
    kind, output, target = loss.split()
    return (io + "layers:\n" + "".join(f"  - {{{layer}}}\n" for layer in layers)
            + f"loss: {{type: {kind}, output: {output}, target: {target}}}\n")


M2O = net(X2 + "targets: {y: {features: 1, sequence: false}}\n",
          "name: RNN, type: rnn, cell: lstm, units: 3, input: x",
          "name: out, type: dense, units: 1, input: RNN", loss="mse out y")
M2M = net(X2 + "targets: {y: {features: 2}}\n",
          "name: RNN, type: rnn, cell: gru, units: 3, input: x, return: sequence",
          "name: out, type: dense, units: 2, input: RNN, activation: tanh", loss="mse out y")
STACKED_BI = net(
    X2 + "targets: {y: {features: 3}}\n",
    "name: L1, type: rnn, cell: lstm, units: 3, input: x, return: sequence, "
    "direction: bidirectional",
    "name: L2, type: rnn, cell: gru_reset_before, units: 3, input: L1, return: sequence, "
    "direction: backward",
    "name: out, type: dense, units: 3, input: L2, activation: softmax",
    loss="cross_entropy out y")
ENC_DEC = net(
    "inputs: {src: {features: 2, steps: 5}, tin: {features: 3, steps: 3}}\n"
    "targets: {tout: {features: 3, steps: 3}}\n",
    "name: enc, type: rnn, cell: lstm, units: 4, input: src",
    "name: dec, type: rnn, cell: lstm, units: 4, input: tin, return: sequence, "
    "initial_state: {h: enc.h, c: enc.c}",
    "name: words, type: dense, units: 3, input: dec, activation: softmax",
    loss="cross_entropy words tout")
CROSS_ENTROPY = M2O.replace("features: 1", "features: 4").replace("mse", "cross_entropy") \
    .replace("units: 1, input: RNN", "units: 4, input: RNN, activation: softmax")
PEEPHOLE = M2O.replace("cell: lstm", "cell: peephole_lstm, direction: bidirectional")
TRAIN = {"many_to_one": (M2O, {}), "many_to_many": (M2M, {}),
         "stacked_bidirectional": (STACKED_BI, {}), "encoder_decoder": (ENC_DEC, {}),
         "cross_entropy": (CROSS_ENTROPY, {}), "peephole": (PEEPHOLE, {"cells": PEEPHOLE_CELL}),
         "bptt_window": (M2M, {"bptt": "{window: 2}"}),
         "bptt_chunk": (M2M, {"bptt": "{chunk: 2}", "steps": 5})}
FULL = [name for name, (_, kw) in TRAIN.items() if "bptt" not in kw]


def train_case(name, dtype="float64"):
    body, kw = TRAIN[name]
    spec, params, rng = make(spec_yaml(body, dtype=dtype, **kw))
    return spec, params, make_data(spec, rng, steps=kw.get("steps", STEPS))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode", ["unrolled", "scan"])
@pytest.mark.parametrize("name", TRAIN)
def test_training_graph_matches_numpy(name, mode, dtype):
    spec, params, data = train_case(name, dtype)
    want_loss, want = rc.loss_and_grads(spec, params, data)
    loss, grads = rc.loss_and_grads(spec, params, data, backend="onnx", onnx_mode=mode)
    rtol, atol = (1e-10, 1e-12) if dtype == "float64" else (1e-4, 1e-6)
    assert np.asarray(loss).shape == () and np.asarray(loss).dtype == np.dtype(dtype)
    np.testing.assert_allclose(loss, want_loss, rtol=rtol)
    assert set(grads) == {f"grad.{k}" for k in params}
    assert_same(grads, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", FULL)
def test_training_graph_matches_finite_differences(name):
    """Directional derivatives of the ONNX graph's own loss (float64, full BPTT)."""
    spec, params, data = train_case(name)
    model = rc.compile_spec(spec, "onnx", train=True, onnx_mode="scan")
    _, grads = model.loss_and_grads(params, data)
    rng, eps = np.random.default_rng(5), 1e-6
    for _ in range(2):
        direction = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        shifted = [model.loss_and_grads({k: v + s * eps * direction[k]
                                         for k, v in params.items()}, data)[0]
                   for s in (1, -1)]
        numeric = (shifted[0] - shifted[1]) / (2 * eps)
        analytic = sum(np.sum(grads[f"grad.{k}"] * d) for k, d in direction.items())
        np.testing.assert_allclose(numeric, analytic, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- 3. the model contract

CONTRACT = spec_yaml(net(
    "inputs: {x: {features: 2}, h0: {features: 3, sequence: false}}\n"
    "targets: {y: {features: 2}}\noutputs: [out, enc]\n",
    "name: enc, type: rnn, cell: lstm, units: 3, input: x, return: sequence, "
    "direction: bidirectional",
    "name: top, type: rnn, cell: gru, units: 3, input: enc, return: sequence, "
    "initial_state: {h: h0}",
    "name: out, type: dense, units: 2, input: top, activation: softmax",
    loss="cross_entropy out y"), dtype="float32", steps=3)


@pytest.mark.parametrize("train", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("mode", MODES)
def test_model_contract(mode, train):
    spec, params, _ = make(CONTRACT)
    model = rc.compile_spec(spec, "onnx", train=True, onnx_mode=mode).model(params, train)
    onnx.checker.check_model(model, full_check=True)
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
    assert max(o.version for o in model.opset_import) >= 17
    assert {n.domain for n in all_nodes(model.graph)} <= {"", "ai.onnx"}
    assert model.producer_name == "rnncompiler" and model.doc_string
    graph = model.graph
    assert [i.name for i in graph.input] == ["x", "h0"] + (["y"] if train else [])
    outputs = {o.name for o in graph.output}
    if train:
        assert outputs == {"loss"} | {f"grad.{k}" for k in params}
    else:
        assert outputs == {"out", "enc", "top.h", *(f"enc.{d}.{s}" for d in ("fwd", "bwd")
                                                     for s in "hc")}
    for value in list(graph.input) + ([] if train else list(graph.output)):
        first = value.type.tensor_type.shape.dim[0]
        assert first.dim_param and not first.dim_value, value.name
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for key, value in params.items():
        np.testing.assert_array_equal(initializers[key], value, err_msg=key)
    ops = Counter(n.op_type for n in all_nodes(graph))  # native trains with a scan graph
    loops = {"native": {"LSTM", "GRU"}, "auto": {"LSTM", "GRU"}, "scan": {"Scan"},
             "unrolled": set()}
    assert {op for op in ("Scan", "LSTM", "GRU", "RNN") if ops[op]} == \
        loops["scan" if train and mode in ("native", "auto") else mode]


@pytest.mark.parametrize("train", [False, True], ids=["inference", "training"])
def test_scan_size_is_independent_of_T_and_unrolled_grows(train):
    spec, params, _ = make(CONTRACT)
    count = {(mode, steps): sum(1 for _ in all_nodes(rc.compile_spec(
        spec, "onnx", steps=steps, train=True, onnx_mode=mode).model(params, train).graph))
        for mode in MODES for steps in (3, 30)}
    assert all(count[mode, 3] == count[mode, 30] for mode in ("scan", "native", "auto"))
    assert count["unrolled", 30] > 5 * count["unrolled", 3] > 5 * count["scan", 3]


# ---------------------------------------------------------------- 4. run-time batch and T

@pytest.mark.parametrize("mode", MODES)
def test_any_batch_runs_the_same_model(mode):
    spec, params, rng = make(CONTRACT)
    model = rc.compile_spec(spec, "onnx", steps=3, onnx_mode=mode).model(params)
    lengths = (3, 11) if mode != "unrolled" else (3,)
    for batch in (2, 7):
        for steps in lengths:
            inputs = inputs_of(spec, make_data(spec, rng, batch, steps))
            assert_same(ort_run(model, inputs), rc.run(spec, params, inputs, steps=steps))


@pytest.mark.parametrize("name", ["many_to_one", "many_to_many"])
def test_scan_model_compiled_at_3_runs_300_steps(name):
    spec, params, _ = make(spec_yaml(TRAIN[name][0], steps=3))
    model = rc.compile_spec(spec, "onnx", steps=3, train=True, onnx_mode="scan")
    rng = np.random.default_rng(2)
    for steps in (3, 300):
        data = make_data(spec, rng, batch=3, steps=steps)
        got = ort_run(model.model(params), data)
        assert_same(got, rc.run(spec, params, inputs_of(spec, data), steps=steps), 1e-9, 1e-12)
        got = ort_run(model.model(params, train=True), data)
        loss, grads = rc.loss_and_grads(spec, params, data, steps=steps)
        assert_same(got, {"loss": loss, **grads}, 1e-8, 1e-12)


# ---------------------------------------------------------------- 5. state_io streaming

STREAM = spec_text([rnn_layer("A", "lstm", "x", ret="sequence", units=3),
                    rnn_layer("B", "gru", "A", ret="sequence", units=4)], {"x": {"features": 2}})


@pytest.mark.parametrize("mode", MODES)
def test_state_io_two_halves_equal_one_run(mode):
    spec, params, rng = build(STREAM, seed=3)
    x = rng.standard_normal((3, 8, 2)).astype(np.float32)
    opts = dict(backend="onnx", onnx_mode=mode, state_io=True)
    model = rc.compile_spec(spec, "onnx", steps=4, onnx_mode=mode, state_io=True)
    assert [i.name for i in model.model(params).graph.input] == ["x", "A.h0", "A.c0", "B.h0"]
    whole = rc.run(spec, params, {"x": x}, steps=8, **opts)
    assert_same(whole, rc.run(spec, params, {"x": x}, steps=8))
    first = rc.run(spec, params, {"x": x[:, :4]}, steps=4, **opts)
    finals = ("A.h", "A.c", "B.h")
    second = rc.run(spec, params, {"x": x[:, 4:], **{f"{k}0": first[k] for k in finals}},
                    steps=4, **opts)
    np.testing.assert_allclose(np.concatenate([first["B"], second["B"]], axis=1), whole["B"],
                               rtol=1e-5, atol=1e-6)
    assert_same({k: second[k] for k in finals}, {k: whole[k] for k in finals})


# ---------------------------------------------------------------- 6. errors

def test_native_mode_refuses_a_custom_cell():
    layer = rnn_layer("Peep", "peephole_lstm", "x")
    spec, params, rng = build(spec_text([layer], {"x": {"features": 2}}, cells=PEEPHOLE_CELL), 0)
    with pytest.raises(RnncError, match=r"(?s)layer Peep.*peephole_lstm.*scan"):
        rc.run(spec, params, make_data(spec, rng), backend="onnx", onnx_mode="native")


@pytest.mark.parametrize("extra,message", [
    (["--backend", "onnx", "--device", "cuda"], "onnxruntime-gpu"),
    (["--backend", "numpy", "--onnx-mode", "scan"], "--onnx-mode")], ids=["cuda", "numpy"])
def test_cli_option_errors_are_one_line(extra, message, tmp_path, capsys):
    if "cuda" in extra and "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    spec, params, out = str(ROOT / "specs" / "synced.yaml"), tmp_path / "p.npz", tmp_path / "o"
    assert main(["init", spec, "-o", str(params)]) == 0
    capsys.readouterr()
    assert main(["run", spec, "--params", str(params), "--inputs",
                 str(ROOT / "specs" / "data" / "synced.npz"), "-o", str(out), *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


# ---------------------------------------------------------------- 7. CLI round trip, oracles

def test_cli_compiled_model_runs_on_plain_onnxruntime(tmp_path):
    spec, data_file = str(ROOT / "specs" / "translate.yaml"), ROOT / "specs/data/translate.npz"
    params, data = tmp_path / "p.npz", dict(np.load(data_file))
    assert main(["init", spec, "-o", str(params), "--seed", "3"]) == 0
    common = [spec, "--params", str(params), "--backend", "onnx"]
    for train, command, out in ((False, "run", "out.npz"), (True, "grad", "grads.npz")):
        path = tmp_path / f"model{int(train)}.onnx"
        assert main(["compile", *common, "-o", str(path)] + ["--train"] * train) == 0
        got = ort_run(onnx.load(path), data)
        assert main([command, *common, "--inputs", str(data_file), "-o",
                     str(tmp_path / out)]) == 0
        want = dict(np.load(tmp_path / out))
        assert_same(got, want, rtol=1e-6, atol=1e-7)
        assert main([command, *common[:3], "--inputs", str(data_file), "-o",
                     str(tmp_path / out)]) == 0  # the NumPy backend
        assert_same(got, dict(np.load(tmp_path / out)), rtol=1e-4, atol=1e-6)


class Scan(_ReferenceScan):  # the name is the op type it overrides
    """onnx.reference's Scan, which handles scan axis 0 only, with any axes and directions."""

    op_domain = ""

    def __init__(self, onnx_node, run_params):
        OpRun.__init__(self, onnx_node, run_params)
        self.input_names, self.output_names = self.body.input_names, self.body.output_names

    def _run(self, *args, context=None, bindings=None, **_):
        n_state = len(args) - self.num_scan_inputs
        n_out = len(self.output_names) - n_state
        seqs = [np.moveaxis(v, a, 0)[::-1 if d else 1] for v, a, d in zip(
            args[n_state:], self.scan_input_axes or [], self.scan_input_directions or [])]
        states, per_step = list(args[:n_state]), [[] for _ in range(n_out)]
        for t in range(seqs[0].shape[0]):
            feeds = dict(context or {})
            feeds.update(zip(self.input_names, states + [s[t] for s in seqs]))
            outs = self._run_body(feeds, bindings=bindings)
            states = list(outs[:n_state])
            for i in range(n_out):
                per_step[i].append(outs[n_state + i])
        for steps, axis, d in zip(per_step, self.scan_output_axes or [],
                                  self.scan_output_directions or []):
            states.append(np.moveaxis(np.stack(steps[::-1] if d else steps), 0, axis))
        return tuple(states)


@pytest.mark.parametrize("train", [False, True], ids=["inference", "training"])
def test_reference_evaluator_agrees_on_a_scan_model(train):
    spec, params, rng = make(CONTRACT)
    model = rc.compile_spec(spec, "onnx", train=True, onnx_mode="scan").model(params, train)
    data = make_data(spec, rng, batch=3, steps=5)
    feeds = {i.name: data[i.name] for i in model.graph.input}
    names = [o.name for o in model.graph.output]
    reference = dict(zip(names, ReferenceEvaluator(model, new_ops=[Scan]).run(None, feeds)))
    assert_same(reference, ort_run(model, feeds))


# ---------------------------------------------------------------- regressions of bugs found

REPEAT = spec_yaml(X2 + """layers:
  - {name: enc, type: rnn, cell: gru, units: 3, input: x}
  - {name: rep, type: repeat, input: enc, steps: 3}
  - {name: dec, type: rnn, cell: simple, units: 3, input: rep, return: sequence}
""", dtype="float32", steps=3)


@pytest.mark.parametrize("mode", ["scan", "native"])
def test_repeat_steps_stay_fixed_when_T_changes(mode):
    spec, params, rng = make(REPEAT)
    model = rc.compile_spec(spec, "onnx", steps=3, onnx_mode=mode)
    x = {"x": rng.standard_normal((2, 5, 2)).astype(np.float32)}
    assert_same(model.run(params, x), rc.run(spec, params, x, steps=5))


def test_fixed_length_input_is_not_declared_T():
    text = ENC_DEC.replace("src: {features: 2, steps: 5}", "src: {features: 2}")
    spec, params, _ = make(spec_yaml(text, steps=3))
    model = rc.compile_spec(spec, "onnx", steps=3, onnx_mode="scan").model(params)
    length = {i.name: i.type.tensor_type.shape.dim[1] for i in model.graph.input}
    assert length["src"].dim_param == "T" and length["tin"].dim_value == 3


def test_native_float64_is_supported_or_a_clear_error():
    spec, params, rng = make(spec_yaml(M2O, dtype="float64"))
    x = inputs_of(spec, make_data(spec, rng))
    try:
        out = rc.run(spec, params, x, backend="onnx", onnx_mode="native")
    except RnncError:
        return
    assert_same(out, rc.run(spec, params, x), 1e-10, 1e-12)


def test_compiled_params_survive_a_later_run():
    spec, params, rng = make(spec_yaml(M2M, dtype="float32"))
    model = rc.compile_spec(spec, "onnx", params=params)
    rc.run(spec, params, inputs_of(spec, make_data(spec, rng)), backend="onnx")
    embedded = {i.name: numpy_helper.to_array(i) for i in model.model().graph.initializer}
    assert all(np.array_equal(embedded[k], v) for k, v in params.items())


def test_params_updated_in_place_are_used():
    spec, params, rng = make(spec_yaml(M2M, dtype="float32"))
    data = make_data(spec, rng)
    onnx_model = rc.compile_spec(spec, "onnx", train=True)
    numpy_model = rc.compile_spec(spec, "numpy", train=True)
    _, grads = onnx_model.loss_and_grads(params, data)
    for key in params:  # one SGD step, in place
        params[key] = params[key] - 0.5 * grads[f"grad.{key}"]
    np.testing.assert_allclose(onnx_model.loss_and_grads(params, data)[0],
                               numpy_model.loss_and_grads(params, data)[0], rtol=1e-5)
