"""The run's compact index (``index.jsonl``): one short JSON line per iteration record, appended at commit.

Why: the end-of-run statistics and the report need a few figures of every iteration (status, stage,
the validation figure, whether it entered the population), and reading them from 100,000 record files
of ~12 KB each was the slowest part of a long night's end. A line is under 1 KB, shaped like a record's
JSON (the same keys, a subset of them), so a reader of record dicts reads a line the same way.
``committed`` is the Unix time the line was appended (None when a resume rebuilt it from its record);
``cpu`` the record's CPU seconds since the previous commit (the loop and its sandbox workers: ``cpuclock``),
the cost per iteration a night's start and end compare by whatever the machine's load (None on a command's
first commit, and in records written before it was kept).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from alphaloop.run.records import IterationRecord

TOP_KEYS = ("iteration", "status", "stage", "parent", "metric", "task", "created_at", "proposer", "model",
            "cost_bps", "selection", "in_population", "hypothesis_held", "duplicate_of")
SPLIT_KEYS = ("sharpe", "bh_sharpe", "round_trips")  # besides the run's own metric and its buy and hold


def _number(v: Any) -> Any:
    """JSON holds no NaN or infinity: those become None, as in the record file."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def index_entry(record: IterationRecord, committed: float | None = None) -> dict[str, Any]:
    """The record's index entry: its top-level facts and, per scored split, its metric, buy and hold and Sharpe."""
    d = record.to_json()
    out: dict[str, Any] = {k: d.get(k) for k in TOP_KEYS}
    keys = (record.metric, f"bh_{record.metric}", *SPLIT_KEYS)
    splits = ((record.scores or {}).get("splits") or {})
    if splits:
        out["scores"] = {"metric": (record.scores or {}).get("metric", record.metric),
                         "splits": {name: {k: _number(s.get(k)) for k in keys if k in s}
                                    for name, s in splits.items() if name in ("train", "val") and s}}
    out["proposal"] = {k: str(v)[:200] for k, v in (record.proposal or {}).items()
                       if k in ("description", "hypothesis") and v}
    out["cpu"] = _number((record.timings or {}).get("cpu"))
    out["committed"] = committed
    return out


def index_line(record: IterationRecord, now: bool = True) -> str:
    """One line of ``index.jsonl`` (compact JSON and a newline)."""
    entry = index_entry(record, round(time.time(), 3) if now else None)
    return json.dumps({k: _number(v) for k, v in entry.items()}, separators=(",", ":"), allow_nan=False) + "\n"


def parse_index(text: str | Iterable[str], project: Callable[[dict[str, Any]], Any] | None = None,
                lines: bool = False) -> dict[int, Any]:
    """The complete lines of an index (its text, or its lines as an open file yields them) by iteration, each
    passed through ``project`` when given (what a reader keeps of an entry: the statistics keep three figures
    of each, so 100,000 lines never stand in memory as 100,000 dicts), or the line itself with ``lines`` (what a
    resume writes back unchanged). A later line for the same iteration
    wins; a cut last line or one that is not an entry is skipped: the owner rebuilds it from the record."""
    out: dict[int, Any] = {}
    for line in text.splitlines(keepends=True) if isinstance(text, str) else text:
        if not line.endswith("\n"):
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("iteration"), int):
            out[entry["iteration"]] = line if lines else entry if project is None else project(entry)
    return out
