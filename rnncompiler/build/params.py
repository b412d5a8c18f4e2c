"""Fresh values for the parameters a spec declares (``frontend.params``), seeded key by
key."""

from __future__ import annotations

import numpy as np

from ..frontend.params import param_infos
from ..frontend.spec import Spec
from . import initializers


def init_params(spec: Spec, seed: int = 0) -> dict[str, np.ndarray]:
    """Fresh parameters for ``spec``; the same seed gives the same values, key by key."""
    dtype = np.dtype(spec.dtype)
    return {info.key: initializers.initialize(info.init, info.shape, seed, info.key, dtype)
            for info in param_infos(spec)}
