"""`rnnc train`: training lowers the loss on every built-in task, resuming gives the
parameters of an uninterrupted run, divergence stops with a clear message and keeps the
last good checkpoint, and the ONNX training graph takes the same step as NumPy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT

import rnncompiler as rc
from rnncompiler.cli import main
from rnncompiler.errors import RnncError
from rnncompiler.training.loop import TrainOptions, train
from rnncompiler.training.tasks import get_task, task_data

SPEC = """\
rnnc: 1
name: {name}
inputs:
  x: {{features: {features}}}
targets:
  y: {{features: {out}, sequence: {sequence}}}
layers:
  - {{name: R, type: rnn, cell: {cell}, units: 16, input: x, return: {ret}}}
  - {{name: out, type: dense, units: {out}, input: R{activation}}}
loss: {{type: {loss}, output: out, target: y}}
unroll: {{steps: {steps}}}
"""


def task_spec(task, cell="gru", steps=6, features=None):
    needs = get_task(task).needs
    features = features or needs.input_features or 3
    out = needs.target_features or features
    text = SPEC.format(name=task.split(":")[0], features=features, out=out, cell=cell,
                       sequence=str(needs.target_sequence).lower(),
                       ret="sequence" if needs.target_sequence else "last",
                       activation=", activation: softmax" if needs.loss == "cross_entropy"
                       else "", loss=needs.loss, steps=steps)
    return rc.load_spec_text(text, filename=f"{task}.yaml")


QUIET = {"progress": False}


@pytest.mark.parametrize("task", ["adding", "memory", "sine", "parity", "chars"])
def test_training_lowers_the_loss(task, tmp_path):
    if task == "chars":
        text = tmp_path / "text.txt"
        text.write_text("the cat sat on the mat. " * 40)
        task = f"chars:{text}"
    steps, epochs = (3, 12) if task == "parity" else (6, 4)  # parity: below chance, slowly
    spec = task_spec(task, steps=steps)
    data = task_data(spec, get_task(task), 256, steps, seed=1)
    _, history, final = train(spec, data, TrainOptions(epochs=epochs, batch_size=32, lr=0.02,
                                                       **QUIET))
    assert history.train_loss[-1] < 0.8 * history.train_loss[0], history.train_loss
    assert history.val_loss[-1] < history.val_loss[0]
    assert final["loss"] == pytest.approx(history.val_loss[-1])


def test_resume_gives_the_uninterrupted_run(tmp_path):
    spec = task_spec("sine")
    data = task_data(spec, get_task("sine"), 200, 6, seed=2)
    whole, _, _ = train(spec, data, TrainOptions(epochs=3, checkpoint=str(tmp_path / "a"),
                                                 **QUIET))
    train(spec, data, TrainOptions(epochs=1, checkpoint=str(tmp_path / "b"), **QUIET))
    resumed, history, _ = train(spec, data, TrainOptions(epochs=3, resume=True,
                                                         checkpoint=str(tmp_path / "b"),
                                                         **QUIET))
    assert len(history.train_loss) == 3
    for key, value in whole.items():
        np.testing.assert_array_equal(resumed[key], value, err_msg=key)
    log = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert log[0] == "epoch,train_loss,val_loss,val_mse" and len(log) == 4


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    spec = task_spec("sine")
    data = task_data(spec, get_task("sine"), 200, 6, seed=3)
    folder = tmp_path / "ck"
    train(spec, data, TrainOptions(epochs=1, optimizer="sgd", lr=0.01, checkpoint=str(folder),
                                   **QUIET))
    good = dict(np.load(folder / "params.npz"))
    with pytest.raises(RnncError, match=r"the loss became (nan|inf) in epoch 2: training "
                                        r"diverged \(lower --lr, or set --clip-norm\); .* keeps "
                                        r"epoch 1"):
        train(spec, data, TrainOptions(epochs=3, optimizer="sgd", lr=1e12, resume=True,
                                       checkpoint=str(folder), **QUIET))
    for key, value in np.load(folder / "params.npz").items():
        np.testing.assert_array_equal(value, good[key])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_onnx_takes_the_same_first_step(optimizer):
    spec = task_spec("parity", cell="lstm")
    data = task_data(spec, get_task("parity"), 16, 6, seed=4)
    options = dict(epochs=1, batch_size=16, val_split=0.0, optimizer=optimizer, **QUIET)
    start = rc.init_params(spec, seed=0)
    numpy_params, _, _ = train(spec, data, TrainOptions(backend="numpy", **options))
    onnx_params, _, _ = train(spec, data, TrainOptions(backend="onnx", **options))
    moved = 0.0
    for key, value in numpy_params.items():
        np.testing.assert_allclose(onnx_params[key], value, rtol=1e-4, atol=1e-6, err_msg=key)
        moved = max(moved, float(np.abs(value - start[key]).max()))
    assert moved > 1e-4  # the step did move the parameters


def test_clip_norm_bounds_the_step():
    spec = task_spec("sine")
    data = task_data(spec, get_task("sine"), 32, 6, seed=5)
    start = rc.init_params(spec, seed=0)
    options = dict(epochs=1, batch_size=32, val_split=0.0, optimizer="sgd", lr=1.0, **QUIET)
    clipped, _, _ = train(spec, data, TrainOptions(clip_norm=1e-3, **options))
    step = np.sqrt(sum(float(np.sum((clipped[k] - start[k]) ** 2)) for k in start))
    assert step == pytest.approx(1e-3, rel=1e-3)


def test_cli_writes_params_log_and_metrics(tmp_path, capsys):
    spec = ROOT / "specs" / "sentiment.yaml"
    out, metrics, log = tmp_path / "p.npz", tmp_path / "m.json", tmp_path / "l.csv"
    assert main(["train", str(spec), "--task", "sine", "--examples", "64", "--epochs", "2",
                 "-o", str(out), "--metrics", str(metrics), "--log", str(log),
                 "--quiet"]) == 0
    figures = json.loads(metrics.read_text())
    assert len(figures["train_loss"]) == len(figures["val_loss"]) == 2
    assert set(figures["test"]) == {"loss", "mse"}
    assert set(np.load(out)) == set(rc.init_params(rc.load_spec(spec)))
    assert "trained 2 epochs" in capsys.readouterr().out


def test_a_spec_that_does_not_fit_the_task_is_a_clear_error(tmp_path, capsys):
    spec = ROOT / "specs" / "sentiment.yaml"
    assert main(["train", str(spec), "--task", "adding", "--quiet",
                 "-o", str(tmp_path / "p.npz")]) == 1
    err = capsys.readouterr().err
    assert "task adding needs one input, a sequence of 2 features, and one target, a vector " \
           "of 1 feature, with loss mse; spec sentiment: input 'x' features: 1, needs 2" in err
    assert not (tmp_path / "p.npz").exists()
