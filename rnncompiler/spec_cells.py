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

from . import equations as eq
from . import shapes
from .errors import Location, did_you_mean
from .spec_checks import check_choice, check_identifier, check_int, check_mapping, describe
from .yaml_source import Source, load_source

INITIALIZERS = ("glorot_uniform", "orthogonal", "zeros", "ones", "normal", "uniform")
CELL_KEYS = ("state", "output", "params", "equations")
RESERVED = ("x", "t") + tuple(eq.FUNCTIONS)


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
    """The cells shipped in rnncompiler/cells, by name."""
    cells = {}
    for entry in sorted(resources.files("rnncompiler.cells").iterdir(), key=lambda p: p.name):
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
        raise source.error(("cells",), f"expected a mapping of cell names, got {describe(value)}")
    for name, entry in value.items():
        cell = source.attempt(_read_custom_cell, source, name, entry, cells, claim)
        cells[name] = cell if cell is not None else BROKEN  # a later use says nothing more
    return cells


def _read_custom_cell(source: Source, name, entry, cells: dict, claim) -> CellSpec:
    path = ("cells", name)
    check_identifier(source, path, name, "cell name")
    if name in cells:
        raise source.error(path, f"'{name}' is a built-in cell; give your cell another name",
                           key=True)
    claim(name, path)
    return read_cell(source, path, name, entry, builtin=False)


def read_cell(source: Source, path, name: str, value, *, builtin: bool) -> CellSpec:
    check_mapping(source, path, value, CELL_KEYS, required=("state", "params", "equations"))
    states = _read_states(source, path + ("state",), value["state"])
    output = value.get("output", states[0])
    if output not in states:
        raise source.error(path + ("output",), f"output must be one of the states {list(states)}, "
                                               f"got {describe(output)}")
    params = _read_params(source, path + ("params",), value["params"], states)
    lines = _equation_lines(source, path + ("equations",), value["equations"])
    equations = eq.parse_equations(lines, params=params, states=states)
    shapes.infer_shapes(
        equations,
        param_shapes={p.name: p.symbolic_shape() for p in params.values()},
        state_shape=(shapes.Dim.of("units"),),
        input_shape=(shapes.Dim.of("input"),),
    )
    _check_params_used(source, path + ("params",), params, equations)
    return CellSpec(name, states, output, params, equations, builtin, source.loc(path, key=True))


def _read_states(source: Source, path, value) -> tuple:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise source.error(path, f"expected a list of state names, got {describe(value)}")
    for i, state in enumerate(value):
        check_identifier(source, path + (i,), state, "state name")
        _check_not_keyword(source, path + (i,), state, "state")
        if state in RESERVED:
            raise source.error(path + (i,), f"'{state}' is reserved in equations; rename the state")
        if value.index(state) != i:
            raise source.error(path + (i,), f"state '{state}' is listed twice")
    return tuple(value)


def _read_params(source: Source, path, value, states) -> dict:
    if not isinstance(value, dict):
        raise source.error(path, f"expected a mapping of parameter names, got {describe(value)}")
    if not value:
        raise source.error(path, "a cell needs at least one parameter (what training learns); "
                                 "got an empty mapping")
    params = {}
    for name, entry in value.items():
        ppath = path + (name,)
        check_identifier(source, ppath, name, "parameter name")
        _check_not_keyword(source, ppath, name, "parameter", key=True)
        if name in RESERVED or name in states:
            raise source.error(ppath, f"parameter name '{name}' clashes with "
                                      f"{'a state' if name in states else 'a reserved name'}",
                               key=True)
        init = None
        if isinstance(entry, dict):
            check_mapping(source, ppath, entry, ("shape", "init"), required=("shape",))
            if "init" in entry:
                init = check_choice(source, ppath + ("init",), entry["init"], INITIALIZERS)
            shape = _read_shape(source, ppath + ("shape",), entry["shape"])
        else:
            shape = _read_shape(source, ppath, entry)
        params[name] = ParamSpec(name, shape, init or _default_init(shape))
    return params


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
        return eq.split_lines(value, start.shifted(1) if style in ("'", '"') else start)
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
        used |= _param_names(equation.expr)
    for name in params:
        if name not in used:
            raise source.error(path + (name,), f"parameter '{name}' is not used by any equation",
                               key=True)


def _param_names(expr) -> set:
    """Names of the parameters an expression uses."""
    if isinstance(expr, eq.Param):
        return {expr.name}
    children = {eq.Binary: lambda e: (e.left, e.right), eq.Negate: lambda e: (e.operand,),
                eq.Call: lambda e: e.args}
    found = set()
    for kind, get in children.items():
        if isinstance(expr, kind):
            for child in get(expr):
                found |= _param_names(child)
    return found
