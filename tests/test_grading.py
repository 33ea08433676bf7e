"""The grading rule a user relies on: direction, half the stated size, rejected candidates marked, counts apart."""

from __future__ import annotations

from test_llm_proposer import ctx

from alphaloop.present.report.summary import hit_rate
from alphaloop.propose.base import Expectation
from alphaloop.propose.prompting import build_messages, load_prompts
from alphaloop.run.grading import GRADING_RULE, REJECTED_MARK, Tally, grade, tally

PARENT, CHILD = {"sharpe": 0.5, "round_trips": 10.0}, {"sharpe": 0.6, "round_trips": 4.0}


def test_a_hypothesis_holds_only_when_its_metric_moves_the_stated_way() -> None:
    assert grade(Expectation("sharpe", 1), PARENT, CHILD)[0] is True
    assert grade(Expectation("sharpe", -1), PARENT, CHILD)[0] is False
    assert grade(Expectation("round_trips", -1), PARENT, CHILD)[0] is True
    assert grade(Expectation("sharpe", 1), PARENT, dict(PARENT))[0] is False  # no move is not a hit


def test_a_stated_size_must_be_reached_by_at_least_half() -> None:
    assert grade(Expectation("sharpe", 1, 0.2), PARENT, CHILD)[0] is True  # +0.1 is exactly half of 0.2
    assert grade(Expectation("sharpe", 1, 0.21), PARENT, CHILD)[0] is False  # just under half
    assert grade(Expectation("sharpe", 1, 0.05), PARENT, CHILD)[0] is True  # overshooting still holds
    assert grade(Expectation("round_trips", -1, 20), PARENT, CHILD)[0] is False  # 6 fewer of a promised 20
    held, verdict = grade(Expectation("sharpe", 1, 0.5), PARENT, CHILD)
    assert held is False and "by 0.5" in verdict and "+0.1" in verdict and "->" not in verdict


def test_a_rejected_candidate_is_graded_only_when_scored_and_marked() -> None:
    held, verdict = grade(Expectation("sharpe", 1), PARENT, CHILD, rejected=True)
    assert held is True and verdict.endswith(REJECTED_MARK)
    assert grade(Expectation("sharpe", 1), PARENT, None, rejected=True)[0] is None  # refused before scoring
    assert grade(None, PARENT, CHILD)[0] is None and grade(Expectation("nonsense", 1), PARENT, CHILD)[0] is None


def test_the_hit_rate_counts_graded_and_ungraded_apart() -> None:
    records = [{"iteration": 0, "status": "accepted", "hypothesis_held": None},  # the baseline: no hypothesis
               {"iteration": 1, "status": "accepted", "hypothesis_held": True},
               {"iteration": 2, "status": "accepted", "hypothesis_held": False},
               {"iteration": 3, "status": "rejected", "hypothesis_held": True},  # scored, then refused by a guard
               {"iteration": 4, "status": "rejected", "hypothesis_held": None},  # refused by the gate
               {"iteration": 5, "status": "accepted", "hypothesis_held": None}]  # no Expect: line
    t = tally(records)
    assert (t.held, t.graded, t.ungraded, t.graded_rejected) == (2, 3, 2, 1)
    assert t.text() == "2/3 hypotheses held (67%); 2 ungraded; 1 of the graded on rejected (scored) candidates"
    assert Tally.from_json(t.to_json()) == t
    assert Tally(ungraded=3).text() == "no graded hypotheses yet (3 ungraded)"

    class Run:
        pass

    run = Run()
    run.records = records  # the report counts with the same function
    assert hit_rate(run) == "2/3 (67%), 2 ungraded"


def test_the_prompt_states_the_grading_rule() -> None:
    program, template = load_prompts()
    user = build_messages(ctx(), program, template)[-1]["content"]
    assert GRADING_RULE in user and "at least half" in user


def test_a_forecast_expectation_named_as_the_tables_column_is_graded_on_the_mean() -> None:
    """The forecast prompt's table heads its skill column ``rps_skill``; a model wrote ``Expect: rps_skill up
    0.008`` and its hypothesis went ungraded ("unknown metric 'rps_skill'"); "mean RPS skill" is the same."""
    from alphaloop.propose.parsing import parse_reply
    from alphaloop.tasks import get_task

    reply = ("```python\ndef generate_features(df):\n    return df\n\n\ndef forecast(row):\n"
             "    return {h: (1 / 3, 1 / 3, 1 / 3) for h in (1, 3, 5, 10)}\n```\n\n"
             "```markdown\nHypothesis: calm spells favour flat.\nChange: vol regime.\nExpected effect: skill up.\n"
             "Expect: rps_skill up 0.008\n```\n")
    expectation = parse_reply(reply).expectation
    task = get_task("forecast")
    parent = {"rps_skill_mean": 0.0, "rps_skill": {"1": 0.0, "3": 0.0, "5": 0.0, "10": 0.0}}
    child = {"rps_skill_mean": 0.009, "rps_skill": {"1": 0.012, "3": 0.01, "5": 0.008, "10": 0.006}}
    held, verdict = grade(expectation, task.grading_view(parent), task.grading_view(child))
    assert parse_reply(reply.replace("rps_skill up", "mean RPS skill up")).expectation == expectation
    assert held is True and verdict == "expected val rps_skill_mean up by 0.008; it moved +0.009: held"
