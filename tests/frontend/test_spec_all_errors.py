"""One `rnnc check` reports every independent error of a spec: fixing them one at a time
never reveals a new one. A part that depends on a broken one says nothing more, and every
enumerated value and key that is close to a right one gets its did-you-mean."""

from __future__ import annotations

import pytest

from rnncompiler.cli import main
from rnncompiler.errors import SpecError, SpecErrors
from rnncompiler.frontend.spec import load_spec_text

FILE = "many.yaml"

# An error in (almost) every section; B (on A), M (on the broken cell) and the loss's
# output (B) depend on broken parts and must say nothing.
MANY = """\
rnnc: 2
name: many
dtype: float16
comment: hello
inputs:
  x: {features: 3}
  z: {features: -1, sequence: flase}
targets:
  y: {features: 2}
cells:
  mine:
    state: [h]
    params: {W: [units, input], U: [units, units], b: [units]}
    equations: |
      a = W @ x[t] ** 2
      h[t] = tanh(a + U @ h[t-1] + bb)
layers:
  - {name: A, type: rnn, cell: simple, units: -4, input: x, return: sequences}
  - {name: B, type: dense, units: 2, input: A}
  - {name: M, type: rnn, cell: mine, units: 4, input: x}
  - {name: C, type: rnn, cell: lstn, units: 3, input: x, direction: forwards}
  - {name: D, type: dense, units: 2, input: x, activation: softmx}
  - {name: E, type: denze, units: 2, input: x}
  - {name: F, type: dense, units: 2, input: x}
outputs: [B, F, G]
loss: {type: mce, output: B, target: y}
unroll: {steps: 0, bptt: ful}
"""

# (line, what its message says), in file order
EXPECTED = [
    (1, "unsupported format version 2"),
    (3, "got 'float16' (did you mean 'float64'?)"),
    (4, "unknown key 'comment'; allowed: rnnc, name"),
    (7, "inputs.z.features: expected an integer >= 1, got -1"),
    (7, "got 'flase' (did you mean 'false'?)"),
    (15, "`**` is not supported"),
    (16, "unknown name 'bb' (did you mean 'b'?)"),
    (18, "layers[0].units: expected an integer >= 1, got -4"),
    (18, "got 'sequences' (did you mean 'sequence'?)"),
    (21, "unknown cell 'lstn' (did you mean 'lstm'?)"),
    (21, "got 'forwards' (did you mean 'forward'?)"),
    (22, "got 'softmx' (did you mean 'softmax'?)"),
    (23, "got 'denze' (did you mean 'dense'?)"),
    (25, "outputs[2]: unknown layer 'G'"),
    (26, "got 'mce' (did you mean 'mse'?)"),
    (27, "unroll.steps: expected an integer >= 1, got 0"),
    (27, "unroll.bptt: expected 'full', {window: k} or {chunk: k}, got 'ful' (did you mean "
         "'full'?)"),
]

# each error of MANY fixed in turn, in an order unlike the file's; the last leaves it valid
FIXES = [
    ("bptt: ful", "bptt: full"),
    ("units: -4", "units: 4"),
    ("rnnc: 2", "rnnc: 1"),
    (" ** 2", ""),
    ("comment: hello\n", ""),
    ("features: -1", "features: 1"),
    ("[B, F, G]", "[B, F]"),
    ("lstn", "lstm"),
    ("sequence: flase", "sequence: false"),
    ("type: mce", "type: mse"),
    ("+ bb)", "+ b)"),
    ("direction: forwards", "direction: forward"),
    ("return: sequences", "return: sequence"),
    ("softmx", "softmax"),
    ("dtype: float16", "dtype: float32"),
    ("denze", "dense"),
    ("steps: 0", "steps: 5"),
]


def errors_of(text: str) -> list[SpecError]:
    """Every error ``load_spec_text`` reports for ``text``; [] when it loads."""
    try:
        load_spec_text(text, FILE)
    except SpecErrors as error:
        assert not error.more, "the cap was reached"
        return error.errors
    except SpecError as error:
        return [error]
    return []


def test_every_independent_error_is_reported_at_once():
    errors = errors_of(MANY)
    assert [(e.location.line, e.message) for e in errors] == [
        (line, next(e.message for e in errors
                    if e.location.line == line and phrase in e.message))
        for line, phrase in EXPECTED]
    places = [(e.location.line, e.location.column) for e in errors]
    assert places == sorted(places)


def test_every_independent_error_in_one_check_run(tmp_path, capsys):
    path = tmp_path / FILE
    path.write_text(MANY)
    assert main(["check", str(path)]) == 1
    out, err = capsys.readouterr()
    lines = err.rstrip("\n").split("\n")
    assert out == "" and len(lines) == len(EXPECTED)
    for text, (line, phrase) in zip(lines, EXPECTED):
        assert text.startswith(f"{path}:{line}:") and ": error: " in text, text
        assert phrase in text, text


def test_fixing_one_error_at_a_time_reveals_none():
    text = MANY
    before = errors_of(text)
    for old, new in FIXES:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
        after = errors_of(text)
        assert len(after) == len(before) - 1, (old, [str(e) for e in after])
        lines_before = {e.location.line for e in before}
        lines_after = {e.location.line for e in after}
        # fixing ``comment:`` moves what follows one line up
        if old.startswith("comment"):
            lines_after = {line + 1 if line >= 4 else line for line in lines_after}
        assert lines_after <= lines_before, (old, [str(e) for e in after])
        before = after
    assert before == []


def test_what_depends_on_a_broken_part_says_nothing():
    lines = {e.location.line for e in errors_of(MANY)}
    assert not lines & {19, 20}  # B uses A, M uses the cell `mine`
    assert not any("loss.output" in str(e) or "'B'" in str(e) for e in errors_of(MANY))


BASE = """\
rnnc: 1
name: base
inputs:
  x: {features: 3}
targets:
  y: {features: 2, sequence: false}
cells:
  mine:
    state: [h]
    params: {W: [units, input], U: [units, units], b: {shape: [units], init: zeros}}
    equations: |
      a = W @ x[t] + U @ h[t-1]
      h[t] = tanh(a + b)
layers:
  - {name: A, type: rnn, cell: mine, units: 4, input: x, return: sequence, direction: forward}
  - {name: C, type: rnn, cell: lstm, units: 4, input: A}
  - {name: B, type: dense, units: 2, input: C, activation: sigmoid}
outputs: [B]
loss: {type: mse, output: B, target: y}
unroll: {steps: 5, bptt: full}
"""


def edited(*edits) -> str:
    text = BASE
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def test_base_is_valid():
    assert errors_of(BASE) == []


# (the edits, then (line, phrase) for every error they must give, and no other)
DEPENDENT_CASES = {
    "inputs_section_broken": (
        [("  x: {features: 3}\n", ""), ("inputs:", "inputs: [x]"), ("units: 2,", "units: 0,")],
        [(3, "expected a mapping of names"), (16, "layers[2].units")]),
    "cells_section_broken": (
        [("cells:\n", "cells: [mine]\nold:\n"), ("units: 2,", "units: 0,")],
        [(7, "expected a mapping of cell names"), (8, "unknown key 'old'"),
         (18, "layers[2].units")]),  # and A, which uses the cell `mine`, nothing
    "layer_type_unknown": (
        [("type: rnn, cell: lstm", "type: rnm, cell: lstm"), ("bptt: full", "bptt: full2")],
        [(16, "(did you mean 'rnn'?)"), (20, "did you mean 'full'")]),
    "layer_name_wrong": (
        [("name: C,", "name: 1C,"), ("type: mse", "type: mes")],
        [(16, "layer name must be an identifier"), (19, "(did you mean 'mse'?)")]),
    "layer_name_taken": (
        [("name: C,", "name: x,")], [(16, "name 'x' is already used (line 4)")]),
    "target_broken": (
        [("y: {features: 2,", "y: {features: two,"), ("type: mse", "type: cross_entropy")],
        [(6, "targets.y.features")]),
    "equation_line_broken": (
        [("a = W @ x[t] + U @ h[t-1]", "a = W @ x[t] +"), ("a + b)", "a + c)")],
        [(12, "invalid equation syntax"), (13, "unknown name 'c'")]),  # and not 'a'
    "state_line_broken": (
        [("h[t] = tanh(a + b)", "h[t] = tanh(a ** b)")], [(13, "`**` is not supported")]),
    "param_shape_broken": (
        [("U: [units, units]", "U: [units, unit]"), ("tanh(a + b)", "tanh(a + b) +")],
        [(10, "got 'unit' (did you mean 'units'?)"), (13, "invalid equation syntax")]),
    "shape_errors_in_two_lines": (
        [("a = W @ x[t] + U @ h[t-1]", "a = U @ x[t] + U @ h[t-1]\n      d = W @ h[t-1]"),
         ("tanh(a + b)", "tanh(a + b + d)")],
        [(12, "U is [units, units] but x[t] is [input]"),
         (13, "W is [units, input] but h[t-1] is [units]")]),
    "two_params_unused": (
        [("b: {shape: [units], init: zeros}}", "b: [units], c: [units], d: [units]}")],
        [(10, "parameter 'c' is not used"), (10, "parameter 'd' is not used")]),
    "loss_output_broken": (
        [("units: 2,", "units: -2,"), ("target: y}", "target: z}")],
        [(17, "layers[2].units"), (19, "unknown target 'z'")]),
    "no_inputs": (
        [("  x: {features: 3}\n", ""), ("inputs:", "inputs: {}"), ("steps: 5", "steps: -5")],
        [(3, "a spec needs at least one input"), (19, "unroll.steps")]),
    "layers_missing": (
        [("layers:", "lay:"), ("type: mse", "type: mes")],
        [(14, "unknown key 'lay' (did you mean 'layers'?)"), (19, "(did you mean 'mse'?)")]),
    "version_and_others": (
        [("rnnc: 1", "rnnc: '1'"), ("units: 2,", "units: 2, unit: 3,")],
        [(1, "unsupported format version '1'"), (17, "unknown key 'unit'")]),
}


@pytest.mark.parametrize(("edits", "expected"), list(DEPENDENT_CASES.values()),
                         ids=list(DEPENDENT_CASES))
def test_only_independent_errors(edits, expected):
    errors = errors_of(edited(*edits))
    found = [(e.location.line, str(e)) for e in errors]
    assert len(found) == len(expected), [text for _, text in found]
    for (line, text), (want_line, phrase) in zip(found, expected):
        assert line == want_line and phrase in text, text


# (an edit of BASE, the phrase of the one error it gives)
DID_YOU_MEAN = {
    "bptt": (("bptt: full", "bptt: ful"), "(did you mean 'full'?)"),
    "bptt_window": (("bptt: full", "bptt: windw"), "(did you mean {window: k}?)"),
    "bptt_key": (("bptt: full", "bptt: {windw: 3}"), "unknown key 'windw' (did you mean "
                                                     "'window'?)"),
    "dtype": (("name: base", "name: base\ndtype: flaot32"), "(did you mean 'float32'?)"),
    "direction": (("direction: forward", "direction: backwards"), "(did you mean 'backward'?)"),
    "return": (("return: sequence", "return: sequences"), "(did you mean 'sequence'?)"),
    "layer_type": (("type: dense", "type: dnse"), "(did you mean 'dense'?)"),
    "layer_type_cell": (("type: dense", "type: lstm"), "which is a cell: write `type: rnn, "
                                                       "cell: lstm`"),
    "activation": (("activation: sigmoid", "activation: sigmod"), "(did you mean 'sigmoid'?)"),
    "loss_type": (("type: mse", "type: cross_entropi"), "(did you mean 'cross_entropy'?)"),
    "builtin_cell": (("cell: lstm", "cell: lstn"), "(did you mean 'lstm'?)"),
    "custom_cell": (("cell: mine", "cell: mien"), "(did you mean 'mine'?)"),
    "init": (("init: zeros", "init: zero"), "(did you mean 'zeros'?)"),
    "sequence": (("x: {features: 3}", "x: {features: 3, sequence: ture}"),
                 "(did you mean 'true'?)"),
    "lengths": (("x: {features: 3}", "x: {features: 3, lengths: flase}"),
                "(did you mean 'false'?)"),
    "cell_output": (("state: [h]", "state: [h]\n    output: hh"), "(did you mean 'h'?)"),
    "function": (("tanh(a + b)", "tahn(a + b)"), "(did you mean 'tanh'?)"),
    "size_symbol": (("W: [units, input]", "W: [units, inputs]"), "(did you mean 'input'?)"),
    "input_name": (("input: x,", "input: xx,"), "(did you mean 'x'?)"),
    "key_top": (("unroll:", "unrol:"), "unknown key 'unrol' (did you mean 'unroll'?)"),
    "key_array": (("x: {features: 3}", "x: {featurs: 3}"), "(did you mean 'features'?)"),
    "key_cell": (("equations: |", "equation: |"), "(did you mean 'equations'?)"),
    "key_param": (("b: {shape:", "b: {shpe:"), "(did you mean 'shape'?)"),
    "key_layer": (("units: 4, input: x", "unit: 4, input: x"), "(did you mean 'units'?)"),
    "key_loss": (("target: y}", "targte: y}"), "(did you mean 'target'?)"),
    "key_unroll": (("steps: 5", "step: 5"), "(did you mean 'steps'?)"),
}


@pytest.mark.parametrize(("edit", "phrase"), list(DID_YOU_MEAN.values()), ids=list(DID_YOU_MEAN))
def test_did_you_mean(edit, phrase):
    errors = errors_of(edited(edit))
    assert len(errors) == 1, [str(e) for e in errors]  # and nothing that follows from it
    assert phrase in str(errors[0])


def test_an_rnn_layer_without_feedback_needs_an_input_that_is_not_null():
    """`input: null` passed the check and failed at run time (a KeyError) before."""
    errors = errors_of(edited(("input: x,", "input: null, steps: 3,")))
    assert [str(e) for e in errors] == [
        f"{FILE}:15:55: error: layers[0].input: layer A: expected the name of an input or an "
        "earlier layer, got nothing"]
