"""Files as users have them: each written here as the real tool writes it (separators, encodings,
header quirks), then frozen by prepare.py in a real subprocess; each asserts what the user relies on:
dates on the right day, prices right, the frequency that annualises them, or one `error:` line."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
N = 400


def bars(n: int = N, freq: str = "B", seed: int = 3) -> pd.DataFrame:
    """A seeded random walk of daily bars with open, high, low, close and volume."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2015-01-02", periods=n, freq=freq, name="Date")
    close = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n)))
    open_ = close * (1 + rng.normal(0, 0.003, n))
    return pd.DataFrame({"Open": open_, "High": np.maximum(open_, close) * 1.004,
                         "Low": np.minimum(open_, close) * 0.996, "Close": close,
                         "Volume": rng.integers(1_000_000, 5_000_000, n).astype(float)}, index=idx).round(2)


def prepare(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, str(ROOT / "prepare.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def frozen(out: Path) -> pd.DataFrame:
    parts = [pd.read_csv(out / f"{s}.csv", index_col="Date", parse_dates=["Date"]) for s in ("train", "val", "test")]
    return pd.concat(parts)


def accepted(path: Path, tmp: Path, *extra: str) -> tuple[pd.DataFrame, dict, str]:
    out = tmp / f"data-{path.stem}"
    res = prepare("--source", "csv", "--csv", str(path), "--out", str(out), *extra, cwd=tmp)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    return frozen(out), json.loads((out / "manifest.json").read_text()), res.stdout + res.stderr


def refused(path: Path, tmp: Path, *words: str, extra: tuple[str, ...] = ()) -> str:
    out = tmp / f"refused-{path.stem}"
    res = prepare("--source", "csv", "--csv", str(path), "--out", str(out), *extra, cwd=tmp)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2, res.stdout + res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


def same_bars(got: pd.DataFrame, want: pd.DataFrame, cols: tuple[str, ...] = ("Close",)) -> None:
    assert list(got.index) == list(want.index)
    for col in cols:
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=1e-9)


def test_european_export_semicolons_decimal_commas_day_first(tmp_path: Path) -> None:
    want = bars()
    lines = ["Datum;Open;High;Low;Close;Volume"] + [
        f"{d:%d.%m.%Y};" + ";".join(f"{v:.2f}".replace(".", ",") for v in row[:4])
        + f";{int(row[4]):,}".replace(",", ".")
        for d, row in zip(want.index, want.to_numpy(), strict=True)]
    path = tmp_path / "dax.csv"
    path.write_text("\n".join(lines) + "\n", encoding="cp1252")
    got, manifest, _ = accepted(path, tmp_path)
    same_bars(got, want, ("Open", "Close", "Volume"))
    assert (got.index.day_of_week < 5).all()  # no day swapped with its month onto a weekend
    assert manifest["bars"] == {"frequency": "daily (5-day weeks)", "periods_per_year": 252.0}


def test_uk_day_first_slashes(tmp_path: Path) -> None:
    want = bars()
    frame = want.copy()
    frame.index = frame.index.strftime("%d/%m/%Y")
    path = tmp_path / "ftse.csv"
    frame.to_csv(path, index_label="Date")
    got, _, _ = accepted(path, tmp_path)
    same_bars(got, want)


def test_ambiguous_day_month_is_refused_with_the_flag_to_state_it(tmp_path: Path) -> None:
    months = pd.date_range("1980-01-01", periods=480, freq="MS")  # the 1st of each month: no day over 12
    frame = bars(480).set_axis(months.strftime("%d/%m/%Y"))
    path = tmp_path / "monthly.csv"
    frame.to_csv(path, index_label="Date")
    refused(path, tmp_path, "ambiguous", "--date-format")
    got, manifest, _ = accepted(path, tmp_path, "--date-format", "%d/%m/%Y")
    assert list(got.index) == list(months)
    assert manifest["bars"]["periods_per_year"] == 12.0


def test_day_first_inferred_inside_csv_dir(tmp_path: Path) -> None:
    folder = tmp_path / "prices"
    folder.mkdir()
    for i, name in enumerate(("AAA", "BBB")):
        frame = bars(seed=i)
        frame.index = frame.index.strftime("%d.%m.%Y")
        frame.to_csv(folder / f"{name}.csv", sep=";", decimal=",", index_label="Date")
    out = tmp_path / "data"
    res = prepare("--source", "csv", "--csv-dir", str(folder), "--out", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    got = pd.read_csv(out / "instruments" / "AAA" / "train.csv", index_col="Date", parse_dates=["Date"])
    assert list(got.index) == list(bars(seed=0).index[: len(got)])


@pytest.mark.parametrize("header", ["adjusted_close", "Adj. Close", "adjclose"])
def test_adjusted_close_names_of_other_sources(tmp_path: Path, header: str) -> None:
    want = bars()
    frame = want.copy()
    frame[header] = frame["Close"] * np.linspace(0.5, 1.0, len(frame))  # a 2:1 split's history, adjusted
    path = tmp_path / "av.csv"
    frame.to_csv(path, index_label="timestamp")
    got, manifest, _ = accepted(path, tmp_path)
    assert "Adj Close" in got.columns
    assert manifest["return_prices"].startswith("Adj Close")


def test_tradingview_unix_seconds_east_of_utc_keep_the_exchange_date(tmp_path: Path) -> None:
    want = bars()
    # a 10:00 Sydney open: 23:00 UTC the day before in summer (AEDT), 00:00 UTC in winter (AEST)
    local = want.index.tz_localize("Australia/Sydney") + pd.Timedelta(hours=10)
    frame = want.copy().rename(columns=str.lower)
    frame.index = pd.Index(local.tz_convert("UTC").as_unit("s").asi8, name="time")
    path = tmp_path / "ASX_XJO, 1D.csv"
    frame.to_csv(path)
    got, _, _ = accepted(path, tmp_path)
    same_bars(got, want)


def test_tradingview_new_york_open_stays_on_its_day(tmp_path: Path) -> None:
    want = bars()
    local = want.index.tz_localize("America/New_York") + pd.Timedelta(hours=9, minutes=30)
    frame = want.copy().rename(columns=str.lower)
    frame.index = pd.Index(local.tz_convert("UTC").as_unit("s").asi8, name="time")
    path = tmp_path / "spx.csv"
    frame.to_csv(path)
    got, _, _ = accepted(path, tmp_path)
    same_bars(got, want)


def test_universe_decides_adj_close_per_instrument(tmp_path: Path) -> None:
    folder = tmp_path / "prices"
    folder.mkdir()
    with_adj = bars(seed=1)
    with_adj["Adj Close"] = with_adj["Close"] * np.linspace(0.8, 1.0, len(with_adj))
    with_adj.to_csv(folder / "DIV.csv", index_label="Date")
    bars(seed=2).to_csv(folder / "NODIV.csv", index_label="Date")
    out = tmp_path / "data"
    res = prepare("--source", "csv", "--csv-dir", str(folder), "--out", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["universe"]["DIV"]["return_prices"].startswith("Adj Close")
    assert manifest["universe"]["NODIV"]["return_prices"].startswith("Close as traded (no Adj Close")
    assert "DIV" in manifest["return_prices"] and "NODIV" in manifest["return_prices"]
    assert "DIV " in res.stdout and "returns on Adj Close" in res.stdout
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    check = subprocess.run([sys.executable, str(ROOT / "harness.py"), "check", str(ROOT / "trade.py"), "--data",
                            str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    said = next(line for line in check.stdout.splitlines() if line.startswith("returns on:"))
    assert "per instrument" in said and "no dividends" in said and "Adj Close (dividends" in said, said


@pytest.mark.parametrize(("freq", "name", "per_year"),
                         [("W-FRI", "weekly", 52.0), ("D", "daily (7-day calendar)", 365.0)])
def test_frequency_is_inferred_recorded_said_and_annualises(tmp_path: Path, freq: str, name: str,
                                                            per_year: float) -> None:
    want = bars(freq=freq)
    path = tmp_path / "f.csv"
    want.to_csv(path, index_label="Date")
    _, manifest, said = accepted(path, tmp_path)
    assert manifest["bars"] == {"frequency": name, "periods_per_year": per_year}
    assert f"annualised with {per_year:g} bars a year" in said
    from alphaloop.data.frozen import load_universe
    from alphaloop.evaluate.universe import instrument_histories

    history = instrument_histories(load_universe(tmp_path / "data-f"))[0]
    assert history.periods_per_year == per_year
    from alphaloop.evaluate.backtest import sharpe

    r = np.array([0.01, -0.005, 0.007, 0.002])
    assert sharpe(r, history.periods_per_year) == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(per_year))


def test_irregular_dates_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    days = pd.DatetimeIndex(sorted(set(pd.Timestamp("2000-01-01") + pd.to_timedelta(
        np.cumsum(rng.integers(1, 40, N)), unit="D"))), name="Date")
    frame = bars(len(days)).set_axis(days)
    path = tmp_path / "odd.csv"
    frame.to_csv(path)
    refused(path, tmp_path, "bar frequency", "--bars-per-year")


def test_investing_com_export(tmp_path: Path) -> None:
    want = bars()
    rows = ['"Date","Price","Open","High","Low","Vol.","Change %"']
    for d, (o, h, lo, c, v) in list(zip(want.index, want.to_numpy(), strict=True))[::-1]:  # newest first
        rows.append(f'"{d:%m/%d/%Y}","{c * 30:,.2f}","{o * 30:,.2f}","{h * 30:,.2f}","{lo * 30:,.2f}",'
                    f'"{v / 1e6:.2f}M","0.10%"')
    path = tmp_path / "S&P 500 Historical Data.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    got, _, said = accepted(path, tmp_path)
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(got["Close"], (want["Close"] * 30).round(2), rtol=1e-9)
    np.testing.assert_allclose(got["Volume"], (want["Volume"] / 1e6).round(2) * 1e6, rtol=1e-9)
    assert "newest first; sorted them" in said


def test_nasdaq_com_export(tmp_path: Path) -> None:
    want = bars()
    rows = ["Date,Close/Last,Volume,Open,High,Low"] + [
        f"{d:%m/%d/%Y},${c:.2f},{int(v)},${o:.2f},${h:.2f},${lo:.2f}"
        for d, (o, h, lo, c, v) in list(zip(want.index, want.to_numpy(), strict=True))[::-1]]
    path = tmp_path / "HistoricalData_1700000000000.csv"
    path.write_text("\n".join(rows) + "\n")
    got, _, _ = accepted(path, tmp_path)
    same_bars(got, want, ("Open", "High", "Low", "Close", "Volume"))


def test_metatrader5_utf16_tab_export(tmp_path: Path) -> None:
    want = bars()
    rows = ["<DATE>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"] + [
        f"{d:%Y.%m.%d}\t{o:.5f}\t{h:.5f}\t{lo:.5f}\t{c:.5f}\t{int(v) // 100}\t0\t12"
        for d, (o, h, lo, c, v) in zip(want.index, want.to_numpy(), strict=True)]
    path = tmp_path / "EURUSD_Daily.csv"
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-16"))
    got, manifest, said = accepted(path, tmp_path)
    same_bars(got, want, ("Open", "High", "Low", "Close"))
    assert "Volume" not in got.columns and "Volume" in manifest["missing_columns"]  # MT5's <VOL> is 0 for FX
    assert "no Volume" in said


def test_binance_klines_without_a_header(tmp_path: Path) -> None:
    want = bars(freq="D")
    open_ms = want.index.as_unit("ms").asi8
    rows = [f"{t},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v:.4f},{t + 86_399_999},{v * c:.2f},1234,{v / 2:.4f},"
            f"{v * c / 2:.2f},0" for t, (o, h, lo, c, v) in zip(open_ms, want.to_numpy(), strict=True)]
    path = tmp_path / "BTCUSDT-1d-2015.csv"
    path.write_text("\n".join(rows) + "\n")
    got, manifest, _ = accepted(path, tmp_path)
    same_bars(got, want, ("Close", "Volume"))
    assert manifest["bars"]["periods_per_year"] == 365.0


def test_headerless_file_that_is_not_binance_names_what_is_expected(tmp_path: Path) -> None:
    path = tmp_path / "nohead.csv"
    path.write_text("\n".join(f"2020010{i},1,2,0.5,1.5" for i in range(1, 9)) + "\n")
    refused(path, tmp_path, "no header row", "Date and Close")


def test_close_only_and_volume_less_files_are_valid(tmp_path: Path) -> None:
    want = bars()
    path = tmp_path / "index.csv"
    want[["Open", "High", "Low", "Close"]].to_csv(path)  # Stooq indices have no Volume
    got, manifest, said = accepted(path, tmp_path)
    assert "Volume" not in got.columns and manifest["missing_columns"] == ["Volume"]
    assert "no Volume" in said
    path = tmp_path / "closes.csv"
    want[["Close"]].to_csv(path)
    got, manifest, said = accepted(path, tmp_path)
    assert list(got.columns) == ["Close"] and manifest["columns"] == ["Close"]
    assert manifest["missing_columns"] == ["Open", "High", "Low", "Volume"]
    assert "a candidate using them fails" in said


def test_missing_close_names_found_and_expected_columns(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    bars().rename(columns={"Close": "Schluss"}).to_csv(path)
    refused(path, tmp_path, "no Close column", "Schluss", "expected Date and Close")


def test_empty_columns(tmp_path: Path) -> None:
    frame = bars().astype(object)
    frame["Adj Close"] = ""
    path = tmp_path / "emptyadj.csv"
    frame.to_csv(path)
    got, _, said = accepted(path, tmp_path)
    assert "Adj Close" not in got.columns and "Adj Close empty" in said
    frame["Close"] = ""
    path = tmp_path / "emptyclose.csv"
    frame.to_csv(path)
    refused(path, tmp_path, "column Close is empty")


def test_not_a_csv(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    bars().to_csv(plain)
    gz = tmp_path / "prices.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    refused(gz, tmp_path, "gzip")
    xlsx = tmp_path / "prices.xlsx"
    xlsx.write_bytes(b"PK\x03\x04" + b"\x00" * 26 + b"[Content_Types].xml xl/workbook.xml")
    refused(xlsx, tmp_path, "Excel")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    refused(folder, tmp_path, "is a directory")


def test_reading_is_bounded(tmp_path: Path) -> None:
    long_line = tmp_path / "long.csv"
    long_line.write_text("Date,Close\n2020-01-02," + "9" * 131_072 + "\n")
    refused(long_line, tmp_path, "characters")
    big = tmp_path / "big.csv"
    with open(big, "wb") as fh:  # sparse: the size is refused before anything is read
        fh.truncate(2 * 2**30)
    refused(big, tmp_path, "MB")


def test_skfolio_stocks(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("skfolio") is None:
        pytest.skip("skfolio is not installed (pip install -e '.[stocks]')")
    out = tmp_path / "data"
    res = prepare("--source", "skfolio", "--out", str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["instruments"]) == 16 and manifest["holdout"]["count"] == 4
    assert manifest["columns"] == ["Close"] and manifest["start"] == "1990-01-02"
    assert "survivors" in res.stdout + res.stderr and "Only closes exist" in res.stdout + res.stderr


def test_skfolio_missing_says_how_to_install(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("skfolio") is not None:
        pytest.skip("skfolio is installed")
    res = prepare("--source", "skfolio", "--out", str(tmp_path / "data"), cwd=tmp_path)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and len(lines) == 1 and "pip install -e '.[stocks]'" in lines[0], res.stderr
    assert not (tmp_path / "data").exists()


VOLUME_REGION = '''
def generate_features(df):
    df["vol_ratio"] = df["Volume"] / df["Volume"].rolling(20).mean()
    return df


def strategy_logic(row):
    if row["vol_ratio"] > 1.5:
        return 1
    if row["vol_ratio"] < 0.8:
        return -1
    return 0
'''


def test_candidate_using_a_missing_column_fails_naming_it(tmp_path: Path) -> None:
    from alphaloop.candidate import splice_region, template_text

    path = tmp_path / "closes.csv"
    bars(1200)[["Close"]].to_csv(path)
    accepted(path, tmp_path)
    file = tmp_path / "uses_volume.py"
    file.write_text(splice_region(template_text(), VOLUME_REGION))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, str(ROOT / "harness.py"), "check", str(file), "--data",
                          str(tmp_path / "data-closes")], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    verdict = json.loads(res.stdout.strip().splitlines()[-1])
    assert not verdict["accepted"], res.stdout[-2000:]
    assert "the data has no Volume column" in verdict["reason"], verdict["reason"]


def test_close_only_data_gets_close_only_proposals_and_no_next_open_fill(tmp_path: Path) -> None:
    path = tmp_path / "closes.csv"
    bars(1500)[["Close"]].to_csv(path)
    accepted(path, tmp_path)
    data, wd = tmp_path / "data-closes", tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    res = subprocess.run([sys.executable, str(ROOT / "harness.py"), "--iterations", "12", "--max-fails", "0",
                          "--stress-paths", "0", "--data", str(data), "--workdir", str(wd)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    for n in range(1, 13):  # the offline search writes only rules on the close: no iteration wasted on a column
        record = json.loads((wd / f"iter_{n}_results.json").read_text())
        assert "the data has no" not in record["reason"], record["reason"]
        region = (wd / f"iter_{n}_trade.py").read_text()
        assert not any(f'df["{c}"]' in region for c in ("Open", "High", "Low", "Volume")), region
    res = subprocess.run([sys.executable, str(ROOT / "trade.py"), "--fill", "next_open", "--data", str(data)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "val_return" not in res.stdout
    assert "error: --fill next_open trades at the next bar's open" in res.stderr
    assert "has no Open column (columns: Close" in res.stderr and "use --fill close" in res.stderr


def test_docs_quote_the_reading_limits_and_frequencies() -> None:
    from alphaloop.data.csvread import MAX_FILE_BYTES, MAX_LINE_CHARS

    text = (ROOT / "docs" / "data.md").read_text()
    assert f"over {MAX_FILE_BYTES // 2**20} MB" in text and f"over {MAX_LINE_CHARS:,} characters" in text
    for row in ("| `daily (5-day weeks)` | 252 |", "| `daily (7-day calendar)` | 365 |", "| `weekly` | 52 |",
                "| `monthly` | 12 |"):
        assert row in text
