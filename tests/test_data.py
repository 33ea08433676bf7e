"""prepare.py: malformed input gets one clear line and exit 2 with nothing changed; good input freezes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphaloop.data.frozen import (
    DataError,
    load_splits,
    load_test_split,
    manifest_digest,
    read_manifest,
    restore_hint,
    sha256_file,
    split,
    validate,
    yfinance_cause,
)

ROOT = Path(__file__).resolve().parent.parent


def ohlcv(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    idx = pd.bdate_range("2010-01-01", periods=n, name="Date")
    return pd.DataFrame({"Open": close * 0.999, "High": close * 1.01, "Low": close * 0.99,
                         "Close": close, "Volume": rng.integers(1_000, 5_000, n).astype(float)}, index=idx)


def run_prepare(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "prepare.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    df.to_csv(path, index_label="Date")
    return path


def broken_cases(tmp: Path) -> dict[str, tuple[Path, str]]:
    """Each malformed file and a word its error line must contain."""
    good = ohlcv()
    cases: dict[str, tuple[Path, str]] = {}
    (tmp / "empty.csv").write_text("")
    cases["empty"] = (tmp / "empty.csv", "empty")
    (tmp / "header.csv").write_text("Date,Open,High,Low,Close,Volume\n")
    cases["header only"] = (tmp / "header.csv", "no rows")
    cases["missing column"] = (write_csv(tmp / "nocol.csv", good.drop(columns=["Close"])), "Close")
    bad_date = good.copy()
    labels = [str(d.date()) for d in bad_date.index]
    labels[5] = "not-a-date"
    bad_date.index = pd.Index(labels, name="Date")
    cases["bad date"] = (write_csv(tmp / "baddate.csv", bad_date), "date")
    dup = pd.concat([good.iloc[:10], good.iloc[9:]])
    cases["duplicate dates"] = (write_csv(tmp / "dup.csv", dup), "duplicate")
    text = good.copy().astype(object)
    text.iloc[7, 3] = "abc"
    cases["non-numeric"] = (write_csv(tmp / "text.csv", text), "non-numeric")
    neg = good.copy()
    neg.iloc[20, 3] = -5.0
    cases["negative price"] = (write_csv(tmp / "neg.csv", neg), "negative")
    holes = good.copy()
    holes.iloc[10:60, 3] = np.nan
    cases["too many missing"] = (write_csv(tmp / "holes.csv", holes), "missing")
    cases["too few rows"] = (write_csv(tmp / "short.csv", good.iloc[:100]), "not enough rows")
    (tmp / "binary.csv").write_bytes(b"\x00\xff\xfe" * 100)
    cases["binary junk"] = (tmp / "binary.csv", "")
    cases["no such file"] = (tmp / "nope.csv", "no such file")
    return cases


def test_each_malformed_csv_gets_one_error_line_exit_2_and_out_untouched(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "sentinel.txt").write_text("keep me")
    for name, (path, word) in broken_cases(tmp_path).items():
        res = run_prepare("--source", "csv", "--csv", str(path), "--out", str(out), cwd=tmp_path)
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert res.returncode == 2, (name, res.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, res.stderr)
        assert "Traceback" not in res.stderr
        assert word.lower() in lines[0].lower(), (name, lines[0])
        assert sorted(p.name for p in out.iterdir()) == ["sentinel.txt"], name


def test_repairable_problems_are_repaired_with_a_warning(tmp_path: Path) -> None:
    df = ohlcv()
    df.iloc[30, 3] = np.nan
    df.iloc[31, 0] = np.nan
    shuffled = df.sample(frac=1.0, random_state=1)
    path = write_csv(tmp_path / "messy.csv", shuffled)
    res = run_prepare("--source", "csv", "--csv", str(path), "--out", str(tmp_path / "d"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "sorted" in res.stderr and "2 row(s) had missing values" in res.stderr
    frames = load_splits(tmp_path / "d")
    assert frames["train"]["Close"].iloc[30] == frames["train"]["Close"].iloc[29]


def test_sample_source_freezes_three_chronological_splits_with_hashes(tmp_path: Path) -> None:
    res = run_prepare("--source", "sample", "--out", str(tmp_path / "d"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "OFFLINE DATA SAMPLE" in res.stderr and "S&P 500" in res.stderr
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    parts = {**load_splits(tmp_path / "d"), "test": load_test_split(tmp_path / "d")}
    assert sum(len(p) for p in parts.values()) == 5031
    assert parts["train"].index[-1] < parts["val"].index[0] < parts["val"].index[-1] < parts["test"].index[0]
    for name, frame in parts.items():
        entry = manifest["splits"][name]
        assert entry["sha256"] == sha256_file(tmp_path / "d" / f"{name}.csv")
        assert entry["rows"] == len(frame)
    assert abs(len(parts["test"]) / 5031 - 0.15) < 0.01 and abs(len(parts["val"]) / 5031 - 0.20) < 0.01
    with open(tmp_path / "d" / "train.csv") as fh:
        assert fh.readline().startswith("Date,Open,High,Low,Close,Volume")


def test_nasdaq_sample_and_explicit_dates(tmp_path: Path) -> None:
    res = run_prepare("--source", "sample", "--ticker", "NASDAQ", "--train-end", "2010-12-31",
                      "--val-end", "2014-12-31", "--out", str(tmp_path / "d"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert "NASDAQ" in manifest["ticker"]
    assert manifest["splits"]["train"]["end"] == "2010-12-31"
    assert manifest["splits"]["val"]["start"] == "2011-01-03" and manifest["splits"]["val"]["end"] == "2014-12-31"


def test_split_has_no_overlap_and_no_gap() -> None:
    df = ohlcv(1000)
    parts = split(df)
    joined = pd.concat(parts.values())
    assert joined.index.equals(df.index)
    parts = split(df, train_end=str(df.index[499].date()), val_end=str(df.index[799].date()))
    assert [len(p) for p in parts.values()] == [500, 300, 200]
    with pytest.raises(DataError, match="must be after"):
        split(df, train_end="2012-01-01", val_end="2011-01-01")


def test_tampered_split_is_refused(tmp_path: Path) -> None:
    run_prepare("--source", "sample", "--out", str(tmp_path / "d"), cwd=tmp_path)
    path = tmp_path / "d" / "val.csv"
    path.write_text(path.read_text().replace("1", "2", 1))
    with pytest.raises(DataError, match="does not match the manifest"):
        load_splits(tmp_path / "d")


def test_loading_the_test_split_through_the_common_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only read by load_test_split"):
        load_splits(tmp_path, ("train", "test"))


def test_validate_rejects_high_below_low() -> None:
    df = ohlcv()
    df.iloc[3, 1] = df.iloc[3, 2] * 0.5
    with pytest.raises(DataError, match="High below Low"):
        validate(df)


FAKE_YFINANCE = '''
import logging

import pandas as pd

_log = logging.getLogger("yfinance")


def download(ticker, **kwargs):
    """What yfinance 0.2/1.x does offline: log the curl error, swallow it, return an empty frame."""
    _log.error("Failed to get ticker '%s' reason: Failed to perform, curl: (6) Could not resolve host: "
               "query2.finance.yahoo.com (Domain name not found). See https://curl.se/libcurl/ first.", ticker)
    _log.error("\\n1 Failed download:")
    _log.error("['%s']: DNSError('Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com.')",
               ticker)
    return pd.DataFrame()
'''


def test_yfinance_without_network_names_the_cause(tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "yfinance.py").write_text(FAKE_YFINANCE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), str(ROOT)])}
    res = subprocess.run([sys.executable, str(ROOT / "prepare.py"), "--source", "yfinance", "--out", "d"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0] == ("error: no network connection to Yahoo Finance "
                        "(curl: (6) Could not resolve host: query2.finance.yahoo.com)")
    assert not (tmp_path / "d").exists()


def test_yfinance_cause_classifies_what_yfinance_logs() -> None:
    assert "no network" in yfinance_cause(["ConnectionError: Failed to connect to fc.yahoo.com port 443"], "SPY")
    assert "rate-limiting" in yfinance_cause(["YFRateLimitError('Too Many Requests. Rate limited.')"], "SPY")
    assert "check the ticker" in yfinance_cause(["$XYZ: possibly delisted; no price data found"], "XYZ")
    assert "logged no reason" in yfinance_cause([], "SPY")


def test_changed_data_is_not_replaced_without_force_and_the_manifest_recreates_it(tmp_path: Path) -> None:
    assert run_prepare("--source", "sample", "--out", "d", cwd=tmp_path).returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "d").iterdir()}
    manifest = json.loads(before["manifest.json"])
    assert manifest["command"] == ["prepare.py", "--source", "sample", "--out", "d"]
    assert manifest["args"]["source"] == "sample" and manifest["args"]["force"] is False
    again = run_prepare("--source", "sample", "--out", "d", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    res = run_prepare("--source", "sample", "--ticker", "NASDAQ", "--out", "d", cwd=tmp_path)
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "a workdir may depend on it" in lines[0] and "--force" in lines[0]
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["splits"] == manifest["splits"]
    forced = run_prepare("--source", "sample", "--ticker", "NASDAQ", "--out", "d", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert manifest_digest(read_manifest(tmp_path / "d")) != manifest_digest(manifest)
    hint = restore_hint(manifest)
    assert hint.startswith("python prepare.py --source sample") and hint.endswith("--out d --force")
    redo = run_prepare(*shlex.split(hint)[2:], cwd=tmp_path)
    assert redo.returncode == 0, redo.stderr
    assert manifest_digest(read_manifest(tmp_path / "d")) == manifest_digest(manifest)
    assert f"data digest {manifest_digest(manifest)}" in redo.stdout
