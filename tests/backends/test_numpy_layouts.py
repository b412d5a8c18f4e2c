"""The generated NumPy module writes every function with a loop in two layouts, batch-major
(chosen for one example) and feature-major (the batch axis last, for more): both compute
the same outputs and gradients, on every example spec, and ``forward`` picks by the batch.
"""

import numpy as np
import pytest
from conftest import ROOT, SPECS

import rnncompiler as rc


def layouts_of(module: dict, name: str):
    return module[f"_{name}_batch_major"], module[f"_{name}_feature_major"]


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_both_layouts_compute_the_same(path):
    spec = rc.load_spec(path)
    module = rc.compile_spec(spec, train=True).namespace()
    if "_forward_feature_major" not in module:  # no loop a step at a time: one layout
        assert "_forward_batch_major" not in module
        return
    params = rc.init_params(spec, seed=3)
    data = dict(np.load(ROOT / "specs" / "data" / f"{path.stem}.npz"))
    batch_major, feature_major = layouts_of(module, "forward")
    expected, got = batch_major(params, data), feature_major(params, data)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        assert got[key].shape == value.shape, key
        np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=1e-5, err_msg=key)
    batch_major, feature_major = layouts_of(module, "loss_and_grads")
    (loss, grads), (got_loss, got_grads) = batch_major(params, data), feature_major(params, data)
    np.testing.assert_allclose(got_loss, loss, rtol=1e-5)
    for key, value in grads.items():
        scale = max(np.abs(value).max(), 1e-6)
        np.testing.assert_allclose(got_grads[key] / scale, value / scale, atol=1e-4,
                                   err_msg=key)


def test_forward_picks_batch_major_for_one_example(monkeypatch):
    spec = rc.load_spec(ROOT / "specs" / "sentiment_lstm.yaml")
    module = rc.compile_spec(spec).namespace()
    params = rc.init_params(spec)
    data = dict(np.load(ROOT / "specs" / "data" / "sentiment_lstm.npz"))
    called = []
    for layout in ("batch_major", "feature_major"):
        function = module[f"_forward_{layout}"]
        module[f"_forward_{layout}"] = lambda p, i, f=function, n=layout: (
            called.append(n), f(p, i))[1]
    one = {name: value[:1] for name, value in data.items()}
    module["forward"](params, one)
    module["forward"](params, data)
    assert called == ["batch_major", "feature_major"]
