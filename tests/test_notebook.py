"""learnings.md as a person reads it in the morning, and as the model sees it for the whole run.

Records are folded through the loop's real LoopState, so these are the notes a run writes."""

from __future__ import annotations

import re

from alphaloop.present.text import ELLIPSIS
from alphaloop.run.distilled import DISTILLED_CHARS
from alphaloop.run.learnings import ENTRY_PROMPT_CHARS, LESSONS_CHARS, PROMPT_CHARS, RECENT_IN_PROMPT, Learnings
from alphaloop.run.records import IterationRecord
from alphaloop.run.rows import entry_from_record
from alphaloop.run.state import LoopState
from alphaloop.tasks import get_task


def record(n: int, val: float | None, parent: int | None, status: str = "accepted", stage: str = "ok",
           reason: str = "", change: str = "", compacted: str | None = None) -> dict:
    scores = None
    if val is not None:
        val_split = {"sharpe": val, "bh_sharpe": 1.04, "round_trips": 10.0}
        scores = {"splits": {"val": val_split, "train": {**val_split, "sharpe": val / 2}}, "fold_spread": {}}
    rec = {"iteration": n, "parent": parent, "status": status, "stage": stage, "reason": reason, "scores": scores,
           "selection_val": val, "selection_value": val if status == "accepted" else None,
           "signals_sha256": f"sig{n}", "in_population": False, "hypothesis_held": None, "grading": "",
           "proposal": {"change": change or f"idea number {n}: " + "a longer description of the change " * 3,
                        "hypothesis": "it should help " * 20, "expected": "sharpe up"}}
    if compacted is not None:
        rec["learnings_compacted"] = compacted
    return rec


def fold(state: LoopState, learnings: Learnings, rec: dict) -> None:
    if rec["status"] == "accepted":
        rec["in_population"] = state.would_enter(rec["selection_value"], rec["signals_sha256"])
    state.apply(IterationRecord.from_json(rec), learnings, get_task("trade"))  # the record as the loop reads it back


def a_run(n_iterations: int, lessons: bool = False) -> tuple[LoopState, Learnings, list[dict]]:
    """A run with a volatility filter that fails at iter 2, a look-ahead at iter 3 and steady gains later."""
    state, ln = LoopState(metric="sharpe", population_size=3, data_manifest="x"), Learnings()
    records = []
    for n in range(n_iterations):
        if n == 0:
            rec = record(0, 0.5, None)
        elif n == 2:
            rec = record(2, 0.2, 0, change="volatility filter: flat when 20-day volatility is above its median")
        elif n == 3:
            rec = record(3, None, 0, status="rejected", stage="lookahead",
                         reason="feature 'z' changed at row 310 when later rows were removed")
        elif n % 7 == 0:
            rec = record(n, None, 0, status="rejected", stage="guards", reason=f"too few round trips ({n % 5})")
        else:
            parent = state.best.iteration
            rec = record(n, state.best.val_metric + (0.01 if n % 3 else -0.05), parent)
        entry = entry_from_record(IterationRecord.from_json({**rec, "in_population": rec["status"] == "accepted"}),
                                  "sharpe", get_task("trade"))
        if lessons and ln.compaction_request(entry) is not None:
            rec["learnings_compacted"] = f"- volatility filters hurt (seen at iter 2); lessons at iter {n}"
        fold(state, ln, rec)
        records.append(rec)
    return state, ln, records


def test_learnings_md_opens_with_the_distilled_section() -> None:
    state, ln, _ = a_run(12)
    text = ln.render()
    head = text.split("## Recent iterations")[0]
    assert text.startswith("# Learnings\n\n## Distilled")
    best = state.best
    assert f"Best so far: iter {best.iteration}, val sharpe {best.val_metric:.3f} against buy and hold 1.040" in head
    assert "below it (validation split)" in head
    # on one instrument too: it said "(equal weight on several instruments)", as if the run had several
    assert "against buy and hold 1.040 (the equal-weight one when there are several instruments), " in head
    assert "Helped (entered the population with a val sharpe gain against the parent):" in head and "+0.010" in head
    assert re.search(r"iter 2: -0\.300 \(against iter \d+, val -?\d\.\d{3}\), volatility filter", head)  # by how much
    worse = head.split("Entered the population though")[1].split("Rejection reasons")[0]
    assert "iter 2: -0.300" in worse  # it entered (the population had room): not listed as "did not help"
    assert "iter 2:" not in head.split("Did not help")[1].split("Entered the population though")[0]
    assert "at lookahead, 1 time; latest iter 3: feature '…' changed" in head
    assert "at guards, 1 time; latest iter 7: too few round trips" in head
    assert "hit rate" in head


def test_failed_ideas_and_rejection_reasons_stay_in_the_prompt_for_the_whole_run() -> None:
    _, ln, _ = a_run(300, lessons=True)
    view = ln.prompt_view()
    assert "volatility filter" in view and "at lookahead, 1 time; latest iter 3" in view
    assert "at guards" in view and "Best so far" in view
    assert ln.lessons.startswith("- volatility filters hurt") and ln.lessons in view  # the model's lessons, whole
    distilled = "\n".join(ln._distilled_block())
    assert distilled in view  # the distilled section whole, never its middle cut
    assert len(distilled) <= DISTILLED_CHARS + LESSONS_CHARS + 200 and len(view) <= PROMPT_CHARS


def test_the_recent_window_does_not_shrink_after_a_compaction() -> None:
    state, ln = LoopState(metric="sharpe", population_size=3, data_manifest="x"), Learnings()
    shown, compactions = [], 0
    for n in range(60):
        rec = record(n, 0.5 + n / 100, None if n == 0 else n - 1)
        entry = entry_from_record(IterationRecord.from_json({**rec, "in_population": True}), "sharpe",
                                 get_task("trade"))
        if ln.compaction_request(entry) is not None:
            compactions += 1
            rec["learnings_compacted"] = "- " + "lesson " * 150  # the longest reply the loop accepts, about
        fold(state, ln, rec)
        shown.append(len(re.findall(r"^### iter ", ln.prompt_view(), flags=re.MULTILINE)))
    assert compactions >= 3
    assert shown[RECENT_IN_PROMPT:] == [RECENT_IN_PROMPT] * (60 - RECENT_IN_PROMPT)


def test_no_text_is_cut_mid_word_and_arrows_mean_one_thing() -> None:
    _, ln, _ = a_run(80)
    for text in (ln.render(), ln.prompt_view()):
        for line in text.splitlines():
            if ELLIPSIS in line:
                before = line.split(ELLIPSIS)[0]
                assert before.endswith(tuple("abcdefghijklmnopqrstuvwxyz0123456789).,:'"))
                assert not re.search(r"\w" + ELLIPSIS + r"\w", line)
        assert " -> " not in text  # in the notes an arrow appears only inside a change "old -> new"; none here
    for block in ln.prompt_view().split("\n\n"):
        if block.startswith("### iter"):
            assert len(block) <= ENTRY_PROMPT_CHARS


def test_a_compactor_reply_over_the_budget_is_refused_whole() -> None:
    state, ln = LoopState(metric="sharpe", population_size=3, data_manifest="x"), Learnings()
    for n in range(40):
        rec = record(n, 0.5, None if n == 0 else 0, compacted="x " * LESSONS_CHARS)
        fold(state, ln, rec)
    assert ln.lessons == "" and ln.summary.startswith("Compacted so far")


def test_replaying_the_same_records_gives_the_same_learnings() -> None:
    state, ln, records = a_run(120, lessons=True)
    again_state, again = LoopState(metric="sharpe", population_size=3, data_manifest="x"), Learnings()
    for rec in records:
        again_state.apply(IterationRecord.from_json(rec), again, get_task("trade"))
    assert again.to_json() == ln.to_json() and again.render() == ln.render()
    assert again_state.learnings == state.learnings and ln.lessons


def test_the_distilled_section_stays_within_its_bound_at_its_widest() -> None:
    """Every list full, every text at its cap, nine stages of rejections: still under DISTILLED_CHARS."""
    state, ln = LoopState(metric="sharpe", population_size=3, data_manifest="x"), Learnings()
    long = "word " * 100
    stages = ["proposal", "gate", "sandbox", "lookahead", "guards", "score", "stress", "universe", "ninth"]
    for n in range(100_000, 100_400):
        if n == 100_000:
            rec = record(n, 0.5, None, change=long)
        elif n % 4 == 0:
            rec = record(n, None, 100_000, status="rejected", stage=stages[n % 9], reason=f"{n} " + long)
        else:
            rec = record(n, 0.1 if n % 3 == 0 else 0.5 + (n - 100_000) / 1000, 100_000, change=f"{n} " + long)
        fold(state, ln, rec)
    lines = ln.distilled.lines(ln.hit_rate())
    assert len("\n".join(lines)) <= DISTILLED_CHARS
    assert len(ln.distilled.helped) == 5 and len(ln.distilled.older_failed) == 8 and ln.distilled.older_failed_dropped
    assert len(ln.prompt_view()) <= PROMPT_CHARS
