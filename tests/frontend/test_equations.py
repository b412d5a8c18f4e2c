"""Tests for rnncompiler.frontend.equations: parsing, error places, render and symbolic shapes."""

import time
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncompiler.errors import EquationError, Location
from rnncompiler.frontend.equation_parser import parse_equations, split_lines
from rnncompiler.frontend.equations import (
    Binary,
    Call,
    Input,
    Local,
    Negate,
    Number,
    Param,
    State,
    render,
)
from rnncompiler.frontend.shapes import Dim, infer_shapes

U, I = Dim.of("units"), Dim.of("input")
MATRIX_X, MATRIX_H, VECTOR = (U, I), (U, U), (U,)


def gates(*names: str) -> dict:
    """Param shapes of gates named like W_x?, W_h?, b_? (docs/spec.md, Built-in cells)."""
    shapes = {}
    for name in names:
        shapes.update({f"W_x{name}": MATRIX_X, f"W_h{name}": MATRIX_H, f"b_{name}": VECTOR})
    return shapes


# docs/spec.md, Built-in cells: name -> (equations, param shapes, states)
BUILTIN = {
    "simple": (
        "h[t] = tanh(W_xh @ x[t] + W_hh @ h[t-1] + b_h)",
        {"W_xh": MATRIX_X, "W_hh": MATRIX_H, "b_h": VECTOR},
        ["h"],
    ),
    "lstm": (
        """\
i = sigmoid(W_xi @ x[t] + W_hi @ h[t-1] + b_i)
f = sigmoid(W_xf @ x[t] + W_hf @ h[t-1] + b_f)
g = tanh(W_xc @ x[t] + W_hc @ h[t-1] + b_c)
o = sigmoid(W_xo @ x[t] + W_ho @ h[t-1] + b_o)
c[t] = f * c[t-1] + i * g
h[t] = o * tanh(c[t])""",
        gates("i", "f", "c", "o"),
        ["h", "c"],
    ),
    "gru": (
        """\
r = sigmoid(W_xr @ x[t] + W_hr @ h[t-1] + b_r)
z = sigmoid(W_xz @ x[t] + W_hz @ h[t-1] + b_z)
n = tanh(W_xn @ x[t] + b_xn + r * (W_hn @ h[t-1] + b_hn))
h[t] = (1 - z) * n + z * h[t-1]""",
        {**gates("r", "z"), "W_xn": MATRIX_X, "W_hn": MATRIX_H, "b_xn": VECTOR, "b_hn": VECTOR},
        ["h"],
    ),
    "gru_reset_before": (
        """\
r = sigmoid(W_xr @ x[t] + W_hr @ h[t-1] + b_r)
z = sigmoid(W_xz @ x[t] + W_hz @ h[t-1] + b_z)
n = tanh(W_xn @ x[t] + W_hn @ (r * h[t-1]) + b_n)
h[t] = (1 - z) * n + z * h[t-1]""",
        gates("r", "z", "n"),
        ["h"],
    ),
}

PEEPHOLE = """\
# peephole LSTM (Gers & Schmidhuber): gates also see the cell state
i = sigmoid(W_xi @ x[t] + W_hi @ h[t-1] + p_i * c[t-1] + b_i)
f = sigmoid(W_xf @ x[t] + W_hf @ h[t-1] + p_f * c[t-1] + b_f)
g = tanh(W_xc @ x[t] + W_hc @ h[t-1] + b_c)
c[t] = f * c[t-1] + i * g

o = sigmoid(W_xo @ x[t] + W_ho @ h[t-1] + p_o * c[t] + b_o)   # o sees this step's c
h[t] = o * tanh(c[t])
"""

# The small cell the error tests use.
PARAMS = {"W": MATRIX_X, "V": MATRIX_H, "b": VECTOR}
STATES = ["h"]


def parse(text: str, params=PARAMS, states=STATES):
    lines = split_lines(text, Location("cell.yaml", 1, 1))
    return parse_equations(lines, params=params, states=states)


def check(text: str, params=PARAMS, states=STATES) -> dict:
    equations = parse(text, params, states)
    return infer_shapes(equations, param_shapes=params, state_shape=VECTOR, input_shape=(I,))


# ------------------------------------------------------------------------ built-in cells


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_cells_parse_and_check_symbolically(name):
    text, params, states = BUILTIN[name]
    equations = parse(text, params, states)
    assert [eq.text for eq in equations] == text.splitlines()
    shapes = check(text, params, states)
    assert set(shapes) == {eq.target for eq in equations}
    assert all(shape == VECTOR for shape in shapes.values())


def test_simple_cell_tree():
    [equation] = parse(*BUILTIN["simple"])
    product_x = Binary("@", Param("W_xh"), Input())
    product_h = Binary("@", Param("W_hh"), State("h", previous=True))
    expected = Call("tanh", (Binary("+", Binary("+", product_x, product_h), Param("b_h")),))
    assert (equation.target, equation.is_state, equation.expr) == ("h", True, expected)


def test_gru_tree_uses_locals_numbers_and_parentheses():
    equations = parse(*BUILTIN["gru"])
    one_minus_z = Binary("-", Number(1.0), Local("z"))
    assert equations[-1].expr.left == Binary("*", one_minus_z, Local("n"))


@pytest.mark.parametrize("name", BUILTIN)
def test_render_round_trips_builtin_cells(name):
    text, params, states = BUILTIN[name]
    equations = parse(text, params, states)
    rendered = [f"{eq.target}{'[t]' if eq.is_state else ''} = {render(eq.expr)}"
                for eq in equations]
    assert rendered == text.splitlines()  # the spec's own spelling comes back
    again = parse("\n".join(rendered), params, states)
    assert [eq.expr for eq in again] == [eq.expr for eq in equations]


@pytest.mark.parametrize("source", [
    "a - (b - c)", "a - b - c", "(a + b) * c", "a * (b * c)", "-(a + b)", "-a * b",
    "a * -b", "a / (b * c)", "V @ (b * h[t-1])", "--a", "concat(a, b * 2, x[t])", "0.5 * a",
])
def test_render_uses_minimal_parentheses(source):
    text = f"a = b\nc = b\nh[t] = {source}"
    expr = parse(text, params={"b", "V"})[-1].expr
    assert render(expr) == source


def test_unary_plus_is_dropped():
    assert parse("h[t] = +b", params={"b"})[0].expr == Param("b")


def test_peephole_lstm_uses_c_of_this_step():
    params = {**gates("i", "f", "c", "o"), "p_i": VECTOR, "p_f": VECTOR, "p_o": VECTOR}
    equations = parse(PEEPHOLE, params, ["h", "c"])
    assert [eq.target for eq in equations] == ["i", "f", "g", "c", "o", "h"]
    o = equations[4]
    assert o.loc == Location("cell.yaml", 7, 1)
    assert o.text == "o = sigmoid(W_xo @ x[t] + W_ho @ h[t-1] + p_o * c[t] + b_o)"
    assert Binary("*", Param("p_o"), State("c", previous=False)) == o.expr.args[0].left.right
    shapes = check(PEEPHOLE, params, ["h", "c"])
    assert shapes["c"] == shapes["o"] == VECTOR


# ------------------------------------------------------------------------ parse errors

# (text, line, where: a substring whose first character is at fault, or a column; words)
PARSE_ERRORS = [
    ("h[t] = h[t-1] ** 2", 1, "**", "`**` is not supported; write x * x"),
    ("h[t] = b // 2", 1, "//", "use /"),
    ("h[t] = b % 2", 1, "%", "`%` is not supported"),
    ("h[t] = ~b", 1, "~", "`~` is not supported"),
    ("h[t] = not b", 1, "not", "`not` is not supported"),
    ("h[t] = np.tanh(h[t-1])", 1, "np", "only tanh, sigmoid, relu, exp, log, softmax and"),
    ("h[t] = sigmod(h[t-1])", 1, "sigmod", "did you mean 'sigmoid'"),
    ("h[t] = b.T", 1, "b.T", "attributes"),
    ("h[t] = lambda: b", 1, "lambda", "lambda"),
    ("h[t] = h[t-1] < b", 1, "h[t-1]", "comparisons"),
    ("h[t] = b if b else b", 1, "b if", "`if`"),
    ("h[t] = 'tanh'", 1, "'tanh'", "not a number"),
    ("h[t] = f'{b}'", 1, "f'", "f-strings"),
    ("h[t] = True * b", 1, "True", "not a number"),
    ("h[t] = 1j * b", 1, "1j", "not a number"),
    ("h[t] = ... * b", 1, "...", "not a number"),
    ("h[t] = 1e999 * b", 1, "1e999", "number too large"),
    ("h[t] = b  <<  2", 1, "<<", "`<<` is not supported"),
    ("h[t] = (b)**(b)", 1, "**", "`**` is not supported"),
    ("h[t] = 9" + "9" * 400 + " * b", 1, "99", "too large"),
    ("h[t] = [b]", 1, "[b]", "`[b]`: not allowed"),
    ("h[t] = tanh(*b)", 1, "*b", "`*` unpacking"),
    ("h[t] = tanh(h[t-1], approximate=b)", 1, "approximate", "keyword arguments"),
    ("h[t] = tanh(**b)", 1, "**b", "keyword arguments"),
    ("h[t] = (a := b)", 1, "a :=", "`:=`"),
    ("h[t] = tanh(b, b)", 1, "tanh", "tanh takes one argument, got 2"),
    ("h[t] = concat()", 1, "concat", "at least one argument"),
    ("h[t] = tanh * b", 1, "tanh", "tanh is a function; call it"),
    ("a = c = b\nh[t] = a", 1, "c =", "not `a = b = ...`"),
    ("a += b", 1, "a", "`+=` is not supported"),
    ("a: float = b", 1, "a", "one assignment"),
    ("tanh(b)", 1, "tanh", "one assignment"),
    ("import os", 1, "import", "one assignment"),
    ("h[t] = b; a = b", 1, "a =", "one equation per line"),
    ("a, c = b, b", 1, "a", "one name per line"),
    ("b[t] = b", 1, "b[t]", "new name or a state written s[t] (states: h[t])"),
    ("x[t] = b", 1, "x[t]", "new name or a state"),
    ("h[t-1] = b", 1, "h[t-1]", "assign the state as h[t]"),
    ("h[t] = b\nh[t] = b", 2, "h[t]", "state h is already assigned on line 1"),
    ("h[t] = x[t-1]", 1, "x[t-1]", "the input is only available as x[t]"),
    ("h[t] = x[t, 1]", 1, "x[t, 1]", "only available as x[t]"),
    ("h[t] = tanh(x)", 1, "x)", "the input is only available as x[t]"),
    ("h[t] = t * b", 1, "t *", "t is the step index"),
    ("h[t] = h[t+1]", 1, "h[t+1]", "h[t-1] (previous step)"),
    ("h[t] = h[0]", 1, "h[0]", "h[t-1] (previous step)"),
    ("h[t] = h[t - 1.0]", 1, "h[t - 1.0]", "h[t-1] (previous step)"),
    ("h[t] = tanh(h)", 1, "h)", "write h[t-1]"),
    ("h[t] = tanh(h[t])", 1, "h[t])", "h[t] is used before it is assigned"),
    ("h[t] = b[t]", 1, "b[t]", "only x and states can be indexed"),
    ("h[t] = tanh(b)[t]", 1, "tanh(b)[t]", "only x and states can be indexed"),
    ("h[t] = bb[t]", 1, "bb[t]", "unknown name 'bb' (did you mean 'b'?)"),
    ("h[t] = tanh(bias)", 1, "bias", "unknown name 'bias'; this cell has 'V', 'W', 'b' or 'h'"),
    ("h[t] = tanh(a)\na = b", 1, "a)", "unknown name 'a'"),
    ("a = a + b\nh[t] = a", 1, "a +", "unknown name 'a'"),
    ("b = h[t-1]\nh[t] = b", 1, "b", "'b' is a parameter; choose another name"),
    ("tanh = b", 1, "tanh", "'tanh' is reserved"),
    ("x = b", 1, "x", "'x' is reserved"),
    ("t = b", 1, "t", "'t' is reserved"),
    ("h = b", 1, "h", "'h' is a state; assign it as h[t] = ..."),
    ("a = b\n\na = b\nh[t] = a", 3, "a", "'a' is already assigned on line 1"),
    ("a = b", 1, "a", "state h is never assigned"),
    ("a = b  # only a local\nc = a\n# the end\n", 2, "c", "state h is never assigned"),
    ("", 1, 1, "never assigned"),
    ("h[t] = tanh(b", 1, "(b", "invalid equation syntax: '(' was never closed"),
    ("h[t] = b +", 1, 11, "invalid equation syntax"),
    ("h[t] = b \\", 1, 11, "invalid equation syntax"),
    ("h[t] = b @ é", 1, "é", "unexpected character 'é' (U+00E9)"),
    ("größe = b", 1, "ö", "ASCII"),
    ("h[t] = b\u00a0+ b", 1, "\u00a0", "U+00A0"),
    ("h[t] = b\x00", 1, "\x00", "U+0000"),
    ("h[t] = “b”", 1, "“", "U+201C"),
]


@pytest.mark.parametrize(("text", "line", "where", "words"), PARSE_ERRORS)
def test_parse_errors_name_line_and_column(text, line, where, words):
    with pytest.raises(EquationError) as caught:
        parse(text)
    source_line = (text.splitlines() or [""])[line - 1]
    column = where if isinstance(where, int) else source_line.index(where) + 1
    assert words in caught.value.message
    assert caught.value.location == Location("cell.yaml", line, column)


@pytest.mark.parametrize(("params", "states"), [
    ({"x", "b"}, ["h"]), ({"b"}, ["t"]), ({"tanh"}, ["h"]), ({"h"}, ["h"]), (set(), ["h", "h"]),
])
def test_params_and_states_need_names_of_their_own(params, states):
    with pytest.raises(EquationError, match="given twice or reserved") as caught:
        parse("h[t] = b", params, states)
    assert caught.value.location == Location("cell.yaml", 1, 1)


def test_python_warnings_do_not_escape():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for text in ["h[t] = 1or b", r"h[t] = '\d'"]:
            with pytest.raises(EquationError):
                parse(text)


def test_columns_count_indentation_and_start_column():
    lines = [("  # leading comment", Location("f.yaml", 6, 3)),
             ("    h[t] = b ** 2", Location("f.yaml", 7, 3))]
    with pytest.raises(EquationError) as caught:
        parse_equations(lines, params={"b"}, states=["h"])
    assert caught.value.location == Location("f.yaml", 7, 3 + "    h[t] = b ** 2".index("*"))


def test_equation_location_and_text_leave_out_indentation_and_comment():
    lines = [("\t  h[t] = tanh(b)   # größe ≠ size ** 2", Location("f.yaml", 4, 12))]
    [equation] = parse_equations(lines, params={"b"}, states=["h"])
    assert equation.loc == Location("f.yaml", 4, 15)
    assert equation.text == "h[t] = tanh(b)"
    assert equation.expr.loc == Location("f.yaml", 4, 22)


def test_columns_are_characters_not_utf8_bytes():
    # 'ü' is two bytes in UTF-8; the error after the comment-free prefix points at the
    # character, and a multi-byte comment on an earlier line shifts nothing.
    text = "a = b  # ünïcödé\nh[t] = a + ü"
    with pytest.raises(EquationError) as caught:
        parse(text, params={"b"})
    assert caught.value.location == Location("cell.yaml", 2, 12)


def test_operators_are_located_at_the_operator():
    [equation] = parse("h[t] = (b)  -  -b * b", params={"b"})
    assert equation.expr.loc.column == 13
    assert equation.expr.right.loc.column == 19  # (-b) * b, at its `*`
    assert isinstance(equation.expr.right.left, Negate)


def test_split_lines_uses_yaml_line_breaks():
    first = Location("f.yaml", 3, 12)
    lines = split_lines("a = b\r\nc = b\rh[t] = c\u2028", first)
    assert lines == [("a = b", first), ("c = b", Location("f.yaml", 4, 1)),
                     ("h[t] = c", Location("f.yaml", 5, 1)), ("", Location("f.yaml", 6, 1))]
    assert [eq.target for eq in parse_equations(lines, params={"b"}, states=["h"])] == [
        "a", "c", "h"]


# ------------------------------------------------------------------------ bounds


@pytest.mark.parametrize("text", [
    "h[t] = " + "tanh(" * 150 + "b" + ")" * 150,
    "h[t] = " + "-" * 900 + "b",
    "h[t] = " + "(" * 300 + "b" + ")" * 300,
    "h[t] = " + " + ".join(["b"] * 300),
    "h[t] = " + "b*" * 600 + "b",
    "h[t] = " + " + ".join(["b"] * 400),
])
def test_deep_or_long_lines_fail_quickly_with_an_equation_error(text):
    start = time.perf_counter()
    with pytest.raises(EquationError) as caught:
        parse(text, params={"b"})
    assert time.perf_counter() - start < 1.0
    assert any(word in caught.value.message for word in ("nested", "limit", "syntax"))


def test_nesting_up_to_the_limit_is_fine():
    text = "h[t] = " + "tanh(" * 90 + "b" + ")" * 90
    assert check(text).keys() == {"h"}
    assert render(parse(text)[0].expr) == text[len("h[t] = "):]


# ------------------------------------------------------------------------ shapes

# (text, line, where, words)
SHAPE_ERRORS = [
    ("h[t] = tanh(V @ x[t] + b)", 1, "@", "V @ x[t]: V is [units, units] but x[t] is [input]"),
    ("h[t] = tanh(b + x[t])", 1, "+", "cannot add [units] and [input] (in b + x[t])"),
    ("h[t] = b - x[t]", 1, "-", "cannot subtract [units] and [input]"),
    ("h[t] = b * x[t]", 1, "*", "cannot multiply"),
    ("h[t] = b / x[t]", 1, "/", "cannot divide"),
    ("h[t] = W * x[t]", 1, "W", "W is a matrix [units, input]; a matrix can only be the left"),
    ("h[t] = tanh(V)", 1, "V", "matrix"),
    ("h[t] = -V", 1, "V", "matrix"),
    ("h[t] = b @ h[t-1]", 1, "@", "the left side of @ must be a matrix, but b is [units]"),
    ("h[t] = V @ 2", 1, "@", "but 2 is a scalar"),
    ("h[t] = V @ V", 1, 12, "V is a matrix"),
    ("a = softmax(2)\nh[t] = a * b", 1, "softmax", "softmax needs a vector, but 2 is a scalar"),
    ("h[t] = concat(h[t-1], 2) + b", 1, "2", "concat needs vectors, but 2 is a scalar"),
    ("h[t] = concat(h[t-1], x[t])", 1, "h",
     "h[t] must be [units], but concat(h[t-1], x[t]) is [units + input]"),
    ("a = b\nh[t] = 1", 2, "h", "h[t] must be [units], but 1 is a scalar"),
]


@pytest.mark.parametrize(("text", "line", "where", "words"), SHAPE_ERRORS)
def test_shape_errors_name_op_and_shapes(text, line, where, words):
    with pytest.raises(EquationError) as caught:
        check(text)
    source_line = text.splitlines()[line - 1]
    column = where if isinstance(where, int) else source_line.index(where) + 1
    assert words in caught.value.message
    assert caught.value.location == Location("cell.yaml", line, column)


def test_scalars_broadcast_and_locals_keep_their_shape():
    shapes = check("two = 2\na = two * b + 1\nh[t] = -a / two + h[t-1]")
    assert shapes == {"two": (), "a": VECTOR, "h": VECTOR}


def test_concat_sums_sizes():
    params = {"C": (U, U + I), "D": (U, U + U)}
    text = "h[t] = tanh(C @ concat(h[t-1], x[t]) + D @ concat(h[t-1], h[t-1]))"
    assert check(text, params) == {"h": VECTOR}


def test_concrete_sizes_use_the_same_check():
    sizes = {"units": 4, "input": 3}
    text, params, states = BUILTIN["lstm"]
    concrete = {name: tuple(d.substitute(sizes) for d in shape) for name, shape in params.items()}
    equations = parse(text, params, states)
    shapes = infer_shapes(equations, param_shapes=concrete, state_shape=(Dim.of(4),),
                          input_shape=(Dim.of(3),))
    assert shapes["h"] == (Dim.of(4),)
    with pytest.raises(EquationError, match=r"W_xi is \[4, 3\] but x\[t\] is \[5\]"):
        infer_shapes(equations, param_shapes=concrete, state_shape=(Dim.of(4),),
                     input_shape=(Dim.of(5),))


def test_symbolic_check_is_stricter_than_one_size():
    # V @ x[t] works only when units == input; symbolically it is an error.
    with pytest.raises(EquationError):
        check("h[t] = V @ x[t]")
    equations = parse("h[t] = V @ x[t]")
    three = (Dim.of(3),)
    shapes = infer_shapes(equations, param_shapes={"V": three * 2}, state_shape=three,
                          input_shape=three)
    assert shapes == {"h": three}


def test_missing_param_shape_is_an_error():
    equations = parse("h[t] = tanh(b)")
    with pytest.raises(EquationError, match="no shape for 'b'"):
        infer_shapes(equations, param_shapes={}, state_shape=VECTOR, input_shape=(I,))


# ------------------------------------------------------------------------ Dim


def test_dim_arithmetic_and_printing():
    assert str(U) == "units" and str(I) == "input" and str(Dim.of(3)) == "3"
    assert str(U + I) == "units + input"
    assert str(U + U) == "2*units"
    assert str(I + U + 1) == "units + input + 1"
    assert str(Dim.of(0)) == "0"
    assert U + I == I + U and hash(U + I) == hash(I + U)
    assert sum([U, I, Dim.of(2)]) == U + I + 2
    assert U != I and U + U != U


def test_dim_substitute_and_value():
    dim = U + U + I + 1
    assert dim.substitute({"units": 4}) == I + 9
    assert str(dim.substitute({"units": 4})) == "input + 9"
    assert dim.substitute({"units": 4, "input": 3}).value == 12
    assert dim.substitute({"units": 4, "input": 3}) == Dim.of(12)
    with pytest.raises(ValueError, match="symbolic"):
        _ = dim.value
    assert Dim.of(7).value == 7


@pytest.mark.parametrize("bad", ["features", True, 1.5])
def test_dim_of_rejects_other_values(bad):
    with pytest.raises(ValueError):
        Dim.of(bad)


# ------------------------------------------------------------------------ fuzz

EQUATION_ALPHABET = "hxtWbac[]()+-*/@=<.,:;#'\"\\ \t\n0123456789tanhsigmoidconcatélö\x00"


def parse_anything(text: str) -> None:
    """Any text gives equations (shape-checked) or an EquationError, never another error."""
    try:
        equations = parse(text, params={"W": MATRIX_X, "b": VECTOR, "a": ()})
        infer_shapes(equations, param_shapes={"W": MATRIX_X, "b": VECTOR, "a": ()},
                     state_shape=VECTOR, input_shape=(I,))
    except EquationError as error:
        assert error.location is None or error.location.line >= 1
        assert error.location is None or error.location.column >= 1
        return
    for equation in equations:
        assert render(equation.expr)


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_fuzz_any_text(text):
    parse_anything(text)


@settings(max_examples=500)
@given(st.text(alphabet=EQUATION_ALPHABET, max_size=60))
def test_fuzz_equation_like_text(text):
    parse_anything("h[t] = " + text)
    parse_anything(text)


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["b", "h[t-1]", "W @ x[t]", "2", "tanh(b)", "-b", "(b + b)"]),
                min_size=1, max_size=6),
       st.lists(st.sampled_from(["+", "-", "*", "/"]), min_size=5, max_size=5))
def test_fuzz_render_round_trips(terms, ops):
    source = terms[0] + "".join(f" {op} {term}" for op, term in zip(ops, terms[1:]))
    [equation] = parse("h[t] = " + source, params={"W", "b"})
    [again] = parse("h[t] = " + render(equation.expr), params={"W", "b"})
    assert again.expr == equation.expr
