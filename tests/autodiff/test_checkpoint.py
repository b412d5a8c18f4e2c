"""Gradient checkpointing (``unroll.checkpoint``): the states kept every k steps, each
segment's forward steps run again in the backward pass (lowering/checkpoints.py).

The gradients must be the exact ones: equal to full storage's (the same spec without
``checkpoint``, float64, to rounding: sums over steps are summed by segments), to PyTorch
autograd's on the same weights, and to central differences of the loss, at k = 1, k
dividing T or not, k >= T and ``auto``, with lengths, dropout, chunks, bidirectional and
stacked layers, on both backends (the ONNX backend keeps full storage: docs/onnx.md).
"""

import math
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from test_bptt_torch import ATOL, RTOL, torch_reference
from test_gradcheck import STEPS, make_case, rnn, with_head

import rnncompiler as rc
from rnncompiler import api
from rnncompiler.backend import get_backend
from rnncompiler.gradcheck import random_data
from rnncompiler.lowering import make_plan

EXAMPLES = Path(__file__).resolve().parents[2] / "specs"
EVERY = [1, 3, STEPS, STEPS + 4, "auto"]  # STEPS = 5: 3 does not divide it
SAME = {"rtol": 1e-10, "atol": 1e-12}


def with_checkpoint(text: str, every) -> str:
    """``text`` with ``checkpoint: every`` added to its (flow-style) unroll section."""
    return re.sub(r"unroll: \{(.*)\}", lambda m: f"unroll: {{{m.group(1)}, checkpoint: {every}}}",
                  text, count=1)


def checkpointed(spec: rc.Spec, every) -> rc.Spec:
    return rc.load_spec_text(with_checkpoint(spec.source.text, every), filename="ckpt.yaml")


def assert_same(got: tuple, want: tuple, what: str, **tol) -> None:
    (got_loss, got_grads), (want_loss, want_grads) = got, want
    np.testing.assert_allclose(got_loss, want_loss, err_msg=f"{what}: loss", **tol)
    assert got_grads.keys() == want_grads.keys()
    for key in want_grads:
        np.testing.assert_allclose(got_grads[key], want_grads[key], err_msg=f"{what}: {key}",
                                   **tol)


TOPOLOGIES = {
    "lstm_many_to_one": [rnn("R", "lstm")],
    "gru_bidirectional_sequence": [rnn("R", "gru", direction="bidirectional", ret="sequence")],
    "simple_backward": [rnn("R", "simple", direction="backward")],
    "stacked_simple_backward_lstm_bidirectional": [
        rnn("L1", "simple", direction="backward", ret="sequence"),
        rnn("L2", "lstm", "L1", direction="bidirectional", units=3)],
    "stacked_lstm_sequence": [rnn("L1", "lstm", ret="sequence"),
                              rnn("L2", "gru", "L1", ret="sequence", units=3)],
}


@pytest.mark.parametrize("every", EVERY)
@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_matches_torch_and_full_storage(name, every):
    layers = with_head(TOPOLOGIES[name])
    spec, params, data = make_case(layers, seed=3)
    full = rc.loss_and_grads(spec, params, data)
    torch_loss, torch_grads = torch_reference(layers, "mse", params, data)
    kept = checkpointed(spec, every)
    for backend in ("numpy", "onnx") if every == 3 else ("numpy",):
        got = rc.loss_and_grads(kept, params, data, backend=backend)
        assert_same(got, full, f"{backend} against full storage", **SAME)
        assert_same(got, (torch_loss, torch_grads), f"{backend} against torch",
                    rtol=RTOL, atol=ATOL)


def central_difference(spec, params, data, direction, epsilon=1e-6) -> float:
    def loss(sign):
        moved = {k: v + sign * epsilon * direction[k] for k, v in params.items()}
        return float(rc.loss_and_grads(spec, moved, data)[0])
    return (loss(1) - loss(-1)) / (2 * epsilon)


LENGTHS_AND_DROPOUT = """
rnnc: 1
name: masked
dtype: float64
inputs: {x: {features: 3, lengths: true}}
targets: {y: {features: 2, lengths: true}}
layers:
  - {name: L1, type: rnn, cell: lstm, units: 4, input: x, return: sequence,
     direction: bidirectional, dropout: 0.3, recurrent_dropout: 0.2}
  - {name: L2, type: rnn, cell: gru, units: 3, input: L1, return: sequence}
  - {name: out, type: dense, units: 2, input: L2}
loss: {type: mse, output: out, target: y}
unroll: {steps: 9, bptt: BPTT}
"""


@pytest.mark.parametrize("bptt", ["full", "{chunk: 4}"])
@pytest.mark.parametrize("every", [1, 2, 9, 20, "auto"])
def test_lengths_dropout_and_chunks(every, bptt):
    """Lengths, dropout's masks and chunks, bidirectional then stacked: equal to full
    storage and, untruncated, to central differences of the checkpointed loss itself."""
    spec = rc.load_spec_text(LENGTHS_AND_DROPOUT.replace("BPTT", bptt), filename="m.yaml")
    rng = np.random.default_rng(5)
    params = {k: rng.normal(0, 0.5, v.shape) for k, v in rc.init_params(spec).items()}
    data = random_data(spec, 9, 3, rng)
    data["x.lengths"] = data["y.lengths"] = np.array([9, 4, 1])
    kept = checkpointed(spec, every)
    got = rc.loss_and_grads(kept, params, data)
    assert_same(got, rc.loss_and_grads(spec, params, data), "against full storage", **SAME)
    if every == 2:
        assert_same(rc.loss_and_grads(kept, params, data, backend="onnx"), got, "onnx", **SAME)
    if bptt != "full":
        return  # (a truncated gradient is not the loss's derivative)
    direction = {k: rng.normal(size=v.shape) for k, v in params.items()}
    derived = sum(float(np.sum(got[1][f"grad.{k}"] * d)) for k, d in direction.items())
    assert derived == pytest.approx(central_difference(kept, params, data, direction),
                                    rel=1e-6, abs=1e-8)


def example_specs():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        spec = rc.load_spec(path)
        if spec.loss is not None:
            yield pytest.param(path, id=path.stem)


@pytest.mark.parametrize("path", example_specs())
def test_example_specs(path):
    """Every example spec with a loss, checkpointed at 3 and auto: full storage's numbers."""
    spec = rc.load_spec(path)
    as64 = rc.load_spec_text(re.sub(r"(?m)^dtype: float32\n", "", path.read_text())
                             .replace("name:", "dtype: float64\nname:", 1), filename=path.name)
    steps = spec.unroll.steps or 6
    rng = np.random.default_rng(0)
    params = {k: v.astype(np.float64) for k, v in rc.init_params(as64).items()}
    data = random_data(as64, steps, 2, rng)
    full = rc.loss_and_grads(as64, params, data, steps=steps)
    text = as64.source.text
    for every in (3, "auto"):
        if "unroll:" not in text:
            kept = rc.load_spec_text(text + f"unroll: {{checkpoint: {every}}}\n", "k.yaml")
        else:
            kept = rc.load_spec_text(re.sub(r"(?m)^unroll: \{", f"unroll: {{checkpoint: {every}, ",
                                            text), filename="k.yaml")
        assert kept.unroll.checkpoint == every
        got = rc.loss_and_grads(kept, params, data, steps=steps)
        assert_same(got, full, f"checkpoint {every}", **SAME)


def test_the_plan_says_what_is_checkpointed():
    """The LSTM's forward loop keeps its states every k steps; its backward loop runs the
    hoisted input product and the batched weight gradients per segment; a plan made for a
    backend that does not print segments (ONNX) keeps full storage."""
    spec, _, _ = make_case(with_head([rnn("R", "lstm")]), steps=8)
    graph = rc.training_graph(checkpointed(spec, 3), 8)
    rc.optimize(graph, 2)
    text = make_plan(graph, checkpoint=True).describe()
    assert "in segments of 3 steps, keeping its states at each one's start" in text
    assert "a segment at a time, each after R's steps again; per segment too: 2 products " \
           "before, 12 sums after" in text
    assert "segment" not in make_plan(graph).describe()


def peak_mib(module, params, data) -> float:
    module.namespace()["release_workspace"]()
    tracemalloc.start()
    module.loss_and_grads(params, data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def test_memory_grows_as_the_square_root_of_t():
    """A many-to-one LSTM's peak memory in loss_and_grads: linear in T with full storage,
    about √T with k = ⌈√T⌉ (16 times T: 4 times the memory)."""
    spec, params, _ = make_case(with_head([rnn("R", "lstm", units=64)]), steps=8)
    peaks = {}
    for every in (None, "auto"):
        chosen = spec if every is None else checkpointed(spec, every)
        for steps in (400, 6400):
            data = {"x": np.ones((1, steps, 2)), "y": np.ones((1, 3))}
            module = rc.compile_spec(chosen, steps=steps, train=True)
            peaks[every, steps] = peak_mib(module, params, data)
    full = peaks[None, 6400] / peaks[None, 400]
    kept = peaks["auto", 6400] / peaks["auto", 400]
    assert full > 12, peaks
    assert kept < 6, peaks
    assert peaks[None, 6400] > 10 * peaks["auto", 6400], peaks
    assert math.isfinite(kept)


@pytest.mark.parametrize("name", ["lstm_many_to_one", "stacked_simple_backward_lstm_bidirectional"])
def test_compiled_at_a_few_steps_for_every_t(name):
    """The module is the same at 8 and 9 unrolled steps, so a long T compiles at a few
    (api.representative_steps) rather than at T itself."""
    spec, _, _ = make_case(with_head(TOPOLOGIES[name]))
    kept = checkpointed(spec, "auto")
    numpy = get_backend("numpy")
    first, second = (api._build(kept, numpy, unrolled_steps=n, steps=1000, train=True, own={},
                                state_io=False, level=2) for n in (8, 9))
    assert first.fingerprint() == second.fingerprint()


def test_check_says_what_training_keeps():
    from rnncompiler.cli.commands import summary

    spec, _, _ = make_case(with_head([rnn("R", "lstm")]))
    assert "T = 5, states kept every 3 steps)" in summary(checkpointed(spec, 3))
    assert "T = 5, states kept every ⌈√T⌉ steps)" in summary(checkpointed(spec, "auto"))
