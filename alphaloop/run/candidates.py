"""What a run folder's candidate files are called: ``iter_N_<task>.py`` and ``best_<task>.py``.

Why a module of its own: every task once saved its candidates as ``iter_N_trade.py`` ("A trading strategy"),
forecasters included; each task now names them after itself, and a folder written before must still resume,
diff, take ``final`` and draw its report, so every name is asked here, with the older one as the fallback.
``alphaloop.run.workdir`` is the only user.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from pathlib import Path

from alphaloop.run.store import read_json

CANDIDATE = "iter_{n}_{stem}.py"  # the full candidate file of iteration n; the stem is the task's name
BEST = "best_{stem}.py"  # a copy of the best member's candidate file
LEGACY_STEM = "trade"  # every task's stem before each named its own: such files are still read (old workdirs)
TRADE = CANDIDATE.format(n="{n}", stem=LEGACY_STEM)
BEST_TRADE = BEST.format(stem=LEGACY_STEM)


class CandidateNames:
    """The candidate files of one run folder: this task's names, or the older ``trade`` ones where only they exist."""

    def __init__(self, root: Path, state: Path, stem: str | None = None) -> None:
        """``stem``: the task's name; None: the task ``state`` (state.json) names, ``trade`` without a run."""
        self.root, self._state, self._stem = root, state, stem

    @property
    def stem(self) -> str:
        if self._stem is None:
            try:
                task = read_json(self._state).get("task", LEGACY_STEM)
            except (OSError, ValueError, AttributeError):
                task = LEGACY_STEM
            self._stem = task if isinstance(task, str) and re.fullmatch(r"[a-z]+", task) else LEGACY_STEM
        return self._stem

    def own(self, n: int) -> Path:
        """Where iteration n's candidate is written."""
        return self.root / CANDIDATE.format(n=n, stem=self.stem)

    def own_best(self) -> Path:
        return self.root / BEST.format(stem=self.stem)

    def file(self, n: int) -> Path:
        """Iteration n's candidate to read: ``iter_N_<stem>.py``, else an older folder's ``iter_N_trade.py``."""
        return _own_or_legacy(self.own(n), self.root / TRADE.format(n=n))

    def packed(self, n: int, names: Container[str]) -> str:
        """Iteration n's candidate inside a pack holding ``names``: the same choice as ``file``, among the pack's."""
        return own_or_legacy(self.own(n).name, TRADE.format(n=n), names.__contains__)

    def best(self) -> Path:
        return _own_or_legacy(self.own_best(), self.root / BEST_TRADE)

    def user_files(self, *around: str) -> tuple[str, ...]:
        """``around``'s first two names, the candidate files' names, then the rest (the end-of-run summary)."""
        return *around[:2], CANDIDATE.format(n="N", stem=self.stem), BEST.format(stem=self.stem), *around[2:]


def own_or_legacy(own: str, legacy: str, exists: Callable[[str], bool]) -> str:
    """``own``, or ``legacy`` when only that one ``exists`` (a folder written before each task named its files)."""
    return legacy if own != legacy and not exists(own) and exists(legacy) else own


def _own_or_legacy(own: Path, legacy: Path) -> Path:
    """The same choice among the folder's loose files."""
    return own.parent / own_or_legacy(own.name, legacy.name, lambda name: (own.parent / name).is_file())
