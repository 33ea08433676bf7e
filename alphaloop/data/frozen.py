"""Load, validate, split and freeze daily OHLCV data; read frozen splits back with hash checks.

One instrument: the frozen folder holds train.csv, val.csv, test.csv and manifest.json. A universe
(alphaloop/instruments.py freezes it): instruments/<name>/{train,val,test}.csv, and the held-out
instruments in holdout/ with a manifest of their own that the main manifest hashes. Nothing in
alphaloop reads a test split or holdout/ except ``load_test_split``, ``load_test_universe`` and
``load_holdout``, which only ``harness.py final`` calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from alphaloop import __version__
from alphaloop.data.csvread import OPTIONAL_COLUMNS, PRICE_COLUMNS, REQUIRED_COLUMNS, DataError, read_csv
from alphaloop.data.frequency import DEFAULT_PERIODS_PER_YEAR, infer_frequency
from alphaloop.data.sources import (
    DEFAULT_TICKER,
    NASDAQ_ALIASES,
    download_yfinance,
    is_nasdaq,
    sample_frame,
    yfinance_cause,
)
from alphaloop.data.validate import missing_columns, validate

SPLITS = ("train", "val", "test")
DATA_DIR = Path("data")  # the frozen data folder: prepare.py --out and harness.py --data
MIN_SPLIT_ROWS = 60  # the seed's slow SMA needs 50 bars; a split shorter than this says nothing
TEST_FRACTION, VAL_FRACTION = 0.15, 0.20
INSTRUMENTS_DIR, HOLDOUT_DIR = "instruments", "holdout"  # a universe's folders inside the frozen data
__all__ = ["DEFAULT_TICKER", "NASDAQ_ALIASES", "DataError", "OPTIONAL_COLUMNS", "PRICE_COLUMNS", "REQUIRED_COLUMNS",
           "download_yfinance", "is_nasdaq", "read_csv", "sample_frame", "validate", "yfinance_cause"]


@dataclass
class Prepared:
    """A validated frame with where it came from and what was repaired."""

    frame: pd.DataFrame
    source: str
    ticker: str


def split(df: pd.DataFrame, train_end: str | None = None, val_end: str | None = None) -> dict[str, pd.DataFrame]:
    """Chronological train/val/test, no overlap, no gap; by default ``TEST_FRACTION`` of the rows is test
    and ``VAL_FRACTION`` before it validation."""
    n = len(df)
    if train_end is None and val_end is None:
        n_test = int(round(n * TEST_FRACTION))
        n_val = int(round(n * VAL_FRACTION))
        i_train, i_val = n - n_test - n_val, n - n_test
    else:
        idx = df.index
        try:
            te = pd.Timestamp(train_end) if train_end else None
            ve = pd.Timestamp(val_end) if val_end else None
        except (ValueError, TypeError) as exc:
            raise DataError(f"could not parse a split date: {exc}") from exc
        if te is not None and ve is not None and ve <= te:
            raise DataError(f"--val-end {ve.date()} must be after --train-end {te.date()}")
        i_train = int(idx.searchsorted(te, side="right")) if te is not None else None
        i_val = int(idx.searchsorted(ve, side="right")) if ve is not None else None
        if i_train is None:
            i_train = int(round(i_val * (1 - VAL_FRACTION / (1 - TEST_FRACTION))))
        if i_val is None:
            i_val = i_train + int(round((n - i_train) * VAL_FRACTION / (VAL_FRACTION + TEST_FRACTION)))
    parts = {"train": df.iloc[:i_train], "val": df.iloc[i_train:i_val], "test": df.iloc[i_val:]}
    short = {k: len(v) for k, v in parts.items() if len(v) < MIN_SPLIT_ROWS}
    if short:
        desc = ", ".join(f"{k} has {v}" for k, v in short.items())
        raise DataError(f"not enough rows for three splits of at least {MIN_SPLIT_ROWS} rows ({n} rows in all; {desc})")
    return parts


def sha256_file(path: Path) -> str:
    """The hash the manifest records, so any later change to a split is noticed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _existing_digest(out: Path) -> tuple[dict, str] | None:
    """The manifest and digest of frozen data already in ``out``, or None when there is none to protect."""
    try:
        old = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        return old, manifest_digest(old)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_splits(root: Path, rel: str, parts: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """Write each split as ``root/rel/<split>.csv``; the manifest entries name files relative to ``root``."""
    folder = root / rel if rel else root
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, frame in parts.items():
        path = folder / f"{name}.csv"
        frame.to_csv(path, index_label="Date", float_format="%.10g")
        files[name] = {
            "file": f"{rel}/{path.name}" if rel else path.name, "rows": len(frame),
            "start": str(frame.index[0].date()), "end": str(frame.index[-1].date()), "sha256": sha256_file(path),
        }
    return files


def write_frozen(out: Path, build: Callable[[Path], dict], force: bool = True) -> dict:
    """Let ``build`` write files into a temp folder beside ``out`` and return the manifest, then swap it in.

    With ``force=False`` frozen data of different content is never replaced: a workdir's records
    and hash checks rest on it.
    """
    out = Path(out)
    previous = None if force else _existing_digest(out)
    ours = {f"{name}.csv" for name in SPLITS} | {"manifest.json", ".gitkeep", INSTRUMENTS_DIR, HOLDOUT_DIR}
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in ours)
        if foreign:
            raise DataError(f"{out}/ holds files that are not frozen splits ({', '.join(foreign[:3])}); "
                            f"move them or choose another --out: the folder is replaced as a whole")
    elif out.exists():
        raise DataError(f"{out} exists and is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o755)
        manifest = build(tmp)
        if previous is not None and (digest := manifest_digest(manifest)) != previous[1]:
            old = previous[0]
            raise DataError(
                f"{out}/ already holds different frozen data ({old.get('ticker')}, {old.get('start')} .. "
                f"{old.get('end')}, digest {previous[1]}; new digest {digest}); a workdir may depend on it. "
                f"Pass --force to replace it, or choose another --out")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        for keep in out.glob(".gitkeep") if out.is_dir() else []:
            shutil.copy2(keep, tmp / keep.name)
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return manifest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def freeze(parts: dict[str, pd.DataFrame], out: Path, source: str, ticker: str, repairs: list[str],
           *, command: list[str] | None = None, args: dict | None = None, force: bool = True,
           bars: dict | None = None, prices: str | None = None) -> dict:
    """Freeze one instrument: train.csv, val.csv, test.csv and manifest.json, written aside then swapped in.

    ``bars`` is the frequency (``Frequency.to_json``); the manifest records it and the columns the
    data lacks, so the loop annualises by it and a prompt can say which columns exist."""

    def build(tmp: Path) -> dict:
        files = write_splits(tmp, "", parts)
        first = next(iter(parts.values()))
        manifest = {
            "source": source, "ticker": ticker, "columns": list(first.columns),
            "missing_columns": missing_columns(first), "bars": bars or default_bars(first.index),
            "start": files["train"]["start"], "end": files["test"]["end"], "splits": files,
            "repairs": repairs, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "alphaloop_version": __version__,
            "return_prices": prices or return_prices(list(parts.values())),
        }
        if command is not None:
            manifest["command"] = command
        if args is not None:
            manifest["args"] = args
        return manifest

    return write_frozen(out, build, force)


def read_manifest(data_dir: Path) -> dict:
    """The frozen data's manifest, or a DataError telling the user to run prepare.py."""
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        raise DataError(f"no frozen data in {data_dir}/ (manifest.json missing); run: python prepare.py")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: corrupt manifest ({exc})") from exc


def restore_hint(manifest: dict, out: str | None = None) -> str:
    """The prepare.py command that recreates the frozen data a manifest describes (same source and dates)."""
    if is_universe(manifest):
        return _restore_universe(manifest, out)
    recorded = manifest.get("args") or {}
    source = str(manifest.get("source", "auto"))
    parts = ["python", "prepare.py"]
    if source.startswith("csv:"):
        parts += ["--source", "csv", "--csv", source[4:]]
    else:
        parts += ["--source", source if source in ("yfinance", "sample") else "auto",
                  "--ticker", str(recorded.get("ticker") or manifest.get("ticker", DEFAULT_TICKER))]
    splits = manifest.get("splits", {})
    parts += ["--start", str(manifest.get("start")), "--end", str(manifest.get("end"))]
    if "train" in splits and "val" in splits:
        parts += ["--train-end", str(splits["train"]["end"]), "--val-end", str(splits["val"]["end"])]
    parts += ["--out", str(out or recorded.get("out") or "data"), "--force"]
    return " ".join(shlex.quote(p) for p in parts)


def _restore_universe(manifest: dict, out: str | None) -> str:
    """restore_hint for a universe; with held-out instruments the command is only kept beside them."""
    folder = str(out or (manifest.get("args") or {}).get("out") or "data")
    if manifest.get("holdout"):
        return (f"python prepare.py with the command recorded in {folder}/{HOLDOUT_DIR}/manifest.json "
                f"(the main manifest does not name held-out instruments), plus --out {folder} --force")
    source = str(manifest.get("source", "auto"))
    parts = ["python", "prepare.py"]
    if source.startswith("csv-dir:"):
        parts += ["--source", "csv", "--csv-dir", source[len("csv-dir:"):]]
    elif source == "csv":
        parts += ["--source", "csv"]
        for name in manifest["instruments"]:
            parts += ["--csv", str(manifest["universe"][name].get("source", ""))[len("csv:"):]]
    else:
        parts += ["--source", source if source in ("yfinance", "sample") else "auto",
                  "--tickers", ",".join(manifest["instruments"])]
    dates = manifest["split_dates"]
    parts += ["--start", str(manifest.get("start")), "--end", str(manifest.get("end")),
              "--train-end", str(dates["train_end"]), "--val-end", str(dates["val_end"]),
              "--holdout-tickers", "none", "--out", folder, "--force"]
    return " ".join(shlex.quote(p) for p in parts)


def default_bars(index: pd.DatetimeIndex) -> dict:
    """The frequency of frames frozen without one given (tests, benches): inferred, daily 252 when unsure."""
    try:
        return infer_frequency(index).to_json()
    except DataError:
        return {"frequency": "daily (assumed)", "periods_per_year": DEFAULT_PERIODS_PER_YEAR}


def return_column(frames: Sequence[pd.DataFrame]) -> str:
    """The one place that picks the prices returns and buy and hold rest on; features always see Close as traded.

    "Adj Close" when the data carries it and it differs from Close (dividends: with Close alone buy and hold
    loses them while a timing rule loses them only when invested, which flatters every rule), else "Close".
    """
    frames = list(frames)
    if not frames or not all("Adj Close" in f.columns for f in frames):
        return "Close"
    same = all(np.allclose(f["Adj Close"].to_numpy(), f["Close"].to_numpy(), rtol=1e-9, atol=0) for f in frames)
    return "Close" if same else "Adj Close"


def return_prices(frames: Sequence[pd.DataFrame]) -> str:
    """Which prices the returns and buy and hold rest on, in words for the screen, the manifest and the report."""
    frames = list(frames)
    if return_column(frames) == "Adj Close":
        return "Adj Close (dividends reinvested; features see Close as traded)"
    if not frames or not all("Adj Close" in f.columns for f in frames):
        return "Close as traded (no Adj Close in the data: no dividends)"
    return "Close as traded (Adj Close equals Close: a price index without dividends)"


def prices_words(manifest: dict | None, frames: Sequence[pd.DataFrame]) -> str:
    """The ``returns on:`` words: as prepare.py recorded them (per instrument on a universe, and for closes
    adjusted at the source), else worked out from ``frames``."""
    recorded = (manifest or {}).get("return_prices")
    return str(recorded) if recorded else return_prices(frames)


def bars_line(manifest: dict | None) -> str | None:
    """``bars: weekly, annualised with 52 bars a year`` for data that is not daily on 5-day weeks (said on
    screen where figures are shown); None for the usual daily data and for manifests without a frequency."""
    bars = (manifest or {}).get("bars") or {}
    per_year = bars.get("periods_per_year")
    if not isinstance(per_year, int | float) or per_year == DEFAULT_PERIODS_PER_YEAR:
        return None
    return f"bars: {bars.get('frequency')}, annualised with {per_year:g} bars a year"


def is_universe(manifest: dict) -> bool:
    """Whether frozen data holds several instruments (``instruments/`` and maybe ``holdout/``)."""
    return "instruments" in manifest


def manifest_digest(manifest: dict) -> str:
    """One hash standing for the frozen data set: every split file's hash, held-out instruments included.

    A single instrument keeps the original formula, so data folders and workdirs made before
    universes existed still match.
    """
    if not is_universe(manifest):
        joined = "".join(manifest["splits"][s]["sha256"] for s in SPLITS)
        return hashlib.sha256(joined.encode()).hexdigest()[:16]
    parts = [f"{name}:" + ",".join(manifest["universe"][name]["splits"][s]["sha256"] for s in SPLITS)
             for name in manifest["instruments"]]
    hold = manifest.get("holdout") or {}
    parts.append(f"holdout:{hold.get('count', 0)}:{hold.get('sha256', '')}")
    return hashlib.sha256(";".join(parts).encode()).hexdigest()[:16]


def _load_checked(data_dir: Path, entry: dict) -> pd.DataFrame:
    path = Path(data_dir) / entry["file"]
    if not path.is_file():
        raise DataError(f"{path}: missing; re-run python prepare.py")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise DataError(f"{path}: sha256 {digest[:12]}... does not match the manifest ({entry['sha256'][:12]}...); "
                        "the frozen data was changed, re-run python prepare.py")
    df = pd.read_csv(path, index_col="Date", parse_dates=["Date"])
    return df.astype(np.float64)


def load_splits(data_dir: Path, names: tuple[str, ...] = ("train", "val")) -> dict[str, pd.DataFrame]:
    """Hash-checked train/validation frames (of the first instrument of a universe). Test is refused here."""
    if "test" in names:
        raise ValueError("the test split is only read by load_test_split (harness.py final)")
    manifest = read_manifest(data_dir)
    return {name: _load_checked(data_dir, manifest["splits"][name]) for name in names}


def load_test_split(data_dir: Path) -> pd.DataFrame:
    """The locked test split; only ``harness.py final`` may call this."""
    return _load_checked(data_dir, read_manifest(data_dir)["splits"]["test"])


@dataclass(frozen=True)
class Universe:
    """Instruments frozen on the same split dates, each on its own calendar (no bar is invented).

    ``instruments`` is in the order prepare.py was given them and never holds a held-out one;
    ``held_out`` only counts those, so the loop can say how many exist without opening them.
    """

    instruments: tuple[str, ...]
    splits: dict[str, dict[str, pd.DataFrame]]
    held_out: int = 0
    periods_per_year: float | None = None  # the manifest's bars a year (None: inferred from the dates)
    columns: tuple[str, ...] = ()  # the columns every instrument has: what a candidate's df holds


def universe_line(universe: Universe) -> str:
    """What the loop and ``check`` run on, said on screen; held-out instruments are counted, never named."""
    n = len(universe.instruments)
    return (f"universe: {n} instrument{'s' if n != 1 else ''} (+{universe.held_out} held out): "
            + ", ".join(universe.instruments))


def manifest_periods_per_year(manifest: dict) -> float | None:
    """The bars a year a manifest records (None for data frozen before frequencies were recorded)."""
    value = (manifest.get("bars") or {}).get("periods_per_year")
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _universe(data_dir: Path, names: tuple[str, ...]) -> Universe:
    manifest = read_manifest(data_dir)
    per_year, columns = manifest_periods_per_year(manifest), tuple(manifest.get("columns") or ())
    if not is_universe(manifest):
        name = str(manifest.get("ticker") or "instrument 1")
        return Universe((name,), {name: {n: _load_checked(data_dir, manifest["splits"][n]) for n in names}},
                        periods_per_year=per_year, columns=columns)
    entries = manifest["universe"]
    return Universe(tuple(manifest["instruments"]),
                    {i: {n: _load_checked(data_dir, entries[i]["splits"][n]) for n in names}
                     for i in manifest["instruments"]},
                    held_out=int((manifest.get("holdout") or {}).get("count", 0)),
                    periods_per_year=per_year, columns=columns)


def load_universe(data_dir: Path, names: tuple[str, ...] = ("train", "val")) -> Universe:
    """Hash-checked splits of every instrument that is not held out; the test split is refused here."""
    if "test" in names:
        raise ValueError("the test split is only read by load_test_universe (harness.py final)")
    return _universe(data_dir, names)


def load_test_universe(data_dir: Path) -> Universe:
    """Train, validation and the locked test split of every non-held-out instrument; only ``final`` calls this."""
    return _universe(data_dir, SPLITS)


def load_holdout(data_dir: Path, names: tuple[str, ...] = SPLITS) -> Universe:
    """The held-out instruments, hash-checked through the main manifest; only ``harness.py final`` calls this."""
    hold = read_manifest(data_dir).get("holdout")
    if not hold:
        return Universe((), {})
    path = Path(data_dir) / hold["file"]
    if not path.is_file():
        raise DataError(f"{path}: missing; re-run python prepare.py")
    if (digest := sha256_file(path)) != hold["sha256"]:
        raise DataError(f"{path}: sha256 {digest[:12]}... does not match the manifest ({hold['sha256'][:12]}...); "
                        "the held-out instruments were changed, re-run python prepare.py")
    inner = json.loads(path.read_text(encoding="utf-8"))
    manifest = read_manifest(data_dir)
    return Universe(tuple(inner["instruments"]),
                    {i: {n: _load_checked(data_dir, inner["universe"][i]["splits"][n]) for n in names}
                     for i in inner["instruments"]},
                    periods_per_year=manifest_periods_per_year(manifest), columns=tuple(manifest.get("columns") or ()))
