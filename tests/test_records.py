"""Typed records: every file round-trips, old workdirs are read, newer or damaged ones refused in one line."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from alphaloop.run.learnings import Learnings
from alphaloop.run.records import SCHEMA_VERSION, IterationRecord, RecordError, RunStats, StressCache, TestReading
from alphaloop.run.state import LoopState
from alphaloop.run.workdir import Workdir
from alphaloop.tasks import get_task

ROOT = Path(__file__).resolve().parent.parent


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    return subprocess.run([sys.executable, str(ROOT / "harness.py"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


OLD_RECORD = {  # iter_N_results.json as alphaloop wrote it before records.py (commit d9c1c61): no schema_version
    "iteration": 2, "parent": 0, "created_at": "2026-12-02T01:28:10+00:00", "metric": "sharpe", "cost_bps": 2.0,
    "folds": 4, "proposer": "offline (seed 7)", "model": "offline", "tokens": {"prompt": 0, "completion": 0},
    "data_manifest": "67bdb0a4ab5c2c9c", "test_readings_before": 0,
    "proposal": {"hypothesis": "h", "change": "c", "expected": "e", "expectation": None},
    "scores": {"metric": "sharpe", "selection_val": 0.5, "splits": {"val": {"sharpe": 0.5, "round_trips": 9.0},
                                                                   "train": {"sharpe": 0.2, "round_trips": 30.0}},
               "folds": [], "fold_spread": {}},
    "returns": {"train": [0.01, -0.02], "val": [0.0, 0.03]}, "selection_val": 0.5, "selection_value": 0.4,
    "stress": None, "in_population": True, "hypothesis_held": True, "grading": "held", "status": "accepted",
    "stage": "ok", "reason": "", "details": {}, "eval_timings": {}, "positions_sha256": "p", "signals_sha256": "s",
    "novelty": {"kind": "new"}, "bh_disguise": {"disguised": False}, "duplicate_of": None, "replaces": None,
    "timings": {"total": 0.1}, "a_key_from_elsewhere": 1,
}


def test_an_old_record_reads_with_one_selection_field() -> None:
    rec = IterationRecord.from_json(OLD_RECORD, "iter_2_results.json")
    assert rec.selection == 0.4 and rec.val_metric == 0.5  # the ranked value, and validation's own figure
    d = rec.to_json()
    assert d["schema_version"] == SCHEMA_VERSION and "selection_val" not in d and "selection_value" not in d
    assert "selection_val" not in d["scores"] and "a_key_from_elsewhere" not in d
    assert IterationRecord.from_json(d) == rec


def test_refusals_are_one_line_naming_the_file() -> None:
    with pytest.raises(RecordError, match=r"^iter_2_results.json: not a IterationRecord record: missing required "
                                          r"key\(s\) status, stage$"):
        IterationRecord.from_json({"iteration": 2}, "iter_2_results.json")
    with pytest.raises(RecordError, match=r"^state.json: written by a newer alphaloop \(record schema 99"):
        LoopState.from_json({"schema_version": 99, "metric": "sharpe"}, "state.json")
    with pytest.raises(RecordError, match="^stats.json: expected a JSON object"):
        RunStats.from_json([1, 2], "stats.json")


def test_workdir_keeps_returns_beside_the_record_and_joins_them(tmp_path: Path) -> None:
    wd = Workdir(tmp_path)
    rec = IterationRecord.from_json(OLD_RECORD)
    wd.write_record(rec)
    on_disk = json.loads(wd.results(2).read_text())
    assert "returns" not in on_disk and np.load(wd.returns(2))["val"].tolist() == [0.0, 0.03]
    assert wd.record(2) == rec
    (tmp_path / "iter_3_results.json").write_text(json.dumps({**OLD_RECORD, "iteration": 3}))  # old: inline returns
    assert wd.record(3).returns == OLD_RECORD["returns"]
    wd.write_record(IterationRecord.from_json({**OLD_RECORD, "iteration": 4}))
    wd.results(4).unlink()  # killed between the sidecar and its record: the redo must not inherit those returns
    wd.forget_unfinished(4)
    assert not wd.returns(4).exists()
    wd.write_record(IterationRecord(iteration=4, status="rejected", stage="gate"))
    assert wd.record(4).returns is None
    wd.results(3).write_text('{"iteration": 3, "sta')
    with pytest.raises(RecordError, match="iter_3_results.json: not valid JSON"):
        wd.record(3)


def test_test_readings_and_stress_cache_round_trip(tmp_path: Path) -> None:
    wd = Workdir(tmp_path)
    wd.append_reading(TestReading(time="t", iteration=3, status="rejected", stage="lookahead", reason="leak"))
    with open(wd.readings, "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    first, damaged = wd.test_readings()
    assert first.reason == "leak" and first.test is None and damaged.damaged  # a damaged line still counts
    (tmp_path / "stress.json").write_text(json.dumps({"4": {"status": "ok", "n_paths": 8, "seed": 0,
                                                            "cost_bps": 2.0}}))  # the old bare map
    cache = wd.read_stress()
    assert cache.members["4"].matches(8, 2.0, 0)
    wd.write_stress(cache)
    assert StressCache.from_json(json.loads((tmp_path / "stress.json").read_text())) == cache


def assert_state_is_a_fold_of_the_records(root: Path) -> None:
    """Replaying every record from nothing gives state.json: what a resume after a kill relies on."""
    wd = Workdir(root)
    live = wd.read_state()
    replay = LoopState(metric=live.metric, population_size=live.population_size, data_manifest=live.data_manifest,
                       cost_bps=live.cost_bps, folds=live.folds)
    learnings = Learnings()
    for rec in wd.records():
        replay.apply(rec, learnings, get_task(rec.task))
    replay.stop_reason, replay.elapsed_s = live.stop_reason, live.elapsed_s
    assert replay.to_json() == live.to_json()


def test_a_record_folds_in_as_a_resume_reads_it(tmp_path: Path) -> None:
    """Non-finite figures become null on disk; the loop folds in the record as read back, like a replay."""
    wd = Workdir(tmp_path)
    rec = IterationRecord.from_json(OLD_RECORD)
    rec.scores["splits"]["val"]["calmar"] = float("inf")
    wd.write_record(rec)
    assert wd.record(2).split("val")["calmar"] is None and wd.record(2) == wd.record(2)


def _to_old_shape(root: Path) -> None:
    """Rewrite a workdir as commit d9c1c61 wrote it: returns inline, three selection keys, no versions."""
    wd = Workdir(root)
    for rec in wd.records():
        d = rec.to_json()
        d.pop("schema_version")
        d.pop("learnings_compacted")
        if d.get("reply_file") is None:
            d.pop("reply_file")
        d["selection_value"] = d.pop("selection")
        d["selection_val"] = rec.val_metric
        if d["scores"]:
            d["scores"] = {"metric": d["scores"]["metric"], "selection_val": rec.val_metric, **d["scores"]}
        wd.results(rec.iteration).write_text(json.dumps(d))
        wd.returns(rec.iteration).unlink(missing_ok=True)
    for name in ("state.json", "stats.json", "cross_market.json"):
        d = json.loads((root / name).read_text())
        d.pop("schema_version")
        (root / name).write_text(json.dumps(d))


def test_a_workdir_written_before_records_resumes_and_reports(frozen_data: Path, tmp_path: Path) -> None:
    args = ["--proposer", "offline", "--max-fails", "0", "--seed", "7", "--stress-paths", "0", "--data",
            str(frozen_data)]
    ref, old = tmp_path / "ref", tmp_path / "old"
    assert harness(*args, "--iterations", "3", "--workdir", str(ref), cwd=tmp_path).returncode == 0
    assert_state_is_a_fold_of_the_records(ref)
    res = harness(*args, "--iterations", "1", "--workdir", str(old), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    _to_old_shape(old)
    res = harness("report", "--workdir", str(old), "--data", str(frozen_data), cwd=tmp_path)
    assert res.returncode == 0 and "could not be read" not in (old / "report.html").read_text()
    res = harness(*args, "--iterations", "3", "--workdir", str(old), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    same = [(r.iteration, r.status, r.stage, r.val_metric, r.selection, r.in_population, r.returns)
            for r in Workdir(ref).records()]
    assert [(r.iteration, r.status, r.stage, r.val_metric, r.selection, r.in_population, r.returns)
            for r in Workdir(old).records()] == same
    assert (old / "results.tsv").read_text() == (ref / "results.tsv").read_text()
    res = harness("final", "--workdir", str(old), "--data", str(frozen_data), cwd=tmp_path)
    assert res.returncode == 0 and "recorded by the loop" in res.stdout


def test_a_workdir_from_a_newer_alphaloop_is_refused_in_one_line(frozen_data: Path, tmp_path: Path) -> None:
    wd = tmp_path / "run"
    args = ["--proposer", "offline", "--stress-paths", "0", "--workdir", str(wd), "--data", str(frozen_data)]
    assert harness(*args, "--iterations", "0", cwd=tmp_path).returncode == 0
    state = json.loads((wd / "state.json").read_text())
    (wd / "state.json").write_text(json.dumps({**state, "schema_version": SCHEMA_VERSION + 1}))
    res = harness(*args, "--iterations", "1", cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {wd / 'state.json'}: written by a newer alphaloop (record schema "
                           f"{SCHEMA_VERSION + 1}")


def test_the_records_data_manifest_is_the_digest_prepare_prints(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = subprocess.run([sys.executable, str(ROOT / "prepare.py"), "--source", "sample", "--out", str(data)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    printed = re.search(r"data digest (\w+)\)", out.stdout).group(1)
    wd = tmp_path / "run"
    assert harness("--proposer", "offline", "--stress-paths", "0", "--iterations", "0", "--workdir", str(wd),
                   "--data", str(data), cwd=tmp_path).returncode == 0
    assert Workdir(wd).record(0).data_manifest == printed == Workdir(wd).read_state().data_manifest


def test_the_report_counts_a_damaged_reading_as_final_does(frozen_data: Path, tmp_path: Path) -> None:
    from alphaloop.present.report import load_run, locked_split_html

    wd = Workdir(tmp_path)
    wd.append_reading(TestReading(time="2026-11-22T08:00:00+00:00", iteration=1, status="scored",
                                  test={"sharpe": 0.7}))
    with open(wd.readings, "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    run = load_run(tmp_path, frozen_data)
    assert len(wd.test_readings()) == len(run.readings) == 2
    assert "read 2 times" in locked_split_html(run) and any("counted as a reading" in n for n in run.notes)


def test_returns_are_kept_only_for_what_reads_them(tmp_path: Path) -> None:
    """A member keeps every split (the report draws the best); another accepted candidate its validation
    series (the statistics' trial matrix); a rejected one nothing."""
    wd = Workdir(tmp_path)
    member = IterationRecord.from_json(OLD_RECORD)
    wd.write_record(dataclasses.replace(member, iteration=5, in_population=False))
    wd.write_record(dataclasses.replace(member, iteration=6, status="rejected", stage="guards", in_population=False))
    assert wd.record(5).returns == {"val": [0.0, 0.03]}
    assert wd.record(6).returns is None and not wd.returns(6).exists()
    (tmp_path / "iter_7_results.json").write_text(json.dumps({**OLD_RECORD, "iteration": 7, "returns": None}))
    (tmp_path / "iter_7_returns.json").write_text(json.dumps({"schema_version": 1, **OLD_RECORD["returns"]}))
    assert wd.record(7).returns == OLD_RECORD["returns"]  # a schema-1 sidecar still reads


def test_results_tsv_is_rebuilt_to_the_records_on_resume(tmp_path: Path) -> None:
    """A row cut by a kill, or one never appended, is rebuilt from the records; rows past the state go."""
    wd = Workdir(tmp_path)
    state = LoopState(metric="sharpe", population_size=3, data_manifest="x")
    learnings = Learnings()
    trade = get_task("trade")

    def row_of(rec: IterationRecord) -> str:
        return trade.tsv_row(rec, "sharpe")

    wd.resume_views(state, trade.tsv_header("sharpe"), "notes\n", row_of)
    for n in range(3):
        rec = IterationRecord.from_json({**OLD_RECORD, "iteration": n})
        wd.write_trade(n, "x = 1\n")
        wd.write_record(rec)
        state.apply(wd.record(n), learnings, trade)
        wd.write_views(state, "notes\n", row_of(wd.record(n)))
    whole = wd.results_tsv.read_text()
    header, *rows = whole.splitlines(keepends=True)
    wd.results_tsv.write_text(header + rows[0] + rows[2][:5])  # row 1 lost, row 2 cut mid-line
    wd.resume_views(state, header, "notes\n", row_of)
    assert wd.results_tsv.read_text() == whole
    state.next_iteration = 2
    wd.resume_views(state, header, "notes\n", row_of)
    assert wd.results_tsv.read_text() == header + rows[0] + rows[1]
