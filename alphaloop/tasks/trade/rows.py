"""The trade task's results.tsv row: validation and train figures beside buy and hold, and the novelty verdict."""

from __future__ import annotations

from alphaloop.run.records import IterationRecord
from alphaloop.run.rows import describe


def row_start(record: IterationRecord) -> str:
    """Every task's results.tsv row opens with the iteration, its parent, its status (``+top`` in the
    population) and the stage that judged it."""
    parent = "" if record.parent is None else str(record.parent)
    status = record.status + ("+top" if record.in_population else "")
    return f"{record.iteration}\t{parent}\t{status}\t{record.stage}"


def novelty_cell(record: IterationRecord) -> str:
    """The admission verdict's cell: new, duplicate:N, near_copy:N or bh_in_disguise."""
    kind = "bh_in_disguise" if record.disguised else record.novelty_kind
    return kind + (f":{record.novelty['member']}" if kind in ("duplicate", "near_copy") else "")


def tsv_row(record: IterationRecord, metric: str, baseline: str) -> str:
    """One results.tsv line of a trade record (derived from the record alone, so replays match)."""
    v, t = record.split("val"), record.split("train")
    val = f"{v[metric]:.6f}" if v else ""
    bh = v.get(f"bh_{metric}") if v else None
    val_bh = f"{bh:.6f}" if bh is not None else ""  # buy and hold has a figure for sharpe and total_return
    train = f"{t[metric]:.6f}" if t else ""
    trades = f"{v['round_trips']:.0f}" if v else ""
    what = describe(record, baseline=baseline).replace(chr(9), " ")
    return f"{row_start(record)}\t{val}\t{val_bh}\t{train}\t{trades}\t{novelty_cell(record)}\t{what}\n"
