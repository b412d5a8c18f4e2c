"""A cell's equation text -> its ``Equation`` trees, line by line, in order.

Splits the text where YAML breaks lines (so that line numbers agree with the file),
parses each line with ``equation_whitelist.py``, and checks what only the whole cell
shows: parameters and states with names of their own, and every state assigned. The
first error is raised, or, given ``keep``, each line's is kept and parsing goes on with
the next line, so that a spec's errors are all told in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence

from ..errors import EquationError, Location
from .equation_whitelist import LineParser
from .equations import RESERVED, Equation

# YAML's line breaks (as PyYAML reads them), so that line numbers agree with the file.
_LINE_BREAKS = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def split_lines(text: str, first: Location) -> list[tuple[str, Location]]:
    """Split ``text`` into lines; the first starts at ``first``, the others at column 1."""
    return [(piece, first if i == 0 else Location(first.file, first.line + i, 1))
            for i, piece in enumerate(_LINE_BREAKS.split(text))]


def parse_equations(
    lines: Sequence[tuple[str, Location]], *, params: Collection[str], states: Sequence[str],
    keep: Callable[[EquationError], None] | None = None,
) -> list[Equation]:
    """Parse a cell's equation lines into expression trees.

    Args:
        lines: each source line with the Location of its first character.
        params: the cell's parameter names.
        states: the cell's state names; each must be assigned exactly once, as ``s[t]``.
        keep: given, each line's error is passed to it and parsing goes on with the next
            line (the name a failed line assigns counts as assigned, so that its uses say
            nothing more); the lines that parsed are returned.

    Raises:
        EquationError: at the line and column of the first thing that is not allowed.
    """
    first = lines[0][1] if lines else None
    names = [*params, *states]
    for name in names:
        if name in RESERVED or names.count(name) > 1:
            raise EquationError(f"'{name}' is given twice or reserved: parameters and states "
                                f"need names of their own, other than {', '.join(RESERVED)}",
                                first)
    report = keep or _raise
    parser = LineParser(params, states)
    equations = []
    for text, loc in lines:
        try:
            equation = parser.parse_line(text, loc)
        except EquationError as error:
            report(error)
            parser.assume_assigned(text, loc)
        else:
            equations += [equation] if equation is not None else []
    missing = [name for name in parser.states if name not in parser.assigned]
    if missing:
        where = equations[-1].loc if equations else first
        verb = "is" if len(missing) == 1 else "are"
        report(EquationError(f"state {' and '.join(missing)} {verb} never assigned; add a "
                             f"line `{missing[0]}[t] = ...`", where))
    return equations


def _raise(error: EquationError):
    raise error
