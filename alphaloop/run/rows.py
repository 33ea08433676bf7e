"""One iteration record as text: a results.tsv row, a description, the outcome line, a learnings entry.

Each is derived from the record alone, so a replay after a kill writes the same text.
"""

from __future__ import annotations

from alphaloop.evaluate.scoring import beside_bh
from alphaloop.present.text import clip
from alphaloop.run.learnings import Entry
from alphaloop.run.records import IterationRecord
from alphaloop.tasks.forecast import rows as forecast_rows
from alphaloop.tasks.forecast.rows import is_forecast


def tsv_header(metric: str) -> str:
    """results.tsv's header: every figure column names its split and metric, buy and hold beside validation."""
    if is_forecast(metric):
        return forecast_rows.tsv_header()
    return (f"n\tparent\tstatus\tstage\tval_{metric}\tval_bh_{metric}\ttrain_{metric}\tval_round_trips\t"
            "novelty\tdescription\n")


def describe(record: IterationRecord, limit: int = 100) -> str:
    """A one-line description of what an iteration tried, for tables, summaries and the report."""
    if record.iteration == 0:
        return ("baseline (the starting forecaster)" if is_forecast(record.metric)
                else "baseline (the region of the starting trade.py)")
    p = record.proposal or {}
    text = p.get("change") or p.get("hypothesis") or p.get("error") or ""
    return clip(text, limit)


def tsv_row(record: IterationRecord, metric: str) -> str:
    """One results.tsv line, kept in the state so the file never needs all records reread."""
    v, t = record.split("val"), record.split("train")
    if is_forecast(metric):
        parent = "" if record.parent is None else str(record.parent)
        status = record.status + ("+top" if record.in_population else "")
        return (f"{record.iteration}\t{parent}\t{status}\t{record.stage}\t{forecast_rows.tsv_cells(v, t)}\t"
                f"{describe(record).replace(chr(9), ' ')}\n")
    val = f"{v[metric]:.6f}" if v else ""
    bh = v.get(f"bh_{metric}") if v else None
    val_bh = f"{bh:.6f}" if bh is not None else ""  # buy and hold has a figure for sharpe and total_return
    train = f"{t[metric]:.6f}" if t else ""
    trades = f"{v['round_trips']:.0f}" if v else ""
    parent = "" if record.parent is None else str(record.parent)
    status = record.status + ("+top" if record.in_population else "")
    kind = "bh_in_disguise" if record.disguised else record.novelty_kind
    if kind in ("duplicate", "near_copy"):
        kind += f":{record.novelty['member']}"
    what = describe(record).replace(chr(9), " ")
    return (f"{record.iteration}\t{parent}\t{status}\t{record.stage}\t{val}\t{val_bh}\t{train}\t{trades}\t"
            f"{kind}\t{what}\n")


def outcome_line(record: IterationRecord, metric: str) -> str:
    """The latest outcome as the next prompt and the live view show it."""
    n = record.iteration
    if not record.accepted:  # the reason may quote the candidate's own text: flatten and clip it
        return f"iter {n} rejected at {record.stage}: {clip(record.reason, 300)}"
    where = "entered the population" if record.in_population else "did not beat the population"
    if record.duplicate_of is not None:
        where = f"holds the same validation positions as iter {record.duplicate_of}, so it adds nothing"
    elif record.disguised:
        where = f"kept out: {record.bh_disguise['reason']}"
    elif record.novelty_kind == "near_copy":
        where = record.novelty["reason"]
    bh = beside_bh(record.split("val"), metric) if record.scores else ""
    if is_forecast(metric):
        bh += f", {forecast_rows.figures_note(record.split('val'))}"
    return f"iter {n} accepted, val {metric} {record.val_metric:.3f}{bh}; {where}"


def entry_from_record(record: IterationRecord, metric: str) -> Entry:
    """The learnings entry for one iteration, derived from its record alone (so replays match)."""
    p = record.proposal or {}
    if record.accepted:
        val, train = record.split("val"), record.split("train")
        where = "entered the population" if record.in_population else "not in the top-K"
        if record.duplicate_of is not None:
            where += f" (same validation positions as iter {record.duplicate_of})"
        elif record.disguised:
            where += " (buy and hold in disguise)"
        elif record.novelty_kind == "near_copy":
            where += f" (near copy of iter {record.novelty['member']})"
        extra = f", {forecast_rows.figures_note(val)}" if is_forecast(metric) else ""
        headline = (f"accepted, val {metric} {val[metric]:.3f}{beside_bh(val, metric)} "
                    f"(train {train[metric]:.3f}){extra}, {where}")
    else:
        headline = f"rejected at {record.stage}: {clip(record.reason, 200)}"
    val_split = record.split("val") or {}
    return Entry(
        iteration=record.iteration, parent=record.parent, headline=headline,
        hypothesis=p.get("hypothesis", ""), change=p.get("change", ""), expected=p.get("expected", ""),
        verdict=record.grading or "", held=record.hypothesis_held,
        status=record.status, stage=record.stage, reason=record.reason, metric=metric,
        val=_number(val_split.get(metric)), bh=_number(val_split.get(f"bh_{metric}")),
        selection=_number(record.selection), entered=record.entered, duplicate=record.duplicate_of is not None,
    )


def _number(value: object) -> float | None:
    """A figure the notes can compare (a per-horizon list or a missing value is not one)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
