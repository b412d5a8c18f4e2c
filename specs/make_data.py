"""Write a small synthetic data file for every spec here: specs/data/<spec>.npz.

Each file holds the spec's inputs and targets (batch 8), so `rnnc run` and `rnnc grad`
work on every example out of the box. Sequences of one feature are windows of a sine
wave and their targets its next values (the seed's forecasting example); other inputs
are standard normal; targets of a softmax output are one-hot; class ids are drawn
uniformly. Sequences with
`lengths: true` get `<name>.lengths` (the same lengths for all of them) and zeros past
each example's length.

    python specs/make_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import rnncompiler as rc

BATCH = 8
HERE = Path(__file__).parent


def sine_windows(rng, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of sin(t) starting at random phases, and the value after each window."""
    start = rng.uniform(0, 2 * np.pi, (BATCH, 1))
    grid = start + 0.3 * np.arange(steps + 1)
    wave = np.sin(grid)[..., None]
    return wave[:, :steps], wave[:, 1:]


def make(spec: rc.Spec, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = spec.unroll.steps or 5
    arrays: dict[str, np.ndarray] = {}
    waves = None
    for name, array in spec.inputs.items():
        length = array.steps or steps
        if array.classes is not None:  # class ids
            arrays[name] = rng.integers(0, array.classes, (BATCH, length)[:1 + array.sequence])
        elif array.sequence and array.features == 1:
            waves = sine_windows(rng, length)
            arrays[name] = waves[0]
        else:
            shape = (BATCH, length, array.features) if array.sequence else (BATCH, array.features)
            arrays[name] = rng.standard_normal(shape)
    softmax_targets = {spec.loss.target} if spec.loss and spec.loss.type == "cross_entropy" \
        else set()
    for name, array in spec.targets.items():
        length = array.steps or steps
        shape = (BATCH, length, array.features) if array.sequence else (BATCH, array.features)
        if array.classes is not None:
            arrays[name] = rng.integers(0, array.classes, shape[:-1])
        elif name in softmax_targets:
            arrays[name] = np.eye(array.features)[rng.integers(0, array.features, shape[:-1])]
        elif waves is not None and array.features == 1:
            arrays[name] = waves[1] if array.sequence else waves[1][:, -1]
        else:
            arrays[name] = rng.standard_normal(shape)
    lengths = {}
    for name, array in {**spec.inputs, **spec.targets}.items():
        if array.lengths:  # each example its own length; the longest fills the steps
            length = arrays[name].shape[1]
            own = lengths.get("shared")
            if own is None:
                own = rng.integers(max(1, length // 4), length + 1, BATCH)
                own[0] = length
                lengths["shared"] = own
            arrays[name][np.arange(length)[None, :] >= own[:, None]] = 0.0  # padding
            lengths[f"{name}.lengths"] = own
    dtype = np.dtype(spec.dtype)
    arrays = {name: value if value.dtype.kind == "i" else value.astype(dtype)
              for name, value in arrays.items()}  # class ids stay ints
    arrays.update({name: value for name, value in lengths.items() if name != "shared"})
    return arrays


def main() -> None:
    (HERE / "data").mkdir(exist_ok=True)
    for path in sorted(HERE.glob("*.yaml")):
        spec = rc.load_spec(path)
        np.savez(HERE / "data" / f"{spec.name}.npz", **make(spec))
        print(f"specs/data/{spec.name}.npz")


if __name__ == "__main__":
    main()
