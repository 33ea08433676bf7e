"""The LLM proposer over real HTTP against a scripted local server; never a real endpoint.

Also the proposer choice: ``resolve_kind`` and ``make_proposer``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, closed_port_url, dropped, error, garbage, good, slow

from alphaloop.candidate import extract_region, splice_region, template_text
from alphaloop.evaluate.backtest import DEFAULT_COST_BPS
from alphaloop.propose import load_env, make_proposer, missing_endpoint, probe_endpoint, resolve_kind
from alphaloop.propose.base import (
    DEFAULT_TIMEOUT_S,
    CandidateFigures,
    EndpointDown,
    Expectation,
    GuardThreshold,
    MemberSummary,
    ProposalContext,
    UniverseFigures,
    WindowFigures,
)
from alphaloop.propose.llm import CUT_OFF, DEFAULT_MODEL, LLMProposer
from alphaloop.propose.offline import OfflineProposer
from alphaloop.propose.parsing import NO_CODE
from alphaloop.propose.prompting import (
    DESCRIPTION_LIMIT,
    FIGURES_LIMIT,
    GUARDS_LIMIT,
    LEARNINGS_LIMIT,
    OUTCOME_LIMIT,
    PARENT_LIMIT,
    REASON_LIMIT,
    TOP_K,
    build_messages,
    load_prompts,
    prompt_chars,
    variable_bound,
)

REGION = '''def generate_features(df):
    df["ema_fast"] = df["Close"].ewm(span=12, adjust=False).mean()
    df["ema_slow"] = df["Close"].ewm(span=40, adjust=False).mean()
    return df


def strategy_logic(row):
    if row["ema_fast"] > row["ema_slow"]:
        return 1
    return -1
'''
NOTES = "Hypothesis: EMAs turn sooner.\nChange: SMA -> EMA.\nExpected effect: more trades.\nExpect: sharpe up 0.1\n"
GOOD = f"Here you go.\n```python\n{REGION}```\n```markdown\n{NOTES}```\n"
TIMEOUT_S = 2.0  # generous: a loaded CI machine must never time out a scripted instant reply
ENV_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
            "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real endpoint settings, no proxies, and no stray .env can leak into a test."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def ctx(iteration: int = 4) -> ProposalContext:
    return ProposalContext(
        iteration=iteration, parent_iteration=1, parent_region=extract_region(template_text()), metric="sharpe",
        population=[MemberSummary(1, 0.61, 0.74, 9, "baseline SMA 20/50")], learnings="- SMA crosses trade rarely",
        last_outcome="iter 3 rejected at lookahead: column 'z' changed",
    )


def proposer(fake: FakeOpenAI, sleeps: list[float] | None = None, **kw: object) -> LLMProposer:
    args: dict = {"base_url": fake.base_url, "api_key": "test-key", "model": "fake-model", "timeout_s": TIMEOUT_S,
                  "max_retries": 5, "seed": 1, "env": {}, "sleep": (sleeps if sleeps is not None else []).append}
    args.update(kw)
    return LLMProposer(**args)


def test_good_reply_with_usage(fake: FakeOpenAI) -> None:
    fake.script(good(GOOD, usage=(1234, 321)))
    p = proposer(fake).propose(ctx())
    assert p.error is None
    assert p.region == REGION
    assert p.hypothesis == "EMAs turn sooner." and p.change == "SMA -> EMA."
    assert p.expectation == Expectation("sharpe", 1, 0.1)
    assert p.tokens == {"prompt": 1234, "completion": 321}
    assert p.model == "fake-model"
    request = fake.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == "Bearer test-key"
    body = request["json"]
    assert set(body) == {"model", "messages", "temperature"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "sma_fast" in body["messages"][1]["content"]
    assert "column 'z' changed" in body["messages"][1]["content"]


def test_missing_usage_records_zero_tokens(fake: FakeOpenAI) -> None:
    fake.script(good(GOOD, usage=None))
    p = proposer(fake).propose(ctx())
    assert p.region == REGION
    assert p.tokens == {"prompt": 0, "completion": 0}


def test_http_500_then_good_is_retried(fake: FakeOpenAI) -> None:
    sleeps: list[float] = []
    messages: list[str] = []
    fake.script(error(500), good(GOOD, usage=(10, 5)))
    llm = proposer(fake, sleeps, on_retry=messages.append, backoff_s=1.0)
    p = llm.propose(ctx())
    assert p.region == REGION
    assert p.tokens == {"prompt": 10, "completion": 5}
    assert len(fake.requests) == 2
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.5
    assert "attempt 1/6" in messages[0] and "HTTP 500" in messages[0]
    assert p.retries == 1


def test_429_honours_retry_after(fake: FakeOpenAI) -> None:
    sleeps: list[float] = []
    fake.script(error(429, "rate limited", headers={"Retry-After": "2"}), good(GOOD))
    p = proposer(fake, sleeps).propose(ctx())
    assert p.region == REGION
    assert sleeps == [2.0]


def test_slow_reply_times_out_and_is_retried(fake: FakeOpenAI) -> None:
    sleeps: list[float] = []
    fake.script(slow(TIMEOUT_S + 2.0, GOOD), good(GOOD))
    started = time.monotonic()
    p = proposer(fake, sleeps).propose(ctx())
    elapsed = time.monotonic() - started
    assert p.region == REGION
    assert len(sleeps) == 1
    assert TIMEOUT_S * 0.9 <= elapsed < TIMEOUT_S * 4


def test_connection_dropped_mid_response_is_retried(fake: FakeOpenAI) -> None:
    sleeps: list[float] = []
    fake.script(dropped(), good(GOOD))
    p = proposer(fake, sleeps).propose(ctx())
    assert p.region == REGION
    assert len(sleeps) == 1 and len(fake.requests) == 2


def test_always_500_raises_endpoint_down_after_the_retries(fake: FakeOpenAI) -> None:
    sleeps: list[float] = []
    fake.default = error(503, "overloaded")
    with pytest.raises(EndpointDown) as info:
        proposer(fake, sleeps, backoff_s=1.0, backoff_max_s=10.0).propose(ctx())
    message = str(info.value)
    assert f"endpoint {fake.base_url} unreachable after 6 attempts" in message
    assert "HTTP 503" in message and "overloaded" in message
    assert len(fake.requests) == 6
    assert len(sleeps) == 5
    for k, delay in enumerate(sleeps):
        assert min(10.0, 0.5 * 2**k) <= delay <= min(10.0, 1.5 * 2**k)
    assert sleeps[3] > sleeps[0]


def test_backoff_jitter_is_seeded(fake: FakeOpenAI) -> None:
    runs = []
    for _ in range(2):
        sleeps: list[float] = []
        fake.queue.clear()
        fake.script(error(502), error(502), good(GOOD))
        proposer(fake, sleeps, seed=9).propose(ctx())
        runs.append(sleeps)
    assert runs[0] == runs[1] and len(runs[0]) == 2


def test_unreachable_endpoint_raises_endpoint_down() -> None:
    url = closed_port_url()
    sleeps: list[float] = []
    llm = LLMProposer(base_url=url, api_key="k", timeout_s=TIMEOUT_S, max_retries=2, env={}, sleep=sleeps.append)
    with pytest.raises(EndpointDown, match=r"unreachable after 3 attempts: connection failed"):
        llm.propose(ctx())
    assert len(sleeps) == 2


@pytest.mark.parametrize("status, hint", [(401, "OPENAI_API_KEY"), (403, "OPENAI_API_KEY"),
                                          (404, "OPENAI_BASE_URL"), (400, "rejected")])
def test_non_retryable_errors_raise_at_once(fake: FakeOpenAI, status: int, hint: str) -> None:
    sleeps: list[float] = []
    fake.script(error(status, "nope"), good(GOOD))
    with pytest.raises(EndpointDown) as info:
        proposer(fake, sleeps).propose(ctx())
    assert hint in str(info.value) and f"HTTP {status}" in str(info.value) and "fake-model" in str(info.value)
    assert len(fake.requests) == 1 and sleeps == []


def test_wrong_base_path_is_a_clear_404(fake: FakeOpenAI) -> None:
    llm = proposer(fake, base_url=fake.base_url.removesuffix("/v1"))
    with pytest.raises(EndpointDown, match="OPENAI_BASE_URL"):
        llm.propose(ctx())


def test_temperature_rejection_drops_the_parameter(fake: FakeOpenAI) -> None:
    fake.script(error(400, "Unsupported value: 'temperature' does not support 0.7"), good(GOOD), good(GOOD))
    llm = proposer(fake)
    assert llm.propose(ctx()).region == REGION
    assert llm.propose(ctx()).region == REGION
    assert "temperature" in fake.requests[0]["json"]
    assert "temperature" not in fake.requests[1]["json"] and "temperature" not in fake.requests[2]["json"]


def test_reply_without_code_is_a_proposal_with_an_error(fake: FakeOpenAI) -> None:
    fake.script(good("I think a trend filter would help.\nHypothesis: trends persist.", usage=(50, 12)))
    p = proposer(fake).propose(ctx())
    assert p.region is None and p.error == NO_CODE
    assert p.tokens == {"prompt": 50, "completion": 12}
    assert p.hypothesis == "trends persist."


def test_truncated_reply_says_so(fake: FakeOpenAI) -> None:
    fake.script(good("```markdown\nHypothesis: x\n```\n```python\ndef generate_fea", finish_reason="length"))
    p = proposer(fake).propose(ctx())
    assert p.region is None and "output limit" in p.error


def test_empty_content_is_a_proposal_with_an_error(fake: FakeOpenAI) -> None:
    fake.script(good(None))  # type: ignore[arg-type]
    p = proposer(fake).propose(ctx())
    assert p.region is None and p.error


def test_hostile_code_is_returned_as_is(fake: FakeOpenAI) -> None:
    hostile = ("def generate_features(df):\n    open('/etc/passwd').read()\n    return df\n\n\n"
               "def strategy_logic(row):\n    return __import__('os').system('true')\n")
    fake.script(good(f"```python\n{hostile}```\n```markdown\n{NOTES}```"))
    assert proposer(fake).propose(ctx()).region == hostile


def test_full_file_reply_is_reduced_to_the_region(fake: FakeOpenAI) -> None:
    full = splice_region(template_text(), REGION)
    fake.script(good(f"The whole file:\n```python\n{full}\n```\n```markdown\n{NOTES}```"))
    p = proposer(fake).propose(ctx())
    assert p.region == REGION


def test_unreadable_body_is_a_proposal_with_an_error(fake: FakeOpenAI) -> None:
    fake.script(garbage())
    p = proposer(fake).propose(ctx())
    assert p.region is None and p.error


def test_compact_returns_the_summary(fake: FakeOpenAI) -> None:
    fake.script(good("```markdown\n- EMA crosses beat SMA crosses\n- trend filters cut drawdown\n```"))
    out = proposer(fake).compact("- iter 1: ...\n" * 200, budget_tokens=200)
    assert out == "- EMA crosses beat SMA crosses\n- trend filters cut drawdown"
    assert "at most 160 tokens" in fake.requests[0]["json"]["messages"][1]["content"]


def test_compact_returns_none_on_failure_or_overrun(fake: FakeOpenAI) -> None:
    fake.default = error(500)
    assert proposer(fake, max_retries=1).compact("notes", 100) is None
    fake.script(good("x" * 401))
    assert proposer(fake).compact("notes", 100) is None
    fake.script(good(""))
    assert proposer(fake).compact("notes", 100) is None


def test_environment_and_arguments(fake: FakeOpenAI) -> None:
    env = {"OPENAI_BASE_URL": fake.base_url + "/", "OPENAI_MODEL": "env-model", "OPENAI_API_KEY": "env-key"}
    fake.script(good(GOOD), good(GOOD))
    from_env = LLMProposer(env=env, timeout_s=TIMEOUT_S)
    assert from_env.model == "env-model" and from_env.base_url == fake.base_url
    from_env.propose(ctx())
    assert fake.requests[0]["json"]["model"] == "env-model"
    assert fake.requests[0]["headers"]["authorization"] == "Bearer env-key"
    overridden = LLMProposer(env=env, model="arg-model", timeout_s=TIMEOUT_S)
    overridden.propose(ctx())
    assert fake.requests[1]["json"]["model"] == "arg-model"
    default = LLMProposer(env={}, base_url=fake.base_url)
    assert default.model == DEFAULT_MODEL


@pytest.mark.parametrize("url", ["localhost:11434/v1", "htp://x/v1", "http://exa mple/v1"])
def test_malformed_base_url_is_refused_before_any_request(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        LLMProposer(base_url=url, env={})


def test_no_key_sends_a_placeholder(fake: FakeOpenAI) -> None:
    fake.script(good(GOOD))
    LLMProposer(env={"OPENAI_BASE_URL": fake.base_url}, timeout_s=TIMEOUT_S).propose(ctx())
    assert fake.requests[0]["headers"]["authorization"] == "Bearer not-needed"


def test_resolve_kind() -> None:
    offline = ("offline", "no OPENAI_BASE_URL or OPENAI_API_KEY set: using the offline proposer")
    assert resolve_kind("auto", {}) == offline
    kind, why = resolve_kind("auto", {"OPENAI_BASE_URL": "http://localhost:11434/v1", "OPENAI_MODEL": "llama3"})
    assert kind == "llm" and "OPENAI_BASE_URL" in why and "llama3" in why
    assert resolve_kind("auto", {"OPENAI_API_KEY": "sk-secret"})[0] == "llm"
    assert "sk-secret" not in resolve_kind("auto", {"OPENAI_API_KEY": "sk-secret"})[1]
    assert resolve_kind("auto", {"OPENAI_API_KEY": ""})[0] == "offline"
    assert resolve_kind("offline", {"OPENAI_API_KEY": "k"})[0] == "offline"
    assert resolve_kind("llm", {})[0] == "llm"
    with pytest.raises(ValueError):
        resolve_kind("gpt", {})


def test_resolve_kind_reads_dotenv_in_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_kind("auto")[0] == "offline"
    (tmp_path / ".env").write_text("OPENAI_BASE_URL=http://127.0.0.1:9/v1\nOPENAI_MODEL=qwen\n")
    kind, why = resolve_kind("auto")
    assert kind == "llm" and "(from .env)" in why
    monkeypatch.setenv("OPENAI_MODEL", "from-env")
    assert load_env()["OPENAI_MODEL"] == "from-env"


def test_make_proposer(fake: FakeOpenAI) -> None:
    assert isinstance(make_proposer("offline", seed=1), OfflineProposer)
    assert isinstance(make_proposer("auto", seed=1, env={}), OfflineProposer)
    llm = make_proposer("auto", seed=1, env={"OPENAI_BASE_URL": fake.base_url}, model="m", timeout_s=TIMEOUT_S)
    assert isinstance(llm, LLMProposer) and llm.model == "m"
    fake.script(good(GOOD))
    assert llm.propose(ctx()).region == REGION
    with pytest.raises(ValueError):
        make_proposer("other", seed=1)


def test_prompt_is_bounded_however_large_the_run() -> None:
    program, template = load_prompts()
    small = build_messages(ctx(), program, template)
    huge = ProposalContext(
        iteration=5000, parent_iteration=4999, parent_region="x = 1\n" * 10_000, metric="sharpe",
        population=[MemberSummary(i, i / 100, 0.5, 10, "d" * 5000) for i in range(300)],
        learnings="- lesson\n" * 50_000, last_outcome="error " * 10_000,
    )
    big = build_messages(huge, program, template)
    limit = PARENT_LIMIT + LEARNINGS_LIMIT + OUTCOME_LIMIT + TOP_K * (DESCRIPTION_LIMIT + 100)
    assert prompt_chars(big) <= prompt_chars(small) + limit
    user = big[1]["content"]
    assert "iter 299:" in user and "iter 295:" in user and "iter 294:" not in user
    assert "and 295 more not shown" in user
    assert "characters omitted" in user and "parent region cut" in user


def test_prompt_carries_the_context_and_fills_every_placeholder() -> None:
    program, template = load_prompts()
    messages = build_messages(replace(ctx(), metric="sortino"), program, template)
    system, user = messages[0]["content"], messages[1]["content"]
    assert "**sortino**" in system and "{{" not in system
    assert "{{" not in user
    for text in ("Iteration 4", "iteration 1", "sma_fast", "baseline SMA 20/50", "SMA crosses trade rarely",
                 "column 'z' changed", "```python", "Expect:"):
        assert text in user
    empty = build_messages(ProposalContext(1, 0, "", "sharpe", [], "", None), program, template)
    assert "(none yet)" in empty[1]["content"] and "(empty" in empty[1]["content"]


def test_values_holding_braces_are_not_substituted_again() -> None:
    program, template = load_prompts()
    c = ProposalContext(2, 1, 'df["{{metric}}"] = 1\n', "sharpe", [], "{{parent_region}}", None)
    user = build_messages(c, program, template)[1]["content"]
    assert 'df["{{metric}}"]' in user and "{{parent_region}}" in user


def test_instructions_placeholder_inlines_the_program() -> None:
    messages = build_messages(ctx(), "Program for {{metric}}.", "{{instructions}}\n\nParent:\n{{parent_region}}")
    assert len(messages) == 1 and messages[0]["role"] == "user"
    assert messages[0]["content"].startswith("Program for sharpe.")


def test_reply_cut_off_at_the_output_limit_is_named_not_a_syntax_error(fake: FakeOpenAI) -> None:
    cut = f"```python\n{REGION[:-40]}"
    fake.script(good(cut, finish_reason="length"))
    p = proposer(fake).propose(ctx())
    assert p.region is None and p.error == CUT_OFF and p.finish_reason == "length"


def test_reply_cut_off_after_a_complete_region_keeps_the_region(fake: FakeOpenAI) -> None:
    fake.script(good(f"```python\n{REGION}```\n```markdown\nHypothesis: EMAs turn", finish_reason="length"))
    p = proposer(fake).propose(ctx())
    assert p.region == REGION and p.error is None


def test_max_reply_tokens_sets_the_request_limit(fake: FakeOpenAI) -> None:
    fake.script(good(GOOD), good(GOOD))
    proposer(fake, max_reply_tokens=3000).propose(ctx())
    proposer(fake).propose(ctx())
    assert fake.requests[0]["json"]["max_tokens"] == 3000
    assert "max_tokens" not in fake.requests[1]["json"]
    with pytest.raises(ValueError, match="max_reply_tokens"):
        proposer(fake, max_reply_tokens=0)
    made = make_proposer("llm", seed=0, env={"OPENAI_BASE_URL": fake.base_url}, max_reply_tokens=77)
    assert made.max_reply_tokens == 77


def test_a_server_counting_far_fewer_prompt_tokens_warns_once_with_the_fix(fake: FakeOpenAI) -> None:
    llm = proposer(fake)
    sent = prompt_chars(build_messages(ctx(), llm.program, llm.template)) // 4
    assert sent >= 1000
    fake.script(good(GOOD, usage=(sent // 4, 50)), good(GOOD, usage=(sent // 4, 50)))
    first, second = llm.propose(ctx()), llm.propose(ctx())
    assert len(first.warnings) == 1 and "num_ctx" in first.warnings[0] and str(sent // 4) in first.warnings[0]
    assert second.warnings == []
    fake.script(good(GOOD, usage=(sent, 50)))
    assert proposer(fake).propose(ctx()).warnings == []


def test_truncation_warning_rule() -> None:
    llm = LLMProposer(base_url="http://127.0.0.1:9/v1", env={})
    assert llm.truncation_warning(40_000, 9_000) is None  # about 10,000 tokens sent, 9,000 counted: fine
    assert llm.truncation_warning(40_000, 0) is None  # no usage reported
    assert llm.truncation_warning(1_000, 10) is None  # too small to judge
    warning = llm.truncation_warning(40_000, 2_048)
    assert warning and "num_ctx" in warning and "10000" in warning
    assert llm.truncation_warning(40_000, 2_048) is None  # once


def test_whole_reply_is_kept_and_retries_are_counted(fake: FakeOpenAI) -> None:
    long_reply = "<think>" + "step " * 20_000 + "</think>\n" + GOOD
    fake.script(error(502), good(long_reply))
    p = proposer(fake).propose(ctx())
    assert p.region == REGION and p.reply == long_reply and p.retries == 1
    assert len(p.to_json()["raw"]) == 4000 and "reply" not in p.to_json()


def test_timeout_default_is_one_constant() -> None:
    import inspect

    assert DEFAULT_TIMEOUT_S == 120.0
    assert inspect.signature(make_proposer).parameters["timeout_s"].default == DEFAULT_TIMEOUT_S
    assert inspect.signature(LLMProposer).parameters["timeout_s"].default == DEFAULT_TIMEOUT_S
    assert ProposalContext(1, 0, "", "sharpe", [], "", None).cost_bps == DEFAULT_COST_BPS


def test_llm_without_any_endpoint_is_refused_with_what_to_set(tmp_path: Path) -> None:
    problem = missing_endpoint("llm", {})
    assert problem and "OPENAI_BASE_URL" in problem and "OPENAI_API_KEY" in problem and "--proposer offline" in problem
    assert missing_endpoint("llm", {"OPENAI_BASE_URL": "http://localhost:11434/v1"}) is None
    assert missing_endpoint("llm", {"OPENAI_API_KEY": "k"}) is None
    assert missing_endpoint("llm", {"OPENAI_API_KEY": ""}) is not None
    assert missing_endpoint("offline", {}) is None and missing_endpoint("auto", {}) is None
    (tmp_path / ".env").write_text("OPENAI_BASE_URL=http://127.0.0.1:9/v1\n")
    assert missing_endpoint("llm") is None  # .env in the current directory counts


def test_probe_lists_models(fake: FakeOpenAI) -> None:
    fake.models = ["fake-model"]
    assert probe_endpoint(proposer(fake)) is None
    assert fake.gets[0]["path"] == "/v1/models" and fake.requests == []
    assert probe_endpoint(OfflineProposer(seed=0)) is None


def test_probe_accepts_a_tagged_name_and_asks_once_for_an_unlisted_model(fake: FakeOpenAI) -> None:
    fake.models = ["llama3:latest", "qwen2.5-coder:14b"]
    assert probe_endpoint(proposer(fake, model="llama3")) is None and fake.requests == []
    fake.script(error(404, "model 'lama3' not found"))
    problem = probe_endpoint(proposer(fake, model="lama3"))
    assert problem and "'lama3'" in problem and "not found" in problem and len(fake.requests) == 1


def test_probe_names_the_model_asked_for_and_the_models_served(fake: FakeOpenAI) -> None:
    """A server that answers but lacks the model is not "not running": say which model is missing and what it has."""
    fake.models = ["llama3:latest", "qwen2.5-coder:14b"]
    fake.script(slow(5.0, "OK"))  # e.g. a server that hangs on a model it does not have
    problem = probe_endpoint(proposer(fake, model="qwen2.5-coder:32b"), timeout_s=0.5)
    assert problem and "does not serve model 'qwen2.5-coder:32b'" in problem
    assert "it serves: llama3:latest, qwen2.5-coder:14b" in problem and "OPENAI_MODEL" in problem
    assert "server is running" not in problem


def test_probe_falls_back_to_a_one_token_request(fake: FakeOpenAI) -> None:
    fake.script(good("OK"))
    assert probe_endpoint(proposer(fake)) is None
    assert len(fake.gets) == 1 and fake.requests[0]["json"]["max_tokens"] == 1


@pytest.mark.parametrize("status, hint", [(401, "OPENAI_API_KEY"), (403, "OPENAI_API_KEY")])
def test_probe_reports_a_refused_key(fake: FakeOpenAI, status: int, hint: str) -> None:
    fake.models, fake.models_status = [], status
    problem = probe_endpoint(proposer(fake))
    assert problem and hint in problem and f"HTTP {status}" in problem and fake.base_url in problem


def test_probe_reports_a_missing_model_or_path(fake: FakeOpenAI) -> None:
    fake.script(error(404, "model 'nope' not found"))
    problem = probe_endpoint(proposer(fake, model="nope"))
    assert problem and "'nope'" in problem and "OPENAI_BASE_URL" in problem and "not found" in problem


def test_probe_reports_an_endpoint_that_does_not_answer() -> None:
    llm = LLMProposer(base_url=closed_port_url(), env={}, timeout_s=TIMEOUT_S)
    problem = probe_endpoint(llm, timeout_s=1.0)
    assert problem and "did not answer" in problem and "OPENAI_BASE_URL" in problem


def test_probe_waits_only_its_own_short_timeout(fake: FakeOpenAI) -> None:
    fake.script(slow(5.0, "OK"))
    started = time.monotonic()
    problem = probe_endpoint(proposer(fake, timeout_s=60.0), timeout_s=0.5)
    assert problem and "timed out" in problem
    assert time.monotonic() - started < 4.0


def figures(iteration: int, folds: int = 3, status: str = "") -> CandidateFigures:
    windows = [WindowFigures("train", 0.81, 0.42, -0.18, 0.63, 14, 2.1, 0.74, 0.55, -0.34)]
    windows += [WindowFigures(f"fold {k}", 0.5 + k / 10, 0.1, -0.1, 0.6, 3, 2.0, 0.6, 0.12, -0.2)
                for k in range(1, folds + 1)]
    windows.append(WindowFigures("validation", 1.132, 0.21, -0.087, 0.71, 6, 1.8, 1.035, 0.24, -0.12))
    return CandidateFigures(iteration, tuple(windows), status=status)


def test_prompt_carries_figures_beside_buy_and_hold_the_parent_reason_and_guards() -> None:
    program, template = load_prompts()
    c = replace(ctx(), parent_figures=figures(1), latest_figures=figures(3, status="rejected at guards: 2 trades"),
                parent_reason="reverting to iter 1: iter 3 did not enter the population", unchanged_positions=True,
                guards=(GuardThreshold("min validation round trips", 3, "trades"),
                        GuardThreshold("max exposure", 99, "% of days")))
    user = build_messages(c, program, template)[1]["content"]
    assert "**Parent (iteration 1)**" in user
    assert "**Latest candidate (iteration 3): rejected at guards: 2 trades**" in user
    assert ("| window | bars | years | Sharpe | return | max DD | exposure | trips | turnover/yr | B&H Sharpe | "
            "B&H return |") in user
    assert "| validation | - | - | 1.132 | 21.0% | -8.7% | 71.0% | 6 | 1.8 | 1.035 | 24.0% | -12.0% |" in user
    assert "| fold 2 |" in user
    assert "Why this parent: reverting to iter 1: iter 3 did not enter the population" in user
    assert "did not alter a single position on validation" in user
    assert "min validation round trips 3 trades; max exposure 99 % of days" in user
    assert "{{" not in user


def test_universe_figures_name_instruments_by_number_only() -> None:
    program, template = load_prompts()
    u = UniverseFigures("sharpe", 0.91, 5, best=(2, 1.4), median=0.8, worst=(5, -0.2))
    c = replace(ctx(), parent_figures=CandidateFigures(1, figures(1).windows, universe=u))
    user = build_messages(c, program, template)[1]["content"]
    assert ("portfolio of 5 instruments: sharpe 0.910; best instrument 2 1.400; median 0.800; worst instrument 5 -0.200"
            in user)
    assert "| window | bars | years | Sharpe | return | max DD | exposure | trips (sum of 5 instruments) |" in user
    assert "its B&H columns the equal-weight buy and hold's" in user  # not a single instrument's
    each = replace(u, each=((0.5, 0.7), (1.4, 1.1)))
    user = build_messages(replace(ctx(), parent_figures=CandidateFigures(1, figures(1).windows, universe=each)),
                          program, template)[1]["content"]
    assert "each instrument on validation, sharpe (its buy and hold's): 1 0.500 (0.700); 2 1.400 (1.100)" in user


def test_empty_figures_render_nothing_and_missing_cells_a_dash() -> None:
    program, template = load_prompts()
    plain = build_messages(ctx(), program, template)[1]["content"]
    assert "Figures on train" not in plain and "\n\n\n###" not in plain and "{{" not in plain
    assert "    return df\n\n\ndef strategy_logic" in plain  # the region's own blank lines are left alone
    sparse = replace(ctx(), parent_figures=CandidateFigures(1, (WindowFigures("validation", sharpe=0.5),)))
    user = build_messages(sparse, program, template)[1]["content"]
    assert "| validation | - | - | 0.500 | - | - | - | - | - | - | - | - |" in user


def test_figures_stay_bounded_however_many_folds() -> None:
    program, template = load_prompts()
    many = replace(ctx(), parent_figures=figures(1, folds=40, status="s" * 5000),
                   latest_figures=figures(2, folds=40), parent_reason="r " * 5000,
                   guards=tuple(GuardThreshold(f"guard {i}", i) for i in range(500)))
    small = prompt_chars(build_messages(ctx(), program, template))
    big = build_messages(many, program, template)
    user = big[1]["content"]
    assert "more windows not shown" in user and "| validation |" in user and "| fold 40 |" not in user
    assert prompt_chars(big) - small <= 2 * (FIGURES_LIMIT + 100) + REASON_LIMIT + GUARDS_LIMIT + 400
    assert prompt_chars(big) <= len(program) + len(template) + variable_bound()


def test_the_program_names_only_the_columns_the_data_has() -> None:
    program, template = load_prompts()
    full = "\n".join(m["content"] for m in build_messages(ctx(), program, template))
    assert "`Open`, `High`, `Low`, `Close`, `Volume` (a `DatetimeIndex`" in full  # an older manifest: all five
    closes = "\n".join(m["content"] for m in build_messages(replace(ctx(), columns=("Close",)), program, template))
    assert "`Close` only (this data has no Open, High, Low, Volume: a candidate reading one fails)" in closes
    assert "`Open`" not in closes.split("generate_features(df)")[1].split("strategy_logic(row)")[0]
    from alphaloop.tasks.forecast.prompting import FORECAST_PROGRAM_PATH

    forecast = FORECAST_PROGRAM_PATH.read_text(encoding="utf-8")
    assert "{{columns}}" in forecast and "{{columns}}" in program
