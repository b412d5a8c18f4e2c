"""Shared fixtures: the example specs and their data files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def spec_inputs(spec, data: dict) -> dict:
    """The arrays of ``data`` that are inputs of ``spec`` (data files also hold targets)."""
    return {name: data[name] for name in spec.inputs}


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
