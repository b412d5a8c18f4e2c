"""`rnnc train` as a practitioner meets it: the parameters go somewhere by default and it
says where; Ctrl-C keeps the work and a resumed run computes what an uninterrupted one
would; --resume refuses a checkpoint that does not fit the run, in one clean line;
progress says how long an epoch takes and how long is left; options are range-checked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT

from rnncompiler.cli import main
from rnncompiler.training.loop import Optimizer
from rnncompiler.training.tasks import get_task

SPEC = """\
rnnc: 1
name: small
inputs: {{x: {{features: 2}}}}
targets: {{y: {{features: 1, sequence: false}}}}
layers:
  - {{name: rnn, type: rnn, cell: lstm, units: {units}, input: x}}
  - {{name: out, type: dense, units: 1, input: rnn}}
loss: {{type: mse, output: out, target: y}}
unroll: {{steps: 5}}
"""


@pytest.fixture
def job(tmp_path):
    """A spec and 64 examples of data in tmp_path."""
    (tmp_path / "small.yaml").write_text(SPEC.format(units=4))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "xy.npz", x=rng.standard_normal((64, 5, 2)),
             y=rng.standard_normal((64, 1)))
    return tmp_path


def _train(job, *options) -> list[str]:
    return ["train", str(job / "small.yaml"), "--data", str(job / "xy.npz"),
            "--batch-size", "8", *options]


def test_the_parameters_go_beside_the_spec_and_it_says_so(job, capsys):
    assert main(_train(job, "--epochs", "1")) == 0
    out, err = capsys.readouterr()
    default = job / "small.params.npz"
    assert err.splitlines()[0] == (f"training small for 1 epoch: the parameters go to "
                                   f"{default} (-o to choose)")
    assert out.strip().endswith(f"wrote {default}")
    assert set(np.load(default)) >= {"rnn.W_xi", "out.W"}


def _interrupt_at(monkeypatch, step: int) -> None:
    """Ctrl-C (a real SIGINT) while the optimizer takes step number ``step``."""
    real, calls = Optimizer.step, []

    def step_then_interrupt(self, params, grads):
        calls.append(1)
        if len(calls) == step:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, params, grads)

    monkeypatch.setattr(Optimizer, "step", step_then_interrupt)


def test_ctrl_c_saves_and_a_resumed_run_is_an_uninterrupted_one(job, capsys, monkeypatch):
    """Stopped in the middle of epoch 2 (step 11, 8 steps an epoch, 58 training examples), then
    resumed: every parameter equals that of a run never stopped, bit for bit."""
    whole = job / "whole.npz"
    assert main(_train(job, "--epochs", "3", "-o", str(whole), "--quiet")) == 0
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 11)
        stopped = job / "stopped.npz"
        argv = _train(job, "--epochs", "3", "-o", str(stopped), "--checkpoint",
                      str(job / "ck"), "--log", str(job / "log.csv"))
        assert main(argv) == 130
    err = capsys.readouterr().err
    assert "stopping after this step" in err
    assert f"interrupted in epoch 2, after 24 of 58 examples: wrote {stopped}" in err
    assert "resume with: rnnc" in err and "--resume" in err
    assert json.loads((job / "ck" / "state.json").read_text())["batches_done"] == 3
    assert (job / "log.csv").read_text().count("\n") == 2  # the header and epoch 1
    assert main([*argv, "--resume", "--quiet"]) == 0
    for key, value in np.load(whole).items():
        np.testing.assert_array_equal(np.load(stopped)[key], value, err_msg=key)


def test_ctrl_c_without_a_checkpoint_says_how_to_go_on(job, capsys, monkeypatch):
    _interrupt_at(monkeypatch, 2)
    assert main(_train(job, "--epochs", "2", "-o", str(job / "p.npz"))) == 130
    err = capsys.readouterr().err
    assert "go on with: rnnc train" in err and f"--params {job / 'p.npz'}" in err
    assert set(np.load(job / "p.npz")) >= {"rnn.W_xi"}


def test_ctrl_c_before_training_is_one_line(job, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("rnncompiler.cli.training.load_spec", interrupted)
    assert main(_train(job)) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_in_a_real_process(job):
    """The signal from outside, as a terminal sends it: exit 130, the parameters written,
    no traceback."""
    out = job / "p.npz"
    command = [sys.executable, "-m", "rnncompiler.cli", *_train(job, "--epochs", "1000",
                                                                "-o", str(out))]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stderr:  # wait until an epoch has passed
        lines.append(line)
        if line.startswith("epoch 1/1000"):
            break
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=60)[1]
    assert process.returncode == 130, rest
    assert "Traceback" not in rest and f"wrote {out}" in rest
    assert set(np.load(out)) >= {"rnn.W_xi"}


def test_resume_checks_the_spec_the_optimizer_and_the_position(job, capsys, monkeypatch):
    ck = str(job / "ck")
    assert main(_train(job, "--epochs", "1", "--checkpoint", ck, "--quiet")) == 0
    capsys.readouterr()
    (job / "small.yaml").write_text(SPEC.format(units=6))  # another size of layer
    assert main(_train(job, "--epochs", "2", "--checkpoint", ck, "--resume", "--quiet")) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{job / 'ck' / 'params.npz'}: error: ")
    assert "shape" in err and len(err.splitlines()) == 1
    (job / "small.yaml").write_text(SPEC.format(units=4))
    assert main(_train(job, "--epochs", "2", "--checkpoint", ck, "--resume",
                       "--optimizer", "sgd")) == 1
    assert "the checkpoint was trained with --optimizer adam" in capsys.readouterr().err
    assert main(_train(job, "--epochs", "1", "--checkpoint", ck, "--resume")) == 1
    assert "already holds 1 epochs; --epochs counts them (give --epochs 2" in \
        capsys.readouterr().err
    with monkeypatch.context() as patch:  # stopped inside an epoch: its batches are fixed
        _interrupt_at(patch, 2)
        assert main(_train(job, "--epochs", "3", "--checkpoint", ck, "--resume",
                           "--quiet")) == 130
    capsys.readouterr()
    assert main([*_train(job, "--epochs", "3", "--checkpoint", ck, "--resume"),
                 "--batch-size", "16"]) == 1
    assert "stopped inside epoch 2, whose batches --batch-size 8 drew" in \
        capsys.readouterr().err


def test_progress_says_time_per_epoch_and_what_is_left(job, capsys):
    assert main(_train(job, "--epochs", "2", "--val-split", "0")) == 0
    lines = capsys.readouterr().err.splitlines()[1:]
    assert lines[0].startswith("epoch 1/2: train loss ")
    assert "no validation examples (--val-split 0)" in lines[0] and "nan" not in lines[0]
    assert lines[0].endswith(" left)") and " s; about " in lines[0]
    assert lines[1].startswith("epoch 2/2:") and lines[1].endswith(" s)")


@pytest.mark.parametrize("option, value, expected", [
    ("--lr", "-1", "expected a number > 0, got -1"),
    ("--lr", "nan", "expected a number > 0, got nan"),
    ("--clip-norm", "0", "expected a number > 0, got 0"),
    ("--val-split", "1", "expected a number from 0 to below 1, got 1"),
    ("--epochs", "0", "expected an integer >= 1, got 0"),
    ("--seed", "-3", "expected an integer >= 0, got -3"),
    ("--batch-size", "x", "expected an integer >= 1, got 'x'"),
])
def test_numeric_options_are_range_checked(job, capsys, option, value, expected):
    with pytest.raises(SystemExit) as exit:
        main([*_train(job), option, value])
    assert exit.value.code == 2
    assert f"argument {option}: {expected}" in capsys.readouterr().err


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for shown in ("learning rate (default: 0.01)", "(default: 10)", "(default: adam)",
                  "(default: 32)", "(default: 0.1)"):
        assert shown in out


def test_chars_tests_on_text_that_training_never_reads(tmp_path):
    """The last tenth of the text is the test's: a text whose last tenth alone holds 'b'
    gives training windows without a 'b' and test windows of 'b' only."""
    text = tmp_path / "t.txt"
    text.write_text("a" * 900 + "b" * 100)
    task = get_task(f"chars:{text}")
    rng = np.random.default_rng(0)
    train_x, _ = task.make(200, 20, 2, rng, "train")
    test_x, test_y = task.make(200, 20, 2, rng, "test")
    assert train_x[..., 1].sum() == 0
    assert test_x[..., 1].all() and test_y[..., 1].all()


def test_startup_imports_neither_numpy_nor_onnx():
    """`rnnc --version` and `--help` answer at once: they import no heavy library."""
    probe = ("import sys\nfrom rnncompiler.cli import main\n"
             "for argv in (['--version'], ['--help'], ['train', '--help']):\n"
             "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
             "heavy = {'numpy', 'onnx', 'onnxruntime', 'networkx', 'yaml'} & set(sys.modules)\n"
             "print('heavy:', sorted(heavy), file=sys.stderr)")
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stderr, (result.stderr, time.monotonic() - started)


def test_parameters_that_cannot_be_written_after_training_are_kept(job, capsys,
                                                                   monkeypatch):
    """The disk fills up during training: the parameters go beside the spec instead (not
    over a file there), and the message says where."""
    from rnncompiler import writing

    out = job / "out.npz"
    (job / "small.params.npz").write_bytes(b"an earlier run's")
    real = writing._write_temporary

    def full_disk(target, data):
        if target == out:
            raise OSError(28, "No space left on device")
        return real(target, data)

    monkeypatch.setattr(writing, "_write_temporary", full_disk)
    assert main(_train(job, "--epochs", "1", "-o", str(out), "--quiet")) == 1
    kept = job / "small.params.1.npz"
    assert capsys.readouterr().err == (
        f"{out}: error: cannot write the parameters: No space left on device; the trained "
        f"parameters are in {kept} instead\n")
    assert set(np.load(kept)) >= {"rnn.W_xi"}
    assert (job / "small.params.npz").read_bytes() == b"an earlier run's"


def test_training_data_errors_name_the_file(job, capsys):
    np.savez(job / "bad.npz", x=np.zeros((4, 5, 2)))
    assert main(["train", str(job / "small.yaml"), "--data", str(job / "bad.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{job / 'bad.npz'}: error: ") and "'y'" in err
