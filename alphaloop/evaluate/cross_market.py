"""Score population members on a second instrument, split on the primary data's own dates.

Why: a strategy fitted to one index's path is more believable if it also holds on a related market
over the same periods. The second market is prepared like the primary data (``validate``) and cut
at the primary manifest's train/validation boundaries; everything after the validation end is
dropped before anything runs, so its test period is never read either.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from rich.table import Table

from alphaloop.data.frozen import MIN_SPLIT_ROWS, DataError, download_yfinance, is_nasdaq, sample_frame, validate
from alphaloop.evaluate.backtest import DEFAULT_COST_BPS
from alphaloop.evaluate.scoring import DEFAULT_METRIC, History, score
from alphaloop.evaluate.stress import Runner, StressError, run_signals
from alphaloop.present.text import clip, fmt, rich, safe
from alphaloop.present.ui import warn_loudly


def _date_split(frame: pd.DataFrame, manifest: dict, label: str) -> History:
    """Train and validation on the primary's dates; rows after the validation end are discarded."""
    splits = manifest["splits"]
    start = pd.Timestamp(splits["train"]["start"])
    train_end, val_end = pd.Timestamp(splits["train"]["end"]), pd.Timestamp(splits["val"]["end"])
    idx = frame.index
    parts = {
        "train": frame[(idx >= start) & (idx <= train_end)],
        "val": frame[(idx > train_end) & (idx <= val_end)],
    }
    short = {k: len(v) for k, v in parts.items() if len(v) < MIN_SPLIT_ROWS}
    if short:
        desc = ", ".join(f"{k} has {v} rows" for k, v in short.items())
        raise DataError(f"{label}: too few rows on the primary's split dates ({desc}; need {MIN_SPLIT_ROWS})")
    return History.from_splits(parts)


def _other_sample(manifest: dict) -> str:
    """The bundled sample that is not the primary instrument (NASDAQ unless the primary is it)."""
    return "SPY" if is_nasdaq(str(manifest.get("ticker", ""))) else "NASDAQ"


def _sample_history(manifest: dict) -> tuple[History, str]:
    raw, name = sample_frame(_other_sample(manifest))
    frame, _ = validate(raw, label=name)
    return _date_split(frame, manifest, name), name


def load_cross_history(manifest: dict, ticker: str | None) -> tuple[History, str]:
    """The second market's train+validation history and a label naming instrument and source.

    Offline (``ticker`` None): the bundled sample of the other index. Online: ``ticker`` from
    Yahoo Finance, falling back loudly to the sample when the download or its data fails.
    """
    if not ticker:
        return _sample_history(manifest)
    try:
        raw = download_yfinance(ticker, manifest["splits"]["train"]["start"])
        frame, repairs = validate(raw, label=ticker)
        history = _date_split(frame, manifest, ticker)
    except DataError as exc:
        history, name = _sample_history(manifest)
        warn_loudly("second market: falling back to sample data",
                    f"{exc}\nscoring the population on the bundled {name} instead of {ticker}")
        return history, f"{name}, a fallback: {ticker} was unavailable"
    note = f", {len(repairs)} repair(s)" if repairs else ""
    return history, f"{ticker} (yfinance{note})"


def score_cross(regions: Mapping[int, str], history: History, runner: Runner, metric: str = DEFAULT_METRIC,
                cost_bps: float = DEFAULT_COST_BPS) -> dict[int, dict]:
    """Per iteration: train and validation metrics on the second market (each with its dates).

    One runner call per member (each is its own code). A member that fails there gets ``error``.
    """
    idx = history.frame.index
    dates = {name: {"start": str(idx[w.start].date()), "end": str(idx[w.stop - 1].date())}
             for name, w in history.windows.items()}
    out: dict[int, dict] = {}
    for iteration, region in regions.items():
        try:
            (signals,) = run_signals(runner, region, [history.frame])
        except (StressError, ValueError) as exc:
            out[int(iteration)] = {"error": safe(exc)}  # may quote the candidate; stored clean for every reader
            continue
        scores = score(history, signals, metric=metric, folds=0, cost_bps=cost_bps)
        out[int(iteration)] = {name: {**m, **dates[name]} for name, m in scores.splits.items()}
    return out


def _fmt(value: object, kind: str) -> str:
    """Returns as signed percentages to 1 decimal, ratios to 2 (``text.fmt``)."""
    return fmt(value, 1, pct=True, sign=True) if kind == "pct" else fmt(value, 2)


def format_cross(result: dict) -> Table:
    """Rich table of ``cross_market.json``: one row per member, columns labelled with their split."""
    metric = result.get("metric", DEFAULT_METRIC)
    members = result.get("members", {})
    first = next((m for m in members.values() if "val" in m), None)
    span = (f"train {first['train']['start']}..{first['train']['end']}, val {first['val']['start']}.."
            f"{first['val']['end']}" if first and "start" in first.get("val", {}) else "primary's split dates")
    errors = [f"iter {it} failed: {rich(clip(m['error'], 300))}" for it, m in members.items() if "error" in m]
    table = Table(title=f"Second market: {rich(result.get('label', '?'))}",
                  caption="\n".join([f"{span}; this market's test period is never read, not even by final", *errors]))
    for head in ("iter", f"train {metric}", f"val {metric}", "val return", "val max DD", "val B&H return",
                 "val B&H max DD"):
        table.add_column(head, justify="right")
    for it, m in members.items():
        if "error" in m:
            table.add_row(str(it), "[red]failed[/]", *["-"] * 5)
            continue
        tr, va = m["train"], m["val"]
        kind = "pct" if metric in ("total_return", "cagr") else "num"
        table.add_row(str(it), _fmt(tr.get(metric), kind), _fmt(va.get(metric), kind),
                      _fmt(va.get("total_return"), "pct"), _fmt(va.get("max_drawdown"), "pct"),
                      _fmt(va.get("bh_total_return"), "pct"), _fmt(va.get("bh_max_drawdown"), "pct"))
    return table
