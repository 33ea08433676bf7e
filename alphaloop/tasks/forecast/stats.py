"""Is the best forecaster better than climatology once the search is counted?

Hansen's SPA test (``arch.bootstrap.SPA``) of every scored forecaster against the climatology, with
losses = the per-day RPS averaged over horizons (lower is better). A forecast for t+10 made at t
shares nine bars of outcome with the one made at t+1, so the daily losses are autocorrelated up to
the longest horizon; the circular block bootstrap uses blocks at least that long so each draw keeps
those overlaps intact. Measured on the validation split in the loop, on the test split only in
``final``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from alphaloop.present.text import p_value, plural
from alphaloop.tasks.forecast.buckets import HORIZONS

SIGNIFICANCE = 0.05
SPA_REPS = 1000
SPA_BLOCK = max(HORIZONS)  # bars: covers the overlap of the longest horizon's outcomes
DEGENERATE_STD = 1e-12


def forecast_spa(clim_losses: np.ndarray, candidate_losses: Sequence[np.ndarray], seed: int = 0,
                 reps: int = SPA_REPS, block: int = SPA_BLOCK) -> dict[str, float] | None:
    """SPA p-values (lower, consistent, upper) of the candidates against climatology, or None if none."""
    from arch.bootstrap import SPA

    if not candidate_losses:
        return None
    bench = np.asarray(clim_losses, dtype=np.float64)
    models = np.column_stack([np.asarray(x, dtype=np.float64) for x in candidate_losses])
    if models.shape[0] != bench.size:
        raise ValueError(f"losses of {models.shape[0]} days against a climatology of {bench.size} days")
    if bench.size < 2 * block:
        raise ValueError(f"{bench.size} days are too few for a block bootstrap with blocks of {block}")
    # A forecaster that scores exactly like the climatology (the climatology itself, say) has a loss
    # differential of zero every day; studentised, 0/0 would make it look infinitely significant. It
    # cannot beat the benchmark, so it leaves the test; with none left nothing beats climatology.
    moves = (bench[:, None] - models).std(axis=0) > DEGENERATE_STD
    if not moves.any():
        return {"lower": 1.0, "consistent": 1.0, "upper": 1.0}
    models = models[:, moves]
    spa = SPA(bench, models, block_size=block, reps=reps, bootstrap="circular", seed=seed)
    spa.compute()
    p = spa.pvalues
    return {"lower": float(p["lower"]), "consistent": float(p["consistent"]), "upper": float(p["upper"])}


def forecast_statistics(trials: int, clim_losses: np.ndarray, candidate_losses: Sequence[np.ndarray],
                        skills: Sequence[float], split: str = "val", seed: int = 0, reps: int = SPA_REPS,
                        block: int = SPA_BLOCK, roll_losses: np.ndarray | None = None,
                        scored: int | None = None) -> dict:
    """Trials, the best skill and the SPA verdict against climatology, JSON-serialisable.

    ``trials`` counts every forecaster tried (rejected ones too); ``candidate_losses`` are the scored
    forecasters' per-day losses on ``split`` and ``skills`` their skills; ``scored``: how many forecasters
    those losses stand for, when copies were merged and the cap applied (``SpaColumns``; default one each);
    ``roll_losses`` the rolling climatology's per-day losses on the same days: the second benchmark, tested
    the same way.
    """
    trials = max(int(trials), 1)
    scored = len(candidate_losses) if scored is None else scored
    finite = [s for s in skills if s is not None and np.isfinite(s)]
    out: dict = {"split": split, "trials": trials, "scored_trials": scored,
                 "best_rps_skill_mean": float(max(finite)) if finite else None, "spa_reps": reps,
                 "spa_block": block, "spa_bootstrap": "circular"}
    pvalues = forecast_spa(clim_losses, candidate_losses, seed=seed, reps=reps, block=block)
    out["spa_pvalues"] = pvalues
    if pvalues is None:
        out["verdict_spa"] = "no scored forecaster to test against climatology"
    elif pvalues["consistent"] < SIGNIFICANCE:
        out["verdict_spa"] = (f"the best forecaster beats climatology at 5% even after accounting for "
                              f"{plural(trials, 'trial')} (SPA {p_value(pvalues['consistent'])} over "
                              f"{plural(scored, 'scored forecaster')}, {split} split)")
    else:
        out["verdict_spa"] = (f"no forecaster beats climatology beyond what luck explains at 5% (SPA "
                              f"{p_value(pvalues['consistent'])} over "
                              f"{plural(scored, 'scored forecaster')}, {plural(trials, 'trial')}, "
                              f"{split} split)")
    if roll_losses is not None and np.asarray(roll_losses).size == np.asarray(clim_losses).size:
        rolled = forecast_spa(roll_losses, candidate_losses, seed=seed, reps=reps, block=block)
        out["spa_rolling_pvalues"] = rolled
        if rolled is not None:
            beats = rolled["consistent"] < SIGNIFICANCE
            out["verdict_spa_rolling"] = (
                f"{'the best forecaster beats' if beats else 'no forecaster beats'} the rolling climatology "
                f"{'at 5%' if beats else 'beyond what luck explains at 5%'} (SPA {p_value(rolled['consistent'])}, "
                f"{split} split)")
    return out


def format_forecast_statistics(d: dict) -> str:
    """Human-readable lines; every one says where it was measured."""
    best = d["best_rps_skill_mean"]
    lines = [f"forecast statistics over {plural(d['trials'], 'trial')} ({d['scored_trials']} scored), measured on the "
             f"{d['split']} split:",
             f"  best mean RPS skill against climatology: {best:.4f}" if best is not None else
             "  no scored forecaster"]
    p = d.get("spa_pvalues")
    if p:
        lower, upper = (p_value(p[k]).removeprefix("p = ") for k in ("lower", "upper"))
        lines.append(f"  Hansen's SPA against climatology: {p_value(p['consistent'])} (lower {lower}, upper {upper}; "
                     f"{d['spa_reps']} circular-block draws of {d['spa_block']} bars), measured on the {d['split']} "
                     "split")
    lines.append(f"  verdict: {d['verdict_spa']}")
    rolled = d.get("spa_rolling_pvalues")
    if rolled:
        lines.append(f"  Hansen's SPA against the rolling climatology: {p_value(rolled['consistent'])}, measured on "
                     f"the {d['split']} split")
        lines.append(f"  verdict: {d['verdict_spa_rolling']}")
    return "\n".join(lines)
