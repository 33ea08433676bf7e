"""Degenerate and reward-hacking guards, run on a candidate that passed the look-ahead check.

Each guard returns a reason a person can act on. Trade-based guards read the validation split,
where selection happens. The invariance probes (``alphaloop.evaluate.invariance``: a drawn
calendar, a drawn price level, history prepended, rows removed) are run and judged by the
look-ahead stage; ``check_guards`` only places their findings among the other guards. A static
look at the source sits beside them: date-like literals (``static_date_findings``) and random
numbers drawn without a seed (``unseeded_randomness``), whose outputs differ from run to run and
so from probe to probe: that is named as such, not as a leak.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alphaloop.data.frequency import periods_per_year as inferred_periods_per_year
from alphaloop.evaluate.backtest import TRADING_DAYS
from alphaloop.evaluate.invariance import (  # noqa: F401  (re-exported: the pipeline and tests read them here)
    DATE_SHIFT_DAYS,
    DATE_SHIFT_YEARS,
    PREPEND_ROWS,
    SETTLE_ROWS,
    TRIM_ROWS,
    InvarianceFindings,
    InvarianceProbe,
    date_dependence,
    date_shifted_frame,
    invariance_failures,
    invariance_probes,
    judge_invariance,
    position_dependence,
    prepended_frame,
    probe_failure,
    relabel_dependence,
)
from alphaloop.evaluate.probes import FrameLike

NO_FINDINGS = InvarianceFindings()  # no invariance probe ran
# numpy's global-state draws: deterministic only after np.random.seed(...)
GLOBAL_DRAWS = frozenset({"rand", "randn", "random", "random_sample", "ranf", "sample", "randint", "random_integers",
                          "choice", "shuffle", "permutation", "normal", "uniform", "standard_normal", "exponential",
                          "binomial", "poisson", "beta", "gamma", "lognormal", "laplace", "logistic",
                          "multivariate_normal", "standard_t", "chisquare", "triangular", "bytes"})
GENERATORS = frozenset({"default_rng", "RandomState", "Generator", "PCG64", "MT19937", "Philox", "SFC64",
                        "SeedSequence"})
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


def unseeded_randomness(region: str) -> list[str]:
    """Random numbers drawn without a seed: a generator made without one, or numpy's global draws
    (``np.random.normal``) with no ``np.random.seed(...)`` in the region; pandas' ``sample`` without
    ``random_state``."""
    try:
        tree = ast.parse(region)
    except SyntaxError:
        return []
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]

    def path(call: ast.Call) -> str:
        parts, node = [], call.func
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            parts.append(node.id)
        return ".".join(reversed(parts))

    seeded = any(path(c).endswith("random.seed") and (c.args or c.keywords) for c in calls)
    found = []
    for call in calls:
        name = path(call)
        last = name.rsplit(".", 1)[-1]
        if ".random." in f".{name}" and last in GENERATORS and not call.args and not call.keywords:
            found.append(f"line {call.lineno}: {name}() without a seed")
        elif name.startswith("np.random.") and last in GLOBAL_DRAWS and not seeded:
            found.append(f"line {call.lineno}: {name}(...) draws from numpy's unseeded global generator")
        elif last == "sample" and not name.startswith("np.") \
                and not any(k.arg == "random_state" for k in call.keywords):
            found.append(f"line {call.lineno}: .sample(...) without random_state")
    return found


def unseeded_reason(found: Sequence[str]) -> str:
    """The reason given when the region draws unseeded random numbers: its outputs may change from one
    run of the same history to the next, and no figure reproduces."""
    more = f" and {len(found) - 1} more" if len(found) > 1 else ""
    return (f"seed your random numbers: the outputs change from one run of the same history to the next because "
            f"the region draws random numbers without a seed ({found[0]}{more}); use "
            f"rng = np.random.default_rng(42) and draw from rng, or pass random_state=42")


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


def trade_guards(val: Mapping[str, float], limits: GuardLimits,
                 periods_per_year: float = TRADING_DAYS) -> tuple[list[tuple[str, str]], dict]:
    """Always flat, always long (buy and hold), too few trades, absurd turnover, on validation; years are
    counted in the data's bars a year (weekly bars: 52), as the scorer annualised turnover."""
    bars = float(val["bars"])
    years = max(bars - 1, 1.0) / periods_per_year
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
                                         f"hold, not a strategy (only -1 exits; 0, and False, keep the position)"))
    elif trips / years < limits.min_round_trips_per_year:
        failures.append(("too_few_trades", f"too few trades on validation: {trips:.0f} round trip(s) in "
                                           f"{years:.1f} years, fewer than {limits.min_round_trips_per_year:g} "
                                           f"a year, too few to tell skill from luck"))
    if turnover > limits.max_turnover_per_year:
        failures.append(("turnover", f"turnover {turnover:.0f}x a year on validation (the position changes on "
                                     f"{change_share:.0%} of days; bound {limits.max_turnover_per_year:g}x): "
                                     f"such a strategy lives on fills and costs, not on a signal"))
    return failures, values


def hard_coded_dates(region: str, outputs: str) -> tuple[list[str], tuple[str, str] | None]:
    """The static date guard, shared by the tasks: what it found, and its failure (guard, reason) when the region
    names dates, else None (``outputs`` says what must not depend on them: signals, weights, forecasts)."""
    static = static_date_findings(region)
    if not static:
        return static, None
    more = f" and {len(static) - 1} more" if len(static) > 1 else ""
    return static, ("hard_coded_dates", f"hard-coded dates in the region ({static[0]}{more}): {outputs} must not "
                                        "depend on particular dates")


def date_and_invariance_guards(region: str, invariance: InvarianceFindings, outputs: str) -> GuardReport:
    """The reward-hacking guards every task with positions runs first, in order: hard-coded dates, then what
    the invariance probes found (other years, another price level, rows moved); a probe that ran and found
    nothing reads "<outputs> unchanged", one that did not run None."""
    report = GuardReport()
    static, failure = hard_coded_dates(region, outputs)
    report.values["hard_coded_dates"] = static
    if failure:
        report.failures.append(failure)
    moved, kinds, unchanged = dict(invariance.failures), invariance.kinds, f"{outputs} unchanged"
    report.values["date_shift"] = moved.get("date_dependence", unchanged) if "date_shift" in kinds else None
    report.values["level_shift"] = moved.get("level_dependence", unchanged) if "level" in kinds else None
    report.values["position_shift"] = (moved.get("position_dependence", unchanged)
                                       if kinds & {"prepend", "trim"} else None)
    report.failures += list(moved.items())
    return report


def check_guards(region: str, index: pd.Index, windows: Sequence[slice], val_metrics: Mapping[str, float],
                 full: FrameLike, invariance: InvarianceFindings = NO_FINDINGS,
                 limits: GuardLimits = GuardLimits()) -> GuardReport:
    """Run every guard; failures are ordered with reward hacking first, then degenerate trading.

    ``invariance`` is what ``judge_invariance`` found where the probes ran (the look-ahead stage).
    """
    report = date_and_invariance_guards(region, invariance, "signals")
    bad = non_finite(full.features, index, windows)
    report.values["non_finite"] = bad
    if bad:
        name, info = next(iter(bad.items()))
        more = f"; {len(bad) - 1} more column(s)" if len(bad) > 1 else ""
        report.failures.append(("non_finite", f"feature {name!r} is infinite on {info['rows']} bar(s) after its "
                                              f"warm-up (first {info['first']}){more}: the signals are fed "
                                              f"non-finite values"))
    trades, values = trade_guards(val_metrics, limits, inferred_periods_per_year(index))
    report.failures += trades
    report.values.update(values)
    return report


def forecast_guards(region: str, invariances: Sequence[InvarianceFindings]) -> tuple[bool, str, dict]:
    """A forecaster takes no positions, so the trade guards do not apply; the date guards (hard-coded
    dates, the drawn calendar) and the level and position probes judge its probabilities, on every
    instrument. Returns ``(ok, reason, details)``."""
    static, dated = hard_coded_dates(region, "forecasts")
    failures = [dated] if dated else []
    n = len(invariances)
    for k, found in enumerate(invariances):
        where = f"instrument {k + 1} of {n}: " if n > 1 else ""
        failures += [(name, where + reason) for name, reason in found.failures]
    details = {"applied": True, "hard_coded_dates": static, "failed": [name for name, _ in failures],
               "why": "the trade guards judge positions, which a forecaster does not take; the date, level and "
                      "position guards judge its probabilities"}
    if not failures:
        return True, "", details
    also = f" (also failed: {', '.join(name for name, _ in failures[1:])})" if len(failures) > 1 else ""
    return False, failures[0][1] + also, details
