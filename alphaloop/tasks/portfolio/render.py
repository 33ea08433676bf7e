"""Portfolio specs -> region code, and a spec back from a region (its first line records it as JSON).

A spec is a plain dict: a cross-sectional ``signal`` on a ``window`` (bars, on a log ladder), how
ranks become weights (``top_k`` with a ``fraction`` per leg, or ``rank``-proportional), the ``book``
(long-only, long-short 75/25, market-neutral 50/50), ``inverse_vol`` sizing inside each leg, a
``hold`` span that smooths the score so the book turns over about every ``hold`` bars, and an optional
``vol_target`` that scales the book down when the instruments' typical volatility is above it.

Generated code reads only past and present rows (rolling, ewm, pct_change with positive periods).
With one instrument there is nothing to rank: the rendered ``allocate`` times it instead, long (or
short, unless long-only) by how far its score stands from the score's own past year.
"""

from __future__ import annotations

import json
import re

SPEC_PREFIX = "# portfolio-spec: "
SPEC_LINE = re.compile(r"^\s*# portfolio-spec:\s*(\{.*\})\s*$", re.MULTILINE)
LADDER = (2, 3, 5, 10, 20, 40, 60, 120, 250)  # windows on a log scale
SIGNALS: dict[str, tuple[int, int]] = {  # the window range each signal is searched over
    "momentum": (20, 250), "reversal": (2, 20), "volatility": (10, 120), "trend": (20, 250), "high": (20, 250),
}
WEIGHTINGS = ("top_k", "rank")
FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5)
BOOKS: dict[str, tuple[float, float]] = {  # gross share of the long leg and of the short leg
    "long_only": (1.0, 0.0), "long_short": (0.75, 0.25), "market_neutral": (0.5, 0.5),
}
HOLDS = (1, 2, 5, 10, 20)
VOL_WINDOWS = (20, 60)
VOL_TARGETS = (0.0, 0.1, 0.15, 0.2)
BASELINE_SPEC: dict = {"signal": "momentum", "window": 120, "weighting": "top_k", "fraction": 0.3,
                       "book": "long_only", "inverse_vol": False, "vol_window": 20, "hold": 1, "vol_target": 0.0}
SIGNAL_WORDS = {
    "momentum": "{w}-bar momentum (highest return ranks first)",
    "reversal": "{w}-bar reversal (lowest return ranks first)",
    "volatility": "{w}-bar low volatility (calmest ranks first)",
    "trend": "{w}-bar trend strength (distance above the {w}-bar average in volatility units)",
    "high": "distance from the {w}-bar high (closest ranks first)",
}
BOOK_WORDS = {"long_only": "long-only", "long_short": "long-short 75/25", "market_neutral": "market-neutral 50/50"}


def _nearest(values: tuple, value: object, lo: float | None = None, hi: float | None = None) -> object:
    allowed = [v for v in values if (lo is None or v >= lo) and (hi is None or v <= hi)] or list(values)
    try:
        return min(allowed, key=lambda v: abs(float(v) - float(value)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return allowed[0]


def normalise_spec(raw: object) -> dict | None:
    """A valid spec from any dict (unknown keys dropped, values moved to the nearest allowed), or None."""
    if not isinstance(raw, dict):
        return None
    spec = {**BASELINE_SPEC, **{k: v for k, v in raw.items() if k in BASELINE_SPEC}}
    if spec["signal"] not in SIGNALS:
        spec["signal"] = BASELINE_SPEC["signal"]
    lo, hi = SIGNALS[spec["signal"]]
    spec["window"] = int(_nearest(LADDER, spec["window"], lo, hi))  # type: ignore[arg-type]
    spec["weighting"] = spec["weighting"] if spec["weighting"] in WEIGHTINGS else "top_k"
    spec["fraction"] = float(_nearest(FRACTIONS, spec["fraction"]))  # type: ignore[arg-type]
    spec["book"] = spec["book"] if spec["book"] in BOOKS else "long_only"
    spec["inverse_vol"] = bool(spec["inverse_vol"])
    spec["vol_window"] = int(_nearest(VOL_WINDOWS, spec["vol_window"]))  # type: ignore[arg-type]
    spec["hold"] = int(_nearest(HOLDS, spec["hold"]))  # type: ignore[arg-type]
    spec["vol_target"] = float(_nearest(VOL_TARGETS, spec["vol_target"]))  # type: ignore[arg-type]
    return spec


def spec_json(spec: dict) -> str:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def spec_of(region: str | None) -> dict | None:
    """The spec a rendered region records on its first line; None for any other region."""
    m = SPEC_LINE.search(region or "")
    if not m:
        return None
    try:
        return normalise_spec(json.loads(m.group(1)))
    except json.JSONDecodeError:
        return None


def describe(spec: dict) -> str:
    """One line a person can read."""
    legs = (f"top/bottom {spec['fraction']:.0%}" if spec["book"] != "long_only" else f"top {spec['fraction']:.0%}") \
        if spec["weighting"] == "top_k" else "rank-proportional"
    parts = [SIGNAL_WORDS[spec["signal"]].format(w=spec["window"]), legs, BOOK_WORDS[spec["book"]]]
    if spec["inverse_vol"]:
        parts.append(f"inverse {spec['vol_window']}-bar volatility sizing")
    if spec["hold"] > 1:
        parts.append(f"held about {spec['hold']} bars")
    if spec["vol_target"]:
        parts.append(f"volatility target {spec['vol_target']:.0%}")
    return ", ".join(parts)


def _signal_lines(spec: dict) -> list[str]:
    w = spec["window"]
    return {
        "momentum": [f'    df["raw"] = close.pct_change({w})'],
        "reversal": [f'    df["raw"] = -close.pct_change({w})'],
        "volatility": [f'    df["raw"] = -ret.rolling({w}).std()'],
        "trend": [f'    sma = close.rolling({w}).mean()',
                  f'    df["raw"] = (close / sma - 1.0) / (ret.rolling({w}).std() * np.sqrt({w}))'],
        "high": [f'    df["raw"] = close / close.rolling({w}).max() - 1.0'],
    }[spec["signal"]]


def _legs(spec: dict) -> list[str]:
    if spec["weighting"] == "top_k":
        cap = "n" if spec["book"] == "long_only" else "n // 2"
        lines = [f"    k = max(1, min({cap}, int(round(n * {spec['fraction']}))))",
                 "    long_raw = np.zeros(n)",
                 "    long_raw[order[-k:]] = 1.0",
                 "    short_raw = np.zeros(n)",
                 "    short_raw[order[:k]] = 1.0"]
    elif spec["book"] == "long_only":
        lines = ["    long_raw = ranks",
                 "    short_raw = np.zeros(n)"]
    else:
        lines = ["    centred = ranks - ranks.mean()",
                 "    long_raw = np.maximum(centred, 0.0)",
                 "    short_raw = np.maximum(-centred, 0.0)"]
    if spec["inverse_vol"]:
        lines += ["    long_raw = np.where(vol > 0, long_raw / np.where(vol > 0, vol, 1.0), 0.0)",
                  "    short_raw = np.where(vol > 0, short_raw / np.where(vol > 0, vol, 1.0), 0.0)"]
    return lines


def render(spec: dict, gross: float = 1.0) -> str:
    """The region's code for ``spec``; ``gross`` is the book's gross exposure (at most ``--max-gross``)."""
    long_share, short_share = BOOKS[spec["book"]]
    long_only = spec["book"] == "long_only"
    vw = spec["vol_window"]
    lines = [
        f"{SPEC_PREFIX}{spec_json(spec)}",
        f"GROSS = {gross:g}",
        f"LONG = {long_share:g}",
        f"SHORT = {short_share:g}",
        "",
        "",
        "def generate_features(df):",
        f'    """{describe(spec)}."""',
        '    close = df["Close"]',
        "    ret = close.pct_change()",
        *_signal_lines(spec),
        f'    df["vol"] = ret.rolling({vw}).std() * np.sqrt(252)',
        (f'    df["score"] = df["raw"].ewm(span={spec["hold"]}, min_periods=1).mean()' if spec["hold"] > 1
         else '    df["score"] = df["raw"]'),
        '    past = df["score"].rolling(250, min_periods=60)',
        '    df["score_z"] = (df["score"] - past.mean()) / past.std()',
        "    return df",
        "",
        "",
        "def allocate(day):",
        '    if len(day) == 1:  # one instrument: nothing to rank, so time it against its own past',
        '        z = day["score_z"].iloc[0]',
        "        if not z == z:",
        "            return {}",
        f"        w = min(1.0, max({0.0 if long_only else -1.0}, z))",
        "        return {day.index[0]: min(GROSS, 1.0) * w}",
        '    ids = day.index.to_numpy()',
        '    score = day["score"].to_numpy()',
        '    vol = day["vol"].to_numpy()',
        "    known = score == score",
        "    ids, score, vol = ids[known], score[known], vol[known]",
        "    n = len(score)",
        "    if n < 2:",
        "        return {}",
        '    order = np.argsort(score, kind="stable")',
        "    ranks = np.empty(n)",
        "    ranks[order] = np.arange(1, n + 1)",
        *_legs(spec),
        "    weights = np.zeros(n)",
        "    if long_raw.sum() > 0:",
        "        weights = weights + LONG * long_raw / long_raw.sum()",
        "    if SHORT > 0 and short_raw.sum() > 0:",
        "        weights = weights - SHORT * short_raw / short_raw.sum()",
        "    scale = GROSS",
    ]
    if spec["vol_target"]:
        lines += ["    calm = vol[vol > 0]",
                  "    if len(calm):",
                  f"        scale = GROSS * min(1.0, {spec['vol_target']:g} / float(np.median(calm)))"]
    lines += ["    weights = np.clip(weights * scale, -1.0, 1.0)",
              "    return dict(zip(ids.tolist(), weights.tolist()))", ""]
    return "\n".join(lines)
