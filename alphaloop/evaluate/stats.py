"""Data-snooping statistics over a run: how much of the best candidate is luck from many trials?

* Deflated Sharpe ratio (Bailey & Lopez de Prado, 2014): the probability that the best
  candidate's true Sharpe exceeds the Sharpe the best of N skill-less trials would reach by
  chance, corrected for the skewness and kurtosis of its returns and the sample length. Worked
  in per-period units, reported annualised.
* Hansen's SPA test (``arch.bootstrap.SPA``): can any accepted candidate beat buy and hold once
  the search over all of them is accounted for? Losses are negative daily returns.

Everything here is measured on the validation split, the split the loop selects on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from alphaloop.evaluate.backtest import TRADING_DAYS
from alphaloop.evaluate.columns import (
    EFFECTIVE_TRIALS_CAP,
    SPA_REPS,
    TrialColumns,
    column_sharpes,
    sample_columns,
    spa_test,
)

EULER_GAMMA = 0.5772156649015329
SIGNIFICANCE = 0.05


_NORMAL = NormalDist()  # the standard normal from the standard library: scipy.stats alone costs a second to import


def expected_max_sharpe(trials: int, variance: float) -> float:
    """Expected maximum of ``trials`` Sharpe ratios whose true value is 0 and whose estimates
    have ``variance`` (any units; the result is in the same units)."""
    if trials < 2 or not variance > 0:
        return 0.0
    n = float(trials)
    z = (1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / n) + EULER_GAMMA * _NORMAL.inv_cdf(1 - 1 / (n * math.e))
    return float(math.sqrt(variance) * z)


def return_moments(returns: np.ndarray) -> tuple[float, float, float, int]:
    """Per-period Sharpe (ddof=1, as the backtester), skewness, Pearson kurtosis, observations."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size < 3 or r.std(ddof=1) <= 1e-15:
        return 0.0, 0.0, 3.0, int(r.size)
    d = r - r.mean()
    m2 = float(np.mean(d**2))  # biased central moments, as scipy.stats.skew/kurtosis compute them
    return (float(r.mean() / r.std(ddof=1)), float(np.mean(d**3)) / m2**1.5, float(np.mean(d**4)) / m2**2,
            int(r.size))


def probabilistic_sharpe(sharpe: float, benchmark: float, observations: int, skew: float, kurtosis: float) -> float:
    """P(true per-period Sharpe > ``benchmark``) given an estimate from ``observations`` returns."""
    if observations < 2:
        return 0.5
    denom = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    z = (sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(max(denom, 1e-12))
    return float(_NORMAL.cdf(z))


def deflated_sharpe(best_returns: np.ndarray, trials: int, sharpes: Sequence[float],
                    periods_per_year: float = TRADING_DAYS) -> dict:
    """Deflated Sharpe ratio of the best candidate; ``sharpes`` are annualised (by ``periods_per_year``), of
    scored trials."""
    per_period = np.asarray([s for s in sharpes if np.isfinite(s)], dtype=np.float64) / math.sqrt(periods_per_year)
    variance = float(per_period.var(ddof=1)) if per_period.size >= 2 else 0.0
    sr0 = expected_max_sharpe(max(trials, 1), variance)
    sr, skew, kurt, obs = return_moments(best_returns)
    dsr = probabilistic_sharpe(sr, sr0, obs, skew, kurt)
    annual = math.sqrt(periods_per_year)
    return {"dsr": dsr, "dsr_pvalue": 1.0 - dsr, "best_sharpe": sr * annual, "expected_max_sharpe": sr0 * annual,
            "sharpe_std_across_trials": math.sqrt(variance) * annual, "skewness": skew, "kurtosis": kurt,
            "observations": obs}


def run_statistics(trials: int, sharpes: Sequence[float], best_returns: np.ndarray, spa: SpaResult | None,
                   reps: int = SPA_REPS, periods_per_year: float = TRADING_DAYS) -> dict:
    """The deflated Sharpe ratio of the best and the SPA verdict, JSON-serialisable (stats.json's top level).

    ``spa``: the SPA already run over the accepted candidates (``RunStatistics.spa``, or ``spa_result``), so the
    end of a run bootstraps once; None when none was accepted (``reps`` then only names the draws not made)."""
    trials = max(int(trials), 1)
    accepted = 0 if spa is None else spa.candidates
    out: dict = {"split": "val", "trials": trials, "scored_trials": len(sharpes), "accepted": accepted,
                 **deflated_sharpe(best_returns, trials, sharpes, periods_per_year)}
    if out["dsr"] >= 1 - SIGNIFICANCE:
        out["verdict_dsr"] = (f"the best candidate's Sharpe {out['best_sharpe']:.2f} is significant at 5% after "
                              f"deflating for {trials} trials (DSR {out['dsr']:.3f})")
    else:
        out["verdict_dsr"] = (f"the best candidate's Sharpe {out['best_sharpe']:.2f} is not significant at 5% "
                              f"once {trials} trials are counted (DSR {out['dsr']:.3f}; the best of {trials} "
                              f"skill-less trials would be expected to reach {out['expected_max_sharpe']:.2f})")
    pvalues = None if spa is None else {"lower": spa.lower, "consistent": spa.consistent, "upper": spa.upper}
    out["spa_pvalues"] = pvalues
    out["spa_reps"] = reps if spa is None else spa.reps
    if pvalues is None:
        out["verdict_spa"] = "no accepted candidate to test against buy and hold"
    elif pvalues["consistent"] < SIGNIFICANCE:
        out["verdict_spa"] = (f"the best candidate beats buy and hold at 5% even after accounting for {trials} "
                              f"trials (SPA p = {pvalues['consistent']:.3f} over {accepted} "
                              f"accepted candidates)")
    else:
        out["verdict_spa"] = (f"no candidate beats buy and hold beyond what luck explains at 5% (SPA p = "
                              f"{pvalues['consistent']:.3f} over {accepted} accepted candidates, "
                              f"{trials} trials)")
    return out


def format_statistics(d: dict) -> str:
    """Human-readable lines; every one says where it was measured."""
    lines = [
        f"data-snooping statistics over {d['trials']} trials ({d['scored_trials']} scored, {d['accepted']} "
        f"accepted), measured on the validation split:",
        f"  deflated Sharpe ratio {d['dsr']:.3f} (p {d['dsr_pvalue']:.3f}): best Sharpe {d['best_sharpe']:.2f} "
        f"annualised vs {d['expected_max_sharpe']:.2f} expected from the best of {d['trials']} skill-less trials; "
        f"{d['observations']} daily returns, skew {d['skewness']:.2f}, kurtosis {d['kurtosis']:.2f}, measured on "
        f"the validation split",
        f"  verdict: {d['verdict_dsr']}",
    ]
    p = d.get("spa_pvalues")
    if p:
        lines.append(f"  Hansen's SPA against buy and hold: p = {p['consistent']:.3f} (lower {p['lower']:.3f}, "
                     f"upper {p['upper']:.3f}; {d['spa_reps']} stationary-bootstrap draws), measured on the "
                     f"validation split")
    lines.append(f"  verdict: {d['verdict_spa']}")
    return "\n".join(lines)


# ----- statistics over a universe ------------------------------------------------------------------
# The functions above keep the single-instrument summary finish.py has always written. What follows
# asks the question a universe can answer: is the best candidate's equal-weight portfolio better than
# zero, better than the equal-weight buy and hold of the same instruments, and how many of the trials
# were really different experiments?

EFFECTIVE_TRIALS_ESTIMATOR = "Galwey (2009) eigenvalue estimator over the correlation of the trials' returns"


@dataclass(frozen=True)
class EffectiveTrials:
    """How many independent experiments the trials amount to, beside the raw count."""

    raw: int  # trials run (every candidate that reached evaluation)
    sampled: int  # trials whose validation returns the estimate could use
    effective_sampled: float  # effective count among the sampled trials
    effective: float  # effective count scaled to the raw count (equal to effective_sampled when all were sampled)
    estimator: str

    def describe(self) -> str:
        scaled = "" if self.sampled == self.raw else (f"; {self.effective_sampled:.1f} among the {self.sampled} trials "
                                                      f"with returns, scaled to the {self.raw} run")
        return f"{self.effective:.1f} effective of {self.raw} raw trials ({self.estimator}{scaled})"


def effective_trials(trial_returns: np.ndarray, raw: int | None = None,
                     cap: int = EFFECTIVE_TRIALS_CAP) -> EffectiveTrials:
    """Effective number of independent trials from the eigenvalues l_i of their returns' correlation matrix.

    Galwey (2009), "A new measure of the effective number of tests, a practical tool for comparing
    families of non-independent significance tests", Genetic Epidemiology 33:559-568:
    M_eff = (sum_i sqrt(max(l_i, 0)))^2 / sum_i max(l_i, 0). It belongs to the eigenvalue family of
    Cheverud (2001) and Nyholt (2004), M_eff = 1 + (M - 1)(1 - Var(l) / M), and Li & Ji (2005). It is
    chosen because it is right where a loop's trials usually sit: k variants of each of a few ideas
    (3 ideas of 5 near-identical variants count as 3, where Nyholt's formula gives 11 and Li & Ji's
    jumps with the eigenvalues' fractional parts), independent trials count as M and M identical
    ones as 1, and it moves continuously with the correlations. Unlike n / (1 + (n - 1) * mean rho),
    negative and positive correlations do not cancel. A trial with constant returns (always flat)
    correlates with nothing and counts as its own trial.

    ``trial_returns``: shape (days, trials), one column per trial with returns. ``raw``: the number of
    trials run, when some (rejected ones) left no returns; the estimate is scaled by raw / sampled.
    ``cap``: beyond this many columns the count is read on a seeded sample of ``cap`` and extrapolated
    to all columns at the rate it grew from half the sample to the whole (a power law in the number of
    trials: exponent 1 for independent trials, near 0 once variants of a few ideas saturate it); its
    error is measured by ``bench/bench_stats_scale.py`` (docs/bench.md).
    """
    r = np.asarray(trial_returns, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError("trial_returns must be a (days, trials) matrix")
    if not np.isfinite(r).all():
        raise ValueError("trial_returns hold non-finite values")
    pick = sample_columns(r.shape[1], cap)
    return effective_of_sample(r if pick is None else r[:, pick], r.shape[1], raw, cap)


def effective_of_sample(sample: np.ndarray, m: int, raw: int | None = None,
                        cap: int = EFFECTIVE_TRIALS_CAP) -> EffectiveTrials:
    """``effective_trials`` from the columns it reads of ``m`` (all of them, or ``sample_columns``' sample)."""
    raw = m if raw is None else max(int(raw), m)
    if m == 0:
        return EffectiveTrials(raw=raw, sampled=0, effective_sampled=0.0, effective=float(raw),
                               estimator=EFFECTIVE_TRIALS_ESTIMATOR)
    if m > cap:  # a seeded sample, and how its count grows from half of it to all of it, extrapolated to m
        whole, half = _galwey(sample), _galwey(sample[:, : cap // 2])
        growth = float(np.clip(math.log2(whole / half), 0.0, 1.0))  # 1: independent trials, 0: saturated
        eff = min(whole * (m / cap) ** growth, float(m))
    else:
        eff = _galwey(sample)
    return EffectiveTrials(raw=raw, sampled=m, effective_sampled=eff, effective=eff * raw / m,
                           estimator=EFFECTIVE_TRIALS_ESTIMATOR)


def _galwey(r: np.ndarray) -> float:
    """Galwey's count over the columns of ``r``, between 1 and their number."""
    lam = _correlation_eigenvalues(r)
    return min(max(float(np.sum(np.sqrt(lam)) ** 2 / np.sum(lam)), 1.0), float(r.shape[1]))


def _correlation_eigenvalues(r: np.ndarray) -> np.ndarray:
    """Eigenvalues (clipped at 0) of the columns' correlation matrix, from the smaller Gram matrix.

    The non-zero eigenvalues of Z'Z (trials x trials) are those of ZZ' (days x days), so with more
    trials than days the cost is days^2 x trials, not trials^3. A constant column correlates with
    nothing: its own eigenvalue 1."""
    centred = r - r.mean(axis=0)
    norm = np.sqrt(np.einsum("ij,ij->j", centred, centred))
    ok = norm > 1e-15
    z = centred[:, ok] / norm[ok]
    gram = z @ z.T if z.shape[0] < z.shape[1] else z.T @ z
    lam = np.clip(np.linalg.eigvalsh(gram), 0.0, None) if z.size else np.zeros(0)
    return np.concatenate([lam, np.ones(int((~ok).sum()))])


@dataclass(frozen=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of one series under a stated null, and which trial count deflated it."""

    basis: str  # "returns" or "excess over buy and hold"
    dsr: float
    pvalue: float
    sharpe: float  # annualised Sharpe of the series tested
    expected_max_sharpe: float  # annualised Sharpe the best of the trials would reach by luck
    sharpe_std_across_trials: float  # annualised
    trials_used: float
    trials_count: str  # "raw" or "effective"
    skewness: float
    kurtosis: float
    observations: int

    @property
    def significant(self) -> bool:
        return self.dsr >= 1.0 - SIGNIFICANCE


def deflate(series: np.ndarray, trial_sharpes: np.ndarray, trials: float, basis: str,
            trials_count: str = "raw", periods_per_year: float = TRADING_DAYS) -> DeflatedSharpe:
    """DSR of ``series`` against the best of ``trials`` skill-less trials whose annualised Sharpes
    spread like ``trial_sharpes`` (Bailey & Lopez de Prado, 2014)."""
    per_period = np.asarray(trial_sharpes, dtype=np.float64)
    per_period = per_period[np.isfinite(per_period)] / math.sqrt(periods_per_year)
    variance = float(per_period.var(ddof=1)) if per_period.size >= 2 else 0.0
    sr0 = expected_max_sharpe_float(trials, variance)
    sr, skew, kurt, obs = return_moments(series)
    dsr = probabilistic_sharpe(sr, sr0, obs, skew, kurt)
    annual = math.sqrt(periods_per_year)
    return DeflatedSharpe(basis=basis, dsr=dsr, pvalue=1.0 - dsr, sharpe=sr * annual, expected_max_sharpe=sr0 * annual,
                          sharpe_std_across_trials=math.sqrt(variance) * annual, trials_used=float(trials),
                          trials_count=trials_count, skewness=skew, kurtosis=kurt, observations=obs)


def expected_max_sharpe_float(trials: float, variance: float) -> float:
    """``expected_max_sharpe`` for a possibly fractional (effective) number of trials."""
    if trials < 2 or not variance > 0:
        return 0.0
    z = (1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / trials) + EULER_GAMMA * _NORMAL.inv_cdf(1 - 1 / (trials * math.e))
    return float(math.sqrt(variance) * z)


@dataclass(frozen=True)
class SpaResult:
    """Hansen's SPA of the accepted candidates' portfolios against the equal-weight buy and hold."""

    lower: float
    consistent: float
    upper: float
    candidates: int
    reps: int
    benchmark: str
    tested: int | None = None  # distinct series bootstrapped (copies merged, at most SPA_CAP); None: all


    @property
    def significant(self) -> bool:
        return self.consistent < SIGNIFICANCE


def spa_result(bh_returns: np.ndarray, tested: Sequence[np.ndarray], candidates: int | None = None,
               benchmark: str = "buy and hold", seed: int = 0, reps: int = SPA_REPS) -> SpaResult | None:
    """Hansen's SPA of the ``tested`` series against ``bh_returns`` (None: nothing to test). ``candidates``: how
    many accepted candidates they stand for, when copies were merged and the cap applied (``SpaColumns``)."""
    p = spa_test(bh_returns, tested, seed=seed, reps=reps)
    if p is None:
        return None
    return SpaResult(lower=p["lower"], consistent=p["consistent"], upper=p["upper"],
                     candidates=len(tested) if candidates is None else candidates, reps=reps, benchmark=benchmark,
                     tested=len(tested))


@dataclass(frozen=True)
class InstrumentFigures:
    """The best candidate on one instrument of the universe, beside that instrument's buy and hold."""

    name: str
    sharpe: float
    bh_sharpe: float
    excess_sharpe: float
    psr_zero: float  # P(true Sharpe > 0) from this instrument alone, no deflation


@dataclass(frozen=True)
class RunStatistics:
    """Every end-of-run statistic of a universe run, with the verdicts a person reads."""

    split: str
    instruments: int
    trials: int
    scored_trials: int
    accepted: int
    best_iteration: int | None
    effective_trials: EffectiveTrials
    dsr_returns: DeflatedSharpe
    dsr_excess: DeflatedSharpe
    spa: SpaResult | None
    per_instrument: list[InstrumentFigures]
    verdict: str
    verdict_dsr: str
    verdict_dsr_excess: str
    verdict_spa: str

    @property
    def beats_buy_and_hold(self) -> bool:
        """Only SPA may say so: a DSR's null is a Sharpe of zero, which a long-biased rule beats on rising prices."""
        return self.spa is not None and self.spa.significant

    def to_json(self) -> dict:
        d = asdict(self)
        d["beats_buy_and_hold"] = self.beats_buy_and_hold
        return d

    def format(self) -> str:
        """Human-readable lines; every figure says where it was measured."""
        where = f"the equal-weight portfolio of {self.instruments} instrument{'s' * (self.instruments != 1)}"
        lines = [f"statistics over {self.trials} trials ({self.scored_trials} scored, {self.accepted} accepted), "
                 f"measured on the {_split_name(self.split)} split, on {where}:",
                 f"  trials: {self.effective_trials.describe()}"]
        for d in (self.dsr_returns, self.dsr_excess):
            lines.append(f"  DSR on {d.basis} {d.dsr:.3f}: Sharpe {d.sharpe:.2f} vs {d.expected_max_sharpe:.2f} "
                         f"expected from the best of {d.trials_used:.1f} ({d.trials_count}) skill-less trials; "
                         f"{d.observations} daily returns")
        if self.spa is not None:
            s = self.spa
            lines.append(f"  SPA against {s.benchmark}: p = {s.consistent:.3f} (lower {s.lower:.3f}, "
                         f"upper {s.upper:.3f}; {s.candidates} accepted candidates"
                         f"{'' if s.tested in (None, s.candidates) else f' ({s.tested} distinct series tested)'}, "
                         f"{s.reps} stationary-bootstrap draws)")
        for f in self.per_instrument:
            lines.append(f"  {f.name}: Sharpe {f.sharpe:.2f}, buy and hold {f.bh_sharpe:.2f}, "
                         f"excess {f.excess_sharpe:.2f}, P(Sharpe > 0) {f.psr_zero:.3f} "
                         f"on this instrument alone (not deflated)")
        lines.append(f"  verdict: {self.verdict}")
        return "\n".join(lines)


def _split_name(split: str) -> str:
    return {"val": "validation", "train": "train", "test": "test"}.get(split, split)


def universe_statistics(trial_returns: np.ndarray, best: int, bh_returns: np.ndarray, trials: int,
                        accepted: Sequence[int] | None = None, sharpes: Sequence[float] | None = None,
                        trials_count: str = "raw", instruments: int = 1, best_iteration: int | None = None,
                        per_instrument: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                        split: str = "val", seed: int = 0, reps: int = SPA_REPS,
                        periods_per_year: float = TRADING_DAYS) -> RunStatistics:
    """DSR on the best's returns and on its excess over buy and hold, SPA against buy and hold, effective trials.

    ``trial_returns``: (days, m) daily returns of the equal-weight portfolio on ``split`` for each trial
    that has them; ``best``: the column of the best candidate; ``bh_returns``: (days,) the equal-weight
    buy and hold of the same instruments on the same days; ``trials``: trials run (rejected included);
    ``accepted``: columns that were accepted (SPA tests them; default all); ``sharpes``: annualised
    Sharpes of every scored trial, for the raw DSR's spread (default: the columns'); ``trials_count``:
    "raw" or "effective", which count deflates both DSRs; ``per_instrument``: name -> (best's daily
    returns, buy and hold's) on that instrument, for the figures shown beside the portfolio's.
    """
    r = np.asarray(trial_returns, dtype=np.float64)
    bh = np.asarray(bh_returns, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] == 0:
        raise ValueError("trial_returns must be a (days, trials) matrix with at least one trial")
    if r.shape[0] != bh.size:
        raise ValueError(f"returns of {r.shape[0]} days against a benchmark of {bh.size} days")
    if not 0 <= best < r.shape[1]:
        raise ValueError(f"best column {best} outside the {r.shape[1]} trials")
    cols = set(range(r.shape[1])) if accepted is None else {int(c) for c in accepted}
    columns = TrialColumns(r.shape[1], bh, periods_per_year)
    for j in range(r.shape[1]):
        columns.add(r[:, j], best=j == best, spa=j in cols)
    return trial_statistics(columns, trials, sharpes, trials_count, instruments, best_iteration, per_instrument,
                            split, seed, reps)


def trial_statistics(columns: TrialColumns, trials: int, sharpes: Sequence[float] | None = None,
                     trials_count: str = "raw", instruments: int = 1, best_iteration: int | None = None,
                     per_instrument: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
                     split: str = "val", seed: int = 0, reps: int = SPA_REPS) -> RunStatistics:
    """``universe_statistics`` from the trial columns as streamed (``TrialColumns``): the end of a run feeds
    them one accepted candidate at a time, so its memory does not grow with the night."""
    if columns.best is None:
        raise ValueError("no trial column is marked best")
    if trials_count not in ("raw", "effective"):
        raise ValueError("trials_count must be 'raw' or 'effective'")
    trials = max(int(trials), columns.count)
    eff = effective_of_sample(columns.sample(), columns.count, trials)
    n = eff.effective if trials_count == "effective" else float(trials)
    ppy = columns.periods_per_year
    raw_sharpes = np.asarray(columns.sharpes if sharpes is None else sharpes, dtype=np.float64)
    dsr_r = deflate(columns.best, raw_sharpes, n, "returns", trials_count, ppy)
    dsr_x = deflate(columns.best - columns.bh, np.asarray(columns.excess_sharpes), n, "excess over buy and hold",
                    trials_count, ppy)
    benchmark = f"the equal-weight buy and hold of the {instruments} instrument{'s' * (instruments != 1)}"
    spa = spa_result(columns.bh, columns.spa_series(), columns.spa_candidates, benchmark, seed, reps)
    figures = [_instrument_figures(name, a, b, ppy) for name, (a, b) in (per_instrument or {}).items()]
    v_dsr, v_x, v_spa, verdict = verdicts(dsr_r, dsr_x, spa)
    return RunStatistics(split=split, instruments=instruments, trials=trials,
                         scored_trials=len(raw_sharpes), accepted=columns.spa_candidates,
                         best_iteration=best_iteration, effective_trials=eff, dsr_returns=dsr_r, dsr_excess=dsr_x,
                         spa=spa, per_instrument=figures, verdict=verdict, verdict_dsr=v_dsr, verdict_dsr_excess=v_x,
                         verdict_spa=v_spa)


def _instrument_figures(name: str, returns: np.ndarray, bh: np.ndarray,
                        periods_per_year: float = TRADING_DAYS) -> InstrumentFigures:
    a, b = np.asarray(returns, dtype=np.float64), np.asarray(bh, dtype=np.float64)
    sr, skew, kurt, obs = return_moments(a)
    sx = column_sharpes(np.column_stack([a, b, a - b]), periods_per_year)
    return InstrumentFigures(name=name, sharpe=float(sx[0]), bh_sharpe=float(sx[1]), excess_sharpe=float(sx[2]),
                             psr_zero=probabilistic_sharpe(sr, 0.0, obs, skew, kurt))


def verdicts(raw: DeflatedSharpe, excess: DeflatedSharpe, spa: SpaResult | None) -> tuple[str, str, str, str]:
    """The DSR, excess-DSR, SPA and overall verdicts. Only SPA may say a candidate beats buy and hold:
    a DSR on returns tests a Sharpe of zero, which any long-biased rule beats on rising prices."""
    n = f"{raw.trials_used:.0f}" if raw.trials_count == "raw" else f"{raw.trials_used:.1f} effective"
    v_dsr = (f"Sharpe above zero beyond luck after deflating for {n} trials (DSR {raw.dsr:.2f}); this null is a "
             f"Sharpe of zero, not buy and hold" if raw.significant else
             f"Sharpe not shown to be above zero once {n} trials are counted (DSR {raw.dsr:.2f})")
    v_x = (f"its daily excess over buy and hold survives deflating for {n} trials (DSR {excess.dsr:.2f})"
           if excess.significant else
           f"its daily excess over buy and hold does not survive deflating for {n} trials (DSR {excess.dsr:.2f})")
    if spa is None:
        v_spa = "no accepted candidate to test against buy and hold"
    elif spa.significant:
        v_spa = (f"beats buy and hold beyond luck over {spa.candidates} accepted candidates (SPA p = "
                 f"{spa.consistent:.2f})")
    else:
        v_spa = (f"not shown to beat buy and hold (SPA p = {spa.consistent:.2f} over {spa.candidates} "
                 f"accepted candidates)")
    spa_txt = "no SPA test (no accepted candidate)" if spa is None else f"SPA p = {spa.consistent:.2f}"
    if spa is not None and spa.significant:
        tail = "" if excess.significant else (f"; but its excess over buy and hold does not survive deflation "
                                              f"(DSR {excess.dsr:.2f}), so the margin is thin")
        if not raw.significant:
            tail += "; its Sharpe is not shown to be above zero: buy and hold itself did poorly on these days"
        verdict = f"Beats buy and hold beyond luck ({spa_txt}; Sharpe DSR {raw.dsr:.2f}){tail}"
    elif raw.significant:
        verdict = (f"Sharpe above zero beyond luck (DSR {raw.dsr:.2f}), but not shown to beat buy and hold "
                   f"({spa_txt}; excess DSR {excess.dsr:.2f})")
    else:
        verdict = (f"Not shown to be more than luck: Sharpe DSR {raw.dsr:.2f}, excess DSR {excess.dsr:.2f}, "
                   f"{spa_txt}; not shown to beat buy and hold")
    return v_dsr, v_x, v_spa, verdict
