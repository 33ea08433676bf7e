"""Proposers: where new candidate regions come from (an LLM endpoint, or the offline search).

``--proposer auto`` picks the LLM when OPENAI_BASE_URL or OPENAI_API_KEY is set in the
environment or in ``.env`` in the current directory, and the offline proposer otherwise, and says
which and why, so a run without an endpoint still works and is labelled as such.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from alphaloop.propose.base import (
    DEFAULT_TIMEOUT_S,
    LLM,
    CandidateFigures,
    EndpointDown,
    Expectation,
    GuardThreshold,
    MemberSummary,
    Proposal,
    ProposalContext,
    Proposer,
    UniverseFigures,
    WindowFigures,
)
from alphaloop.propose.prompting import PROGRAM_PATH, TEMPLATE_PATH

KINDS = ("auto", "llm", "offline")
ENDPOINT_VARS = ("OPENAI_BASE_URL", "OPENAI_API_KEY")

__all__ = [
    "DEFAULT_TIMEOUT_S", "KINDS", "LLM", "CandidateFigures", "EndpointDown", "Expectation", "GuardThreshold",
    "MemberSummary", "Proposal", "ProposalContext", "Proposer", "UniverseFigures", "WindowFigures", "load_env",
    "make_proposer", "missing_endpoint", "probe_endpoint", "resolve_kind",
]


def dotenv_file() -> dict[str, str]:
    path = Path.cwd() / ".env"
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` when given; else ``.env`` of the current directory overlaid by the real environment.

    The environment wins, as with python-dotenv's defaults, so ``OPENAI_MODEL=x python harness.py``
    overrides the file.
    """
    if env is not None:
        return dict(env)
    return {**dotenv_file(), **os.environ}


def resolve_kind(requested: str, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The proposer kind to use for ``--proposer requested`` and a sentence saying why."""
    if requested not in KINDS:
        raise ValueError(f"unknown proposer {requested!r}; choose one of {', '.join(KINDS)}")
    if requested != "auto":
        return requested, f"--proposer {requested} requested: using the {requested} proposer"
    values = load_env(env)
    found = [name for name in ENDPOINT_VARS if values.get(name)]
    if not found:
        return "offline", "no OPENAI_BASE_URL or OPENAI_API_KEY set: using the offline proposer"
    where = ""
    if env is None:
        from_file = [name for name in found if not os.environ.get(name)]
        where = " (from .env)" if from_file and len(from_file) == len(found) else ""
    url = values.get("OPENAI_BASE_URL") or "the OpenAI API"
    model = values.get("OPENAI_MODEL") or "the default model"
    return "llm", f"{' and '.join(found)} set{where}: using the LLM proposer ({model} at {url})"


def missing_endpoint(kind: str, env: Mapping[str, str] | None = None) -> str | None:
    """For ``--proposer llm`` with no endpoint configured: the problem and what to set; else None.

    Without this the client would quietly target the public OpenAI URL with a default model and
    retry for half a minute before failing.
    """
    if kind != "llm":
        return None
    values = load_env(env)
    if any(values.get(name) for name in ENDPOINT_VARS):
        return None
    return ("--proposer llm needs an endpoint, but neither OPENAI_BASE_URL nor OPENAI_API_KEY is set: set "
            "OPENAI_BASE_URL (e.g. http://localhost:11434/v1 for Ollama) and OPENAI_MODEL, or OPENAI_API_KEY for "
            "the OpenAI API, in the environment or .env (or pass --base-url / --api-key), "
            "or use --proposer offline")


def probe_endpoint(proposer: Proposer, timeout_s: float | None = None) -> str | None:
    """Check an LLM proposer's endpoint answers before iteration 0: None when it does (or needs no endpoint),
    else one line saying what is wrong and what to check."""
    probe = getattr(proposer, "probe", None)
    if probe is None:
        return None
    return probe() if timeout_s is None else probe(timeout_s)


def make_proposer(
    kind: str,
    *,
    seed: int,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout_s: float = LLM.timeout_s,
    max_retries: int = LLM.retries,
    backoff_s: float = LLM.backoff_s,
    max_reply_tokens: int | None = None,
    program_path: Path = PROGRAM_PATH,
    template_path: Path = TEMPLATE_PATH,
    env: Mapping[str, str] | None = None,
) -> Proposer:
    """Build the proposer for ``kind`` (``auto`` is resolved first); arguments override OPENAI_*."""
    if kind == "auto":
        kind, _ = resolve_kind(kind, env)
    if kind == "offline":  # imported on demand: an offline run never loads the HTTP client, nor an LLM run the search
        from alphaloop.propose.offline import OfflineProposer

        return OfflineProposer(seed=seed)
    if kind == "llm":
        from alphaloop.propose.llm import LLMProposer

        return LLMProposer(model=model, base_url=base_url, api_key=api_key, timeout_s=timeout_s,
                           max_retries=max_retries, backoff_s=backoff_s, max_reply_tokens=max_reply_tokens,
                           seed=seed, program_path=program_path,
                           template_path=template_path, env=load_env(env))
    raise ValueError(f"unknown proposer {kind!r}; choose one of {', '.join(KINDS)}")
