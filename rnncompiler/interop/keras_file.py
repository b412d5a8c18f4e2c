"""Reading a Keras 3 ``.keras`` file for ``rnnc import --from keras``
(rnncompiler/import_keras.py): a zip of ``config.json`` and ``metadata.json``, read as
JSON, and ``model.weights.h5``, read with h5py; no Keras needed."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from ..errors import Location, RnncError


def read_keras(path) -> tuple[dict, str, dict]:
    """(config, Keras version, {path in model.weights.h5: array})."""
    where = Location(str(path))
    try:
        with zipfile.ZipFile(path) as archive:
            read = {m: archive.read(m) for m in ("config.json", "metadata.json",
                                                 "model.weights.h5") if m in archive.namelist()}
        config, meta = json.loads(read["config.json"]), json.loads(read.get("metadata.json", "{}"))
        data = read["model.weights.h5"]
    except KeyError as error:
        raise RnncError(f"not a Keras 3 .keras file: it has no {error.args[0]}", where) from None
    except (OSError, zipfile.BadZipFile, ValueError) as error:  # ValueError: not JSON
        raise RnncError(f"not a .keras file (a zip of config.json and model.weights.h5): "
                        f"{error}", where) from None
    try:
        import h5py
    except ImportError:
        raise RnncError("reading a .keras file's weights needs h5py: "
                        "pip install 'rnncompiler[keras]'", where) from None
    weights = {}
    try:
        with h5py.File(io.BytesIO(data), "r") as h5:
            h5.visititems(lambda key, item: weights.__setitem__(key, np.asarray(item[()]))
                          if isinstance(item, h5py.Dataset) else None)
    except OSError as error:
        raise RnncError(f"model.weights.h5 is not an HDF5 file: {error}", where) from None
    return config, str(meta.get("keras_version", "?")), weights
