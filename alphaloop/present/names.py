"""How instruments are named in reasons, prompts and tables: by number, never by ticker, and not at all
when there is only one (the presentation layer is where the number of instruments may matter)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def instrument_label(i: int) -> str:
    """Instrument ``i`` (0-based) as prompts and reasons name it: its number 1..N."""
    return f"instrument {i + 1}"


def instrument_prefix(k: int, n: int) -> str:
    """The prefix naming instrument ``k`` of ``n`` in a reason ("instrument 3 of 5: "); "" for one instrument."""
    return f"{instrument_label(k)} of {n}: " if n > 1 else ""


def frame_reason(reason: str, n: int) -> str:
    """The runner names a full run's frames "frame i" (0-based); on several instruments they are the
    universe's instruments, named by number; on one, the prefix says nothing and goes."""
    match = re.match(r"frame (\d+): ", reason or "")
    if match is None or int(match.group(1)) >= n:
        return reason
    if n == 1:
        return reason[match.end():]
    return instrument_prefix(int(match.group(1)), n) + reason[match.end():]


def per_instrument(infos: list[dict], merged: dict) -> dict:
    """A stage's details: one instrument's own dict as it always was, or several under ``instruments``
    beside ``merged`` (the totals)."""
    return infos[0] if len(infos) == 1 else {**merged, "instruments": infos}


def by_instrument(texts: Sequence[str], one: str, several: str) -> str:
    """One text a instrument, shown as ``one`` + the text for one instrument, or ``several`` + each text
    named by number ("instrument 1: ... | instrument 2: ...")."""
    if len(texts) == 1:
        return one + texts[0]
    return several + " | ".join(f"{instrument_label(k)}: {t}" for k, t in enumerate(texts))


def universe_only(n: int, shown: T, hidden: T) -> T:
    """What is shown only about several instruments (a universe's note, its per-instrument fields): ``shown``
    for more than one instrument, ``hidden`` for one, whose figures are the run's own."""
    return shown if n > 1 else hidden


def instrument_field(k: int, n: int) -> dict[str, int]:
    """The ``instrument`` key (1-based) a finding names on several instruments; {} for one."""
    return universe_only(n, {"instrument": k + 1}, {})
