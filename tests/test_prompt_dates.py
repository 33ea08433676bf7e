"""No calendar date reaches the model: reasons name the date a check failed on, and a model that reads
one knows which stretch of market history it is shown (its memory of that history is look-ahead)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fake_openai import FakeOpenAI, good

from alphaloop.candidate import extract_region, template_text
from alphaloop.propose.base import MemberSummary, ProposalContext
from alphaloop.propose.llm import LLMProposer
from alphaloop.propose.prompting import DATE_WITHHELD, withhold_dates

ISO_DATE = re.compile(r"\b(19|20)\d{2}[-/]\d{2}[-/]\d{2}\b")
LEAK = ("iter 1 rejected at lookahead: instrument 1 of 2: look-ahead: column 'next_ret' changes on 1999-01-08 "
        "when the history is truncated after 1999-01-08 (-0.00879151 with the full history, missing (NaN)")
BAD_FORECAST = "bad_output: horizon 1 on 2000-01-31 00:00:00: probabilities (0.3, 0.3, 0.4) sum to 1.004"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def proposer(fake: FakeOpenAI) -> LLMProposer:
    return LLMProposer(base_url=fake.base_url, api_key="k", model="m", timeout_s=2.0, max_retries=0, seed=1,
                       env={}, sleep=lambda s: None)


def test_a_rejection_naming_dates_reaches_the_model_without_them(fake: FakeOpenAI) -> None:
    region = extract_region(template_text())
    fake.script(good(f"```python\n{region}```\n```markdown\nHypothesis: x\nExpect: sharpe up 0.1\n```\n"))
    ctx = ProposalContext(iteration=3, parent_iteration=0, parent_region=region, metric="sharpe",
                          population=[MemberSummary(0, 0.6, 0.1, 9, "baseline")],
                          learnings=f"- Rejection reasons seen: latest iter 2: {BAD_FORECAST}", last_outcome=LEAK)
    assert proposer(fake).propose(ctx).error is None
    sent = "\n".join(m["content"] for m in fake.requests[0]["json"]["messages"])
    assert not ISO_DATE.search(sent), ISO_DATE.search(sent)
    assert f"changes on {DATE_WITHHELD} when the history is truncated after {DATE_WITHHELD}" in sent
    assert f"horizon 1 on {DATE_WITHHELD}: probabilities" in sent  # the rest of the reason stays actionable


def test_the_compaction_request_withholds_dates_too(fake: FakeOpenAI) -> None:
    fake.script(good("- notes"))
    assert proposer(fake).compact(f"- {LEAK}\n" * 3, budget_tokens=200) == "- notes"
    sent = "\n".join(m["content"] for m in fake.requests[0]["json"]["messages"])
    assert "1999-01-08" not in sent and DATE_WITHHELD in sent


def test_only_dates_are_withheld() -> None:
    kept = ["0.0087915", "turnover 11.5x a year", "bar 1,005 down", "version 1.2003-04-17", "1999-13-01", "12003-04-17"]
    for text in kept:
        assert withhold_dates(text) == text
    assert withhold_dates("first 2003/04/17 and 2003-04-17T00:00") == f"first {DATE_WITHHELD} and {DATE_WITHHELD}"
