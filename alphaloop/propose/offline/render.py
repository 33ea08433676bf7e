"""Render a spec to region code: feature columns built with past-only pandas calls, then the row rule."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from alphaloop.propose.offline.spec import (
    RAW_COLUMNS,
    SPEC_PREFIX,
    describe,
    describe_entry,
    describe_exit,
    describe_filter,
    fmt,
    normalise_spec,
    spec_json,
)


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

