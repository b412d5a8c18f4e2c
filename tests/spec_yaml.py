"""Spec dicts as YAML text, as users write them (the spec fuzzer's drawn specs)."""

from __future__ import annotations

import yaml


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
