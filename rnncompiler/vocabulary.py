"""Vocabularies: the token of each class id of an input or target, kept in array files
beside the parameters (``vocabulary.<name>``, an array of strings), so that a trained
model reads and writes text (docs/spec.md, Array files).

Text is split into tokens by the vocabulary itself: characters when every token is one
character (a character-level model), else words separated by white space.
"""

from __future__ import annotations

import numpy as np

from .errors import ArrayError, Location, RnncError, did_you_mean
from .frontend.spec import Spec

PREFIX = "vocabulary."


def split_vocabularies(spec: Spec, arrays: dict, file: str | None = None
                       ) -> tuple[dict, dict[str, list[str]]]:
    """(the arrays without vocabularies, name -> its tokens), each vocabulary checked: it
    names an input or target of class ids and holds one distinct string per class."""
    where = Location(file) if file else None
    rest, vocabularies = {}, {}
    arrays_with_ids = {name: array for name, array in {**spec.inputs, **spec.targets}.items()
                       if array.classes is not None}
    for key, value in arrays.items():
        if not key.startswith(PREFIX):
            rest[key] = value
            continue
        name = key[len(PREFIX):]
        if name not in arrays_with_ids:
            raise ArrayError(f"array '{key}': '{name}' is not an input or target of class ids"
                             f"{did_you_mean(name, arrays_with_ids)}", where)
        tokens = np.asarray(value)
        classes = arrays_with_ids[name].classes
        if tokens.dtype.kind != "U" or tokens.shape != (classes,):
            raise ArrayError(f"array '{key}' has {tokens.dtype} values of shape "
                             f"{list(tokens.shape)}; expected {classes} strings (one per "
                             "class id)", where)
        if len(set(tokens.tolist())) != classes:
            raise ArrayError(f"array '{key}' holds a token twice", where)
        vocabularies[name] = tokens.tolist()
    return rest, vocabularies


def as_arrays(vocabularies: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """The vocabularies as array-file entries."""
    return {PREFIX + name: np.asarray(tokens, dtype=str) for name, tokens in
            vocabularies.items()}


def is_characters(tokens: list[str]) -> bool:
    return all(len(token) == 1 for token in tokens)


def encode(text: str, tokens: list[str]) -> list[int]:
    """The ids of ``text``'s tokens (characters, or white-space separated words)."""
    index = {token: i for i, token in enumerate(tokens)}
    pieces = list(text) if is_characters(tokens) else text.split()
    unknown = sorted({piece for piece in pieces if piece not in index})
    if unknown:
        shown = ", ".join(repr(piece) for piece in unknown[:5])
        raise RnncError(f"the prompt holds {len(unknown)} token(s) not in the vocabulary: "
                        f"{shown}{' ...' if len(unknown) > 5 else ''}")
    return [index[piece] for piece in pieces]


def decode(ids, tokens: list[str]) -> str:
    """The text of ``ids``: characters joined, or words separated by spaces."""
    joiner = "" if is_characters(tokens) else " "
    return joiner.join(tokens[int(i)] for i in ids)
