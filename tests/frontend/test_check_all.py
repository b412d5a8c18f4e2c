"""`rnnc check` reports every independent error of a spec (sorted, capped), limits sizes
unless told otherwise, and `rnnc schema` describes the format for editors."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import ROOT, SPECS

from rnncompiler.cli import main
from rnncompiler.frontend.schema import schema_text

MANY = """\
rnnc: 1
name: many
inputs:
  x: {features: 0}
  h0: {features: 4, sequence: maybe}
cells:
  mine:
    state: [h]
    params: {W: [units, input], U: [units, units]}
    equations: |
      h[t] = tanh(W @ x[t] + U @ h[t-1] ** 2)
layers:
  - {name: A, type: rnn, cell: mine, units: 4, input: x}
  - {name: B, type: rnn, cell: simple, units: -3, input: A}
  - {name: C, type: dense, units: 2, input: B, activaton: relu}
  - {name: D, type: dense, units: 2, input: C}
outputs: [D]
unroll: {steps: 0}
"""


def test_every_independent_error_is_reported_in_file_order(tmp_path, capsys):
    path = tmp_path / "many.yaml"
    path.write_text(MANY)
    assert main(["check", str(path)]) == 1
    lines = capsys.readouterr().err.strip().split("\n")
    places = [tuple(int(n) for n in line.split(":")[1:3]) for line in lines]
    assert places == [(4, 17), (5, 31), (11, 41), (14, 47), (15, 48), (18, 17)]
    assert all(line.startswith(f"{path}:") and ": error: " in line for line in lines)
    # layers that use a broken one (A uses x, D uses C) and the loss say nothing more
    assert not any("unknown input" in line or "unknown layer" in line for line in lines)


def test_errors_stop_at_a_cap(tmp_path, capsys):
    inputs = "\n".join(f"  x{i}: {{features: 0}}" for i in range(30))
    path = tmp_path / "capped.yaml"
    path.write_text(f"rnnc: 1\nname: capped\ninputs:\n{inputs}\nlayers:\n"
                    "  - {name: d, type: dense, units: 1, input: x0}\n")
    assert main(["check", str(path)]) == 1
    lines = capsys.readouterr().err.strip().split("\n")
    assert len(lines) == 21 and lines[-1] == "error: stopped after 20 errors"


def test_sizes_are_limited_unless_allowed(tmp_path, capsys):
    text = (ROOT / "specs" / "sentiment.yaml").read_text().replace("units: 100,", "units: 70000,")
    path = tmp_path / "big.yaml"
    path.write_text(text)
    assert main(["check", str(path)]) == 1
    assert "70,000 is above the limit of 65,536 for units" in capsys.readouterr().err
    assert main(["check", str(path), "--allow-large"]) == 0


def test_schema_is_current_and_valid_for_every_example(capsys):
    jsonschema = pytest.importorskip("jsonschema")
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == schema_text() == (ROOT / "specs" / "rnnc.schema.json").read_text()
    schema = json.loads(printed)
    for path in SPECS:
        assert path.read_text().startswith("# yaml-language-server: $schema=rnnc.schema.json")
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    bad = yaml.safe_load((ROOT / "specs" / "sentiment.yaml").read_text())
    bad["layers"][0]["units"] = -1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
