"""The differential fuzzer: valid specs drawn over the whole spec language, each checked
against every property of ``spec_properties`` (every optimisation level, both backends
and every ONNX mode, the compiled module, central differences, long truncations, the
representative-steps compile, every pass alone on the reference evaluation).

A drawn spec that ends in any exception — a traceback, where ``rnnc`` would report an
internal error — fails the test as surely as a wrong number does. What it finds is kept
in ``tests/regressions/`` (each file says what went wrong; test_regressions.py).

CI runs a fixed-seed budget of ``RNNC_FUZZ_EXAMPLES`` specs (default below, about three
minutes on two cores); ``RNNC_FUZZ_EXAMPLES=2000 RNNC_FUZZ_SEED=7 pytest
tests/test_fuzz_specs.py -k drawn`` runs a long one (docs/testing.md).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, seed, settings
from spec_properties import check_spec
from spec_strategies import specs

EXAMPLES = int(os.environ.get("RNNC_FUZZ_EXAMPLES", "40"))
SEED = os.environ.get("RNNC_FUZZ_SEED")


def _fuzzed(test):
    """``test`` over drawn specs: CI's fixed budget and seed, or a long run from
    ``RNNC_FUZZ_SEED``."""
    options = dict(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
                   suppress_health_check=list(HealthCheck), derandomize=SEED is None)
    test = settings(**options)(given(drawn=specs())(test))
    return test if SEED is None else seed(int(SEED))(test)


@_fuzzed
def test_drawn_spec(drawn):
    check_spec(drawn.text, drawn.steps)
