"""Every file rnnc writes, through every command and option that writes one: a missing
folder is made; a path that cannot be written is one line naming the user's path, exit 1,
before any work is done; a read-only file is left as it was; a failure while writing
leaves no partial file, no temporary file and no folder made for it; several files of one
command are written all or none."""

from __future__ import annotations

import errno
import os
import stat

import numpy as np
import pytest
from conftest import ROOT

from rnncompiler import writing
from rnncompiler.cli import main

SENTIMENT = str(ROOT / "specs" / "sentiment.yaml")
DATA = str(ROOT / "specs" / "data" / "sentiment.npz")
SMALL = """\
rnnc: 1
name: small
inputs: {x: {features: 2}}
targets: {y: {features: 1, sequence: false}}
layers:
  - {name: rnn, type: rnn, cell: gru, units: 3, input: x}
  - {name: out, type: dense, units: 1, input: rnn}
loss: {type: mse, output: out, target: y}
unroll: {steps: 4}
"""


@pytest.fixture
def files(tmp_path):
    """A spec, its parameters, and inputs with targets, in tmp_path."""
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "xy.npz", x=rng.standard_normal((16, 4, 2)),
             y=rng.standard_normal((16, 1)))
    assert main(["init", str(spec), "-o", str(tmp_path / "p.npz")]) == 0
    assert main(["export-params", str(tmp_path / "p.npz"), "--to", "torch",
                 "-o", str(tmp_path / "torch.npz")]) == 0
    return tmp_path


def _writers(d):
    """(name, argv with OUT where the file to write goes): every option that writes."""
    spec, p, xy = str(d / "small.yaml"), str(d / "p.npz"), str(d / "xy.npz")
    train = ["train", spec, "--data", xy, "--epochs", "1", "--quiet"]
    return {
        "init -o": ["init", spec, "-o", "OUT"],
        "run -o": ["run", spec, "--params", p, "--inputs", xy, "-o", "OUT"],
        "grad -o": ["grad", spec, "--params", p, "--inputs", xy, "-o", "OUT"],
        "compile -o numpy": ["compile", spec, "-o", "OUT.py"],
        "compile -o onnx": ["compile", spec, "-o", "OUT.onnx"],
        "inspect -o": ["inspect", spec, "-o", "OUT.json"],
        "inspect -o png": ["inspect", spec, "-o", "OUT.png"],
        "inspect --grad-flow": ["inspect", spec, "--grad-flow", "--params", p,
                                "--inputs", xy, "-o", "OUT.png"],
        "train -o": [*train, "-o", "OUT"],
        "train --log": [*train, "-o", str(d / "t.npz"), "--log", "OUT"],
        "train --metrics": [*train, "-o", str(d / "t.npz"), "--metrics", "OUT"],
        "train --checkpoint": [*train, "-o", str(d / "t.npz"), "--checkpoint", "OUT"],
        "export-params -o": ["export-params", p, "--to", "keras", "-o", "OUT"],
        "import-params -o": ["import-params", str(d / "torch.npz"), "--spec", spec,
                             "-o", "OUT"],
        "import -o": ["import", str(d / "torch.npz"), "--params", str(d / "i.npz"),
                      "-o", "OUT"],
        "import --params": ["import", str(d / "torch.npz"), "-o", str(d / "i.yaml"),
                            "--params", "OUT"],
    }


WRITERS = list(_writers(ROOT))


def _argv(files, name: str, out) -> list[str]:
    return [str(out) + a[3:] if a.startswith("OUT") else a for a in _writers(files)[name]]


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


@pytest.mark.parametrize("name", WRITERS)
def test_a_missing_folder_is_made(files, name, capsys):
    argv = _argv(files, name, files / "new" / "deeper" / "out")
    assert main(argv) == 0, capsys.readouterr().err
    written = [p for p in (files / "new" / "deeper").iterdir()]
    assert written and not _leftovers(files)


@pytest.mark.parametrize("name", WRITERS)
def test_a_file_in_the_way_is_one_line_before_any_work(files, name, capsys, monkeypatch):
    (files / "plain").write_text("a file, not a folder")
    monkeypatch.setattr("rnncompiler.training.loop.train", _never)
    monkeypatch.setattr("rnncompiler.cli.training.train", _never)
    out = files / "plain" / "out"
    assert main(_argv(files, name, out)) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(str(out)), err
    assert "'" + str(files / "plain") + "' is a file, not a folder" in err
    assert "Traceback" not in err and not _leftovers(files)


@pytest.mark.parametrize("name", WRITERS)
def test_a_read_only_file_is_left_as_it_was(files, name, capsys):
    out = files / "kept"
    argv = _argv(files, name, out)
    target = next(a for a in argv if a.startswith(str(out)))
    if name == "train --checkpoint":  # a folder: its parameters are read-only
        out.mkdir()
        target = str(out / "params.npz")
    with open(target, "w") as stream:
        stream.write("precious")
    os.chmod(target, 0o444)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{target}: error: cannot write") and "read-only" in err
    assert open(target).read() == "precious"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o444


@pytest.mark.parametrize("name", WRITERS)
def test_a_folder_without_permission_is_one_line(files, name, capsys, monkeypatch):
    locked = files / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(writing.os, "access",
                        lambda path, mode: False if str(path) == str(locked) else
                        real(path, mode))
    out = locked / "out"
    assert main(_argv(files, name, out)) == 1
    err = capsys.readouterr().err
    assert err.startswith(str(out)) and f"permission denied in '{locked}'" in err
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("name", WRITERS)
def test_a_failing_write_leaves_nothing(files, name, capsys, monkeypatch):
    out = files / "made" / "out"
    real = writing._write_temporary

    def full_disk(target, data):
        if str(target).startswith(str(out)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(target, data)

    monkeypatch.setattr(writing, "_write_temporary", full_disk)
    before = sorted(p.name for p in files.iterdir())
    assert main(_argv(files, name, out)) == 1
    err = capsys.readouterr().err
    assert err.startswith(str(out)) and "No space left on device" in err
    assert len(err.splitlines()) == 1
    after = sorted(p.name for p in files.iterdir())
    if name in ("train --log", "train --metrics"):  # the trained parameters are kept
        before = sorted([*before, "t.npz"])
    if name == "train -o":  # kept beside the spec instead, and the message says so
        before = sorted([*before, "small.params.npz"])
        assert err.strip().endswith(f"in {files / 'small.params.npz'} instead")
    assert after == before  # no partial file, no temporary, not the folder made for it


def test_several_files_of_a_command_are_all_or_none(files, capsys):
    """rnnc import writes a spec and its parameters: if either cannot be, neither is."""
    spec = files / "imported.yaml"
    (files / "ro.npz").write_bytes(b"old")
    os.chmod(files / "ro.npz", 0o444)
    assert main(["import", str(files / "torch.npz"), "-o", str(spec),
                 "--params", str(files / "ro.npz")]) == 1
    assert not spec.exists()
    assert "the parameters: the file is read-only" in capsys.readouterr().err


def test_a_file_keeps_its_mode_and_a_link_its_target(files):
    target = files / "real.npz"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    link = files / "link.npz"
    link.symlink_to(target)
    assert main(["init", str(files / "small.yaml"), "-o", str(link)]) == 0
    assert link.is_symlink()
    assert set(np.load(target)) == set(np.load(files / "p.npz"))
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_a_folder_as_output_is_one_line(files, capsys):
    assert main(["init", str(files / "small.yaml"), "-o", str(files)]) == 1
    assert capsys.readouterr().err.strip() == \
        f"{files}: error: cannot write the output: it is a folder"
    spec = files / "small.yaml"
    assert main(["train", str(spec), "--data", str(files / "xy.npz"), "--checkpoint",
                 str(spec)]) == 1
    assert capsys.readouterr().err.strip() == \
        f"{spec}: error: --checkpoint names a folder; this is a file"


def _never(*args, **kwargs):
    raise AssertionError("the work began before the outputs were checked")
