"""The command line as docs/spec.md (Command line, Array files, Errors) describes it:
commands, outputs, exit statuses."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from rnncompiler.cli import main

SENTIMENT = str(ROOT / "specs" / "sentiment.yaml")


def test_check_prints_a_summary(capsys):
    assert main(["check", str(ROOT / "specs" / "stacked.yaml")]) == 0
    out = capsys.readouterr().out
    assert "ok: stacked (float32, T = 3)" in out
    assert re.search(r"layer +RNN1 +rnn simple x 100, forward, return sequence -> "
                     r"a sequence of T steps x 100", out)
    assert "params 30,401 values in 8 arrays" in out


def test_init_is_deterministic_per_seed(tmp_path):
    paths = [tmp_path / f"p{i}.npz" for i in range(3)]
    for path, seed in zip(paths, [7, 7, 8]):
        assert main(["init", SENTIMENT, "-o", str(path), "--seed", str(seed)]) == 0
    a, b, c = (dict(np.load(p)) for p in paths)
    assert set(a) == {"RNN.W_xh", "RNN.W_hh", "RNN.b_h", "output.W", "output.b"}
    assert a["RNN.W_xh"].shape == (100, 1) and a["RNN.W_hh"].shape == (100, 100)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["RNN.W_hh"], c["RNN.W_hh"])
    np.testing.assert_allclose(a["RNN.W_hh"] @ a["RNN.W_hh"].T, np.eye(100), atol=1e-5)


def test_steps_override_runs_longer_sequences(tmp_path, rng):
    params, inputs, out = tmp_path / "p.npz", tmp_path / "x.npz", tmp_path / "o.npz"
    main(["init", SENTIMENT, "-o", str(params)])
    np.savez(inputs, x=rng.standard_normal((4, 9, 1)))
    assert main(["run", SENTIMENT, "--params", str(params), "--inputs", str(inputs),
                 "-o", str(out)]) == 1  # unroll.steps is 3
    assert not out.exists()
    assert main(["run", SENTIMENT, "--params", str(params), "--inputs", str(inputs),
                 "-o", str(out), "--steps", "9"]) == 0
    assert np.load(out)["output"].shape == (4, 1)


def test_unknown_backend_and_missing_features_are_errors(tmp_path, capsys):
    target = tmp_path / "net.py"
    assert main(["compile", SENTIMENT, "--backend", "nmupy", "-o", str(target)]) == 1
    assert "unknown backend 'nmupy' (did you mean 'numpy'?)" in capsys.readouterr().err
    no_loss = tmp_path / "no_loss.yaml"
    no_loss.write_text("\n".join(line for line in open(SENTIMENT).read().splitlines()
                                  if not line.startswith("loss:")))
    assert main(["compile", str(no_loss), "--backend", "numpy", "--train", "-o",
                 str(target)]) == 1
    assert "--train needs a `loss:`" in capsys.readouterr().err
    assert not target.exists()


@pytest.mark.parametrize("argv", [["run", SENTIMENT], ["init", SENTIMENT], ["bogus"], []])
def test_usage_errors_exit_2(argv):
    result = subprocess.run([sys.executable, "-m", "rnncompiler.cli", *argv],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "usage: rnnc" in result.stderr and "Traceback" not in result.stderr


def test_every_command_has_help():
    for command in ("check", "init", "run", "compile"):
        result = subprocess.run([sys.executable, "-m", "rnncompiler.cli", command, "--help"],
                                capture_output=True, text=True)
        assert result.returncode == 0 and "usage: rnnc " + command in result.stdout


def test_grad_writes_loss_and_every_gradient(tmp_path):
    stacked = str(ROOT / "specs" / "stacked.yaml")
    params, grads = tmp_path / "p.npz", tmp_path / "g.npz"
    main(["init", stacked, "-o", str(params)])
    assert main(["grad", stacked, "--params", str(params), "--inputs",
                 str(ROOT / "specs" / "data" / "stacked.npz"), "-o", str(grads)]) == 0
    written = dict(np.load(grads))
    assert written["loss"].shape == ()
    assert set(written) == {"loss"} | {f"grad.{k}" for k in np.load(params).files}
    for key in np.load(params).files:
        assert written[f"grad.{key}"].shape == np.load(params)[key].shape


def test_grad_needs_the_targets(tmp_path, capsys, rng):
    params, inputs, grads = tmp_path / "p.npz", tmp_path / "x.npz", tmp_path / "g.npz"
    main(["init", SENTIMENT, "-o", str(params)])
    np.savez(inputs, x=rng.standard_normal((2, 3, 1)))
    assert main(["grad", SENTIMENT, "--params", str(params), "--inputs", str(inputs),
                 "-o", str(grads)]) == 1
    assert "missing array 'y'" in capsys.readouterr().err
    assert not grads.exists()


def test_gradcheck_passes_and_reports_every_parameter(capsys):
    assert main(["gradcheck", str(ROOT / "specs" / "peephole.yaml"), "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "RNN.p_o" in out and "ok: every gradient within 1e-05" in out


def test_gradcheck_fails_above_tolerance(capsys, monkeypatch):
    """A gradient 1% off fails; a right one never does, however low the tolerance: what
    the central differences' own error explains is marked, not failed."""
    from rnncompiler import gradcheck as module
    assert main(["gradcheck", SENTIMENT, "--tolerance", "1e-30"]) == 0
    assert "(within the differences' own error)" in capsys.readouterr().out
    right = module.loss_and_grads

    def one_percent_off(*args, **kwargs):
        loss, grads = right(*args, **kwargs)
        return loss, {**grads, "grad.RNN.W_hh": grads["grad.RNN.W_hh"] * 1.01}

    monkeypatch.setattr(module, "loss_and_grads", one_percent_off)
    assert main(["gradcheck", SENTIMENT]) == 1
    captured = capsys.readouterr()
    assert "error: 1 parameter(s) above tolerance" in captured.err
    assert [line.split()[0] for line in captured.out.splitlines()
            if "above tolerance" in line] == ["RNN.W_hh"]


def test_compiled_training_module_trains(tmp_path):
    module = tmp_path / "sentiment_train.py"
    assert main(["compile", SENTIMENT, "--backend", "numpy", "--train", "-o", str(module)]) == 0
    namespace: dict = {}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    data = dict(np.load(ROOT / "specs" / "data" / "sentiment.npz"))
    params = namespace["init_params"](0)
    losses = []
    for _ in range(20):
        loss, params = namespace["train_step"](params, data, 0.05)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("suffix, magic", [(".py", b'"""'), (".onnx", b"\x08")])
def test_compile_tells_the_backend_from_the_suffix(tmp_path, capsys, suffix, magic):
    target = tmp_path / f"net{suffix}"
    assert main(["compile", SENTIMENT, "-o", str(target)]) == 0
    assert target.read_bytes().startswith(magic)
    backend = {".py": "numpy", ".onnx": "onnx"}[suffix]
    assert f"(backend {backend}, from the suffix)" in capsys.readouterr().out


def test_compile_refuses_a_suffix_that_contradicts_the_backend(tmp_path, capsys):
    target = tmp_path / "net.py"
    assert main(["compile", SENTIMENT, "--backend", "onnx", "-o", str(target)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: -o {target} is where the numpy backend writes, but --backend is onnx: "
        "name it .onnx, or drop --backend")
    assert main(["compile", SENTIMENT, "-o", str(tmp_path / "net.bin")]) == 1
    assert "cannot tell the backend from" in capsys.readouterr().err
    assert main(["compile", SENTIMENT, "--backend", "onnx", "-o",
                 str(tmp_path / "net.bin")]) == 0  # a suffix of no backend: the flag says
    assert not target.exists()


def test_import_tells_the_source_from_the_suffix(tmp_path, capsys):
    params, torch_npz = tmp_path / "p.npz", tmp_path / "state.npz"
    spec = str(ROOT / "specs" / "tagger_bilstm.yaml")
    assert main(["init", spec, "-o", str(params)]) == 0
    assert main(["export-params", str(params), "--to", "torch", "-o", str(torch_npz)]) == 0
    out, back = tmp_path / "i.yaml", tmp_path / "i.npz"
    assert main(["import", str(torch_npz), "-o", str(out), "--params", str(back)]) == 0
    assert "values in" in capsys.readouterr().out and out.exists()
    assert main(["import", str(torch_npz), "--from", "onnx", "-o", str(tmp_path / "j.yaml"),
                 "--params", str(tmp_path / "j.npz")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"{torch_npz}: error: a .npz file is read as torch, but --from is onnx: rename it, "
        "or drop --from")
    assert main(["import", str(tmp_path / "model.bin"), "-o", str(tmp_path / "k.yaml"),
                 "--params", str(tmp_path / "k.npz")]) == 1
    assert "cannot tell what this file is from its suffix" in capsys.readouterr().err


def test_import_of_a_whole_pickled_model_says_to_save_its_state_dict(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    model = torch.nn.LSTM(3, 4, batch_first=True)
    whole = tmp_path / "whole.pt"
    torch.save(model, whole)
    assert main(["import", str(whole), "-o", str(tmp_path / "m.yaml"),
                 "--params", str(tmp_path / "m.npz")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"{whole}: error: holds pickled objects (torch.save(model)?), not a state_dict; rnnc "
        "reads weights only: save them with torch.save(model.state_dict(), 'whole.pt')")
    assert "\x1b" not in err


def test_the_parsers_light_copies_agree_with_the_modules_they_spare():
    """parser.py names layouts and tasks itself so that --help imports no numpy; the names
    must be those of interop.layouts and training.tasks."""
    from rnncompiler.cli import parser
    from rnncompiler.interop.layouts import FORMATS
    from rnncompiler.training.tasks import TASKS

    assert parser.LAYOUTS == FORMATS
    assert parser.TASKS == ", ".join([*TASKS, "chars:FILE"])
