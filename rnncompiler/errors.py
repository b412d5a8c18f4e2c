"""Errors that users see: one base class, each error with the place that caused it.

Only the CLI prints errors; everything else raises them. A message reads
``FILE:LINE:COL: error: message`` when a spec line is to blame, ``FILE: error: message``
when a whole file is (an array file, say), and ``error: message`` otherwise.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A place in a file. ``line`` and ``column`` are 1-based; 0 means unknown."""

    file: str
    line: int = 0
    column: int = 0

    def shifted(self, columns: int) -> Location:
        """The same line, ``columns`` characters further right."""
        return Location(self.file, self.line, self.column + columns)

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.column}"
        return self.file


class RnncError(Exception):
    """Any error caused by what the user gave us: a spec, an array file, an option."""

    def __init__(self, message: str, location: Location | None = None):
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        message = _printable(self.message)
        if self.location is None:
            return f"error: {message}"
        return f"{_printable(str(self.location))}: error: {message}"


class SpecError(RnncError):
    """The spec breaks a rule of the format (SPEC.md)."""


class SpecErrors(SpecError):
    """Several independent errors of one spec, reported together (one line each)."""

    def __init__(self, errors: list, more: bool = False):
        super().__init__(errors[0].message, errors[0].location)
        self.errors = errors
        self.more = more

    def __str__(self) -> str:
        lines = [str(error) for error in self.errors]
        if self.more:
            lines.append(f"error: stopped after {len(self.errors)} errors")
        return "\n".join(lines)


class Broken(Exception):
    """Internal: a part depends on another that already failed; say nothing more."""


class EquationError(SpecError):
    """A cell equation that cannot be parsed or whose shapes do not agree."""


class ArrayError(RnncError):
    """An array file (.npz) that does not fit the spec."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _printable(text: str) -> str:
    """Control characters (a line break in a key, an escape sequence) shown escaped, so a
    message stays one line and reaches the terminal as text."""
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


def closest(name: str, choices) -> str | None:
    """The choice closest to ``name``, or None when none is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, choices) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when none is close."""
    close = closest(name, choices)
    return f" (did you mean '{close}'?)" if close else ""


def one_of(choices) -> str:
    """'a', 'b' or 'c' — for messages that list what exists."""
    quoted = [f"'{c}'" for c in choices]
    if len(quoted) <= 1:
        return "".join(quoted) or "(none)"
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
