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
    params = {}
    for info in param_infos(spec):
        params[info.key] = initializers.initialize(info.init, info.shape, seed, info.key, dtype)
        if info.zero_row is not None:  # an embedding's padding id (PyTorch's padding_idx)
            params[info.key][info.zero_row] = 0
    return params
