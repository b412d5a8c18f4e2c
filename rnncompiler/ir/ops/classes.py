"""Ops on class ids (ints, from an input or target with ``classes: N``): an embedding's
rows looked up by id, their gradient summed back into the table, and ids as one-hot
vectors (a target of class ids, for the cross-entropy)."""

from __future__ import annotations

import numpy as np

from .registry import ShapeError, register


def _embed_shape(shapes, attrs):
    table, ids = shapes
    if len(table) != 2:
        raise ShapeError(f"embed of a table of shape {table}")
    return tuple(ids) + (table[1],)


def embed(table, ids, *, padding_id=None):
    """The row of ``table`` for each id: ids [...] -> [..., n]."""
    return table[ids]


def _embed_vjp(b, g, y, args, attrs):
    table, ids = args
    padding = {key: attrs[key] for key in ("padding_id",) if key in attrs}
    return [b.add("embed_grad", [g, ids], classes=b.shape(table)[0], **padding)
            if b.needs[0] else None, None]


register("embed", 2, _embed_shape, embed, _embed_vjp, traits=("per_example",),
         doc="the table's row for each class id (an embedding)")


def embed_grad(g, ids, *, classes, padding_id=None):
    """Σ of the cotangents of every lookup of each id, into a table of ``classes`` rows;
    the padding id's row gets none (PyTorch's padding_idx)."""
    table = np.zeros((classes, g.shape[-1]), dtype=g.dtype)
    np.add.at(table, ids.reshape(-1), g.reshape(-1, g.shape[-1]))
    if padding_id is not None:
        table[padding_id] = 0
    return table


def _embed_grad_shape(shapes, attrs):
    return (attrs["classes"], shapes[0][-1])


register("embed_grad", 2, _embed_grad_shape, embed_grad, unbatched=True,
         doc="the gradient of an embedding's table: each lookup's cotangent added to its row")


def one_hot(ids, *, classes, dtype):
    """Ids [...] -> one-hot rows [..., classes] of numbers of ``dtype``."""
    return np.eye(classes, dtype=dtype)[ids]


register("one_hot", 1, lambda shapes, attrs: tuple(shapes[0]) + (attrs["classes"],), one_hot,
         traits=("per_example",), doc="class ids as one-hot vectors of `classes` features")
