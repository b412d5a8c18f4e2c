"""Specs the fuzzer (or a user) found a compiler bug with, each checked against every
property of ``spec_properties`` on every run; each file says what went wrong. And what
``rnnc`` does when a valid spec meets a bug all the same."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from spec_properties import check_spec

from rnncompiler import cli
from rnncompiler.cli import commands

REGRESSIONS = sorted((Path(__file__).parent / "regressions").glob("*.yaml"))


def _steps(text: str) -> int:
    return (yaml.safe_load(text).get("unroll") or {}).get("steps") or 4


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.stem)
def test_regression_spec(path):
    text = path.read_text(encoding="utf-8")
    check_spec(text, _steps(text), file=str(path))


def test_internal_error_is_one_line_and_exit_3(tmp_path, monkeypatch, capsys):
    """An unexpected exception on a valid spec: one line naming the spec, that it is a bug,
    what may avoid it; exit status 3; no partial output."""
    spec = Path(__file__).parent.parent / "specs" / "sentiment.yaml"
    out = tmp_path / "net.py"

    def broken(*args, **kwargs):
        raise KeyError("a compiler bug")

    monkeypatch.setattr(commands, "compile_spec", broken)
    assert cli.main(["compile", str(spec), "--backend", "numpy", "-o", str(out)]) == 3
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{spec}: internal error: KeyError: 'a compiler bug'")
    assert "a bug in rnnc; -O0 may avoid it; please report it with the spec" in lines[0]
    assert not out.exists()
