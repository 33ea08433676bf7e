"""Freeze daily OHLCV data into chronological train / validation / locked test splits.

    python prepare.py                      # yfinance SPY, falling back to the bundled sample
    python prepare.py --source sample --ticker NASDAQ
    python prepare.py --source csv --csv prices.csv --train-end 2012-12-31 --val-end 2016-12-31
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from alphaloop.data import (
    DATA_DIR,
    DEFAULT_TICKER,
    DataError,
    Prepared,
    download_yfinance,
    freeze,
    manifest_digest,
    read_csv,
    sample_frame,
    split,
    validate,
)
from alphaloop.ui import warn_loudly


def build_parser() -> argparse.ArgumentParser:
    """The flags documented in the README, in one place."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=("auto", "yfinance", "sample", "csv"), default="auto",
                   help="where the bars come from (default auto: yfinance, else the bundled sample)")
    p.add_argument("--ticker", default=DEFAULT_TICKER,
                   help="yfinance ticker; with --source sample, NASDAQ selects the NASDAQ sample "
                        f"(default {DEFAULT_TICKER})")
    p.add_argument("--csv", metavar="PATH", help="CSV with Date, Open, High, Low, Close, Volume [, Adj Close]")
    p.add_argument("--start", metavar="DATE", help="first date to keep")
    p.add_argument("--end", metavar="DATE", help="last date to keep (recreates frozen data exactly; default: all)")
    p.add_argument("--train-end", metavar="DATE", help="last date of the train split")
    p.add_argument("--val-end", metavar="DATE", help="last date of the validation split (test follows)")
    p.add_argument("--out", metavar="DIR", default=str(DATA_DIR), help=f"output folder (default {DATA_DIR}/)")
    p.add_argument("--force", action="store_true",
                   help="replace frozen data in --out even when its content differs (a workdir may depend on it)")
    return p


def as_date(text: str, flag: str) -> pd.Timestamp:
    """A flag's date, or a DataError naming the flag."""
    try:
        return pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{flag} {text!r} is not a date") from exc


def load(args: argparse.Namespace) -> Prepared:
    """Fetch bars from the requested source, falling back loudly when ``auto`` cannot download."""
    if args.source == "csv":
        if not args.csv:
            raise DataError("--source csv needs --csv PATH")
        return Prepared(read_csv(args.csv), f"csv:{args.csv}", Path(args.csv).stem)
    if args.csv:
        raise DataError("--csv is only used with --source csv")
    if args.source in ("auto", "yfinance"):
        try:
            return Prepared(download_yfinance(args.ticker, args.start), "yfinance", args.ticker)
        except DataError as exc:
            if args.source == "yfinance":
                raise
            frame, name = sample_frame(args.ticker)
            warn_loudly(
                "OFFLINE DATA SAMPLE IN USE",
                f"yfinance could not deliver {args.ticker} ({exc}).\n"
                f"Using the bundled {name} instead.\nRun prepare.py again with network to use live data.",
            )
            return Prepared(frame, "sample", name)
    frame, name = sample_frame(args.ticker)
    warn_loudly("OFFLINE DATA SAMPLE IN USE", f"Using the bundled {name} (--source sample).")
    return Prepared(frame, "sample", name)


def main(argv: list[str] | None = None) -> int:
    """Load, validate, split and freeze; every fatal problem is one `error:` line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        got = load(args)
        frame = got.frame
        if args.start:
            frame = frame[frame.index >= as_date(args.start, "--start")]
        if args.end:
            frame = frame[frame.index <= as_date(args.end, "--end")]
        frame, repairs = validate(frame, label=got.source)
        for line in repairs:
            print(f"warning: {line}", file=sys.stderr)
        parts = split(frame, args.train_end, args.val_end)
        command = ["prepare.py", *(sys.argv[1:] if argv is None else argv)]
        manifest = freeze(parts, Path(args.out), got.source, got.ticker, repairs,
                          command=command, args=vars(args), force=args.force)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
        return 130
    for name, info in manifest["splits"].items():
        print(f"{name:5s} {info['start']} .. {info['end']}  {info['rows']:5d} rows  sha256 {info['sha256'][:12]}")
    print(f"frozen: {args.out}/ ({got.ticker}, source {got.source}, data digest {manifest_digest(manifest)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
