"""Fuzzing the front end: whatever text it is given, ``load_spec_text`` returns a Spec or
raises an ``RnncError`` — never another exception — quickly, with a message that reads
``fuzz.yaml...: error: ...`` on one line (docs/spec.md, Errors: one line, no
traceback), free of control characters; several errors reported together (SpecErrors)
give one such line each. (Cell equations, parsed and never evaluated (docs/spec.md, Equations), are
fuzzed in test_fuzz_equations.py with the checks defined here.)

Texts come from four sources: random unicode; YAML-ish fragments built from the keys and
values specs use; structural mutations of the valid specs in specs/*.yaml (a value
deleted, duplicated, retyped, keys swapped, garbage inserted); and textual mutations of
the same files.

Open bugs are reproduced one by one by xfail(strict) cases of the explicit tests; the
properties ``reject`` exactly the inputs that hit them (``_known_bug``), so that they
keep guarding everything else. When a bug is fixed its xfail case passes, fails as
strict, and its mark and its line in ``_known_bug`` should go.
"""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import rnncompiler as rc
from rnncompiler.errors import SpecError, SpecErrors

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILES = sorted((ROOT / "specs").glob("*.yaml"))
SPEC_TEXTS = [path.read_text(encoding="utf-8") for path in SPEC_FILES]
SPEC_DATA = [yaml.safe_load(text) for text in SPEC_TEXTS]
FILE = "fuzz.yaml"
TIME_LIMIT = 5.0  # seconds for one load: a blow-up takes far longer; a busy machine 2x

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])


def xfail(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


# --- the checks --------------------------------------------------------------------------

def _control(text: str) -> set[str]:
    """The characters of ``text`` that a terminal would act on: line breaks, escapes."""
    return {c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")}


def _scalars(text: str) -> list[str]:
    """Every scalar of ``text`` (keys and values) as YAML reads it; none if it does not
    compose."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except Exception:  # not YAML at all: no scalars
        return []
    scalars, todo = [], [root]
    while todo:
        node = todo.pop()
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                todo += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
        elif isinstance(node, yaml.ScalarNode):
            scalars.append(node.value)
    return scalars


LINE_SEPARATORS = {"\u2028", "\u2029"}


def _known_bug(text: str, error: BaseException | None = None, lines=()) -> bool:
    """Inputs that hit a bug still open, reproduced by an xfail test below (see the
    module doc)."""
    return False  # none open now


def _lines(error: rc.RnncError) -> list[str]:
    """The lines ``error`` is made of: one, or one per error of a SpecErrors."""
    if isinstance(error, SpecErrors):
        return [str(e) for e in error.errors]
    return [str(error)]


def check_one_line(error: rc.RnncError) -> None:
    """Each error is one clean line that names the file (a SpecErrors, several errors of
    one spec reported together, is one such line per error)."""
    lines = _lines(error)
    if isinstance(error, SpecErrors):
        printed = str(error).split("\n")
        assert printed[:len(lines)] == lines
        assert printed[len(lines):] in ([], [f"error: stopped after {len(lines)} errors"])
    for line in lines:
        assert len(line.splitlines()) == 1 and not line.endswith("\n"), \
            f"not one line: {line!r}"
        assert line.startswith(FILE), f"does not name the file: {line!r}"
        assert ": error: " in line, line
        assert not _control(line), f"control characters in the message: {line!r}"
        assert "Traceback" not in line


def load(text: str):
    """``load_spec_text(text)``: a Spec or an RnncError, in time, with a clean message."""
    start = time.perf_counter()
    try:
        result = rc.load_spec_text(text, FILE)
    except rc.RnncError as error:
        elapsed = time.perf_counter() - start
        if _known_bug(text, error, _lines(error)):
            reject()
        check_one_line(error)
        result = error
    except Exception as error:  # the property: nothing else escapes
        if _known_bug(text, error):
            reject()
        raise AssertionError(f"{type(error).__name__} escaped load_spec_text: {error!r}\n"
                             f"text: {text[:2000]!r}") from error
    else:
        elapsed = time.perf_counter() - start
        assert isinstance(result, rc.Spec)
    assert elapsed < TIME_LIMIT, f"took {elapsed:.2f}s on {text[:300]!r}"
    return result


# --- sources of text -----------------------------------------------------------------------

KEYS = ["rnnc", "name", "dtype", "inputs", "targets", "cells", "layers", "outputs", "loss",
        "unroll", "features", "sequence", "steps", "lengths", "type", "cell", "units", "input",
        "return", "direction", "initial_state", "feedback", "activation", "state", "output",
        "params", "equations", "shape", "init", "bptt", "window", "chunk", "target", "x", "y",
        "h", "c", "h0", "RNN", "W", "b", "fwd.h", "bwd.c", "RNN.h", "W_xh", "mycell", "<<", "?",
        "!!python/object:os.system", "&a", "*a", "1", "true", "null", '"q"', "'"]
VALUES = ["1", "0", "-1", "2", "100", "1.5", "1e400", ".nan", ".inf", "0x10", "0o7", "true",
          "false", "null", "~", '""', "''", "[]", "{}", "rnn", "dense", "repeat", "simple",
          "lstm", "gru", "gru_reset_before", "mycell", "sequence", "last", "forward",
          "backward", "bidirectional", "linear", "tanh", "sigmoid", "relu", "softmax",
          "float32", "float64", "float16", "mse", "cross_entropy", "full", "units", "input",
          "[units, input]", "[units, units]", "[units]", "[units + input]", "[2*units]",
          "{shape: [units], init: zeros}", "{window: 2}", "{chunk: 1}", "{features: 1}",
          "{features: 3, sequence: false}", "[h, c]", "[h]", "x", "y", "RNN", "RNN.h",
          "|\n  h[t] = tanh(W @ x[t])", ">\n  h[t] = h[t-1]", '"h[t] = x[t]"',
          "[h[t] = tanh(W_xh @ x[t] + W_hh @ h[t-1] + b_h)]", "&a [1, 2]", "*a", "*nope",
          "!!python/name:os.system", "!!python/object/apply:os.system [ls]", "!!binary aGk=",
          "!!timestamp 2001-12-14", "!!str 1", "!!int '3'", "!!float x", "!!bool yes",
          "!!set {a}", "!!omap [a: 1]", "!!pairs [a: 1]", "2001-12-14", "- 1", "? a", "@x", "`",
          "%YAML 1.1", "---", "...", "#", "\t1", "{a: 1, a: 2}", "[[[[1]]]]", "{", "[", "'",
          '"', "\\"]


@st.composite
def yamlish(draw) -> str:
    """Lines of `key: value`, `- value`, flow mappings and garbage, at random indents."""
    lines = []
    for _ in range(draw(st.integers(1, 14))):
        indent = " " * draw(st.sampled_from([0, 0, 0, 2, 2, 4, 5, 6]))
        key, value = draw(st.sampled_from(KEYS)), draw(st.sampled_from(VALUES))
        kind = draw(st.integers(0, 6))
        if kind == 0:
            line = f"{key}:"
        elif kind == 1:
            line = f"- {value}"
        elif kind == 2:
            pairs = draw(st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)),
                                  max_size=4))
            line = f"- {{{', '.join(f'{k}: {v}' for k, v in pairs)}}}"
        elif kind == 3:
            line = draw(st.text(max_size=12))
        else:
            line = f"{key}: {value}"
        lines.append(indent + line)
    if draw(st.booleans()):
        lines.insert(0, "rnnc: 1")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n"]))


def _paths(value, path=()):
    """Every path into a YAML value (dict keys and list indices), the root first."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, path + (i,))


def _get(value, path):
    for part in path:
        value = value[part]
    return value


RANDOM_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.integers(), st.floats(),
    st.sampled_from(["", "x", "RNN", "units", "input", "h", "softmax", "simple", "sequence",
                     "class", "__import__('os').system('true')", "a b", "é", "1x", "x\ny",
                     "h[t] = h[t-1]", "fwd.h", "RNN.h"]),
    st.text(max_size=8),
    st.lists(st.sampled_from(["units", "input", 1, "h", "x"]), max_size=3),
    st.dictionaries(st.sampled_from(["features", "shape", "init", "window", "chunk", "h", "q"]),
                    st.integers(-1, 3), max_size=2),
)


@st.composite
def mutated_spec(draw) -> str:
    """A valid spec with a few structural mutations, dumped back to YAML."""
    import copy
    data = copy.deepcopy(draw(st.sampled_from(SPEC_DATA)))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(data))
        path = draw(st.sampled_from(paths[1:] or paths))
        parent, last = (_get(data, path[:-1]), path[-1]) if path else (None, None)
        action = draw(st.sampled_from(["delete", "duplicate", "retype", "swap", "rename",
                                       "garbage"]))
        if parent is None:
            break
        if action == "delete":
            del parent[last]
        elif action == "duplicate":
            if isinstance(parent, list):
                parent.insert(last, copy.deepcopy(parent[last]))
            else:
                parent[f"{last}"] = copy.deepcopy(parent[last])
                parent[draw(st.sampled_from(KEYS))] = copy.deepcopy(parent[last])
        elif action == "retype":
            parent[last] = draw(RANDOM_VALUES)
        elif action == "swap":
            siblings = list(parent.keys()) if isinstance(parent, dict) else list(range(len(parent)))
            other = draw(st.sampled_from(siblings))
            parent[last], parent[other] = parent[other], parent[last]
        elif action == "rename" and isinstance(parent, dict):
            new = draw(st.sampled_from(KEYS[:40]) | st.text(max_size=6))
            parent[new] = parent.pop(last)
        elif action == "garbage":
            target = _get(data, path)
            if isinstance(target, dict):
                target[draw(st.sampled_from(KEYS) | st.text(max_size=6))] = draw(RANDOM_VALUES)
            elif isinstance(target, list):
                target.insert(draw(st.integers(0, len(target))), draw(RANDOM_VALUES))
            else:
                parent[last] = [target, draw(RANDOM_VALUES)]
    flow = draw(st.sampled_from([None, False, True]))
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=flow, allow_unicode=True)


GARBAGE = st.one_of(st.text(max_size=10),
                    st.sampled_from(["{", "}", "[", "]", ":", "- ", "\t", "&a ", "*a", "!!", "'",
                                     '"', "#", "\n", "\n  ", "<<: *a", "%", "@", "\x00", "\ufeff",
                                     "\u2028", "\x85", "\r", "---\n", "...\n", "?"]))


@st.composite
def text_mutated_spec(draw) -> str:
    """A valid spec file with a few lines deleted, duplicated or swapped, or garbage put in."""
    lines = draw(st.sampled_from(SPEC_TEXTS)).split("\n")
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.integers(0, 5))
        if action == 0 and len(lines) > 1:
            del lines[i]
        elif action == 1:
            lines.insert(i, lines[i])
        elif action == 2:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action == 3:
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(GARBAGE) + lines[i][at:]
        elif action == 4:
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + lines[i][at + draw(st.integers(1, 5)):]
        else:  # re-indent
            lines[i] = " " * draw(st.integers(0, 6)) + lines[i].lstrip(" ")
    return "\n".join(lines)


# --- the loader and validator ----------------------------------------------------------------

def test_valid_specs_load():
    for text in SPEC_TEXTS:
        assert isinstance(load(text), rc.Spec)


@FUZZ
@given(st.text(max_size=300))
def test_random_unicode(text):
    load(text)


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("{}[]:,-?&*!|>'\"#%@` \t\n\r.0123abxy")),
               max_size=80))
def test_random_yaml_punctuation(text):
    load(text)


@FUZZ
@given(yamlish())
def test_yamlish_fragments(text):
    load(text)


@settings(FUZZ, max_examples=200)
@given(mutated_spec())
def test_mutated_specs(text):
    load(text)


@settings(FUZZ, max_examples=200)
@given(text_mutated_spec())
def test_text_mutated_specs(text):
    load(text)


@FUZZ
@given(st.sampled_from(SPEC_TEXTS), st.integers(0, 10_000), st.binary(max_size=8))
def test_bytes_inserted(text, at, junk):
    at = at % (len(text) + 1)
    load(text[:at] + junk.decode("latin-1") + text[at:])


# --- pathological documents: bounded time and memory ----------------------------------------

@pytest.mark.parametrize("text", [
    "a: &a [" + "x, " * 50 + "]\n" + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" +
                                          f"*{chr(97 + i)}, " * 9 + "]\n" for i in range(9)),
    "rnnc: 1\n" + "k: v\n" * 30_000,
    "rnnc: 1\nname: " + "a" * 1_000_000 + "\n",
    "rnnc: 1\nname: '" + "\\" * 100_000 + "'\n",
    "[" * 60 + "]" * 60,
    "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 70)),
], ids=["alias_fanout", "many_keys", "long_name", "long_quoted", "nested_60", "block_nested_70"])
def test_pathological_documents_fail_fast(text):
    load(text)


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "{a: " * 3000 + "1" + "}" * 3000],
                         ids=["lists", "mappings"])
def test_deeply_nested_yaml(text):
    """PyYAML's composer recurses: deep nesting is a SpecError, not a RecursionError."""
    with pytest.raises(rc.RnncError) as caught:
        rc.load_spec_text(text, FILE)
    check_one_line(caught.value)


@pytest.mark.parametrize("value", ['!!bool "abc"', '!!bool ""', '!!int ""', '!!float "_"',
                                   '!!timestamp "abc"'],
                         ids=["bool", "bool_empty", "int_empty", "float_underscore",
                              "timestamp"])
def test_bad_tagged_scalar(value):
    """PyYAML's constructors fail with KeyError (!!bool), IndexError (!!int, !!float of
    '' or '_') or AttributeError (!!timestamp): each is a located SpecError."""
    with pytest.raises(rc.RnncError) as caught:
        rc.load_spec_text("rnnc: 1\nname: s\ninputs: {x: {features: 1, sequence: "
                          f"{value}}}}}\nlayers: [{{name: o, type: dense, units: 1, input: x}}]\n",
                          FILE)
    check_one_line(caught.value)
    assert str(caught.value).startswith(f"{FILE}:3:")


@pytest.mark.parametrize("char", ["\x00", "\x07", "\ufffe"], ids=["nul", "bell", "fffe"])
def test_reader_error(char):
    """A character YAML does not accept: one line, with its line and column (PyYAML's
    own message has a second line `in "<unicode string>", position N`)."""
    with pytest.raises(rc.RnncError) as caught:
        rc.load_spec_text(f"rnnc: 1\nname: s{char}\n", FILE)
    check_one_line(caught.value)
    assert str(caught.value).startswith(f"{FILE}:2:")


def _echo(text, id):
    return pytest.param(text, id=id)


@pytest.mark.parametrize("text", [
    _echo('rnnc: 1\nname: s\n"a\\nb": 1\n', "newline"),
    _echo('rnnc: 1\nname: s\n"a\\x85b": 1\n', "nel"),
    _echo('rnnc: 1\nname: s\n"a\\vb": 1\n', "vertical_tab"),
    _echo('rnnc: 1\nname: s\n"\\e[31mred": 1\n', "escape"),
    _echo('rnnc: 1\nname: s\ninputs: {"a\\rb": {features: 1}}\n'
          "layers: [{name: o, type: dense, units: 1, input: x}]\n", "input_name_cr"),
    _echo('rnnc: 1\nname: s\ninputs: {x: {features: 1}}\ncells: {"\\e[2J": 1}\n'
          "layers: [{name: o, type: dense, units: 1, input: x}]\n", "cell_name_escape"),
    _echo('rnnc: 1\nname: s\ninputs: {x: {features: 1}}\n'
          'layers: [{name: o, type: dense, units: 1, input: "x\\ny"}]\n', "input_value_newline"),
    _echo('rnnc: 1\nname: s\n"a\\u2028b": 1\n', "key_u2028"),
    _echo('rnnc: 1\nname: s\n"a\\u2029b": 1\n', "key_u2029"),
    _echo('rnnc: 1\nname: s\ninputs: {x: {features: 1}}\n'
          'layers: [{name: o, type: dense, units: 1, input: "x\\u2028y"}]\n',
          "input_value_u2028"),
])
def test_text_echoed_raw(text):
    """Keys and names are quoted in messages with their control characters escaped: a
    line break makes no second line, an escape sequence does not reach the terminal."""
    with pytest.raises(rc.RnncError) as caught:
        rc.load_spec_text(text, FILE)
    check_one_line(caught.value)


_BASE = ("rnnc: 1\nname: s\ninputs: {x: {features: 2}, v: {features: 3, sequence: false}}\n"
         "targets: {y: {features: 1, sequence: false}}\n")


@pytest.mark.parametrize("tail", [
    pytest.param("layers: [{name: o, type: dense, units: 1, input: [v]}]\n", id="dense_input"),
    pytest.param("layers: [{name: r, type: rnn, cell: simple, units: 3, input: {x: 1}}]\n",
                 id="rnn_input"),
    pytest.param("layers: [{name: r, type: rnn, cell: simple, units: 3, input: x, "
                 "initial_state: {h: [v]}}]\n", id="initial_state"),
    pytest.param("layers: [{name: o, type: dense, units: 1, input: v}]\n"
                 "loss: {type: mse, output: o, target: [y]}\n", id="loss_target"),
    pytest.param("layers: [{name: o, type: dense, units: 1, input: v}]\n"
                 "loss: {type: mse, output: [o], target: y}\n", id="loss_output"),
    pytest.param("layers: [{name: o, type: dense, units: 1, input: v}]\noutputs: [[o]]\n",
                 id="outputs"),
    pytest.param("layers: [{name: o, type: dense, units: 1, input: v}]\noutputs: [{o: 1}]\n",
                 id="outputs_mapping"),
])
def test_unhashable_reference(tail):
    """A list or a mapping where a name is expected is a SpecError, not a TypeError from
    a set or dict lookup."""
    with pytest.raises(SpecError) as caught:
        rc.load_spec_text(_BASE + tail, FILE)
    check_one_line(caught.value)
    assert "a list" in str(caught.value) or "a mapping" in str(caught.value)
