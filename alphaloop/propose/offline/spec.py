"""The offline proposer's strategy specs: parameter spaces, repair, reading a spec back from a region, words.

A spec is a dict of one entry rule, one or two exit rules and up to two filters, each a dict with
a ``kind`` and its parameters; ``normalise_spec`` makes any such dict valid (clamped, ordered).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

SPEC_PREFIX = "# offline-spec: "
SPEC_LINE = re.compile(r"^\s*# offline-spec:\s*(\{.*\})\s*$", re.MULTILINE)
MAX_FILTERS = 2
MAX_EXITS = 2
RAW_COLUMNS = ("Open", "High", "Low", "Close", "Volume")
NEEDS = {"atr": ("High", "Low"), "donchian": ("High", "Low"), "volume": ("Volume",)}  # columns beyond Close


@dataclass(frozen=True)
class Num:
    """A numeric parameter's range; ``log`` windows move by ratios, others by steps."""

    lo: float
    hi: float
    step: float = 1.0
    log: bool = False

    def clamp(self, value: float) -> float | int:
        value = min(self.hi, max(self.lo, value))
        value = round(round(value / self.step) * self.step, 6)
        value = min(self.hi, max(self.lo, value))
        return int(value) if float(self.step).is_integer() and float(self.lo).is_integer() else value

    def sample(self, rng: random.Random) -> float | int:
        if self.log:
            return self.clamp(math.exp(rng.uniform(math.log(self.lo), math.log(self.hi))))
        return self.clamp(rng.uniform(self.lo, self.hi))

    def nudge(self, rng: random.Random, value: float) -> float | int:
        """A new value near ``value``, never equal to it unless the range has one value."""
        for _ in range(8):
            if self.log:
                new = self.clamp(value * math.exp(rng.gauss(0.0, 0.35)))
            else:
                new = self.clamp(value + rng.gauss(0.0, (self.hi - self.lo) * 0.15))
            if new != value:
                return new
        return self.clamp(value + self.step if value + self.step <= self.hi else value - self.step)


def win(lo: int, hi: int) -> Num:
    return Num(lo, hi, 1, log=True)


MA = ("sma", "ema")
MODE = ("cross", "state")

ENTRY_SPACE: dict[str, dict[str, Num | tuple[str, ...]]] = {
    "ma_cross": {"ma": MA, "fast": win(3, 60), "slow": win(15, 250), "mode": MODE},
    "price_ma": {"ma": MA, "window": win(10, 250), "mode": MODE},
    "macd": {"fast": win(5, 20), "slow": win(15, 60), "signal": win(3, 15), "mode": MODE},
    "roc": {"window": win(5, 120), "threshold": Num(0.0, 0.08, 0.005)},
    "rsi_momo": {"window": win(5, 30), "level": Num(50, 70, 1)},
    "zscore": {"window": win(10, 100), "entry_z": Num(0.5, 3.0, 0.1), "exit_z": Num(-0.3, 1.5, 0.1)},
    "bollinger": {"window": win(10, 60), "width": Num(1.0, 3.0, 0.1)},
    "rsi_revert": {"window": win(2, 30), "low": Num(10, 40, 1), "high": Num(45, 80, 1)},
    "donchian": {"window": win(10, 120), "exit_window": win(5, 60)},
}
FILTER_SPACE: dict[str, dict[str, Num | tuple[str, ...]]] = {
    "trend": {"ma": MA, "window": win(100, 300)},
    "atr": {"window": win(5, 40), "lookback": win(60, 300), "ratio": Num(0.7, 1.6, 0.05)},
    "stdev": {"window": win(10, 60), "lookback": win(60, 300), "ratio": Num(0.7, 1.6, 0.05)},
    "volume": {"window": win(10, 60), "ratio": Num(0.6, 1.6, 0.05)},
    "momentum": {"window": win(20, 250)},
}
EXIT_SPACE: dict[str, dict[str, Num | tuple[str, ...]]] = {
    "opposite": {},
    "trail": {"window": win(5, 100), "pct": Num(2, 25, 1)},
    "time": {"bars": win(3, 80)},
    "ma_stop": {"ma": MA, "window": win(5, 100)},
}
BASELINE_SPEC: dict = {
    "entry": {"kind": "ma_cross", "ma": "sma", "fast": 20, "slow": 50, "mode": "state"},
    "exits": [{"kind": "opposite"}],
    "filters": [],
}



def space_of(part: str, kind: str) -> dict[str, Num | tuple[str, ...]]:
    return {"entry": ENTRY_SPACE, "filter": FILTER_SPACE, "exit": EXIT_SPACE}[part][kind]


def fix_component(part: str, comp: dict, rng: random.Random | None = None) -> dict:
    """Fill missing parameters, clamp values into range and repair orderings (fast < slow ...)."""
    space = space_of(part, comp["kind"])
    out: dict = {"kind": comp["kind"]}
    for name, dom in space.items():
        value = comp.get(name)
        if isinstance(dom, tuple):
            out[name] = value if value in dom else (rng.choice(dom) if rng else dom[0])
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = dom.clamp(value)
        else:
            out[name] = dom.sample(rng) if rng else dom.clamp((dom.lo + dom.hi) / 2)
    kind = out["kind"]
    if kind in ("ma_cross", "macd"):
        slow_dom = space["slow"]
        assert isinstance(slow_dom, Num)
        if out["slow"] < out["fast"] * 1.5:
            out["slow"] = slow_dom.clamp(max(out["fast"] * 2, out["fast"] + 5))
        if out["slow"] < out["fast"] * 1.5:
            out["fast"] = max(2, int(out["slow"] // 2))
    if kind == "rsi_revert" and out["high"] < out["low"] + 15:
        out["high"] = min(80, out["low"] + 25)
    if kind == "zscore" and out["exit_z"] <= -out["entry_z"]:
        out["exit_z"] = 0.0
    if kind == "donchian" and out["exit_window"] > out["window"]:
        out["exit_window"] = max(5, out["window"] // 2)
    return out


def normalise_spec(raw: object) -> dict | None:
    """A clean copy of a spec read from text, or None when it is not one this module wrote."""
    if not isinstance(raw, dict) or not isinstance(raw.get("entry"), dict):
        return None
    try:
        if raw["entry"].get("kind") not in ENTRY_SPACE:
            return None
        filters = [f for f in raw.get("filters", []) if isinstance(f, dict) and f.get("kind") in FILTER_SPACE]
        exits = [x for x in raw.get("exits", []) if isinstance(x, dict) and x.get("kind") in EXIT_SPACE]
        spec = {
            "entry": fix_component("entry", raw["entry"]),
            "exits": unique_kinds([fix_component("exit", x) for x in exits])[:MAX_EXITS] or [{"kind": "opposite"}],
            "filters": unique_kinds([fix_component("filter", f) for f in filters])[:MAX_FILTERS],
        }
    except (TypeError, ValueError, KeyError, AssertionError):
        return None
    return spec


def unique_kinds(comps: list[dict]) -> list[dict]:
    seen: set[str] = set()
    out = []
    for c in comps:
        if c["kind"] not in seen:
            seen.add(c["kind"])
            out.append(c)
    return out


def spec_in(region: str | None, line: re.Pattern[str], normalise: Callable[[dict], dict]) -> dict | None:
    """The spec a search recorded on ``line`` in a region it wrote, normalised; None for any other region."""
    m = line.search(region or "")
    if not m:
        return None
    try:
        return normalise(json.loads(m.group(1)))
    except ValueError:
        return None


def spec_of(region: str) -> dict | None:
    """The spec recorded in a region this proposer wrote, else None."""
    return spec_in(region, SPEC_LINE, normalise_spec)


def spec_json(spec: dict) -> str:
    return json.dumps(spec, separators=(",", ":"), sort_keys=False)


def fmt(x: float) -> str:
    return format(round(float(x), 6), "g") if not float(x).is_integer() else str(int(x))


def describe_entry(e: dict) -> str:
    k = e["kind"]
    if k == "ma_cross":
        fast, slow = f"{e['ma'].upper()} {e['fast']}", f"{e['ma'].upper()} {e['slow']}"
        return f"{fast} crosses above {slow}" if e["mode"] == "cross" else f"{fast} above {slow}"
    if k == "price_ma":
        ma = f"{e['ma'].upper()} {e['window']}"
        return f"close crosses above {ma}" if e["mode"] == "cross" else f"close above {ma}"
    if k == "macd":
        verb = "crosses above" if e["mode"] == "cross" else "above"
        return f"MACD {e['fast']}/{e['slow']} {verb} its {e['signal']}-bar signal line"
    if k == "roc":
        return f"{e['window']}-bar rate of change above {fmt(e['threshold'] * 100)}%"
    if k == "rsi_momo":
        return f"RSI {e['window']} crosses above {e['level']}"
    if k == "zscore":
        return f"{e['window']}-bar z-score of the close below -{fmt(e['entry_z'])}"
    if k == "bollinger":
        return f"close back above the lower {e['window']}-bar Bollinger band ({fmt(e['width'])} sd)"
    if k == "rsi_revert":
        return f"RSI {e['window']} below {e['low']}"
    return f"close above the prior {e['window']}-bar high (Donchian breakout)"


def describe_opposite(e: dict) -> str:
    k = e["kind"]
    if k in ("ma_cross", "price_ma", "macd"):
        return "the opposite cross" if e["mode"] == "cross" else "the opposite condition"
    if k == "roc":
        return f"{e['window']}-bar rate of change below 0"
    if k == "rsi_momo":
        return f"RSI {e['window']} below {100 - e['level']}"
    if k == "zscore":
        return f"z-score back above {fmt(e['exit_z'])}"
    if k == "bollinger":
        return f"close back above the {e['window']}-bar mean"
    if k == "rsi_revert":
        return f"RSI {e['window']} above {e['high']}"
    return f"close below the prior {e['exit_window']}-bar low"


def describe_filter(f: dict) -> str:
    k = f["kind"]
    if k == "trend":
        return f"close above {f['ma'].upper()} {f['window']}"
    if k == "atr":
        return f"ATR {f['window']} / close below {fmt(f['ratio'])}x its {f['lookback']}-bar average"
    if k == "stdev":
        return f"{f['window']}-bar return volatility below {fmt(f['ratio'])}x its {f['lookback']}-bar average"
    if k == "volume":
        return f"volume above {fmt(f['ratio'])}x its {f['window']}-bar average"
    return f"{f['window']}-bar rate of change positive"


def describe_exit(x: dict, entry: dict) -> str:
    k = x["kind"]
    if k == "opposite":
        return describe_opposite(entry)
    if k == "trail":
        return f"close {x['pct']}% below its {x['window']}-bar high"
    if k == "time":
        return f"no entry signal for {x['bars']} bars"
    return f"close below {x['ma'].upper()} {x['window']}"


def describe(spec: dict) -> str:
    """One line a person can read: entry, filters, exits."""
    text = f"enter when {describe_entry(spec['entry'])}"
    if spec["filters"]:
        text += " and " + " and ".join(describe_filter(f) for f in spec["filters"])
    return text + "; exit on " + " or ".join(describe_exit(x, spec["entry"]) for x in spec["exits"])


def indicator_families(spec: dict) -> set[str]:
    """Indicator families a spec uses (sma, ema, rsi, macd, atr, ...), for variety checks."""
    out: set[str] = set()
    e = spec["entry"]
    out.add({"ma_cross": e.get("ma"), "price_ma": e.get("ma"), "rsi_momo": "rsi", "rsi_revert": "rsi"}.get(
        e["kind"], e["kind"]))
    for f in spec["filters"]:
        out.add({"trend": f.get("ma"), "momentum": "roc"}.get(f["kind"], f["kind"]))
    for x in spec["exits"]:
        if x["kind"] != "opposite":
            out.add({"ma_stop": x.get("ma"), "trail": "trailing stop", "time": "time stop"}[x["kind"]])
    return out



def columns_needed(spec: dict) -> set[str]:
    """The data columns a spec's code reads beyond Close (the ATR and volume filters, the Donchian entry)."""
    kinds = [spec["entry"]["kind"], *(f["kind"] for f in spec["filters"]), *(x["kind"] for x in spec["exits"])]
    return {c for k in kinds for c in NEEDS.get(k, ())}


def fit_columns(spec: dict, have: set[str], fallback: dict) -> dict:
    """``spec`` without what reads a column the data lacks: such filters dropped, such an entry replaced by
    ``fallback``'s (a close-only rule)."""
    out = {**spec, "filters": [f for f in spec["filters"] if set(NEEDS.get(f["kind"], ())) <= have]}
    if not set(NEEDS.get(out["entry"]["kind"], ())) <= have:
        out["entry"] = dict(fallback["entry"])
    return out
