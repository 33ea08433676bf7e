"""A long night's folder: the index the statistics and the report read, and packs of rejected candidates."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import alphaloop.run.packs as packs
import alphaloop.run.workdir as workdir_module
from alphaloop.evaluate.columns import TrialColumns, column_sharpes, spa_test
from alphaloop.evaluate.stats import effective_of_sample, effective_trials, trial_statistics, universe_statistics
from alphaloop.run.index import index_line
from alphaloop.run.learnings import Learnings
from alphaloop.run.records import IterationRecord
from alphaloop.run.state import LoopState
from alphaloop.run.workdir import Workdir
from alphaloop.tasks import get_task
from tests.test_records import OLD_RECORD


def _night(root: Path, iterations: int) -> tuple[Workdir, LoopState, list[str]]:
    """Commit ``iterations`` records as the loop does (every third rejected); returns the rows written."""
    wd, trade = Workdir(root), get_task("trade")
    state, learnings = LoopState(metric="sharpe", population_size=3, data_manifest="x"), Learnings()
    header = trade.tsv_header("sharpe")
    wd.resume_views(state, header, "notes\n", lambda r: trade.tsv_row(r, "sharpe"))
    for n in range(iterations):
        rejected = n % 3 == 2
        rec = IterationRecord.from_json({**OLD_RECORD, "iteration": n, "status": "rejected" if rejected else "accepted",
                                         "in_population": n < 3, "returns": {"val": [0.001 * n, 0.03, -0.01]}})
        wd.write_trade(n, f"# candidate {n}\n")
        wd.write_record(rec)
        state.apply(wd.record(n), learnings, trade)
        wd.write_views(state, "notes\n", trade.tsv_row(wd.record(n), "sharpe"), wd.record(n, returns=False))
    return wd, state, [header]


def test_rejected_candidates_are_packed_a_block_behind_and_still_read(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packs, "PACK_EVERY", 6)
    wd, state, _ = _night(tmp_path, 20)
    assert [p.name for p in wd.packs.all()] == ["iter_0-5.zip", "iter_6-11.zip"]  # 12-17 not yet: 18 < 24
    with zipfile.ZipFile(wd.packs.path(0)) as z:  # a plain zip: unzip reads it
        assert sorted(z.namelist()) == ["iter_2_results.json", "iter_2_trade.py", "iter_5_results.json",
                                        "iter_5_trade.py"]
    assert not wd.results(2).exists() and not wd.trade(5).exists() and wd.trade(4).is_file()  # accepted stay loose
    assert wd.has_record(2) and wd.record(2).status == "rejected"
    assert wd.read_iteration_file(wd.trade(5), 5) == "# candidate 5\n"
    assert [r.iteration for r in wd.records()] == list(range(20))
    assert [r.iteration for r in wd.all_records([])] == list(range(20))
    assert [e["iteration"] for e in wd.index_entries()] == list(range(20))
    assert wd.unpack(5) == [wd.trade(5), wd.results(5)] and wd.trade(5).read_text() == "# candidate 5\n"


def test_every_record_is_read_with_each_packs_names_listed_once(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's ``all_records`` lists a pack's members once, however many of its records it then reads."""
    monkeypatch.setattr(packs, "PACK_EVERY", 6)
    _night(tmp_path, 20)
    listed: list[str] = []
    original = packs.zip_names

    def counted(path: Path) -> list[str]:
        listed.append(Path(path).name)
        return original(path)

    monkeypatch.setattr(packs, "zip_names", counted)
    monkeypatch.setattr(workdir_module, "zip_names", counted, raising=False)  # any lister of the folder's own
    assert [r.iteration for r in Workdir(tmp_path).all_records([])] == list(range(20))
    assert sorted(listed) == ["iter_0-5.zip", "iter_6-11.zip"]


def test_a_packed_candidate_of_an_older_folder_reads_under_the_tasks_name(tmp_path: Path) -> None:
    """A forecaster saved as ``iter_N_trade.py`` (before each task named its files), then packed, reads as
    ``iter_N_forecast.py``; when a pack holds both names, the task's own wins, as it does for loose files."""
    (tmp_path / "iter_3_trade.py").write_text("# saved under the trade name\n")
    (tmp_path / "iter_4_trade.py").write_text("# older copy\n")
    (tmp_path / "iter_4_forecast.py").write_text("# own name\n")
    wd = Workdir(tmp_path, "forecast")
    wd.packs.pack(0, lambda n: [tmp_path / f"iter_{n}_trade.py", tmp_path / f"iter_{n}_forecast.py"])
    assert not any(tmp_path.glob("iter_*.py"))
    again = Workdir(tmp_path, "forecast")
    assert again.trade(3).name == "iter_3_forecast.py"
    assert again.read_iteration_file(again.trade(3), 3) == "# saved under the trade name\n"
    assert again.read_iteration_file(again.trade(4), 4) == "# own name\n"
    with pytest.raises(FileNotFoundError):
        again.read_iteration_file(again.trade(5), 5)


def test_a_kill_while_packing_leaves_every_file_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The zip is whole before any file goes: a block whose zip a kill never wrote is packed on resume;
    files found beside a pack (a kill between the zip and the removals, or unpacked by hand) stay and read."""
    monkeypatch.setattr(packs, "PACK_EVERY", 6)
    wd, state, (header,) = _night(tmp_path, 20)
    wd.unpack(2)
    for n in (8, 11):
        wd.unpack(n)
    wd.packs.path(1).unlink()  # as if killed before the second zip was renamed into place
    trade = get_task("trade")
    again = Workdir(tmp_path)
    again.resume_views(state, header, "notes\n", lambda r: trade.tsv_row(r, "sharpe"))
    assert wd.trade(2).read_text() == "# candidate 2\n" and again.record(2).status == "rejected"
    assert wd.packs.path(1).is_file() and not wd.trade(8).exists() and again.record(8).status == "rejected"
    assert [r.iteration for r in Workdir(tmp_path).records()] == list(range(20))


def test_the_index_is_rebuilt_to_the_records_on_resume(tmp_path: Path) -> None:
    wd, state, (header,) = _night(tmp_path, 5)
    whole = wd.index.read_text()
    lines = whole.splitlines(keepends=True)
    assert len(lines) == 5 and all(len(line) < 1000 for line in lines)
    entry = json.loads(lines[3])
    assert entry["status"] == "accepted" and entry["scores"]["splits"]["val"]["sharpe"] == 0.5
    wd.index.write_text(lines[0] + lines[2] + lines[3][:9])  # line 1 lost, line 3 cut by a kill
    trade = get_task("trade")
    wd.resume_views(state, header, "notes\n", lambda r: trade.tsv_row(r, "sharpe"))
    rebuilt = [json.loads(x) for x in wd.index.read_text().splitlines()]
    assert [e["iteration"] for e in rebuilt] == [0, 1, 2, 3, 4]
    assert rebuilt[1]["committed"] is None and rebuilt[1]["status"] == "accepted"
    wd.index.unlink()  # a folder from before the index: entries come from the records
    assert [e["iteration"] for e in wd.index_entries()] == [0, 1, 2, 3, 4]


def test_streamed_columns_give_the_statistics_of_the_whole_matrix() -> None:
    """Fed one column at a time with small caps, the figures are those read from the whole matrix: the
    same sampled effective count, SPA over the same distinct best series, the same excess Sharpes."""
    rng = np.random.default_rng(7)
    ideas = rng.normal(0, 0.01, (250, 12))
    r = ideas[:, rng.integers(0, 12, 90)] + rng.normal(0, 0.002, (250, 90))
    r = np.column_stack([r, r[:, :15]])  # copies, as a loop's duplicates
    bh = rng.normal(0.0004, 0.01, 250)
    cols = TrialColumns(r.shape[1], bh, effective_cap=40, spa_cap=30)
    for j in range(r.shape[1]):
        cols.add(r[:, j], best=j == 4)
    got, want = effective_of_sample(cols.sample(), r.shape[1], cap=40), effective_trials(r, cap=40)
    assert got.sampled == want.sampled and got.effective == pytest.approx(want.effective, rel=1e-6)  # summation order
    assert len(cols.spa_series()) == 30 and cols.spa.distinct == 90 and cols.spa_candidates == 105
    assert spa_test(bh, cols.spa_series(), seed=0, reps=100) == spa_test(bh, list(r.T), seed=0, reps=100, cap=30)
    assert np.allclose(cols.excess_sharpes, column_sharpes(r - bh[:, None]))
    whole = universe_statistics(r, 4, bh, trials=200, reps=100)
    streamed = TrialColumns(r.shape[1], bh)
    for j in range(r.shape[1]):
        streamed.add(r[:, j], best=j == 4)
    assert trial_statistics(streamed, trials=200, reps=100) == whole
    with pytest.raises(ValueError, match="announced"):
        TrialColumns(3, bh).sample()


def test_an_index_line_is_short_whatever_the_record_holds(tmp_path: Path) -> None:
    wd = Workdir(tmp_path)
    big = IterationRecord.from_json({**OLD_RECORD, "iteration": 0, "details": {"x": "y" * 50_000},
                                     "proposal": {"hypothesis": "h" * 5_000}})
    wd.write_record(dataclasses.replace(big))
    assert len(index_line(wd.record(0))) < 1200


def test_a_long_runs_report_reads_whole_only_the_records_it_shows(tmp_path: Path, frozen_data: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond TABLE_ROWS iterations the index stands for each iteration; whole records are read for the rows
    the tables list and the population's lineage, and the report still renders every section."""
    import alphaloop.present.report.data as data
    from alphaloop.present.report import write_report

    monkeypatch.setattr(data, "TABLE_ROWS", 10)
    wd, state, _ = _night(tmp_path, 700)
    run = data.load_run(tmp_path, frozen_data)
    whole = {r["iteration"] for r in run.records if "details" in r}
    assert [r["iteration"] for r in run.records] == list(range(700)) and not run.notes
    assert {0, *run.population} <= whole and len(whole) < 700 - 100  # the 250 best and 250 latest, not all
    assert all(r["status"] in ("accepted", "rejected") for r in run.records)
    html = write_report(tmp_path, frozen_data).read_text()
    assert "Selection metric over iterations" in html


def test_final_finds_a_packed_iteration(tmp_path: Path, frozen_data: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from alphaloop.commands.final import run_final

    monkeypatch.setattr(packs, "PACK_EVERY", 6)
    wd, _, _ = _night(tmp_path, 20)
    assert not wd.trade(5).exists()
    code = run_final(tmp_path, frozen_data, iteration=5)  # read and judged (its text has no strategy: rejected)
    assert code == 1 and "no such file" not in capsys.readouterr().err
    assert wd.trade(5).read_text() == "# candidate 5\n"
