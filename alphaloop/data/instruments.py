"""Freeze a universe of instruments on shared split dates, with held-out instruments kept apart.

Why shared dates: a candidate is judged on the same years everywhere, so validation means one
period for every instrument. Each instrument keeps its own calendar: its rows are cut at the dates,
none is added, moved or filled across instruments. Held-out instruments are written to
``holdout/`` with a manifest of their own (their names live only there); the main manifest hashes
that file, so one digest still stands for everything, and only ``harness.py final`` opens it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from alphaloop import __version__
from alphaloop.data.frozen import (
    HOLDOUT_DIR,
    INSTRUMENTS_DIR,
    MIN_SPLIT_ROWS,
    SPLITS,
    DataError,
    default_bars,
    missing_columns,
    return_prices,
    sha256_file,
    split,
    write_frozen,
    write_splits,
)

HOLDOUT_SHARE = 0.2  # about a fifth of the instruments are held out by default ...
HOLDOUT_MIN_UNIVERSE = 5  # ... once there are at least this many
NO_HOLDOUT = "none"
_NAME = re.compile(r"[A-Za-z0-9^][A-Za-z0-9^._=&-]{0,63}")


@dataclass(frozen=True)
class Instrument:
    """One validated instrument: its name (a ticker or a CSV's stem), frame, where it came from, repairs."""

    name: str
    frame: pd.DataFrame
    source: str
    repairs: tuple[str, ...] = ()


def check_names(names: Sequence[str]) -> None:
    """Names become folder names: refuse what a file system or a shell would mangle, and duplicates."""
    for name in names:
        if not _NAME.fullmatch(name):
            raise DataError(f"instrument name {name!r} is not usable as a folder name "
                            "(letters, digits and ^ . _ = & - only, at most 64 characters)")
    seen: dict[str, str] = {}
    for name in names:
        if name.upper() in seen:
            raise DataError(f"instrument {name!r} appears twice (also as {seen[name.upper()]!r}); "
                            "give each instrument once")
        seen[name.upper()] = name


def shared_split_dates(frames: Sequence[pd.DataFrame], train_end: str | None,
                       val_end: str | None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The last train date and last validation date, cut as ``split`` cuts the union of all calendars.

    With one instrument this is exactly ``split`` on it; with several, the default fractions
    apply to the dates on which any instrument traded.
    """
    union = frames[0].index
    for frame in frames[1:]:
        union = union.union(frame.index)
    parts = split(pd.DataFrame(index=union), train_end, val_end)
    return parts["train"].index[-1], parts["val"].index[-1]


def cut(instrument: Instrument, train_end: pd.Timestamp, val_end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """One instrument's own rows on either side of the shared dates; too few rows in a split is fatal."""
    frame, idx = instrument.frame, instrument.frame.index
    parts = {"train": frame[idx <= train_end], "val": frame[(idx > train_end) & (idx <= val_end)],
             "test": frame[idx > val_end]}
    short = {k: len(v) for k, v in parts.items() if len(v) < MIN_SPLIT_ROWS}
    if short:
        desc = ", ".join(f"{k} has {v}" for k, v in short.items())
        raise DataError(f"{instrument.name}: too few rows on the shared split dates (train to {train_end.date()}, "
                        f"validation to {val_end.date()}; {desc}; need {MIN_SPLIT_ROWS} each)")
    return parts


def choose_holdout(names: Sequence[str], hashes: Sequence[str], requested: str | None) -> list[str]:
    """The held-out instruments: ``requested`` (comma-separated, or ``none``), else about a fifth of 5 or more.

    The default draw is seeded by the instruments' file hashes, so the same data always holds out
    the same instruments, and nobody picks them after seeing results.
    """
    if requested is not None:
        wanted = [t.strip() for t in requested.split(",") if t.strip()]
        if [t.lower() for t in wanted] == [NO_HOLDOUT]:
            return []
        unknown = [t for t in wanted if t not in names]
        if unknown:
            raise DataError(f"--holdout-tickers {', '.join(unknown)}: not in the universe ({', '.join(names)})")
        if len(set(wanted)) >= len(names):
            raise DataError("--holdout-tickers would hold out every instrument; leave at least one for the loop")
        return [n for n in names if n in wanted]
    if len(names) < HOLDOUT_MIN_UNIVERSE:
        return []
    k = max(1, round(len(names) * HOLDOUT_SHARE))
    seed = int(hashlib.sha256("".join(hashes).encode()).hexdigest()[:16], 16)
    picks = np.random.default_rng(seed).choice(len(names), size=k, replace=False)
    return [names[i] for i in sorted(int(i) for i in picks)]


def universe_prices(prices: dict[str, str]) -> str:
    """The manifest's one line on return prices for a universe: the common words, or who uses which."""
    kinds = set(prices.values())
    if len(kinds) == 1:
        return kinds.pop()
    by_kind: dict[str, list[str]] = {}
    for name, words in prices.items():
        by_kind.setdefault(words, []).append(name)
    return "per instrument: " + "; ".join(f"{', '.join(names)}: {words}" for words, names in by_kind.items())


def freeze_universe(instruments: Sequence[Instrument], out: Path, source: str, *, train_end: str | None = None,
                    val_end: str | None = None, holdout: str | None = None, command: list[str] | None = None,
                    args: dict | None = None, force: bool = True, bars: dict | None = None,
                    prices: str | None = None) -> dict:
    """Cut every instrument at shared dates and freeze them with one manifest; returns that manifest.

    Layout: ``instruments/<name>/{train,val,test}.csv`` for the loop's instruments and
    ``holdout/<name>/...`` plus ``holdout/manifest.json`` for the held-out ones. The main manifest
    keeps the first instrument's entries under ``splits`` so ``load_splits`` still reads one.
    ``prices`` states the return prices in words when the frames cannot tell (closes adjusted at the source).
    """
    names = [i.name for i in instruments]
    check_names(names)
    if len(instruments) < 2:
        raise DataError("a universe needs at least two instruments (one is frozen as a single instrument)")
    te, ve = shared_split_dates([i.frame for i in instruments], train_end, val_end)
    parts = {i.name: cut(i, te, ve) for i in instruments}

    def build(tmp: Path) -> dict:
        entries = {n: write_splits(tmp, f"{INSTRUMENTS_DIR}/{n}", parts[n]) for n in names}
        held = choose_holdout(names, [entries[n][s]["sha256"] for n in names for s in SPLITS], holdout)
        kept = [n for n in names if n not in held]
        by_name = {i.name: i for i in instruments}
        words = {n: prices or return_prices(list(parts[n].values())) for n in names}
        info = {n: {"source": by_name[n].source, "columns": list(by_name[n].frame.columns),
                    "return_prices": words[n], "splits": entries[n]} for n in names}
        first = instruments[0].frame
        common = [c for c in first.columns if all(c in i.frame.columns for i in instruments)]
        for n in held:
            (tmp / HOLDOUT_DIR).mkdir(exist_ok=True)
            os.replace(tmp / INSTRUMENTS_DIR / n, tmp / HOLDOUT_DIR / n)
            for entry in entries[n].values():
                entry["file"] = f"{HOLDOUT_DIR}/{n}/{Path(entry['file']).name}"
        manifest = {
            "source": source, "ticker": kept[0], "instruments": kept,
            "columns": common, "missing_columns": missing_columns(first[common]),
            "bars": bars or default_bars(first.index),
            "start": min(e["train"]["start"] for e in entries.values()),
            "end": max(e["test"]["end"] for e in entries.values()),
            "split_dates": {"train_end": str(te.date()), "val_end": str(ve.date())},
            "splits": entries[kept[0]], "universe": {n: info[n] for n in kept},
            "repairs": [r for n in kept for r in by_name[n].repairs],
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "alphaloop_version": __version__,
            "return_prices": universe_prices({n: words[n] for n in kept}),
        }
        recorded = {k: v for k, v in (("command", command), ("args", args)) if v is not None}
        if held:  # their names, the command that named them and their repairs stay in holdout/ only
            inner = {"instruments": held, "universe": {n: info[n] for n in held},
                     "repairs": [r for n in held for r in by_name[n].repairs],
                     "chosen": "--holdout-tickers" if holdout else
                               f"default: {len(held)} of {len(names)}, drawn with a seed from the data's hashes",
                     **recorded}
            path = tmp / HOLDOUT_DIR / "manifest.json"
            path.write_text(json.dumps(inner, indent=2) + "\n", encoding="utf-8")
            manifest["holdout"] = {"count": len(held), "file": f"{HOLDOUT_DIR}/manifest.json",
                                   "sha256": sha256_file(path)}
        else:
            manifest.update(recorded)
        return manifest

    return write_frozen(out, build, force)
