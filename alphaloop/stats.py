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
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from alphaloop.backtest import TRADING_DAYS
from alphaloop.scoring import History

EULER_GAMMA = 0.5772156649015329
SIGNIFICANCE = 0.05
SPA_REPS = 1000


def split_bh_returns(history: History, split: str = "val") -> np.ndarray:
    """Buy-and-hold daily returns of one split, aligned with ``Scores.returns[split]``."""
    close = history.frame["Close"].to_numpy(dtype=np.float64)[history.windows[split]]
    return close[1:] / close[:-1] - 1.0


def expected_max_sharpe(trials: int, variance: float) -> float:
    """Expected maximum of ``trials`` Sharpe ratios whose true value is 0 and whose estimates
    have ``variance`` (any units; the result is in the same units)."""
    if trials < 2 or not variance > 0:
        return 0.0
    n = float(trials)
    z = (1 - EULER_GAMMA) * sps.norm.ppf(1 - 1 / n) + EULER_GAMMA * sps.norm.ppf(1 - 1 / (n * math.e))
    return float(math.sqrt(variance) * z)


def return_moments(returns: np.ndarray) -> tuple[float, float, float, int]:
    """Per-period Sharpe (ddof=1, as the backtester), skewness, Pearson kurtosis, observations."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size < 3 or r.std(ddof=1) <= 1e-15:
        return 0.0, 0.0, 3.0, int(r.size)
    return (float(r.mean() / r.std(ddof=1)), float(sps.skew(r)), float(sps.kurtosis(r, fisher=False)),
            int(r.size))


def probabilistic_sharpe(sharpe: float, benchmark: float, observations: int, skew: float, kurtosis: float) -> float:
    """P(true per-period Sharpe > ``benchmark``) given an estimate from ``observations`` returns."""
    if observations < 2:
        return 0.5
    denom = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    z = (sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(max(denom, 1e-12))
    return float(sps.norm.cdf(z))


def deflated_sharpe(best_returns: np.ndarray, trials: int, sharpes: Sequence[float]) -> dict:
    """Deflated Sharpe ratio of the best candidate; ``sharpes`` are annualised, of scored trials."""
    per_period = np.asarray([s for s in sharpes if np.isfinite(s)], dtype=np.float64) / math.sqrt(TRADING_DAYS)
    variance = float(per_period.var(ddof=1)) if per_period.size >= 2 else 0.0
    sr0 = expected_max_sharpe(max(trials, 1), variance)
    sr, skew, kurt, obs = return_moments(best_returns)
    dsr = probabilistic_sharpe(sr, sr0, obs, skew, kurt)
    annual = math.sqrt(TRADING_DAYS)
    return {"dsr": dsr, "dsr_pvalue": 1.0 - dsr, "best_sharpe": sr * annual, "expected_max_sharpe": sr0 * annual,
            "sharpe_std_across_trials": math.sqrt(variance) * annual, "skewness": skew, "kurtosis": kurt,
            "observations": obs}


def spa_test(bh_returns: np.ndarray, accepted_returns: Sequence[np.ndarray], seed: int = 0,
             reps: int = SPA_REPS) -> dict[str, float] | None:
    """Hansen's SPA p-values of the accepted candidates against buy and hold, or None if none."""
    from arch.bootstrap import SPA

    if not accepted_returns:
        return None
    bench = -np.asarray(bh_returns, dtype=np.float64)
    models = -np.column_stack([np.asarray(r, dtype=np.float64) for r in accepted_returns])
    if models.shape[0] != bench.size:
        raise ValueError(f"returns of {models.shape[0]} days against a benchmark of {bench.size} days")
    spa = SPA(bench, models, reps=reps, bootstrap="stationary", seed=seed)
    spa.compute()
    p = spa.pvalues
    return {"lower": float(p["lower"]), "consistent": float(p["consistent"]), "upper": float(p["upper"])}


def run_statistics(trials: int, sharpes: Sequence[float], best_returns: np.ndarray,
                   accepted_returns: Sequence[np.ndarray], bh_returns: np.ndarray, seed: int = 0,
                   reps: int = SPA_REPS) -> dict:
    """Both statistics and their plain-language verdicts, JSON-serialisable."""
    trials = max(int(trials), 1)
    out: dict = {"split": "val", "trials": trials, "scored_trials": len(sharpes),
                 "accepted": len(accepted_returns), **deflated_sharpe(best_returns, trials, sharpes)}
    if out["dsr"] >= 1 - SIGNIFICANCE:
        out["verdict_dsr"] = (f"the best candidate's Sharpe {out['best_sharpe']:.2f} is significant at 5% after "
                              f"deflating for {trials} trials (DSR {out['dsr']:.3f})")
    else:
        out["verdict_dsr"] = (f"the best candidate's Sharpe {out['best_sharpe']:.2f} is not significant at 5% "
                              f"once {trials} trials are counted (DSR {out['dsr']:.3f}; the best of {trials} "
                              f"skill-less trials would be expected to reach {out['expected_max_sharpe']:.2f})")
    pvalues = spa_test(bh_returns, accepted_returns, seed=seed, reps=reps)
    out["spa_pvalues"] = pvalues
    out["spa_reps"] = reps
    if pvalues is None:
        out["verdict_spa"] = "no accepted candidate to test against buy and hold"
    elif pvalues["consistent"] < SIGNIFICANCE:
        out["verdict_spa"] = (f"the best candidate beats buy and hold at 5% even after accounting for {trials} "
                              f"trials (SPA p = {pvalues['consistent']:.3f} over {len(accepted_returns)} "
                              f"accepted candidates)")
    else:
        out["verdict_spa"] = (f"no candidate beats buy and hold beyond what luck explains at 5% (SPA p = "
                              f"{pvalues['consistent']:.3f} over {len(accepted_returns)} accepted candidates, "
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
        f"  -> {d['verdict_dsr']}",
    ]
    p = d.get("spa_pvalues")
    if p:
        lines.append(f"  Hansen's SPA against buy and hold: p = {p['consistent']:.3f} (lower {p['lower']:.3f}, "
                     f"upper {p['upper']:.3f}; {d['spa_reps']} stationary-bootstrap draws), measured on the "
                     f"validation split")
    lines.append(f"  -> {d['verdict_spa']}")
    return "\n".join(lines)
