"""Atomic files in the workdir: every write goes to a temp file in the same folder, then renames.

A process killed at any instant (``kill -9`` included) leaves either the old file or the new one, never
half of one: the rename alone gives that, since the kernel keeps what a killed process wrote. ``durable``
adds an fsync, which only matters if the machine itself loses power; the loop asks it for the files a
resume starts from (the iteration's record and trade file, the state checkpoint), not for the views.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


def _atomic_write(path: Path, write: Callable[[BinaryIO], None], durable: bool) -> None:
    """Call ``write`` on a temp file beside ``path`` (fsynced when ``durable``), then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to a temp file beside ``path``, then rename over ``path``."""
    data = text.encode("utf-8")
    _atomic_write(path, lambda fh: fh.write(data), durable)


def atomic_write_arrays(path: Path, arrays: dict[str, np.ndarray], durable: bool = False) -> None:
    """Named float arrays as one ``.npz`` (numpy's own binary format: 8 bytes a float, read without parsing)."""
    _atomic_write(path, lambda fh: np.savez(fh, **arrays), durable)


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays ``atomic_write_arrays`` wrote, by name."""
    with np.load(Path(path), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def atomic_write_zip(path: Path, members: dict[str, bytes]) -> None:
    """Files as one zip archive (deflated; fsynced before the rename): readable by ``unzip`` and by
    ``zip_member`` without unpacking the rest."""
    def write(fh: BinaryIO) -> None:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, data in members.items():
                z.writestr(name, data)

    _atomic_write(path, write, durable=True)


def zip_names(path: Path) -> list[str]:
    """The member names of a zip archive."""
    with zipfile.ZipFile(path) as z:
        return z.namelist()


def zip_member(path: Path, name: str) -> bytes:
    """One member of a zip archive, as bytes (KeyError when it holds none by that name)."""
    with zipfile.ZipFile(path) as z:
        return z.read(name)


def append_text(path: Path, text: str) -> None:
    """Append ``text`` in one write (no fsync): a kill can at worst leave a last line without its newline,
    which the reader drops; the file's owner rebuilds it from the records on resume."""
    with open(path, "a", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def finite(obj: Any) -> Any:
    """Replace NaN and infinities (which JSON cannot hold) by None, recursively."""
    if isinstance(obj, float) or isinstance(obj, np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite(obj.tolist())
    return obj


def atomic_write_json(path: Path, data: Any, durable: bool = True) -> None:
    """Atomic JSON with NaN and infinities as null, so every reader accepts the file."""
    atomic_write_text(path, json.dumps(finite(data), indent=1, default=_default, allow_nan=False) + "\n", durable)


def read_json(path: Path) -> Any:
    """Read a JSON file written by ``atomic_write_json``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def clean_temp_files(folder: Path) -> int:
    """Remove leftovers of writes a killed process never finished; returns how many."""
    removed = 0
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed
