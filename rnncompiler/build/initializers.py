"""Parameter initialisers (Keras conventions), in plain NumPy.

This module imports only numpy: the NumPy backend copies its source into every generated
module, so that ``init_params(seed)`` there gives exactly what ``rnnc init`` gives. Each
parameter draws from its own generator, seeded by the seed and the parameter's name, so
adding a layer does not change the others' values.
"""

import numpy as np


def name_seed(seed, name):
    """A 32-bit FNV-1a hash of the name, mixed with the seed (stable across runs)."""
    value = 2166136261
    for byte in name.encode("utf-8"):
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return [int(seed), value]


def initialize(init, shape, seed, name, dtype):
    """Values for one parameter; ``shape`` is [fan_out, fan_in] for matrices."""
    rng = np.random.default_rng(name_seed(seed, name))
    if init == "zeros":
        values = np.zeros(shape)
    elif init == "ones":
        values = np.ones(shape)
    elif init == "normal":
        values = rng.normal(0.0, 0.05, shape)
    elif init == "uniform":
        values = rng.uniform(-0.05, 0.05, shape)
    elif init == "glorot_uniform":
        fan_out, fan_in = (shape[0], shape[-1]) if len(shape) == 2 else (shape[0], shape[0])
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        values = rng.uniform(-limit, limit, shape)
    elif init == "orthogonal":
        values = _orthogonal(rng, shape)
    else:
        raise ValueError(f"unknown initializer {init!r}")
    return values.astype(dtype)


def _orthogonal(rng, shape):
    rows = shape[0]
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    flat = rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))  # makes the decomposition unique
    if rows < cols:
        q = q.T
    return q.reshape(shape)
