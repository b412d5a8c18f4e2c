"""Every example in specs/ checks, runs through the CLI, and matches the reference
interpreter; the generated module runs where rnncompiler cannot be imported."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import ROOT, SPECS, spec_inputs

import rnncompiler as rc
from rnncompiler.cli import main
from rnncompiler.ir.evaluate import evaluate


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_example_runs_through_the_cli(path, tmp_path, capsys):
    params, out = tmp_path / "params.npz", tmp_path / "out.npz"
    data = ROOT / "specs" / "data" / f"{path.stem}.npz"
    assert main(["check", str(path)]) == 0
    assert main(["init", str(path), "-o", str(params), "--seed", "3"]) == 0
    assert main(["run", str(path), "--params", str(params), "--inputs", str(data),
                 "-o", str(out)]) == 0
    spec = rc.load_spec(path)
    written = dict(np.load(out))
    expected = set(spec.outputs)
    for layer in spec.layers:
        if layer.type == "rnn":
            for direction in layer.directions:
                prefix = f"{layer.name}.{direction + '.' if direction else ''}"
                expected |= {prefix + s for s in spec.cells[layer.cell].states}
    assert set(written) == expected
    inputs = spec_inputs(spec, dict(np.load(data)))
    reference = evaluate(rc.unroll(spec, None), dict(np.load(params)), inputs)
    for name, value in reference.items():  # float32, the products' sums in BLAS's order
        np.testing.assert_allclose(written[name], value, rtol=1e-5, atol=1e-6)
        assert written[name].dtype == np.float32


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_example_grad_through_the_cli(path, tmp_path):
    """`rnnc grad` on every example: its loss equals the loss computed here from `rnnc run`'s
    outputs, and every parameter gets a finite gradient of its shape."""
    params, out, grads = tmp_path / "p.npz", tmp_path / "o.npz", tmp_path / "g.npz"
    data_file = ROOT / "specs" / "data" / f"{path.stem}.npz"
    assert main(["init", str(path), "-o", str(params), "--seed", "1"]) == 0
    assert main(["run", str(path), "--params", str(params), "--inputs", str(data_file),
                 "-o", str(out)]) == 0
    assert main(["grad", str(path), "--params", str(params), "--inputs", str(data_file),
                 "-o", str(grads)]) == 0
    spec = rc.load_spec(path)
    data, written, gradients = dict(np.load(data_file)), dict(np.load(out)), dict(np.load(grads))
    if spec.loss.output not in written:
        return  # the loss is on a layer that is not an output
    prediction, target = written[spec.loss.output], data[spec.loss.target]
    if spec.targets[spec.loss.target].classes is not None:  # class ids: their one-hot rows
        target = np.eye(prediction.shape[-1])[target]
    counted = np.ones(target.shape[:-1] + (1,))  # the steps that count: all, or each length
    lengths = [key for key in data if key.endswith(".lengths")]
    if target.ndim == 3 and lengths:
        counted = (np.arange(target.shape[1]) < data[lengths[0]][:, None])[..., None]
    if spec.loss.type == "mse":
        expected = ((prediction - target) ** 2 * counted).sum() / (counted.sum()
                                                                   * target.shape[-1])
    else:  # from the logits: a softmax layer's output, or the output itself
        layer = spec.layer(spec.loss.output)
        logits = np.log(prediction) if layer.activation == "softmax" else prediction
        log_softmax = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        per_row = -(target * log_softmax).sum(axis=-1, keepdims=True)
        expected = (per_row * counted).sum() / counted.sum()
    np.testing.assert_allclose(gradients["loss"], expected, rtol=1e-5)
    for key, value in np.load(params).items():
        assert gradients[f"grad.{key}"].shape == value.shape
        assert np.all(np.isfinite(gradients[f"grad.{key}"]))


@pytest.mark.parametrize("name", ["sentiment", "tagger_bilstm", "translate", "peephole"])
def test_generated_module_is_standalone(name, tmp_path):
    module = tmp_path / f"{name}_net.py"
    spec_path = ROOT / "specs" / f"{name}.yaml"
    assert main(["compile", str(spec_path), "--backend", "numpy", "-o", str(module)]) == 0
    imports = {alias.name for node in ast.walk(ast.parse(module.read_text()))
               if isinstance(node, ast.Import) for alias in node.names}
    imports |= {node.module for node in ast.walk(ast.parse(module.read_text()))
                if isinstance(node, ast.ImportFrom)}
    assert imports == {"numpy"}
    spec = rc.load_spec(spec_path)
    inputs = spec_inputs(spec, dict(np.load(ROOT / "specs" / "data" / f"{name}.npz")))
    np.savez(tmp_path / "inputs.npz", **inputs)
    # A fresh interpreter in which importing rnncompiler (or its backend) fails.
    script = textwrap.dedent(f"""
        import sys
        class Refuse:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("rnncompiler", "rnnc_numpy"):
                    raise ImportError("rnncompiler must not be needed")
        sys.meta_path.insert(0, Refuse())
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np
        import {name}_net as net
        params = net.init_params(seed=5)
        outputs = net.forward(params, dict(np.load({str(tmp_path / 'inputs.npz')!r})))
        np.savez({str(tmp_path / 'out.npz')!r}, **outputs)
        np.savez({str(tmp_path / 'params.npz')!r}, **params)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    params = dict(np.load(tmp_path / "params.npz"))
    for key, value in rc.init_params(spec, seed=5).items():
        np.testing.assert_array_equal(params[key], value)  # same as `rnnc init --seed 5`
    outputs = dict(np.load(tmp_path / "out.npz"))
    reference = evaluate(rc.unroll(spec), params, inputs)
    for key, value in reference.items():
        np.testing.assert_allclose(outputs[key], value, rtol=1e-5, atol=1e-6)


def test_generated_module_reads_like_the_equations(tmp_path):
    source = rc.compile_spec(rc.load_spec(ROOT / "specs" / "sentiment_lstm.yaml")).source
    assert "for t in range(steps):" in source  # T read off the inputs
    assert "# c[t] = f * c[t-1] + i * g" in source
    assert "RNN_c = f * RNN_c + i * g" in source
    code = [line for line in source.splitlines() if not line.lstrip().startswith("#")]
    # i, f and o: one sigmoid over the three gates' slice of the fused product
    assert sum(" = sigmoid(" in line for line in code) == 2  # once in each layout
    assert "i_f_o = sigmoid(" in source
    # the hoisted input product: one 2-D product over every example's steps, into an array
    # kept between calls, its biases added in it
    assert "np.matmul(x.reshape(-1, 1), np.concatenate([RNN_W_xi, RNN_W_xf, RNN_W_xo, " \
        "RNN_W_xc], axis=0).T, out=gates_i_1_all_biased.reshape(-1, 400))" in source
    assert "+= np.concatenate([RNN_b_i, RNN_b_f, RNN_b_o, RNN_b_c], axis=-1)" in source
    compile(source, "generated", "exec")


def test_generated_module_checks_its_inputs():
    module = rc.compile_spec(rc.load_spec(ROOT / "specs" / "sentiment.yaml"))
    params = rc.init_params(rc.load_spec(ROOT / "specs" / "sentiment.yaml"))
    with pytest.raises(ValueError, match=r"input 'x': expected shape \[batch, 3, 1\]"):
        module.run(params, {"x": np.zeros((2, 4, 1))})


def test_a_step_the_loop_reads_twice_is_read_once():
    """Each `[:, t]` is a NumPy call, and at batch 1 the calls are what a step costs: the
    LSTM's backward names each saved step it reads more than once, at the top of its body,
    and reads every saved sequence at one place."""
    source = rc.compile_spec(rc.load_spec(ROOT / "specs" / "sentiment_lstm.yaml"),
                             train=True).source
    backward = source.split("back through every step")[1].split("return loss")[0]
    for saved in re.findall(r"(saved_\w+) = workspace", source):
        assert backward.count(f"{saved}[:, t]") <= 1, saved
    assert "h_1_t = saved_RNN_h_1[:, t]" in backward
    assert "(1 - h_1_t * h_1_t)" in backward
