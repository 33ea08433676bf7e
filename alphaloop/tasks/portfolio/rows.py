"""The portfolio task's results.tsv: validation and train figures beside the equal-weight buy and hold,
the book's gross and net exposure and turnover on validation, and the novelty verdict."""

from __future__ import annotations

from typing import Any

from alphaloop.tasks.trade.rows import novelty_cell, row_start

TSV_HEADER = ("n\tparent\tstatus\tstage\tval_{m}\tval_bh_{m}\ttrain_{m}\tval_gross\tval_net\tval_turnover\t"
              "novelty\tdescription\n")


def tsv_header(metric: str) -> str:
    return TSV_HEADER.format(m=metric)


def bh_value(split: dict | None, metric: str) -> float | None:
    """The equal-weight buy and hold's figure of ``metric``: its own excess over itself is 0."""
    if not split:
        return None
    if metric == "information_ratio":
        return 0.0
    value = split.get(f"bh_{metric}")
    return float(value) if isinstance(value, int | float) else None


def tsv_row(record: Any, metric: str, description: str) -> str:
    """One results.tsv line of a portfolio record (derived from the record alone, so replays match)."""
    v, t = record.split("val"), record.split("train")

    def f(d: dict | None, key: str, spec: str = ".6f") -> str:
        value = (d or {}).get(key)
        return format(value, spec) if isinstance(value, int | float) else ""

    bh = bh_value(v, metric)
    return (f"{row_start(record)}\t{f(v, metric)}\t{'' if bh is None else format(bh, '.6f')}\t{f(t, metric)}\t"
            f"{f(v, 'gross_exposure', '.3f')}\t{f(v, 'net_exposure', '.3f')}\t{f(v, 'turnover', '.2f')}\t"
            f"{novelty_cell(record)}\t{description.replace(chr(9), ' ')}\n")
