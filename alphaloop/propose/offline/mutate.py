"""The offline proposer's mutations: each edits a spec and says, in words and as a metric, what it expects."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

from alphaloop.propose.offline.spec import (
    ENTRY_SPACE,
    EXIT_SPACE,
    FILTER_SPACE,
    MAX_EXITS,
    MAX_FILTERS,
    Num,
    describe_entry,
    describe_exit,
    describe_filter,
    fix_component,
    space_of,
)

FAMILY = {
    "ma_cross": "trend", "price_ma": "trend", "macd": "momentum", "roc": "momentum",
    "rsi_momo": "momentum", "zscore": "mean reversion", "bollinger": "mean reversion",
    "rsi_revert": "mean reversion", "donchian": "breakout",
}
FAMILY_REASON = {
    "trend": "index prices trend over months, and following the trend keeps the position through long rises",
    "momentum": "recent strength tends to persist for weeks to months (time-series momentum)",
    "mean reversion": "short sell-offs in a broad index tend to partly reverse within days",
    "breakout": "a close beyond the recent range often starts a new move",
}
WINDOW_LABEL = {"fast": "fast window", "slow": "slow window", "signal": "signal window", "bars": "holding cap",
                "exit_window": "exit window", "lookback": "lookback window"}
FILTER_LABEL = {"trend": "trend", "atr": "ATR", "stdev": "volatility", "volume": "volume", "momentum": "momentum"}
FILTER_REASON = {
    "trend": ("entering only above the long average avoids bear markets, where entries fail more often",
              "max_drawdown", 1),
    "atr": ("volatility clusters, so standing aside while the true range is unusually wide avoids the "
            "worst drawdowns", "max_drawdown", 1),
    "stdev": ("volatility clusters, so standing aside while return volatility is unusually high avoids "
              "the worst drawdowns", "max_drawdown", 1),
    "volume": ("signals backed by above-average volume are more often genuine moves", "round_trips", -1),
    "momentum": ("requiring positive longer-term momentum keeps entries in the direction of the "
                 "prevailing move", "", 1),
}
EXIT_REASON = {
    "opposite": ("leaving on the entry rule's own opposite signal lets a position run while the reason "
                 "for holding it lasts", "", 1),
    "trail": ("a trailing stop below the recent high cuts a trade once the move has clearly reversed",
              "max_drawdown", 1),
    "time": ("capping how long a trade is held after its last entry signal limits time spent exposed "
             "to moves the signal no longer explains", "exposure", -1),
    "ma_stop": ("leaving when the close falls below a moving average exits broken trends early",
                "max_drawdown", 1),
}


@dataclass
class Note:
    """What a mutation changed and what it should do, in words and as an Expectation."""

    hypothesis: str
    change: str
    expected: str
    metric: str
    direction: int


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeio" or word.startswith("ATR") else "a"


def expectation_words(metric: str, direction: int) -> str:
    if metric == "max_drawdown":
        return "a shallower maximum drawdown" if direction > 0 else "a deeper maximum drawdown"
    return f"{metric.replace('_', ' ')} {'up' if direction > 0 else 'down'}"


def pick_param(rng: random.Random, space: dict[str, Num | tuple[str, ...]]) -> str | None:
    names = sorted(space)
    return rng.choice(names) if names else None


def tune(rng: random.Random, spec: dict, metric: str) -> Note:
    slots = [("entry", spec["entry"])] * 3 + [("filter", f) for f in spec["filters"]]
    slots += [("exit", x) for x in spec["exits"] if EXIT_SPACE[x["kind"]]]
    part, comp = rng.choice(slots)
    space = space_of(part, comp["kind"])
    name = pick_param(rng, space)
    assert name is not None
    dom, old = space[name], comp[name]
    if isinstance(dom, tuple):
        comp[name] = next(v for v in dom if v != old)
    else:
        comp[name] = dom.nudge(rng, old)
    fixed = fix_component(part, comp)
    comp.clear()
    comp.update(fixed)
    new = comp[name]
    change = f"{part} {comp['kind']}: {name} {old} -> {new}"
    if name == "ma":
        return Note(f"An {new.upper()} weights the latest prices {'more' if new == 'ema' else 'less'} than an "
                    f"{old.upper()}, so the rule reacts {'sooner' if new == 'ema' else 'later'} to turns.",
                    change, f"{metric} up if timing mattered", metric, 1)
    if name == "mode":
        if new == "state":
            return Note("Entering whenever the condition holds, not only on the crossing bar, re-enters after "
                        "a stop instead of waiting for the next cross.", change,
                        "more time in the market, more trades", "exposure", 1)
        return Note("Entering only on the crossing bar avoids buying late into an extended move.", change,
                    "less time in the market, fewer trades", "exposure", -1)
    if name in ("window", "fast", "slow", "signal", "bars", "lookback", "exit_window") and isinstance(dom, Num):
        shorter = new < old
        what = "reacts sooner to turns and trades more, at the price of more whipsaws" if shorter else \
            "ignores more noise and trades less, so fewer trades have to pay costs"
        label = WINDOW_LABEL.get(name, name)
        return Note(f"With a {'shorter' if shorter else 'longer'} {label} ({old} -> {new}) the {part} rule {what}.",
                    change, f"{'more' if shorter else 'fewer'} round trips", "round_trips", 1 if shorter else -1)
    return Note(f"Moving {name} of the {comp['kind']} {part} from {old} to {new} tests whether the current "
                f"threshold is well placed or merely fitted.", change, f"{metric} up if the threshold was off",
                metric, 1)


def swap_entry(rng: random.Random, spec: dict, metric: str) -> Note:
    old = spec["entry"]
    others = [k for k in ENTRY_SPACE if k != old["kind"]]
    other_family = [k for k in others if FAMILY[k] != FAMILY[old["kind"]]]
    kind = rng.choice(other_family if rng.random() < 0.6 else others)
    spec["entry"] = fix_component("entry", {"kind": kind, **sample_params(rng, ENTRY_SPACE[kind])}, rng)
    family = FAMILY[kind]
    opening = (f"Try another {family} entry" if family == FAMILY[old["kind"]]
               else f"Replace the {FAMILY[old['kind']]} entry with {article(family)} {family} one")
    return Note(f"{opening}: {FAMILY_REASON[family]}.",
                f"entry: {describe_entry(old)} -> {describe_entry(spec['entry'])}",
                f"{metric} up if {family} suits this market better", metric, 1)


def sample_params(rng: random.Random, space: dict[str, Num | tuple[str, ...]]) -> dict:
    return {n: (rng.choice(d) if isinstance(d, tuple) else d.sample(rng)) for n, d in space.items()}


def new_filter(rng: random.Random, spec: dict) -> dict:
    used = {f["kind"] for f in spec["filters"]}
    kind = rng.choice([k for k in FILTER_SPACE if k not in used])
    return fix_component("filter", {"kind": kind, **sample_params(rng, FILTER_SPACE[kind])}, rng)


def add_filter(rng: random.Random, spec: dict, metric: str) -> Note:
    f = new_filter(rng, spec)
    spec["filters"].append(f)
    reason, m, d = FILTER_REASON[f["kind"]]
    m = m or metric
    label = FILTER_LABEL[f["kind"]]
    return Note(f"Add {article(label)} {label} filter: {reason}.", f"filter added: {describe_filter(f)}",
                f"fewer trades and {expectation_words(m, d)}", m, d)


def drop_filter(rng: random.Random, spec: dict, metric: str) -> Note:
    f = spec["filters"].pop(rng.randrange(len(spec["filters"])))
    return Note(f"The {FILTER_LABEL[f['kind']]} filter may remove good trades along with bad ones; without it "
                f"the entry rule trades on its own.", f"filter removed: {describe_filter(f)}",
                "more trades", "round_trips", 1)


def swap_filter(rng: random.Random, spec: dict, metric: str) -> Note:
    i = rng.randrange(len(spec["filters"]))
    old = spec["filters"].pop(i)
    f = new_filter(rng, spec)
    while f["kind"] == old["kind"]:
        f = new_filter(rng, spec)
    spec["filters"].insert(i, f)
    reason, m, d = FILTER_REASON[f["kind"]]
    m = m or metric
    label = FILTER_LABEL[f["kind"]]
    return Note(f"Swap the {FILTER_LABEL[old['kind']]} filter for {article(label)} {label} one: {reason}.",
                f"filter: {describe_filter(old)} -> {describe_filter(f)}", expectation_words(m, d), m, d)


def change_exit(rng: random.Random, spec: dict, metric: str) -> Note:
    exits = spec["exits"]
    used = {x["kind"] for x in exits}
    unused = [k for k in EXIT_SPACE if k not in used]
    moves = (["add"] * 2 if len(exits) < MAX_EXITS and unused else []) + (["drop"] if len(exits) > 1 else [])
    moves += ["replace"] * 2 if unused else []
    move = rng.choice(moves)
    if move == "drop":
        x = exits.pop(rng.randrange(len(exits)))
        return Note(f"The exit on {describe_exit(x, spec['entry'])} may cut winners short; without it the "
                    f"remaining exit decides.", f"exit removed: {describe_exit(x, spec['entry'])}",
                    "longer trades, more time in the market", "exposure", 1)
    kind = rng.choice(unused)
    x = fix_component("exit", {"kind": kind, **sample_params(rng, EXIT_SPACE[kind])}, rng)
    reason, m, d = EXIT_REASON[kind]
    m = m or metric
    if move == "add":
        exits.append(x)
        change = f"exit added: {describe_exit(x, spec['entry'])}"
    else:
        i = rng.randrange(len(exits))
        change = f"exit: {describe_exit(exits[i], spec['entry'])} -> {describe_exit(x, spec['entry'])}"
        exits[i] = x
    return Note(f"Exit on {describe_exit(x, spec['entry'])}: {reason}.", change, expectation_words(m, d), m, d)


def restart(rng: random.Random, parent: dict, metric: str, stalled: int) -> tuple[dict, Note]:
    """A fresh spec from another entry family than the parent's: what a stalled search does instead of
    varying the same strategy again (or ending the night)."""
    old = FAMILY[parent["entry"]["kind"]]
    kind = rng.choice([k for k in ENTRY_SPACE if FAMILY[k] != old])
    spec: dict = {"entry": fix_component("entry", {"kind": kind, **sample_params(rng, ENTRY_SPACE[kind])}, rng),
                  "exits": [{"kind": "opposite"}], "filters": []}
    if rng.random() < 0.5:
        spec["filters"].append(new_filter(rng, spec))
    family = FAMILY[kind]
    return spec, Note(f"The search stalled ({stalled} proposals in a row did not enter the population), so restart "
                      f"from {article(family)} {family} entry instead of varying the {old} family again: "
                      f"{FAMILY_REASON[family]}.",
                      f"restart: {describe_entry(parent['entry'])} -> {describe_entry(spec['entry'])}",
                      f"{metric} up if {family} suits this market better", metric, 1)


MUTATIONS = {
    "tune": tune, "swap_entry": swap_entry, "add_filter": add_filter, "drop_filter": drop_filter,
    "swap_filter": swap_filter, "change_exit": change_exit,
}
FILTER_OPS = {"add_filter", "drop_filter", "swap_filter"}
BASE_WEIGHTS = {"tune": 0.36, "swap_entry": 0.16, "add_filter": 0.15, "drop_filter": 0.08,
                "swap_filter": 0.09, "change_exit": 0.16}


def mutation_weights(spec: dict, last_outcome: str | None, unchanged: bool = False) -> dict[str, float]:
    """Applicable mutations, nudged by the latest outcome (too few trades -> loosen, too many -> filter).

    ``unchanged``: the latest change held exactly its parent's positions, so small parameter nudges are
    likely to be as idle again; structural changes are favoured instead.
    """
    w = dict(BASE_WEIGHTS)
    if len(spec["filters"]) >= MAX_FILTERS:
        w.pop("add_filter")
    if not spec["filters"]:
        w.pop("drop_filter")
        w.pop("swap_filter")
    text = (last_outcome or "").lower()
    if any(s in text for s in ("few trades", "always flat", "no trades")):
        for k in ("drop_filter", "swap_entry"):
            if k in w:
                w[k] *= 3
    if any(s in text for s in ("turnover", "too many trades")):
        for k in ("add_filter", "tune"):
            if k in w:
                w[k] *= 2
    if any(s in text for s in ("always long", "buy and hold", "buy-and-hold")):
        w["change_exit"] *= 3
    if unchanged:
        w["tune"] *= 0.25
        for k in ("swap_entry", "change_exit"):
            w[k] *= 2
    return w


def mutate(rng: random.Random, parent: dict, metric: str, last_outcome: str | None,
           unchanged: bool = False) -> tuple[dict, list[str], list[Note]]:
    """Apply one mutation (sometimes two) and return the child spec with what was done."""
    spec = copy.deepcopy(parent)
    steps = 2 if rng.random() < 0.2 else 1
    names: list[str] = []
    notes: list[Note] = []
    for _ in range(steps):
        w = mutation_weights(spec, last_outcome, unchanged)
        if names:
            done = {names[0]} | (FILTER_OPS if names[0] in FILTER_OPS else set())
            w = {k: v for k, v in w.items() if k not in done}
        name = rng.choices(sorted(w), weights=[w[k] for k in sorted(w)])[0]
        notes.append(MUTATIONS[name](rng, spec, metric))
        names.append(name)
    return spec, names, notes

