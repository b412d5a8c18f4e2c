"""The generated NumPy module keeps the arrays its loops fill between calls (its
``workspace``), and never those it returns: what one call returned is not changed by the
next, calls running at once in threads do not share them, and a second call allocates
none of them again.
"""

import threading
import tracemalloc

import numpy as np
import pytest
from conftest import ROOT, SPECS

import rnncompiler as rc
from rnncompiler.frontend.spec import load_spec_text


def module_and_data(path):
    spec = rc.load_spec(path)
    module = rc.compile_spec(spec, train=True).namespace()
    data = dict(np.load(ROOT / "specs" / "data" / f"{path.stem}.npz"))
    return module, rc.init_params(spec, seed=3), data


def other_data(data: dict) -> dict:
    """The same shapes (and lengths), other values: class ids one lower (0 stays)."""
    return {name: value if name.endswith(".lengths") else np.maximum(value - 1, 0)
            if value.dtype.kind in "iu" else (value * -0.7 + 0.2).astype(value.dtype)
            for name, value in data.items()}


def copied(values: dict) -> dict:
    return {name: np.array(value, copy=True) for name, value in values.items()}


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_what_a_call_returned_survives_the_next_call(path):
    module, params, data = module_and_data(path)
    outputs = module["forward"](params, data)
    loss, grads = module["loss_and_grads"](params, data)
    kept_outputs, kept_grads = copied(outputs), copied(grads)

    other_outputs = module["forward"](params, other_data(data))
    other_loss, other_grads = module["loss_and_grads"](params, other_data(data))
    assert any(not np.array_equal(other_outputs[k], kept_outputs[k]) for k in outputs)
    assert other_loss != loss
    for name, value in kept_outputs.items():
        np.testing.assert_array_equal(outputs[name], value, err_msg=name)
    for name, value in kept_grads.items():
        np.testing.assert_array_equal(grads[name], value, err_msg=name)

    module.get("release_workspace", lambda: None)()  # a call after it computes the same
    again_loss, again_grads = module["loss_and_grads"](params, other_data(data))
    assert again_loss == other_loss
    for name, value in other_grads.items():
        np.testing.assert_array_equal(again_grads[name], value, err_msg=name)


def test_threads_keep_their_own_arrays():
    module, params, data = module_and_data(ROOT / "specs" / "tagger_bilstm.yaml")
    feeds = [data, other_data(data)]
    expected = [module["loss_and_grads"](params, feed) for feed in feeds]
    results, start = {}, threading.Barrier(2)

    def work(index):
        start.wait()
        results[index] = [module["loss_and_grads"](params, feeds[index]) for _ in range(20)]

    threads = [threading.Thread(target=work, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, (loss, grads) in enumerate(expected):
        for got_loss, got_grads in results[index]:
            assert got_loss == loss
            for name, value in grads.items():
                np.testing.assert_array_equal(got_grads[name], value, err_msg=name)


def test_a_second_call_allocates_the_loop_arrays_no_more():
    spec = rc.load_spec(ROOT / "specs" / "tagger_bilstm.yaml")
    module = rc.compile_spec(spec, train=True)
    namespace = module.namespace()
    params = rc.init_params(spec)
    data = dict(np.load(ROOT / "specs" / "data" / "tagger_bilstm.npz"))
    data = {name: np.repeat(value, 64, axis=0) for name, value in data.items()}  # 512 examples
    kept = sum(line.count("workspace(kept, \"_loss_and_grads_feature_major.")
               for line in module.source.split("\n"))
    assert kept >= 8  # each direction's saved gates and states, its gradients by gate

    peaks = []
    tracemalloc.start()
    try:
        for _ in range(2):
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            namespace["loss_and_grads"](params, data)
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
    finally:
        tracemalloc.stop()
    kept_bytes = sum(array.nbytes for kept in namespace["_workspaces"] for array in kept.values())
    assert kept_bytes > 0.3 * peaks[0]
    assert peaks[1] < peaks[0] - 0.9 * kept_bytes


RETURNED = """
rnnc: 1
name: returned
inputs: {{x: {{features: 3}}}}
targets: {{y: {{features: {width}, sequence: {sequence}}}}}
layers:
  - {{name: rnn, type: rnn, cell: {cell}, units: 4, input: x, return: {returns},
     direction: {direction}}}
loss: {{type: mse, output: rnn, target: y}}
unroll: {{steps: 5}}
"""
LAYERS = [(cell, returns, direction) for cell in ("simple", "lstm", "gru")
          for returns in ("sequence", "last") for direction in ("forward", "bidirectional")]


@pytest.mark.parametrize("cell,returns,direction", LAYERS)
def test_a_returned_layer_is_never_kept(cell, returns, direction, rng):
    """The recurrent layer itself is the output: its sequence, or its last step."""
    width = 8 if direction == "bidirectional" else 4
    spec = load_spec_text(RETURNED.format(cell=cell, returns=returns, direction=direction,
                                          width=width, sequence=returns == "sequence"))
    module = rc.compile_spec(spec, train=True).namespace()
    params = rc.init_params(spec)
    feeds = [{"x": rng.standard_normal((2, 5, 3)).astype(np.float32)} for _ in range(2)]
    first = module["forward"](params, feeds[0])
    kept = copied(first)
    module["forward"](params, feeds[1])
    for name, value in kept.items():
        np.testing.assert_array_equal(first[name], value, err_msg=name)


def test_a_sequence_the_backward_reads_is_kept_once():
    """A simple cell's backward reads h[t], which the layer's sequence holds already: the
    forward fills one array (NumPy) and writes one scan output (ONNX), not two."""
    spec = load_spec_text(RETURNED.format(cell="simple", returns="sequence",
                                          direction="forward", width=4, sequence=True))
    source = rc.compile_spec(spec, train=True).source
    forward_loop = source.split("def loss_and_grads")[1].split("# gradients of layer")[0]
    assert forward_loop.count("[:, t] = ") == 1 and "saved_" not in forward_loop
    model = rc.compile_spec(spec, "onnx", train=True).model(rc.init_params(spec), True)
    scans = [node for node in model.graph.node if node.op_type == "Scan"]
    carried = 1  # h
    assert len(scans[0].output) == carried + 1
