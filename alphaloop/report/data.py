"""The report's reading of a run: every file the loop writes, read once; a broken file becomes a note."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alphaloop.data import DataError, load_splits, manifest_digest


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

    @property
    def metric(self) -> str:
        """The selection metric the run ranked by (validation split)."""
        recorded = next((r.get("metric") for r in self.records if r.get("metric")), "sharpe")
        return str(self.state.get("metric") or recorded)

    def record(self, n: int | None) -> dict | None:
        """The iteration record numbered ``n``, or None when there is none."""
        return next((r for r in self.records if r.get("iteration") == n), None)

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


def _read_json(path: Path, notes: list[str]) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        notes.append(f"{path.name} could not be read ({type(exc).__name__}); its section is left out")
        return None


def load_run(workdir: Path, data_dir: Path) -> Run:
    """Read every file the loop writes; a missing or broken one becomes a note, not a failure."""
    workdir, notes = Path(workdir), []
    numbered = []
    for path in workdir.glob("iter_*_results.json"):
        m = re.fullmatch(r"iter_(\d+)_results\.json", path.name)
        if m:
            numbered.append((int(m.group(1)), path))
    records = [r for _, p in sorted(numbered) if isinstance(r := _read_json(p, notes), dict)]
    state = _read_json(workdir / "state.json", notes) or {}
    frozen = _read_json(Path(data_dir) / "manifest.json", notes)
    manifest = _read_json(workdir / "data_manifest.json", notes) or frozen
    splits = None
    try:
        if frozen and manifest and manifest_digest(manifest) != manifest_digest(frozen):
            notes.append(f"the frozen data in {data_dir} is not the data this run used; curves are drawn against "
                         "trading days, without buy and hold")
        else:
            splits = load_splits(Path(data_dir))
    except (DataError, KeyError, TypeError) as exc:
        notes.append(f"frozen data not readable ({exc}); curves are drawn against trading days, without buy and hold")
    readings = []
    readings_path = workdir / "test_readings.jsonl"
    if readings_path.is_file():
        for line in filter(str.strip, readings_path.read_text(encoding="utf-8").splitlines()):
            try:
                readings.append(json.loads(line))
            except json.JSONDecodeError:
                notes.append("test_readings.jsonl holds a line that is not JSON; it was skipped")
    stress = _read_json(workdir / "stress.json", notes) if (workdir / "stress.json").is_file() else {}
    for record in records:
        if not record.get("stress") and str(record.get("iteration")) in (stress or {}):
            record["stress"] = stress[str(record["iteration"])]
    learnings_path = workdir / "learnings.md"
    return Run(workdir=workdir, records=records, state=state, manifest=manifest, splits=splits,
               stats=_read_json(workdir / "stats.json", notes), cross=_read_json(workdir / "cross_market.json", notes),
               readings=readings,
               learnings=learnings_path.read_text(encoding="utf-8") if learnings_path.is_file() else "",
               notes=notes)


def record_value(record: dict) -> float | None:
    """The validation selection metric of a record, or None when it was never scored."""
    v = record.get("selection_val")
    if v is None and record.get("scores"):
        v = record["scores"].get("selection_val")
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else None


def rank_value(record: dict) -> float | None:
    """What the population ranked by: the stress-adjusted value when ``--stress-select`` set one."""
    v = record.get("selection_value")
    return float(v) if isinstance(v, (int, float)) and np.isfinite(v) else record_value(record)
