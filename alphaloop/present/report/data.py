"""The report's reading of a run: every file the loop writes, read once; a broken file becomes a note.

Up to ``sample.TABLE_ROWS`` iterations every record is read whole. Beyond, the run's index (``index.jsonl``,
one short line an iteration: status, stage, validation figures) stands for each iteration, and only the
records the report shows one by one are read whole: those its tables list (``sample.table_records``),
the population and their ancestors. A night of 100,000 iterations is then read in seconds, not in a pass
over 100,000 record files (docs/report.md "What the report reads").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.candidate import RegionError
from alphaloop.data.frozen import DataError, load_splits, load_universe, manifest_digest, prices_words, return_column
from alphaloop.evaluate.universe import bh_returns as universe_bh_returns
from alphaloop.evaluate.universe import curve_dates, instrument_histories
from alphaloop.present.report.sample import TABLE_ROWS, table_records
from alphaloop.run.records import RecordError
from alphaloop.run.store import read_json
from alphaloop.run.workdir import Workdir


@dataclass
class Run:
    """Everything the report shows, read once from the workdir and the frozen data."""

    workdir: Path
    records: list[dict]
    state: dict
    manifest: dict | None
    splits: dict[str, pd.DataFrame] | None
    stats: dict | None = None
    cross: dict | None = None
    readings: list[dict] = field(default_factory=list)
    learnings: str = ""
    notes: list[str] = field(default_factory=list)
    best_code: str = ""  # the best candidate's region, from its iter_N_trade.py
    universe_bh: dict | None = None  # a universe: the equal-weight buy and hold on validation ("dates", "returns")
    portfolio_bh: dict[str, dict] = field(default_factory=dict)  # a universe: split -> its "dates" and "returns"
    instrument_splits: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)  # a universe: name -> split
    _by_number: tuple[dict, list] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def metric(self) -> str:
        """The selection metric the run ranked by (validation split)."""
        recorded = next((r.get("metric") for r in self.records if r.get("metric")), "sharpe")
        return str(self.state.get("metric") or recorded)

    @property
    def prices(self) -> str:
        """The column returns and buy and hold rest on (``data.return_column``, the loop's own choice)."""
        return return_column(self.splits.values()) if self.splits else "Close"

    @property
    def prices_words(self) -> str:
        """Which prices the returns use, in words: as prepare.py recorded them (per instrument on a universe),
        else from the frozen data."""
        if self.splits:
            return prices_words(self.manifest, list(self.splits.values()))
        return str((self.manifest or {}).get("return_prices") or "not recorded")

    @cached_property
    def listed(self) -> tuple[list[dict], str]:
        """The records the per-iteration tables list and the line saying what they leave out
        (``sample.table_records``; worked out once: each is a pass over a long run's 100,000 entries)."""
        return table_records(self.records, self.population, record_value)

    def record(self, n: int | None) -> dict | None:
        """The iteration record numbered ``n``, or None when there is none (looked up by number: a long run's
        report asks for a few hundred of 100,000)."""
        if self._by_number is None or len(self._by_number[1]) != len(self.records):
            self._by_number = ({r.get("iteration"): r for r in self.records}, self.records)
        return self._by_number[0].get(n)

    @property
    def population(self) -> list[int]:
        """Iteration numbers of the final population, best first."""
        return [int(m["iteration"]) for m in self.state.get("population") or []]

    @property
    def best(self) -> int | None:
        """The best population member (state first; else the best accepted record)."""
        if self.state.get("best_iteration") is not None:
            return int(self.state["best_iteration"])
        if self.population:
            return self.population[0]
        scored = [r for r in self.records if r.get("status") == "accepted" and record_value(r) is not None]
        return max(scored, key=record_value)["iteration"] if scored else None


def _read(read: Callable[[], Any], name: str, notes: list[str]) -> Any:
    """One workdir reader's result; a file that cannot be read becomes a note and None."""
    try:
        return read()
    except (OSError, RecordError, json.JSONDecodeError) as exc:
        notes.append(f"{name} could not be read ({type(exc).__name__}); its section is left out")
        return None


def load_run(workdir: Path, data_dir: Path) -> Run:
    """Read every file the loop writes (through ``workdir``'s typed readers); a broken one becomes a note."""
    wd, notes = Workdir(workdir), []
    state = _read(lambda: wd.read_state().to_json() if wd.has_run() else None, wd.state.name, notes) or {}
    records = read_records(wd, state, notes)
    frozen_path = Path(data_dir) / "manifest.json"  # the data folder's own manifest (alphaloop.data.frozen names it)
    frozen = _read(lambda: read_json(frozen_path) if frozen_path.is_file() else None, frozen_path.name, notes)
    manifest = _read(wd.read_manifest, wd.manifest.name, notes) or frozen
    splits = None
    try:
        if frozen and manifest and manifest_digest(manifest) != manifest_digest(frozen):
            notes.append(f"the frozen data in {data_dir} is not the data this run used; curves are drawn against "
                         "trading days, without buy and hold")
        else:
            splits = load_splits(Path(data_dir))
    except (DataError, KeyError, TypeError) as exc:
        notes.append(f"frozen data not readable ({exc}); curves are drawn against trading days, without buy and hold")
    readings = [r.to_json() for r in wd.test_readings()]  # a damaged line counts as a reading, as final counts it
    if any(r.get("damaged") for r in readings):
        notes.append(f"{wd.readings.name} holds a line that is not JSON; it is counted as a reading, its figures "
                     "are unknown")
    stress = _read(wd.read_stress, wd.stress.name, notes)
    for record in records:
        if not record.get("stress") and stress is not None and str(record.get("iteration")) in stress.members:
            record["stress"] = stress.members[str(record["iteration"])].to_json()
    stats = _read(wd.read_stats, wd.stats.name, notes)
    cross = _read(wd.read_cross_market, wd.cross_market.name, notes)
    run = Run(workdir=wd.root, records=records, state=state, manifest=manifest, splits=splits,
              stats=stats.to_json() if stats else None, cross=cross.to_json() if cross else None,
              readings=readings, learnings=wd.read_learnings(), notes=notes)
    if splits is not None and len((manifest or {}).get("instruments") or []) > 1:
        run.universe_bh = _universe_bh(Path(data_dir), notes)
        _read_universe(run, Path(data_dir))
    if run.best is not None and wd.trade(run.best).is_file():
        try:
            run.best_code = wd.region(run.best)
        except (OSError, UnicodeDecodeError, RegionError) as exc:
            notes.append(f"{wd.trade(run.best).name} could not be read ({type(exc).__name__}); the best candidate's "
                         "code is left out")
    return run


def read_records(wd: Workdir, state: dict, notes: list[str]) -> list[dict]:
    """Every iteration's record dict: whole, or beyond ``TABLE_ROWS`` iterations its index entry for those the
    report only counts and charts (the entry has the record's keys the charts and counts read)."""
    try:
        entries = wd.index_entries(report_entry)
    except (OSError, RecordError) as exc:
        notes.append(f"{wd.index.name} could not be read ({type(exc).__name__}); every record is read instead")
        entries = []
    drawn = drawn_returns(state)
    if len(entries) <= TABLE_ROWS:
        return [r.to_json() for r in wd.all_records(notes, drawn)]
    members = [int(m["iteration"]) for m in state.get("population") or [] if isinstance(m, dict)]
    shown, _ = table_records(entries, members, record_value, TABLE_ROWS)
    detail = {r["iteration"] for r in shown}
    parents = {e["iteration"]: e.get("parent") for e in entries}
    for n in [*members, state.get("best_iteration")]:
        for _ in range(12):  # the lineage the members' descriptions walk (members.lineage)
            if not isinstance(n, int):
                break
            detail.add(n)
            n = parents.get(n)
    out = []
    for entry in entries:
        n = entry["iteration"]
        if n in detail:
            try:
                entry = wd.record(n, drawn is None or n in drawn).to_json()
            except (OSError, RecordError) as exc:
                notes.append(f"{wd.results(n).name} could not be read ({exc}); its index line stands for it")
        out.append(entry)
    return out


SHARED = ("status", "stage", "metric", "task", "proposer", "model")  # values most entries repeat


def report_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """What the report keeps of an index entry it only counts and charts: no proposal words, commit time, CPU time or
    train figures, of validation the selection metric and buy and hold's, and its repeated words shared
    (``sys.intern``); a record the report lists is read whole instead. The 10,000 entries of
    bench/bench_report.py's folder take 20 MB so, 34 MB whole."""
    out = {k: v for k, v in entry.items() if k not in ("proposal", "committed", "cpu", "scores")}
    for k in SHARED:
        if isinstance(out.get(k), str):
            out[k] = sys.intern(out[k])
    metric = str(entry.get("metric") or "sharpe")
    val = ((entry.get("scores") or {}).get("splits") or {}).get("val")
    if isinstance(val, dict):
        out["scores"] = {"splits": {"val": {k: val[k] for k in (metric, f"bh_{metric}") if k in val}}}
    return out


def _universe_bh(data_dir: Path, notes: list[str]) -> dict | None:
    """The universe's equal-weight buy and hold on validation, dated like the portfolio's returns."""
    try:
        histories = instrument_histories(load_universe(data_dir, ("val",)), ("val",))
    except (DataError, KeyError, TypeError, ValueError) as exc:
        notes.append(f"universe not readable ({exc}); the portfolio curve is drawn without buy and hold")
        return None
    return {"dates": curve_dates(histories, "val"), "returns": universe_bh_returns(histories, "val")}


def _read_universe(run: Run, data_dir: Path) -> None:
    """A universe's equal-weight buy and hold per split (dated like the portfolio's curve) and each instrument's
    frames, so every figure of the portfolio stands beside its own benchmark and each trade list names its
    instrument; an unreadable universe leaves both empty (its figures are then shown without them)."""
    try:
        universe = load_universe(data_dir, ("train", "val"))
        histories = instrument_histories(universe, ("train", "val"))
    except (DataError, KeyError, TypeError, ValueError):
        return
    run.portfolio_bh = {s: {"dates": curve_dates(histories, s), "returns": universe_bh_returns(histories, s)}
                        for s in ("train", "val")}
    run.instrument_splits = {name: dict(universe.splits[name]) for name in universe.instruments}


def record_value(record: dict) -> float | None:
    """The validation selection metric of a record, or None when it was never scored."""
    splits = (record.get("scores") or {}).get("splits") or {}
    v = (splits.get("val") or {}).get(record.get("metric") or "sharpe")
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else None


def rank_value(record: dict) -> float | None:
    """What the population ranked by (``selection``): stress-adjusted when ``--stress-select`` set it."""
    v = record.get("selection")
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else record_value(record)


def drawn_returns(state: dict) -> set[int] | None:
    """The iterations whose daily returns the report draws: the population's (best first). Reading only
    those keeps a long run's report from loading every sidecar; without a state, all are read."""
    members = [m.get("iteration") for m in state.get("population") or [] if isinstance(m, dict)]
    return {int(n) for n in members if isinstance(n, int)} if members else None
