"""Compiling a long T at a few steps (rnncompiler.api): the artifact made from the graph
unrolled over a few steps is the one made from the graph unrolled over all T, and it
computes what PyTorch computes at that T.

The artifacts are compared whole (the NumPy module's source, the ONNX models' bytes)
against those compiled at T itself, for every example spec, every truncation and both
backends; the guard that falls back to compiling at T is shown to be what keeps a
too-short unrolling from giving a wrong artifact.
"""

import re
from pathlib import Path

import numpy as np
import pytest

import rnncompiler as rc
from rnncompiler import api
from rnncompiler.backend import get_backend
from rnncompiler.errors import RnncError

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
TRUNCATIONS = {"full": None, "chunk3": "{chunk: 3}", "window3": "{window: 3}"}
TARGETS = [("numpy", None, True), ("onnx", "scan", True), ("onnx", "native", False)]


def with_truncation(text: str, bptt: str | None) -> str:
    if bptt is None or "bptt" in text:
        return text
    return re.sub(r"unroll: \{", f"unroll: {{bptt: {bptt}, ", text, count=1)


def built_steps(monkeypatch) -> list:
    """The step counts api._build unrolls over, as compile_spec runs."""
    seen = []
    build = api._build

    def recording(*args, unrolled_steps, **kwargs):
        seen.append(unrolled_steps)
        return build(*args, unrolled_steps=unrolled_steps, **kwargs)

    monkeypatch.setattr(api, "_build", recording)
    return seen


def compiled_at_all_steps(spec, backend, steps, mode, train):
    return api._build(spec, get_backend(backend), unrolled_steps=steps, steps=steps,
                      train=train, own={"onnx_mode": mode} if mode else {}, state_io=False,
                      level=2)


CASES = [(path, truncation) for path in SPECS for truncation in TRUNCATIONS
         if truncation == "full" or "bptt" not in path.read_text()]


@pytest.mark.parametrize("backend,mode,train", TARGETS, ids=["numpy", "onnx_scan", "onnx_native"])
@pytest.mark.parametrize("path,truncation", CASES,
                         ids=[f"{p.stem}-{t}" for p, t in CASES])
def test_few_steps_give_the_artifact_of_all_steps(path, truncation, backend, mode, train,
                                                  monkeypatch):
    text = with_truncation(path.read_text(), TRUNCATIONS[truncation])
    spec = rc.load_spec_text(text, filename=path.name)
    if train and spec.loss is None:
        pytest.skip("no loss")
    steps = api.representative_steps(spec) + 5
    expected = compiled_at_all_steps(spec, backend, steps, mode, train)
    try:
        expected.fingerprint()
    except RnncError as error:  # native mode refuses feedback and custom cells
        with pytest.raises(RnncError, match=re.escape(str(error).splitlines()[0])):
            rc.compile_spec(spec, backend, steps=steps, train=train, onnx_mode=mode)
        return
    seen = built_steps(monkeypatch)
    artifact = rc.compile_spec(spec, backend, steps=steps, train=train, onnx_mode=mode)
    few = api.representative_steps(spec)
    assert seen == [few, few + 1], "compiled at T itself"
    if hasattr(artifact, "params"):  # the values an ONNX model embeds: the same ones
        expected.params = artifact.params
    assert artifact.fingerprint() == expected.fingerprint()


def test_the_module_states_the_steps_it_takes():
    spec = rc.load_spec(ROOT / "specs" / "sentiment_lstm.yaml")
    source = rc.compile_spec(spec, "numpy", steps=500, train=True).source
    assert '"x": (500, 1),' in source  # INPUTS: T as asked, though built over a few steps
    assert "steps = x.shape[1]" in source and "for t in range(steps):" in source
    module = rc.compile_spec(spec, "numpy", steps=500)
    x = np.zeros((2, 499, 1), dtype=np.float32)
    with pytest.raises(ValueError, match=r"expected shape \[batch, 500, 1\]"):
        module.run(rc.init_params(spec), {"x": x})


def test_artifacts_that_differ_between_few_steps_fall_back_to_all_steps(monkeypatch):
    """One step is too few for a many-to-one LSTM (no step carries a state): its artifact
    differs from two steps', so the guard compiles at T, and the artifact is right."""
    spec = rc.load_spec(ROOT / "specs" / "sentiment_lstm.yaml")
    too_few = api._build(spec, get_backend("numpy"), unrolled_steps=1, steps=30, train=True,
                         own={}, state_io=False, level=2)
    expected = compiled_at_all_steps(spec, "numpy", 30, None, True)
    assert too_few.fingerprint() != expected.fingerprint()  # what no guard would give
    monkeypatch.setattr(api, "representative_steps", lambda spec: 1)
    seen = built_steps(monkeypatch)
    artifact = rc.compile_spec(spec, "numpy", steps=30, train=True)
    assert seen == [1, 2, 30]
    assert artifact.fingerprint() == expected.fingerprint()


def test_unrolled_onnx_models_compile_at_all_steps(monkeypatch):
    spec = rc.load_spec(ROOT / "specs" / "sentiment_lstm.yaml")
    seen = built_steps(monkeypatch)
    rc.compile_spec(spec, "onnx", steps=20, onnx_mode="unrolled")
    assert seen == [20]


@pytest.mark.parametrize("layers", [
    ("lstm", "forward", "last"), ("gru", "bidirectional", "sequence"),
    ("simple", "backward", "sequence"), ("lstm+gru", "forward", "last")])
def test_long_sequences_match_torch(layers, monkeypatch):
    """Loss and every gradient at T = 60, compiled over a few steps, equal PyTorch's."""
    pytest.importorskip("torch")
    from test_bptt_torch import assert_matches_torch
    from test_gradcheck import rnn, with_head

    cells, direction, ret = layers
    if "+" in cells:
        first, second = cells.split("+")
        stack = [rnn("A", first, ret="sequence"), rnn("B", second, input="A", ret=ret)]
    else:
        stack = [rnn("R", cells, direction=direction, ret=ret)]
    seen = built_steps(monkeypatch)
    assert_matches_torch(with_head(stack), "mse", steps=60)
    assert 60 not in seen and len(seen) == 2
