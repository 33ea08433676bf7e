"""A universe of instruments frozen on shared dates, and held-out instruments only `final` reads."""

from __future__ import annotations

import builtins
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import prepare
from alphaloop.data.frozen import (
    DataError,
    load_holdout,
    load_splits,
    load_test_universe,
    load_universe,
    manifest_digest,
    read_manifest,
    restore_hint,
)
from alphaloop.data.instruments import choose_holdout
from tests.test_sandbox_support import make_ohlcv

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO"]


def run(script: str, *args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def synthetic(seed: int, n: int = 900, start: str = "2001-01-02", drop_every: int = 0) -> pd.DataFrame:
    """A seeded instrument; ``drop_every`` removes rows so its calendar differs from the others'."""
    frame = make_ohlcv(n, seed=seed, start=start)
    return frame.drop(frame.index[::drop_every]) if drop_every else frame


def csv_folder(folder: Path, frames: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index_label="Date")
    return folder


def three(tmp_path: Path) -> dict[str, pd.DataFrame]:
    return {"BBB": synthetic(1), "AAA": synthetic(2, drop_every=7), "CCC_HELD": synthetic(3, n=800, start="2001-06-01")}


def test_csv_dir_freezes_each_instrument_on_its_own_calendar_at_shared_dates(tmp_path: Path) -> None:
    frames = three(tmp_path)
    res = run("prepare.py", "--source", "csv", "--csv-dir", str(csv_folder(tmp_path / "csv", frames)),
              "--out", "d", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    manifest = read_manifest(tmp_path / "d")
    assert manifest["instruments"] == ["AAA", "BBB", "CCC_HELD"]  # sorted by file name: a stable order
    assert f"data digest {manifest_digest(manifest)}" in res.stdout
    assert "universe: 3 instruments (+0 held out)" in res.stdout
    universe = load_universe(tmp_path / "d")
    assert universe.instruments == ("AAA", "BBB", "CCC_HELD") and universe.held_out == 0
    dates = manifest["split_dates"]
    full = load_test_universe(tmp_path / "d")
    for name, frame in frames.items():
        parts = full.splits[name]
        joined = pd.concat(parts.values())
        assert joined.index.equals(frame.index), f"{name}: a bar was invented, moved or lost"
        assert (joined["Close"].to_numpy() - frame["Close"].to_numpy()).max() < 1e-6 * frame["Close"].max()
        assert parts["train"].index[-1] <= pd.Timestamp(dates["train_end"]) < parts["val"].index[0]
        assert parts["val"].index[-1] <= pd.Timestamp(dates["val_end"]) < parts["test"].index[0]
    assert load_splits(tmp_path / "d")["train"].equals(universe.splits["AAA"]["train"])  # the first instrument
    with pytest.raises(ValueError, match="load_test_universe"):
        load_universe(tmp_path / "d", ("train", "test"))
    hint = restore_hint(manifest, out="d")
    assert "--csv-dir" in hint and f"--train-end {dates['train_end']}" in hint


def test_repeated_csv_keeps_the_given_order_and_explicit_dates(tmp_path: Path) -> None:
    frames = three(tmp_path)
    folder = csv_folder(tmp_path / "csv", frames)
    res = run("prepare.py", "--source", "csv", "--csv", str(folder / "CCC_HELD.csv"), "--csv", str(folder / "AAA.csv"),
              "--train-end", "2002-12-31", "--val-end", "2003-06-30", "--out", "d", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    manifest = read_manifest(tmp_path / "d")
    assert manifest["instruments"] == ["CCC_HELD", "AAA"]
    assert manifest["split_dates"] == {"train_end": "2002-12-31", "val_end": "2003-06-30"}
    assert manifest["universe"]["CCC_HELD"]["splits"]["train"]["end"] == "2002-12-31"
    hint = restore_hint(manifest, out="again").split()
    assert hint[:2] == ["python", "prepare.py"]
    again = run(*hint[1:], cwd=tmp_path)  # the hint recreates the same data, digest and all
    assert again.returncode == 0, again.stderr
    assert manifest_digest(read_manifest(tmp_path / "again")) == manifest_digest(manifest)


def test_sample_universe_is_offline_and_single_ticker_layout_is_unchanged(tmp_path: Path) -> None:
    res = run("prepare.py", "--source", "sample", "--tickers", "SPY,NASDAQ", "--out", "u", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    universe = load_universe(tmp_path / "u")
    assert universe.instruments == ("SPY", "NASDAQ")
    spy, nasdaq = universe.splits["SPY"]["train"], universe.splits["NASDAQ"]["train"]
    assert spy["Close"].iloc[0] != nasdaq["Close"].iloc[0]
    assert (tmp_path / "u" / "instruments" / "NASDAQ" / "val.csv").is_file()
    bad = run("prepare.py", "--source", "sample", "--tickers", "SPY,IWM", "--out", "x", cwd=tmp_path)
    assert bad.returncode == 2 and "IWM" in bad.stderr and not (tmp_path / "x").exists()
    single = run("prepare.py", "--source", "sample", "--out", "s", cwd=tmp_path)
    assert single.returncode == 0
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["manifest.json", "test.csv", "train.csv", "val.csv"]
    assert "instruments" not in read_manifest(tmp_path / "s")
    assert load_universe(tmp_path / "s").instruments == (read_manifest(tmp_path / "s")["ticker"],)


@pytest.fixture
def fake_yfinance(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """prepare's download stubbed with seeded frames: tests never reach the network."""
    asked: list[str] = []

    def download(ticker: str, start: str | None) -> pd.DataFrame:
        asked.append(ticker)
        if ticker == "MISSING":
            raise DataError("Yahoo Finance has no daily data for MISSING")
        return synthetic(sum(map(ord, ticker)), drop_every=5 if ticker == "DELTA" else 0)

    monkeypatch.setattr(prepare, "download_yfinance", download)
    return asked


def test_tickers_hold_out_a_fifth_reproducibly_and_the_main_manifest_never_names_them(
        tmp_path: Path, fake_yfinance: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert prepare.main(["--source", "yfinance", "--tickers", ",".join(NAMES), "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert fake_yfinance == NAMES and "universe: 4 instruments (+1 held out)" in out
    assert prepare.main(["--source", "yfinance", "--tickers", ",".join(NAMES), "--out", str(tmp_path / "b")]) == 0
    a, b = load_holdout(tmp_path / "a"), load_holdout(tmp_path / "b")
    assert len(a.instruments) == 1 and a.instruments == b.instruments  # same data, same draw
    held = a.instruments[0]
    assert held not in out  # prepare counts them; holdout/manifest.json names them
    text = (tmp_path / "a" / "manifest.json").read_text()
    assert held not in text and load_universe(tmp_path / "a").instruments == tuple(n for n in NAMES if n != held)
    assert read_manifest(tmp_path / "a")["holdout"]["count"] == 1
    assert set(a.splits[held]) == {"train", "val", "test"}
    assert "holdout/manifest.json" in restore_hint(read_manifest(tmp_path / "a"))


def test_holdout_flags(tmp_path: Path, fake_yfinance: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    tickers = ",".join(NAMES)
    assert prepare.main(["--tickers", tickers, "--holdout-tickers", "BRAVO,ECHO", "--out", str(tmp_path / "a")]) == 0
    assert load_holdout(tmp_path / "a").instruments == ("BRAVO", "ECHO")
    assert load_universe(tmp_path / "a").instruments == ("ALPHA", "CHARLIE", "DELTA")
    assert prepare.main(["--tickers", tickers, "--holdout-tickers", "none", "--out", str(tmp_path / "n")]) == 0
    assert load_holdout(tmp_path / "n").instruments == () and len(load_universe(tmp_path / "n").instruments) == 5
    capsys.readouterr()
    for flags, words in ((["--holdout-tickers", "ZULU"], "not in the universe"),
                         (["--holdout-tickers", tickers], "every instrument"),
                         (["--tickers", "ALPHA,alpha"], "appears twice"),
                         (["--tickers", "ALPHA,MISSING"], "no daily data for MISSING")):
        argv = ["--source", "yfinance", "--tickers", tickers, *flags, "--out", str(tmp_path / "bad")]
        assert prepare.main(argv) == 2
        assert words in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert prepare.main(["--ticker", "ALPHA", "--holdout-tickers", "ALPHA", "--out", str(tmp_path / "one")]) == 2
    assert "at least two instruments" in capsys.readouterr().err


def test_one_ticker_in_tickers_is_the_single_layout(tmp_path: Path, fake_yfinance: list[str]) -> None:
    assert prepare.main(["--source", "yfinance", "--tickers", "ALPHA", "--out", str(tmp_path / "one")]) == 0
    manifest = read_manifest(tmp_path / "one")
    assert manifest["ticker"] == "ALPHA" and "instruments" not in manifest
    assert (tmp_path / "one" / "train.csv").is_file() and not (tmp_path / "one" / "instruments").exists()


def test_default_holdout_only_from_five_instruments() -> None:
    assert choose_holdout(["A", "B", "C", "D"], ["x"], None) == []
    ten = [f"I{i}" for i in range(10)]
    picked = choose_holdout(ten, ["h1", "h2"], None)
    assert len(picked) == 2 and picked == choose_holdout(ten, ["h1", "h2"], None)
    assert all(p in ten for p in picked) and len(set(picked)) == 2


def test_tampered_holdout_is_refused(tmp_path: Path, fake_yfinance: list[str]) -> None:
    assert prepare.main(["--tickers", ",".join(NAMES), "--holdout-tickers", "ECHO", "--out", str(tmp_path / "a")]) == 0
    path = tmp_path / "a" / "holdout" / "ECHO" / "test.csv"
    path.write_text(path.read_text().replace("1", "2", 1))
    with pytest.raises(DataError, match="does not match the manifest"):
        load_holdout(tmp_path / "a")
    inner = tmp_path / "a" / "holdout" / "manifest.json"
    inner.write_text(inner.read_text().replace("ECHO", "ECHO2"))
    with pytest.raises(DataError, match="held-out instruments were changed"):
        load_holdout(tmp_path / "a")


def trap(folder: Path) -> dict[Path, bytes]:
    """Every file under ``folder`` replaced by a directory: opening one as a file fails, even as root."""
    saved = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            saved[path] = path.read_bytes()
            path.unlink()
            path.mkdir()
    return saved


def untrap(saved: dict[Path, bytes]) -> None:
    for path, content in saved.items():
        path.rmdir()
        path.write_bytes(content)


def test_universe_end_to_end_with_a_trapped_holdout(tmp_path: Path) -> None:
    """prepare -> harness --iterations 3 -> check -> final on a CSV folder of three instruments."""
    folder = csv_folder(tmp_path / "csv", three(tmp_path))
    res = run("prepare.py", "--source", "csv", "--csv-dir", str(folder), "--holdout-tickers", "CCC_HELD",
              "--out", "data", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "universe: 2 instruments (+1 held out)" in res.stdout
    saved = trap(tmp_path / "data" / "holdout")
    loop = run("harness.py", "--proposer", "offline", "--iterations", "3", "--max-fails", "0", "--stress-paths", "0",
               "--workdir", "run", "--data", "data", cwd=tmp_path)
    assert loop.returncode == 0, loop.stdout + loop.stderr
    assert "universe: 2 instruments (+1 held out): AAA, BBB" in loop.stdout
    # the default second market (a bundled sample) is not a second market for a universe: skipped, said so
    assert "second market: skipped for a universe" in loop.stdout
    assert not (tmp_path / "run" / "cross_market.json").exists()
    check = run("harness.py", "check", str(tmp_path / "run" / "best_trade.py"), "--data", "data", cwd=tmp_path)
    assert check.returncode in (0, 1), check.stdout + check.stderr
    assert "universe: 2 instruments (+1 held out)" in check.stdout
    for output in (loop.stdout, loop.stderr, check.stdout, check.stderr):
        assert "CCC_HELD" not in output
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert b"CCC_HELD" not in path.read_bytes(), f"{path.name} names the held-out instrument"
    untrap(saved)
    final = run("harness.py", "final", "--workdir", "run", "--data", "data", cwd=tmp_path)
    assert final.returncode == 0, final.stdout + final.stderr
    assert "held-out instruments" in final.stdout and "CCC_HELD" in final.stdout
    readings = [json.loads(line) for line in (tmp_path / "run" / "test_readings.jsonl").read_text().splitlines()]
    assert len(readings) == 1
    held = readings[0]["holdout"]
    assert [h["instrument"] for h in held] == ["CCC_HELD"] and set(held[0]["values"]) == {"train", "val", "test"}
    assert isinstance(held[0]["beat_bh_test"], bool)


def test_old_single_instrument_folder_keeps_loading(tmp_path: Path, frozen_data: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(frozen_data, data)
    universe = load_universe(data)
    assert len(universe.instruments) == 1 and universe.held_out == 0
    assert universe.splits[universe.instruments[0]]["val"].equals(load_splits(data)["val"])
    assert load_holdout(data).instruments == ()


def test_check_in_process_never_touches_holdout(tmp_path: Path, fake_yfinance: list[str],
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Every open, read_csv and directory listing of ``check`` is watched: none reaches holdout/."""
    from alphaloop.commands.check import run_check
    from tests.conftest import InProcessSandbox
    from tests.test_lookahead import BASELINE

    data = tmp_path / "data"
    assert prepare.main(["--tickers", ",".join(NAMES), "--holdout-tickers", "ECHO", "--out", str(data)]) == 0
    capsys.readouterr()
    trap(data / "holdout")
    data = data.resolve()
    touched: list[str] = []
    real_open, real_read, real_scandir, real_listdir = builtins.open, pd.read_csv, os.scandir, os.listdir

    def watch(real):
        def spy(path=".", *a, **k):
            touched.append(str(path))
            assert not str(Path(path).resolve()).startswith(str(data / "holdout")), f"check touched {path}"
            return real(path, *a, **k)
        return spy

    monkeypatch.setattr(builtins, "open", watch(real_open))
    monkeypatch.setattr(pd, "read_csv", watch(real_read))
    monkeypatch.setattr(os, "scandir", watch(real_scandir))
    monkeypatch.setattr(os, "listdir", watch(real_listdir))
    file = tmp_path / "c.py"
    file.write_text(BASELINE)
    code = run_check(file, data, "sharpe", 4, 2.0, sandbox=InProcessSandbox())
    out = capsys.readouterr().out
    assert code in (0, 1), out
    assert "universe: 4 instruments (+1 held out): ALPHA, BRAVO, CHARLIE, DELTA" in out and "ECHO" not in out
    assert any("instruments/ALPHA/train.csv" in p for p in touched)


def test_auto_falls_back_loudly_to_the_sample_universe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    def offline(ticker: str, start: str | None) -> pd.DataFrame:
        raise DataError("no network connection to Yahoo Finance (stubbed)")

    monkeypatch.setattr(prepare, "download_yfinance", offline)
    assert prepare.main(["--tickers", "SPY,QQQ,IWM", "--out", str(tmp_path / "d")]) == 0
    captured = capsys.readouterr()
    assert "OFFLINE DATA SAMPLE IN USE" in captured.err and "stubbed" in captured.err
    assert load_universe(tmp_path / "d").instruments == ("SP500", "NASDAQ")
    assert prepare.main(["--source", "yfinance", "--tickers", "SPY,QQQ", "--out", str(tmp_path / "y")]) == 2
    assert "no network connection" in capsys.readouterr().err and not (tmp_path / "y").exists()


def test_csv_dir_with_one_file_is_the_single_layout(tmp_path: Path) -> None:
    folder = csv_folder(tmp_path / "csv", {"ONLY": synthetic(9)})
    res = run("prepare.py", "--source", "csv", "--csv-dir", str(folder), "--out", "d", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    manifest = read_manifest(tmp_path / "d")
    assert manifest["ticker"] == "ONLY" and "instruments" not in manifest and (tmp_path / "d" / "val.csv").is_file()
