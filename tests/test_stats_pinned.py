"""The end-of-run statistics of small run folders, one per task, print and write the figures they always did.

Each folder is built with the workdir's own writer (records, their returns sidecars, index.jsonl): accepted,
rejected and duplicated candidates, a degenerate forecaster that scores as the climatology, a market-neutral
portfolio pick. The figures (stats.json / forecast_stats.json and the printed lines) are pinned in
``corpus/stats_pinned.json``, written from the code before the statistics streamed and computed SPA once:
refactoring how they are computed must not move one digit. ``ALPHALOOP_PIN_STATS=1`` rewrites the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from alphaloop.run.index import index_line
from alphaloop.run.records import IterationRecord
from alphaloop.run.workdir import Workdir
from tests.portfolio_support import split_frames, universe_frames

PINNED = Path(__file__).parent / "corpus" / "stats_pinned.json"


def _write(wd: Workdir, records: list[IterationRecord]) -> None:
    wd.prepare()
    for rec in records:
        wd.write_record(rec)
    wd.index.write_text("".join(index_line(rec, now=False) for rec in records))


def _status(n: int) -> str:
    return "rejected" if n % 7 == 3 else "accepted"


def _trade_folder(root: Path) -> SimpleNamespace:
    histories = split_frames(universe_frames(n=2, days=900, seed=11))
    from alphaloop.evaluate.universe import bh_returns

    bh = bh_returns(histories, "val")
    rng = np.random.default_rng(21)
    series = 0.5 * bh[:, None] + rng.normal(0.0003, 0.008, (bh.size, 24))
    series[:, 11] = series[:, 4]  # a duplicate of an accepted candidate
    sharpes = series.mean(axis=0) / series.std(axis=0, ddof=1) * np.sqrt(252)
    best = max((n for n in range(24) if _status(n) == "accepted"), key=lambda n: sharpes[n])
    records = []
    for n in range(24):
        ok = _status(n) == "accepted"
        rec = IterationRecord(iteration=n, status=_status(n), stage="ok" if ok else "lookahead",
                              scores={"metric": "sharpe", "splits": {"val": {"sharpe": float(sharpes[n])}}},
                              returns={"val": series[:, n].tolist()} if ok else None, in_population=n == best)
        if n == best:
            rec.instrument_returns = [(series[:, n] + 0.001 * k).tolist() for k in range(2)]
        records.append(rec)
    records.append(IterationRecord(iteration=24, status="rejected", stage="gate"))  # never scored
    wd = Workdir(root)
    _write(wd, records)
    return SimpleNamespace(wd=wd, state=SimpleNamespace(best=SimpleNamespace(iteration=best), trials=25),
                           histories=histories, seed=3, instrument_names=("AAA", "BBB"))


def _portfolio_folder(root: Path) -> SimpleNamespace:
    from alphaloop.tasks.portfolio.scoring import Panel

    histories = split_frames(universe_frames(n=4, days=900, seed=12))
    panel = Panel.of(histories)
    a, b = panel.windows["val"]
    bh = panel.bh[a + 1:b]
    rng = np.random.default_rng(22)
    series = rng.normal(0.0002, 0.004, (bh.size, 20))  # hedged books: little of the market in them
    series[:, 8] = series[:, 2]
    sharpes = series.mean(axis=0) / series.std(axis=0, ddof=1) * np.sqrt(252)
    best = max((n for n in range(20) if _status(n) == "accepted"), key=lambda n: sharpes[n])
    records = [IterationRecord(iteration=n, status=_status(n), stage="ok", metric="sharpe", task="portfolio",
                               scores={"metric": "sharpe", "splits": {"val": {
                                   "sharpe": float(sharpes[n]), "net_exposure": 0.02 if n == best else 0.5}}},
                               returns={"val": series[:, n].tolist()} if _status(n) == "accepted" else None,
                               in_population=n == best)
               for n in range(20)]
    wd = Workdir(root)
    _write(wd, records)
    return SimpleNamespace(wd=wd, state=SimpleNamespace(best=SimpleNamespace(iteration=best), trials=20),
                           histories=histories, seed=4)


def _forecast_folder(root: Path) -> tuple[Workdir, int]:
    from alphaloop.tasks.forecast.evidence import CLIM_LOSS_KEY, LOSS_KEY, ROLL_LOSS_KEY

    rng = np.random.default_rng(23)
    days = 300
    clim = rng.uniform(0.15, 0.35, days)
    roll = clim + rng.normal(0.0, 0.01, days)
    losses = clim[:, None] + rng.normal(-0.002, 0.02, (days, 18))
    losses[:, 5] = clim  # scores exactly as the climatology: leaves the test
    losses[:, 12] = losses[:, 6]
    skills = 1.0 - losses.mean(axis=0) / clim.mean()
    best = max((n for n in range(18) if _status(n) == "accepted"), key=lambda n: skills[n])
    splits = [{"val": {"rps_skill_mean": float(s)}, "train": {"rps_skill_mean": -0.01}} for s in skills]
    records = [IterationRecord(iteration=n, status=_status(n), stage="ok", metric="rps_skill_mean", task="forecast",
                               scores={"metric": "rps_skill_mean", "splits": splits[n]},
                               returns={LOSS_KEY: losses[:, n].tolist(), CLIM_LOSS_KEY: clim.tolist(),
                                        ROLL_LOSS_KEY: roll.tolist()} if _status(n) == "accepted" else None,
                               in_population=n == best)
               for n in range(18)]
    wd = Workdir(root)
    _write(wd, records)
    return wd, best


def _figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    from alphaloop.tasks.forecast.finish import write_forecast_statistics
    from alphaloop.tasks.portfolio.stats import write_statistics as portfolio_statistics
    from alphaloop.tasks.trade.finish import write_statistics as trade_statistics

    out = {}
    run = _trade_folder(tmp_path / "trade")
    trade_statistics(run)
    out["trade"] = {"stats": json.loads(run.wd.stats.read_text()), "printed": capsys.readouterr().out}
    run = _portfolio_folder(tmp_path / "portfolio")
    portfolio_statistics(run)
    out["portfolio"] = {"stats": json.loads(run.wd.stats.read_text()), "printed": capsys.readouterr().out}
    wd, best = _forecast_folder(tmp_path / "forecast")
    write_forecast_statistics(wd, 18, best, seed=5)
    out["forecast"] = {"stats": json.loads(wd.forecast_stats.read_text()), "printed": capsys.readouterr().out}
    return json.loads(json.dumps(out))


def _rounded(x: object) -> object:
    """Floats to 12 significant digits: a summation order may move the last bits, never a printed digit."""
    if isinstance(x, float):
        return float(f"{x:.12g}")
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def test_end_of_run_statistics_keep_every_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    got = _figures(tmp_path, capsys)
    if os.environ.get("ALPHALOOP_PIN_STATS") == "1":
        PINNED.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    pinned = json.loads(PINNED.read_text())
    for task in ("trade", "portfolio", "forecast"):
        assert got[task]["printed"] == pinned[task]["printed"], task
        assert _rounded(got[task]["stats"]) == _rounded(pinned[task]["stats"]), task
    assert pinned["portfolio"]["stats"]["universe"]["cash"]["spa_pvalues"] is not None  # the neutral pick's test
    assert "rolling climatology" in pinned["forecast"]["printed"]
