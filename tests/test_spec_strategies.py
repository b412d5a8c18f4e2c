"""The spec generator of spec_strategies.py: it draws only valid specs, each with a loss and
a T from 1 to 30, and over a few hundred draws it reaches every feature it names.

A generator that drew invalid specs would make every property built on it fail for the
generator's fault, not the compiler's; one that silently stopped drawing a feature would
leave that part of the language unfuzzed. Draws are derandomized, so these tests see the
same specs on every run.
"""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from spec_strategies import (
    CELL_NAMES,
    FEATURES,
    INPUT_NAMES,
    LAYER_NAMES,
    MAX_STEPS,
    TARGET_NAMES,
    YAML_WORDS,
    DrawnSpec,
    dump_spec,
    specs,
)

import rnncompiler as rc

GENERATOR = settings(max_examples=200, database=None, derandomize=True, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
COVERAGE_DRAWS = 500


@GENERATOR
@given(specs())
def test_every_drawn_spec_is_valid(drawn: DrawnSpec):
    spec = rc.load_spec_text(drawn.text, "fuzz.yaml")
    assert spec.loss is not None, "every spec is differentiated: it needs a loss"
    assert 1 <= drawn.steps <= MAX_STEPS
    assert 1 <= len(spec.layers) <= 4
    assert drawn.features <= set(FEATURES), drawn.features - set(FEATURES)


@settings(GENERATOR, max_examples=50)
@given(specs(max_layers=1))
def test_max_layers_bounds_the_layers(drawn: DrawnSpec):
    spec = rc.load_spec_text(drawn.text, "fuzz.yaml")
    assert len(spec.layers) == 1


def test_every_feature_is_drawn():
    seen: set[str] = set()

    @settings(GENERATOR, max_examples=COVERAGE_DRAWS)
    @given(specs())
    def record(drawn: DrawnSpec):
        seen.update(drawn.features)

    record()
    assert sorted(set(FEATURES) - seen) == []


def test_features_are_listed_once():
    assert len(FEATURES) == len(set(FEATURES))


def test_names_yaml_would_misread_survive_dumping():
    """Names such as `on` or `null` are strings to the spec but booleans or nothing to
    YAML 1.1 when bare; the dump must quote them, as keys and as values."""
    names = {*YAML_WORDS, *INPUT_NAMES, *TARGET_NAMES, *LAYER_NAMES, *CELL_NAMES}
    for name in sorted(names):
        text = dump_spec({name: {"input": name, "names": [name]}})
        assert yaml.safe_load(text) == {name: {"input": name, "names": [name]}}, text
