"""CSV dialects other tools write go through the real `prepare.py --source csv` and freeze the right dates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
N = 400


def ohlcv(n: int = N, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    idx = pd.bdate_range("2019-06-03", periods=n, name="Date")
    return pd.DataFrame({"Open": close * 0.999, "High": close * 1.01, "Low": close * 0.99,
                         "Close": close, "Volume": rng.integers(1_000, 5_000, n).astype(float)}, index=idx)


def prepare(csv: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "prepare.py"), "--source", "csv", "--csv", str(csv),
                           "--out", str(out)], cwd=csv.parent, capture_output=True, text=True, timeout=120)


def frozen(out: Path) -> pd.DataFrame:
    parts = [pd.read_csv(out / f"{s}.csv", index_col="Date", parse_dates=["Date"]) for s in ("train", "val", "test")]
    return pd.concat(parts)


def assert_frozen_like(res: subprocess.CompletedProcess, out: Path, want: pd.DataFrame) -> None:
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    got = frozen(out)
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(got["Close"].to_numpy(), want["Close"].to_numpy(), rtol=1e-9)


def assert_refused(res: subprocess.CompletedProcess, out: Path, word: str) -> None:
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0], res.stderr
    assert not out.exists()


def test_yfinance_two_level_header(tmp_path: Path) -> None:
    want = ohlcv()
    frame = want.assign(**{"Adj Close": want["Close"] * 0.95})[["Adj Close", "Close", "High", "Low", "Open", "Volume"]]
    frame.columns = pd.MultiIndex.from_product([frame.columns, ["SPY"]], names=["Price", "Ticker"])
    path = tmp_path / "yf.csv"
    frame.to_csv(path)
    assert path.read_text().splitlines()[:3] == ["Price,Adj Close,Close,High,Low,Open,Volume",
                                                 "Ticker,SPY,SPY,SPY,SPY,SPY,SPY", "Date,,,,,,"]
    out = tmp_path / "data"
    assert_frozen_like(prepare(path, out), out, want)
    assert "Adj Close" in frozen(out).columns
    manifest = json.loads((out / "manifest.json").read_text())
    # issue 12 item 4: an Adj Close that differs from Close is now what returns rest on (it said "not used yet")
    assert manifest["return_prices"].startswith("Adj Close (dividends reinvested")


def test_yfinance_file_with_two_tickers_is_refused(tmp_path: Path) -> None:
    want = ohlcv()
    frame = pd.concat({"SPY": want, "QQQ": want}, axis=1).swaplevel(axis=1)
    frame.columns.names = ["Price", "Ticker"]
    path = tmp_path / "two.csv"
    frame.to_csv(path)
    assert_refused(prepare(path, tmp_path / "data"), tmp_path / "data", "2 tickers")


def test_daylight_saving_offsets_keep_the_exchange_date(tmp_path: Path) -> None:
    want = ohlcv()
    stamps = want.index.tz_localize("America/New_York")
    text = want.copy()
    text.index = pd.Index([str(t) for t in stamps], name="Date")
    assert "2020-03-06 00:00:00-05:00" in text.index and "2020-03-09 00:00:00-04:00" in text.index
    path = tmp_path / "history.csv"
    text.to_csv(path)
    out = tmp_path / "data"
    assert_frozen_like(prepare(path, out), out, want)


def test_offsets_east_of_utc_are_not_shifted_to_the_previous_day(tmp_path: Path) -> None:
    want = ohlcv()
    text = want.copy()
    text.index = pd.Index([str(t) for t in want.index.tz_localize("Asia/Tokyo")], name="Date")
    path = tmp_path / "tokyo.csv"
    text.to_csv(path)
    out = tmp_path / "data"
    assert_frozen_like(prepare(path, out), out, want)


@pytest.mark.parametrize("unit, scale", [("seconds", 1), ("milliseconds", 1000)])
def test_unix_epoch_dates(tmp_path: Path, unit: str, scale: int) -> None:
    want = ohlcv()
    text = want.copy()
    # 14:30 UTC is the US open as yfinance's raw timestamps give it; the bar's date stays that day.
    seconds = (want.index + pd.Timedelta(hours=14, minutes=30) - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    text.index = pd.Index(seconds * scale, name="Date")
    path = tmp_path / f"epoch_{unit}.csv"
    text.to_csv(path)
    out = tmp_path / "data"
    res = prepare(path, out)
    assert_frozen_like(res, out, want)
    assert frozen(out).index.min().year > 1970


def test_epoch_of_unknown_magnitude_is_refused(tmp_path: Path) -> None:
    text = ohlcv()
    text.index = pd.Index(np.arange(len(text)) + 5000, name="Date")
    path = tmp_path / "small.csv"
    text.to_csv(path)
    assert_refused(prepare(path, tmp_path / "data"), tmp_path / "data", "epoch")


@pytest.mark.parametrize("sep, decimal", [(";", ","), (";", "."), ("\t", ".")])
def test_semicolon_and_tab_separated(tmp_path: Path, sep: str, decimal: str) -> None:
    want = ohlcv()
    path = tmp_path / "sep.csv"
    want.to_csv(path, sep=sep, decimal=decimal, float_format="%.12g")
    assert sep in path.read_text().splitlines()[0]
    out = tmp_path / "data"
    assert_frozen_like(prepare(path, out), out, want)


def test_intraday_bars_are_refused(tmp_path: Path) -> None:
    want = ohlcv()
    text = want.copy()
    text.index = pd.Index([str(d + pd.Timedelta(hours=10 + (i % 2) * 5)) for i, d in
                           enumerate(want.index.repeat(2)[:N])], name="Date")
    path = tmp_path / "intraday.csv"
    text.to_csv(path)
    assert_refused(prepare(path, tmp_path / "data"), tmp_path / "data", "intraday")
