"""The typed records a run writes and reads back: one shape per file, for every reader and writer.

Why: the iteration record, the state, a test reading, the statistics, the stress and second-market
results were loose dicts that each module read its own way, and reader and writer drifted. Each is
a dataclass here with ``to_json``/``from_json``. Every file carries ``schema_version``; a file with
none was written before records existed (version 0) and is read through the renames below. Unknown
keys are tolerated on read (a later field is optional by construction); a missing required key, or
a version newer than this code, is refused with one ``RecordError`` line naming the file.

Adding an optional field to a record is one line: a field with a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

SCHEMA_VERSION = 2  # 0: before this module (no schema_version key); 1: returns sidecars as JSON, every row in
# state.json; 2: returns as .npz kept for what reads them, results.tsv appended (alphaloop.run.workdir)
UNIVERSE_FIELDS = ("universe", "instrument_returns")  # written only for a universe of several instruments

T = TypeVar("T")


class RecordError(ValueError):
    """A workdir file alphaloop cannot read as its record; the message is one line naming the file."""


class NewerSchema(RecordError):
    """The file was written by a later alphaloop than this one (its schema_version is higher)."""


def infer_task(d: dict[str, Any]) -> str:
    """The task of a file written before records named it (alphaloop 0.1): its metric tells them apart."""
    return str(d.get("task") or ("forecast" if d.get("metric") == "rps_skill_mean" else "trade"))


def check_version(d: Any, source: str) -> int:
    """The schema version of a JSON object read from ``source``; refuses what this code cannot read."""
    if not isinstance(d, dict):
        raise RecordError(f"{source}: expected a JSON object, found {type(d).__name__}")
    version = d.get("schema_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise RecordError(f"{source}: schema_version {version!r} is not a version alphaloop writes")
    if version > SCHEMA_VERSION:
        raise NewerSchema(f"{source}: written by a newer alphaloop (record schema {version}; this version reads "
                          f"schemas 0..{SCHEMA_VERSION}): use that version, or another --workdir")
    return version


def build(cls: type[T], d: Any, source: str) -> T:
    """``cls`` from the JSON object ``d``: unknown keys dropped, missing required ones refused."""
    check_version(d, source)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    missing = [f.name for f in fields if f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING and f.name not in d]
    if missing:
        raise RecordError(f"{source}: not a {cls.__name__} record: missing required key(s) {', '.join(missing)}")
    names = {f.name for f in fields}
    return cls(**{k: v for k, v in d.items() if k in names})


def dump(obj: Any) -> dict[str, Any]:
    """A record as JSON, ``schema_version`` first (nested records become their own JSON)."""
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = value.to_json() if hasattr(value, "to_json") else value
    return out


@dataclass
class StressResult:
    """One candidate's stress suite (``stress.run_stress``): synthetic paths from the validation split."""

    status: str
    reason: str = ""
    split: str | None = None
    n_paths: int | None = None
    seed: int | None = None
    cost_bps: float | None = None
    window_bars: int | None = None
    warmup_bars: int | None = None
    block_size: int | None = None
    scenarios: dict[str, Any] | None = None
    costs: dict[str, Any] | None = None
    penalty: float | None = None
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def matches(self, n_paths: int, cost_bps: float, seed: int) -> bool:
        """Whether this result was computed with these settings (so a cache may reuse it)."""
        return (self.n_paths, self.cost_bps, self.seed) == (n_paths, cost_bps, seed)

    def to_json(self) -> dict[str, Any]:
        """The suite's own keys (no version: it is stored inside a versioned file)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None or k in ("status", "reason")}

    @classmethod
    def from_json(cls, d: Any, source: str = "stress result") -> StressResult:
        return build(cls, d, source)


def _stress(d: Any, source: str) -> StressResult | None:
    if d is None or isinstance(d, StressResult):
        return d
    return StressResult.from_json(d, f"{source} (stress)")


@dataclass
class IterationRecord:
    """``iter_N_results.json``: what one iteration proposed, how it was judged, and where it went.

    ``selection`` is the one figure the population ranks by: the validation metric, stress-adjusted
    under ``--stress-select``; None when the candidate was not accepted. The plain validation
    metric is ``val_metric`` (from ``scores``). ``returns`` (daily returns per split, bulky) is
    stored by ``workdir`` in a sidecar file beside the record and joined back on read.
    """

    iteration: int
    status: str
    stage: str
    reason: str = ""
    parent: int | None = None
    proposed_from: int | None = None  # the last iteration committed in the state it proposed from (--workers)
    created_at: str = ""
    metric: str = "sharpe"
    task: str = "trade"  # the --task that wrote it (from_json infers it for files from before the field)
    cost_bps: float | None = None
    folds: int | None = None
    eval_timeout_s: float | None = None  # the run's --eval-timeout: final judges with the same budget
    proposer: str = ""
    model: str | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    data_manifest: str = ""  # manifest_digest of the frozen data: prepare.py prints it as "data digest"
    test_readings_before: int = 0
    proposal: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] | None = None
    returns: dict[str, list[float]] | None = None
    trades: dict[str, list[list[int]]] | None = None  # round trips per split as [entry bar, exit bar] (the report)
    selection: float | None = None
    stress: StressResult | None = None
    in_population: bool = False
    hypothesis_held: bool | None = None
    grading: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    eval_timings: dict[str, float] = field(default_factory=dict)
    positions_sha256: str | None = None
    signals_sha256: str | None = None
    novelty: dict[str, Any] | None = None
    bh_disguise: dict[str, Any] | None = None
    duplicate_of: int | None = None
    replaces: int | None = None
    reply_file: str | None = None
    learnings_compacted: str | None = None
    universe: dict[str, Any] | None = None  # several instruments: each one's figures, best/median/worst by number
    instrument_returns: list[list[float]] | None = None  # several instruments: each one's daily validation returns
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def entered(self) -> bool:
        """Accepted and kept in the population."""
        return self.accepted and self.in_population

    def kept(self) -> tuple[dict[str, list[float]] | None, list[list[float]] | None]:
        """The returns (and a universe's per-instrument ones) a record keeps on disk, by who reads them.

        A member (it entered the population) keeps all: the report draws the best one's train and validation
        curves, final and the end-of-run figures use its instruments. Any other accepted candidate keeps its
        validation series (keys ``val...``): a column of the statistics' trial matrix. A rejected one keeps
        none: nothing reads them, and at a night's scale they were most of the folder."""
        if self.returns is None or not self.accepted:
            return None, None
        if self.entered:
            return self.returns, self.instrument_returns
        return {k: v for k, v in self.returns.items() if k.startswith("val")}, None

    def split(self, name: str) -> dict[str, float] | None:
        """The metrics of one split (``train``, ``val``), or None when the candidate was never scored."""
        return ((self.scores or {}).get("splits") or {}).get(name)

    @property
    def val_metric(self) -> float | None:
        """The selection metric on validation, before any stress adjustment."""
        val = self.split("val")
        return None if val is None else val.get(self.metric)

    @property
    def fold_spread(self) -> dict[str, float]:
        return (self.scores or {}).get("fold_spread") or {}

    @property
    def disguised(self) -> bool:
        return bool((self.bh_disguise or {}).get("disguised"))

    @property
    def novelty_kind(self) -> str:
        return (self.novelty or {}).get("kind", "")

    @property
    def copy_words(self) -> str:
        """"duplicate of iter N" (or "near copy of iter N") when this candidate copies an earlier one, else "".

        Why one wording: results.tsv says ``duplicate:N``; the loop's lines and the report say the same."""
        member = (self.novelty or {}).get("member")
        if self.duplicate_of is not None or (self.novelty_kind == "duplicate" and member is not None):
            return f"duplicate of iter {self.duplicate_of if self.duplicate_of is not None else member}"
        return f"near copy of iter {member}" if self.novelty_kind == "near_copy" and member is not None else ""

    def to_json(self) -> dict[str, Any]:
        """Every field, ``returns`` included (``workdir`` stores it in the sidecar file); the universe's
        two fields only when set, so a single-instrument record keeps the keys it always had."""
        return {k: v for k, v in dump(self).items() if k not in UNIVERSE_FIELDS or v is not None}

    @classmethod
    def from_json(cls, d: Any, source: str = "iteration record") -> IterationRecord:
        version = check_version(d, source)
        if version == 0:  # before records: three selection keys, and the scores repeated the plain one
            d = {**d, "selection": d.get("selection_value")}
        if isinstance(d.get("scores"), dict) and "selection_val" in d["scores"]:
            d["scores"] = {k: v for k, v in d["scores"].items() if k != "selection_val"}
        rec = build(cls, d, source)
        rec.stress = _stress(rec.stress, source)
        rec.task = infer_task(d)
        return rec


@dataclass
class Member:
    """What the loop remembers of a population member without rereading its files."""

    iteration: int
    value: float
    val_metric: float
    train_metric: float
    val_trades: int
    description: str
    val: dict[str, float]
    fold_min: float | None = None
    fold_median: float | None = None
    signals_sha256: str | None = None
    positions_sha256: str | None = None  # validation positions: equal keys trade identically on validation
    val_returns: list[float] | None = None  # daily validation returns, for the near-copy rule and correlations


@dataclass
class TestReading:
    """One line of ``test_readings.jsonl``: one reading of the locked test split by ``harness.py final``.

    A line that is not JSON is kept as a reading with ``damaged`` set: it still counts as a reading.
    """

    __test__ = False  # pytest: not a test class despite its name

    time: str
    iteration: int | str | None
    status: str | None = None
    stage: str | None = None
    reason: str | None = None
    file: str | None = None
    sha256: str | None = None
    metric: str | None = None
    cost_bps: float | None = None
    data_digest: str | None = None
    earlier_readings: int | None = None
    test: dict[str, float] | None = None
    val_metric: float | None = None
    bh_test_metric: float | None = None
    bh_val_metric: float | None = None
    beat_bh_test: bool | None = None
    test_minus_validation: float | None = None  # test minus validation, a rise or a drop (files before: "degradation")
    returns: list[float] | None = None
    bh_returns: list[float] | None = None
    holdout: list[dict[str, Any]] | None = None  # held-out figures (commands.holdout.HeldOut.to_json)
    instruments: list[dict[str, Any]] | None = None  # a universe: each instrument's test figures (holdout.py)
    trades: list[list[int]] | None = None  # round trips on test as [entry bar, exit bar], for the report
    dates: list[str] | None = None  # the test split's dates, so the report draws it on dates without opening it
    portfolio: dict[str, Any] | None = None  # --task portfolio: test weights, contributions, held-out panel
    benchmark: str | None = None  # "climatology" for a forecast reading (its figures are then the climatology_* keys)
    climatology_test_metric: float | None = None  # a forecast reading: climatology's skill on test (0 by definition)
    climatology_val_metric: float | None = None
    beat_climatology_test: bool | None = None
    spa_test: dict[str, Any] | None = None  # a forecast reading: SPA p-values against each benchmark on test
    damaged: bool = False

    @classmethod
    def damaged_line(cls) -> TestReading:
        return cls(time="?", iteration="?", damaged=True)

    def to_json(self) -> dict[str, Any]:
        """The reading's keys that hold a value (absent, not null, when e.g. a rejected reading has no test)."""
        d = dump(self)
        return {k: v for k, v in d.items() if v is not None and not (k == "damaged" and not v)}

    @classmethod
    def from_json(cls, d: Any, source: str = "test reading") -> TestReading:
        if isinstance(d, dict) and "degradation" in d and "test_minus_validation" not in d:
            d = {**d, "test_minus_validation": d["degradation"]}  # readings written before the key was renamed
        return build(cls, d, source)


@dataclass
class RunStats:
    """``stats.json``: data-snooping statistics over all trials of a run (validation split)."""

    trials: int
    best_iteration: int | None = None
    split: str = "val"
    scored_trials: int | None = None
    accepted: int | None = None
    dsr: float | None = None
    dsr_pvalue: float | None = None
    best_sharpe: float | None = None
    expected_max_sharpe: float | None = None
    sharpe_std_across_trials: float | None = None
    skewness: float | None = None
    kurtosis: float | None = None
    observations: int | None = None
    verdict_dsr: str | None = None
    spa_pvalues: dict[str, float] | None = None
    spa_reps: int | None = None
    verdict_spa: str | None = None
    universe: dict[str, Any] | None = None
    verdict: str | None = None
    effective_trials: float | None = None
    dsr_excess: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dump(self)

    @classmethod
    def from_json(cls, d: Any, source: str = "statistics") -> RunStats:
        return build(cls, d, source)


@dataclass
class CrossMarket:
    """``cross_market.json``: the population scored on a second instrument (train and validation only)."""

    label: str
    metric: str
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # iteration -> splits, or {"error": ...}

    def to_json(self) -> dict[str, Any]:
        return dump(self)

    @classmethod
    def from_json(cls, d: Any, source: str = "second-market result") -> CrossMarket:
        return build(cls, d, source)


@dataclass
class StressCache:
    """``stress.json``: each population member's stress result, kept across runs and resumes."""

    members: dict[str, StressResult] = field(default_factory=dict)  # iteration -> result

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "members": {k: v.to_json() for k, v in self.members.items()}}

    @classmethod
    def from_json(cls, d: Any, source: str = "stress cache") -> StressCache:
        version = check_version(d, source)
        raw = d if version == 0 else d.get("members", {})  # version 0 was the bare map
        return cls({str(k): StressResult.from_json(v, f"{source} (iteration {k})") for k, v in raw.items()
                    if k != "schema_version"})
