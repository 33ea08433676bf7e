"""An offline forecaster search (no model): climatology conditioned on market regimes.

A forecaster is a spec: up to two binary regime conditions (volatility high or low against its own
longer average, close above or below a moving average, positive or negative momentum), a prior that
shrinks towards one third each, and an optional memory in bars. The region it renders estimates,
for each horizon and each regime state, how often past h-bar moves fell in each bucket when they
started in that state. Only outcomes already complete at bar t are counted (the move from t-h to
t, and the state at t-h), and the bucket edges are expanding terciles of past h-bar moves, so every
figure at row t uses rows up to t only. ``forecast(row)`` then reads the current state's frequencies,
or returns one third each while they warm up.

Like ``alphaloop.propose.offline`` the first line records the spec as JSON so the next iteration
can mutate its parent: tune a window, the prior or the memory; add, drop or swap a condition.
"""

from __future__ import annotations

import copy
import json
import random
import re
import time

from alphaloop.propose.base import Expectation, Proposal, ProposalContext
from alphaloop.propose.offline.spec import Num, spec_in, win
from alphaloop.tasks.forecast.buckets import HORIZONS
from alphaloop.tasks.forecast.scores import SELECTION_METRIC

SPEC_PREFIX = "# forecast-spec: "
SPEC_LINE = re.compile(r"^\s*# forecast-spec:\s*(\{.*\})\s*$", re.MULTILINE)
MAX_CONDITIONS = 2
MIN_HISTORY = 250  # bars of past h-bar moves before the expanding terciles count

CONDITION_SPACE: dict[str, dict[str, Num]] = {
    "vol": {"window": win(5, 60), "lookback": win(60, 500)},
    "trend": {"window": win(20, 250)},
    "momentum": {"window": win(5, 250)},
}
PRIOR = Num(2, 200, 1, log=True)
MEMORY = Num(0, 2500, 250)  # 0 = all history
BASELINE_SPEC: dict = {"conditions": [], "prior": 30, "memory": 0}
CONDITION_REASON = {
    "vol": "volatility clusters, so a turbulent spell makes large moves (down or up) likelier and flat ones rarer",
    "trend": "above a rising average moves tend to be up more often than below it",
    "momentum": "recent strength tends to persist, tilting the odds of the next moves",
}


def describe_condition(c: dict) -> str:
    if c["kind"] == "vol":
        return f"{c['window']}-bar volatility above its {c['lookback']}-bar average"
    if c["kind"] == "trend":
        return f"close above SMA {c['window']}"
    return f"{c['window']}-bar momentum positive"


def describe(spec: dict) -> str:
    """One line a person can read."""
    cond = " and ".join(describe_condition(c) for c in spec["conditions"]) or "no condition"
    mem = f"the last {spec['memory']} bars" if spec["memory"] else "all history"
    return f"bucket frequencies by regime ({cond}) over {mem}, prior {spec['prior']}"


def fix_condition(c: dict, rng: random.Random | None = None) -> dict:
    out = {"kind": c["kind"]}
    for name, dom in CONDITION_SPACE[c["kind"]].items():
        v = c.get(name)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        out[name] = dom.clamp(v) if ok else (dom.sample(rng) if rng else dom.clamp((dom.lo + dom.hi) / 2))
    if out["kind"] == "vol" and out["lookback"] < 2 * out["window"]:
        out["lookback"] = CONDITION_SPACE["vol"]["lookback"].clamp(2 * out["window"])
    return out


def normalise_spec(raw: object) -> dict | None:
    """A clean copy of a spec read from text, or None when it is not one this module wrote."""
    if not isinstance(raw, dict) or not isinstance(raw.get("conditions", []), list):
        return None
    try:
        conds = [fix_condition(c) for c in raw.get("conditions", [])
                 if isinstance(c, dict) and c.get("kind") in CONDITION_SPACE]
        seen: set[str] = set()
        conds = [c for c in conds if not (c["kind"] in seen or seen.add(c["kind"]))][:MAX_CONDITIONS]
        prior = raw.get("prior", BASELINE_SPEC["prior"])
        memory = raw.get("memory", 0)
        return {"conditions": conds, "prior": PRIOR.clamp(float(prior)), "memory": MEMORY.clamp(float(memory))}
    except (TypeError, ValueError, KeyError):
        return None


def spec_of(region: str) -> dict | None:
    """The spec recorded in a region this module wrote, else None."""
    return spec_in(region, SPEC_LINE, normalise_spec)


def spec_json(spec: dict) -> str:
    return json.dumps(spec, separators=(",", ":"))


def condition_lines(c: dict, column: str) -> list[str]:
    """Lines setting ``df[column]`` to 1.0 / 0.0, NaN while the condition warms up."""
    if c["kind"] == "vol":
        n, m = c["window"], c["lookback"]
        return [f"vol = ret.rolling({n}).std()",
                f"vol_avg = vol.rolling({m}).mean()",
                f'df["{column}"] = (vol > vol_avg).astype(float).where(vol_avg.notna())']
    if c["kind"] == "trend":
        return [f"sma = close.rolling({c['window']}).mean()",
                f'df["{column}"] = (close > sma).astype(float).where(sma.notna())']
    return [f"momo = close / close.shift({c['window']}) - 1",
            f'df["{column}"] = (momo > 0).astype(float).where(momo.notna())']


def render(spec: dict) -> str:
    """Region code for a spec: generate_features(df) and forecast(row), pandas/numpy only."""
    body = ['close = df["Close"]', "ret = close / close.shift(1) - 1", 'df["regime"] = 0.0']
    for i, c in enumerate(spec["conditions"]):
        column = f"cond_{c['kind']}_" + "_".join(str(c[k]) for k in CONDITION_SPACE[c["kind"]])
        body += condition_lines(c, column)
        body.append(f'df["regime"] = df["regime"] + df["{column}"] * {2 ** i}')
    count = "{x}.rolling(MEMORY, min_periods=1).sum()" if spec["memory"] else "{x}.cumsum()"
    body += [
        "for h in HORIZONS:",
        "    past = close / close.shift(h) - 1",
        "    lo = past.expanding(MIN_HISTORY).quantile(1 / 3)",
        "    hi = past.expanding(MIN_HISTORY).quantile(2 / 3)",
        '    then = df["regime"].shift(h)',
        "    known = past.notna() & lo.notna() & then.notna()",
        "    hits = [known & (past < lo), known & (past >= lo) & (past <= hi), known & (past > hi)]",
        "    probs = [pd.Series(np.nan, index=df.index) for k in range(3)]",
        "    for s in range(STATES):",
        '        now = df["regime"] == s',
        "        was = (then == s).astype(float)",
        f"        seen = {count.format(x='(known.astype(float) * was)')}",
        "        for k in range(3):",
        f"            freq = ({count.format(x='(hits[k].astype(float) * was)')} + PRIOR / 3) / (seen + PRIOR)",
        "            probs[k] = probs[k].mask(now, freq)",
        "    for k in range(3):",
        '        df[f"p{h}_{k}"] = probs[k]',
        "return df",
    ]
    lines = [
        SPEC_PREFIX + spec_json(spec),
        f"# {describe(spec)}",
        f"HORIZONS = {tuple(HORIZONS)!r}",
        f"STATES = {2 ** len(spec['conditions'])}",
        f"PRIOR = {spec['prior']}",
        f"MEMORY = {spec['memory']}",
        f"MIN_HISTORY = {MIN_HISTORY}",
        "",
        "",
        "def generate_features(df):",
        *("    " + line for line in body),
        "",
        "",
        "def forecast(row):",
        "    out = {}",
        "    for h in HORIZONS:",
        '        p = [row[f"p{h}_{k}"] for k in range(3)]',
        "        total = p[0] + p[1] + p[2]",
        "        if any(v != v for v in p) or not total > 0:",
        "            out[h] = (1 / 3, 1 / 3, 1 / 3)",
        "        else:",
        "            out[h] = (p[0] / total, p[1] / total, p[2] / total)",
        "    return out",
        "",
    ]
    return "\n".join(lines)


def new_condition(rng: random.Random, spec: dict) -> dict:
    used = {c["kind"] for c in spec["conditions"]}
    kind = rng.choice([k for k in CONDITION_SPACE if k not in used])
    return fix_condition({"kind": kind, **{n: d.sample(rng) for n, d in CONDITION_SPACE[kind].items()}}, rng)


def mutate(rng: random.Random, parent: dict) -> tuple[dict, str, str, str, int]:
    """One mutation: (child, hypothesis, change, expected effect, expected direction of the skill)."""
    spec = copy.deepcopy(parent)
    moves = ["tune"] * 3 + ["prior", "memory"]
    if len(spec["conditions"]) < MAX_CONDITIONS:
        moves += ["add"] * 3
    if spec["conditions"]:
        moves += ["drop", "swap"]
    move = rng.choice(moves)
    if move == "add":
        c = new_condition(rng, spec)
        spec["conditions"].append(c)
        return (spec, f"Condition on {describe_condition(c)}: {CONDITION_REASON[c['kind']]}.",
                f"condition added: {describe_condition(c)}", "mean RPS skill up on validation", 1)
    if move == "drop":
        c = spec["conditions"].pop(rng.randrange(len(spec["conditions"])))
        return (spec, f"Splitting by {describe_condition(c)} may only add noise: each state has fewer past "
                f"moves to count.", f"condition removed: {describe_condition(c)}",
                "mean RPS skill up if that condition carried no information", 1)
    if move == "swap":
        i = rng.randrange(len(spec["conditions"]))
        old = spec["conditions"].pop(i)
        c = new_condition(rng, spec)
        while c["kind"] == old["kind"]:
            c = new_condition(rng, spec)
        spec["conditions"].insert(i, c)
        return (spec, f"Replace the {old['kind']} condition: {CONDITION_REASON[c['kind']]}.",
                f"condition: {describe_condition(old)} -> {describe_condition(c)}", "mean RPS skill up", 1)
    if move == "prior":
        old = spec["prior"]
        spec["prior"] = PRIOR.nudge(rng, old)
        lower = spec["prior"] < old
        return (spec, f"A {'weaker' if lower else 'stronger'} prior ({old} -> {spec['prior']}) lets the counted "
                f"frequencies {'speak more' if lower else 'speak less'}: sharper forecasts if the regimes "
                f"are informative, closer to one third each if not.", f"prior {old} -> {spec['prior']}",
                "mean RPS skill up, ECE down", 1)
    if move == "memory" or not spec["conditions"]:
        old = spec["memory"]
        spec["memory"] = MEMORY.nudge(rng, old)
        what = f"the last {spec['memory']} bars" if spec["memory"] else "all history"
        return (spec, f"Counting over {what} trades the stability of long samples against markets that change.",
                f"memory {old or 'all'} -> {spec['memory'] or 'all'} bars", "mean RPS skill up", 1)
    c = spec["conditions"][rng.randrange(len(spec["conditions"]))]
    name = rng.choice(sorted(CONDITION_SPACE[c["kind"]]))
    old = c[name]
    c[name] = CONDITION_SPACE[c["kind"]][name].nudge(rng, old)
    c.update(fix_condition(c))
    return (spec, f"A {'shorter' if c[name] < old else 'longer'} {name} for the {c['kind']} condition tests "
            f"whether the regime is read at the right scale.", f"{c['kind']} {name} {old} -> {c[name]}",
            "mean RPS skill up", 1)


def restart(rng: random.Random, parent: dict, stalled: int) -> tuple[dict, str, str, str, int]:
    """A fresh forecaster whose conditions differ from the parent's: what a stalled search does instead of
    tuning the same regimes again (or ending the night)."""
    used = {c["kind"] for c in parent["conditions"]}
    spec: dict = {"conditions": [], "prior": PRIOR.sample(rng), "memory": MEMORY.sample(rng)}
    kinds = [k for k in CONDITION_SPACE if k not in used] or sorted(CONDITION_SPACE)
    kind = rng.choice(kinds)
    spec["conditions"].append(fix_condition({"kind": kind, **{n: d.sample(rng) for n, d in
                                                              CONDITION_SPACE[kind].items()}}, rng))
    if rng.random() < 0.5:
        spec["conditions"].append(new_condition(rng, spec))
    return (spec, f"The search stalled ({stalled} proposals in a row did not enter the population), so restart "
            f"from other regimes: {CONDITION_REASON[kind]}.", f"restart: {describe(parent)} -> {describe(spec)}",
            "mean RPS skill up if these regimes carry information", 1)


class OfflineForecastProposer:
    """Deterministic forecaster search: the same seed, iteration and parent give the same proposal."""

    name = "offline"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def propose(self, ctx: ProposalContext) -> Proposal:
        started = time.monotonic()
        parent = spec_of(ctx.parent_region) or copy.deepcopy(BASELINE_SPEC)
        rng = random.Random(f"forecast:{self.seed}:{ctx.iteration}")
        if ctx.stalled:  # widen the search: other regimes, not one more tuning of the same ones
            child, hypothesis, change, expected, direction = restart(rng, parent, ctx.stalled)
        else:
            child, hypothesis, change, expected, direction = mutate(rng, parent)
        for _ in range(20):
            if spec_json(child) != spec_json(parent):
                break
            child, hypothesis, change, expected, direction = mutate(rng, parent)
        return Proposal(
            region=render(child), hypothesis=hypothesis, change=change, expected=expected,
            expectation=Expectation(metric=SELECTION_METRIC, direction=direction), model="offline",
            seconds=time.monotonic() - started, raw=f"spec: {spec_json(child)}",
        )

    def compact(self, text: str, budget_tokens: int) -> str | None:
        """No model to summarise with: the loop's deterministic compaction applies."""
        return None
