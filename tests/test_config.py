"""Each default lives in one place: the command line, the loop and the LLM client read the same values."""

from __future__ import annotations

import inspect

import harness
from alphaloop.config import LoopConfig, run_limits
from alphaloop.propose import LLM, make_proposer
from alphaloop.propose.llm import LLMProposer


def test_run_flags_default_to_the_loop_config() -> None:
    args = harness.build_parser("run").parse_args([])
    cfg = LoopConfig()
    assert (args.workdir, args.data, *run_limits(args.iterations, args.max_fails, args.hours), args.population) == (
        cfg.workdir, cfg.data_dir, cfg.iterations, cfg.max_fails, cfg.population)
    assert (args.metric, args.folds, args.cost_bps, args.seed, args.stress_paths, args.eval_timeout) == (
        cfg.metric, cfg.folds, cfg.cost_bps, cfg.seed, cfg.stress_paths, cfg.eval_timeout_s)
    for command in ("check", "final", "report"):
        sub = harness.build_parser(command).parse_args(["x.py"] if command == "check" else [])
        assert sub.data == cfg.data_dir and getattr(sub, "workdir", cfg.workdir) == cfg.workdir


def test_llm_flags_and_constructors_share_one_set_of_defaults() -> None:
    args = harness.build_parser("run").parse_args([])
    assert (args.timeout, args.retries, args.retry_backoff) == (LLM.timeout_s, LLM.retries, LLM.backoff_s)
    for fn in (make_proposer, LLMProposer):
        params = inspect.signature(fn).parameters
        assert params["timeout_s"].default == LLM.timeout_s
        assert params["max_retries"].default == LLM.retries and params["backoff_s"].default == LLM.backoff_s
    assert inspect.signature(LLMProposer).parameters["backoff_max_s"].default == LLM.backoff_max_s


def test_help_quotes_the_defaults_it_uses() -> None:
    text = " ".join(harness.build_parser("run").format_help().split())
    cfg = LoopConfig()
    assert f"(default {cfg.iterations}; with --hours, no cap)" in text and f"(default {cfg.stress_paths})" in text
    assert f"(default {LLM.retries})" in text and f"capped at {LLM.backoff_max_s:g}" in text
