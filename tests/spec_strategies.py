"""Hypothesis strategies that draw *valid* rnnc specs across the whole spec language.

``specs()`` draws complete spec texts (``rnnc: 1`` ... with a ``loss``) for fuzzing the
compiler: whatever it draws, ``rnncompiler.load_spec_text`` accepts, and the spec can be
run and differentiated at the drawn T (``DrawnSpec.steps``). Each draw also names the
features of the format it exercises (``DrawnSpec.features``, all of them in ``FEATURES``),
so that a fuzzer can report which parts of the language its examples covered.

Specs are built as Python dicts, one layer at a time, from what the layers so far make
(sequences of T or of their own length, vectors), choosing only combinations the
validator accepts, then written with PyYAML's safe dumper, which quotes names such as
``on`` or ``null`` that YAML would otherwise read as booleans or nothing.

Custom cells are drawn as equations that stay finite over 30 steps: every state goes
through a squashing function (tanh, sigmoid, softmax, a clip), is a gated or convex sum
with its previous value (the LSTM's c, the GRU's h), a bounded factor times its previous
value, or a copy of another bounded value; exp and log only appear in bounded forms such
as ``exp(-relu(z))`` and ``log(1 + sigmoid(z))``, and division is by nonzero constants
only. Now and then a cell reads no x[t] at all.

Sizes stay small (units and features 1..4) so that each spec compiles in a moment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

# --- the public interface -------------------------------------------------------------------


@dataclass(frozen=True)
class DrawnSpec:
    """A valid spec's text, the T to run it at, and the features of the format it uses."""

    text: str
    steps: int
    features: frozenset[str]


BUILTIN_CELLS = ("simple", "lstm", "gru", "gru_reset_before")
BUILTIN_STATES = {"simple": ("h",), "lstm": ("h", "c"), "gru": ("h",),
                  "gru_reset_before": ("h",)}
ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu", "softmax")
DIRECTIONS = ("forward", "backward", "bidirectional")
FUNCTIONS = ("tanh", "sigmoid", "relu", "exp", "log", "softmax")

FEATURES: tuple[str, ...] = (
    # T, dtype and the unroll section
    "steps:1", "steps:2", "steps:long",
    "dtype:float32", "dtype:float64",
    "unroll:steps", "unroll:steps_from_arrays",
    "bptt:full", "bptt:window", "bptt:chunk",
    # inputs and targets
    "input:sequence", "input:vector", "input:own_steps", "inputs:several",
    "lengths", "lengths:target", "target:own_steps",
    # layers
    *(f"cell:{name}" for name in (*BUILTIN_CELLS, "custom")),
    *(f"direction:{name}" for name in DIRECTIONS),
    "return:last", "return:sequence", "stacked", "one_to_many", "layer:repeat",
    *(f"dense:{name}" for name in ACTIVATIONS), "dense:on_vector", "dense:on_sequence",
    "initial_state:input", "initial_state:layer", "initial_state:bidirectional",
    "initial_state:from_bidirectional", "encoder_decoder",
    "feedback", "feedback:with_input", "feedback:vector_input", "feedback:no_input",
    "outputs", "explicit_defaults", "names:yaml_words",
    # the loss
    "loss:mse", "loss:cross_entropy", "loss:vector_target", "loss:sequence_target",
    # custom cells
    "custom:one_state", "custom:two_states", "custom:output_key", "custom:output_second",
    "custom:shared", "custom:param_input", "custom:param_recurrent", "custom:param_vector",
    "custom:param_concat", "custom:param_named_W_b", "custom:param_init",
    "custom:constant", "custom:negative_constant", "custom:unary_minus", "custom:division",
    "custom:repeated_subexpression", "custom:intermediate", "custom:scalar_local",
    "custom:input_local", "custom:concat", "custom:state_after_assignment", "custom:state_copy",
    "custom:ignores_input",
    "custom:equations_list", "custom:comment",
    *(f"custom:fn:{name}" for name in FUNCTIONS),
)

MAX_STEPS = 30
MAX_SIZE = 4  # units and features

# T: both ends get a real chance — 1, 2, and more than the compiler's 8 representative steps
STEPS = st.one_of(st.integers(1, 3), st.integers(1, MAX_STEPS))
SIZES = st.integers(1, MAX_SIZE)


def specs(max_layers: int = 4) -> SearchStrategy[DrawnSpec]:
    """Valid specs with at most ``max_layers`` layers (at least 1), each with a loss."""
    if max_layers < 1:
        raise ValueError(f"max_layers must be at least 1, got {max_layers}")
    return _specs(max_layers)


@st.composite
def _specs(draw, max_layers: int) -> DrawnSpec:
    return _SpecBuilder(draw, draw(STEPS), max_layers).build()


# --- names ----------------------------------------------------------------------------------
# Each pool mixes ordinary names with ones that test the compiler's own naming: words YAML
# 1.1 reads as booleans or null (written quoted), Python keywords and builtins, names the
# generated code might use itself, and names that join with a parameter's into another
# (layer RNN_W + param xh and layer RNN + param W_xh are both RNN_W_xh).

YAML_WORDS = frozenset({"on", "off", "yes", "no", "y", "n", "null", "true", "false", "On"})

INPUT_NAMES = ("x", "src", "tgt_in", "image", "h0", "on", "yes", "y", "t", "W", "np",
               "x_lengths", "seq", "ctx", "lambda", "_")
TARGET_NAMES = ("y", "target", "labels", "off", "null", "n", "yb", "T", "grad", "steps")
LAYER_NAMES = ("RNN", "RNN_W", "enc", "dec", "out", "dense", "h", "c", "W", "b", "head",
               "no", "true", "loss", "grad", "np", "range", "None", "def", "x_t", "batch",
               "DTYPE", "params", "inputs", "outputs", "saved_RNN_h", "L1", "L2", "RNN_1")
CELL_NAMES = ("mycell", "peephole", "minimal", "cell", "cell_1", "false", "rnn", "gated")
STATE_NAMES = ("h", "c", "s", "m", "state", "h2", "W", "y", "z_s", "mask", "out")
PARAM_NAMES = ("W", "b", "U", "V", "W_x", "W_h", "W_xh", "b_h", "xh", "p", "gain", "A",
               "B1", "W_hh", "bias", "np", "DTYPE", "Wc", "input")
# (names the compiler's own places could take: mask, keep, out of variable lengths; i_f,
# a12, g_i of fused gates; carry_h of a backward loop)
LOCAL_NAMES = ("a", "z", "g", "i", "f", "o", "r", "u", "pre", "gate", "cand", "k", "xs",
               "np", "range", "steps", "h_1", "units", "mask", "keep", "out", "i_f", "a12",
               "g_i", "carry_h")


def _fresh(draw, pool, taken: set[str], prefix: str) -> str:
    """A name from ``pool`` not in ``taken`` (or ``prefix<n>`` once the pool is used up),
    added to ``taken``."""
    free = [name for name in pool if name not in taken]
    name = draw(st.sampled_from(free)) if free else f"{prefix}{len(taken)}"
    while name in taken:  # the generated fallback met a user of the same name
        name += "_"
    taken.add(name)
    return name


# --- custom cells ---------------------------------------------------------------------------
# Equations are written as text with Python's precedences: an expression carries its
# outermost operator's precedence, and an operand with a lower one gets parentheses.
# (This matters: `-W @ x[t]` is `(-W) @ x[t]`, a negated matrix, which is an error.)

SUM, PRODUCT, UNARY, ATOM = 1, 2, 3, 4
PRECEDENCE = {"+": SUM, "-": SUM, "*": PRODUCT, "/": PRODUCT, "@": PRODUCT}

MAX_DEPTH = 1  # how deep functions, products and scalings nest in a pre-activation
MAX_LINE = 500  # characters; the validator allows 1000, and long lines compile slowly
CONSTANTS = ("0.5", "2", "3", "0.25", "1e-1", ".5", "2.0", "10", "1")
DIVISORS = ("2", "3", "6", "0.5", "4.0", "-2")


@dataclass(frozen=True)
class _Expr:
    text: str
    precedence: int

    def operand(self, at_least: int) -> str:
        return self.text if self.precedence >= at_least else f"({self.text})"


def _atom(text: str) -> _Expr:
    return _Expr(text, ATOM)


def _binary(left: _Expr, op: str, right: _Expr) -> _Expr:
    """``left op right``; the right operand of an equal precedence is parenthesised, so
    that the tree Python parses is the one drawn."""
    precedence = PRECEDENCE[op]
    return _Expr(f"{left.operand(precedence)} {op} {right.operand(precedence + 1)}", precedence)


def _negate(expr: _Expr) -> _Expr:
    return _Expr("-" + expr.operand(UNARY), UNARY)


def _call(function: str, *args: _Expr) -> _Expr:
    return _atom(f"{function}({', '.join(arg.text for arg in args)})")


# The shapes of parameters, as written in YAML (a concat's parameter is ("units", a sum)).
_INPUT = ("units", "input")  # W @ x[t]
_RECURRENT = ("units", "units")  # U @ h[t-1]
_VECTOR = ("units",)  # a bias, or a peephole p * c[t-1]
_INPUT_VECTOR = ("input",)  # a gain on the input, g * x[t]


@dataclass
class _CellWriter:
    """Draws one custom cell: its states, parameters and equations.

    Parameters are declared as expressions first use them, so every one is used (the
    validator requires it); locals and states are named from pools that avoid the
    names equations reserve (x, t, the functions) and Python keywords.
    """

    draw: object
    states: tuple = ()
    params: dict = field(default_factory=dict)  # name -> YAML value (shape, or {shape, init})
    kinds: dict = field(default_factory=dict)  # name -> the shape key it was declared for
    lines: list = field(default_factory=list)
    unit_locals: list = field(default_factory=list)  # locals of `units` features
    gate_locals: list = field(default_factory=list)  # those of them with values in [0, 1]
    input_locals: list = field(default_factory=list)  # locals of `input` features
    scalar_locals: list = field(default_factory=list)  # locals holding a constant
    assigned: list = field(default_factory=list)  # states whose s[t] later lines may use
    taken: set = field(default_factory=set)
    features: set = field(default_factory=set)
    reads_input: bool = True  # whether lines may read x[t]

    def write(self) -> dict:
        """The cell's YAML entry."""
        draw = self.draw
        count = draw(st.integers(1, 2))
        self.states = tuple(_fresh(draw, STATE_NAMES, self.taken, "s") for _ in range(count))
        self.features.add("custom:one_state" if count == 1 else "custom:two_states")
        order = list(self.states)
        if count == 2 and draw(st.booleans()):
            order.reverse()  # the output state need not be assigned first
        # Now and then no line is made to read x[t]: a cell whose states follow only the
        # parameters and each other is valid too (and has tripped the optimiser).
        self.reads_input = draw(st.integers(0, 7)) > 0
        for i, state in enumerate(order):
            self.write_locals(draw(st.integers(0, 2 if i == 0 else 1)))
            # the first state's line leads with a parameter: the cell must have one
            self.write_state(state, lead=None if i else "input" if self.reads_input else "param")
        entry = {"state": list(self.states)}
        output = draw(st.sampled_from((None, *self.states)))
        if output is not None:
            entry["output"] = output
            self.features.add("custom:output_key")
            if output != self.states[0]:
                self.features.add("custom:output_second")
        entry["params"] = dict(self.params)
        entry["equations"] = self.equations_value()
        self.note_text_features()
        return entry

    # -- the equations block

    def equations_value(self):
        """A literal block (the usual form), or a list of lines; sometimes with comments."""
        lines = list(self.lines)
        if self.draw(st.integers(0, 3)) == 0:
            self.features.add("custom:comment")
            where = self.draw(st.integers(0, len(lines) - 1))
            lines[where] += "   # a comment, ignored"
            lines.insert(0, "# the cell's equations")
        if self.draw(st.integers(0, 3)) == 0:
            self.features.add("custom:equations_list")
            return lines
        return "\n".join(lines) + "\n"

    def note_text_features(self) -> None:
        text = "\n".join(self.lines)
        for function in FUNCTIONS:
            if re.search(rf"\b{function}\(", text):
                self.features.add(f"custom:fn:{function}")
        if "concat(" in text:
            self.features.add("custom:concat")
        if "x[t]" not in text:
            self.features.add("custom:ignores_input")
        if re.search(r"(?<![A-Za-z0-9_])\.?\d", text.replace("[t-1]", "")):
            self.features.add("custom:constant")
        if any(name in self.params for name in ("W", "b")):
            self.features.add("custom:param_named_W_b")

    def write_locals(self, count: int) -> None:
        """``count`` intermediate names: a bounded vector, a gate, an input-sized vector
        or a constant (a scalar)."""
        for _ in range(count):
            kinds = ("unit", "gate", "input", "scalar") if self.reads_input \
                else ("unit", "gate", "scalar")
            kind = self.draw(st.sampled_from(kinds))
            name = _fresh(self.draw, LOCAL_NAMES, self.taken, "v")
            if kind == "unit":
                value = self.within_line(lambda depth: self.bounded(self.pre(depth + 1)))
                self.unit_locals.append(name)
            elif kind == "gate":  # i, f, o of an LSTM; sometimes another gate's copy
                value = self.within_line(self.gate)
                self.unit_locals.append(name)
                self.gate_locals.append(name)
            elif kind == "input":
                value = self.input_vector()
                self.input_locals.append(name)
                self.features.add("custom:input_local")
            else:
                value = self.scalar_constant()
                self.scalar_locals.append(name)
                self.features.add("custom:scalar_local")
            self.lines.append(f"{name} = {value.text}")
            self.features.add("custom:intermediate")

    def write_state(self, state: str, lead: str | None) -> None:
        """``state[t] = ...``; ``lead`` chooses what the first term reads (see ``pre``)."""
        form = self.draw(st.sampled_from(("squash", "convex", "gated_sum", "average",
                                          "multiplied", "of_assigned", "copy")))
        if form in ("of_assigned", "copy") and not self.assigned:
            form = "squash"  # the first state's line declares a parameter
        if form == "copy":
            self.lines.append(f"{state}[t] = {self.copied_state(state).text}")
            self.assigned.append(state)
            return
        value = self.within_line(lambda depth: self.state_value(state, form, lead, depth))
        self.lines.append(f"{state}[t] = {value.text}")
        self.assigned.append(state)

    def within_line(self, build) -> _Expr:
        """``build(0)``, or, when that is longer than MAX_LINE, ``build`` at a depth where
        nothing nests (undoing the parameters and features the long value declared, so that
        every declared parameter is used)."""
        saved = (dict(self.params), dict(self.kinds), set(self.taken), set(self.features))
        value = build(0)
        if len(value.text) <= MAX_LINE:
            return value
        params, kinds, taken, features = saved
        self.params, self.kinds, self.taken, self.features = params, kinds, taken, features
        return build(MAX_DEPTH + 1)

    def state_value(self, state: str, form: str, lead: str | None, depth: int) -> _Expr:
        """The right side of ``state[t] = ...`` in a form that keeps the state bounded (or,
        for a gated sum, growing by a bounded amount a step)."""
        previous = _atom(f"{state}[t-1]")
        if form == "of_assigned":  # uses a state assigned earlier, as h[t] = o * tanh(c[t])
            other = self.draw(st.sampled_from(self.assigned))
            self.features.add("custom:state_after_assignment")
            value = _binary(self.gate(depth), "*", _call("tanh", _atom(f"{other}[t]")))
            if self.draw(st.booleans()):
                pre = self.pre(depth, lead)
                value = _binary(value, "+", _binary(_atom("0.1"), "*", _call("tanh", pre)))
            return value
        pre = self.pre(depth, lead)
        if form == "squash":
            return self.bounded(pre, relu=False)
        if form == "multiplied":  # tanh(pre) * s[t-1]: never larger than the initial state
            return _binary(_call("tanh", pre), "*", previous)
        if form == "convex":  # z * s[t-1] + (1 - z) * tanh(pre), as in a GRU
            gate = self.gate(depth)
            keep = _binary(gate, "*", previous)
            update = _binary(_binary(_atom("1"), "-", gate), "*", _call("tanh", pre))
            return _binary(keep, "+", update)
        if form == "gated_sum":  # f * s[t-1] + i * g, as the LSTM's c
            return _binary(_binary(self.gate(depth), "*", previous), "+",
                           _binary(self.gate(depth), "*", self.bounded(pre, relu=False)))
        # average: 0.5 * s[t-1] + tanh(pre) * 0.5
        return _binary(_binary(_atom("0.5"), "*", previous), "+",
                       _binary(_call("tanh", pre), "*", _atom("0.5")))

    def copied_state(self, state: str) -> _Expr:
        """A state that is another value unchanged: ``h[t] = c[t]``, ``h[t] = g`` (a
        local) or ``h[t] = h[t-1]`` (carried); the compiler gives such a state a node of
        its own, and two states with one value must still start apart."""
        self.features.add("custom:state_copy")
        choices = ["assigned", "carried"] + ["local"] * bool(self.gate_locals)
        choice = self.draw(st.sampled_from(choices))
        if choice == "assigned":
            self.features.add("custom:state_after_assignment")
            return _atom(f"{self.draw(st.sampled_from(self.assigned))}[t]")
        if choice == "local":
            return _atom(self.draw(st.sampled_from(self.gate_locals)))
        return _atom(f"{state}[t-1]")

    # -- expressions of `units` features

    def gate(self, depth: int = 0) -> _Expr:
        """A value in [0, 1]: a sigmoid, a softmax, a clip, or a local holding a gate."""
        if self.gate_locals and self.draw(st.booleans()):
            return _atom(self.draw(st.sampled_from(self.gate_locals)))
        shape = self.draw(st.sampled_from(("sigmoid", "sigmoid", "softmax", "clip")))
        if shape == "clip":
            return self.hard_sigmoid(self.pre(depth + 1))
        return _call(shape, self.pre(depth + 1))

    def bounded(self, pre: _Expr, *, relu: bool = True) -> _Expr:
        """``pre`` through a function whose value is bounded, or with ``relu`` also a relu
        (finite, but a state of relu(W @ s[t-1]) may grow geometrically: not for states)."""
        shapes = ("tanh", "sigmoid", "softmax", "relu", "negative_tanh", "exp_negative",
                  "exp_tanh", "log_sigmoid", "log_one_plus", "clip", "clip", "scaled_tanh")
        shape = self.draw(st.sampled_from(shapes if relu else shapes[:3] + shapes[4:]))
        if shape in ("tanh", "sigmoid", "softmax", "relu"):
            return _call(shape, pre)
        if shape == "negative_tanh":
            self.features.add("custom:unary_minus")
            return _negate(_call("tanh", pre))
        if shape == "exp_negative":  # exp(-relu(z)): in (0, 1]
            self.features.add("custom:unary_minus")
            return _call("exp", _negate(_call("relu", pre)))
        if shape == "exp_tanh":
            return _call("exp", _call("tanh", pre))
        if shape == "log_sigmoid":  # log(sigmoid(tanh(z))): in [log sigmoid(-1), log sigmoid(1)]
            return _call("log", _call("sigmoid", _call("tanh", pre)))
        if shape == "log_one_plus":  # log(1 + sigmoid(z)): in (0, log 2)
            return _call("log", _binary(_atom("1"), "+", _call("sigmoid", pre)))
        if shape == "clip":
            return self.hard_sigmoid(pre)
        return self.scaled(_call("tanh", pre))

    def hard_sigmoid(self, pre: _Expr) -> _Expr:
        """``relu(a/6 + 0.5) - relu(a/6 - 0.5)`` with the same ``a`` written twice: a clip
        to [0, 1], and a sub-expression repeated on one line."""
        self.features.add("custom:repeated_subexpression")
        self.features.add("custom:division")
        scaled = _binary(pre, "/", _atom("6"))
        upper = _call("relu", _binary(scaled, "+", _atom("0.5")))
        lower = _call("relu", _binary(scaled, "-", _atom("0.5")))
        return _binary(upper, "-", lower)

    def scaled(self, value: _Expr) -> _Expr:
        """``value`` times or divided by a constant, in the spellings Python parses alike
        or differently: ``-0.5 * v``, ``v * -0.5``, ``(-0.5) * v``, ``v / 3``, ``-v``."""
        form = self.draw(st.sampled_from(("times", "negative_first", "negative_last",
                                          "negative_parenthesised", "divided", "negated",
                                          "scalar_local")))
        constant = _atom(self.draw(st.sampled_from(CONSTANTS)))
        negative = _Expr("-" + self.draw(st.sampled_from(CONSTANTS)), UNARY)
        if form == "scalar_local" and not self.scalar_locals:
            form = "times"
        if form == "times":
            return _binary(constant, "*", value)
        if form == "scalar_local":
            return _binary(_atom(self.draw(st.sampled_from(self.scalar_locals))), "*", value)
        if form == "divided":
            self.features.add("custom:division")
            divisor = self.draw(st.sampled_from(DIVISORS))
            if divisor.startswith("-"):
                self.features.add("custom:negative_constant")
            return _binary(value, "/", _Expr(divisor, UNARY if divisor[0] == "-" else ATOM))
        if form == "negated":
            self.features.add("custom:unary_minus")
            return _negate(value)
        self.features.add("custom:negative_constant")
        if form == "negative_first":
            return _binary(negative, "*", value)
        if form == "negative_last":
            return _binary(value, "*", negative)
        return _binary(_atom(f"({negative.text})"), "*", value)

    def pre(self, depth: int, lead: str | None = None) -> _Expr:
        """A pre-activation of `units` features: a sum of 1 to 3 terms, the first reading
        x[t] when ``lead`` is "input", a parameter when it is "param"."""
        if lead == "input":
            first = self.input_term()
        elif lead == "param":
            first = self.draw(st.sampled_from((self.bias_term, self.recurrent_term)))(depth)
        else:
            first = self.term(depth)
        terms = [first]
        for _ in range(self.draw(st.integers(0, 2 if depth == 0 else 1))):
            terms.append(self.term(depth))
        total = terms[0]
        for term in terms[1:]:
            total = _binary(total, self.draw(st.sampled_from("++-")), term)
        return total

    def term(self, depth: int) -> _Expr:
        kinds = ["input"] * self.reads_input + ["recurrent", "bias", "previous", "peephole"]
        if self.assigned:
            kinds.append("current")
        if self.unit_locals:
            kinds.append("local")
        if depth < MAX_DEPTH:
            kinds += ["scaled", "product", "function"]
        kind = self.draw(st.sampled_from(kinds))
        if kind == "input":
            return self.input_term()
        if kind == "recurrent":
            return self.recurrent_term(depth)
        if kind == "bias":
            return self.bias_term(depth)
        if kind == "previous":
            return _atom(f"{self.draw(st.sampled_from(self.states))}[t-1]")
        if kind == "peephole":  # p * c[t-1]
            state = self.draw(st.sampled_from(self.states))
            return _binary(_atom(self.param(_VECTOR)), "*", _atom(f"{state}[t-1]"))
        if kind == "current":
            self.features.add("custom:state_after_assignment")
            return _atom(f"{self.draw(st.sampled_from(self.assigned))}[t]")
        if kind == "local":
            return _atom(self.draw(st.sampled_from(self.unit_locals)))
        if kind == "scaled":
            return self.scaled(self.term(depth + 1))
        if kind == "product":  # a gate times something bounded, as i * g
            return _binary(self.gate(depth + 1), "*", self.bounded(self.pre(depth + 1)))
        return self.bounded(self.pre(depth + 1))

    def bias_term(self, depth: int) -> _Expr:
        """A `units` parameter (``depth`` unused: called alike with recurrent_term)."""
        return _atom(self.param(_VECTOR))

    def input_term(self) -> _Expr:
        """``P @ x[t]`` (or an input-sized local), or ``P @ concat(...)`` with x[t] in it."""
        if self.draw(st.integers(0, 2)) == 0:
            return self.concat_term(with_input=True)
        forms = ("x", "x", "function") + ("local",) * bool(self.input_locals)
        form = self.draw(st.sampled_from(forms))
        if form == "local":
            operand = _atom(self.draw(st.sampled_from(self.input_locals)))
        else:
            operand = _atom("x[t]") if form == "x" else self.input_vector()
        self.features.add("custom:param_input")
        return _binary(_atom(self.param(_INPUT)), "@", operand)

    def input_vector(self) -> _Expr:
        """A vector of `input` features: x[t], scaled by a parameter, or squashed."""
        form = self.draw(st.sampled_from(("x", "scaled_by_param", "tanh", "softmax")))
        x = _atom("x[t]")
        if form == "scaled_by_param":
            return _binary(_atom(self.param(_INPUT_VECTOR)), "*", x)
        if form in ("tanh", "softmax"):
            return _call(form, x)
        return x

    def recurrent_term(self, depth: int) -> _Expr:
        """``P @ s[t-1]``, ``P @ s[t]``, ``P @ (r * s[t-1])`` or a concat product."""
        if self.draw(st.integers(0, 3)) == 0:
            return self.concat_term(with_input=False)
        state = self.draw(st.sampled_from(self.states))
        operand = _atom(f"{state}[t-1]")
        forms = ("previous", "current", "reset") if depth < MAX_DEPTH else ("previous", "current")
        form = self.draw(st.sampled_from(forms))
        if form == "current" and self.assigned:
            self.features.add("custom:state_after_assignment")
            operand = _atom(f"{self.draw(st.sampled_from(self.assigned))}[t]")
        elif form == "reset":  # W_hn @ (r * h[t-1]), as gru_reset_before
            operand = _binary(self.gate(depth + 1), "*", operand)
        self.features.add("custom:param_recurrent")
        return _binary(_atom(self.param(_RECURRENT)), "@", operand)

    def concat_term(self, with_input: bool) -> _Expr:
        """``P @ concat(...)`` with P of `units` rows and as many columns as the concat
        has features, its size spelt as a sum ("units + input", "2*units", ...)."""
        parts = [_atom(f"{self.draw(st.sampled_from(self.states))}[t-1]")]
        if with_input:
            parts.append(_atom("x[t]"))
        extra = [_atom(f"{self.draw(st.sampled_from(self.states))}[t-1]")]
        if self.reads_input:
            extra.append(_atom("x[t]"))
        for _ in range(self.draw(st.integers(0, 1))):
            parts.append(self.draw(st.sampled_from(extra)))
        parts = self.draw(st.permutations(parts))
        units = sum(part.text != "x[t]" for part in parts)
        inputs = len(parts) - units
        self.features.add("custom:param_concat")
        columns = self.size_spelling(units, inputs)
        return _binary(_atom(self.param(("units", columns))), "@", _call("concat", *parts))

    def size_spelling(self, units: int, inputs: int) -> str:
        """A size of ``units``*units + ``inputs``*input, in one of the ways a shape may be
        written: `units + input`, `input+units`, `2*units`, `units + units`."""
        terms = []
        for symbol, count in (("units", units), ("input", inputs)):
            if count == 0:
                continue
            if count > 1 and self.draw(st.booleans()):
                terms.append(f"{count}*{symbol}")
            else:
                terms += [symbol] * count
        terms = self.draw(st.permutations(terms))
        return self.draw(st.sampled_from((" + ", "+"))).join(terms)

    def scalar_constant(self) -> _Expr:
        """A scalar local's value: a constant, maybe negative or a quotient."""
        form = self.draw(st.sampled_from(("plain", "negative", "quotient")))
        constant = self.draw(st.sampled_from(CONSTANTS))
        if form == "negative":
            self.features.add("custom:negative_constant")
            return _Expr("-" + constant, UNARY)
        if form == "quotient":
            self.features.add("custom:division")
            return _binary(_atom(constant), "/", _atom(self.draw(st.sampled_from(("3", "4")))))
        return _atom(constant)

    def param(self, shape: tuple) -> str:
        """A parameter of ``shape``: one declared before (weights shared within the
        cell), or a new one."""
        same = [name for name, kind in self.kinds.items() if kind == shape]
        if same and self.draw(st.integers(0, 2)) == 0:
            return self.draw(st.sampled_from(same))
        name = _fresh(self.draw, PARAM_NAMES, self.taken, "P")
        self.kinds[name] = shape
        if shape == _VECTOR:
            self.features.add("custom:param_vector")
        sizes = list(shape)
        if self.draw(st.integers(0, 3)) == 0:
            self.features.add("custom:param_init")
            init = self.draw(st.sampled_from(("glorot_uniform", "orthogonal", "zeros", "ones",
                                              "normal", "uniform")))
            self.params[name] = {"shape": sizes, "init": init}
        else:
            self.params[name] = sizes
        return name


# --- the spec -------------------------------------------------------------------------------


@dataclass
class _Value:
    """An input or a layer as later layers see it: a sequence (``steps``: its own length,
    or None to follow T) or a vector."""

    name: str
    sequence: bool
    features: int
    steps: int | None = None
    layer: str = "input"  # the layer type that makes it, or "input"


class _SpecBuilder:
    """Builds one spec dict layer by layer, then its loss, outputs and unroll section."""

    def __init__(self, draw, steps: int, max_layers: int):
        self.draw = draw
        self.steps = steps
        self.max_layers = max_layers
        self.names: set[str] = set()  # inputs, targets, cells and layers share one namespace
        self.inputs: dict[str, dict] = {}
        self.targets: dict[str, dict] = {}
        self.cells: dict[str, dict] = {}
        self.cell_states = dict(BUILTIN_STATES)
        self.layers: list[dict] = []
        self.values: list[_Value] = []
        self.finals: list[tuple[str, int]] = []  # ("<layer>.<key>", units) of earlier rnns
        self.features: set[str] = set()

    def build(self) -> DrawnSpec:
        self.add_first_inputs()
        self.add_body()
        loss = self.add_loss()
        spec = {"rnnc": 1, "name": self.draw(st.sampled_from(("fuzz", "net", "spec_1")))}
        spec.update(self.dtype())
        spec["inputs"] = self.inputs
        spec["targets"] = self.targets
        if self.cells:
            spec["cells"] = self.cells
        spec["layers"] = self.layers
        spec.update(self.outputs())
        spec["loss"] = loss
        spec.update(self.unroll())
        self.note_names()
        self.features |= {"steps:1"} if self.steps == 1 else set()
        self.features |= {"steps:2"} if self.steps == 2 else set()
        self.features |= {"steps:long"} if self.steps > 10 else set()
        if len(self.inputs) > 1:
            self.features.add("inputs:several")
        unknown = self.features - set(FEATURES)
        assert not unknown, f"features missing from FEATURES: {sorted(unknown)}"
        return DrawnSpec(dump_spec(spec), self.steps, frozenset(self.features))

    # -- small draws

    def maybe(self, chance: int = 2) -> bool:
        """True about once in ``chance`` draws (shrinks to False)."""
        return self.draw(st.integers(0, chance - 1)) == chance - 1

    def explicit(self, entry: dict, key: str, default) -> None:
        """Sometimes write a key at its default value: defaults written out must mean the
        same as defaults left out."""
        if self.maybe(4):
            entry[key] = default
            self.features.add("explicit_defaults")

    def own_steps(self) -> int:
        """The length of a sequence that does not follow T: often T itself, else 1..12."""
        return self.draw(st.one_of(st.just(self.steps), st.integers(1, 12)))

    def room(self) -> int:
        return self.max_layers - len(self.layers)

    def pick(self, values: list[_Value]) -> _Value:
        """One of ``values``, the latest first (stacks grow on the newest layer)."""
        return self.draw(st.sampled_from(values[::-1]))

    def sequences(self) -> list[_Value]:
        return [value for value in self.values if value.sequence]

    def rnn_sequences(self) -> list[_Value]:
        return [value for value in self.sequences() if value.layer == "rnn"]

    def vectors(self) -> list[_Value]:
        return [value for value in self.values if not value.sequence]

    # -- inputs

    def add_first_inputs(self) -> None:
        for _ in range(self.draw(st.integers(1, 3))):
            kind = self.draw(st.sampled_from(("sequence", "sequence", "vector", "own_steps")))
            self.add_input(kind, self.draw(SIZES))

    def add_input(self, kind: str, features: int, steps: int | None = None) -> _Value:
        """A new input: a sequence following T, one of its own ``steps``, or a vector."""
        name = _fresh(self.draw, INPUT_NAMES, self.names, "in")
        entry: dict = {"features": features}
        value = _Value(name, kind != "vector", features)
        if kind == "vector":
            entry["sequence"] = False
            self.features.add("input:vector")
        else:
            self.explicit(entry, "sequence", True)
            self.features.add("input:sequence")
            if kind == "own_steps":
                value.steps = entry["steps"] = steps or self.own_steps()
                self.features.add("input:own_steps")
            if self.maybe(4):
                entry["lengths"] = True
                self.features.add("lengths")
            else:
                self.explicit(entry, "lengths", False)
        self.inputs[name] = entry
        self.values.append(value)
        return value

    # -- layers

    def add_body(self) -> None:
        """Layers until the drawn count; the loss may add a head after them."""
        wanted = self.draw(st.integers(1, self.max_layers))
        while len(self.layers) < wanted:
            moves = self.moves(wanted - len(self.layers))
            getattr(self, f"add_{self.draw(st.sampled_from(moves))}")()

    def moves(self, room: int) -> list[str]:
        """The layer moves possible with what exists and ``room`` layers left."""
        moves = []
        if self.sequences():
            moves.append("rnn")
        if self.rnn_sequences():
            moves.append("stack")
        moves.append("dense")
        if self.vectors():
            moves += ["repeat", "one_to_many"]
        if self.finals:
            moves.append("decoder")
        if room >= 2:
            moves.append("feedback")
        return moves

    def add_rnn(self) -> None:
        source = self.pick(self.sequences())
        if source.layer == "rnn":
            self.features.add("stacked")
        self.add_rnn_layer(source)

    def add_stack(self) -> None:
        """An rnn layer on an earlier rnn layer's sequence."""
        self.features.add("stacked")
        self.add_rnn_layer(self.pick(self.rnn_sequences()))

    def add_one_to_many(self) -> None:
        """An rnn on a vector, fed it at every one of its `steps`."""
        self.features.add("one_to_many")
        self.add_rnn_layer(self.pick(self.vectors()), steps=self.own_steps())

    def add_decoder(self) -> None:
        """A decoder reading an input of its own length, started from an earlier rnn
        layer's final states (encoder-decoder)."""
        self.features.add("encoder_decoder")
        units = self.draw(st.sampled_from(sorted({units for _, units in self.finals})))
        kind = self.draw(st.sampled_from(("own_steps", "own_steps", "sequence")))
        source = self.add_input(kind, self.draw(SIZES))
        self.add_rnn_layer(source, units=units, from_layer=True)

    def add_feedback(self) -> None:
        """An rnn fed back the output of the dense layer after it (generation): with no
        input (`steps` gives the length), a sequence input, or a vector input."""
        self.features.add("feedback")
        modes = ["no_input", "vector", "sequence"] if self.sequences() else ["no_input", "vector"]
        mode = self.draw(st.sampled_from(modes))
        dense_name = _fresh(self.draw, LAYER_NAMES, self.names, "L")
        if mode == "no_input":
            self.features.add("feedback:no_input")
            rnn = self.add_rnn_layer(None, steps=self.own_steps(), feedback=dense_name)
        elif mode == "sequence":
            self.features.add("feedback:with_input")
            rnn = self.add_rnn_layer(self.pick(self.sequences()), feedback=dense_name)
        else:
            self.features.add("feedback:vector_input")  # as a caption from an image
            vectors = self.vectors()
            source = self.pick(vectors) if vectors else self.add_input("vector", self.draw(SIZES))
            rnn = self.add_rnn_layer(source, steps=self.own_steps(), feedback=dense_name)
        self.add_dense_layer(rnn, name=dense_name)

    def add_rnn_layer(self, source: _Value | None, *, steps: int | None = None,
                      feedback: str | None = None, units: int | None = None,
                      from_layer: bool = False) -> _Value:
        """An rnn layer on ``source`` (None: fed only its feedback); ``steps`` for a vector
        input or none; ``from_layer`` starts every state from earlier layers' finals."""
        name = _fresh(self.draw, LAYER_NAMES, self.names, "L")
        entry: dict = {"name": name, "type": "rnn", "cell": self.cell()}
        if units is None:
            earlier = sorted({units for _, units in self.finals})
            units = self.draw(st.one_of(SIZES, st.sampled_from(earlier))) if earlier \
                else self.draw(SIZES)
        entry["units"] = units
        if source is not None:
            entry["input"] = source.name
        if feedback is not None:
            direction, returns = "forward", "sequence"
        else:
            direction = self.draw(st.sampled_from(DIRECTIONS))
            returns = self.draw(st.sampled_from(("last", "sequence")))
        self.write_choice(entry, "return", returns, "last")
        self.write_choice(entry, "direction", direction, "forward")
        self.features |= {f"direction:{direction}", f"return:{returns}"}
        if steps is not None:
            entry["steps"] = steps
        if feedback is not None:
            entry["feedback"] = feedback
        keys = self.state_keys(entry["cell"], direction)
        initial = self.initial_state(keys, units, from_layer)
        if initial:
            entry["initial_state"] = initial
        if source is not None and steps is None:
            steps = source.steps
        width = units * (2 if direction == "bidirectional" else 1)
        value = _Value(name, returns == "sequence", width, steps, "rnn")
        self.layers.append(entry)
        self.values.append(value)
        self.finals += [(f"{name}.{key}", units) for key in keys]
        return value

    def write_choice(self, entry: dict, key: str, value: str, default: str) -> None:
        if value != default:
            entry[key] = value
        else:
            self.explicit(entry, key, default)

    def state_keys(self, cell: str, direction: str) -> list[str]:
        states = self.cell_states[cell]
        if direction == "bidirectional":
            return [f"{side}.{state}" for side in ("fwd", "bwd") for state in states]
        return list(states)

    def cell(self) -> str:
        """A built-in cell, a new custom cell, or a custom cell an earlier layer uses."""
        choices = [*BUILTIN_CELLS, "new_custom", "new_custom"]
        if self.cells:
            choices += ["shared_custom"] * 2
        choice = self.draw(st.sampled_from(choices))
        if choice == "shared_custom":
            self.features.add("custom:shared")
            name = self.draw(st.sampled_from(sorted(self.cells)))
        elif choice == "new_custom":
            name = _fresh(self.draw, CELL_NAMES, self.names, "cell")
            writer = _CellWriter(self.draw)
            self.cells[name] = writer.write()
            self.cell_states[name] = writer.states
            self.features |= writer.features
        else:
            name = choice
        self.features.add(f"cell:{name if name in BUILTIN_CELLS else 'custom'}")
        return name

    def initial_state(self, keys: list[str], units: int, from_layer: bool) -> dict:
        """Sources of some of ``keys``: vector inputs of ``units`` features (made when
        needed) or earlier rnn layers' final states of as many units."""
        finals = [key for key, size in self.finals if size == units]
        if not (from_layer or self.maybe(3)):
            return {}
        initial = {}
        for key in keys:
            choices = ["layer"] * bool(finals) if from_layer else ["none", "input", "layer"]
            if not finals and "layer" in choices:
                choices.remove("layer")
            choice = self.draw(st.sampled_from(choices)) if choices else "none"
            if choice == "input":
                initial[key] = self.vector_input(units)
                self.features.add("initial_state:input")
            elif choice == "layer":
                initial[key] = self.draw(st.sampled_from(finals))
                self.features.add("initial_state:layer")
                if re.search(r"\.(fwd|bwd)\.", initial[key]):
                    self.features.add("initial_state:from_bidirectional")
        if initial and "." in keys[0]:
            self.features.add("initial_state:bidirectional")
        return initial

    def vector_input(self, features: int) -> str:
        """A vector input of ``features``: an existing one, or a new one."""
        same = [name for name, entry in self.inputs.items()
                if entry.get("sequence") is False and entry["features"] == features]
        if same and self.draw(st.booleans()):
            return self.draw(st.sampled_from(same))
        return self.add_input("vector", features).name

    def add_dense(self) -> None:
        self.add_dense_layer(self.pick(self.values))

    def add_dense_layer(self, source: _Value, *, name: str | None = None,
                        activation: str | None = None) -> _Value:
        name = name or _fresh(self.draw, LAYER_NAMES, self.names, "L")
        units = self.draw(SIZES)
        activation = activation or self.draw(st.sampled_from(ACTIVATIONS))
        entry = {"name": name, "type": "dense", "units": units, "input": source.name}
        self.write_choice(entry, "activation", activation, "linear")
        self.features.add(f"dense:{activation}")
        self.features.add("dense:on_sequence" if source.sequence else "dense:on_vector")
        value = _Value(name, source.sequence, units, source.steps, "dense")
        self.layers.append(entry)
        self.values.append(value)
        return value

    def add_repeat(self) -> None:
        source = self.pick(self.vectors())
        name = _fresh(self.draw, LAYER_NAMES, self.names, "L")
        steps = self.own_steps()
        self.layers.append({"name": name, "type": "repeat", "input": source.name,
                            "steps": steps})
        self.values.append(_Value(name, True, source.features, steps, "repeat"))
        self.features.add("layer:repeat")

    # -- the loss and its target

    def add_loss(self) -> dict:
        """A loss on a layer with a target of its shape. cross_entropy needs a softmax
        dense layer: an existing one, or a head added for it when there is room."""
        kind = self.draw(st.sampled_from(("mse", "cross_entropy")))
        layer_values = [value for value in self.values if value.layer != "input"]
        softmax = [value for value in layer_values if self.is_softmax(value.name)]
        if kind == "cross_entropy" and not softmax and self.room() > 0:
            softmax = [self.add_dense_layer(self.pick(self.values), activation="softmax")]
        elif kind == "mse" and self.room() > 0 and self.maybe(3):
            layer_values.append(self.add_dense_layer(self.pick(self.values)))
        if kind == "cross_entropy" and not softmax:
            kind = "mse"
        output = self.pick(softmax if kind == "cross_entropy" else layer_values)
        self.features.add(f"loss:{kind}")
        return {"type": kind, "output": output.name, "target": self.add_target(output)}

    def is_softmax(self, name: str) -> bool:
        entry = next(entry for entry in self.layers if entry["name"] == name)
        return entry["type"] == "dense" and entry.get("activation") == "softmax"

    def add_target(self, output: _Value) -> str:
        """A target of ``output``'s shape. A sequence of fixed length needs `steps` on the
        target unless that length is T (a target follows T at run time otherwise)."""
        name = _fresh(self.draw, TARGET_NAMES, self.names, "target")
        entry: dict = {"features": output.features}
        if not output.sequence:
            entry["sequence"] = False
            self.features.add("loss:vector_target")
        else:
            self.features.add("loss:sequence_target")
            self.explicit(entry, "sequence", True)
            length = output.steps if output.steps is not None else self.steps
            if output.steps not in (None, self.steps) or self.maybe(4):
                entry["steps"] = length
                self.features.add("target:own_steps")
            if self.maybe(4):
                entry["lengths"] = True
                self.features.add("lengths:target")
        self.targets[name] = entry
        return name

    # -- the rest of the spec

    def outputs(self) -> dict:
        if not self.maybe(3):
            return {}
        names = [entry["name"] for entry in self.layers]
        chosen = self.draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
        self.features.add("outputs")
        return {"outputs": chosen}

    def dtype(self) -> dict:
        dtype = self.draw(st.sampled_from(("float32", "float64")))
        self.features.add(f"dtype:{dtype}")
        if dtype == "float64" or self.maybe(4):
            return {"dtype": dtype}
        return {}

    def unroll(self) -> dict:
        """`unroll:` with T (usually), without it (T from the arrays), and a truncation."""
        unroll: dict = {}
        if self.draw(st.integers(0, 3)) > 0:
            unroll["steps"] = self.steps
            self.features.add("unroll:steps")
        else:
            self.features.add("unroll:steps_from_arrays")
        mode = self.draw(st.sampled_from(("full", "window", "chunk")))
        self.features.add(f"bptt:{mode}")
        if mode != "full":
            unroll["bptt"] = {mode: self.draw(st.integers(1, self.steps + 2))}
        elif self.maybe(3):
            unroll["bptt"] = "full"
        return {"unroll": unroll} if unroll else {}

    def note_names(self) -> None:
        if self.names & YAML_WORDS:
            self.features.add("names:yaml_words")


# --- YAML -----------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """safe_dump, with multi-line strings (equations) as literal blocks, as users write
    them."""


def _represent_text(dumper: yaml.SafeDumper, text: str):
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_text)


def dump_spec(spec: dict) -> str:
    """A spec dict as YAML text: names YAML would read otherwise quoted, equations as
    literal blocks."""
    return yaml.dump(spec, Dumper=_Dumper, sort_keys=False, default_flow_style=None,
                     width=100, allow_unicode=False)
