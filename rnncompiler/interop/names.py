"""Names in the specs ``rnnc import`` writes: identifiers (docs/spec.md), each used once,
that YAML reads back as themselves (written bare, a layer ``true`` would read as a
boolean and ``null`` as nothing)."""

from __future__ import annotations

import re

from ..frontend.yaml_source import reads_as_text

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SpecNames:
    """The names a spec has so far; ``claim`` gives the next one."""

    def __init__(self, taken=()):
        self.taken = set(taken)

    def claim(self, *candidates: str) -> str:
        """The first candidate that can be a name: as it is where it is an identifier, else
        with its other characters as ``_`` (``/rnn/LSTM`` -> ``rnn_LSTM``); ``_`` after one
        that YAML reads otherwise (``true_``); ``_2``, ``_3`` ... after one taken."""
        for candidate in candidates:
            name = candidate or ""
            if not IDENT.fullmatch(name):
                name = re.sub(r"\W+", "_", name, flags=re.ASCII).strip("_")
            if not IDENT.fullmatch(name):
                continue
            if not reads_as_text(name):
                name += "_"
            base, n = name, 2
            while name in self.taken:
                name, n = f"{base}_{n}", n + 1
            self.taken.add(name)
            return name
        raise ValueError(f"none of {candidates} can be a name")
