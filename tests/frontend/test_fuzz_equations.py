"""Cell equations are parsed, never evaluated (docs/spec.md, Equations): equations from a
small grammar of allowed and forbidden Python go through the loader with eval, exec and
code-producing compile() forbidden, and a canary file shows that no equation ran code. The
checks of a load (one clean line, in time) are test_fuzz.py's."""

from __future__ import annotations

import ast
import builtins
import json
import os
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz import FILE, FUZZ, _lines, load

import rnncompiler as rc
from rnncompiler.errors import SpecError

# what a load imports, imported before one runs with compile and exec blocked (importing
# a module without its .pyc compiles it)
rc.load_spec_text("rnnc: 1\nname: warm\ninputs: {x: {features: 1}}\nlayers:\n"
                  "  - {name: R, type: rnn, cell: lstm, units: 1, input: x}\n")

# --- equations: parsed, never evaluated -----------------------------------------------------

# a file that an equation run as code would create; it lies in an existing folder
CANARY = Path(tempfile.gettempdir()) / f"rnnc_fuzz_canary_{os.getpid()}"

INJECTIONS = [
    "__import__('os').system('touch {canary}')",
    "__import__('pathlib').Path('{canary}').touch()",
    "open('{canary}', 'w').write('x')",
    "exec(\"open('{canary}','w')\")",
    "eval(\"open('{canary}','w')\")",
    "compile('1', 'f', 'exec')",
    "(lambda: open('{canary}', 'w'))()",
    "lambda h: h",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__class__",
    "W.T",
    "np.tanh(x[t])",
    "f'{{open(\"{canary}\", \"w\")}}'",
    "f'{{x}}'",
    "(y := x[t])",
    "[open('{canary}', 'w') for _ in 'a']",
    "{{k: v for k, v in []}}",
    "tanh(*[x[t]])",
    "tanh(x=x[t])",
    "globals()",
    "__builtins__",
    "print",
    "breakpoint()",
    "h[t-1] if x[t] else h[t-1]",
    "h[t-1] and x[t]",
    "not h[t-1]",
    "~h[t-1]",
    "h[t-1] ** 2",
    "h[t-1] // 2",
    "h[t-1] % 2",
    "h[t-1] < 2",
    "h[t-1][0]",
    "h[0]",
    "h[t+1]",
    "h[t-2]",
    "x[t-1]",
    "x[0:1]",
    "h[t-1:]",
    "x",
    "t",
    "tanh",
    "tanh()",
    "tanh(x[t], x[t])",
    "concat()",
    "softmax(W)",
    "W @ W",
    "W * x[t]",
    "1e999",
    "10" + "0" * 400,
    "0x10",
    "1j",
    "True",
    "None",
    "...",
    "'a'",
    "b'a'",
    "await h",
    "yield h",
    "(yield)",
    "h[t-1]; import os",
    "h[t-1]\nimport os",
    "h[t-1] # comment __import__('os')",
    "\\",
    "(",
    ")",
    "",
    "é",
    "h[t-1]\u00a0",
    "ｈ[t-1]",
    "tanh(" * 120 + "h[t-1]" + ")" * 120,
    "(" * 250 + "h[t-1]" + ")" * 250,
    "-" * 500 + "h[t-1]",
    " + ".join(["h[t-1]"] * 150),
    " @ ".join(["U"] * 150) + " @ h[t-1]",
    "h[t-1] + " * 200 + "h[t-1]",
    "a" * 5000,
]

# the cell's parameters; CELL_TAIL uses them all, so a spec whose fuzzed lines are
# harmless is valid
CELL_TAIL = "h[t] = tanh(W @ x[t] + U @ h[t-1] + b)"


def cell_spec(lines: list[str], *, style: str = "list", tail: bool = True) -> str:
    """A spec whose custom cell has ``lines`` as equations (then CELL_TAIL, if ``tail``)."""
    equations = [*lines, CELL_TAIL] if tail else list(lines)
    data = {
        "rnnc": 1, "name": "fuzzed",
        "inputs": {"x": {"features": 2}},
        "cells": {"fuzzcell": {"state": ["h"],
                               "params": {"W": ["units", "input"], "U": ["units", "units"],
                                          "b": ["units"]},
                               "equations": equations}},
        "layers": [{"name": "R", "type": "rnn", "cell": "fuzzcell", "units": 3, "input": "x"}],
        "unroll": {"steps": 2},
    }
    if style == "list":  # one YAML string per line: any text reaches the equation parser
        return json.dumps(data)
    data["cells"]["fuzzcell"]["equations"] = "\n".join(equations) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _no_code_runs(*args, **kwargs):
    raise AssertionError("an equation was evaluated as code")


_real_compile = builtins.compile


def _guarded_compile(source, filename, mode, flags=0, *args, **kwargs):
    if not flags & ast.PyCF_ONLY_AST:
        raise AssertionError("an equation was compiled to code")
    return _real_compile(source, filename, mode, flags, *args, **kwargs)


def load_equations(text: str):
    """load() with eval, exec and code-producing compile() forbidden while it runs; and
    the canary file still absent afterwards."""
    saved = builtins.eval, builtins.exec, builtins.compile
    builtins.eval, builtins.exec, builtins.compile = _no_code_runs, _no_code_runs, \
        _guarded_compile
    try:
        return load(text)
    finally:
        builtins.eval, builtins.exec, builtins.compile = saved
        assert not CANARY.exists(), "an equation ran code: the canary file was created"


@pytest.fixture(scope="module", autouse=True)
def _canary_absent():
    CANARY.unlink(missing_ok=True)
    yield
    created = CANARY.exists()
    CANARY.unlink(missing_ok=True)
    assert not created


def _injection_lines(form: str, expr: str) -> list[str]:
    if form == "local":  # q = <expr>, then the usual state equation
        return [f"q = {expr}", CELL_TAIL]
    if form == "state":  # the state's own equation
        return ["q = tanh(W @ x[t] + U @ h[t-1] + b)", f"h[t] = {expr}"]
    return [expr, CELL_TAIL]  # a bare statement


# (form, injection) pairs that are valid equations: everything else must be an error
ACCEPTED = {("local", "h[t-1] # comment __import__('os')"),
            ("state", "h[t-1] # comment __import__('os')"),
            ("statement", ""), ("local", "0x10")}


@pytest.mark.parametrize("expr", INJECTIONS, ids=range(len(INJECTIONS)))
@pytest.mark.parametrize("form", ["local", "state", "statement"])
def test_injection_equations(expr, form):
    result = load_equations(cell_spec(_injection_lines(form, expr.format(canary=CANARY)),
                                      tail=False))
    if (form, expr) in ACCEPTED:
        assert isinstance(result, rc.Spec), str(result)
    else:
        assert isinstance(result, rc.RnncError), f"accepted: {expr!r}"
        assert isinstance(result, SpecError)
        line = _lines(result)[0]
        assert re.match(rf"{re.escape(FILE)}:\d+:\d+: error: ", line), line


@pytest.mark.parametrize("expr", INJECTIONS[:24], ids=range(24))
def test_injection_in_block_equations(expr):
    """The same through an `equations: |` block, and in comments (harmless there)."""
    expr = expr.format(canary=CANARY)
    result = load_equations(cell_spec([f"q = {expr}"], style="block"))
    assert isinstance(result, SpecError)
    result = load_equations(cell_spec([f"# {expr}", f"q = tanh(b)  # {expr}"], style="block"))
    assert isinstance(result, rc.Spec), str(result)


ATOMS = ["x[t]", "h[t-1]", "h[t]", "W", "U", "b", "W @ x[t]", "U @ h[t-1]", "q", "1", "0.5",
         "-2", "1e-3", "t", "x", "h", "tanh", "os", "np", "__import__", "self", "x[t-1]",
         "h[t-2]", "h[0]", "'s'", "None", "True"]
FUNCS = ["tanh", "sigmoid", "relu", "exp", "log", "softmax", "concat", "print", "eval",
         "__import__", "getattr", "np.tanh", "max", "sum"]
BINOPS = ["+", "-", "*", "/", "@", "**", "//", "%", "<", "==", "and", "or", "|", "&", "^",
          "<<", "if 1 else", "in", "is"]


def _expressions():
    return st.recursive(
        st.sampled_from(ATOMS),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(BINOPS), inner).map(lambda p: f"{p[0]} {p[1]} {p[2]}"),
            st.tuples(st.sampled_from(["-", "+", "not ", "~", "*", "await ", "lambda: "]),
                      inner).map("".join),
            st.tuples(st.sampled_from(FUNCS), st.lists(inner, max_size=3)).map(
                lambda p: f"{p[0]}({', '.join(p[1])})"),
            inner.map(lambda e: f"({e})"),
            inner.map(lambda e: f"({e}).__class__"),
            inner.map(lambda e: f"[{e}]"),
            inner.map(lambda e: f"f'{{{e}}}'"),
            inner.map(lambda e: f"(q := {e})"),
            st.tuples(inner, inner).map(lambda p: f"{p[0]}[{p[1]}]"),
        ),
        max_leaves=12)


@st.composite
def equation_lines(draw) -> list[str]:
    lines = []
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(["q", "q2", "h[t]", "h[t-1]", "x[t]", "W", "tanh",
                                       "q, r", "q.a", "q[0]", "__import__", "class"]))
        op = draw(st.sampled_from(["=", "=", "=", "+=", ":=", "==", "= q =", ""]))
        rhs = draw(_expressions() | st.text(max_size=30))
        comment = draw(st.sampled_from(["", "  # note", " #", "# only a comment"]))
        lines.append(f"{target} {op} {rhs}{comment}")
    return lines


@settings(FUZZ, max_examples=200)
@given(equation_lines())
def test_random_equations(lines):
    load_equations(cell_spec(lines))


@FUZZ
@given(st.lists(st.text(max_size=60), min_size=1, max_size=3))
def test_random_equation_text(lines):
    load_equations(cell_spec(lines))


@FUZZ
@given(st.lists(st.text(alphabet=st.sampled_from(list("xhtWUbq[]()-+*/@=.,: 01#_")),
                        max_size=60), min_size=1, max_size=3))
def test_random_equation_characters(lines):
    load_equations(cell_spec(lines))


# well-typed expressions of shape [units]: the parser must accept them all
VECTORS = ["h[t-1]", "b", "(W @ x[t])", "(U @ h[t-1])", "q"]


def _vector_expressions():
    return st.recursive(
        st.sampled_from(VECTORS),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(
                lambda p: f"({p[0]} {p[1]} {p[2]})"),
            st.tuples(inner, st.sampled_from(["* 2", "/ 3", "- 1", "+ 0.5"])).map(" ".join),
            inner.map(lambda e: f"-({e})"),
            st.tuples(st.sampled_from(["tanh", "sigmoid", "relu", "softmax"]), inner).map(
                lambda p: f"{p[0]}({p[1]})"),
            inner.map(lambda e: f"(U @ ({e}))"),
        ),
        max_leaves=10)


@FUZZ
@given(_vector_expressions())
def test_well_typed_equations_are_accepted(expr):
    text = cell_spec(["q = tanh(b)", f"r = {expr}"])
    data = json.loads(text)
    data["cells"]["fuzzcell"]["equations"][-1] = "h[t] = tanh(W @ x[t] + U @ h[t-1] + b) + r"
    spec = load_equations(json.dumps(data))
    assert isinstance(spec, rc.Spec), spec
    assert [e.target for e in spec.cells["fuzzcell"].equations] == ["q", "r", "h"]


def test_canary_folder_exists():
    """The canary check means something: code run by an equation could create the file."""
    assert CANARY.parent.is_dir()
