"""A proposer backed by any OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM, LM Studio, llama.cpp).

Only the plain ``chat.completions.create(model, messages, temperature)`` call is used, so local
servers work. The client's own retries are off: this module retries 429, 5xx, timeouts and
dropped connections itself, with exponential backoff and seeded jitter, so every retry is logged
and tests can replace the sleep. Errors a retry cannot fix (401, 403, 404, 400) raise
EndpointDown at once with a hint; so does an endpoint still failing after the last retry.
``probe()`` asks the endpoint once, quickly, before a run, so a wrong URL or key fails in seconds.
"""

from __future__ import annotations

import ast
import logging
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
from openai import OpenAI

from alphaloop.present.text import clip_end, clip_middle
from alphaloop.propose.base import LLM, EndpointDown, Proposal, ProposalContext
from alphaloop.propose.parsing import parse_reply
from alphaloop.propose.prompting import (
    COMPACT_PATH,
    PROGRAM_PATH,
    TEMPLATE_PATH,
    build_messages,
    load_prompts,
    prompt_chars,
    render,
    withhold_dates,
)

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_TEMPERATURE = 0.7
COMPACT_TEMPERATURE = 0.2
COMPACT_INPUT_LIMIT = 48_000  # characters of learnings sent to be compacted
COMPACT_ASK = 0.8  # ask for this share of the budget, as models overshoot length requests
RETRY_STATUSES = {408, 409, 429}
PROBE_TIMEOUT_S = 10.0  # seconds the pre-run check waits; a healthy endpoint lists its models in well under this
CUT_OFF = "the reply was cut off at the model's output limit; write a shorter region"
CHARS_PER_TOKEN = 4  # rough size of a token in English and code, to estimate what a request sent
TRUNCATED_SHARE = 0.5  # a server counting under half the estimated prompt tokens has cut the prompt
TRUNCATION_MIN_TOKENS = 500  # below this the estimate is too rough to judge

HINTS = {
    401: "check OPENAI_API_KEY",
    403: "the key is not allowed to use this model or endpoint; check OPENAI_API_KEY and OPENAI_MODEL",
    404: "check OPENAI_BASE_URL (OpenAI-compatible servers usually end in /v1) and that OPENAI_MODEL exists there",
}

COMPACT_SYSTEM = (
    "You maintain the lab notebook of an automated search for daily trading strategies. "
    "You compress notes without inventing anything."
)
class BadReply(Exception):
    """The endpoint answered, but with nothing usable (no choices, not JSON); one iteration is lost."""


@dataclass
class Reply:
    text: str
    tokens: dict[str, int]
    model: str
    finish_reason: str | None
    retries: int = 0


def status_text(exc: Exception) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "request timed out"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        return f"connection failed ({type(cause).__name__}: {cause})" if cause else "connection failed"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {server_message(exc)}"
    return f"{type(exc).__name__}: {exc}"


def server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        body = inner.get("message", inner) if isinstance(inner, dict) else inner
    return clip_end(str(body or exc.message), 300)


def retryable(exc: Exception) -> bool:
    if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code >= 500 or exc.status_code in RETRY_STATUSES)


def retry_after(exc: Exception) -> float | None:
    """The server's Retry-After in seconds, when it sent a plain number."""
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def count(usage: Any, name: str) -> int:
    value = getattr(usage, name, None) if usage is not None else None
    return int(value) if isinstance(value, (int, float)) else 0


class LLMProposer:
    """Proposes regions by asking a chat model; constructor arguments override OPENAI_* variables."""

    name = "llm"

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = LLM.timeout_s,
        max_retries: int = LLM.retries,
        max_reply_tokens: int | None = None,
        seed: int = 0,
        temperature: float = DEFAULT_TEMPERATURE,
        program_path: Path = PROGRAM_PATH,
        template_path: Path = TEMPLATE_PATH,
        compact_path: Path = COMPACT_PATH,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_s: float = LLM.backoff_s,
        backoff_max_s: float = LLM.backoff_max_s,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.model = model or env.get("OPENAI_MODEL") or DEFAULT_MODEL
        self.base_url = (base_url or env.get("OPENAI_BASE_URL") or OPENAI_URL).strip().rstrip("/")
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", self.base_url):
            raise ValueError(f"OPENAI_BASE_URL {self.base_url!r} is not an http(s) URL "
                             f"(for example http://localhost:11434/v1 or {OPENAI_URL})")
        self.max_retries = max(0, int(max_retries))
        if max_reply_tokens is not None and max_reply_tokens < 1:
            raise ValueError(f"max_reply_tokens must be at least 1, got {max_reply_tokens}")
        self.max_reply_tokens = max_reply_tokens
        self.warned_truncation = False
        self.api_key = api_key or env.get("OPENAI_API_KEY") or "not-needed"
        self.temperature = temperature
        self.send_temperature = True
        self.program, self.template = load_prompts(program_path, template_path)
        self.compact_template = compact_path.read_text(encoding="utf-8")
        self.sleep = sleep
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.on_retry = on_retry
        self.rng = random.Random(f"llm-backoff:{seed}")
        self.client = OpenAI(
            base_url=self.base_url,
            api_key=self.api_key,
            timeout=timeout_s,
            max_retries=0,
        )

    def backoff(self, attempt: int, exc: Exception) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): doubling, jittered, capped."""
        hinted = retry_after(exc)
        if hinted is not None:
            return min(hinted, self.backoff_max_s)
        return min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1) * (0.5 + self.rng.random()))

    def refused(self, exc: openai.APIStatusError) -> EndpointDown:
        hint = HINTS.get(exc.status_code, "the server rejected the request")
        return EndpointDown(
            f"endpoint {self.base_url} refused the request for model '{self.model}' "
            f"({status_text(exc)}): {hint}"
        )

    def chat(self, messages: list[dict], temperature: float) -> Reply:
        """One completion with retries; raises EndpointDown or BadReply. No calendar date is sent."""
        messages = [{**m, "content": withhold_dates(m["content"])} for m in messages]
        attempts = self.max_retries + 1
        attempt = 0
        while True:
            attempt += 1
            try:
                kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
                if self.send_temperature:
                    kwargs["temperature"] = temperature
                if self.max_reply_tokens is not None:
                    kwargs["max_tokens"] = self.max_reply_tokens
                response = self.client.chat.completions.create(**kwargs)
                reply = self.reply_of(response)
                reply.retries = attempt - 1
                return reply
            except openai.BadRequestError as exc:
                if self.send_temperature and "temperature" in status_text(exc).lower():
                    log.warning("%s rejects the temperature parameter; sending requests without it", self.base_url)
                    self.send_temperature = False
                    attempt -= 1
                    continue
                raise self.refused(exc) from exc
            except openai.APIStatusError as exc:
                if not retryable(exc):
                    raise self.refused(exc) from exc
                error: Exception = exc
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                error = exc
            except openai.APIError as exc:
                raise BadReply(f"the endpoint's reply could not be read: {status_text(exc)}") from exc
            if attempt >= attempts:
                raise EndpointDown(
                    f"endpoint {self.base_url} unreachable after {attempts} attempts: {status_text(error)}"
                ) from error
            delay = self.backoff(attempt, error)
            message = (f"LLM request attempt {attempt}/{attempts} failed ({status_text(error)}); "
                       f"retrying in {delay:.1f} s")
            log.warning(message)
            if self.on_retry is not None:
                self.on_retry(message)
            self.sleep(delay)

    def reply_of(self, response: Any) -> Reply:
        choices = getattr(response, "choices", None)
        if not choices:
            raise BadReply(f"the endpoint's reply had no choices: {clip_end(str(response), 200)}")
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
        usage = getattr(response, "usage", None)
        tokens = {"prompt": count(usage, "prompt_tokens"), "completion": count(usage, "completion_tokens")}
        served = getattr(response, "model", None)
        return Reply(text=content if isinstance(content, str) else "", tokens=tokens,
                     model=served if isinstance(served, str) and served else self.model,
                     finish_reason=getattr(choices[0], "finish_reason", None))

    def propose(self, ctx: ProposalContext) -> Proposal:
        """Ask for a region derived from the parent; EndpointDown propagates, all else is a Proposal."""
        started = time.monotonic()
        messages = build_messages(ctx, self.program, self.template)
        try:
            reply = self.chat(messages, self.temperature)
        except BadReply as exc:
            return Proposal(region=None, error=str(exc), model=self.model, seconds=time.monotonic() - started)
        proposal = parse_reply(reply.text)
        if reply.finish_reason == "length" and not parses(proposal.region):
            proposal.region = None
            proposal.error = CUT_OFF
        proposal.tokens = reply.tokens
        proposal.model = reply.model
        proposal.finish_reason = reply.finish_reason
        proposal.retries = reply.retries
        proposal.seconds = time.monotonic() - started
        warning = self.truncation_warning(prompt_chars(messages), reply.tokens["prompt"])
        if warning:
            proposal.warnings.append(warning)
        return proposal

    def truncation_warning(self, sent_chars: int, counted_tokens: int) -> str | None:
        """Once per proposer: the server counted far fewer prompt tokens than were sent (Ollama's num_ctx)."""
        estimate = sent_chars // CHARS_PER_TOKEN
        if self.warned_truncation or counted_tokens <= 0 or estimate < TRUNCATION_MIN_TOKENS:
            return None
        if counted_tokens >= estimate * TRUNCATED_SHARE:
            return None
        self.warned_truncation = True
        message = (f"the server counted {counted_tokens} prompt tokens for a prompt of about {estimate}: it is "
                   f"probably cutting the prompt to its context window; raise it (Ollama: num_ctx 8192 or more, "
                   f"e.g. OLLAMA_CONTEXT_LENGTH=8192 ollama serve, or PARAMETER num_ctx 8192 in a Modelfile)")
        log.warning(message)
        return message

    def _not_served(self, where: str, listed: set[str], status: str) -> str:
        """The server answers but does not serve the model asked for: name it and the models it serves."""
        names = sorted(listed)
        shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
        return (f"{where} answers, but does not serve model '{self.model}' (a one-token request for it: {status}); "
                f"it serves: {shown}; set OPENAI_MODEL (or --model) to one of them")

    def probe(self, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
        """Check the endpoint answers, before iteration 0: None when it does, else one line saying what to fix.

        GET /models first (cheap, no tokens); a server without that route, or one that does not list the
        model (a typo, or a proxy's alias), gets a one-token chat request, whose error names the model.
        """
        client = self.client.with_options(timeout=timeout_s, max_retries=0)
        where = f"endpoint {self.base_url}"
        listed: set[str] = set()
        try:
            listed = {str(getattr(m, "id", "")) for m in client.models.list()} - {""}
            if self.model in listed or self.model in {name.split(":")[0] for name in listed}:
                return None
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403):
                return f"{where} refused the check ({status_text(exc)}): {HINTS[exc.status_code]}"
            if exc.status_code not in (404, 405, 501):
                return f"{where} did not answer the check ({status_text(exc)})"
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            return (f"{where} did not answer ({status_text(exc)}): check OPENAI_BASE_URL and that the server "
                    f"is running")
        except openai.APIError:
            pass  # a /models body the client cannot read: try a completion instead
        try:
            client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": "Reply OK."}],
                                           max_tokens=1)
        except openai.APIStatusError as exc:
            if exc.status_code == 400:
                return None  # it answered; a parameter it dislikes is handled by chat() itself
            if listed:
                return self._not_served(where, listed, status_text(exc))
            hint = HINTS.get(exc.status_code, "the server rejected the request")
            return f"{where} refused a one-token request for model '{self.model}' ({status_text(exc)}): {hint}"
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            if listed:  # it answered the listing: the server runs, the model is what is missing
                return self._not_served(where, listed, status_text(exc))
            return f"{where} did not answer ({status_text(exc)}): check OPENAI_BASE_URL and that the server is running"
        except openai.APIError as exc:
            return f"{where} answered, but not like an OpenAI-compatible server: {status_text(exc)}"
        return None

    def compact(self, text: str, budget_tokens: int) -> str | None:
        """Ask the model to rewrite the learnings' lessons within the budget; None on any failure or overrun.

        Asked for a share of what fits (COMPACT_ASK), since models overshoot length requests; a reply
        over the budget is refused whole rather than cut, so the prompt always shows the lessons whole."""
        chars = budget_tokens * CHARS_PER_TOKEN
        ask = max(1, int(budget_tokens * COMPACT_ASK))
        request = render(self.compact_template, {"budget": str(ask), "chars": str(ask * CHARS_PER_TOKEN),
                                                 "notes": clip_middle(text, COMPACT_INPUT_LIMIT)})
        messages = [{"role": "system", "content": COMPACT_SYSTEM}, {"role": "user", "content": request}]
        try:
            reply = self.chat(messages, COMPACT_TEMPERATURE)
        except (EndpointDown, BadReply) as exc:
            log.warning("learnings compaction by the LLM failed: %s", exc)
            return None
        summary = unfence(reply.text).strip()
        if not summary or len(summary) > chars:
            log.warning("learnings compaction by the LLM returned %d characters for a budget of %d; ignored",
                        len(summary), chars)
            return None
        return summary


def unfence(text: str) -> str:
    """Drop a reasoning section and a single fence wrapped around the whole reply."""
    text = re.sub(r"<think(?:ing)?>.*?(?:</think(?:ing)?>|\Z)", "", text, flags=re.DOTALL | re.IGNORECASE)
    m = re.fullmatch(r"\s*```[\w-]*\n(.*?)\n?```\s*", text, flags=re.DOTALL)
    return m.group(1) if m else text


def parses(region: str | None) -> bool:
    """Whether a region is whole Python: a reply cut at the output limit usually is not."""
    if not region:
        return False
    try:
        ast.parse(region)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True
