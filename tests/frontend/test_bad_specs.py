"""Bad input fails cleanly: exit 1, one message on stderr, located, no traceback
(docs/spec.md, Errors).

Each file in tests/bad_specs/ breaks one rule; the table says where the message should point
(the offending key or value, 1-based line and column) and a phrase it must contain. Most cases
call ``rnncompiler.cli.main`` in-process (fast); a few go through a real subprocess to prove
that nothing but the one line reaches the terminal. Cases marked xfail are places where the
tool's message or location is wrong today; the reason says what it prints instead.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnncompiler import cli

TESTS = Path(__file__).resolve().parents[1]
BAD = TESTS / "bad_specs"
SENTIMENT = TESTS.parent / "specs" / "sentiment.yaml"
RNNC = [sys.executable, "-m", "rnncompiler.cli"]


def xfail(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


def case(name, line, col, phrase, reason=None):
    return pytest.param(name, line, col, phrase, id=name[:-5],
                        marks=[xfail(reason)] if reason else [])


CASES = [
    # §1 the spec: top level, names, inputs and targets
    case("top_key_unknown.yaml", 11, 1, "unknown key 'unrol' (did you mean 'unroll'?)"),
    case("rnnc_missing.yaml", 1, 1, "missing required key 'rnnc'"),
    case("rnnc_version_2.yaml", 1, 7, "unsupported format version 2"),
    case("name_not_identifier.yaml", 2, 7, "must be an identifier"),
    case("name_duplicate.yaml", 9, 12, "name 'x' is already used (line 4)"),
    case("dtype_unknown.yaml", 3, 8, "expected 'float32' or 'float64'"),
    case("features_zero.yaml", 4, 17, "expected an integer >= 1, got 0"),
    case("sequence_not_bool.yaml", 6, 30, "expected true or false"),
    case("not_a_mapping.yaml", 1, 1, "expected a mapping"),
    case("empty.yaml", 1, 1, "empty"),
    case("not_utf8.yaml", 2, 16, "not UTF-8"),
    # §1 YAML itself: safe loading only
    case("yaml_key_twice.yaml", 8, 54, "key given twice"),
    case("yaml_syntax_error.yaml", 2, 16, "mapping values are not allowed"),
    case("yaml_tab_indent.yaml", 4, 1, r"found character '\t'"),
    case("yaml_two_documents.yaml", 12, 1, "another document"),
    case("yaml_python_name_tag.yaml", 2, 7, "tag 'tag:yaml.org,2002:python/name:os.system' is not"),
    case("yaml_python_tag.yaml", 2, 7, "is not allowed"),
    case("yaml_merge_key.yaml", 9, 6, "merge keys (<<) are not supported"),
    case("yaml_alias_bomb.yaml", 8, 12, "expands to more than",
         "points at 3:38, a plain 'lol' inside the anchored list on line 3, not at the alias on "
         "line 8 (the second *e) whose expansion crosses the limit"),
    # §2 layers
    case("layers_empty.yaml", 7, 9, "empty"),
    case("layer_type_unknown.yaml", 8, 23, "expected 'rnn', 'dense', 'repeat', 'embedding' or "
                                           "'dropout'"),
    case("layer_key_misspelt.yaml", 8, 42, "unknown key 'unit' (did you mean 'units'?)"),
    case("units_negative.yaml", 8, 49, "expected an integer >= 1, got -5"),
    case("cell_unknown.yaml", 8, 34, "unknown cell 'lstn' (did you mean 'lstm'?)"),
    case("cell_unknown_custom.yaml", 17, 34, "unknown cell 'mycel' (did you mean 'mycell'?)"),
    case("return_misspelt.yaml", 8, 72, "did you mean 'sequence'"),
    case("activation_unknown.yaml", 9, 67, "did you mean 'softmax'"),
    case("input_unknown.yaml", 8, 61, "unknown input 'xs' (did you mean 'x'?)"),
    case("rnn_input_missing.yaml", 8, 5, "missing required key 'input'"),
    case("layer_uses_later_layer.yaml", 8, 50, "later"),
    case("rnn_fed_vector_without_steps.yaml", 8, 61, "give `steps: N`"),
    case("stacked_seed_as_written.yaml", 9, 62, "set `return: sequence` on layer RNN1"),
    case("rnn_steps_on_sequence.yaml", 8, 71, "`steps` is only for a vector input"),
    case("repeat_fed_sequence.yaml", 8, 38, "repeat needs a vector"),
    case("initial_state_bad_key.yaml", 9, 80, "unknown key 'c'; allowed: h"),
    case("initial_state_bidirectional_key.yaml", 10, 22, "allowed: fwd.h, bwd.h"),
    case("initial_state_wrong_features.yaml", 9, 83, "has 50 features but layer RNN has 100 units"),
    case("initial_state_from_sequence.yaml", 8, 83, "input 'x' is a sequence"),
    case("feedback_needs_sequence.yaml", 8, 74,
         "feeds back the output of every step: set `return: sequence`"),
    case("output_unknown.yaml", 10, 11, "unknown layer 'outptu' (did you mean 'output'?)"),
    case("outputs_listed_twice.yaml", 10, 19, "listed twice"),
    # §5 unroll, §6 loss
    case("bptt_window_zero.yaml", 11, 35, "expected an integer >= 1, got 0"),
    case("bptt_window_and_chunk.yaml", 11, 26, "exactly one of window or chunk"),
    case("checkpoint_with_window.yaml", 5, 51, "checkpoint does not combine with bptt"),
    case("checkpoint_not_auto.yaml", 5, 32, "or 'auto', got 'sqrt'"),
    case("loss_target_shape.yaml", 10, 43, "a vector of 2 but layer output gives a vector of 1"),
    case("loss_target_unknown.yaml", 10, 43, "unknown target 'z'"),
    case("mse_on_class_ids.yaml", 11, 14, "holds class ids, which mse cannot compare: use "
                                          "`type: cross_entropy`"),
    case("class_ids_into_rnn.yaml", 6, 56, "embed them first: add a layer `{type: embedding, "
                                           "input: chars, units: N}`"),
    case("embedding_of_numbers.yaml", 6, 39, "give input 'x' `classes: N` instead of "
                                             "`features`"),
    case("padding_id_out_of_range.yaml", 6, 65, "padding_id 10 is not an id of input 'x' "
                                                "(0 to 9)"),
    case("features_and_classes.yaml", 4, 20, "give `features` (numbers) or `classes` (class "
                                             "ids), not both"),
    case("class_target_needs_scores.yaml", 11, 53, "class ids are compared with one score per "
                                                   "class"),
    # §3 custom cells
    case("cell_shadows_builtin.yaml", 8, 3, "is a built-in cell"),
    case("state_name_reserved.yaml", 9, 13, "'x' is reserved"),
    case("param_unused.yaml", 14, 7, "parameter 'W_extra' is not used"),
    case("params_empty.yaml", 8, 13, "a cell needs at least one parameter"),
    case("param_shape_symbol.yaml", 11, 21, "got 'inputs' (did you mean 'input'?)"),
    case("param_init_unknown.yaml", 13, 35, "got 'zero' (did you mean 'zeros'?)"),
    case("eq_syntax_error.yaml", 14, 49, "invalid equation syntax"),
    case("eq_list_syntax_error.yaml", 15, 56, "invalid equation syntax"),
    case("eq_quoted_line_column.yaml", 14, 64, "invalid equation syntax"),
    case("eq_folded_block_column.yaml", 14, 16, "a folded block (`>`) joins them"),
    case("eq_unknown_name.yaml", 15, 49, "unknown name 'bh' (did you mean 'b_h'?)"),
    case("eq_power.yaml", 15, 53, "`**` is not supported"),
    case("eq_matvec_shape.yaml", 15, 38, "W_hh is [units, units] but x[t] is [input]"),
    # points at the last equation: the line after which `c[t] = ...` is missing
    case("eq_state_never_assigned.yaml", 15, 7, "state c is never assigned"),
    case("eq_state_used_before_assigned.yaml", 15, 40, "used before it is assigned"),
    case("eq_python_call.yaml", 15, 14, "cannot be called"),
]

# A few cases through a real process: exit status and the terminal see exactly one line.
SUBPROCESS_CASES = ["stacked_seed_as_written.yaml", "yaml_python_name_tag.yaml",
                    "eq_syntax_error.yaml", "top_key_unknown.yaml"]


def one_line(err: str, prefix: str) -> str:
    """``err`` is one line starting with ``prefix``, and no traceback; returns the rest."""
    assert "Traceback" not in err, err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line:\n{err}"
    assert err.startswith(prefix), f"expected {prefix!r}, got {err!r}"
    return err.rstrip("\n")[len(prefix):]


def test_corpus_is_complete():
    files = sorted(p.name for p in BAD.glob("*.yaml"))
    listed = sorted(c.values[0] for c in CASES)
    assert files == listed
    assert len(files) >= 30


@pytest.mark.parametrize(("name", "line", "col", "phrase"), CASES)
def test_bad_spec(name, line, col, phrase, capsys):
    path = str(BAD / name)
    assert cli.main(["check", path]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    message = one_line(err, f"{path}:{line}:{col}: error: ")
    assert phrase in message


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_bad_spec_in_a_process(name):
    expected = next(c.values for c in CASES if c.values[0] == name)
    result = subprocess.run([*RNNC, "check", name], cwd=BAD, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    message = one_line(result.stderr, f"{name}:{expected[1]}:{expected[2]}: error: ")
    assert expected[3] in message


def test_alias_bomb_fails_fast():
    result = subprocess.run([*RNNC, "check", str(BAD / "yaml_alias_bomb.yaml")],
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    one_line(result.stderr, f"{BAD / 'yaml_alias_bomb.yaml'}:")
    assert "expands to more than" in result.stderr


def test_stacked_seed_names_the_layer_and_the_fix(capsys):
    path = str(BAD / "stacked_seed_as_written.yaml")
    assert cli.main(["check", path]) == 1
    message = one_line(capsys.readouterr().err, f"{path}:")
    assert "RNN1" in message and "`return: sequence`" in message


# --- §7/§8: bad array files for `rnnc run` ------------------------------------------------


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """Valid params (from `rnnc init`) and inputs for specs/sentiment.yaml."""
    folder = tmp_path_factory.mktemp("good")
    params = folder / "params.npz"
    subprocess.run([*RNNC, "init", str(SENTIMENT), "-o", str(params)], check=True,
                   capture_output=True, timeout=60)
    inputs = folder / "inputs.npz"
    np.savez(inputs, x=np.zeros((2, 3, 1), np.float32))
    with np.load(params) as data:
        arrays = {key: data[key] for key in data.files}
    return params, inputs, arrays


def _nan_input():
    x = np.zeros((2, 3, 1), np.float32)
    x[1, 2, 0] = np.nan
    return {"x": x}


def _without(arrays, key):
    return {k: v for k, v in arrays.items() if k != key}


# (which file is bad, its name, its arrays (given the good params) or raw bytes, phrase)
ARRAY_CASES = [
    ("inputs", "missing_input.npz", lambda p: {"y": np.zeros((2, 1), np.float32)},
     "missing array 'x'"),
    ("inputs", "wrong_features.npz", lambda p: {"x": np.zeros((2, 3, 2), np.float32)},
     "array 'x' has shape [2, 3, 2]"),
    ("inputs", "nan_input.npz", lambda p: _nan_input(), "NaN"),
    ("params", "params_missing_key.npz", lambda p: _without(p, "output.b"),
     "missing parameter 'output.b'"),
    ("params", "params_wrong_shape.npz",
     lambda p: {**p, "RNN.W_hh": np.zeros((100, 99), np.float32)},
     "parameter 'RNN.W_hh' has shape [100, 99], expected [100, 100]"),
    ("inputs", "not_npz_inputs.npz", b"hello, not an archive\n", "not an .npz file"),
    ("params", "not_npz_params.npz", b"PK\x03\x04 truncated", ".npz file"),
    ("inputs", "no_such_file.npz", None, "cannot read inputs"),
]


def _write_bad(folder: Path, name: str, content, params: dict) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.savez(path, **content(params))
    return path


def _run_args(good, which, bad_file, out):
    params, inputs, _ = good
    files = {"params": params, "inputs": inputs, which: bad_file}
    return ["run", str(SENTIMENT), "--params", str(files["params"]),
            "--inputs", str(files["inputs"]), "-o", str(out)]


def test_good_arrays_run(good, tmp_path):
    out = tmp_path / "out.npz"
    assert cli.main(_run_args(good, "inputs", good[1], out)) == 0
    assert out.exists()


@pytest.mark.parametrize(("which", "name", "content", "phrase"), ARRAY_CASES,
                         ids=[c[1][:-4] for c in ARRAY_CASES])
def test_bad_array_file(good, tmp_path, capsys, which, name, content, phrase):
    bad = _write_bad(tmp_path, name, content, good[2])
    out = tmp_path / "out.npz"
    assert cli.main(_run_args(good, which, bad, out)) == 1
    message = one_line(capsys.readouterr().err, f"{bad}: error: ")
    assert phrase in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ([name] if content is not None else [])


def test_not_npz_message_does_not_mention_pickles(good, tmp_path, capsys):
    bad = _write_bad(tmp_path, "notes.npz", b"hello, not an archive\n", good[2])
    assert cli.main(_run_args(good, "inputs", bad, tmp_path / "out.npz")) == 1
    assert "pickle" not in capsys.readouterr().err


def test_bad_array_file_in_a_process(good, tmp_path):
    bad = _write_bad(tmp_path, "nan_input.npz", lambda p: _nan_input(), good[2])
    out = tmp_path / "out.npz"
    result = subprocess.run([*RNNC, *_run_args(good, "inputs", bad, out)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    one_line(result.stderr, f"{bad}: error: ")
    assert not out.exists()


# --- §8: usage errors exit 2 ----------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["frobnicate", str(SENTIMENT)],
    ["init", str(SENTIMENT)],
    ["run", str(SENTIMENT), "--params", "p.npz", "--inputs", "x.npz"],
], ids=["unknown_command", "init_without_o", "run_without_o"])
def test_usage_error_exits_2(args, tmp_path):
    result = subprocess.run([*RNNC, *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
