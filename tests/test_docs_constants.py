"""Every constant a reference page quotes is the one the code uses: each figure below is read from its constant
and must appear, in the page's own words, where the page states it. A change of a constant that leaves a page
behind fails here, naming the page and the phrase. Measured figures (timings, prompt sizes) are not constants:
the pages name the bench command that produces them (docs/bench.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alphaloop.data.csvread import MAX_FILE_BYTES, MAX_LINE_CHARS
from alphaloop.data.frequency import MIN_CONSISTENT
from alphaloop.evaluate.columns import SPA_CAP
from alphaloop.evaluate.invariance import PATTERN_LAGS, PATTERN_MIN, PATTERN_SHARE
from alphaloop.evaluate.pipeline import DEFAULT_EVAL_TIMEOUT_S
from alphaloop.evaluate.scoring import DEFAULT_STRESS_PATHS
from alphaloop.present.report.analysis import ROLLING_BARS as ROLLING_SHARPE_BARS
from alphaloop.present.report.sample import TABLE_ROWS
from alphaloop.propose.base import LLM, RAW_HEAD, REPLY_LIMIT
from alphaloop.run.diversity import BH_DISGUISE_CORRELATION, BH_DISGUISE_EXPOSURE, NEAR_COPY_CORRELATION
from alphaloop.run.learnings import BUDGET_TOKENS, LESSONS_CHARS
from alphaloop.run.packs import PACK_EVERY
from alphaloop.run.workdir import CHECKPOINT_EVERY
from alphaloop.tasks.forecast.scores import (
    CALL_MARGIN,
    CORRECT_MAX_PROB,
    MISS_MIN_PROB,
    ROLLING_BARS,
    SPREAD_BARS,
    WRONG_CONFIDENT_PROB,
    WRONG_MAX_PROB,
)
from alphaloop.tasks.portfolio.stress import STRESS_TIMEOUT_S
from sandbox.gate_tables import (
    MAX_LITERAL_CHARS,
    MAX_LITERAL_ELEMENTS,
    MAX_LITERAL_INT_BITS,
    MAX_LITERAL_STRING,
    MAX_LITERAL_TOTAL,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"

QUOTED = [  # (page, the phrase as the page words it, with the constant's value in it)
    ("loop.md", f"above {NEAR_COPY_CORRELATION:g} with a member is a near copy"),
    ("loop.md", f"(correlation with buy and hold above {BH_DISGUISE_CORRELATION:g} at over {BH_DISGUISE_EXPOSURE:.0%}"),
    ("trust.md", f"{NEAR_COPY_CORRELATION:g} with a member is a near copy"),
    ("trust.md", f"correlating above {BH_DISGUISE_CORRELATION:g} with buy and hold at over {BH_DISGUISE_EXPOSURE:.0%}"),
    ("loop.md", f"state.json is a checkpoint every {CHECKPOINT_EVERY} records"),
    ("workdir.md", f"every {CHECKPOINT_EVERY} records (`workdir.CHECKPOINT_EVERY`)"),
    ("llm.md", f"(up to {REPLY_LIMIT:,} characters) for an audit copy; the record holds its first {RAW_HEAD:,}"),
    ("workdir.md", f"up to {REPLY_LIMIT:,} characters"),
    ("workdir.md", f"keeps the first {RAW_HEAD:,} characters"),
    ("flags.md", f"capped at {LLM.backoff_max_s:g} s"),
    ("trust.md", f"no literal collection over {MAX_LITERAL_ELEMENTS} elements"),
    ("trust.md", f"no more than {MAX_LITERAL_TOTAL} constants in collections overall"),
    ("trust.md", f"no string over {MAX_LITERAL_STRING} characters"),
    ("trust.md", f"no integer beyond {MAX_LITERAL_INT_BITS} bits"),
    ("trust.md", f"at most {MAX_LITERAL_CHARS} characters of literal data over the whole region"),
    ("trust.md", f"at least {PATTERN_SHARE:.0%} of the changed bars ({PATTERN_MIN} or more)"),
    ("trust.md", f"for some L of 1-{PATTERN_LAGS}"),
    ("trust.md", f"`--eval-timeout S` (default {DEFAULT_EVAL_TIMEOUT_S:g} s"),
    ("flags.md", f"is its budget, default {DEFAULT_EVAL_TIMEOUT_S:g} s"),
    ("portfolio.md", f"(default {DEFAULT_EVAL_TIMEOUT_S:g} s for all of"),
    ("trust.md", f"of {DEFAULT_STRESS_PATHS} paths per scenario"),
    ("portfolio.md", f"(at most {STRESS_TIMEOUT_S:g} s)"),
    ("workdir.md", f"one zip per {PACK_EVERY} iterations (`run.packs.PACK_EVERY`)"),
    ("flags.md", f"older blocks of {PACK_EVERY} are packed"),
    ("workdir.md", f"compacted past ~{BUDGET_TOKENS:,} tokens"),
    ("workdir.md", f"at most {LESSONS_CHARS:,} characters"),
    ("report.md", f"rolling Sharpe over {ROLLING_SHARPE_BARS} bars"),
    ("report.md", f"Up to {TABLE_ROWS} iterations"),
    ("forecast.md", f"differ by more than {CALL_MARGIN:g}"),
    ("forecast.md", f"at least {SPREAD_BARS} bars apart"),
    ("forecast.md", f"over the last {ROLLING_BARS} outcomes"),
    ("forecast.md", f"its probability was <= {CORRECT_MAX_PROB:g}"),
    ("forecast.md", f"had probability >= {MISS_MIN_PROB:g}"),
    ("forecast.md", f"had probability < {WRONG_MAX_PROB:g} while one bucket had >= {WRONG_CONFIDENT_PROB:g}"),
    ("forecast.md", f"at most {SPA_CAP:,} of them (`evaluate/columns.SPA_CAP`), those with the lowest mean loss"),
    ("bench.md", f"at most the {SPA_CAP:,} with the highest mean return (`evaluate/columns.SPA_CAP`"),
    ("data.md", f"over {MAX_FILE_BYTES // 2**20} MB"),
    ("data.md", f"a line over {MAX_LINE_CHARS:,} characters"),
    ("data.md", f"at least {MIN_CONSISTENT:.0%} of gaps must fit"),
]


def _flat(page: str) -> str:
    """The page's text with its line breaks folded, so a phrase may wrap where the page wraps it."""
    return " ".join((DOCS / page).read_text(encoding="utf-8").split())


@pytest.mark.parametrize(("page", "phrase"), QUOTED, ids=[f"{p}:{q[:40]}" for p, q in QUOTED])
def test_a_figure_quoted_in_the_docs_is_the_codes(page: str, phrase: str) -> None:
    assert " ".join(phrase.split()) in _flat(page), f"docs/{page} should say: {phrase}"
