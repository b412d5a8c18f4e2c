"""`rnnc inspect`: structure of the unrolled graph as T grows, exports that round-trip,
pictures that are real images, and gradient flow against PyTorch autograd."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import networkx as nx
import numpy as np
import pytest
from conftest import ROOT

import rnncompiler as rc
from rnncompiler.cli import main
from rnncompiler.inspection import to_dot, to_graphml, to_json

STACKED = str(ROOT / "specs" / "stacked.yaml")


@pytest.mark.parametrize("steps", [2, 7, 30])
def test_text_summary_scales_with_steps(steps, capsys):
    assert main(["inspect", STACKED, "--steps", str(steps)]) == 0
    out = capsys.readouterr().out
    assert f"block RNN1 (simple, forward): {steps} steps x 6 nodes" in out
    assert "RNN1.W_hh  [100, 100]" in out and f"shared by {steps} steps" in out
    assert "parameters: 8 arrays, 30,401 values" in out  # independent of T


def test_json_round_trips_through_networkx(tmp_path):
    graph = rc.unroll(rc.load_spec(STACKED), 4)
    data = json.loads(to_json(graph))
    back = nx.node_link_graph(data, edges="edges")
    assert back.number_of_nodes() == len(graph)
    assert back.number_of_edges() == graph.nx.number_of_edges()
    for node, attrs in back.nodes(data=True):
        assert attrs["op"] == graph[node].op and attrs["step"] == graph[node].step
        assert attrs["shape"] == list(graph[node].shape)
    params = [n for n, a in back.nodes(data=True) if a["op"] == "param"]
    assert len(params) == 8
    w_hh = next(n for n in params if back.nodes[n]["name"] == "RNN2.W_hh")
    assert sorted(back.nodes[u]["step"] for u in back.successors(w_hh)) == [0, 1, 2, 3]
    path = tmp_path / "g.graphml"
    path.write_text(to_graphml(graph))
    assert nx.read_graphml(path).number_of_nodes() == len(graph)


def test_dot_draws_each_parameter_once_and_collapses_long_sequences():
    short, long = (to_dot(rc.unroll(rc.load_spec(STACKED), t)) for t in (3, 40))
    assert short.count('"RNN1.W_hh\\n[100, 100]"') == 1
    assert "more steps" not in short and "... 37 more steps" in long
    assert long.count("cluster_") == 2 * 3  # two layers, three steps shown


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_pictures_are_real_images(suffix, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"g.{suffix}"
    assert main(["inspect", STACKED, "--grad", "-o", str(path)]) == 0
    data = path.read_bytes()
    assert 5_000 < len(data) < 20_000_000
    if suffix == "png":
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert 300 < width < 20_000 and 200 < height < 40_000
    else:
        assert ET.fromstring(data).tag.endswith("svg")


def test_grad_flow_equals_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    spec_path = ROOT / "specs" / "sentiment.yaml"
    spec = rc.load_spec(spec_path)
    params = {k: v.astype(np.float32) for k, v in rc.init_params(spec, seed=3).items()}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 1)).astype(np.float32)
    y = rng.standard_normal((4, 1)).astype(np.float32)
    np.savez(tmp_path / "p.npz", **params)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    out = tmp_path / "flow.png"
    assert main(["inspect", str(spec_path), "--steps", "6", "--grad-flow", "--params",
                 str(tmp_path / "p.npz"), "--inputs", str(tmp_path / "d.npz"), "-o",
                 str(out)]) == 0
    rows = [line.split(",") for line in (tmp_path / "flow.csv").read_text().split()[1:]]
    ours = np.array([float(norm) for _, _, norm in rows])
    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h = torch.zeros(4, 100)
    states = []
    for step in range(6):
        h = torch.tanh(torch.tensor(x[:, step]) @ t["RNN.W_xh"].T + h @ t["RNN.W_hh"].T
                       + t["RNN.b_h"])
        h.retain_grad()
        states.append(h)
    loss = ((h @ t["output.W"].T + t["output.b"] - torch.tensor(y)) ** 2).mean()
    loss.backward()
    theirs = np.array([float(s.grad.norm()) for s in states])
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
