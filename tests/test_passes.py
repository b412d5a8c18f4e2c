"""Optimisation passes leave every value unchanged (to rounding), keep the graph valid
and its loops periodic, and do what they say to the graph."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT, SPECS

import rnncompiler as rc
from rnncompiler.autodiff import training_graph
from rnncompiler.evaluate import evaluate
from rnncompiler.passes.pipeline import LEVELS, optimize
from rnncompiler.schedule import schedule


def _graphs(spec):
    return {"forward": lambda: rc.unroll(spec), "training": lambda: training_graph(spec)}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
@pytest.mark.parametrize("which", ["forward", "training"])
def test_every_pass_keeps_values(path, which):
    spec = rc.load_spec(path)
    spec.dtype = "float64"
    params = {k: v.astype(np.float64) for k, v in rc.init_params(spec, seed=4).items()}
    data = {k: v.astype(np.float64)
            for k, v in np.load(ROOT / "specs" / "data" / f"{path.stem}.npz").items()}
    build = _graphs(spec)[which]
    reference = evaluate(build(), params, data)
    for rewrite in LEVELS[2]:  # each pass alone, then all of them
        graph = build()
        rewrite(graph)
        graph.verify()
        schedule(graph)  # still re-rolls into loops
        for key, value in evaluate(graph, params, data).items():
            np.testing.assert_allclose(value, reference[key], rtol=1e-10, atol=1e-12)
    graph = build()
    optimize(graph, 2, verify=True)
    for key, value in evaluate(graph, params, data).items():
        np.testing.assert_allclose(value, reference[key], rtol=1e-10, atol=1e-12)


def _ops(graph):
    return [data["op"] for _, data in graph.nx.nodes(data=True)]


def test_lstm_products_are_fused_hoisted_and_batched():
    spec = rc.load_spec(ROOT / "specs" / "sentiment_lstm.yaml")
    forward = rc.unroll(spec, 20)
    assert _ops(forward).count("matvec") == 20 * 8 + 1  # 8 gate products a step, 1 dense
    optimize(forward, 2)
    # one hoisted product for the inputs, one fused recurrent product a step, the dense
    assert _ops(forward).count("matvec") == 1 + 20 + 1
    assert _ops(forward).count("stack_rows") == 2
    training = training_graph(spec, 20)
    optimize(training, 2)
    per_step = [d for _, d in training.nx.nodes(data=True)
                if d["op"] in ("outer_sum", "sum_batch") and d["step"] is not None]
    assert per_step == []  # every weight gradient is one product after the loop
    assert _ops(training).count("outer_sum") == 8 + 1


def test_levels_give_the_same_gradients(rng):
    spec = rc.load_spec(ROOT / "specs" / "tagger_bilstm.yaml")
    params = rc.init_params(spec, seed=2)
    data = dict(np.load(ROOT / "specs" / "data" / "tagger_bilstm.npz"))
    results = [rc.compile_spec(spec, train=True, level=level).loss_and_grads(params, data)
               for level in (0, 1, 2)]
    for loss, grads in results[1:]:
        np.testing.assert_allclose(loss, results[0][0], rtol=1e-6)
        for key, value in grads.items():
            np.testing.assert_allclose(value, results[0][1][key], rtol=2e-4, atol=1e-6)
