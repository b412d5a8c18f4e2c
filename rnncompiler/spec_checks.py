"""Small checks shared by the spec readers; each raises a located SpecError."""

from __future__ import annotations

import re

from .errors import did_you_mean, one_of
from .yaml_source import Source

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")



def check_mapping(source: Source, path, value, allowed, required=()) -> dict:
    """``value`` must be a mapping with only ``allowed`` keys and all ``required`` ones."""
    if not isinstance(value, dict):
        raise source.error(path, f"expected a mapping, got {describe(value)}")
    for key in value:
        if key not in allowed:
            hint = did_you_mean(key, allowed) or f"; allowed: {', '.join(allowed)}"
            raise source.error(path + (key,), f"unknown key '{key}'{hint}", key=True)
    for key in required:
        if key not in value:
            raise source.error(path, f"missing required key '{key}'")
    return value


# Sizes beyond these are almost surely mistakes (and would exhaust memory); `--allow-large`
# (load_spec(..., limits=False)) lifts them.
LIMITS = {"units": 65_536, "features": 1_048_576, "steps": 1_000_000}
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
        raise source.error(path, f"expected true or false, got {describe(value)}")
    return value


def check_choice(source: Source, path, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise source.error(path, f"expected {one_of(choices)}, got {describe(value)}{hint}")
    return value


def check_identifier(source: Source, path, value, what: str = "name") -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
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
