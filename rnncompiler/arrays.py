"""Array files (.npz): reading them and checking them against a spec (``writing.py``
writes them). Messages name the file and the array.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .build.dropout import dropout_masks
from .build.unroll import state_inputs
from .errors import ArrayError, Location, did_you_mean
from .frontend.params import param_infos
from .frontend.spec import Spec
from .vocabulary import split_vocabularies


def load_npz(path, what: str = "arrays") -> dict[str, np.ndarray]:
    """Every array of an .npz file (no pickles)."""
    where = Location(str(path))
    try:
        if Path(path).is_file() and not zipfile.is_zipfile(path):
            raise ArrayError(f"not an .npz file of {what} (not a zip archive)", where)
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ArrayError(f"expected an .npz file of {what}", where)
            return {key: data[key] for key in data.files}
    except OSError as exc:
        raise ArrayError(f"cannot read {what}: {exc.strerror or exc}", where) from None
    except (ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ArrayError(f"not a valid .npz file of {what}: {exc}", where) from None


def _as_float(array, name: str, dtype, where) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "fiu":
        raise ArrayError(f"array '{name}' has dtype {array.dtype}; expected numbers", where)
    array = array.astype(dtype, copy=False)
    if not np.all(np.isfinite(array)):
        raise ArrayError(f"array '{name}' contains NaN or infinity", where)
    return array


def _as_ids(array, name: str, spec, where) -> np.ndarray:
    """Class ids: ints from 0 to classes - 1, [batch, steps] or [batch] (int64)."""
    array = np.asarray(array)
    layout = "[batch, steps]" if spec.sequence else "[batch]"
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and \
            np.array_equal(array, np.round(array)):
        array = array.astype(np.int64)  # whole numbers stored as floats
    if array.dtype.kind not in "iu":
        raise ArrayError(f"array '{name}' has dtype {array.dtype}; expected class ids (ints "
                         f"from 0 to {spec.classes - 1})", where)
    if array.ndim != (2 if spec.sequence else 1):
        raise ArrayError(f"array '{name}' has shape {list(array.shape)}; expected class ids "
                         f"{layout}", where)
    if array.size and (array.min() < 0 or array.max() >= spec.classes):
        bad = array.min() if array.min() < 0 else array.max()
        raise ArrayError(f"array '{name}' holds the id {bad}, out of range: its ids are from "
                         f"0 to {spec.classes - 1} (`classes: {spec.classes}`)", where)
    return array.astype(np.int64, copy=False)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def check_params(spec: Spec, params: dict, file: str | None = None) -> dict:
    """``params`` cast to the spec's dtype, with exactly the keys and shapes the spec needs."""
    where = Location(file) if file else None
    params = split_vocabularies(spec, params, file)[0]  # they travel beside the parameters
    infos = {info.key: info for info in param_infos(spec)}
    for key in params:
        if key not in infos:
            raise ArrayError(f"unknown parameter '{key}'{did_you_mean(key, infos)}", where)
    checked = {}
    for key, info in infos.items():
        if key not in params:
            raise ArrayError(f"missing parameter '{key}' (shape {list(info.shape)})", where)
        array = _as_float(params[key], key, spec.dtype, where)
        if array.shape != info.shape:
            raise ArrayError(f"parameter '{key}' has shape {list(array.shape)}, expected "
                             f"{list(info.shape)}", where)
        checked[key] = array
    return checked


def _check_lengths(arrays: dict, name: str, batch_steps: tuple, where) -> np.ndarray:
    """``<name>.lengths``: an int per example, from 1 to the sequence's steps."""
    key = f"{name}.lengths"
    if key not in arrays:
        raise ArrayError(f"missing array '{key}' (`lengths: true` on '{name}': the length of "
                         "each example, int, shape [batch])", where)
    lengths = np.asarray(arrays[key])
    batch, steps = batch_steps
    if lengths.dtype.kind not in "iu" or lengths.shape != (batch,):
        raise ArrayError(f"array '{key}' has {lengths.dtype} values of shape "
                         f"{list(lengths.shape)}; expected ints of shape [{batch}]", where)
    if lengths.size and (lengths.min() < 1 or lengths.max() > steps):
        raise ArrayError(f"array '{key}' holds lengths from {lengths.min()} to "
                         f"{lengths.max()}; each must be from 1 to {steps} (the steps of "
                         f"'{name}')", where)
    return lengths.astype(np.int64)


def check_inputs(spec: Spec, arrays: dict, steps: int | None = None, file: str | None = None,
                 *, with_targets: bool = False, state_io: bool = False):
    """(inputs cast to the spec's dtype, T). T is ``steps``, else ``unroll.steps``, else the
    length of the sequences that follow T; every sequence must agree with it. With
    ``state_io``, initial states ``<layer>.<state>0`` may be given; missing ones are zeros.
    With ``with_targets``, dropout's masks may be given; missing ones are ones (no
    dropout). Without, masks given are allowed and not used (the forward pass has none)."""
    where = Location(file) if file else None
    arrays = split_vocabularies(spec, arrays, file)[0]  # a data file may carry them
    wanted = dict(spec.inputs)
    if with_targets:
        wanted.update(spec.targets)
    states = state_inputs(spec) if state_io else {}
    lengths = [f"{name}.lengths" for name, array in {**spec.inputs, **spec.targets}.items()
               if array.lengths]
    masks = {mask.name: mask for mask in dropout_masks(spec)}
    known = list(spec.inputs) + list(spec.targets) + list(states) + lengths + list(masks)
    for key in arrays:
        if key not in known:
            raise ArrayError(f"unknown array '{key}'{did_you_mean(key, known)}; the spec's "
                             f"inputs are {', '.join(spec.inputs)}", where)
    checked, batch = {}, None
    steps = steps if steps is not None else spec.unroll.steps
    for name, array_spec in wanted.items():
        if name not in arrays:
            raise ArrayError(f"missing array '{name}'", where)
        if array_spec.classes is not None:
            array = _as_ids(arrays[name], name, array_spec, where)
        else:
            array = _as_float(arrays[name], name, spec.dtype, where)
            rank = 3 if array_spec.sequence else 2
            layout = "[batch, steps, features]" if array_spec.sequence else "[batch, features]"
            if array.ndim != rank or array.shape[-1] != array_spec.features:
                raise ArrayError(f"array '{name}' has shape {list(array.shape)}; expected "
                                 f"{layout} with {_count(array_spec.features, 'feature')}",
                                 where)
        if batch is not None and array.shape[0] != batch:
            raise ArrayError(f"array '{name}' has batch {array.shape[0]} but earlier arrays "
                             f"have {batch}", where)
        batch = array.shape[0]
        if array_spec.sequence:
            length = array_spec.steps if array_spec.steps is not None else steps
            if length is None:
                steps = length = array.shape[1]
            if array.shape[1] != length:
                source = "its `steps`" if array_spec.steps is not None else "T"
                raise ArrayError(f"array '{name}' has {array.shape[1]} steps but {source} is "
                                 f"{length}", where)
        checked[name] = array
        if array_spec.lengths:
            checked[f"{name}.lengths"] = _check_lengths(arrays, name, array.shape[:2], where)
    for name, units in states.items():
        if name not in arrays:
            checked[name] = np.zeros((batch, units), dtype=spec.dtype)
            continue
        array = _as_float(arrays[name], name, spec.dtype, where)
        if array.shape != (batch, units):
            raise ArrayError(f"initial state '{name}' has shape {list(array.shape)}, expected "
                             f"[{batch}, {units}]", where)
        checked[name] = array
    if with_targets:
        checked.update(_check_masks(spec, masks, arrays, batch, steps, where))
    return checked, steps


def _check_masks(spec: Spec, masks: dict, arrays: dict, batch: int, steps, where) -> dict:
    """Dropout's masks (build/dropout.py) as given, of their shapes; ones where none is."""
    checked = {}
    for name, mask in masks.items():
        shape = mask.shape(batch, steps)
        if name not in arrays:
            checked[name] = np.ones(shape, spec.dtype)
            continue
        array = _as_float(arrays[name], name, spec.dtype, where)
        if array.shape != shape:
            raise ArrayError(f"dropout mask '{name}' has shape {list(array.shape)}, expected "
                             f"{list(shape)}", where)
        checked[name] = array
    return checked
