"""A proposer that needs no model: a mutation search over small strategy specs.

A strategy is a spec (one entry rule, one or two exit rules, up to two filters, their
parameters). The spec renders to plain region code whose first line records the spec as JSON,
so the next iteration can read its parent's spec back and mutate it: tune a parameter, swap the
entry indicator, add/drop/swap a filter, change the exits. Regions without a spec (the
hand-written baseline, LLM code) start from the spec equivalent to the baseline SMA 20/50 cross.

Generated code only uses rolling/ewm windows, ``diff`` and positive ``shift``, so every feature
at row t depends on rows up to t; it has no imports, no underscore names and no lambdas, and
``strategy_logic`` returns 0 while any value it reads is NaN.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import textwrap
import time
from dataclasses import dataclass

from alphaloop.proposers.base import Expectation, Proposal, ProposalContext

SPEC_PREFIX = "# offline-spec: "
SPEC_LINE = re.compile(r"^\s*# offline-spec:\s*(\{.*\})\s*$", re.MULTILINE)
MAX_FILTERS = 2
MAX_EXITS = 2
RAW_COLUMNS = ("Open", "High", "Low", "Close", "Volume")


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
BASELINE_SPEC: dict = {
    "entry": {"kind": "ma_cross", "ma": "sma", "fast": 20, "slow": 50, "mode": "cross"},
    "exits": [{"kind": "opposite"}],
    "filters": [],
}


# ---- reading, checking and describing specs -------------------------------------------------

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


def spec_of(region: str) -> dict | None:
    """The spec recorded in a region this proposer wrote, else None."""
    m = SPEC_LINE.search(region or "")
    if not m:
        return None
    try:
        return normalise_spec(json.loads(m.group(1)))
    except ValueError:
        return None


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


# ---- rendering a spec to region code ---------------------------------------------------------

@dataclass(frozen=True)
class Cond:
    """``left op right [* factor]`` over feature columns; renders for a row or for the frame."""

    left: str
    op: str
    right: str | float
    factor: float | None = None

    def columns(self) -> list[str]:
        return [self.left] + ([self.right] if isinstance(self.right, str) else [])

    def scalar(self) -> str:
        return f'row["{self.left}"] {self.op} {self.side("row")}'

    def vector(self) -> str:
        return f'(df["{self.left}"] {self.op} {self.side("df")})'

    def side(self, holder: str) -> str:
        base = f'{holder}["{self.right}"]' if isinstance(self.right, str) else fmt(self.right)
        return f"{base} * {fmt(self.factor)}" if self.factor is not None else base


def tag(x: float) -> str:
    return fmt(x).replace(".", "p").replace("-", "m")


class Features:
    """Ordered feature blocks keyed by the column they define; a repeated key is written once."""

    def __init__(self) -> None:
        self.blocks: dict[str, list[str]] = {}

    def add(self, key: str, *lines: str) -> str:
        if key not in self.blocks:
            self.blocks[key] = list(lines)
        return key

    def ma(self, kind: str, n: int) -> str:
        if kind == "ema":
            line = f'df["ema_{n}"] = df["Close"].ewm(span={n}, adjust=False, min_periods={n}).mean()'
            return self.add(f"ema_{n}", line)
        return self.add(f"sma_{n}", f'df["sma_{n}"] = df["Close"].rolling({n}).mean()')

    def prev(self, col: str) -> str:
        name = "close_prev" if col == "Close" else f"{col}_prev"
        return self.add(name, f'df["{name}"] = df["{col}"].shift(1)')

    def rsi(self, n: int) -> str:
        return self.add(
            f"rsi_{n}",
            'change = df["Close"].diff()',
            f"gain = change.clip(lower=0).ewm(alpha=1 / {n}, adjust=False, min_periods={n}).mean()",
            f"loss = (-change).clip(lower=0).ewm(alpha=1 / {n}, adjust=False, min_periods={n}).mean()",
            f'df["rsi_{n}"] = 100 - 100 / (1 + gain / loss)',
        )

    def roc(self, n: int) -> str:
        return self.add(f"roc_{n}", f'df["roc_{n}"] = df["Close"] / df["Close"].shift({n}) - 1')

    def std(self, n: int) -> str:
        return self.add(f"std_{n}", f'df["std_{n}"] = df["Close"].rolling({n}).std()')

    def average(self, col: str, n: int) -> str:
        name = f"{col}_avg_{n}"
        return self.add(name, f'df["{name}"] = df["{col}"].rolling({n}).mean()')

    def atr_pct(self, n: int) -> str:
        return self.add(
            f"atr_pct_{n}",
            'prev_close = df["Close"].shift(1)',
            'high_low = df["High"] - df["Low"]',
            'high_close = (df["High"] - prev_close).abs()',
            'low_close = (df["Low"] - prev_close).abs()',
            "true_range = np.maximum(high_low, np.maximum(high_close, low_close))",
            f'df["atr_pct_{n}"] = true_range.rolling({n}).mean() / df["Close"]',
        )

    def volatility(self, n: int) -> str:
        return self.add(f"vol_{n}", f'df["vol_{n}"] = (df["Close"].diff() / df["Close"].shift(1)).rolling({n}).std()')

    def lines(self) -> list[str]:
        return [line for block in self.blocks.values() for line in block]


def cross(feat: Features, a: str, b: str | float, up: bool) -> list[Cond]:
    """``a`` crosses ``b`` on this bar: on the right side now, on the other side (or level) one bar ago."""
    pa = feat.prev(a)
    pb = feat.prev(b) if isinstance(b, str) else b
    return [Cond(a, ">", b), Cond(pa, "<=", pb)] if up else [Cond(a, "<", b), Cond(pa, ">=", pb)]


def entry_rule(feat: Features, e: dict) -> tuple[list[Cond], list[Cond]]:
    """The entry conditions and the rule's own opposite (its natural exit)."""
    k = e["kind"]
    if k in ("ma_cross", "price_ma", "macd"):
        if k == "ma_cross":
            a, b = feat.ma(e["ma"], e["fast"]), feat.ma(e["ma"], e["slow"])
        elif k == "price_ma":
            a, b = "Close", feat.ma(e["ma"], e["window"])
        else:
            fast, slow = e["fast"], e["slow"]
            a = feat.add(
                f"macd_{fast}_{slow}",
                f'fast_ema = df["Close"].ewm(span={fast}, adjust=False, min_periods={fast}).mean()',
                f'slow_ema = df["Close"].ewm(span={slow}, adjust=False, min_periods={slow}).mean()',
                f'df["macd_{fast}_{slow}"] = fast_ema - slow_ema',
            )
            b = feat.add(
                f"{a}_signal_{e['signal']}",
                f'df["{a}_signal_{e["signal"]}"] = df["{a}"].ewm(span={e["signal"]}, adjust=False, '
                f'min_periods={e["signal"]}).mean()',
            )
        if e["mode"] == "cross":
            return cross(feat, a, b, True), cross(feat, a, b, False)
        return [Cond(a, ">", b)], [Cond(a, "<", b)]
    if k == "roc":
        r = feat.roc(e["window"])
        return [Cond(r, ">", e["threshold"])], [Cond(r, "<", 0)]
    if k == "rsi_momo":
        r = feat.rsi(e["window"])
        return cross(feat, r, e["level"], True), [Cond(r, "<", 100 - e["level"])]
    if k == "zscore":
        n = e["window"]
        mean, sd = feat.ma("sma", n), feat.std(n)
        z = feat.add(f"z_{n}", f'df["z_{n}"] = (df["Close"] - df["{mean}"]) / df["{sd}"]')
        return [Cond(z, "<", -e["entry_z"])], [Cond(z, ">", e["exit_z"])]
    if k == "bollinger":
        n, w = e["window"], e["width"]
        mid, sd = feat.ma("sma", n), feat.std(n)
        low = feat.add(f"bb_low_{n}_{tag(w)}", f'df["bb_low_{n}_{tag(w)}"] = df["{mid}"] - {fmt(w)} * df["{sd}"]')
        return cross(feat, "Close", low, True), [Cond("Close", ">", mid)]
    if k == "rsi_revert":
        r = feat.rsi(e["window"])
        return [Cond(r, "<", e["low"])], [Cond(r, ">", e["high"])]
    n, m = e["window"], e["exit_window"]
    high = feat.add(f"dc_high_{n}", f'df["dc_high_{n}"] = df["High"].rolling({n}).max().shift(1)')
    low = feat.add(f"dc_low_{m}", f'df["dc_low_{m}"] = df["Low"].rolling({m}).min().shift(1)')
    return [Cond("Close", ">", high)], [Cond("Close", "<", low)]


def filter_rule(feat: Features, f: dict) -> list[Cond]:
    k = f["kind"]
    if k == "trend":
        return [Cond("Close", ">", feat.ma(f["ma"], f["window"]))]
    if k in ("atr", "stdev"):
        col = feat.atr_pct(f["window"]) if k == "atr" else feat.volatility(f["window"])
        return [Cond(col, "<", feat.average(col, f["lookback"]), f["ratio"])]
    if k == "volume":
        n = f["window"]
        col = feat.add(f"volume_ratio_{n}", f'df["volume_ratio_{n}"] = df["Volume"] / df["Volume"].rolling({n}).mean()')
        return [Cond(col, ">", f["ratio"])]
    return [Cond(feat.roc(f["window"]), ">", 0)]


def exit_rule(feat: Features, x: dict, opposite: list[Cond], entry_all: list[Cond]) -> list[Cond]:
    k = x["kind"]
    if k == "opposite":
        return opposite
    if k == "trail":
        n, p = x["window"], x["pct"]
        name = f"trail_stop_{n}_{p}"
        feat.add(name, f'df["{name}"] = df["Close"].rolling({n}).max() * {fmt(1 - p / 100)}')
        return [Cond("Close", "<", name)]
    if k == "time":
        k_bars = x["bars"]
        feat.add("entry_on", *entry_on_lines(entry_all))
        name = feat.add(f"entry_seen_{k_bars}", f'df["entry_seen_{k_bars}"] = df["entry_on"].rolling({k_bars}).max()')
        return [Cond(name, "==", 0)]
    return [Cond("Close", "<", feat.ma(x["ma"], x["window"]))]


def entry_on_lines(conds: list[Cond]) -> list[str]:
    """``df["entry_on"]``: 1.0 on bars where the entry and its filters hold, for the time exit."""
    one = f'df["entry_on"] = ({" & ".join(c.vector() for c in conds)}).astype("float64")'
    if len(one) <= 96:
        return [one]
    return ['df["entry_on"] = ('] + [f"    {'& ' if i else ''}{c.vector()}" for i, c in enumerate(conds)] + [
        ').astype("float64")']


def if_block(conds: list[Cond], result: int, comments: list[str]) -> list[str]:
    one = f"    if {' and '.join(c.scalar() for c in conds)}:"
    head = [one] if len(one) <= 100 else (
        ["    if ("] + [f"        {'and ' if i else ''}{c.scalar()}" for i, c in enumerate(conds)] + ["    ):"]
    )
    return [f"    # {c}" for c in comments] + head + [f"        return {result}"]


def docstring(text: str) -> list[str]:
    lines = textwrap.wrap(text.replace('"""', "'''").replace("\\", "/"), 92)
    if len(lines) == 1:
        return [f'    """{lines[0]}"""']
    return ['    """' + lines[0]] + [f"    {line}" for line in lines[1:]] + ['    """']


def render(spec: dict) -> str:
    """The region code of a spec (missing parameters filled in), its JSON recorded on the first line."""
    clean = normalise_spec(spec)
    if clean is None:
        raise ValueError(f"not an offline spec: {spec!r}")
    spec = clean
    feat = Features()
    entry, opposite = entry_rule(feat, spec["entry"])
    filters = [c for f in spec["filters"] for c in filter_rule(feat, f)]
    exits = [(exit_rule(feat, x, opposite, entry + filters), describe_exit(x, spec["entry"])) for x in spec["exits"]]
    columns = list(dict.fromkeys(
        c for conds in [entry, filters, *[e for e, _ in exits]] for cond in conds for c in cond.columns()
        if c not in RAW_COLUMNS
    ))
    names = ", ".join(f'"{c}"' for c in columns) + ("," if len(columns) == 1 else "")
    loop = [f"    for name in ({names}):"] if len(names) <= 80 else (
        ["    for name in ("] + [f"        {line}" for line in textwrap.wrap(names, 88)] + ["    ):"]
    )
    entry_comments = [f"enter: {describe_entry(spec['entry'])}"]
    entry_comments += [f"filter: {describe_filter(f)}" for f in spec["filters"]]
    out = [f"{SPEC_PREFIX}{spec_json(spec)}", "", "def generate_features(df):"]
    out += docstring(f"Offline search: {describe(spec)}. Columns use past and present bars only.")
    out += [f"    {line}" for line in feat.lines()] + ["    return df", "", "", "def strategy_logic(row):"]
    out += docstring("Exit rules first (they manage risk), then the entry when every filter agrees; "
                     "0 while warming up.")
    out += loop + ["        if pd.isna(row[name]):", "            return 0"]
    for conds, text in exits:
        out += if_block(conds, -1, [f"exit: {text}"])
    out += if_block(entry + filters, 1, entry_comments) + ["    return 0"]
    return "\n".join(out) + "\n"


# ---- mutations -----------------------------------------------------------------------------

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
    return Note(f"The {FILTER_LABEL[f['kind']]} filter may remove good trades along with bad ones; without it the entry "
                f"rule trades on its own.", f"filter removed: {describe_filter(f)}",
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


MUTATIONS = {
    "tune": tune, "swap_entry": swap_entry, "add_filter": add_filter, "drop_filter": drop_filter,
    "swap_filter": swap_filter, "change_exit": change_exit,
}
FILTER_OPS = {"add_filter", "drop_filter", "swap_filter"}
BASE_WEIGHTS = {"tune": 0.36, "swap_entry": 0.16, "add_filter": 0.15, "drop_filter": 0.08,
                "swap_filter": 0.09, "change_exit": 0.16}


def mutation_weights(spec: dict, last_outcome: str | None) -> dict[str, float]:
    """Applicable mutations, nudged by the latest outcome (too few trades -> loosen, too many -> filter)."""
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
    return w


def mutate(rng: random.Random, parent: dict, metric: str,
           last_outcome: str | None) -> tuple[dict, list[str], list[Note]]:
    """Apply one mutation (sometimes two) and return the child spec with what was done."""
    spec = copy.deepcopy(parent)
    steps = 2 if rng.random() < 0.2 else 1
    names: list[str] = []
    notes: list[Note] = []
    for _ in range(steps):
        w = mutation_weights(spec, last_outcome)
        if names:
            done = {names[0]} | (FILTER_OPS if names[0] in FILTER_OPS else set())
            w = {k: v for k, v in w.items() if k not in done}
        name = rng.choices(sorted(w), weights=[w[k] for k in sorted(w)])[0]
        notes.append(MUTATIONS[name](rng, spec, metric))
        names.append(name)
    return spec, names, notes


class OfflineProposer:
    """Deterministic mutation search: the same seed, iteration and parent give the same proposal."""

    name = "offline"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def propose(self, ctx: ProposalContext) -> Proposal:
        started = time.monotonic()
        parent = spec_of(ctx.parent_region) or copy.deepcopy(BASELINE_SPEC)
        rng = random.Random(f"{self.seed}:{ctx.iteration}")
        child, names, notes = mutate(rng, parent, ctx.metric, ctx.last_outcome)
        for _ in range(20):
            if spec_json(child) != spec_json(parent):
                break
            child, names, notes = mutate(rng, parent, ctx.metric, ctx.last_outcome)
        lead = notes[0]
        return Proposal(
            region=render(child),
            hypothesis=" ".join(n.hypothesis for n in notes),
            change="; ".join(n.change for n in notes),
            expected="; ".join(n.expected for n in notes),
            expectation=Expectation(metric=lead.metric, direction=lead.direction),
            model="offline",
            seconds=time.monotonic() - started,
            raw=f"mutations: {', '.join(names)}\nspec: {spec_json(child)}",
        )

    def compact(self, text: str, budget_tokens: int) -> str | None:
        """No model to summarise with: the loop's deterministic compaction applies."""
        return None
