"""decompose_losses: every loss op and loss-gradient op becomes primitive ops that compute
its reference evaluation's numbers, at any batch size and run-time T; no loss op is left
for a backend at any level; compiled models compute the losses as the reference does.

The reference evaluations are checked on their own too, against hand-written formulas and
PyTorch's losses and autograd (where installed)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, SPECS

import rnncompiler as rc
from rnncompiler import api
from rnncompiler.autodiff.bptt import training_graph
from rnncompiler.backend import get_backend
from rnncompiler.gradcheck import random_data
from rnncompiler.ir import ops
from rnncompiler.ir.evaluate import evaluate
from rnncompiler.ir.graph import Graph
from rnncompiler.passes.decompose_losses import FORMULAS, decompose_losses
from rnncompiler.passes.pipeline import LEVELS, optimize

LOSSES = ["mse", "cross_entropy", "masked_mse", "masked_cross_entropy"]
COMPILED_STEPS = 4
# per-example shapes (a vector, sequences of several and of one feature) and, at run
# time, (batch, T): T as compiled and not
SHAPES = [(5,), (COMPILED_STEPS, 3), (COMPILED_STEPS, 1)]
RUNS = [(1, COMPILED_STEPS), (3, COMPILED_STEPS), (2, 7), (4, 2)]


def loss_graph(op: str, shape: tuple) -> Graph:
    """A graph of one loss op (or its gradient, given the loss's cotangent ``g``) on inputs
    ``pred`` and ``target`` of ``shape`` (and ``lengths``, for a masked loss)."""
    graph = Graph("loss", "float64")
    args = [graph.add_input("pred", shape), graph.add_input("target", shape)]
    if op.startswith("masked"):
        lengths = graph.add_input("lengths", ())
        args.append(graph.add("sequence_mask", [lengths, args[0]]))
    if op.endswith("_grad"):
        args.insert(0, graph.add_param("g", (), "zeros", "loss"))
    graph.outputs = {"value": graph.add(op, args)}
    return graph


def loss_data(op: str, shape: tuple, batch: int, steps: int, rng) -> dict:
    """Inputs for ``loss_graph``; cross-entropy targets positive, not summing to one (the
    gradient's Σt factor counts), lengths from 1 to T with one example full."""
    full = (batch, *((steps,) + shape[1:] if len(shape) == 2 else shape))
    data = {"pred": rng.standard_normal(full), "target": rng.standard_normal(full),
            "lengths": np.concatenate([[steps], rng.integers(1, steps + 1, batch - 1)]),
            "g": np.asarray(rng.uniform(0.5, 2.0))}
    if "cross_entropy" in op:
        data["target"] = rng.uniform(0.0, 1.0, full)
    return data


def decomposed(graph: Graph) -> Graph:
    assert decompose_losses(graph)
    graph.verify()
    assert not {data.op for _, data in graph.items()} & set(FORMULAS)
    return graph


def values(graph: Graph, data: dict) -> np.ndarray:
    return evaluate(graph, {"g": data["g"]}, data)["value"]


CASES = [(op, shape) for op in FORMULAS for shape in SHAPES
         if not (op.startswith("masked") and len(shape) == 1)]  # lengths: sequences only


@pytest.mark.parametrize("batch,steps", RUNS)
@pytest.mark.parametrize("op,shape", CASES)
def test_the_decomposition_computes_the_reference(op, shape, batch, steps):
    data = loss_data(op, shape, batch, steps, np.random.default_rng([batch, steps]))
    want = values(loss_graph(op, shape), data)
    got = values(decomposed(loss_graph(op, shape)), data)
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_every_loss_op_has_a_formula():
    """The ops whose reference evaluations ir/ops/losses.py holds, exactly."""
    in_losses = {name for name, op in ops.REGISTRY.items()
                 if op.evaluate is not None and op.evaluate.__module__ == ops.losses.__name__}
    assert in_losses == set(FORMULAS)


def test_the_loss_and_its_gradient_share_their_terms():
    """At O1 the loss and its gradient compute ``p - t`` once: one subtraction of the
    target, read by the loss's square and the gradient's product."""
    spec = rc.load_spec(ROOT / "specs" / "synced.yaml")
    graph = training_graph(spec, COMPILED_STEPS)
    optimize(graph, 1)
    (error,) = graph.users(graph.inputs["y"])
    assert graph[error].op == "sub" and graph[error].place == "error"
    assert [graph[user].op for user in graph.users(error)] == ["mul", "mul"]


# --- the reference evaluations, checked independently ---------------------------------------

def by_hand(op: str, data: dict) -> float:
    """The loss written out, one row (an example's step) at a time."""
    pred, target = data["pred"], data["target"]
    if pred.ndim == 2:
        pred, target = pred[:, None], target[:, None]
    steps = pred.shape[1]
    lengths = data["lengths"] if op.startswith("masked") else [steps] * len(pred)
    total, rows = 0.0, 0
    for example, length in enumerate(lengths):
        for t in range(length):
            p, y = pred[example, t], target[example, t]
            if "mse" in op:
                total += sum((a - b) ** 2 for a, b in zip(p, y))
            else:  # -Σ y log softmax(p), log softmax = p - log Σ exp(p)
                total -= sum(y * (p - np.log(np.exp(p).sum())))
            rows += 1
    return total / (rows * pred.shape[-1] if "mse" in op else rows)


@pytest.mark.parametrize("batch,steps", RUNS)
@pytest.mark.parametrize("op", LOSSES)
def test_the_losses_equal_their_formulas_by_hand(op, batch, steps):
    shape = (COMPILED_STEPS, 3)
    data = loss_data(op, shape, batch, steps, np.random.default_rng([7, batch, steps]))
    got = values(decomposed(loss_graph(op, shape)), data)
    assert got == pytest.approx(by_hand(op, data), rel=1e-12)


@pytest.mark.parametrize("batch,steps", RUNS)
@pytest.mark.parametrize("op", LOSSES)
def test_the_losses_and_gradients_equal_torchs(op, batch, steps):
    """F.mse_loss and F.cross_entropy (probability targets), masked by reduction='none';
    the gradient ops against autograd, times the cotangent g."""
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    shape = (COMPILED_STEPS, 4)
    data = loss_data(op, shape, batch, steps, np.random.default_rng([11, batch, steps]))
    if "cross_entropy" in op:  # PyTorch's probabilities sum to one
        data["target"] /= data["target"].sum(axis=-1, keepdims=True)
    pred = torch.tensor(data["pred"], requires_grad=True)
    target = torch.tensor(data["target"])
    mask = (torch.arange(steps)[None, :] < torch.tensor(data["lengths"])[:, None]).double()
    if "mse" in op:
        each = functional.mse_loss(pred, target, reduction="none")  # [batch, T, features]
        rows = each.mean(dim=-1)
    else:
        rows = functional.cross_entropy(pred.permute(0, 2, 1), target.permute(0, 2, 1),
                                        reduction="none")  # [batch, T]
    loss = (rows * mask).sum() / mask.sum() if op.startswith("masked") else rows.mean()
    loss.backward()
    if op == "mse":
        assert loss.item() == pytest.approx(functional.mse_loss(pred, target).item(), rel=1e-12)
    got = values(decomposed(loss_graph(op, shape)), data)
    assert got == pytest.approx(loss.item(), rel=1e-12)
    gradient = values(decomposed(loss_graph(f"{op}_grad", shape)), data)
    np.testing.assert_allclose(gradient, data["g"] * pred.grad.numpy(), rtol=1e-10,
                               atol=1e-14)


# --- in the pipeline and the backends ---------------------------------------------------------

MASKED_MSE = """\
rnnc: 1
name: masked_mse
dtype: float64
inputs:
  x: {features: 3, lengths: true}
targets:
  y: {features: 2, lengths: true}
layers:
  - {name: R, type: rnn, cell: gru, units: 4, input: x, return: sequence}
  - {name: out, type: dense, units: 2, input: R}
loss: {type: mse, output: out, target: y}
unroll: {steps: 4}
"""


def loss_specs():
    """Every example spec with a loss, and a masked mse (no example spec has one)."""
    specs = {path.stem: rc.load_spec(path) for path in SPECS}
    specs["masked_mse"] = rc.load_spec_text(MASKED_MSE, filename="masked_mse.yaml")
    return {name: spec for name, spec in specs.items() if spec.loss is not None}


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_no_loss_op_is_left_at_any_level(level):
    made = set()
    for name, spec in loss_specs().items():
        graph = training_graph(spec, COMPILED_STEPS)
        made |= {data.op for _, data in graph.items()}
        optimize(graph, level, verify=True)
        left = {data.op for _, data in graph.items()} & set(FORMULAS)
        assert not left, f"{name}: {sorted(left)} left at O{level}"
    assert set(FORMULAS) <= made  # every loss op was there to decompose


TARGETS = {"numpy-O0": ("numpy", {}, 0), "numpy": ("numpy", {}, 2),
           "onnx_scan-O0": ("onnx", {"onnx_mode": "scan"}, 0),
           "onnx_scan": ("onnx", {"onnx_mode": "scan"}, 2),
           "onnx_unrolled": ("onnx", {"onnx_mode": "unrolled"}, 2),
           "onnx_native": ("onnx", {"onnx_mode": "native"}, 2)}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", ["tagger_bilstm", "tagger_lengths", "masked_mse"])
def test_compiled_losses_and_gradients_equal_the_reference(name, target):
    """A cross-entropy, a masked cross-entropy and a masked mse, compiled from the graph
    unrolled over 4 steps and run at 6 (an unrolled ONNX model at its own 4), equal the
    reference evaluation of the training graph with its loss ops (float64)."""
    backend, own, level = TARGETS[target]
    spec = loss_specs()[name]
    spec.dtype = "float64"
    steps = COMPILED_STEPS if own.get("onnx_mode") == "unrolled" else 6
    rng = np.random.default_rng(5)
    params = {key: 0.5 * rng.standard_normal(value.shape)
              for key, value in rc.init_params(spec, seed=0).items()}
    data = random_data(spec, steps, 3, rng)
    want = evaluate(training_graph(spec, steps), params, data)
    artifact = api._build(spec, get_backend(backend), unrolled_steps=COMPILED_STEPS,
                          steps=steps, train=True, own=own, state_io=False, level=level)
    loss, grads = artifact.loss_and_grads(params, data)
    assert float(loss) == pytest.approx(float(want["loss"]), rel=1e-12)
    assert set(grads) == set(want) - {"loss"}
    for key, value in grads.items():
        np.testing.assert_allclose(value, want[key], rtol=1e-9, atol=1e-12, err_msg=key)
