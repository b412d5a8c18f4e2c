"""A backend is a plugin: a third party adds one without touching the core. This one,
``plan``, writes the loop plan (``lowering.make_plan``) as text and runs graphs
with the reference evaluator; registered as an entry point, it works through the API and
every command, with its own suffix and its own option, and the core's checks of backend
options apply to it as to the bundled ones."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import numpy as np
import pytest
from conftest import ROOT

import rnncompiler as rc
from rnncompiler import backend as backends
from rnncompiler.cli import main
from rnncompiler.ir import ops
from rnncompiler.ir.evaluate import evaluate
from rnncompiler.lowering import LoopPlan, make_plan

SPEC = str(ROOT / "specs" / "sentiment_lstm.yaml")


class PlanArtifact:
    def __init__(self, graph, training, options):
        self.graph, self.training, self.options = graph, training, options

    def serialize(self, train: bool = False) -> bytes:
        graph = self.training if train else self.graph
        lines = [f"# {graph.name}, {'training' if train else 'forward'}"]
        for item in make_plan(graph).items:
            if isinstance(item, LoopPlan):
                width = self.options.own.get("width", 1)
                lines.append(f"loop {item.block.name} x{width}: {len(item.body)} statements, "
                             f"carries {sorted(item.carried)}")
            else:
                lines.append(f"{graph[item].op} {graph[item].place}")
        return ("\n".join(lines) + "\n").encode()

    def run(self, params, inputs):
        return evaluate(self.graph, params, inputs)


class PlanBackend(backends.BackendBase):
    name = "plan"
    ops = frozenset(ops.REGISTRY)
    suffix = ".plan"
    options = frozenset({"width"})

    def emit(self, graph, options=None, training=None):
        return PlanArtifact(graph, training, options or backends.EmitOptions())


def add_arguments(group) -> None:
    group.add_argument("--plan-width", dest="width", type=int, default=None,
                       help="how wide to say each loop is")


@pytest.fixture
def installed(monkeypatch):
    """The plan backend and its option, as an installed package registers them."""
    real = backends.entry_points

    def with_plan(*, group):
        found = list(real(group=group))
        if group == backends.GROUP:
            found.append(EntryPoint("plan", "test_backend_plugin:PlanBackend", group))
        if group == backends.CLI_GROUP:
            found.append(EntryPoint("plan", "test_backend_plugin:add_arguments", group))
        return found

    monkeypatch.setattr(backends, "entry_points", with_plan)
    monkeypatch.setattr("rnncompiler.cli.parser.entry_points", with_plan)


def test_a_third_party_backend_runs_through_the_api(installed, rng):
    spec = rc.load_spec(SPEC)
    params = rc.init_params(spec)
    x = rng.standard_normal((2, 3, 1))
    ours = rc.run(spec, params, {"x": x}, backend="plan")
    numpy = rc.run(spec, params, {"x": x})
    np.testing.assert_allclose(ours["output"], numpy["output"], rtol=1e-5, atol=1e-6)


def test_its_suffix_and_option_reach_every_command(installed, tmp_path, capsys):
    out = tmp_path / "net.plan"
    assert main(["compile", SPEC, "-o", str(out), "--plan-width", "4"]) == 0
    assert "(backend plan, from the suffix)" in capsys.readouterr().out
    text = out.read_text()
    assert text.startswith("# sentiment_lstm, forward") and "loop RNN x4: " in text
    assert main(["compile", SPEC, "-o", str(tmp_path / "n.py"), "--plan-width", "4"]) == 1
    assert capsys.readouterr().err.strip() == "error: --plan-width is for --backend plan"
    with pytest.raises(SystemExit):
        main(["compile", "--help"])
    assert "--backend plan:" in capsys.readouterr().out


def test_options_are_the_backends_own(installed):
    spec = rc.load_spec(SPEC)
    with pytest.raises(rc.RnncError, match="backend 'numpy' has no option 'onnx_mode'; its "
                                           "options: none"):
        rc.compile_spec(spec, "numpy", onnx_mode="scan")
    with pytest.raises(rc.RnncError, match="backend 'plan' has no option 'widht' \\(did you "
                                           "mean 'width'\\?\\)"):
        rc.compile_spec(spec, "plan", widht=2)
    assert rc.compile_spec(spec, "numpy", onnx_mode=None)  # None: not given
