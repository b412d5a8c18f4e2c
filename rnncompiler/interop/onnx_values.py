"""What the tensors of an ONNX graph mean, for ``rnnc import --from onnx``
(rnncompiler/import_onnx_graph.py walks the graph with these values, never running it).

- ``Const``: an initializer, a Constant node's value, or what is computed from them alone;
- ``Zeros``: all zeros of a shape known only at run time (ConstantOfShape, Expand): what
  exporters feed as initial states;
- ``Dims``: integers computed from tensor shapes (Shape, then Gather, Concat, Mul ...),
  each a monomial of the run-time sizes (batch, T), or None where not followed;
- ``Other``: anything else that touches no tracked tensor; an error once it matters;
- ``View``: a tracked tensor (a graph input, an operator's Y / Y_h / Y_c, a dense head's
  output) as the graph has laid it out: its axes, each a tuple of atoms (the source's own
  dimensions, outermost first), and the atoms fixed to one index (the last step, one
  direction), which then count as size 1;
- ``Stack``: views of different sources concatenated on one axis (PyTorch's h_n of
  several layers), good only for picking one of them again.

A monomial is ``(coefficient, symbols)``: the size ``2 * batch`` is ``(2, ("x.0",))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import Location, RnncError

ONE = (1, ())
TO_THE_END = 2**31 - 1  # a Slice end at least this big runs to the end of its axis


class Refused(Exception):
    """A node rnnc import cannot map; the walker adds which node."""


def failure(path: str, message: str) -> RnncError:
    """An error with the model file to blame: ``FILE: error: message``."""
    return RnncError(message, Location(path))


@dataclass(frozen=True)
class Const:
    array: np.ndarray


@dataclass(frozen=True)
class Zeros:
    pass


@dataclass(frozen=True)
class Dims:
    values: tuple | None  # of monomials or None; None: not even the length is known
    scalar: bool = False


@dataclass(frozen=True)
class Other:
    origin: str  # which node made it, for the error where it matters


@dataclass(frozen=True)
class View:
    source: str
    axes: tuple  # of tuples of atoms
    fixed: tuple = ()  # sorted (atom, index); index -1: the last of a run-time size

    def fixes(self) -> dict:
        return dict(self.fixed)


@dataclass(frozen=True)
class Stack:
    parts: tuple  # of View
    axis: int


def mono(value) -> tuple:
    return (int(value), ())


def mul(a: tuple, b: tuple) -> tuple:
    return (a[0] * b[0], tuple(sorted(a[1] + b[1])))


def divide(a: tuple, b: tuple):
    """a / b as a monomial, or None where b does not divide a."""
    if b[0] == 0 or a[0] % b[0]:
        return None
    rest = list(a[1])
    for symbol in b[1]:
        if symbol not in rest:
            return None
        rest.remove(symbol)
    return (a[0] // b[0], tuple(rest))


def product(monos) -> tuple:
    total = ONE
    for m in monos:
        total = mul(total, m)
    return total


def show(m) -> str:
    if m is None:
        return "?"
    names = list(m[1])
    return "*".join(([str(m[0])] if m[0] != 1 or not names else []) + names)


class Space:
    """The atoms (their sizes) and the layout operations on views."""

    def __init__(self):
        self.sizes: dict[str, tuple] = {}

    def add(self, atom: str, size: tuple) -> str:
        self.sizes[atom] = size
        return atom

    def trivial(self, atom: str, fixed) -> bool:
        return atom in fixed or self.sizes[atom] == ONE

    def dims(self, view: View) -> list:
        fixed = view.fixes()
        return [product(ONE if a in fixed else self.sizes[a] for a in axis) for axis in view.axes]

    def big(self, view: View, axis: int) -> list:
        fixed = view.fixes()
        return [a for a in view.axes[axis] if not self.trivial(a, fixed)]

    def normal(self, view: View) -> tuple:
        """The axes with only the atoms of size > 1: what the layout really is."""
        return tuple(tuple(self.big(view, i)) for i in range(len(view.axes)))

    def is_last(self, atom: str, index: int) -> bool:
        size = self.sizes[atom]
        return index == -1 or (not size[1] and index == size[0] - 1)

    def _axis(self, view, axis: int, rank=None) -> int:
        rank = len(view.axes) if rank is None else rank
        if not -rank <= axis < rank:
            raise Refused(f"axis {axis} is out of range for a tensor of rank {rank}")
        return axis % rank

    def transpose(self, view: View, perm) -> View:
        perm = list(reversed(range(len(view.axes)))) if perm is None else list(perm)
        if sorted(perm) != list(range(len(view.axes))):
            raise Refused(f"perm {perm} does not fit a tensor of rank {len(view.axes)}")
        return View(view.source, tuple(view.axes[p] for p in perm), view.fixed)

    def reshape(self, view: View, target: list, allowzero: int = 0) -> View:
        dims = self.dims(view)
        target = list(target)
        for i, d in enumerate(target):
            if d == (0, ()):
                if allowzero or i >= len(dims):
                    raise Refused("reshapes to a size 0")
                target[i] = dims[i]
        free = [i for i, d in enumerate(target) if d is None or d == (-1, ())]
        if len(free) > 1:
            raise Refused("reshapes to sizes rnnc import cannot tell ("
                          f"{', '.join(show(d) for d in target)})")
        if free:
            rest = product(d for i, d in enumerate(target) if i != free[0])
            target[free[0]] = divide(product(dims), rest)
            if target[free[0]] is None:
                raise Refused(f"reshapes {_dims(dims)} to sizes that do not divide it")
        fixed = view.fixes()
        atoms = [a for axis in view.axes for a in axis]
        big = [a for a in atoms if not self.trivial(a, fixed)]
        owner, j = {}, 0
        for g, d in enumerate(target):
            size = ONE
            while size != d:
                if j == len(big) or divide(d, mul(size, self.sizes[big[j]])) is None:
                    raise Refused(f"reshapes {_dims(dims)} to {_dims(target)}, which splits "
                                  "or mixes its dimensions")
                size = mul(size, self.sizes[big[j]])
                owner[big[j]] = g
                j += 1
        if j != len(big):
            raise Refused(f"reshapes {_dims(dims)} to {_dims(target)}")
        if not target:
            raise Refused("reshapes a tracked tensor to a scalar")
        groups, current = [[] for _ in target], 0
        owned = set(owner.values())
        for i, a in enumerate(atoms):  # an atom of size 1: into an axis of size 1 on its way
            if a in owner:
                current = owner[a]
                groups[current].append(a)
                continue
            after = next((owner[b] for b in atoms[i + 1:] if b in owner), len(target))
            spare = [g for g in range(current, after) if g not in owned and target[g] == ONE]
            groups[spare[0] if spare else current].append(a)
        return View(view.source, tuple(tuple(g) for g in groups), view.fixed)

    def drop_axes(self, view: View, axes) -> View:
        """Without the given axes (of size 1): their atoms join a neighbouring axis."""
        axes = sorted({self._axis(view, a) for a in axes})
        keep = [i for i in range(len(view.axes)) if i not in axes]
        if not keep:
            raise Refused("makes a tracked tensor a scalar")
        moved = {i: list(view.axes[i]) for i in keep}
        for i in axes:
            before = [k for k in keep if k < i]
            if before:
                moved[before[-1]] += list(view.axes[i])
            else:
                moved[keep[0]] = list(view.axes[i]) + moved[keep[0]]
        return View(view.source, tuple(tuple(moved[i]) for i in keep), view.fixed)

    def squeeze(self, view: View, axes) -> View:
        dims = self.dims(view)
        if axes is None:
            axes = [i for i, d in enumerate(dims) if d == ONE]
        for a in axes:
            i = self._axis(view, a)
            if dims[i] != ONE:
                raise Refused(f"squeezes axis {a}, of size {show(dims[i])}")
        return self.drop_axes(view, axes)

    def unsqueeze(self, view: View, axes) -> View:
        rank = len(view.axes) + len(axes)
        where = sorted({self._axis(view, a, rank) for a in axes})
        rest = iter(view.axes)
        return View(view.source, tuple(() if i in where else next(rest) for i in range(rank)),
                    view.fixed)

    def fix(self, view: View, axis: int, index: int, keep_axis: bool) -> View:
        """Gather: one index of an axis; the axis's one atom of size > 1 is fixed."""
        axis = self._axis(view, axis)
        big = self.big(view, axis)
        fixed = view.fixes()
        if len(big) > 1:
            raise Refused(f"picks index {index} of an axis that merges "
                          f"{' and '.join(a.split('.')[-1] for a in big)}")
        if big:
            fixed[big[0]] = self._index(big[0], index)
        elif index not in (0, -1):
            raise Refused(f"picks index {index} of an axis of size 1")
        out = View(view.source, view.axes, tuple(sorted(fixed.items())))
        return out if keep_axis else self.drop_axes(out, [axis])

    def _index(self, atom: str, index: int) -> int:
        size = self.sizes[atom]
        if size[1]:  # known at run time only: from the start, or -1 (the last)
            if index < -1:
                raise Refused(f"picks index {index} of the run-time size {show(size)}")
            return index
        if not -size[0] <= index < size[0]:
            raise Refused(f"picks index {index} of an axis of size {size[0]}")
        return index % size[0]

    def slice(self, view: View, start: int, end: int, axis: int, step: int) -> View:
        axis = self._axis(view, axis)
        size = self.dims(view)[axis]
        n = size[0] if not size[1] else None
        whole_end = end >= TO_THE_END or (n is not None and end >= n)
        if step == 1 and whole_end and (start == 0 or (n is not None and start <= -n)):
            return view
        if step != 1:
            raise Refused(f"slices axis {axis} with step {step}")
        big = self.big(view, axis)
        if not big:
            if start in (0, -1) and whole_end:
                return view
            raise Refused(f"slices {start}:{end} of an axis of size 1")
        inner = product(self.sizes[a] for a in big[1:])
        if n is None:
            if big[1:] or start != -1 or not whole_end:
                raise Refused(f"slices {start}:{end} of the run-time size {show(size)}; only "
                              "the last step ([-1:]) or the whole axis is understood")
            return self.fixed(view, big[0], -1)
        first, stop, _ = slice(start, end).indices(n)
        if inner[1] or stop - first != inner[0] or first % inner[0]:
            raise Refused(f"keeps {first}:{stop} of an axis of {n}; only whole axes, one step "
                          "or one direction are understood")
        return self.fixed(view, big[0], first // inner[0])

    def fixed(self, view: View, atom: str, index: int) -> View:
        fixed = view.fixes()
        fixed[atom] = self._index(atom, index)
        return View(view.source, view.axes, tuple(sorted(fixed.items())))

    def concat(self, parts: list, axis: int):
        """The directions of one operator put back together, or a Stack."""
        rank = len(parts[0].axes)
        if any(len(p.axes) != rank for p in parts):
            raise Refused("concatenates tensors of different ranks")
        axis = self._axis(parts[0], axis)
        if len({p.source for p in parts}) > 1:
            for p in parts:
                if self.dims(p)[axis][1]:
                    raise Refused("concatenates tracked tensors along a run-time size")
            return Stack(tuple(parts), axis)
        fixes = [p.fixes() for p in parts]
        for atom in set().union(*fixes):
            values = [f.get(atom) for f in fixes]
            if values != list(range(len(parts))) or self.sizes[atom] != mono(len(parts)):
                continue
            rest = [View("", tuple(tuple(a for a in ax if a != atom) for ax in p.axes),
                         tuple(sorted((k, v) for k, v in f.items() if k != atom)))
                    for p, f in zip(parts, fixes)]
            if all(r == rest[0] for r in rest):
                axes = list(rest[0].axes)
                axes[axis] = (atom,) + axes[axis]
                return View(parts[0].source, tuple(axes), rest[0].fixed)
        raise Refused("concatenates parts of one tensor that are not its directions, in order")


def _dims(dims) -> str:
    return "[" + ", ".join(show(d) for d in dims) + "]"


def pick(stack: Stack, space: Space, index: int, keep_axis: bool) -> View:
    """One index of a Stack's axis: the part that holds it, indexed."""
    sizes = [space.dims(p)[stack.axis][0] for p in stack.parts]
    total = sum(sizes)
    if not -total <= index < total:
        raise Refused(f"picks index {index} of an axis of size {total}")
    index %= total
    for part, size in zip(stack.parts, sizes):
        if index < size:
            return space.fix(part, stack.axis, index, keep_axis)
        index -= size
    raise AssertionError("unreachable")


def is_zero(value) -> bool:
    return isinstance(value, Zeros) or (isinstance(value, Const) and not np.any(value.array))


def dims_op(op: str, ins, attrs, opset: int):
    """Integer arithmetic on shapes: followed where it only moves sizes around."""
    def values(v):
        if isinstance(v, Dims):
            return v
        if isinstance(v, Const) and v.array.dtype.kind in "iu" and v.array.ndim <= 1:
            return Dims(tuple(mono(x) for x in v.array.reshape(-1)), v.array.ndim == 0)
        return Dims(None)

    first = values(ins[0])
    if first.values is None:
        return Dims(None)
    vals, scalar = list(first.values), first.scalar
    if op in ("Identity", "Cast"):
        return first
    if op in ("Unsqueeze", "Squeeze", "Reshape"):
        return Dims(tuple(vals), op == "Squeeze" or (op == "Reshape" and isinstance(ins[1], Const)
                                                      and ins[1].array.size == 0))
    if op == "Concat":
        parts = [values(v) for v in ins]
        if any(p.values is None for p in parts):
            return Dims(None)
        return Dims(tuple(x for p in parts for x in p.values))
    if op in ("Gather", "Slice") and all(isinstance(v, Const) or v is None for v in ins[1:]):
        if op == "Gather":
            index = np.asarray(ins[1].array)
            if any(not -len(vals) <= int(i) < len(vals) for i in index.reshape(-1)):
                return Dims(None)
            return Dims(tuple(vals[int(i)] for i in index.reshape(-1)), index.ndim == 0)
        if opset < 10 and "starts" in attrs:
            start, end = attrs["starts"][0], attrs["ends"][0]
        else:
            start, end = int(ins[1].array.reshape(-1)[0]), int(ins[2].array.reshape(-1)[0])
        step = int(ins[4].array.reshape(-1)[0]) if len(ins) > 4 and ins[4] is not None else 1
        return Dims(tuple(vals[slice(start, min(end, len(vals)), step)]))
    if op in ("Mul", "Div") and len(ins) == 2:
        other = values(ins[1])
        if other.values is None or len(other.values) not in (1, len(vals)):
            return Dims(None)
        right = list(other.values) * (len(vals) if len(other.values) == 1 else 1)
        if len(vals) == 1 and len(right) > 1:
            vals = vals * len(right)
        out = [None if x is None or y is None else mul(x, y) if op == "Mul" else divide(x, y)
               for x, y in zip(vals, right)]
        return Dims(tuple(out), scalar and other.scalar)
    return Dims(None)
