"""Where bars come from besides a user's CSV: the bundled samples, Yahoo Finance, skfolio's S&P 500 stocks.

Each returns raw frames for ``validate``; none of them writes anything, and a source that cannot
deliver raises a DataError naming why.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import re
import warnings
from pathlib import Path

import pandas as pd

from alphaloop.data.errors import DataError

DEFAULT_TICKER = "SPY"  # prepare.py --ticker and the bundled sample read without one
SKFOLIO_FILE = ("datasets", "data", "sp500_dataset.csv.gz")  # inside the installed skfolio package
SKFOLIO_HINT = "pip install -e '.[stocks]'"
SKFOLIO_PRICES = "Close, adjusted for splits and dividends by the data's source (dividends reinvested)"


NASDAQ_ALIASES = frozenset({"NASDAQ", "^IXIC", "IXIC", "QQQ", "^NDX", "NDX"})


def is_nasdaq(ticker: str) -> bool:
    """Whether a ticker or sample label names the NASDAQ index (it picks the NASDAQ sample)."""
    return ticker.upper() in NASDAQ_ALIASES or "NASDAQ" in ticker.upper()


def sample_frame(ticker: str = DEFAULT_TICKER) -> tuple[pd.DataFrame, str]:
    """Real daily OHLCV shipped with ``arch``: S&P 500 (default) or NASDAQ, 1999-2018."""
    if is_nasdaq(ticker):
        from arch.data import nasdaq as module

        name = "NASDAQ Composite (arch.data.nasdaq sample, 1999-2018)"
    else:
        from arch.data import sp500 as module

        name = "S&P 500 (arch.data.sp500 sample, 1999-2018)"
    df = module.load()
    df.index = pd.DatetimeIndex(df.index, name="Date")
    return df, name


NETWORK_MARKERS = ("could not resolve host", "dnserror", "failed to connect", "connection refused", "connectionerror",
                   "timed out", "timeout", "network is unreachable", "name or service not known", "ssl", "proxy")
_CURL_REASON = re.compile(r"curl: \(\d+\) .*?(?= \(|\. |$)")


class _Collect(logging.Handler):
    """Keeps the errors yfinance logs instead of raising: they name why a download came back empty."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip()
        if text and "failed download" not in text.lower():
            self.messages.append(text)


def yfinance_cause(messages: list[str], ticker: str) -> str:
    """One line naming why yfinance delivered nothing, from what it logged or raised."""
    if not messages:
        return f"yfinance returned no rows for {ticker} and logged no reason"
    joined = " ".join(messages)
    low = joined.lower()
    short = (m.group(0).strip() if (m := _CURL_REASON.search(joined)) else messages[0])[:160]
    if any(k in low for k in NETWORK_MARKERS):
        return f"no network connection to Yahoo Finance ({short})"
    if "rate limit" in low or "too many requests" in low:
        return f"Yahoo Finance is rate-limiting requests ({short}); wait a few minutes and retry"
    if "delisted" in low or "no data found" in low or "not found" in low:
        return f"Yahoo Finance has no daily data for {ticker} ({short}); check the ticker"
    return f"yfinance returned no rows for {ticker} ({short})"


def download_yfinance(ticker: str, start: str | None) -> pd.DataFrame:
    """Daily bars from Yahoo Finance, unadjusted OHLC plus Adj Close; raises DataError naming the cause."""
    collect = _Collect()
    log = logging.getLogger("yfinance")
    level, propagate = log.level, log.propagate
    log.addHandler(collect)
    log.setLevel(logging.ERROR)
    log.propagate = False
    try:
        import yfinance as yf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = yf.download(
                ticker, start=start or "1993-01-01", auto_adjust=False, progress=False,
                actions=False, threads=False, timeout=15,
            )
    except Exception as exc:  # yfinance raises many types for network problems
        raise DataError(yfinance_cause([*collect.messages, f"{type(exc).__name__}: {exc}"], ticker)) from exc
    finally:
        log.removeHandler(collect)
        log.setLevel(level)
        log.propagate = propagate
    if df is None or df.empty:
        raise DataError(yfinance_cause(collect.messages, ticker))
    if isinstance(df.columns, pd.MultiIndex):
        df.columns = df.columns.get_level_values(0)
    df.index = pd.DatetimeIndex(df.index, name="Date").tz_localize(None)
    return df


def skfolio_frames() -> dict[str, pd.DataFrame]:
    """The 20 S&P 500 stocks shipped inside skfolio's wheel: daily adjusted closes, 1990-2022, as Close.

    Read from the installed package's data file without importing skfolio (which would load
    scikit-learn and cvxpy for one CSV). Each stock keeps the dates on which it has a price.
    """
    spec = importlib.util.find_spec("skfolio")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"--source skfolio needs the skfolio package, which is not installed; run: {SKFOLIO_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*SKFOLIO_FILE)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            wide = pd.read_csv(fh, index_col=0, parse_dates=True)
    except (OSError, ValueError) as exc:
        raise DataError(f"skfolio is installed but its S&P 500 data file could not be read ({path}: {exc}); "
                        f"reinstall it: {SKFOLIO_HINT}") from exc
    wide.index = pd.DatetimeIndex(wide.index, name="Date")
    return {str(name): wide[[name]].dropna().rename(columns={name: "Close"}) for name in wide.columns}
