"""Freeze daily OHLCV data into chronological train / validation / locked test splits.

    python prepare.py                      # yfinance SPY, falling back to the bundled sample
    python prepare.py --source sample --ticker NASDAQ
    python prepare.py --source csv --csv prices.csv --train-end 2012-12-31 --val-end 2016-12-31
    python prepare.py --tickers SPY,QQQ,IWM,EFA,TLT        # a universe; 5+ instruments hold out a fifth
    python prepare.py --source sample --tickers SPY,NASDAQ  # the two bundled samples as a universe, offline
    python prepare.py --source csv --csv-dir prices/        # one CSV per instrument, named by its stem
    python prepare.py --source skfolio                      # 20 S&P 500 stocks shipped with skfolio (closes only)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from alphaloop.data.frequency import Frequency, infer_frequency
from alphaloop.data.frozen import (
    DATA_DIR,
    DEFAULT_TICKER,
    NASDAQ_ALIASES,
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
from alphaloop.data.instruments import NO_HOLDOUT, Instrument, freeze_universe
from alphaloop.data.sources import SKFOLIO_PRICES, skfolio_frames
from alphaloop.present.ui import warn_loudly

SP500_ALIASES = frozenset({"SPY", "^GSPC", "GSPC", "SP500", "S&P500", "SPX", "^SPX"})


def build_parser() -> argparse.ArgumentParser:
    """The flags documented in the README, in one place."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=("auto", "yfinance", "sample", "csv", "skfolio"), default="auto",
                   help="where the bars come from (default auto: yfinance, else the bundled sample; skfolio: the "
                        "20 S&P 500 stocks in skfolio's wheel, adjusted closes only, needs pip install -e '.[stocks]')")
    p.add_argument("--ticker", default=DEFAULT_TICKER,
                   help="yfinance ticker; with --source sample, NASDAQ selects the NASDAQ sample "
                        f"(default {DEFAULT_TICKER})")
    p.add_argument("--tickers", metavar="A,B,...",
                   help="a universe: several yfinance tickers frozen on the same split dates (replaces --ticker); "
                        "with --source sample, SPY and NASDAQ name the two bundled samples")
    p.add_argument("--csv", metavar="PATH", action="append",
                   help="CSV with Date, Open, High, Low, Close, Volume [, Adj Close]; repeat for a universe "
                        "(each file's stem names its instrument)")
    p.add_argument("--csv-dir", metavar="DIR", help="with --source csv: a universe of one CSV per instrument in DIR")
    p.add_argument("--date-format", metavar="FMT",
                   help="how the CSV's dates are written, as strptime codes (e.g. '%%d.%%m.%%Y', '%%m/%%d/%%Y'); "
                        "default: inferred from the whole column, ambiguous columns are refused")
    p.add_argument("--bars-per-year", metavar="N", type=float,
                   help="bars in a year, which annualises every figure (default: inferred from the dates: "
                        "252 for 5-day daily bars, 365 for a 7-day calendar, 52 weekly, 12 monthly)")
    p.add_argument("--holdout-tickers", metavar="A,B",
                   help="instruments only `harness.py final` reads (default with 5 or more instruments: about a "
                        f"fifth, drawn reproducibly from the data; {NO_HOLDOUT} = hold out nothing)")
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
    if args.source == "skfolio":
        name, frame, _ = skfolio_instruments(args)[0]
        return Prepared(frame, "skfolio", name)
    if args.source == "csv":
        path = csv_paths(args)[0]  # one --csv, or a --csv-dir holding one file
        return Prepared(read_csv(path, args.date_format), f"csv:{path}", path.stem)
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


def ticker_list(args: argparse.Namespace) -> list[str]:
    """--tickers split on commas, or the single --ticker."""
    if args.tickers is None:
        return [args.ticker]
    names = [t.strip() for t in args.tickers.split(",") if t.strip()]
    if not names:
        raise DataError("--tickers is empty; give names separated by commas, e.g. --tickers SPY,QQQ,IWM")
    return names


def check_flags(args: argparse.Namespace) -> None:
    """Flag combinations that cannot mean anything, each refused with one line."""
    if args.source == "csv":
        if args.tickers:
            raise DataError("--tickers is for yfinance or the sample; with --source csv use --csv or --csv-dir")
        if bool(args.csv) == bool(args.csv_dir):
            raise DataError("--source csv needs --csv PATH (repeatable) or --csv-dir DIR, not both")
    elif args.csv or args.csv_dir:
        raise DataError("--csv and --csv-dir are only used with --source csv")
    if args.date_format and args.source != "csv":
        raise DataError("--date-format is for CSV files (--source csv)")


def csv_paths(args: argparse.Namespace) -> list[Path]:
    """The CSVs of --csv (in the order given) or of --csv-dir (sorted by name)."""
    if args.csv:
        return [Path(c) for c in args.csv]
    folder = Path(args.csv_dir)
    if not folder.is_dir():
        raise DataError(f"--csv-dir {folder}: no such folder")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if not found:
        raise DataError(f"--csv-dir {folder}: no .csv files in it")
    return found


def sample_instruments(names: list[str]) -> list[tuple[str, pd.DataFrame, str]]:
    """Each name mapped to a bundled sample (S&P 500 or NASDAQ), said loudly; anything else has no sample."""
    out, used = [], {}
    for name in names:
        if name.upper() not in SP500_ALIASES | NASDAQ_ALIASES and "NASDAQ" not in name.upper():
            raise DataError(f"--source sample has no data for {name!r}: the bundled samples are the S&P 500 "
                            "(SPY) and the NASDAQ Composite (NASDAQ)")
        frame, label = sample_frame(name)
        if label in used:
            raise DataError(f"{name!r} and {used[label]!r} name the same sample ({label})")
        used[label] = name
        out.append((name, frame, "sample"))
    warn_loudly("OFFLINE DATA SAMPLE IN USE", "Using the bundled samples: " + ", ".join(used) + ".")
    return out


def raw_instruments(args: argparse.Namespace) -> tuple[list[tuple[str, pd.DataFrame, str]], str]:
    """Several instruments' raw frames (name, frame, source) and the universe's source label."""
    if args.source == "csv":
        paths = csv_paths(args)
        return ([(p.stem, read_csv(p, args.date_format), f"csv:{p}") for p in paths],
                f"csv-dir:{args.csv_dir}" if args.csv_dir else "csv")
    if args.source == "skfolio":
        return skfolio_instruments(args), "skfolio"
    names = ticker_list(args)
    if args.source == "sample":
        return sample_instruments(names), "sample"
    try:
        return [(n, download_yfinance(n, args.start), "yfinance") for n in names], "yfinance"
    except DataError as exc:
        if args.source == "yfinance":
            raise
        warn_loudly("YFINANCE UNAVAILABLE: FALLING BACK",
                    f"yfinance could not deliver the universe ({exc}).\n"
                    "The bundled sample universe, SP500 and NASDAQ (1999-2018), is used instead.\n"
                    "Run prepare.py again with network to use live data.")
        return sample_instruments(["SP500", "NASDAQ"]), "sample"


def skfolio_instruments(args: argparse.Namespace) -> list[tuple[str, pd.DataFrame, str]]:
    """skfolio's S&P 500 stocks (all 20, or those --tickers names), said loudly for what they are."""
    frames = skfolio_frames()
    names = list(frames) if args.tickers is None else ticker_list(args)
    unknown = [n for n in names if n not in frames]
    if unknown:
        raise DataError(f"--tickers {', '.join(unknown)}: not among skfolio's stocks ({', '.join(frames)})")
    warn_loudly("SKFOLIO S&P 500 STOCKS: SURVIVORS, CLOSES ONLY",
                f"{len(names)} stocks from skfolio's bundled data set (daily adjusted closes, "
                f"{min(frames[n].index[0] for n in names).year}-{max(frames[n].index[-1] for n in names).year}). "
                "They are today's survivors (in the S&P 500 when the set was made), so their past returns are "
                "better than those of a universe chosen back then.\nOnly closes exist: no Open, High, Low or "
                "Volume; Close is already adjusted for splits and dividends.")
    return [(n, frames[n], "skfolio") for n in names]


def is_universe_request(args: argparse.Namespace) -> bool:
    """Several instruments asked for; one CSV in --csv-dir is a single instrument as before."""
    if args.source == "skfolio":
        return args.tickers is None or len(ticker_list(args)) > 1
    if args.source == "csv":
        return len(csv_paths(args)) > 1
    return len(ticker_list(args)) > 1


def trim(frame: pd.DataFrame, args: argparse.Namespace) -> pd.DataFrame:
    """--start and --end applied to one instrument's own rows."""
    if args.start:
        frame = frame[frame.index >= as_date(args.start, "--start")]
    if args.end:
        frame = frame[frame.index <= as_date(args.end, "--end")]
    return frame


def prepare_universe(args: argparse.Namespace, command: list[str]) -> dict:
    """Load, validate and freeze several instruments on shared split dates."""
    raw, source = raw_instruments(args)
    instruments = []
    for name, frame, origin in raw:
        frame, repairs = validate(trim(frame, args), label=name)
        for line in repairs:
            print(f"warning: {line}", file=sys.stderr)
        instruments.append(Instrument(name, frame, origin, tuple(repairs)))
    instruments = shared_columns(instruments)
    freqs = {i.name: bar_frequency(i.frame, args, i.name) for i in instruments}
    if len({f.periods_per_year for f in freqs.values()}) > 1:
        seen = ", ".join(f"{n}: {f.name}" for n, f in freqs.items())
        raise DataError(f"the instruments have different bar frequencies ({seen}); freeze them apart, "
                        "or state one with --bars-per-year N")
    return freeze_universe(instruments, Path(args.out), source, train_end=args.train_end, val_end=args.val_end,
                           holdout=args.holdout_tickers, command=command, args=vars(args), force=args.force,
                           bars=next(iter(freqs.values())).to_json(),
                           prices=SKFOLIO_PRICES if source == "skfolio" else None)


def shared_columns(instruments: list[Instrument]) -> list[Instrument]:
    """Open, High, Low and Volume only where every instrument has them, so a candidate's df has the same
    columns everywhere; Adj Close stays per instrument (it only decides that instrument's return prices)."""
    drop = sorted({c for i in instruments for c in i.frame.columns
                   if c != "Adj Close" and not all(c in j.frame.columns for j in instruments)})
    if not drop:
        return instruments
    for col in drop:
        have = sum(col in i.frame.columns for i in instruments)
        print(f"warning: {col} is in {have} of {len(instruments)} instruments only; dropped from all, so every "
              "instrument offers a candidate the same columns", file=sys.stderr)
    return [Instrument(i.name, i.frame.drop(columns=[c for c in drop if c in i.frame.columns]), i.source,
                       i.repairs) for i in instruments]


def bar_frequency(frame: pd.DataFrame, args: argparse.Namespace, label: str) -> Frequency:
    """--bars-per-year when given, else the frequency the dates show (refused when they show none)."""
    if args.bars_per_year is not None:
        if not 1 <= args.bars_per_year <= 366 * 24:
            raise DataError(f"--bars-per-year {args.bars_per_year:g}: give the number of bars in a year (1 .. 8784)")
        return Frequency("as stated by --bars-per-year", float(args.bars_per_year))
    return infer_frequency(frame.index, label)


def print_universe(manifest: dict, out: str) -> None:
    """What was frozen, per instrument; held-out instruments are counted here, named in holdout/ only."""
    dates = manifest["split_dates"]
    held = (manifest.get("holdout") or {}).get("count", 0)
    print(f"universe: {len(manifest['instruments'])} instruments (+{held} held out); shared split dates: "
          f"train to {dates['train_end']}, validation to {dates['val_end']}, test after")
    for name in manifest["instruments"]:
        rows = "  ".join(f"{s} {e['start']}..{e['end']} {e['rows']:5d}"
                         for s, e in manifest["universe"][name]["splits"].items())
        prices = str(manifest["universe"][name].get("return_prices", "")).split(" (")[0]
        print(f"  {name:10s} {rows}  returns on {prices}")
    if held:
        print(f"held out: {held} instrument(s) in {out}/{manifest['holdout']['file']} "
              "(only `harness.py final` reads them)")
    print(f"frozen: {out}/ ({len(manifest['instruments'])} instruments + {held} held out, source "
          f"{manifest['source']}, data digest {manifest_digest(manifest)})")


def print_data_facts(manifest: dict) -> None:
    """The bar frequency, the columns a candidate gets and the prices returns rest on, said on screen."""
    bars = manifest.get("bars") or {}
    print(f"bars: {bars.get('frequency')}, annualised with {bars.get('periods_per_year'):g} bars a year")
    missing = manifest.get("missing_columns") or []
    print(f"columns: {', '.join(manifest.get('columns') or [])}"
          + (f" (no {', '.join(missing)}: a candidate using them fails)" if missing else ""))
    print(f"returns on: {manifest.get('return_prices')}")


def main(argv: list[str] | None = None) -> int:
    """Load, validate, split and freeze; every fatal problem is one `error:` line and exit 2."""
    args = build_parser().parse_args(argv)
    command = ["prepare.py", *(sys.argv[1:] if argv is None else argv)]
    try:
        check_flags(args)
        if is_universe_request(args):
            manifest = prepare_universe(args, command)
        else:
            if args.holdout_tickers and args.holdout_tickers.strip().lower() != NO_HOLDOUT:
                raise DataError("--holdout-tickers needs a universe of at least two instruments")
            if args.tickers:  # one name in --tickers is the same as --ticker
                args.ticker = ticker_list(args)[0]
            got = load(args)
            frame, repairs = validate(trim(got.frame, args), label=got.source)
            for line in repairs:
                print(f"warning: {line}", file=sys.stderr)
            bars = bar_frequency(frame, args, got.ticker)
            parts = split(frame, args.train_end, args.val_end)
            manifest = freeze(parts, Path(args.out), got.source, got.ticker, repairs,
                              command=command, args=vars(args), force=args.force, bars=bars.to_json(),
                              prices=SKFOLIO_PRICES if got.source == "skfolio" else None)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
        return 130
    print_data_facts(manifest)
    if "instruments" in manifest:
        print_universe(manifest, args.out)
        return 0
    for name, info in manifest["splits"].items():
        print(f"{name:5s} {info['start']} .. {info['end']}  {info['rows']:5d} rows  sha256 {info['sha256'][:12]}")
    print(f"frozen: {args.out}/ ({got.ticker}, source {got.source}, data digest {manifest_digest(manifest)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
