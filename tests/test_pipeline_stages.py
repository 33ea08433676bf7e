"""The pipeline's stages are declared once, and every view of them (check, report, docs) follows that list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alphaloop.commands.check import stage_lines
from alphaloop.data.frozen import load_splits
from alphaloop.evaluate import pipeline
from alphaloop.evaluate.pipeline import PIPELINE, STAGES, EvalContext, Trial, Verdict, evaluate
from alphaloop.evaluate.scoring import History
from alphaloop.tasks import get_task
from tests.conftest import InProcessSandbox
from tests.test_lookahead import BASELINE
from tests.test_pipeline_check import LEAKY

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def history(frozen_data: Path) -> History:
    return History.from_splits(load_splits(frozen_data))


def test_stages_run_in_the_declared_order() -> None:
    assert STAGES == tuple(stage.name for stage in PIPELINE)
    assert STAGES == ("gate", "sandbox", "lookahead", "score", "guards")
    assert pipeline.ACCEPTED not in STAGES


def test_each_stage_returns_a_verdict_and_evaluate_stops_at_the_first_rejection(history: History,
                                                                                  monkeypatch: pytest.MonkeyPatch
                                                                                  ) -> None:
    seen: list[str] = []

    def spy(stage: pipeline.Stage) -> pipeline.Stage:
        def run(t: Trial) -> Verdict:
            seen.append(stage.name)
            verdict = stage.run(t)
            assert isinstance(verdict, Verdict)
            return verdict
        return pipeline.Stage(stage.name, run)

    monkeypatch.setattr(pipeline, "PIPELINE", tuple(spy(s) for s in PIPELINE))
    ev = evaluate(BASELINE, EvalContext(histories=(history,), sandbox=InProcessSandbox(), task=get_task("trade")))
    assert ev.accepted and seen == list(STAGES)
    seen.clear()
    ev = evaluate(LEAKY, EvalContext(histories=(history,), sandbox=InProcessSandbox(), task=get_task("trade")))
    assert ev.stage == "lookahead" and seen == ["gate", "sandbox", "lookahead"]
    assert set(ev.details) == {"region_sha256", "gate", "sandbox", "lookahead"}


def test_check_prints_one_line_a_stage_in_the_declared_order(history: History) -> None:
    ev = evaluate(LEAKY, EvalContext(histories=(history,), sandbox=InProcessSandbox(), task=get_task("trade")))
    lines = stage_lines(ev)
    assert [line.split()[0] for line in lines] == list(STAGES)
    assert [line.split()[1] for line in lines] == ["ok", "ok", "REJECTED", "not", "not"]


def test_the_docs_quote_the_declared_order() -> None:
    text = (ROOT / "docs" / "flags.md").read_text(encoding="utf-8")
    quoted = re.findall(r"`gate` →.*?`guards`", text, flags=re.S)
    assert quoted, "the check section of docs/flags.md names the stages"
    for found in quoted:
        assert tuple(re.findall(r"`(\w+)`", found)) == STAGES
    layout_text = (ROOT / "docs" / "layout.md").read_text(encoding="utf-8")
    layout = re.search(r"pipeline\.py .*?: (gate -> .*? -> guards)", layout_text)
    assert layout is not None and tuple(layout.group(1).split(" -> ")) == STAGES


def test_the_report_names_rejections_in_the_pipeline_order() -> None:
    from alphaloop.present.report.summary import STAGES as REPORT_STAGES

    assert REPORT_STAGES == ("proposal", *STAGES)


def test_the_live_view_names_the_declared_stages_in_order() -> None:
    from alphaloop.run.loop import EVALUATING

    assert EVALUATING.startswith("evaluate") and re.findall(r"\w+", EVALUATING)[1:] == list(STAGES)
