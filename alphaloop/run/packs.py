"""Packs of rejected candidates' iteration files: one zip a block of ``PACK_EVERY`` iterations, under ``packs/``.

Why: a night of 100,000 iterations left a file or three per rejected candidate that nothing reads
after the night (the population, the statistics and final read accepted candidates only), most of the
folder's files. A block is packed once the run has committed a whole block after it, so what a user
looks at during the night stays loose. The zip is written whole and fsynced before any file goes:
a kill leaves the loose files (packed at the resume), or the zip and some of them (copies, read first).
``python -m zipfile -e`` or ``unzip`` unpacks one (docs/workdir.md); ``Workdir`` reads a packed file as
it reads a loose one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alphaloop.run.store import atomic_write_zip, zip_member, zip_names

PACKS = "packs"  # the folder, inside the run folder
PACK = "iter_{first}-{last}.zip"
PACK_EVERY = 500  # iterations a pack covers


class Packs:
    """The packs of one run folder: their names, their members, and packing one block."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._names: dict[Path, frozenset[str]] = {}  # the member names of each pack read so far

    def path(self, block: int) -> Path:
        """The zip of block ``block`` (iterations block * PACK_EVERY ... + PACK_EVERY - 1)."""
        first = block * PACK_EVERY
        return self.root / PACKS / PACK.format(first=first, last=first + PACK_EVERY - 1)

    def of(self, n: int) -> Path:
        return self.path(n // PACK_EVERY)

    def all(self) -> list[Path]:
        """The packs written so far, in iteration order."""
        folder = self.root / PACKS
        found = folder.glob(PACK.format(first="*", last="*")) if folder.is_dir() else ()
        return sorted(found, key=lambda p: int(p.name[5:].split("-")[0]))

    def names(self, n: int) -> frozenset[str]:
        """The file names iteration ``n``'s block packed (none before its pack exists)."""
        path = self.of(n)
        return self.members(path) if path in self._names or path.is_file() else frozenset()

    def members(self, path: Path) -> frozenset[str]:
        """The file names pack ``path`` holds, listed once per pack (a pack never changes once written)."""
        if path not in self._names:
            self._names[path] = frozenset(zip_names(path))
        return self._names[path]

    def read(self, n: int, name: str) -> bytes:
        return zip_member(self.of(n), name)

    def pack(self, block: int, files_of: Callable[[int], list[Path]]) -> None:
        """Pack ``files_of(n)`` for each iteration of the block (the rejected candidates' files), then remove
        them. A block packed before is left alone: a file found beside its pack (unpacked by hand, or left by
        a kill between the zip and the removals) is the packed file's copy, and stays until deleted."""
        path = self.path(block)
        if path.is_file():
            return
        members = {f.name: f.read_bytes() for n in range(block * PACK_EVERY, (block + 1) * PACK_EVERY)
                   for f in files_of(n) if f.is_file()}
        atomic_write_zip(path, members)
        for name in members:
            (self.root / name).unlink(missing_ok=True)

    def due_at(self, next_iteration: int) -> int | None:
        """The block to pack once ``next_iteration`` is committed: the one a whole block behind, when one just ended."""
        if next_iteration % PACK_EVERY or next_iteration < 2 * PACK_EVERY:
            return None
        return next_iteration // PACK_EVERY - 2

    def due(self, next_iteration: int) -> list[int]:
        """The blocks a run at ``next_iteration`` has a whole block past (what resume makes sure of)."""
        return list(range(max(next_iteration // PACK_EVERY - 1, 0)))
