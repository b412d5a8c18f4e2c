"""Hostile names: every name a spec gives (spec, inputs, targets, layers, cells,
parameters, states, equation locals) tried with strings meant to break the generated code.

A name that is not an identifier is a located SpecError (docs/spec.md: names are
identifiers). A name that is one — a Python keyword, a builtin, a module name, a dunder, a
name the generated code uses itself, a very long one — gives a spec whose NumPy module
compiles, shadows nothing and computes what the reference interpreter computes, and whose
ONNX model passes the checker and computes the same. Names reach generated source only
as checked identifiers or inside string literals and comments.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import keyword
import re
import tokenize

import numpy as np
import onnx
import pytest

import rnncompiler as rc
from rnncompiler.errors import SpecError, SpecErrors
from rnncompiler.frontend.equations import RESERVED
from rnncompiler.ir.evaluate import evaluate

FILE = "hostile.yaml"
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
BUILTIN_CELLS = ("simple", "lstm", "gru", "gru_reset_before")
LONG = "n" + "_very_long" * 30  # 301 characters: equations still fit in a line


def xfail(reason: str):
    return pytest.mark.xfail(strict=True, reason=reason)


# --- the spec: every kind of name, each in a field of its own ----------------------------
# A custom cell with two states (one fed from a vector input, one passed on as another
# layer's initial state), a local, three parameters; a built-in cell; a softmax dense layer
# with a cross-entropy loss.

DEFAULTS = {"spec": "net", "input": "xin", "vector": "v0", "target": "yt", "cell": "mycell",
            "state": "s", "state2": "c", "param": "Wx", "param2": "Wh", "param3": "bias",
            "local": "pre", "layer": "rec", "layer2": "rec2", "layer3": "dense"}


def spec_data(names: dict) -> dict:
    n = {**DEFAULTS, **names}
    return {
        "rnnc": 1,
        "name": n["spec"],
        "inputs": {n["input"]: {"features": 2}, n["vector"]: {"features": 3, "sequence": False}},
        "targets": {n["target"]: {"features": 2, "sequence": False}},
        "cells": {n["cell"]: {
            "state": [n["state"], n["state2"]],
            "params": {n["param"]: ["units", "input"], n["param2"]: ["units", "units"],
                       n["param3"]: ["units"]},
            "equations": [
                f"{n['local']} = {n['param']} @ x[t] + {n['param2']} @ {n['state']}[t-1]"
                f" + {n['param3']}  # a comment",
                f"{n['state2']}[t] = sigmoid({n['local']}) * {n['state2']}[t-1]"
                f" + tanh({n['local']})",
                f"{n['state']}[t] = tanh({n['local']}) * sigmoid({n['state2']}[t])",
            ]}},
        "layers": [
            {"name": n["layer"], "type": "rnn", "cell": n["cell"], "units": 3,
             "input": n["input"], "return": "sequence",
             "initial_state": {n["state"]: n["vector"]}},
            {"name": n["layer2"], "type": "rnn", "cell": "simple", "units": 3,
             "input": n["layer"], "initial_state": {"h": f"{n['layer']}.{n['state2']}"}},
            {"name": n["layer3"], "type": "dense", "units": 2, "input": n["layer2"],
             "activation": "softmax"},
        ],
        "outputs": [n["layer3"], n["layer"]],
        "loss": {"type": "cross_entropy", "output": n["layer3"], "target": n["target"]},
        "unroll": {"steps": 3},
    }


def spec_text(names: dict) -> str:
    return json.dumps(spec_data(names), indent=1)  # JSON is YAML: any string survives


# --- hostile strings -----------------------------------------------------------------------

NOT_IDENTIFIERS = [
    "__import__('os')", "__import__('os').system('true')", "a;b", "a b", 'x"', "'", '"""',
    "\n", "a\nb", "{}", "{x}", "%s", "${x}", "$(true)", "`true`", "\\", "a\\nb", "é", "Ω",
    "ｘ", "x\u200b", "a.b", "a-b", "a/b", "1a", "", " a", "a ", "\t", "a[0]", "a()", "\x1b[2J",
    "<b>", "a,b", "a:b", "a=b", "#a", "..",
]
IDENTIFIERS = [
    "class", "import", "lambda", "def", "return", "None", "True", "False", "async", "await",
    "match", "case", "type", "_",
    "print", "exec", "eval", "open", "compile", "globals", "getattr", "sum", "range", "len",
    "__import__", "__builtins__", "__init__", "__class__", "__name__", "__file__", "self",
    "np", "numpy", "os", "sys", "math",
    "DTYPE", "STEPS", "PARAMS", "INPUTS", "TARGETS", "params", "inputs", "outputs", "batch",
    "forward", "init_params", "initialize", "name_seed", "check_input", "loss_and_grads",
    "train_step", "sigmoid", "softmax", "log_softmax", "mse", "cross_entropy", "outer_sum",
    "_orthogonal", "loss", "grad", "T", "steps", "float32",
    "x", "t", "tanh", "concat",
    LONG,
]
HOSTILE = NOT_IDENTIFIERS + IDENTIFIERS

# each field and the name in DEFAULTS it replaces; fields used in equations share their
# namespace with x, t and the functions
FIELDS = ["spec", "input", "vector", "target", "cell", "state", "state2", "param", "param2",
          "param3", "local", "layer", "layer2", "layer3"]
IN_EQUATIONS = {"state", "state2", "param", "param2", "param3", "local"}


def expected_rejection(field: str, name: str) -> bool:
    """Whether the spec rightly refuses ``name`` in ``field``."""
    if not IDENTIFIER.match(name):
        return True
    if field in IN_EQUATIONS and (name in RESERVED or keyword.iskeyword(name)):
        return True  # equations are read by Python's parser: a keyword cannot be a name
    if field in ("input", "target") and name == "loss":
        return True  # the name of the loss output
    return field == "cell" and name in BUILTIN_CELLS


# --- running a spec in every way -----------------------------------------------------------

def arrays(spec, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = {k: rng.normal(0, 0.7, v.shape).astype(np.float32)
              for k, v in rc.init_params(spec).items()}
    inputs = {}
    for name, array in spec.inputs.items():
        shape = (2, 3, array.features) if array.sequence else (2, array.features)
        inputs[name] = rng.normal(size=shape).astype(np.float32)
    targets = {}
    for name, array in spec.targets.items():
        probabilities = rng.uniform(0.1, 1, (2, array.features))
        targets[name] = (probabilities / probabilities.sum(-1, keepdims=True)).astype(np.float32)
    return params, inputs, targets


def module_names(source: str) -> set[str]:
    """Every NAME token of a Python source (keywords included)."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.string for tok in tokens if tok.type == tokenize.NAME}


def check_module_source(source: str, baseline: str) -> None:
    """The generated module parses, and every name it has that the default spec's module
    lacks is a plain variable: an identifier, not a keyword, shadowing no builtin and no
    module-level name."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            assert node.id.isidentifier() and not keyword.iskeyword(node.id), node.id
    module_level = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            module_level.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            module_level |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Assign):
            module_level |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    new = module_names(source) - module_names(baseline)
    for name in new:
        assert name.isidentifier(), name
        assert not keyword.iskeyword(name) and not keyword.issoftkeyword(name), name
        assert not hasattr(builtins, name), f"shadows the builtin {name}"
        assert name not in module_level, f"shadows the module's own {name}"
    # a function's locals shadow neither builtins nor the module's names
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in ("forward", "loss_and_grads"):
            stored = {n.id for n in ast.walk(node)
                      if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            assert not stored & module_level, f"{node.name} shadows {stored & module_level}"
            shadowed = {s for s in stored if hasattr(builtins, s)}
            assert not shadowed, f"{node.name} shadows the builtins {shadowed}"


def assert_close(actual: dict, expected: dict, what: str, rtol=2e-4, atol=2e-5):
    assert set(actual) == set(expected), f"{what}: {sorted(actual)} != {sorted(expected)}"
    for key in expected:
        assert np.asarray(actual[key]).shape == np.asarray(expected[key]).shape, (what, key)
        np.testing.assert_allclose(actual[key], expected[key], rtol=rtol, atol=atol,
                                   err_msg=f"{what}: {key}")


_BASELINE: dict = {}


def baseline_source(train: bool) -> str:
    if train not in _BASELINE:
        spec = rc.load_spec_text(spec_text({}), FILE)
        _BASELINE[train] = rc.compile_spec(spec, "numpy", train=train).source
    return _BASELINE[train]


def check_everything(spec, *, train: bool = True) -> None:
    """Reference, NumPy module and ONNX model agree, forward and (with ``train``) for the
    loss and gradients; generated code is clean."""
    params, inputs, targets = arrays(spec)
    reference = evaluate(rc.unroll(spec), params, inputs)

    module = rc.compile_spec(spec, "numpy", train=train)
    check_module_source(module.source, baseline_source(train))
    compile(module.source, "<generated>", "exec")
    numpy_out = module.run(params, inputs)
    assert_close(numpy_out, reference, "numpy vs reference", rtol=1e-5, atol=1e-6)

    model = rc.compile_spec(spec, "onnx", train=train)
    proto = model.model()
    onnx.checker.check_model(proto, full_check=True)
    assert {i.name for i in proto.graph.input} == set(spec.inputs)
    assert {o.name for o in proto.graph.output} == set(numpy_out)
    assert_close(model.run(params, inputs), numpy_out, "onnx vs numpy")
    if train:
        data = {**inputs, **targets}
        loss, grads = rc.loss_and_grads(spec, params, data)
        assert set(grads) == {f"grad.{k}" for k in params}
        onnx.checker.check_model(model.model(train=True), full_check=True)
        onnx_loss, onnx_grads = rc.loss_and_grads(spec, params, data, backend="onnx")
        np.testing.assert_allclose(onnx_loss, loss, rtol=2e-4)
        assert_close(onnx_grads, grads, "onnx vs numpy gradients", atol=1e-4)


def check_rejected(text: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        rc.load_spec_text(text, FILE)
    error = caught.value
    errors = error.errors if isinstance(error, SpecErrors) else [error]
    for one in errors:
        assert one.location is not None and one.location.line > 0, str(one)
        assert one.location.file == FILE
    return error


# --- the tests -----------------------------------------------------------------------------

def test_default_spec_runs_everywhere():
    check_everything(rc.load_spec_text(spec_text({}), FILE))


# the first line of a message; SpecErrors holds one per error
def _first_line(error) -> str:
    return str(error.errors[0] if isinstance(error, SpecErrors) else error)


@pytest.mark.parametrize("name", NOT_IDENTIFIERS, ids=[ascii(n) for n in NOT_IDENTIFIERS])
@pytest.mark.parametrize("field", FIELDS)
def test_non_identifiers_are_located_errors(field, name):
    text = spec_text({field: name})
    if field == "local" and IDENTIFIER.match(name.strip(" ")):  # blanks around `a = ...`
        check_everything(rc.load_spec_text(text, FILE), train=False)
        return
    error = check_rejected(text)
    assert _first_line(error).startswith(f"{FILE}:")


# fields of a kind already covered (a second state, parameter, layer) get every 4th name
SECOND = {"vector", "state2", "param2", "param3", "layer2"}


def _identifier_cases():
    for field in FIELDS:
        for name in IDENTIFIERS[::4] if field in SECOND else IDENTIFIERS:
            yield pytest.param(field, name, id=f"{field}-{name[:20]}")


@pytest.mark.parametrize(("field", "name"), list(_identifier_cases()))
def test_identifiers(field, name):
    text = spec_text({field: name})
    if expected_rejection(field, name):
        error = check_rejected(text)
        assert repr(name) in str(error) or name in str(error)
        return
    spec = rc.load_spec_text(text, FILE)
    # gradients too for one field of each kind; the forward pass for the rest
    full = field in ("input", "target", "state", "param", "local", "layer")
    check_everything(spec, train=full)


# PyYAML reads a mapping key of at most 1024 characters: longer names only where they are
# values (the spec's and the layers' names)
@pytest.mark.parametrize(("field", "name"), [
    *[(field, name) for field in ("spec", "input", "target", "layer", "state", "param")
      for name in ("a" * 1000, "_" * 300, "_" + "9" * 200, "A" * 999)],
    ("spec", "s" * 10_000), ("layer3", "d" * 10_000), ("layer", "r" * 10_000)],
    ids=lambda v: v if len(v) < 20 else f"{v[:2]}x{len(v)}")
def test_very_long_names(field, name):
    if field in IN_EQUATIONS and len(name) > 300:  # an equation line holds 1000 characters
        check_rejected(spec_text({field: name}))
        return
    check_everything(rc.load_spec_text(spec_text({field: name}), FILE), train=False)


def test_every_field_hostile_at_once():
    names = {"spec": "class", "input": "print", "vector": "np", "target": "grad",
             "cell": "lambda", "state": "sum", "state2": "__init__", "param": "exec",
             "param2": "os", "param3": "self", "local": "forward", "layer": "def",
             "layer2": "batch", "layer3": "import"}
    check_everything(rc.load_spec_text(spec_text(names), FILE))


def test_names_differing_only_in_underscores():
    """Sanitising must not merge names: `_a`, `a` and `a_` stay apart."""
    names = {"state": "_a", "state2": "a_", "local": "a", "param": "a__", "param2": "__a",
             "layer": "r_", "layer2": "_r", "layer3": "r"}
    check_everything(rc.load_spec_text(spec_text(names), FILE))


def test_names_the_numpy_module_makes_itself():
    """Variable names the generated module makes (h_1_all, RNN_h, ...) given to the spec's
    own names."""
    spec = rc.load_spec_text(spec_text({}), FILE)
    generated = sorted(n for n in module_names(rc.compile_spec(spec, train=True).source)
                       - set(dir(builtins)) if not keyword.iskeyword(n) and len(n) > 1)
    assert generated
    fields = ["input", "local", "layer", "layer2", "state2", "param3", "target", "vector"]
    tried = 0
    for field, name in zip(fields * 8, generated):
        if name in DEFAULTS.values() or (field in IN_EQUATIONS and name in RESERVED):
            continue
        check_everything(rc.load_spec_text(spec_text({field: name}), FILE), train=False)
        tried += 1
    assert tried >= 8


def _onnx_intermediates(train: bool) -> list[str]:
    """Tensor names the ONNX builder made for the default spec, that are identifiers."""
    spec = rc.load_spec_text(spec_text({}), FILE)
    proto = rc.compile_spec(spec, "onnx", train=train).model(train=train)
    outside = {i.name for i in proto.graph.input} | {o.name for o in proto.graph.output}
    return [o for node in proto.graph.node for o in node.output
            if IDENTIFIER.match(o) and o not in outside]


@pytest.mark.parametrize("train", [False, True])
def test_names_the_onnx_builder_makes_itself_cannot_clash(train):
    """Every tensor name the ONNX builder makes is no identifier (it carries ':'), so no
    input, layer or output name of a spec can meet one."""
    assert _onnx_intermediates(train=train) == []


def test_states_and_params_of_one_layer_do_not_collide_in_keys():
    """`<layer>.<state>` outputs and `<layer>.<param>` parameters live in one namespace
    (the .npz keys, the ONNX names); a cell may not have a state and a param of one name."""
    error = check_rejected(spec_text({"state2": "Wx"}))
    assert "Wx" in str(error)


# --- the spec file's own name reaches generated code too ------------------------------------

@pytest.mark.parametrize("file", ["C:\\specs\\xor.yaml", "specs\\N.yaml", 'a"""b.yaml',
                                  'x"""\nraise SystemExit("injected")\n""".yaml'],
                         ids=["windows_x", "windows_N", "quotes", "code"])
def test_spec_file_name_in_generated_module(file):
    """The file name reaches the module's docstring escaped: a backslash (a Windows path)
    is no bad escape, three quotes end nothing, a line break runs nothing."""
    spec = rc.load_spec_text(spec_text({}), file)
    module = rc.compile_spec(spec, "numpy")
    tree = ast.parse(module.source)
    # the file name is only ever inside the docstring
    docstring = ast.get_docstring(tree)
    assert docstring and (file in docstring or ascii(file)[1:-1] in docstring
                          or file.encode("unicode_escape").decode() in docstring)
    assert [type(n).__name__ for n in tree.body[:2]] == ["Expr", "Import"]
    params, inputs, _ = arrays(spec)
    module.run(params, inputs)


@pytest.mark.parametrize("file", ["a'b.yaml", "dir with spaces/s.yaml", "ü/ß.yaml",
                                  "{x}.yaml", "%s.yaml"])
def test_harmless_odd_file_names(file):
    spec = rc.load_spec_text(spec_text({}), file)
    module = rc.compile_spec(spec, "numpy")
    ast.parse(module.source)
    params, inputs, _ = arrays(spec)
    module.run(params, inputs)
    onnx.checker.check_model(rc.compile_spec(spec, "onnx").model(), full_check=True)
