"""Every file rnnc writes goes through here: whole or not at all, and never a traceback.

A file is written to a temporary file beside it and renamed into place, so a failing
command leaves no partial file and no temporary one. A missing folder is made (and
removed again if the write fails); a read-only file, a folder in the way or a folder
that cannot be written is a one-line error naming the user's path. ``check_writable``
asks the same questions before a long command starts, so that `rnnc train` does not
learn after an hour of training that its output cannot be written. ``Outputs`` writes
several files of one command together: all of them, or none.
"""

from __future__ import annotations

import io
import os
import stat
import tempfile
from pathlib import Path

from .errors import Location, RnncError


def check_writable(path, what: str = "the output") -> Path:
    """``path`` as it will be written, after checking that it can be: raises a located
    RnncError otherwise. Leaves nothing behind (a folder to be made is not made yet)."""
    target = _target(path)
    where = Location(str(path))
    if target.is_dir():
        raise RnncError(f"cannot write {what}: it is a folder", where)
    if target.exists() and not target.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP
                                                         | stat.S_IWOTH):
        raise RnncError(f"cannot write {what}: the file is read-only (make it writable, "
                        "or choose another path)", where)
    folder = _folder(target)
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise RnncError(f"cannot write {what}: '{existing}' is a file, not a folder", where)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RnncError(f"cannot write {what}: permission denied in '{existing}'", where)
    if existing == folder:
        _probe(folder, what, where)
    return target


def _probe(folder: Path, what: str, where: Location) -> None:
    """Make and remove a file in ``folder``: the one sure test that it takes files (a
    read-only mount, or /proc, can pass os.access)."""
    try:
        handle, name = tempfile.mkstemp(prefix=".rnnc.", suffix=".tmp", dir=folder)
        os.close(handle)
        os.unlink(name)
    except OSError as exc:
        raise RnncError(f"cannot write {what}: {exc.strerror or exc}", where) from None


def save_bytes(path, data: bytes, what: str = "the output") -> None:
    """Write ``data`` to ``path``, whole or not at all."""
    with Outputs() as outputs:
        outputs.add(path, data, what)


def save_text(path, text: str, what: str = "the output") -> None:
    save_bytes(path, text.encode("utf-8"), what)


def save_npz(path, arrays: dict, what: str = "the output") -> None:
    save_bytes(path, npz_bytes(arrays), what)


def npz_bytes(arrays: dict) -> bytes:
    import numpy as np

    stream = io.BytesIO()
    np.savez(stream, **arrays)
    return stream.getvalue()


class Outputs:
    """Files of one command, written together when the ``with`` block ends without an
    error: every file is written to its temporary first, then all are renamed into place.
    An error before that leaves none of them."""

    def __init__(self):
        self.pending: list[tuple[str, Path, bytes, str]] = []

    def add(self, path, data: bytes, what: str = "the output") -> None:
        self.pending.append((str(path), check_writable(path, what), data, what))

    def text(self, path, text: str, what: str = "the output") -> None:
        self.add(path, text.encode("utf-8"), what)

    def npz(self, path, arrays: dict, what: str = "the output") -> None:
        self.add(path, npz_bytes(arrays), what)

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.commit()

    def commit(self) -> None:
        made: list[Path] = []
        written: list[tuple[Path, Path]] = []
        try:
            for shown, target, data, what in self.pending:
                try:
                    made += _make_folder(_folder(target))
                    written.append((_write_temporary(target, data), target))
                except OSError as exc:
                    raise RnncError(f"cannot write {what}: {exc.strerror or exc}",
                                    Location(shown)) from None
            for temporary, target in written:
                os.replace(temporary, target)
        except BaseException:
            for temporary, _ in written:
                temporary.unlink(missing_ok=True)
            for folder in reversed(made):
                _remove_if_empty(folder)
            raise
        finally:
            self.pending = []


def _target(path) -> Path:
    """The file that writing ``path`` replaces: through a symbolic link, its target."""
    path = Path(path)
    return path.resolve() if path.is_symlink() else path


def _folder(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def _make_folder(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; returns those made, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    for part in missing:
        part.mkdir()
    return missing


def _write_temporary(target: Path, data: bytes) -> Path:
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                    dir=_folder(target))
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~_umask()
        os.chmod(temporary, mode)  # an existing file keeps its mode; a new one as open()
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
