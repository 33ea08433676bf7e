"""Where the look-ahead probes cut the history: rows a one-bar leak cannot avoid, drawn per run.

A one-bar leak (row r reads bar r + 1) shows in a probe exactly when the probe's cut is a row where
the leak is active, so the cut rows decide what is caught. An attacker keys a leak cheaply to a
place or a calendar class; the plan puts a cut in every such class at once, and draws which row of
the class from the run's secret nonce, so no row is safe to leak on:

* ``early``: row ``EARLY_CUT`` (a backward fill of the first rows; any leak active from the start).
* ``warm-up``: inside the longest warm-up (a leak hidden in the NaN rows of a rolling window).
* ``band j``: ``DRAWN_CUTS`` = 5 equal bands of rows; band j's cut (a truncation) is drawn uniformly among the rows
  of band j with weekday ``w_j`` and week of month ``m_j`` (days 1-7, 8-14, 15-21, 22-28, 29-31),
  where (w_j) and (m_j) are permutations drawn per run (a Latin assignment): the five cuts fall on
  five different weekdays and five different weeks of the month, whichever the nonce.
* ``month start`` / ``year end``: one first trading row of a month and one last trading row of a
  year (a quarter and a month end too; a quarter end when no year ends early enough), drawn in the
  first ``SPECIAL_SHARE`` of the rows or ``SPECIAL_MIN_ROWS`` (cheap: a cut costs its length); the
  month start takes the row parity the other fixed cuts lack, so odd and even rows are both cut.
* ``validation``: a row drawn inside the validation window when no band cut fell there.
* ``tail``: the last row that has a successor, at full length with only the last bar replaced, so
  any leak active on the last rows (rows after any date, the validation or test split's end) shows.
* ``focus``: ``FOCUS_CUTS`` rows drawn inside a focus window (final's test split).

What is always caught (whatever the nonce), for a leak of one bar or more active on a set A of rows:
A holds the last row with a successor, or row ``EARLY_CUT``; A holds every row of a weekday, of a
week of the month, every month start, every month or quarter end, every odd or every even row.
What stays a chance: a leak keyed to a class AND a place (first week of the month in the last year
only), to one day of the month, or to one month of the year, is caught when some cut lands on it;
``bench/bench_lookahead.py --catch`` measures those chances over many nonces (docs/trust.md
quotes them). For an arbitrary set A with a share p_j of band j: the band cut lands in A with
probability about p_j (a row of days 29-31 is 2.5x likelier than a uniform draw, the other days
0.87x, since the five weeks are equally likely but unequally long), so A escapes every band with
probability at most about prod_j (1 - 0.87 p_j) <= (1 - 0.87 p)^5 (the other cuts only add catches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

EARLY_CUT = 4  # a few rows in: a backward fill of the first rows' NaN shows here
MIN_WARMUP_FOR_CUT = 10  # a shorter warm-up is already covered by the early cut
DRAWN_CUTS = 5  # bands of rows, one Latin-assigned cut each
FOCUS_CUTS = 3  # cuts drawn inside a focus window (final's test split)
SPECIAL_SHARE = 0.05  # month start and year/quarter end cuts are drawn in this first share of the rows
SPECIAL_MIN_ROWS = 260  # ... or at least this many rows (a year of days: a year end is in reach)
WEEKS = 5  # weeks of the month: days 1-7, 8-14, 15-21, 22-28, 29-31
LATIN_TRIES = 60  # drawn assignments tried before a band's class is relaxed (short or gappy histories)


@dataclass(frozen=True)
class Cut:
    """One probe: rows ``<= row`` must reproduce the full run."""

    row: int
    kind: str  # "truncate" | "perturb"
    why: str  # which rule placed it, for the record
    full_length: bool = False  # a perturbed probe that keeps every row (the tail)


def band_edges(n: int, k: int = DRAWN_CUTS) -> tuple[np.ndarray, np.ndarray]:
    """First and last row of each of ``k`` equal bands of rows ``0 .. n - 2`` (a cut needs a successor)."""
    edges = np.linspace(0, n - 1, k + 1)
    lo = np.ceil(edges[:-1]).astype(np.int64)
    hi = np.maximum(lo, np.ceil(edges[1:]).astype(np.int64) - 1)
    return lo, hi


def calendar_classes(index: pd.Index) -> tuple[np.ndarray, np.ndarray] | None:
    """Each row's weekday and week of the month (0 for days 1-7 .. 4 for days 29-31); None without dates."""
    if not isinstance(index, pd.DatetimeIndex):
        return None
    return index.day_of_week.to_numpy(), (index.day.to_numpy() - 1) // 7


def latin_cuts(index: pd.Index, rng: np.random.Generator, k: int = DRAWN_CUTS,
               skip: int = EARLY_CUT) -> list[tuple[int, str]]:
    """One cut per band, the bands' weekdays and weeks of the month drawn as permutations (see the
    module docstring); rows ``<= skip`` (the early cut's) are left out; a class a band lacks is
    relaxed (weekday first), and without dates the cut is uniform in its band. Returns (row, what
    was drawn)."""
    n = len(index)
    if n < 2:
        return []
    lo, hi = band_edges(n, k)
    classes = calendar_classes(index)
    if classes is not None:
        weekday, week = classes
        days, weeks = np.unique(weekday[: n - 1]), np.unique(week[: n - 1])
        for use_day in (True, False):
            for _ in range(LATIN_TRIES if use_day else 1):
                d, w = rng.permutation(days), rng.permutation(weeks)
                pools = []
                for j, (a, b) in enumerate(zip(lo, hi, strict=True)):
                    ok = week[a: b + 1] == w[j % len(w)]
                    if use_day:
                        ok &= weekday[a: b + 1] == d[j % len(d)]
                    pool = np.flatnonzero(ok) + a
                    pools.append(pool[pool > skip])
                if all(p.size for p in pools):
                    return [(int(rng.choice(p)), _class_name(j, d[j % len(d)] if use_day else None, w[j % len(w)]))
                            for j, p in enumerate(pools)]
    return [(int(rng.integers(a, b + 1)), f"band {j}") for j, (a, b) in enumerate(zip(lo, hi, strict=True))]


def _class_name(band: int, weekday: int | None, week: int) -> str:
    day = "" if weekday is None else f"{('Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun')[int(weekday)]}, "
    return f"band {band}: {day}days {7 * int(week) + 1}-{min(31, 7 * int(week) + 7)}"


def _special_rows(index: pd.Index) -> dict[str, np.ndarray]:
    """Rows that open a month and rows that close a quarter (each with a successor)."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 3:
        return {}
    month = index.year.to_numpy() * 12 + index.month.to_numpy()
    quarter = index.year.to_numpy() * 4 + (index.month.to_numpy() - 1) // 3
    starts = np.flatnonzero(np.diff(month) != 0) + 1
    ends = np.flatnonzero(np.diff(quarter) != 0)
    return {"month start": starts[starts < len(index) - 1], "quarter end": ends}


def cut_plan(index: pd.Index, warmup: int, rng: np.random.Generator, window: slice | None = None,
             focus: slice | None = None) -> list[Cut]:
    """Every cut of one instrument's probes (see the module docstring), each row once."""
    n = len(index)
    last = n - 2
    if last < 0:
        return []
    cuts: list[Cut] = [Cut(EARLY_CUT, "truncate", "early")]
    if warmup >= MIN_WARMUP_FOR_CUT:
        cuts.append(Cut(warmup // 2, "truncate", "warm-up"))
    cuts += [Cut(row, "truncate", why) for row, why in latin_cuts(index, rng)]
    cheap = max(EARLY_CUT + 2, int(SPECIAL_SHARE * n), SPECIAL_MIN_ROWS)
    parities = {EARLY_CUT % 2, last % 2}
    year_ends = np.flatnonzero(np.diff(index.year.to_numpy()) != 0) if isinstance(index, pd.DatetimeIndex) else []
    for name, rows in _special_rows(index).items():
        pool = rows[(rows > EARLY_CUT) & (rows < cheap)]
        if name == "quarter end" and np.isin(pool, year_ends).any():  # a year end is a quarter end too
            pool, name = pool[np.isin(pool, year_ends)], "year end"
        if name == "month start" and len(parities) == 1:
            pool = pool[pool % 2 != EARLY_CUT % 2] if (pool % 2 != EARLY_CUT % 2).any() else pool
        pool = pool if pool.size else rows[:1]
        if pool.size:
            cuts.append(Cut(int(rng.choice(pool)), "truncate", name))
    if window is not None:
        lo, hi = max(0, window.start or 0), min(last - 1, (window.stop or n) - 1)
        if hi >= lo and not any(lo <= c.row <= hi for c in cuts):
            cuts.append(Cut(int(rng.integers(lo, hi + 1)), "truncate", "validation"))
    if focus is not None:
        lo, hi = max(0, focus.start or 0), min(last, (focus.stop or n) - 1)
        if hi >= lo:
            cuts += [Cut(int(c), "truncate", "focus") for c in rng.integers(lo, hi + 1, FOCUS_CUTS)]
    cuts.append(Cut(last, "perturb", "tail", full_length=True))
    kept: dict[int, Cut] = {}
    for cut in cuts:  # one probe a row; a perturbation wins over a truncation of the same row
        if 0 <= cut.row <= last and (cut.row not in kept or cut.kind == "perturb"):
            kept[cut.row] = cut
    return sorted(kept.values(), key=lambda c: (c.kind != "perturb", c.row))
