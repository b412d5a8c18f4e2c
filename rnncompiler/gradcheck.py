"""Check derived gradients against float64 central differences of the loss.

Runs the spec in float64 with full BPTT (a truncated gradient is not the loss's
derivative) on random parameters and data, and compares, for every parameter and a few
random directions d, the directional derivative <grad, d> with
(L(θ + εd) - L(θ - εd)) / 2ε. A direction covers every entry at once and keeps the
comparison well conditioned, where single tiny entries would compare rounding noise.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .api import loss_and_grads
from .build.dropout import sample_masks
from .frontend.params import param_infos
from .frontend.spec import Spec, UnrollSpec


@dataclass(frozen=True)
class ParamCheck:
    name: str
    checked: int  # random directions compared
    worst: float  # the worst relative error among them
    beyond_own_error: float  # the same, less what the differences' own error explains


def random_data(spec: Spec, steps: int, batch: int, rng) -> dict:
    """Inputs and targets for ``spec``; targets of a cross-entropy loss are probabilities;
    dropout's masks drawn as training draws them (fixed: the loss is a function of the
    parameters for given masks)."""
    data = {}
    for name, array in {**spec.inputs, **spec.targets}.items():
        shape = (batch, array.steps or steps) if array.sequence else (batch,)
        if array.classes is not None:  # class ids
            data[name] = rng.integers(0, array.classes, shape)
        else:
            data[name] = rng.standard_normal(shape + (array.features,))
    if spec.loss is not None and spec.loss.type == "cross_entropy" and \
            spec.targets[spec.loss.target].classes is None:
        raw = rng.uniform(0.1, 1.0, data[spec.loss.target].shape)
        data[spec.loss.target] = raw / raw.sum(axis=-1, keepdims=True)
    for name, array in {**spec.inputs, **spec.targets}.items():
        if array.lengths:  # the first example full, the others from 1 step on
            length = data[name].shape[1]
            data[f"{name}.lengths"] = np.concatenate(
                [[length], rng.integers(1, length + 1, batch - 1)]).astype(np.int64)
    data.update(sample_masks(spec, batch, steps, rng))
    return data


# The step of the central differences: the cube root of float64's epsilon balances their
# truncation error (~ε²) against the rounding error of the two losses (~u/ε).
EPSILON = float(np.finfo(np.float64).eps) ** (1 / 3)
# How far rounding alone may move a loss evaluated in float64, relative to its size.
LOSS_ROUNDING = 4 * float(np.finfo(np.float64).eps)


def gradcheck(spec: Spec, steps: int | None = None, *, seed: int = 0, batch: int = 2,
              directions: int = 3, epsilon: float = EPSILON, level: int = 2,
              params: dict | None = None, data: dict | None = None) -> list[ParamCheck]:
    """The worst relative error of the derived gradient of every parameter, as it is and
    beyond what the central differences' own error explains (random parameters and data
    unless given)."""
    checked = copy.copy(spec)
    checked.dtype = "float64"
    checked.unroll = UnrollSpec(spec.unroll.steps)
    steps = steps or spec.unroll.steps or 4
    rng = np.random.default_rng(seed)
    if params is None:
        params = {info.key: rng.normal(0.0, 0.5, info.shape) for info in param_infos(checked)}
    params = {name: np.asarray(value, np.float64) for name, value in params.items()}
    if data is None:
        data = random_data(checked, steps, batch, rng)
    loss, grads = loss_and_grads(checked, params, data, steps=steps, level=level)

    def loss_at(name, step):
        moved = {**params, name: params[name] + step}
        return float(loss_and_grads(checked, moved, data, steps=steps, level=level)[0])

    def difference(name, direction, step):
        return (loss_at(name, step * direction) - loss_at(name, -step * direction)) / (2 * step)

    rounding = LOSS_ROUNDING * abs(float(loss)) / epsilon
    # an embedding's padding row is held fixed (its gradient is zero by definition, as
    # PyTorch's padding_idx): no direction moves it
    frozen = {info.key: info.zero_row for info in param_infos(checked)
              if info.zero_row is not None}
    results = []
    for name, value in params.items():
        worst = beyond = 0.0
        for _ in range(directions):
            direction = rng.standard_normal(value.shape)
            if name in frozen:
                direction[frozen[name]] = 0
            numeric = difference(name, direction, epsilon)
            # the difference's own error: its truncation error, which shrinks as ε² (so the
            # difference at 2ε moves away by about three times it), and the losses' rounding
            own_error = abs(difference(name, direction, 2 * epsilon) - numeric) + rounding
            analytic = float(np.sum(grads[f"grad.{name}"] * direction))
            scale = max(abs(numeric), abs(analytic), 1e-300)
            worst = max(worst, abs(numeric - analytic) / scale)
            beyond = max(beyond, max(0.0, abs(numeric - analytic) - own_error) / scale)
        results.append(ParamCheck(name, directions, worst, beyond))
    return results
