"""Small checks shared by the spec readers; each raises a located SpecError."""

from __future__ import annotations

import re

from ..errors import closest, did_you_mean, one_of
from .yaml_source import Source

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_mapping(source: Source, path, value, allowed, required=()) -> bool:
    """``value`` must be a mapping (else the error is raised) with only ``allowed`` keys and
    all ``required`` ones. Each key that breaks this is an error of its own, kept on
    ``source`` so that the caller goes on with the keys there are; returns whether all
    keys were right."""
    if not isinstance(value, dict):
        raise source.error(path, f"expected a mapping, got {describe(value)}")
    meant = set()  # what misspelt keys were meant to be: not reported missing as well
    right = True
    for key in value:
        if key not in allowed:
            meant.add(closest(key, allowed))
            hint = did_you_mean(key, allowed) or f"; allowed: {', '.join(allowed)}"
            source.keep(source.error(path + (key,), f"unknown key '{key}'{hint}", key=True))
            right = False
    for key in required:
        if key not in value:
            right = False
            if key not in meant:
                source.keep(source.error(path, f"missing required key '{key}'"))
    return right


# Sizes beyond these are almost surely mistakes (and would exhaust memory); `--allow-large`
# (load_spec(..., limits=False)) lifts them.
LIMITS = {"units": 65_536, "features": 1_048_576, "classes": 1_048_576, "steps": 1_000_000}
MAX_PARAMETERS = 2_000_000_000


def check_int(source: Source, path, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise source.error(path, f"expected an integer >= {minimum}, got {describe(value)}")
    limit = LIMITS.get(path[-1]) if source.limits and path else None
    if limit is not None and value > limit:
        raise source.error(path, f"{value:,} is above the limit of {limit:,} for {path[-1]} "
                                 "(--allow-large lifts the limits)")
    return value


def check_bool(source: Source, path, value) -> bool:
    if not isinstance(value, bool):
        hint = did_you_mean(value, ("true", "false")) if isinstance(value, str) else ""
        raise source.error(path, f"expected true or false, got {describe(value)}{hint}")
    return value


def check_choice(source: Source, path, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise source.error(path, f"expected {one_of(choices)}, got {describe(value)}{hint}")
    return value


def is_identifier(value) -> bool:
    return isinstance(value, str) and IDENTIFIER.match(value) is not None


def check_identifier(source: Source, path, value, what: str = "name") -> str:
    if not is_identifier(value):
        raise source.error(path, f"{what} must be an identifier ([A-Za-z_][A-Za-z0-9_]*), "
                                 f"got {describe(value)}")
    return value


def describe(value) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value) if len(value) < 40 else repr(value[:37] + "...")
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
