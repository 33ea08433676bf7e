"""Score forecasts in the trusted parent: proper scores, skill, calibration and graded episodes.

Per horizon and window (a split or a fold):
* RPS, the ranked probability score over the ordered buckets down < flat < up (``scoringrules``);
* the log score -log p(realised bucket); ``scoringrules.log_score`` is for binary events only, so the
  categorical form is computed here, with probabilities floored at ``LOG_FLOOR`` to keep it finite;
* skill ``1 - RPS / RPS_climatology``, the climatology being the train split's bucket frequencies, and
  its mean over horizons, ``rps_skill_mean``, the selection metric on validation;
* a reliability table (each bucket's probability pooled, in equal-width bins, against how often the
  bucket happened) and its expected calibration error;
* one grade per episode (bar) and the graded reward (mean grade value);
* direction accuracy, the distribution of the most probable bucket, the best and worst days by RPS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alphaloop.evaluate.scoring import DEFAULT_FOLDS, fold_windows
from alphaloop.present.names import universe_only
from alphaloop.tasks.forecast.buckets import BUCKETS, BucketScheme

SELECTION_METRIC = "rps_skill_mean"
LOG_FLOOR = 1e-6  # -log(1e-6) = 13.8: a zero probability on what happened costs a lot but stays finite
RELIABILITY_BINS = 10
EXTREMES = 5  # best and worst days reported per horizon
SPREAD_BARS = 21  # best and worst days at least a month of bars apart, so they do not all fall in one calm month

# Grades of one episode (one bar, one horizon), checked in this order.
CORRECT_MAX_PROB = 0.9  # calibrated_correct: the realised bucket was strictly the most probable, p <= this
MISS_MIN_PROB = 0.2  # reasonable_miss: another bucket was favoured but the realised one had p >= this
WRONG_MAX_PROB = 0.05  # overconfident_wrong: the realised bucket had p < this ...
WRONG_CONFIDENT_PROB = 0.7  # ... while one bucket was given p >= this
GRADES = ("calibrated_correct", "reasonable_miss", "overconfident_wrong", "other")
GRADE_REWARD = {"calibrated_correct": 1.0, "reasonable_miss": 0.0, "overconfident_wrong": -1.0, "other": -0.25}
CALL_MARGIN = 0.02  # "the most probable" bucket must beat every other by more than this: a call, not noise
SUMMARY_KEYS = ("rps_skill_mean", "rps_skill", "rps_skill_rolling_mean", "rps_skill_rolling", "log_score", "ece",
                "grades", "reward")
# The second benchmark: each day's bucket frequencies over the last ROLLING_BARS outcomes known at its close.
# The train-split climatology can be beaten by drift alone (a split with more flat days than train); this
# one follows the recent past without any skill. Until ROLLING_MIN outcomes are known it is the train's.
ROLLING_BARS = 500
ROLLING_MIN = 100


def rps(probs: np.ndarray, buckets: np.ndarray) -> np.ndarray:
    """RPS per entry of (..., 3) probabilities against buckets 0/1/2 (no NaN buckets)."""
    import scoringrules as sr  # imports scipy: loaded by the first forecast scored, not by every command

    return np.asarray(sr.rps_score(buckets.astype(np.int64) + 1, probs, k_axis=-1), dtype=np.float64)


def realised_prob(probs: np.ndarray, buckets: np.ndarray) -> np.ndarray:
    return np.take_along_axis(probs, buckets.astype(np.int64)[..., None], axis=-1)[..., 0]


def log_score(probs: np.ndarray, buckets: np.ndarray) -> np.ndarray:
    return -np.log(np.maximum(realised_prob(probs, buckets), LOG_FLOOR))


def grade(probs: np.ndarray, buckets: np.ndarray) -> np.ndarray:
    """Index into ``GRADES`` per entry of (m, 3) probabilities and buckets."""
    p_real = realised_prob(probs, buckets)
    others = np.where(np.arange(3) == buckets.astype(np.int64)[:, None], -np.inf, probs).max(axis=1)
    top = p_real > others + CALL_MARGIN
    out = np.full(p_real.shape, GRADES.index("other"), dtype=np.int64)
    out[~top & (p_real >= MISS_MIN_PROB)] = GRADES.index("reasonable_miss")
    out[(p_real < WRONG_MAX_PROB) & (probs.max(axis=1) >= WRONG_CONFIDENT_PROB)] = GRADES.index("overconfident_wrong")
    out[top & (p_real <= CORRECT_MAX_PROB)] = GRADES.index("calibrated_correct")
    return out


def reliability(probs: np.ndarray, buckets: np.ndarray, bins: int = RELIABILITY_BINS) -> tuple[list[dict], float]:
    """Reliability table (every bucket's probability pooled) and the expected calibration error."""
    p = probs.reshape(-1)
    hit = (np.arange(3)[None, :] == buckets.astype(np.int64)[:, None]).reshape(-1).astype(np.float64)
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    counts = np.bincount(idx, minlength=bins)
    sum_p = np.bincount(idx, weights=p, minlength=bins)
    sum_hit = np.bincount(idx, weights=hit, minlength=bins)
    table, ece = [], 0.0
    for b in range(bins):
        n = int(counts[b])
        mean_p = float(sum_p[b] / n) if n else None
        freq = float(sum_hit[b] / n) if n else None
        table.append({"lo": b / bins, "hi": (b + 1) / bins, "count": n, "mean_prob": mean_p, "observed": freq})
        if n:
            ece += n / p.size * abs(mean_p - freq)
    return table, float(ece)


def direction_accuracy(probs: np.ndarray, returns: np.ndarray) -> tuple[float | None, int]:
    """Share of called days whose call matches the sign of the realised return (non-zero). A day is called
    only when p(up) and p(down) differ by more than ``CALL_MARGIN``: a symmetric forecaster's rounding
    noise (1e-16) is no call; with no call there is no figure (None)."""
    lean = probs[:, 2] - probs[:, 0]
    called = np.where(np.abs(lean) > CALL_MARGIN, np.sign(lean), 0.0)
    real = np.sign(returns)
    use = (called != 0) & (real != 0)
    n = int(use.sum())
    return (float((called[use] == real[use]).mean()) if n else None), n


def most_probable(probs: np.ndarray) -> dict[str, int]:
    """How often each bucket was the most probable by the call margin; "tie" when none was."""
    order = np.sort(probs, axis=1)
    tie = order[:, -1] - order[:, -2] <= CALL_MARGIN
    arg = probs.argmax(axis=1)
    out = {name: int(((arg == k) & ~tie).sum()) for k, name in enumerate(BUCKETS)}
    out["tie"] = int(tie.sum())
    return out


def spread_picks(order: np.ndarray, count: int = EXTREMES, gap: int = SPREAD_BARS) -> np.ndarray:
    """The first ``count`` rows of ``order`` that lie at least ``gap`` rows from every row already picked."""
    picked: list[int] = []
    for i in order:
        if all(abs(int(i) - j) >= gap for j in picked):
            picked.append(int(i))
            if len(picked) == count:
                break
    return np.asarray(picked, dtype=np.int64)


def calibration(probs: np.ndarray, buckets: np.ndarray) -> dict[str, dict[str, float]]:
    """Per bucket, the mean forecast probability against how often it happened: the sign of the gap says
    which way to adjust (forecast above realised: the bucket is over-forecast)."""
    return {name: {"forecast": float(probs[:, k].mean()), "realised": float((buckets == k).mean())}
            for k, name in enumerate(BUCKETS)}


def days(picks: np.ndarray, dates: list[str], probs: np.ndarray, buckets: np.ndarray, returns: np.ndarray,
         scores: np.ndarray, grades: np.ndarray, instruments: np.ndarray | None = None,
         bar_of: dict[str, int] | None = None) -> list[dict]:
    """The picked days of one horizon as records: date, its bar in the window (``bar_of``: 1 = the window's
    first date), forecast, outcome, RPS and grade (and, pooled over a universe, the instrument's number: never
    its ticker). Prompts show the bar, never the date: a model's memory of that day would be look-ahead."""
    return [{"date": dates[i], **({"bar": bar_of[dates[i]]} if bar_of else {}),
             "probs": [float(x) for x in probs[i]], "bucket": BUCKETS[int(buckets[i])],
             "return": float(returns[i]), "rps": float(scores[i]), "grade": GRADES[int(grades[i])],
             **({"instrument": int(instruments[i])} if instruments is not None else {})} for i in picks]


def finite_or_none(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def rolling_climatology(buckets: np.ndarray, horizons: Sequence[int], fallback: np.ndarray,
                        bars: int = ROLLING_BARS) -> np.ndarray:
    """(N, H, 3) reference forecasts: for row t and horizon h, the frequencies of the buckets of rows
    t-h-bars+1 .. t-h (the outcomes known at t's close) over a whole history's (N, H) buckets; the
    train climatology ``fallback`` (H, 3) where fewer than ``ROLLING_MIN`` are known."""
    n = buckets.shape[0]
    out = np.empty((n, len(horizons), 3), dtype=np.float64)
    rows = np.arange(n)
    for j, h in enumerate(horizons):
        b = buckets[:, j]
        ok = np.isfinite(b)
        onehot = np.zeros((n, 3), dtype=np.float64)
        onehot[ok, b[ok].astype(np.int64)] = 1.0
        cum = np.vstack([np.zeros((1, 3)), np.cumsum(onehot, axis=0)])  # cum[k]: rows before k
        hi = np.clip(rows - int(h) + 1, 0, n)
        counts = cum[hi] - cum[np.clip(hi - bars, 0, n)]
        total = counts.sum(axis=1, keepdims=True)
        out[:, j] = np.where(total >= ROLLING_MIN, counts / np.maximum(total, 1.0), fallback[j])
    return out


@dataclass
class WindowScores:
    """One window's figures: the verdict summary, the details, and per-day losses for the statistics."""

    summary: dict
    details: dict
    loss: np.ndarray  # per bar with every horizon resolved: mean RPS over horizons
    clim_loss: np.ndarray  # the same for the climatology forecast
    dates: list[str]
    roll_loss: np.ndarray | None = None  # the same for the rolling climatology (``rolling_climatology``)


def score_window(probs: np.ndarray, outcomes_buckets: np.ndarray, returns: np.ndarray, dates: Sequence[object],
                 scheme: BucketScheme, climatology: np.ndarray | None = None,
                 instruments: np.ndarray | None = None, rolling: np.ndarray | None = None) -> WindowScores:
    """Score (n, H, 3) probabilities of one window against its (n, H) buckets and returns.

    ``climatology`` (n, H, 3), when given, is each row's own reference forecast (rows pooled over a
    universe each carry their instrument's train climatology); else every row uses ``scheme``'s.
    ``instruments`` (n,) numbers each row's instrument for the best and worst days; ``rolling`` (n, H, 3)
    each row's rolling climatology, the second benchmark (its skill is None without it).
    """
    hs = scheme.horizons
    dates = [str(pd.Timestamp(d).date()) for d in dates]
    bar_of = {d: k + 1 for k, d in enumerate(sorted(set(dates)))}  # ISO dates sort in time; a universe shares bars
    skill, skill_roll, logs, eces, grades, reward, det = {}, {}, {}, {}, {}, {}, {}
    rps_all = np.full(outcomes_buckets.shape, np.nan)
    rps_clim_all = np.full(outcomes_buckets.shape, np.nan)
    rps_roll_all = np.full(outcomes_buckets.shape, np.nan)
    for j, h in enumerate(hs):
        key = str(h)
        ok = np.isfinite(outcomes_buckets[:, j])
        p, b, r = probs[ok, j], outcomes_buckets[ok, j], returns[ok, j]
        if not ok.any():
            skill[key] = skill_roll[key] = logs[key] = eces[key] = reward[key] = None
            grades[key] = dict.fromkeys(GRADES, 0)
            det[key] = {"n": 0}
            continue
        s = rps(p, b)
        s_clim = rps(np.broadcast_to(scheme.climatology[j], p.shape) if climatology is None else climatology[ok, j], b)
        rps_all[ok, j], rps_clim_all[ok, j] = s, s_clim
        s_roll = rps(rolling[ok, j], b) if rolling is not None else None
        if s_roll is not None:
            rps_roll_all[ok, j] = s_roll
        skill_roll[key] = (finite_or_none(1.0 - s.mean() / s_roll.mean())
                           if s_roll is not None and s_roll.mean() > 0 else None)
        g = grade(p, b)
        counts = np.bincount(g, minlength=len(GRADES))
        table, ece = reliability(p, b)
        acc, n_dir = direction_accuracy(p, r)
        skill[key] = finite_or_none(1.0 - s.mean() / s_clim.mean()) if s_clim.mean() > 0 else None
        logs[key] = float(log_score(p, b).mean())
        eces[key] = ece
        grades[key] = {name: int(c) for name, c in zip(GRADES, counts, strict=True)}
        reward[key] = float(np.dot(counts, [GRADE_REWARD[name] for name in GRADES]) / counts.sum())
        order = np.argsort(s, kind="stable")
        day_dates = [dates[i] for i in np.flatnonzero(ok)]
        inst = instruments[ok] if instruments is not None else None
        det[key] = {"n": int(ok.sum()), "rps": float(s.mean()), "rps_climatology": float(s_clim.mean()),
                    "rps_rolling_climatology": float(s_roll.mean()) if s_roll is not None else None,
                    "reliability": table, "direction_accuracy": acc, "direction_days": n_dir,
                    "most_probable": most_probable(p), "calibration": calibration(p, b),
                    "realised": {name: int((b == k).sum()) for k, name in enumerate(BUCKETS)},
                    "best_days": days(spread_picks(order), day_dates, p, b, r, s, g, inst, bar_of),
                    "worst_days": days(spread_picks(order[::-1]), day_dates, p, b, r, s, g, inst, bar_of)}
    vals = [v for v in skill.values() if v is not None]
    rolled = [v for v in skill_roll.values() if v is not None]
    summary = {"rps_skill_mean": float(np.mean(vals)) if len(vals) == len(hs) else None, "rps_skill": skill,
               "rps_skill_rolling_mean": float(np.mean(rolled)) if len(rolled) == len(hs) else None,
               "rps_skill_rolling": skill_roll, "log_score": logs, "ece": eces, "grades": grades, "reward": reward}
    full = np.isfinite(rps_all).all(axis=1)
    return WindowScores(summary=summary, details=det, loss=rps_all[full].mean(axis=1),
                        clim_loss=rps_clim_all[full].mean(axis=1),
                        dates=[d for d, f in zip(dates, full, strict=True) if f],
                        roll_loss=rps_roll_all[full].mean(axis=1) if rolling is not None else None)


@dataclass
class ForecastScores:
    """Forecast figures per split and per fold, and the selection value (``rps_skill_mean`` on validation).

    ``splits[name]`` and each ``folds[i]`` hold exactly ``SUMMARY_KEYS`` (folds add their start and end
    dates); ``details`` holds reliability tables, direction accuracy, best and worst days per split;
    ``losses`` and ``clim_losses`` the per-day mean RPS over horizons for the statistics.
    """

    splits: dict[str, dict]
    folds: list[dict]
    details: dict[str, dict]
    losses: dict[str, np.ndarray]
    clim_losses: dict[str, np.ndarray]
    scheme: BucketScheme
    metric: str = SELECTION_METRIC
    loss_dates: dict[str, list[str]] = field(default_factory=dict)
    schemes: tuple[BucketScheme, ...] = ()  # a universe: every instrument's own buckets (``scheme`` is the first's)
    roll_losses: dict[str, np.ndarray] = field(default_factory=dict)  # per-day losses of the rolling climatology

    @classmethod
    def of(cls, results: Mapping[str, WindowScores], folds: list[dict], scheme: BucketScheme,
           schemes: tuple[BucketScheme, ...] = ()) -> ForecastScores:
        """From each split's ``WindowScores`` and the folds' summaries (one instrument's or pooled)."""
        return cls(splits={k: r.summary for k, r in results.items()}, folds=folds,
                   details={k: r.details for k, r in results.items()}, losses={k: r.loss for k, r in results.items()},
                   clim_losses={k: r.clim_loss for k, r in results.items()}, scheme=scheme,
                   loss_dates={k: r.dates for k, r in results.items()}, schemes=schemes,
                   roll_losses={k: r.roll_loss for k, r in results.items() if r.roll_loss is not None})

    @property
    def selection(self) -> float:
        v = self.splits["val"][self.metric]
        return float(v) if v is not None else float("-inf")

    def fold_spread(self) -> dict[str, float]:
        vals = [f[self.metric] for f in self.folds if f[self.metric] is not None]
        if not vals:
            return {}
        return {"min": float(np.min(vals)), "median": float(np.median(vals)), "max": float(np.max(vals))}

    def to_json(self) -> dict:
        """The verdict's ``metrics`` object: the same layout as ``Scores.to_json`` plus the buckets."""
        sel = self.splits["val"][self.metric] if "val" in self.splits else None
        out = {"metric": self.metric, "selection_val": sel, "splits": self.splits, "folds": self.folds,
               "fold_spread": self.fold_spread(), "buckets": self.scheme.to_json(),
               "evidence": {"val": evidence(self.details.get("val") or {})} if "val" in self.details else {}}
        several = {"instruments": len(self.schemes), "buckets_by_instrument": [s.to_json() for s in self.schemes]}
        out.update(universe_only(len(self.schemes), several, {}))
        return out


def score_forecasts(history: object, probs: np.ndarray, scheme: BucketScheme | None = None,
                    folds: int = DEFAULT_FOLDS, splits: tuple[str, ...] = ("train", "val")) -> ForecastScores:
    """Score validated (N, H, 3) forecasts over ``history`` (an ``alphaloop.evaluate.scoring.History``).

    The cut points and climatology come from the train window unless ``scheme`` is given; outcomes are
    measured inside each split and each walk-forward fold of train (validation is in no fold), like the backtester.
    """
    frame, windows = history.frame, history.windows  # type: ignore[attr-defined]
    close = frame["Close"].to_numpy(dtype=np.float64)
    index = frame.index
    if scheme is None:
        scheme = BucketScheme.from_train(close[windows["train"]])
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(frame), len(scheme.horizons), 3):
        raise ValueError(f"forecasts of shape {probs.shape} for {len(frame)} rows and {len(scheme.horizons)} horizons")

    rolling = rolling_climatology(scheme.outcomes(close).buckets, scheme.horizons, scheme.climatology)

    def one(window: slice) -> WindowScores:
        out = scheme.outcomes(close[window])
        return score_window(probs[window], out.buckets, out.returns, index[window], scheme, rolling=rolling[window])

    results = {name: one(windows[name]) for name in splits}
    fold_rows = []
    train = windows.get("train")
    if train is not None:
        base = train.start
        for w in fold_windows(train.stop - base, folds):
            window = slice(base + w.start, base + w.stop)
            fold_rows.append({**one(window).summary, "start": str(index[window.start].date()),
                              "end": str(index[window.stop - 1].date())})
    return ForecastScores.of(results, fold_rows, scheme)


EVIDENCE_DAYS = 3  # best and worst days per horizon kept in the record for the prompt


def evidence(details: dict) -> dict:
    """What the prompt shows of a split's details, per horizon: direction accuracy over the calls, the most
    probable bucket's distribution against the realised one, calibration per bucket, best and worst days."""
    out = {}
    for h, d in details.items():
        if not d.get("n"):
            continue
        out[h] = {"direction_accuracy": d.get("direction_accuracy"), "direction_days": d.get("direction_days"),
                  "most_probable": d.get("most_probable"), "realised": d.get("realised"),
                  "calibration": d.get("calibration"),
                  "best_days": [_day(x) for x in (d.get("best_days") or [])[:EVIDENCE_DAYS]],
                  "worst_days": [_day(x) for x in (d.get("worst_days") or [])[:EVIDENCE_DAYS]]}
    return out


def _day(day: dict) -> dict:
    return {"date": day["date"], **({"bar": day["bar"]} if "bar" in day else {}), "bucket": day["bucket"],
            "probs": [round(p, 3) for p in day["probs"]], "rps": round(day["rps"], 4),
            **({"instrument": day["instrument"]} if "instrument" in day else {})}
