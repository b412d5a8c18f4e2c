"""Custom cells for the spec generator (spec_strategies.py): equations drawn as text that
the validator accepts and that stay finite over 30 steps, with the parameters they use."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hypothesis import strategies as st
from spec_names import LOCAL_NAMES, PARAM_NAMES, STATE_NAMES, fresh

FUNCTIONS = ("tanh", "sigmoid", "relu", "exp", "log", "softmax")

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
class CellWriter:
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
        self.states = tuple(fresh(draw, STATE_NAMES, self.taken, "s") for _ in range(count))
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
            name = fresh(self.draw, LOCAL_NAMES, self.taken, "v")
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
        name = fresh(self.draw, PARAM_NAMES, self.taken, "P")
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
