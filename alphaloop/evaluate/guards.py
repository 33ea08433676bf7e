"""Degenerate and reward-hacking guards, run on a candidate that passed the look-ahead check.

Each guard returns a reason a person can act on. Trade-based guards read the validation split,
where selection happens. The invariance probes are the one home of the behavioural checks that
the signals follow the prices, not where the bars sit: the probe frames are built here
(``invariance_probes``) and judged here (``judge_invariance``). One pipeline stage, the look-ahead
stage, runs them in the same sandbox run as the look-ahead probes, confirms a difference by a lone
rerun and judges them once; ``check_guards`` only places that finding among the other guards:

* ``date_shift``: the same bars with dates shifted by ``DATE_SHIFT_YEARS``, a whole calendar cycle
  that keeps every weekday, month and day of month (and leap years) but moves every year, so only a
  strategy that reads the calendar year or specific dates changes its signals. A static look at the
  source (date-like literals) sits beside it.
* ``prepend``: the same bars with a seeded random-walk history of ``PREPEND_ROWS`` earlier bars
  glued before the first one; ``trim``: the same bars with ``TRIM_ROWS`` rows removed at the start.
  On the shared bars, after the warm-up and ``SETTLE_ROWS`` more (for ewm and other long memories),
  the signals must be the same. A strategy keyed on row numbers (``np.arange(len(df))``, ``range(len(df))``, a
  literal tuple of the rows of the best validation days) moves with the rows and is caught, the
  way the date shift catches calendar years. Prefix and trim lengths are drawn from the region's
  seed, so a strategy cannot undo a known offset.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alphaloop.evaluate.backtest import TRADING_DAYS
from alphaloop.evaluate.probes import PRICE_COLUMNS, FrameLike

PREPEND_ROWS = (50, 150)  # range of the seeded length of the prepended history
TRIM_ROWS = (20, 60)  # range of the seeded number of rows removed at the start
SETTLE_ROWS = 300  # after the warm-up: min_periods windows fill up and ewm forgets a different start
DATE_SHIFT_YEARS = 28  # the Gregorian calendar repeats within 1901-2099: same weekdays, months, leap years
DATE_SHIFT_DAYS = 10227  # DATE_SHIFT_YEARS in days: 1461 whole weeks
DATE_CALLS = frozenset({"Timestamp", "to_datetime", "datetime", "date", "DatetimeIndex", "date_range",
                        "bdate_range", "Period", "period_range", "datetime64"})
DATE_ATTRS = frozenset({"year", "isocalendar", "to_period", "strftime"})  # what a year is read from
MONTHS = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
DATE_PATTERNS = (
    re.compile(r"\s*(19|20)\d{2}([-/._]\d{1,2}([-/._]\d{1,2})?)?\s*"),  # 2008, 2008-09, 2008-09-15
    re.compile(r"\s*\d{1,2}[-/.]\d{1,2}[-/.](19|20)\d{2}\s*"),  # 15/09/2008, 09-15-2008
)
DATE_SEARCH = (
    re.compile(r"(?<!\d)(19|20)\d{2}-\d{2}-\d{2}(?!\d)"),
    re.compile(rf"\b{MONTHS}\s+\d{{1,2}},?\s+(19|20)\d{{2}}\b", re.IGNORECASE),
    re.compile(rf"\b\d{{1,2}}\s+{MONTHS}\s+(19|20)\d{{2}}\b", re.IGNORECASE),
)


@dataclass(frozen=True)
class GuardLimits:
    """Thresholds of the degenerate-strategy guards (sane defaults for daily bars)."""

    min_round_trips_per_year: float = 1.0
    max_turnover_per_year: float = 100.0  # position changes a year; 126 would be every other day
    always_long_exposure: float = 0.99


@dataclass
class GuardReport:
    """Every guard that failed, in priority order, and the values they looked at."""

    failures: list[tuple[str, str]] = field(default_factory=list)  # (guard, reason)
    values: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def reason(self) -> str:
        if not self.failures:
            return ""
        first = self.failures[0][1]
        others = [name for name, _ in self.failures[1:]]
        return first + (f" (also failed: {', '.join(others)})" if others else "")


def _is_year(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1900 <= value <= 2099


def _is_yyyymmdd(value: object) -> bool:
    if not isinstance(value, int) or isinstance(value, bool) or not 19000101 <= value <= 20991231:
        return False
    month, day = value // 100 % 100, value % 100
    return 1 <= month <= 12 and 1 <= day <= 31


def _date_string(text: str) -> bool:
    return any(p.fullmatch(text) for p in DATE_PATTERNS) or any(p.search(text) for p in DATE_SEARCH)


def _names(node: ast.AST) -> set[str]:
    """Attribute, variable and subscript-key names used anywhere under ``node``."""
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute):
            out.add(sub.attr)
        elif isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            out.add(sub.value)
    return out


def _years_in(node: ast.AST) -> list[int]:
    return [sub.value for sub in ast.walk(node) if isinstance(sub, ast.Constant) and _is_year(sub.value)]


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def static_date_findings(region: str) -> list[str]:
    """Date-like literals in the source: date strings, fixed Timestamps, years compared with dates."""
    try:
        tree = ast.parse(region)
    except SyntaxError:
        return []
    found: dict[tuple[int, str], None] = {}

    def note(node: ast.AST, text: str) -> None:
        found[(getattr(node, "lineno", 0), text)] = None

    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str) and _date_string(node.value):
                note(node, f"date-like string {node.value!r}")
            elif _is_yyyymmdd(node.value):
                note(node, f"date-like number {node.value}")
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            consts = [a for a in [*node.args, *(k.value for k in node.keywords)] if isinstance(a, ast.Constant)]
            if name in DATE_CALLS and consts:
                note(node, f"fixed date {name}({', '.join(repr(c.value) for c in consts)})")
            elif name in ("isin", "between") and isinstance(node.func, ast.Attribute):
                years = _years_in(ast.Module(body=[ast.Expr(a) for a in node.args], type_ignores=[]))
                if years and _names(node.func.value) & DATE_ATTRS:
                    note(node, f"dates matched against year(s) {sorted(set(years))}")
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            years = [y for side in sides for y in _years_in(side)]
            if years and any(_names(side) & DATE_ATTRS for side in sides):
                note(node, f"dates compared with year(s) {sorted(set(years))}")
    return [f"line {line}: {text}" for line, text in sorted(found)]


def date_shifted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The same bars with every date moved ``DATE_SHIFT_YEARS`` (forward, or back if that would pass 2099)."""
    out = frame.copy()
    days = DATE_SHIFT_DAYS if frame.index.max().year + DATE_SHIFT_YEARS <= 2099 else -DATE_SHIFT_DAYS
    out.index = pd.DatetimeIndex(frame.index + pd.Timedelta(days=days), name=frame.index.name)
    return out


def date_dependence(full: FrameLike, shifted: FrameLike, index: pd.Index) -> str | None:
    """Reason when signals change once the dates move by ``DATE_SHIFT_YEARS``, else None."""
    a, b = np.asarray(full.signals), np.asarray(shifted.signals)
    if a.shape != b.shape:
        return f"signals have {b.size} values on date-shifted bars instead of {a.size}"
    diff = a != b
    if not diff.any():
        return None
    row = int(np.argmax(diff))
    return (f"signals change on {int(diff.sum())} bar(s) (first {index[row].date()}) when the same bars "
            f"carry dates shifted by {DATE_SHIFT_YEARS} years (same weekdays and months): the strategy reads the "
            f"calendar year or specific dates")


@dataclass(frozen=True)
class InvarianceProbe:
    """A frame holding the full history's bars ``start ..`` at rows ``start + offset ..``."""

    frame: pd.DataFrame
    kind: str  # "date_shift" | "prepend" | "trim"
    start: int  # first full-history row the probe holds
    offset: int  # probe row = full row + offset

    def describe(self) -> dict:
        """JSON-serialisable summary for the iteration record."""
        return {"kind": self.kind, "rows": int(len(self.frame)), "start": int(self.start), "offset": int(self.offset)}


def prepended_frame(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """``rows`` earlier bars glued before the first: a seeded random walk into the first close.

    Closes walk backwards from the first close with the first year's own daily volatility; the
    other prices keep a real bar's ratio to its close (so High >= Low still holds), volumes are
    drawn from real bars, and the dates are the business days before the first date.
    """
    rng = np.random.default_rng(seed)
    n = len(frame)
    close = frame["Close"].to_numpy(dtype=np.float64)
    logret = np.diff(np.log(close[: min(n, 253)]))
    vol = float(np.std(logret)) if logret.size > 1 and np.isfinite(logret).all() else 0.01
    back = np.cumsum(rng.normal(0.0, max(vol, 1e-4), rows))[::-1]  # log distance of each new bar to bar 0
    new_close = close[0] * np.exp(back)
    donors = rng.integers(0, n, rows)  # real bars lending their shape (price ratios, volume)
    prefix = frame.iloc[donors].copy()
    for col in frame.columns:
        values = frame[col].to_numpy()
        if col in PRICE_COLUMNS and np.issubdtype(values.dtype, np.number):
            prefix[col] = values[donors] / close[donors] * new_close
    if "Close" in prefix.columns:
        prefix["Close"] = new_close
    prefix.index = pd.bdate_range(end=frame.index[0] - pd.Timedelta(days=1), periods=rows, name=frame.index.name)
    return pd.concat([prefix, frame])


def invariance_probes(frame: pd.DataFrame, seed: int) -> list[InvarianceProbe]:
    """The date-shifted frame and the two position probes (history prepended, rows removed)."""
    rng = np.random.default_rng([seed, 11])
    probes = [InvarianceProbe(date_shifted_frame(frame), "date_shift", 0, 0)]
    if "Close" in frame.columns and len(frame) > 2:
        rows = int(rng.integers(PREPEND_ROWS[0], PREPEND_ROWS[1] + 1))
        probes.append(InvarianceProbe(prepended_frame(frame, rows, int(rng.integers(2**31))), "prepend", 0, rows))
    trim = int(rng.integers(TRIM_ROWS[0], TRIM_ROWS[1] + 1))
    if len(frame) > 2 * trim:
        probes.append(InvarianceProbe(frame.iloc[trim:], "trim", trim, -trim))
    return probes


def position_dependence(full: FrameLike, probe: InvarianceProbe, result: FrameLike, index: pd.Index,
                        warmup: int) -> str | None:
    """Reason when the shared bars get other signals once history is prepended or rows removed."""
    a = np.asarray(full.signals)
    b = np.asarray(result.signals)
    first = max(probe.start + warmup + SETTLE_ROWS, a.size // 2)  # full-history row from which both must agree
    if b.size != len(probe.frame) or first >= a.size:
        return None if first >= a.size else f"signals have {b.size} values on the {probe.kind} probe"
    shared = b[first + probe.offset: a.size + probe.offset]
    diff = a[first:] != shared
    if not diff.any():
        return None
    row = first + int(np.argmax(diff))
    how = (f"{probe.offset} earlier bars are prepended to the history" if probe.kind == "prepend"
           else f"the first {probe.start} rows are removed")
    return (f"signals depend on row positions, not on prices: on {int(diff.sum())} of {diff.size} shared bar(s) "
            f"after the warm-up (first {index[row].date()}: {a[row]:g} on the full history, "
            f"{shared[row - first]:g} when {how}) the same bars get different signals; compute from prices and "
            f"rolling windows, never from row numbers (df.index positions, range(len(df)), np.arange, literal "
            f"lists of rows) or expanding statistics over the whole history since its first row")


def probe_failure(full: FrameLike, probe: InvarianceProbe, result: FrameLike, index: pd.Index,
                  warmup: int) -> tuple[str, str] | None:
    """``(guard, reason)`` when one invariance probe's signals moved, else None."""
    if probe.kind == "date_shift":
        moved = date_dependence(full, result, index)
        return ("date_dependence", moved) if moved else None
    moved = position_dependence(full, probe, result, index, warmup)
    return ("position_dependence", moved) if moved else None


def invariance_failures(full: FrameLike, probes: Sequence[tuple[InvarianceProbe, FrameLike]], index: pd.Index,
                        warmup: int) -> list[tuple[str, str]]:
    """Every invariance guard that failed, the first reason of each, in the probes' order."""
    found: dict[str, str] = {}
    for probe, result in probes:
        failed = probe_failure(full, probe, result, index, warmup)
        if failed and failed[0] not in found:
            found[failed[0]] = failed[1]
    return list(found.items())


@dataclass(frozen=True)
class InvarianceFindings:
    """The invariance probes' verdict, judged once by the stage that ran them, for ``check_guards``."""

    kinds: frozenset[str] = frozenset()  # the probe kinds that ran ("date_shift", "prepend", "trim")
    failures: tuple[tuple[str, str], ...] = ()  # (guard, reason), the first reason of each guard


def judge_invariance(full: FrameLike, probes: Sequence[tuple[InvarianceProbe, FrameLike]], index: pd.Index,
                     warmup: int) -> InvarianceFindings:
    """Judge each probe paired with the candidate's (confirmed) result on it."""
    return InvarianceFindings(frozenset(probe.kind for probe, _ in probes),
                              tuple(invariance_failures(full, probes, index, warmup)))


def non_finite(features: Mapping[str, np.ndarray], index: pd.Index, windows: Sequence[slice]) -> dict[str, dict]:
    """Columns with infinite values inside the scoring windows after their own warm-up."""
    n = len(index)
    scored = np.zeros(n, dtype=bool)
    for w in windows:
        scored[w] = True
    out = {}
    for name, values in features.items():
        v = np.asarray(values, dtype=np.float64)
        nan = np.isnan(v)
        warm = int(np.argmax(~nan)) if not nan.all() else n
        bad = np.isinf(v) & scored
        bad[:warm] = False
        if bad.any():
            out[name] = {"rows": int(bad.sum()), "first": str(index[int(np.argmax(bad))].date())}
    return out


def trade_guards(val: Mapping[str, float], limits: GuardLimits) -> tuple[list[tuple[str, str]], dict]:
    """Always flat, always long (buy and hold), too few trades, absurd turnover, on validation."""
    bars = float(val["bars"])
    years = max(bars - 1, 1.0) / float(val.get("periods_per_year", TRADING_DAYS))
    trips, exposure, turnover = float(val["round_trips"]), float(val["exposure"]), float(val["turnover"])
    change_share = turnover * years / max(bars, 1.0)
    values = {"val_round_trips": trips, "val_round_trips_per_year": trips / years, "val_exposure": exposure,
              "val_turnover_per_year": turnover, "val_share_of_days_with_a_trade": change_share}
    failures = []
    if exposure <= 0.0:
        failures.append(("always_flat", "always flat on validation: it never holds a position, so there is "
                                        "nothing to score"))
    elif exposure >= limits.always_long_exposure:
        failures.append(("always_long", f"always long on validation (exposure {exposure:.1%}): that is buy and "
                                         f"hold, not a strategy"))
    elif trips / years < limits.min_round_trips_per_year:
        failures.append(("too_few_trades", f"too few trades on validation: {trips:.0f} round trip(s) in "
                                           f"{years:.1f} years, fewer than {limits.min_round_trips_per_year:g} "
                                           f"a year, too few to tell skill from luck"))
    if turnover > limits.max_turnover_per_year:
        failures.append(("turnover", f"turnover {turnover:.0f}x a year on validation (the position changes on "
                                     f"{change_share:.0%} of days; bound {limits.max_turnover_per_year:g}x): "
                                     f"such a strategy lives on fills and costs, not on a signal"))
    return failures, values


def check_guards(region: str, index: pd.Index, windows: Sequence[slice], val_metrics: Mapping[str, float],
                 full: FrameLike, invariance: InvarianceFindings = InvarianceFindings(),
                 limits: GuardLimits = GuardLimits()) -> GuardReport:
    """Run every guard; failures are ordered with reward hacking first, then degenerate trading.

    ``invariance`` is what ``judge_invariance`` found where the probes ran (the look-ahead stage).
    """
    report = GuardReport()
    static = static_date_findings(region)
    report.values["hard_coded_dates"] = static
    if static:
        more = f" and {len(static) - 1} more" if len(static) > 1 else ""
        report.failures.append(("hard_coded_dates", f"hard-coded dates in the region ({static[0]}{more}): "
                                                    f"signals must not depend on particular dates"))
    moved = dict(invariance.failures)
    kinds = invariance.kinds
    report.values["date_shift"] = moved.get("date_dependence", "signals unchanged") if "date_shift" in kinds else None
    report.values["position_shift"] = (moved.get("position_dependence", "signals unchanged")
                                       if kinds & {"prepend", "trim"} else None)
    report.failures += list(moved.items())
    bad = non_finite(full.features, index, windows)
    report.values["non_finite"] = bad
    if bad:
        name, info = next(iter(bad.items()))
        more = f"; {len(bad) - 1} more column(s)" if len(bad) > 1 else ""
        report.failures.append(("non_finite", f"feature '{name}' is infinite on {info['rows']} bar(s) after its "
                                              f"warm-up (first {info['first']}){more}: the signals are fed "
                                              f"non-finite values"))
    trades, values = trade_guards(val_metrics, limits)
    report.failures += trades
    report.values.update(values)
    return report
