"""Cells: the built-in ones (``rnncompiler/cells/*.yaml``) and those a spec defines.

Built-in cells are written in exactly the format users write, and read by the same code.
A cell's equations are parsed (never evaluated) and shape-checked with symbolic sizes
``units`` and ``input``, so a wrong cell fails at its line whatever sizes a layer uses.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from ..errors import Broken, EquationError, Location, did_you_mean
from . import equations as eq
from . import shapes
from .checks import (
    check_choice,
    check_identifier,
    check_int,
    check_mapping,
    describe,
    is_identifier,
)
from .equation_parser import parse_equations, split_lines
from .yaml_source import Source, load_source

INITIALIZERS = ("glorot_uniform", "orthogonal", "zeros", "ones", "normal", "uniform")
CELL_KEYS = ("state", "output", "params", "equations")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    shape: tuple  # of 'units' | 'input' | int
    init: str

    def concrete_shape(self, units: int, input_size: int) -> tuple[int, ...]:
        sizes = {"units": units, "input": input_size}
        return tuple(parse_size(d).substitute(sizes).value for d in self.shape)

    def symbolic_shape(self) -> tuple:
        return tuple(parse_size(d) for d in self.shape)


_TERM = re.compile(r"\s*(?:(\d+)\s*\*\s*)?(units|input|\d+)\s*\Z")


def parse_size(size) -> shapes.Dim:
    """3, "units", "input" or a sum of them such as "units + input" or "2*units"."""
    if isinstance(size, int):
        return shapes.Dim.of(size)
    total = shapes.Dim.of(0)
    for term in str(size).split("+"):
        match = _TERM.match(term)
        if match is None:
            raise ValueError(f"bad size {size!r}")
        factor, symbol = match.groups()
        unit = shapes.Dim.of(int(symbol) if symbol.isdigit() else symbol)
        for _ in range(int(factor or 1)):
            total = total + unit
    return total


@dataclass
class CellSpec:
    name: str
    states: tuple
    output: str
    params: dict  # name -> ParamSpec, in declaration order
    equations: list  # of equations.Equation
    builtin: bool
    loc: Location | None = field(default=None, compare=False)


BROKEN = None  # the entry of a custom cell that failed its checks


@cache
def builtin_cells() -> dict:
    """The cells shipped in frontend/builtin_cells, by name."""
    cells = {}
    shipped = resources.files("rnncompiler.frontend.builtin_cells").iterdir()
    for entry in sorted(shipped, key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            text = entry.read_text(encoding="utf-8")
            source = load_source(text, f"rnncompiler/cells/{entry.name}")
            for name, value in source.value.items():
                cells[name] = read_cell(source, (name,), name, value, builtin=True)
    return cells


def read_cells(source: Source, value, claim) -> dict:
    """Read the spec's ``cells`` section; returns built-ins and custom cells by name."""
    cells = dict(builtin_cells())
    if not isinstance(value, dict):
        source.broken_sections.add("cells")
        source.keep(source.error(("cells",), "expected a mapping of cell names, got "
                                             f"{describe(value)}"))
        return cells
    if not all(map(is_identifier, value)):
        source.broken_sections.add("cells")
    for name, entry in value.items():
        cell = source.attempt_part(_read_custom_cell, source, name, entry, cells, claim)
        cells[name] = cell if cell is not None else BROKEN  # a later use says nothing more
    return cells


def _read_custom_cell(source: Source, name, entry, cells: dict, claim) -> CellSpec:
    path = ("cells", name)
    source.attempt(_claim_cell_name, source, name, cells, claim)
    return read_cell(source, path, name, entry, builtin=False)


def _claim_cell_name(source: Source, name, cells: dict, claim) -> None:
    path = ("cells", name)
    check_identifier(source, path, name, "cell name")
    if name in cells:
        raise source.error(path, f"'{name}' is a built-in cell; give your cell another name",
                           key=True)
    claim(name, path)


def read_cell(source: Source, path, name: str, value, *, builtin: bool) -> CellSpec:
    """One cell. Its states, parameters and equation lines are checked each on their own;
    the equations are parsed once the names they use are known, and a line's shapes are
    inferred once the shapes of what it uses are."""
    check_mapping(source, path, value, CELL_KEYS, required=("state", "params", "equations"))
    states = params = lines = None
    if "state" in value:
        states = source.attempt(_read_states, source, path + ("state",), value["state"])
    if states is not None:
        source.attempt(_check_output, source, path + ("output",), value.get("output", states[0]),
                       states)
    if "params" in value:
        params = source.attempt(_read_params, source, path + ("params",), value["params"],
                                states or ())
    if "equations" in value:
        lines = source.attempt(_equation_lines, source, path + ("equations",),
                               value["equations"])
    if None in (states, params, lines):
        raise Broken()
    before = len(source.errors)
    equations = parse_equations(lines, params=params, states=states, keep=source.keep)
    if len(source.errors) == before:  # else the line that failed may be what uses one
        _check_params_used(source, path + ("params",), params, equations)
    _check_shapes(source, equations, params)
    if None in params.values():
        raise Broken()
    output = value.get("output", states[0])
    return CellSpec(name, states, output, params, equations, builtin, source.loc(path, key=True))


def _check_output(source: Source, path, output, states: tuple) -> None:
    if output not in states:
        hint = did_you_mean(output, states) if isinstance(output, str) else ""
        raise source.error(path, f"output must be one of the states {list(states)}, "
                                 f"got {describe(output)}{hint}")


def _check_shapes(source: Source, equations: list, params: dict) -> None:
    """Each line's shapes, every error kept. A line that uses a parameter whose shape
    failed, or a local whose own line failed, says nothing more."""
    param_shapes = {p.name: p.symbolic_shape() for p in params.values() if p is not None}

    def infer(some: list) -> None:
        shapes.infer_shapes(some, param_shapes=param_shapes, state_shape=(shapes.Dim.of("units"),),
                            input_shape=(shapes.Dim.of("input"),))

    if len(param_shapes) == len(params):
        try:
            infer(equations)  # the usual case: all at once
            return
        except EquationError:
            pass  # then line by line, to find each error
    checked = []
    for equation in equations:
        if (_names(equation.expr, eq.Param) - set(param_shapes)
                or _names(equation.expr, eq.Local) - {e.target for e in checked}):
            continue
        try:
            infer(checked + [equation])
        except EquationError as error:
            source.keep(error)
            continue
        checked.append(equation)


def _read_states(source: Source, path, value) -> tuple:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise source.error(path, f"expected a list of state names, got {describe(value)}")
    for i, state in enumerate(value):
        check_identifier(source, path + (i,), state, "state name")
        _check_not_keyword(source, path + (i,), state, "state")
        if state in eq.RESERVED:
            raise source.error(path + (i,), f"'{state}' is reserved in equations; rename the state")
        if value.index(state) != i:
            raise source.error(path + (i,), f"state '{state}' is listed twice")
    return tuple(value)


def _read_params(source: Source, path, value, states) -> dict:
    """Each parameter on its own: name -> ParamSpec, or None where its shape or init
    failed. Equations cannot be read while a name is wrong: then the whole fails."""
    if not isinstance(value, dict):
        raise source.error(path, f"expected a mapping of parameter names, got {describe(value)}")
    if not value:
        raise source.error(path, "a cell needs at least one parameter (what training learns); "
                                 "got an empty mapping")
    params, named = {}, True
    for name, entry in value.items():
        ppath = path + (name,)
        named &= source.attempt(_check_param_name, source, ppath, name, states, default=False)
        params[name] = source.attempt_part(_read_param, source, ppath, name, entry)
    if not named:
        raise Broken()
    return params


def _check_param_name(source: Source, ppath, name: str, states) -> bool:
    check_identifier(source, ppath, name, "parameter name")
    _check_not_keyword(source, ppath, name, "parameter", key=True)
    if name in eq.RESERVED or name in states:
        raise source.error(ppath, f"parameter name '{name}' clashes with "
                                  f"{'a state' if name in states else 'a reserved name'}",
                           key=True)
    return True


def _read_param(source: Source, ppath, name: str, entry) -> ParamSpec:
    """A shape, or a mapping with the shape and an init."""
    init = None
    if isinstance(entry, dict):
        check_mapping(source, ppath, entry, ("shape", "init"), required=("shape",))
        if "init" in entry:
            init = source.attempt(check_choice, source, ppath + ("init",), entry["init"],
                                  INITIALIZERS)
        if "shape" not in entry:
            raise Broken()  # reported missing
        shape = _read_shape(source, ppath + ("shape",), entry["shape"])
    else:
        shape = _read_shape(source, ppath, entry)
    return ParamSpec(name, shape, init or _default_init(shape))


def _check_not_keyword(source: Source, path, name: str, what: str, key: bool = False) -> None:
    """Equations are read by Python's parser, where a keyword cannot be a name."""
    if keyword.iskeyword(name):
        raise source.error(path, f"'{name}' is a Python keyword, which equations cannot use as "
                                 f"a name; rename the {what}", key=key)


def _read_shape(source: Source, path, value) -> tuple:
    if not isinstance(value, list) or len(value) not in (1, 2):
        raise source.error(path, "a parameter shape is a list of one or two sizes, like "
                                 f"[units, input] or [units]; got {describe(value)}")
    for i, dim in enumerate(value):
        if isinstance(dim, str):
            try:
                parse_size(dim)
            except ValueError:
                hint = did_you_mean(dim, ("units", "input"))
                raise source.error(path + (i,), f"a size is an integer, 'units', 'input' or a "
                                                f"sum like 'units + input'; got {describe(dim)}"
                                                f"{hint}") from None
        else:
            check_int(source, path + (i,), dim)
    return tuple(value)


def _default_init(shape: tuple) -> str:
    if len(shape) == 1:
        return "zeros"
    return "orthogonal" if shape == ("units", "units") else "glorot_uniform"


def _equation_lines(source: Source, path, value) -> list:
    """Each equation line with the file location of its first character."""
    if isinstance(value, list):
        lines = []
        for i, line in enumerate(value):
            if not isinstance(line, str):
                raise source.error(path + (i,), f"expected an equation, got {describe(line)}")
            lines.append((line, source.loc(path + (i,))))
        return lines
    if not isinstance(value, str) or not value.strip():
        raise source.error(path, "expected the equations as a block (`equations: |`) "
                                 f"or a list of lines, got {describe(value)}")
    style = source.styles.get(path)
    if style == ">":
        raise source.error(path, "write the equations as a literal block (`equations: |`); "
                                 "a folded block (`>`) joins them into one line")
    if path not in source.block_starts:
        start = source.loc(path)
        return split_lines(value, start.shifted(1) if style in ("'", '"') else start)
    first = source.block_starts[path]
    raw_lines = source.text.splitlines()
    lines = []
    for i, line in enumerate(value.split("\n")):
        number = first + i
        raw = raw_lines[number - 1] if number <= len(raw_lines) else line
        column = len(raw) - len(line) + 1 if line and raw.endswith(line) else 1
        lines.append((line, Location(source.file, number, column)))
    return lines


def _check_params_used(source: Source, path, params: dict, equations) -> None:
    used = set()
    for equation in equations:
        used |= _names(equation.expr, eq.Param)
    for name in params:
        if name not in used:
            source.keep(source.error(path + (name,), f"parameter '{name}' is not used by any "
                                                     "equation", key=True))


def _names(expr, kind) -> set:
    """Names of the parameters (kind eq.Param) or locals (eq.Local) an expression uses."""
    if isinstance(expr, kind):
        return {expr.name}
    children = {eq.Binary: lambda e: (e.left, e.right), eq.Negate: lambda e: (e.operand,),
                eq.Call: lambda e: e.args}
    found = set()
    for node_type, get in children.items():
        if isinstance(expr, node_type):
            for child in get(expr):
                found |= _names(child, kind)
    return found
