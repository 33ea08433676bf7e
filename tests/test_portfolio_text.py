"""What a person and the model read of a portfolio: every figure beside the equal-weight buy and hold and
cash, instruments by number only, and a report section with the weights, exposures and contributions."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from alphaloop.tasks.portfolio.contract import Calendar, validate_weights
from alphaloop.tasks.portfolio.driver import run_frame
from alphaloop.tasks.portfolio.evidence import portfolio_evidence, weights_key
from alphaloop.tasks.portfolio.report import portfolio_html
from alphaloop.tasks.portfolio.rows import tsv_header, tsv_row
from alphaloop.tasks.portfolio.scoring import score_portfolio
from alphaloop.tasks.portfolio.text import contributions_line, split_line
from tests.portfolio_support import MOMENTUM, namespace, split_frames, universe_frames


def _scores(splits: tuple[str, ...] = ("train", "val")):
    histories = split_frames(universe_frames(n=4, days=700, seed=9), splits)
    frames = tuple(h.frame for h in histories)
    w = validate_weights(run_frame(namespace(MOMENTUM), frames)["weights"], Calendar.of(frames))
    return score_portfolio(histories, w, splits=splits)


def _record(scores, iteration: int = 3, accepted: bool = True) -> SimpleNamespace:
    data = scores.to_json()
    return SimpleNamespace(iteration=iteration, accepted=accepted, stage="ok" if accepted else "guards",
                           reason="", scores=data, parent=1, status="accepted" if accepted else "rejected",
                           in_population=accepted, disguised=False, novelty_kind="new", novelty={},
                           positions_sha256=weights_key(scores.weights["val"]),
                           split=lambda name: data["splits"].get(name))


def test_a_split_line_sets_every_figure_beside_both_benchmarks() -> None:
    line = split_line("val", _scores().splits["val"])
    for words in ("validation split", "equal-weight buy and hold", "cash 0", "gross", "net", "turnover",
                  "long", "short", "beta", "correlation", "information ratio"):
        assert words in line


def test_contributions_are_listed_by_number_and_bounded() -> None:
    assert contributions_line([0.01, -0.02]) == ("contributions to the validation return by instrument: "
                                                 "1 +1.0%, 2 -2.0%")
    long = contributions_line(list(np.linspace(-0.1, 0.1, 30)))
    assert "30 +10.0%" in long and "1 -10.0%" in long and "15 " not in long


def test_the_prompt_evidence_shows_parent_and_latest_tables_and_the_contract_values() -> None:
    s = _scores()
    parent, latest = _record(s, 1), _record(s, 2, accepted=False)
    ev = portfolio_evidence(3, 1, latest, parent, None, last=2,
                            prepared={"instruments": 4, "columns": "`Close`"})
    figures = ev["extra"]["portfolio_figures"]
    assert "**Parent**" in figures and "Latest candidate (iteration 2, rejected at guards" in figures
    assert "EW B&H sharpe" in figures and "cash: 0" in figures and "contributions" in figures
    assert ev["extra"]["instruments"] == "4" and ev["extra"]["columns"] == "`Close`"
    assert "reverting to iter 1" in ev["parent_reason"]
    # rejected before it was scored (a timeout, a bad weight): the heading stays, as the trade prompt's does
    unscored = SimpleNamespace(**{**vars(latest), "scores": None, "stage": "sandbox",
                                  "reason": "timeout: the full run took too long", "positions_sha256": ""})
    figures = portfolio_evidence(3, 1, unscored, parent, None, last=2)["extra"]["portfolio_figures"]
    assert "**Latest candidate (iteration 2, rejected at sandbox: timeout: the full run took too long)**" in figures


def test_results_tsv_puts_the_benchmark_beside_validation() -> None:
    s = _scores()
    row = tsv_row(_record(s), "sharpe", "momentum").rstrip("\n").split("\t")
    head = tsv_header("sharpe").rstrip("\n").split("\t")
    assert len(row) == len(head) and head[4:6] == ["val_sharpe", "val_bh_sharpe"]
    assert abs(float(row[5]) - s.splits["val"]["bh_sharpe"]) < 1e-6
    assert tsv_row(_record(s), "information_ratio", "x").split("\t")[5] == "0.000000"


def test_the_report_section_draws_weights_exposure_and_contributions_after_final() -> None:
    s = _scores(("train", "val", "test"))
    reading = {"status": "scored", "test": s.splits["test"],
               "portfolio": {"val": s.splits["val"], "dates": [str(d.date()) for d in s.dates["test"]],
                             "weights": s.weights["test"].tolist(), "contributions": s.contributions["test"]}}
    html = portfolio_html(reading, ["A", "B", "C", "D"], MOMENTUM)
    assert html.count("<img") == 3 and "EW B&amp;H sharpe" in html and "cash sharpe" in html
    assert "def allocate" in html or "allocate" in html
    assert "no test reading yet" in portfolio_html(None, [], MOMENTUM)


def test_the_figures_docs_quote_are_the_codes() -> None:
    from pathlib import Path

    from alphaloop.tasks.portfolio.contract import DEFAULT_MAX_GROSS
    from alphaloop.tasks.portfolio.guards import PortfolioLimits
    from alphaloop.tasks.portfolio.render import BOOKS, FRACTIONS, HOLDS, LADDER, VOL_TARGETS
    from alphaloop.tasks.portfolio.stats import MARKET_NEUTRAL_NET

    doc = (Path(__file__).resolve().parent.parent / "docs" / "portfolio.md").read_text()
    assert ", ".join(map(str, LADDER)) + " bars" in doc
    assert BOOKS["long_short"] == (0.75, 0.25) and "long-short (75/25)" in doc
    assert BOOKS["market_neutral"] == (0.5, 0.5) and "market-neutral (50/50)" in doc
    assert f"turnover above {PortfolioLimits().max_turnover_per_year:g}x" in doc
    assert f"|mean net exposure| < {MARKET_NEUTRAL_NET:g}" in doc
    assert f"({min(FRACTIONS):.0%}-{max(FRACTIONS):.0%} of the instruments" in doc.replace("10-50%", "10%-50%")
    assert f"(1-{max(HOLDS)} bars)" in doc and f"({min(v for v in VOL_TARGETS if v):.0%}-{max(VOL_TARGETS):.0%})" \
        in doc.replace("10-20%", "10%-20%")
    assert f"`--max-gross` (default {DEFAULT_MAX_GROSS:g})" in doc


def test_the_prompts_carry_the_contract_the_cap_and_both_benchmarks() -> None:
    from alphaloop.propose.base import ProposalContext
    from alphaloop.propose.prompting import build_messages
    from alphaloop.tasks import get_task

    task = get_task("portfolio")
    paths = task.prompts()
    s = _scores()
    ev = portfolio_evidence(3, 1, _record(s, 2), _record(s, 1), None, last=2,
                            prepared=task.prepare(split_frames(universe_frames(n=4, days=300, seed=1))))
    ctx = ProposalContext(iteration=3, parent_iteration=1, parent_region=MOMENTUM, metric="sharpe", population=[],
                          learnings="", last_outcome=None, max_gross=0.5, **ev)
    system, user = (m["content"] for m in build_messages(ctx, paths["program_path"].read_text(),
                                                          paths["template_path"].read_text()))
    assert "allocate(day)" in system and "at most 0.5" in system and "1..4" in system and "{{" not in system
    assert "equal-weight buy and hold" in user and "EW B&H sharpe" in user and "{{" not in user
    assert "contributions to the validation return by instrument" in user


def test_the_prompts_figures_heading_holds_the_figures_in_bars_and_years_never_dates() -> None:
    """Under "Figures" stand the parent's and the latest candidate's tables beside the equal-weight buy and hold
    and cash, each window's length in bars and years; no calendar date reaches the model (its memory of what
    markets did in those years would be look-ahead)."""
    import re

    from alphaloop.propose.base import ProposalContext
    from alphaloop.propose.prompting import build_messages
    from alphaloop.tasks import get_task

    task = get_task("portfolio")
    paths = task.prompts()
    s = _scores()
    assert all(f.get("start") for f in s.folds)  # the record keeps fold dates: the prompt must drop them
    ev = portfolio_evidence(3, 1, _record(s, 2), _record(s, 1), _record(s, 1), last=2,
                            prepared=task.prepare(split_frames(universe_frames(n=4, days=300, seed=1))))
    ctx = ProposalContext(iteration=3, parent_iteration=1, parent_region=MOMENTUM, metric="sharpe", population=[],
                          learnings="", last_outcome=None, **ev)
    user = build_messages(ctx, paths["program_path"].read_text(), paths["template_path"].read_text())[1]["content"]
    section = user.split("### Figures on train, folds and validation")[1].split("\n### ")[0]
    assert "**Parent**" in section and "**Latest candidate (iteration 2, accepted)**" in section
    assert "Why this parent" in section and "Guards" in section and "did not alter a single weight" in section
    assert "| window | bars | years | sharpe |" in section and "| train fold 4 |" in section
    bars = int(s.splits["val"]["bars"])
    assert f"| validation | {bars} | {bars / 252:.1f} |" in section
    assert user.count("### Figures") == 1 and "Portfolio figures" not in user
    assert not re.search(r"\b(19|20)\d\d-\d\d", user)


def test_the_rules_the_model_reads_are_the_gates() -> None:
    """Own names with one underscore and constant expressions are accepted by the gate and kept by the reply's
    reduction, as the program says; dunder attributes are refused, as it says too."""
    from alphaloop.propose.parsing import parse_reply
    from alphaloop.tasks import get_task
    from alphaloop.tasks.portfolio.contract import FUNCTIONS
    from sandbox.gate import check

    program = get_task("portfolio").prompts()["program_path"].read_text()
    assert "Your own names may start with one underscore" in program and "SCALE = 1.0 / 3" in program
    assert "literal constants" not in program and "Names starting with an underscore" not in program
    for rule in ("**Dunder names and private attributes**", "**Calling methods by name.**",
                 "The sandbox blocks them and the gate rejects the code before it runs."):
        assert rule in program
    reply = ("```python\n_WINDOW = 60 * 2\nSCALE = 1.0 / 3\n\n\ndef _score(close):\n"
             "    return close.pct_change(_WINDOW)\n\n\ndef generate_features(df):\n"
             "    df[\"mom\"] = _score(df[\"Close\"])\n    return df\n\n\ndef allocate(day):\n"
             "    return (day[\"mom\"].rank() * SCALE / len(day)).to_dict()\n```\n")
    region = parse_reply(reply).region
    assert region is not None and "SCALE = 1.0 / 3" in region and "_WINDOW = 60 * 2" in region
    assert check(region, FUNCTIONS).ok, check(region, FUNCTIONS).reason
    assert not check(region.replace("day[\"mom\"].rank()", "day.__class__"), FUNCTIONS).ok


def test_building_on_a_member_that_entered_but_regressed_says_so() -> None:
    """A population with room takes a worse rule too: the prompt must not call it a success to build on."""
    s = _scores()
    grand, latest = _record(s, 1), _record(s, 2)
    worse = {**latest.scores, "splits": {**latest.scores["splits"], "val": dict(latest.scores["splits"]["val"])}}
    worse["splits"]["val"]["sharpe"] = grand.scores["splits"]["val"]["sharpe"] - 0.39
    latest.scores, latest.split, latest.metric = worse, (lambda name: worse["splits"].get(name)), "sharpe"
    grand.metric = "sharpe"
    told = portfolio_evidence(3, 2, latest, latest, grand, last=2)["parent_reason"]
    assert "building on iter 2" in told and "worse than its parent iter 1 (-0.390 val sharpe)" in told
    assert "builds on each success" not in told


def test_the_expect_lines_the_template_suggests_are_read_as_those_metrics() -> None:
    """`information_ratio` and `net_exposure` hold the filler words "ratio" and "net": they must not be read as
    "information" (ungraded) or "exposure" (the gross exposure)."""
    from alphaloop.propose.parsing import parse_expect

    for line, metric in (("information_ratio up 0.2", "information_ratio"), ("net_exposure down 0.1", "net_exposure"),
                         ("gross exposure down", "gross_exposure"), ("information ratio up", "information_ratio"),
                         ("IR up 0.1", "information_ratio"), ("net sharpe up 0.1", "sharpe"),
                         ("Sharpe ratio up", "sharpe"), ("turnover down 5", "turnover")):
        expectation = parse_expect(line)
        assert expectation is not None and expectation.metric == metric, line


def test_the_equal_weight_guard_reads_as_the_rule_it_checks() -> None:
    """A real prompt read 'equal weight on every date (= the benchmark) 1 rejected': a flag printed as a number."""
    from alphaloop.propose.prompting import format_guards
    from alphaloop.tasks.portfolio.evidence import guards_thresholds
    from alphaloop.tasks.portfolio.guards import EQUAL_WEIGHT_TOLERANCE

    text = format_guards(guards_thresholds())
    assert f"on every validation date, each weight within {EQUAL_WEIGHT_TOLERANCE:g} of 1/N;" in text
    assert " 1 rejected" not in text
