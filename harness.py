"""alphaloop's research loop and its companions.

    python harness.py [options]            run (or resume) the loop in --workdir (default train/)
    python harness.py check FILE           run one candidate file through the pipeline's stages
    python harness.py final [--iter N]     score the best candidate on the locked test split (logged)
    python harness.py report               write report.html for a workdir
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import sys
from pathlib import Path

from alphaloop.tasks import DEFAULT_TASK
from alphaloop.tasks.protocol import driver_source
from sandbox.launch import begin_early


def _early_drivers(argv: list[str]) -> list[tuple[str, str]] | None:
    """The driver ``check`` will run (its --task, read from ``argv`` before anything heavy is imported)."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--task", default=DEFAULT_TASK)
    task = peek.parse_known_args(argv)[0].task
    source = driver_source(task)
    return [(task, source)] if source else None


if __name__ == "__main__" and sys.argv[1:2] == ["check"]:
    # The sandbox worker boots (bubblewrap, Python, pandas, the task's driver, its zygotes) on another
    # core while this process imports.
    begin_early(_early_drivers(sys.argv[2:]))
    # A one-shot command that ends with os._exit: the cyclic collector would only walk what the imports
    # built (~33 ms, 144 young collections and a full one); one candidate's garbage is freed at exit.
    gc.disable()

from alphaloop.config import DATA_DIR, WORKDIR, LoopConfig, run_limits  # noqa: E402
from alphaloop.tasks import TASKS  # noqa: E402  (every plug-in: --task's choices and help)

COMMANDS = ("run", "check", "final", "report")
RUN = LoopConfig()  # every flag's default (and the figure its help quotes) comes from here
METRICS = tuple(dict.fromkeys(m for task in TASKS.values() for m in task.metrics))  # every task's --metric values


def _folder(path: Path) -> str:
    return f"{path}/"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=RUN.data_dir,
                   help=f"frozen data folder made by prepare.py (default {_folder(RUN.data_dir)})")
    p.add_argument("--metric", choices=METRICS, default=RUN.metric,
                   help=f"selection metric, measured on validation after costs (default {RUN.metric}; "
                        "total_return = the original weekend harness; information_ratio, --task portfolio only: "
                        "the excess over the equal-weight buy and hold)")
    p.add_argument("--folds", type=int, default=RUN.folds,
                   help=f"walk-forward folds: equal chronological sub-periods of train, not re-fitted "
                        f"(sub-period analysis); validation is in no fold (default {RUN.folds})")
    p.add_argument("--cost-bps", type=float, default=RUN.cost_bps,
                   help=f"cost per position change, bp of notional (default {RUN.cost_bps:g})")
    p.add_argument("--max-gross", type=float, default=RUN.max_gross, metavar="G",
                   help=f"--task portfolio: the most gross exposure (sum of absolute weights) a portfolio may take "
                        f"on any date (default {RUN.max_gross:g})")
    p.add_argument("--task", choices=tuple(TASKS), default=RUN.task,
                   help="; ".join(f"{name}: {task.summary}" for name, task in TASKS.items()))
    p.add_argument("--eval-timeout", type=float, default=RUN.eval_timeout_s, metavar="S",
                   help="wall-clock seconds for all sandbox runs of one candidate: full run, probes, reruns "
                        f"(default {RUN.eval_timeout_s:g})")


def build_parser(command: str) -> argparse.ArgumentParser:
    """One parser per subcommand, so each --help lists only the flags that command reads."""
    if command == "check":
        p = argparse.ArgumentParser(prog="harness.py check",
                                    description="Run one candidate through the loop's pipeline "
                                                "on train and validation.")
        p.add_argument("file", type=Path,
                       help="a trade.py-style file (only its marked region is used) or just the region")
        _common(p)
        return p
    if command == "final":
        p = argparse.ArgumentParser(prog="harness.py final",
                                    description="Score the best candidate (or --iter N) on the locked test split; "
                                                "every reading is recorded.")
        p.add_argument("--iter", type=int, dest="iteration",
                       help="iteration to score instead of the best (best_trade.py, best_forecast.py...)")
        p.add_argument("--workdir", type=Path, default=WORKDIR, help=f"run folder (default {_folder(WORKDIR)})")
        p.add_argument("--data", type=Path, default=DATA_DIR, help=f"frozen data folder (default {_folder(DATA_DIR)})")
        p.add_argument("--cost-bps", type=float,
                       help="cost per position change in bp (default: the costs the run used)")
        return p
    if command == "report":
        p = argparse.ArgumentParser(prog="harness.py report",
                                    description="Write report.html (self-contained) for a run folder.")
        p.add_argument("--workdir", type=Path, default=WORKDIR, help=f"run folder (default {_folder(WORKDIR)})")
        p.add_argument("--data", type=Path, default=DATA_DIR, help=f"frozen data folder (default {_folder(DATA_DIR)})")
        return p
    from alphaloop.propose import KINDS, LLM  # the loop's flags only: check, final and report never propose

    p = argparse.ArgumentParser(prog="harness.py", description=__doc__.split("\n\n")[0],
                                epilog="Subcommands: check FILE | final [--iter N] | report. "
                                       "Environment: OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL "
                                       "(also read from .env).")
    p.add_argument("--iterations", type=int,
                   help="last iteration number to run; iteration 0 is the starting trade.py "
                        f"(default {RUN.iterations}; with --hours, no cap)")
    p.add_argument("--max-fails", type=int,
                   help="stop after this many consecutive iterations that do not enter the population; "
                        f"0 = never (default {RUN.max_fails}; with --hours, never: after {RUN.stall_after} the search "
                        "widens instead)")
    p.add_argument("--population", type=int, default=RUN.population,
                   help=f"population size K, ranked by the selection metric on validation (default {RUN.population})")
    p.add_argument("--proposer", choices=KINDS, default="auto",
                   help="auto: llm when OPENAI_BASE_URL or OPENAI_API_KEY is set (environment or .env), else offline")
    p.add_argument("--model", help="LLM model name (overrides OPENAI_MODEL)")
    p.add_argument("--base-url",
                   help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1 (overrides OPENAI_BASE_URL)")
    p.add_argument("--api-key", help="API key (overrides OPENAI_API_KEY; prefer the environment or .env)")
    p.add_argument("--timeout", type=float, default=LLM.timeout_s,
                   help=f"seconds per LLM request before it is retried (default {LLM.timeout_s:g})")
    p.add_argument("--max-reply-tokens", type=int, metavar="N",
                   help="reply limit sent with each LLM request as max_tokens, for servers that need one "
                        "(default: none sent)")
    p.add_argument("--retries", type=int, default=LLM.retries,
                   help="retries per LLM request on 429, 5xx, timeouts and dropped connections before the run stops "
                        f"(default {LLM.retries})")
    p.add_argument("--retry-backoff", type=float, default=LLM.backoff_s,
                   help="first retry delay in seconds, doubled each retry with jitter, "
                        f"capped at {LLM.backoff_max_s:g} (default {LLM.backoff_s:g})")
    p.add_argument("--hours", type=float, metavar="H",
                   help="run until H hours of this command have passed, then stop at the next iteration boundary "
                        "(no iteration cap unless --iterations is given; state saved; rerun to resume)")
    p.add_argument("--max-tokens", type=int, metavar="N",
                   help="stop at the first iteration boundary once this command used N LLM tokens "
                        "(prompt + completion; state saved)")
    p.add_argument("--seed", type=int, default=RUN.seed,
                   help=f"seed for parent choice and the offline proposer (default {RUN.seed})")
    p.add_argument("--workdir", type=Path, default=RUN.workdir,
                   help=f"run folder; rerunning with the same folder resumes (default {_folder(RUN.workdir)})")
    p.add_argument("--start-from", type=Path,
                   help="trade.py-style file whose region is iteration 0 (default: ./trade.py)")
    p.add_argument("--stress-paths", type=int, default=RUN.stress_paths,
                   help="synthetic paths per stress scenario, enough for stable percentiles; 0 skips the stress "
                        f"suite (default {RUN.stress_paths})")
    p.add_argument("--stress-select", action="store_true",
                   help="selection metric also penalises the 5th-percentile stress drawdown")
    p.add_argument("--cross-ticker",
                   help="second market for the generalisation table (default: the bundled NASDAQ sample)")
    p.add_argument("--workers", type=int, default=RUN.workers, metavar="N",
                   help="iterations in flight (LLM requests and sandbox workers); iteration k proposes from the "
                        f"state committed up to k-N, records are committed in order (default {RUN.workers})")
    p.add_argument("--executor", choices=("local", "ray"), default=RUN.executor,
                   help="where candidates are evaluated: local sandbox workers, or a Ray cluster "
                        f"(pip install -e '.[ray]') (default {RUN.executor})")
    p.add_argument("--ray-address", default=RUN.ray_address,
                   help="with --executor ray: the cluster to join (e.g. ray://host:10001 or auto); "
                        "default: start a local one")
    _common(p)
    return p


def ensure_data(data_dir: Path) -> None:
    """A fresh clone has no frozen data: make it with prepare.py's defaults, loudly."""
    if (data_dir / "manifest.json").is_file():
        return
    import prepare
    from alphaloop.present.ui import warn_loudly

    warn_loudly("NO FROZEN DATA YET",
                f"{data_dir}/manifest.json is missing: running `python prepare.py --out {data_dir}` first.")
    if prepare.main(["--out", str(data_dir)]) != 0:
        raise SystemExit(2)


def run_loop(args: argparse.Namespace) -> int:
    """Resolve the proposer (loudly when offline), make sure data exists, then run or resume the loop."""
    from dotenv import load_dotenv

    from alphaloop.present.ui import make_view, warn_loudly
    from alphaloop.propose import make_proposer, missing_endpoint, probe_endpoint, resolve_kind
    from alphaloop.propose.base import EndpointDown
    from alphaloop.run.loop import Loop, LoopStop

    load_dotenv(Path.cwd() / ".env", override=False)
    args.iterations, args.max_fails = run_limits(args.iterations, args.max_fails, args.hours)
    cap = args.iterations if args.iterations is not None else 0
    if (min(cap, args.max_fails, args.retries, args.stress_paths, args.retry_backoff, args.cost_bps) < 0
            or min(args.population, args.folds) < 1 or args.timeout <= 0 or not args.eval_timeout > 0):
        print("error: --iterations, --max-fails, --retries, --retry-backoff, --stress-paths and --cost-bps "
              "must be >= 0, "
              "--population and --folds >= 1, --timeout and --eval-timeout > 0", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if args.base_url:
        env["OPENAI_BASE_URL"] = args.base_url
    if args.api_key:
        env["OPENAI_API_KEY"] = args.api_key
    if args.workers < 1:
        print(f"error: --workers must be >= 1 (got {args.workers})", file=sys.stderr)
        return 2
    if args.ray_address and args.executor != "ray":
        print("error: --ray-address needs --executor ray", file=sys.stderr)
        return 2
    if args.executor == "ray" and importlib.util.find_spec("ray") is None:
        print("error: --executor ray needs Ray: pip install -e '.[ray]'", file=sys.stderr)
        return 2
    if args.stress_select and args.stress_paths < 1:
        print("error: --stress-select needs --stress-paths >= 1", file=sys.stderr)
        return 2
    for flag, value in (("--max-reply-tokens", args.max_reply_tokens), ("--max-tokens", args.max_tokens),
                        ("--hours", args.hours)):
        if value is not None and not value > 0:
            print(f"error: {flag} must be > 0 (got {value:g})", file=sys.stderr)
            return 2
    task = TASKS[args.task]
    if args.metric not in task.metrics:
        print(f"error: --metric {args.metric} does not apply to --task {task.name}; choose from "
              f"{', '.join(task.metrics)}", file=sys.stderr)
        return 2
    if not args.max_gross > 0:
        print(f"error: --max-gross must be > 0 (got {args.max_gross:g})", file=sys.stderr)
        return 2
    args.metric = task.selection_metric(args.metric)  # a task with a scale of its own (forecast) fixes it
    kind, why = resolve_kind(args.proposer, env)
    missing = missing_endpoint(kind, env)
    if missing:  # refuse before anything is written, instead of quietly trying the public OpenAI URL
        print(f"error: {missing}", file=sys.stderr)
        return 2
    try:
        if kind == "offline":
            proposer = task.offline_proposer(args.seed)
        else:
            proposer = make_proposer(kind, seed=args.seed, model=args.model, base_url=env.get("OPENAI_BASE_URL"),
                                     api_key=env.get("OPENAI_API_KEY"), timeout_s=args.timeout,
                                     max_retries=args.retries, backoff_s=args.retry_backoff,
                                     max_reply_tokens=args.max_reply_tokens, **task.prompts())
    except (EndpointDown, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = probe_endpoint(proposer)
    if problem:  # a wrong URL, key or model fails in seconds, before the workdir or the data is touched
        print(f"error: {problem}; nothing was run or written, fix it and rerun the same command", file=sys.stderr)
        return 3
    if kind == "offline":
        warn_loudly("OFFLINE PROPOSER IN USE",
                    f"{why}\nThe built-in offline search proposes the {task.candidates} "
                    f"(seed {args.seed}).\n"
                    "Set OPENAI_BASE_URL (and OPENAI_MODEL, OPENAI_API_KEY) in the environment or .env to use an LLM.")
        label = f"offline (seed {args.seed})"
    else:
        label = f"llm {getattr(proposer, 'model', '?')} @ {getattr(proposer, 'base_url', None) or 'api.openai.com'}"
    if args.start_from is not None and not args.start_from.is_file():
        print(f"error: --start-from {args.start_from}: no such file", file=sys.stderr)
        return 2
    ensure_data(args.data)
    start = args.start_from or task.start_file()
    cfg = LoopConfig(workdir=args.workdir, data_dir=args.data, iterations=args.iterations, max_fails=args.max_fails,
                     population=args.population, metric=args.metric, folds=args.folds, cost_bps=args.cost_bps,
                     max_gross=args.max_gross,
                     seed=args.seed, stress_select=args.stress_select, stress_paths=args.stress_paths,
                     cross_ticker=args.cross_ticker, start_file=start, hours=args.hours, max_tokens=args.max_tokens,
                     eval_timeout_s=args.eval_timeout, task=args.task, workers=args.workers,
                     executor=args.executor, ray_address=args.ray_address)
    view = make_view(args.iterations)
    try:
        return Loop(cfg, proposer, label, view).run()
    except LoopStop as exc:
        view.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Dispatch on the first word: check, final, report, or (default) run the loop.

    Each command imports only what it runs (function-level imports), so `--help` and `check` start fast.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "run"
    args = build_parser(command).parse_args(argv)
    if command == "check":
        from alphaloop.commands.check import run_check

        return run_check(args.file, args.data, args.metric, args.folds, args.cost_bps, eval_timeout_s=args.eval_timeout,
                         task=args.task, max_gross=args.max_gross)
    if command == "final":
        from alphaloop.commands.final import run_final

        return run_final(args.workdir, args.data, args.iteration, args.cost_bps)
    if command == "report":
        from alphaloop.present.report import write_report
        from alphaloop.run.workdir import Workdir

        if not Workdir(args.workdir).has_run():
            print(f"error: {args.workdir}/ holds no run ({Workdir(args.workdir).state.name} missing); "
                  "pass the --workdir of a harness.py run", file=sys.stderr)
            return 2
        path = write_report(args.workdir, args.data)
        print(f"report: {path}")
        return 0
    return run_loop(args)


def _exit_at_once(code: int) -> None:
    """End a one-shot command without the interpreter's teardown (with pandas loaded, ~0.1 s of CPU
    spent freeing what the exit frees anyway): its output is flushed and it holds no file open for writing."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 1
    os._exit(code)


if __name__ == "__main__":
    status = main()
    if sys.argv[1:2] == ["check"]:
        _exit_at_once(status)
    sys.exit(status)
