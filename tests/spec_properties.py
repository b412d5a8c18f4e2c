"""What every valid spec must satisfy: the differential fuzzer's properties.

``check_spec`` takes a spec's text and the T to run it at and checks, each against an
independent computation of the same numbers:

- ``check`` accepts it;
- every optimisation level (-O0, -O1, -O2) computes the same outputs, loss and gradients;
- the NumPy backend, the ONNX backend's scan models, its unrolled models and its ``auto``
  models (at -O0 and -O2) agree (and ONNX ``native`` models, where the spec's layers are
  ONNX operators);
- the module ``rnnc compile`` writes computes what the API computes;
- float64 gradients equal central differences of the loss;
- a ``{chunk: k}`` or ``{window: k}`` truncation at least as long as every recurrence
  computes the full gradient;
- a spec with ``checkpoint`` computes what it computes without (full storage);
- the artifact compiled at representative steps computes what the one compiled at T does;
- every pass alone leaves the reference evaluation of the forward and training graphs
  unchanged (translation validation), and leaves them re-rollable into loops.

Training graphs are fed dropout's masks as ``rnnc train`` draws them (``random_data``),
so every comparison of losses and gradients above includes them.

Any exception other than an AssertionError of these checks is a compiler bug.
"""

from __future__ import annotations

import copy
import importlib.util
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from conftest import spec_inputs

import rnncompiler as rc
from rnncompiler import api
from rnncompiler.autodiff.bptt import training_graph
from rnncompiler.frontend.spec import UnrollSpec
from rnncompiler.gradcheck import gradcheck, random_data
from rnncompiler.ir.evaluate import evaluate
from rnncompiler.lowering import make_plan
from rnncompiler.passes.pipeline import LEVELS, optimize

BATCH = 2
LEVEL_NAMES = {0: "-O0", 1: "-O1", 2: "-O2"}


@dataclass
class Case:
    """One drawn spec with its data, in its own dtype and in float64."""

    spec: rc.Spec
    steps: int
    params: dict
    data: dict

    @property
    def inputs(self) -> dict:
        return spec_inputs(self.spec, self.data)


def make_case(text: str, steps: int, *, seed: int = 0, file: str = "fuzz.yaml") -> Case:
    spec = rc.load_spec_text(text, file)
    rng = np.random.default_rng(seed)
    dtype = np.dtype(spec.dtype)
    params = {k: v.astype(dtype) for k, v in rc.init_params(spec, seed=seed).items()}
    data = {k: (v if v.dtype.kind in "iu" else v.astype(dtype))  # lengths and ids stay ints
            for k, v in random_data(spec, steps, BATCH, rng).items()}
    return Case(spec, steps, params, data)


def as_float64(case: Case, bptt=None, checkpoint=None) -> Case:
    spec = copy.copy(case.spec)
    spec.dtype = "float64"
    if bptt is not None:
        spec.unroll = UnrollSpec(case.spec.unroll.steps, bptt)
    if checkpoint is not None:  # "keep": as the spec says; "none": full storage
        unroll = case.spec.unroll
        spec.unroll = UnrollSpec(unroll.steps, unroll.bptt, unroll.k,
                                 unroll.checkpoint if checkpoint == "keep" else None)
    as64 = {k: np.asarray(v, np.float64) for k, v in case.params.items()}
    data = {k: (v if v.dtype.kind in "iu" else np.asarray(v, np.float64))
            for k, v in case.data.items()}
    return Case(spec, case.steps, as64, data)


def tolerance(spec: rc.Spec) -> dict:
    return {"rtol": 1e-9, "atol": 1e-11} if spec.dtype == "float64" else \
        {"rtol": 2e-4, "atol": 2e-5}


def assert_same(got: dict, expected: dict, what: str, **tol) -> None:
    assert got.keys() == expected.keys(), f"{what}: keys {sorted(got)} != {sorted(expected)}"
    for key, value in expected.items():
        np.testing.assert_allclose(np.asarray(got[key], np.float64),
                                   np.asarray(value, np.float64),
                                   err_msg=f"{what}: {key}", **tol)


def outputs(case: Case, **options) -> dict:
    return rc.run(case.spec, case.params, case.inputs, steps=case.steps, **options)


def gradients(case: Case, **options) -> dict:
    loss, grads = rc.loss_and_grads(case.spec, case.params, case.data, steps=case.steps,
                                    **options)
    return {"loss": loss, **grads}


# --- the properties --------------------------------------------------------------------

def check_levels(case: Case) -> tuple[dict, dict]:
    """-O0, -O1 and -O2 compute the same; returns -O0's outputs and gradients."""
    tol = tolerance(case.spec)
    run0, grad0 = outputs(case, level=0), gradients(case, level=0)
    for level in (1, 2):
        assert_same(outputs(case, level=level), run0, f"run {LEVEL_NAMES[level]}", **tol)
        assert_same(gradients(case, level=level), grad0, f"grad {LEVEL_NAMES[level]}", **tol)
    return run0, grad0


def check_onnx(case: Case, run0: dict, grad0: dict) -> None:
    """The ONNX backend's models compute what the NumPy module computes."""
    tol = tolerance(case.spec)
    for mode in ("scan", "unrolled"):
        assert_same(outputs(case, backend="onnx", onnx_mode=mode), run0, f"onnx {mode}", **tol)
    for level in (0, 2):
        assert_same(outputs(case, backend="onnx", onnx_mode="auto", level=level), run0,
                    f"onnx auto {LEVEL_NAMES[level]}", **tol)
    assert_same(gradients(case, backend="onnx"), grad0, "onnx training", **tol)
    if native_applies(case.spec):
        assert_same(outputs(case, backend="onnx", onnx_mode="native"), run0, "onnx native",
                    **tol)


def native_applies(spec: rc.Spec) -> bool:
    """ONNX ``native`` mode maps every recurrent layer onto ONNX's own operators: built-in
    cells without feedback, in float32 (it refuses the others, saying so)."""
    layers = [layer for layer in spec.layers if layer.type == "rnn"]
    return spec.dtype == "float32" and bool(layers) and all(
        layer.cell in NATIVE_CELLS and not layer.feedback for layer in layers)


NATIVE_CELLS = ("simple", "lstm", "gru", "gru_reset_before")


def check_compiled_module(case: Case, run0: dict, grad0: dict) -> None:
    """The module ``rnnc compile --train`` writes computes what the API computes."""
    artifact = rc.compile_spec(case.spec, "numpy", case.steps, train=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated_net.py"
        artifact.save(path)
        loaded = importlib.util.spec_from_file_location("generated_net", path)
        module = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(module)
    tol = tolerance(case.spec)
    assert_same(module.forward(case.params, case.inputs), run0, "compiled forward", **tol)
    loss, grads = module.loss_and_grads(case.params, case.data)
    assert_same({"loss": loss, **grads}, grad0, "compiled loss_and_grads", **tol)


def check_finite_differences(case: Case) -> None:
    """float64 gradients of the full BPTT equal central differences of the loss (along a
    random direction; ``gradcheck`` discounts the differences' own rounding error)."""
    full = as_float64(case, bptt="full")
    for check in gradcheck(full.spec, full.steps, data=full.data, directions=1, level=0):
        assert check.beyond_own_error <= 1e-6, \
            f"grad.{check.name}: {check.worst:.1e} from central differences"


def check_long_truncation(case: Case) -> None:
    """Chunks as long as the longest recurrence, and a window as long as all of them
    together (the most steps an error can travel back), change nothing."""
    full = as_float64(case, bptt="full")
    expected = gradients(full)
    blocks = rc.unroll(full.spec, full.steps).blocks.values()
    longest = max((block.steps for block in blocks), default=1)
    total = sum(block.steps for block in blocks) or 1
    for bptt in ({"chunk": longest}, {"window": total}):
        truncated = as_float64(case, bptt=bptt)
        assert_same(gradients(truncated), expected, f"bptt {bptt}", **tolerance(full.spec))


def check_checkpoint(case: Case) -> None:
    """States kept every k steps, the rest recomputed, give the gradients of full storage
    (float64: the order of the sums over steps changes, by segments)."""
    if case.spec.unroll.checkpoint is None:
        return
    expected = gradients(as_float64(case, checkpoint="none"))
    assert_same(gradients(as_float64(case, checkpoint="keep")), expected,
                f"checkpoint {case.spec.unroll.checkpoint}", rtol=1e-9, atol=1e-11)


def check_representative_steps(case: Case, run0: dict, grad0: dict) -> None:
    """The artifact compiled at a few steps computes what the one compiled at T does."""
    if case.steps <= api.representative_steps(case.spec) + 1:
        return
    backend = rc.backend.get_backend("numpy")
    artifact = api._build(case.spec, backend, unrolled_steps=case.steps, steps=case.steps,
                          train=True, own={}, state_io=False, level=2)
    tol = tolerance(case.spec)
    assert_same(artifact.run(case.params, case.inputs), run0, "compiled at T", **tol)
    loss, grads = artifact.loss_and_grads(case.params, case.data)
    assert_same({"loss": loss, **grads}, grad0, "compiled at T: grad", **tol)


def check_passes(case: Case) -> None:
    """Every pass alone keeps the reference evaluation of the forward and training graphs
    (float64) and keeps them re-rollable; so do all passes together."""
    full = as_float64(case)
    builds = {"forward": lambda: rc.unroll(full.spec, full.steps),
              "training": lambda: training_graph(full.spec, full.steps)}
    for which, build in builds.items():
        data = full.inputs if which == "forward" else full.data
        reference = evaluate(build(), full.params, data)
        for rewrite in [*dict.fromkeys(LEVELS[2]), None]:
            graph = build()
            if rewrite is None:
                optimize(graph, 2, verify=True)
            else:
                rewrite(graph)
                graph.verify()
            make_plan(graph)
            name = rewrite.__name__ if rewrite else "every pass"
            assert_same(evaluate(graph, full.params, data), reference, f"{which}: {name}",
                        rtol=1e-9, atol=1e-11)


def check_spec(text: str, steps: int, *, file: str = "fuzz.yaml", onnx: bool = True,
               passes: bool = True) -> None:
    """Every property on one spec (its ``loss`` required)."""
    case = make_case(text, steps, file=file)
    run0, grad0 = check_levels(case)
    if onnx:
        check_onnx(case, run0, grad0)
    check_compiled_module(case, run0, grad0)
    check_representative_steps(case, run0, grad0)
    check_finite_differences(case)
    check_long_truncation(case)
    check_checkpoint(case)
    if passes:
        check_passes(case)
