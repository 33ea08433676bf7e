"""The run folder (``--workdir``): the one place that names its files, and the one reader and writer of each.

Why one owner: the names were built in five modules and their readers drifted. Every write is atomic
(``store``: a temp file beside the target, then a rename), so a process killed at any instant leaves
the old file or the new one. Readers return the typed records of ``alphaloop.run.records``; a file that
does not parse as its record raises ``RecordError`` with one line naming it.

A commit costs the same at iteration 100,000 as at iteration 1 (docs/workdir.md says what is kept and why):
the record is written whole (fsynced with its trade file: what a resume starts from), its returns go to a
small binary sidecar only when something reads them, results.tsv gets one appended row, and state.json
(constant size) is a checkpoint written every ``CHECKPOINT_EVERY`` records: a resume replays the records
after it, exactly as it replays those a kill left behind. ``index.jsonl`` gets one short line per record
(``run.index``): what the statistics and the report read instead of every record file. A rejected
candidate's files are packed, a block of ``PACK_EVERY`` iterations to one zip under ``packs/`` (``run.packs``),
once the run is a block past them: the readers below read a packed file as they read a loose one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Container, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from alphaloop.candidate import RegionError, extract_region
from alphaloop.run.candidates import BEST_TRADE, CANDIDATE, TRADE, CandidateNames
from alphaloop.run.index import index_entry, index_line, parse_index
from alphaloop.run.packs import Packs
from alphaloop.run.records import CrossMarket, IterationRecord, RecordError, RunStats, StressCache, TestReading
from alphaloop.run.state import LoopState
from alphaloop.run.store import (
    append_text,
    atomic_write_arrays,
    atomic_write_json,
    atomic_write_text,
    clean_temp_files,
    read_arrays,
    read_json,
)

RESULTS = "iter_{n}_results.json"
SIDECAR_INSTRUMENTS = "instruments"  # the sidecar's key for each instrument's validation returns (a universe)
RETURNS = "iter_{n}_returns.npz"  # the record's daily returns (float64 .npz), as ``IterationRecord.kept`` keeps them
RETURNS_JSON = "iter_{n}_returns.json"  # schema 1's sidecar (every split, as JSON text): still read
CHECKPOINT_EVERY = 25  # records between two writes of state.json; a resume replays at most this many more
REPLY = "iter_{n}_reply.md"
INDEX = "index.jsonl"  # one short JSON line per record (alphaloop.run.index), appended at commit
STATE = "state.json"
RESULTS_TSV = "results.tsv"
LEARNINGS = "learnings.md"
MANIFEST = "data_manifest.json"
READINGS = "test_readings.jsonl"
STATS = "stats.json"
STRESS = "stress.json"
CROSS_MARKET = "cross_market.json"
REPORT = "report.html"
EQUITY_CSV = "best_equity.csv"  # the report's: the best candidate's daily equity against buy and hold per split
SNAPSHOTS = "snapshots.json"  # with --workers N > 1: the states the iterations in flight propose from
FORECAST_STATS = "forecast_stats.json"  # --task forecast: SPA of the forecasters against climatology (validation)
FORECASTS = "forecasts_{split}.csv"  # --task forecast: the best forecaster day by day on val (loop) or test (final)
ITER_FILE = re.compile(r"iter_(\d+)_([a-z]+\.py|results\.json|reply\.md|returns\.json|returns\.npz)")


def _read(path: Path, text: str | None = None) -> Any:
    """JSON from ``path`` (or its ``text``, read from a pack); a file that is not JSON is a RecordError naming it."""
    try:
        return read_json(path) if text is None else json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from exc


class Workdir:
    """The files of one run folder."""

    def __init__(self, root: Path, stem: str | None = None) -> None:
        """``stem``: what candidate files are named after, the task's name (``Task.name``); None: the task
        state.json names (``trade`` when no run is here)."""
        self.root = Path(root)
        self.names = CandidateNames(self.root, self.root / STATE, stem)
        self._checkpoint: int | None = None  # next_iteration of the last state.json this object wrote
        self._best: int | None = None  # the iteration best_<stem>.py was last copied from by this object
        self.packs = Packs(self.root)

    # ----- names -----------------------------------------------------------------------------
    def trade(self, n: int) -> Path:
        """Iteration n's candidate file (``iter_N_<task>.py``; an older workdir's ``iter_N_trade.py``)."""
        return self.names.file(n)

    def user_files(self) -> tuple[str, ...]:
        """What a user finds in the run folder, as the end-of-run summary lists it."""
        return self.names.user_files(LEARNINGS, RESULTS_TSV, REPORT)

    def results(self, n: int) -> Path:
        return self.root / RESULTS.format(n=n)

    def returns(self, n: int) -> Path:
        return self.root / RETURNS.format(n=n)

    def returns_json(self, n: int) -> Path:
        return self.root / RETURNS_JSON.format(n=n)

    def reply(self, n: int) -> Path:
        return self.root / REPLY.format(n=n)

    @property
    def state(self) -> Path:
        return self.root / STATE

    @property
    def index(self) -> Path:
        return self.root / INDEX

    def read_iteration_file(self, path: Path, n: int) -> str:
        """The text of one of iteration ``n``'s files (``trade``, ``results``, ``reply``), loose or packed."""
        if path.is_file():
            return path.read_text(encoding="utf-8")
        packed = self.packs.names(n)
        name = self.names.packed(n, packed) if path == self.names.own(n) else path.name
        if name in packed:
            return self.packs.read(n, name).decode("utf-8")
        raise FileNotFoundError(f"{path} (nor in {self.packs.of(n)})")

    @property
    def results_tsv(self) -> Path:
        return self.root / RESULTS_TSV

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def readings(self) -> Path:
        return self.root / READINGS

    @property
    def best_trade(self) -> Path:
        """The best member's file (``best_<task>.py``; an older workdir's ``best_trade.py``)."""
        return self.names.best()

    @property
    def report(self) -> Path:
        return self.root / REPORT

    @property
    def stats(self) -> Path:
        return self.root / STATS

    @property
    def learnings(self) -> Path:
        return self.root / LEARNINGS

    @property
    def stress(self) -> Path:
        return self.root / STRESS

    @property
    def cross_market(self) -> Path:
        return self.root / CROSS_MARKET

    @property
    def snapshots(self) -> Path:
        return self.root / SNAPSHOTS

    def has_run(self) -> bool:
        """Whether a loop ever ran here (it writes state.json first thing)."""
        return self.state.is_file()

    def prepare(self) -> None:
        """Create the folder and remove temp files a killed write left behind."""
        self.root.mkdir(parents=True, exist_ok=True)
        clean_temp_files(self.root)

    # ----- candidates ------------------------------------------------------------------------
    def region(self, n: int) -> str:
        return extract_region(self.read_iteration_file(self.trade(n), n))

    def unpack(self, n: int) -> list[Path]:
        """Put iteration ``n``'s packed files back beside the others (readers prefer a loose file, whose text
        is the packed one); returns the files written."""
        out = []
        for path in (self.trade(n), self.results(n), self.reply(n)):
            if not path.is_file() and path.name in self.packs.names(n):
                atomic_write_text(path, self.read_iteration_file(path, n), durable=False)
                out.append(path)
        return out

    def write_trade(self, n: int, text: str) -> None:
        atomic_write_text(self.names.own(n), text)

    def write_reply(self, n: int, text: str) -> str:
        """Store a model's whole reply; returns the file name the record names it by."""
        atomic_write_text(self.reply(n), text)
        return self.reply(n).name

    def forget_unfinished(self, n: int) -> None:
        """Remove what iterations n and later, which never wrote their records, left (they are redone,
        their returns included; with --workers N several may have been in flight at a kill)."""
        own = CANDIDATE.format(n="{n}", stem=self.names.stem)
        for pattern in dict.fromkeys((own, TRADE, REPLY, RETURNS, RETURNS_JSON)):
            for path in self.root.glob(pattern.format(n="*")):
                match = ITER_FILE.fullmatch(path.name)
                if match and int(match.group(1)) >= n:
                    path.unlink(missing_ok=True)

    def trade_iterations(self) -> Iterator[tuple[int, Path]]:
        """Every candidate file here (``iter_N_<stem>.py``, an older ``iter_N_trade.py``), with its N."""
        for path in self.root.glob(CANDIDATE.format(n="*", stem="*")):
            match = ITER_FILE.fullmatch(path.name)
            if match and match.group(2) in (f"{self.names.stem}.py", "trade.py"):
                yield int(match.group(1)), path

    def find_iteration(self, region: str) -> int | None:
        """The first iteration whose file holds ``region`` (to name what best_trade.py is)."""
        found = []
        for n, path in self.trade_iterations():
            try:
                if extract_region(path.read_text(encoding="utf-8")) == region:
                    found.append(n)
            except (RegionError, UnicodeDecodeError):
                continue
        return min(found) if found else None

    # ----- iteration records ----------------------------------------------------------------
    def write_record(self, record: IterationRecord) -> None:
        """The sidecar first, then the record (fsynced): a record on disk always has its kept returns."""
        d = record.to_json()
        d.pop("returns")
        d.pop("instrument_returns", None)
        returns, instruments = record.kept()
        self.returns_json(record.iteration).unlink(missing_ok=True)  # a schema-1 sidecar of an earlier attempt
        if returns is not None:
            arrays = {k: np.asarray(v, dtype=np.float64) for k, v in returns.items()}
            for i, series in enumerate(instruments or ()):
                arrays[f"{SIDECAR_INSTRUMENTS}.{i}"] = np.asarray(series, dtype=np.float64)
            atomic_write_arrays(self.returns(record.iteration), arrays, durable=record.entered)
        else:  # never join another attempt's returns to this record
            self.returns(record.iteration).unlink(missing_ok=True)
        atomic_write_json(self.results(record.iteration), d)

    def has_record(self, n: int | None) -> bool:
        return n is not None and n >= 0 and (self.results(n).is_file() or self.results(n).name in self.packs.names(n))

    def record(self, n: int, returns: bool = True) -> IterationRecord:
        """``iter_N_results.json`` with its returns joined back (records before the sidecar held them inline);
        ``returns=False`` skips the sidecar, for readers that never look at the daily series."""
        path = self.results(n)
        d = _read(path, None if path.is_file() else self.read_iteration_file(path, n))
        rec = IterationRecord.from_json(d, str(path))
        if not returns:
            return rec
        if rec.returns is None and self.returns(n).is_file():
            try:
                side = read_arrays(self.returns(n))
            except (OSError, ValueError) as exc:
                raise RecordError(f"{self.returns(n)}: not a returns file alphaloop wrote ({exc})") from exc
            prefix = f"{SIDECAR_INSTRUMENTS}."
            rec.returns = {k: v.tolist() for k, v in side.items() if not k.startswith(prefix)}
            count = sum(k.startswith(prefix) for k in side)
            rec.instrument_returns = [side[f"{prefix}{i}"].tolist() for i in range(count)] if count else None
        elif rec.returns is None and self.returns_json(n).is_file():  # schema 1
            side = _read(self.returns_json(n))
            rec.returns = {k: v for k, v in side.items() if k not in ("schema_version", SIDECAR_INSTRUMENTS)}
            rec.instrument_returns = side.get(SIDECAR_INSTRUMENTS)
        return rec

    def has_returns(self, n: int) -> bool:
        """Whether record ``n`` kept daily returns (a sidecar, or inline in an older record)."""
        if self.returns(n).is_file() or self.returns_json(n).is_file():
            return True
        return self.has_record(n) and self.record(n, returns=False).returns is not None

    def split_returns(self, n: int, split: str = "val") -> np.ndarray | None:
        """One split's daily returns of record ``n`` (a column of the statistics' trial matrix), reading that one
        array of its sidecar; None when none was kept."""
        path = self.returns(n)
        if not path.is_file():  # a schema-1 sidecar, or returns inline in an older record
            series = (self.record(n).returns or {}).get(split) if self.has_record(n) else None
            return None if series is None else np.asarray(series, dtype=np.float64)
        try:
            with np.load(path, allow_pickle=False) as z:
                return z[split] if split in z.files else None
        except (OSError, ValueError) as exc:
            raise RecordError(f"{path}: not a returns file alphaloop wrote ({exc})") from exc

    def record_or_none(self, n: int | None, returns: bool = True) -> IterationRecord | None:
        """Record ``n`` (None when there is none); ``returns=False`` leaves its daily-returns sidecar unread."""
        return self.record(n, returns=returns) if self.has_record(n) else None

    def records(self) -> list[IterationRecord]:
        """Records 0, 1, ... up to the first gap (the loop writes them in order)."""
        out, n = [], 0
        while self.has_record(n):
            out.append(self.record(n))
            n += 1
        return out

    def index_entries(self, project: Callable[[dict[str, Any]], Any] | None = None) -> list[Any]:
        """Every record's index entry (``run.index``), 0, 1, ... up to the first gap: index.jsonl's lines,
        and for a record it lacks (a folder from before it, a line a kill cut) the entry read from the record;
        each passed through ``project`` when given (what the reader keeps of it)."""
        have = self._index(project=project)
        out, n = [], 0
        while n in have or self.has_record(n):
            if n in have:
                out.append(have.pop(n))
            else:
                entry = index_entry(self.record(n, returns=False))
                out.append(entry if project is None else project(entry))
            n += 1
        return out

    def _index(self, **how: Any) -> dict[int, Any]:
        """index.jsonl's complete lines by iteration, read line by line (``run.index.parse_index``)."""
        if not self.index.is_file():
            return {}
        with open(self.index, encoding="utf-8") as fh:
            return parse_index(fh, **how)

    def all_records(self, notes: list[str], returns_of: Container[int] | None = None) -> list[IterationRecord]:
        """Every record here in iteration order; one that cannot be read becomes a note (the report's view).
        ``returns_of``: the iterations whose daily returns are joined (default all)."""
        names = [p.name for p in self.root.glob(RESULTS.format(n="*"))]
        for pack in self.packs.all():
            names += self.packs.members(pack)
        numbered = set()
        for name in names:
            match = ITER_FILE.fullmatch(name)
            if match and match.group(2) == "results.json":
                numbered.add(int(match.group(1)))
        out = []
        for n in sorted(numbered):
            try:
                out.append(self.record(n, returns_of is None or n in returns_of))
            except (OSError, RecordError) as exc:
                notes.append(f"{self.results(n).name} could not be read ({exc}); it is left out")
        return out

    # ----- state and derived files ----------------------------------------------------------
    def read_state(self) -> LoopState:
        return LoopState.from_json(_read(self.state), str(self.state))

    def write_state(self, state: LoopState) -> None:
        """state.json now (fsynced): at a run's start and end, and every ``CHECKPOINT_EVERY`` records."""
        atomic_write_json(self.state, state.to_json())
        self._checkpoint = state.next_iteration

    def write_views(self, state: LoopState, learnings: str, row: str | None = None,
                    record: IterationRecord | None = None) -> None:
        """What follows each committed record, in constant work: its results.tsv ``row`` (the task's text of
        the record) and its index line appended, learnings.md (bounded) rewritten, best_trade.py when the best
        changed, the state checkpoint when due, and a block of rejected candidates' files packed when one is
        due. None of them is fsynced: after a kill or a crash ``resume_views`` rebuilds them from the records."""
        if row is not None:
            append_text(self.results_tsv, row)
        if record is not None:
            append_text(self.index, index_line(record))
        atomic_write_text(self.learnings, learnings, durable=False)
        best = state.best.iteration if state.best else None
        target = self.names.own_best()
        if best is not None and (best != self._best or not target.is_file()):
            atomic_write_text(target, self.trade(best).read_text(encoding="utf-8"), durable=False)
            if target.name != BEST_TRADE:  # an older alphaloop's copy of the best, now superseded
                (self.root / BEST_TRADE).unlink(missing_ok=True)
            self._best = best
        if self._checkpoint is None or state.next_iteration - self._checkpoint >= CHECKPOINT_EVERY:
            self.write_state(state)
        block = self.packs.due_at(state.next_iteration)
        if block is not None:
            self.packs.pack(block, self._rejected_files)

    def resume_views(self, state: LoopState, header: str, learnings: str,
                     row_of: Callable[[IterationRecord], str]) -> None:
        """At a run's start, after the replay: results.tsv and index.jsonl hold exactly the rows of iterations
        0..next_iteration-1 (those on disk, any missing one rebuilt from its record; ``row_of``: the task's
        row text), packs due are written, then every view and state.json."""
        rows = self._tsv_rows(header)
        lines = (rows.get(n) or row_of(self.record(n)) for n in range(state.next_iteration))
        atomic_write_text(self.results_tsv, header + "".join(lines))
        have = self._index(lines=True)
        entries = (have.get(n) or index_line(self.record(n, returns=False), now=False)
                   for n in range(state.next_iteration))
        atomic_write_text(self.index, "".join(entries), durable=False)
        for block in self.packs.due(state.next_iteration):  # packs a kill left unwritten or unswept
            self.packs.pack(block, self._rejected_files)
        self._best = None
        self.write_views(state, learnings)
        self.write_state(state)

    def _rejected_files(self, n: int) -> list[Path]:
        """What a pack takes of iteration ``n``: a rejected candidate's files (none of an accepted one's)."""
        if not self.results(n).is_file() or _read(self.results(n)).get("status") == "accepted":
            return []
        return [self.results(n), self.trade(n), self.reply(n)]

    def _tsv_rows(self, header: str) -> dict[int, str]:
        """The complete rows of results.tsv by iteration, when it has this header (else none)."""
        if not self.results_tsv.is_file():
            return {}
        lines = self.results_tsv.read_text(encoding="utf-8").splitlines(keepends=True)
        if not lines or lines[0] != header:
            return {}
        rows = {}
        for line in lines[1:]:
            first = line.split("\t", 1)[0]
            if line.endswith("\n") and first.isdigit():
                rows[int(first)] = line
        return rows

    def read_learnings(self) -> str:
        return self.learnings.read_text(encoding="utf-8") if self.learnings.is_file() else ""

    def read_manifest(self) -> dict | None:
        """The data manifest this run started on, or None before the first run."""
        return _read(self.manifest) if self.manifest.is_file() else None

    def write_manifest(self, manifest: dict) -> None:
        atomic_write_json(self.manifest, manifest)

    # ----- test readings --------------------------------------------------------------------
    def test_readings(self) -> list[TestReading]:
        """Every reading of the test split recorded here so far; a damaged line still counts as one."""
        if not self.readings.is_file():
            return []
        out = []
        for line in filter(str.strip, self.readings.read_text(encoding="utf-8").splitlines()):
            try:
                out.append(TestReading.from_json(json.loads(line), str(self.readings)))
            except (json.JSONDecodeError, RecordError):
                out.append(TestReading.damaged_line())
        return out

    def append_reading(self, reading: TestReading) -> None:
        """Append one JSON line atomically: the whole new file is written aside, then replaces the old."""
        old = self.readings.read_text(encoding="utf-8") if self.readings.is_file() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        line = json.dumps(reading.to_json(), sort_keys=True, allow_nan=False)
        atomic_write_text(self.readings, old + line + "\n")

    # ----- end-of-run results ---------------------------------------------------------------
    def read_stats(self) -> RunStats | None:
        return RunStats.from_json(_read(self.stats), str(self.stats)) if self.stats.is_file() else None

    def write_stats(self, stats: RunStats) -> None:
        atomic_write_json(self.stats, stats.to_json())

    def read_stress(self) -> StressCache:
        path = self.stress
        return StressCache.from_json(_read(path), str(path)) if path.is_file() else StressCache()

    def write_stress(self, cache: StressCache) -> None:
        atomic_write_json(self.stress, cache.to_json())

    def read_cross_market(self) -> CrossMarket | None:
        path = self.cross_market
        return CrossMarket.from_json(_read(path), str(path)) if path.is_file() else None

    def write_cross_market(self, result: CrossMarket) -> None:
        atomic_write_json(self.cross_market, result.to_json())

    # ----- the forecast task's files ------------------------------------------------------------
    def forecasts(self, split: str) -> Path:
        return self.root / FORECASTS.format(split=split)

    @property
    def forecast_stats(self) -> Path:
        return self.root / FORECAST_STATS

    def read_forecast_stats(self) -> dict | None:
        return _read(self.forecast_stats) if self.forecast_stats.is_file() else None

    def write_forecast_stats(self, stats: dict) -> None:
        atomic_write_json(self.forecast_stats, {"schema_version": 1, **stats})

    def write_forecasts(self, split: str, csv_text: str) -> Path:
        atomic_write_text(self.forecasts(split), csv_text)
        return self.forecasts(split)

    def write_report(self, html: str) -> Path:
        atomic_write_text(self.report, html)
        return self.report

    @property
    def equity_csv(self) -> Path:
        return self.root / EQUITY_CSV

    def write_equity_csv(self, text: str) -> Path:
        atomic_write_text(self.equity_csv, text)
        return self.equity_csv
