"""The offline proposer: deterministic, always gate-clean, runnable, look-ahead-free and varied."""

from __future__ import annotations

import ast
import builtins
import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from alphaloop.candidate import compute_signals, extract_region, template_text, validate_signals
from alphaloop.propose.base import Proposal, ProposalContext
from alphaloop.propose.offline import (
    BASELINE_SPEC,
    ENTRY_SPACE,
    OfflineProposer,
    indicator_families,
    render,
    spec_of,
)
from tests.test_sandbox_support import make_ohlcv

SAFE_BUILTINS = {"abs", "min", "max", "len", "range", "round", "float", "int", "bool", "sum", "any", "all",
                 "True", "False", "None"}
FORBIDDEN_ATTRS = {"eval", "query", "bfill", "backfill", "interpolate", "to_csv", "read_csv", "apply", "pipe"}
FORBIDDEN_NODES = (ast.Import, ast.ImportFrom, ast.Lambda, ast.Global, ast.Nonlocal, ast.ClassDef,
                   ast.AsyncFunctionDef, ast.Await, ast.Yield, ast.YieldFrom, ast.With, ast.Try, ast.Delete)


def strict_gate(code: str) -> None:
    """A deliberately stricter allow-list than the loop's gate: fail on anything unusual."""
    tree = ast.parse(code)
    assert [type(n) for n in tree.body] == [ast.FunctionDef, ast.FunctionDef]
    assert [n.name for n in tree.body] == ["generate_features", "strategy_logic"]
    for func in tree.body:
        assert isinstance(func, ast.FunctionDef)
        bound = {a.arg for a in func.args.args}
        bound |= {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        for node in ast.walk(func):
            assert not isinstance(node, FORBIDDEN_NODES), ast.dump(node)
            if isinstance(node, ast.Name):
                assert not node.id.startswith("_")
                assert node.id in bound | {"pd", "np"} | SAFE_BUILTINS, node.id
            if isinstance(node, ast.Attribute):
                assert not node.attr.startswith("_") and node.attr not in FORBIDDEN_ATTRS, node.attr
            if isinstance(node, ast.keyword):
                assert node.arg != "center"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "shift":
                arg = node.args[0]
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, int) and arg.value > 0


def load(code: str) -> dict:
    namespace = {"pd": pd, "np": np, "__builtins__": {k: getattr(builtins, k) for k in SAFE_BUILTINS}}
    exec(compile(code, "<region>", "exec"), namespace)
    return namespace


def ctx(iteration: int, parent: str, last_outcome: str | None = None) -> ProposalContext:
    return ProposalContext(iteration=iteration, parent_iteration=iteration - 1, parent_region=parent,
                           metric="sharpe", population=[], learnings="", last_outcome=last_outcome)


def chain(seed: int, n: int, start: str | None = None) -> list[Proposal]:
    """n proposals, each derived from the previous one (a run that always keeps the child)."""
    proposer = OfflineProposer(seed=seed)
    region = start if start is not None else extract_region(template_text())
    out = []
    for i in range(1, n + 1):
        p = proposer.propose(ctx(i, region))
        out.append(p)
        region = p.region
    return out


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_ohlcv(800, seed=7)


@pytest.fixture(scope="module")
def two_hundred() -> list[Proposal]:
    return chain(seed=11, n=200)


def test_deterministic_for_a_seed() -> None:
    a, b = chain(seed=3, n=25), chain(seed=3, n=25)
    assert [p.region for p in a] == [p.region for p in b]
    assert [p.hypothesis for p in a] == [p.hypothesis for p in b]
    c = chain(seed=4, n=25)
    assert [p.region for p in a] != [p.region for p in c]


def test_same_context_gives_the_same_proposal() -> None:
    parent = render(BASELINE_SPEC)
    assert OfflineProposer(5).propose(ctx(9, parent)).region == OfflineProposer(5).propose(ctx(9, parent)).region


def test_two_hundred_proposals_are_gate_clean_and_give_valid_signals(
        two_hundred: list[Proposal], frame: pd.DataFrame) -> None:
    trading = 0
    for p in two_hundred:
        assert p.error is None and p.region
        strict_gate(p.region)
        assert "import" not in p.region
        ns = load(p.region)
        features, raw = compute_signals(ns["generate_features"], ns["strategy_logic"], frame)
        signals = validate_signals(raw, len(frame))
        assert set(np.unique(signals)) <= {-1, 0, 1}
        assert all(type(v) is int for v in raw)
        warm = features.iloc[:10]
        assert (signals[:10][warm.isna().any(axis=1).to_numpy()] == 0).all()
        trading += bool((signals == 1).any())
    assert trading >= 150, f"only {trading} of 200 strategies ever enter"


def test_every_proposal_explains_itself(two_hundred: list[Proposal]) -> None:
    for p in two_hundred:
        assert p.hypothesis and p.change and p.expected
        assert p.expectation is not None and p.expectation.direction in (1, -1)
        assert p.model == "offline"
        assert p.tokens == {"prompt": 0, "completion": 0}
    metrics = Counter(p.expectation.metric for p in two_hundred if p.expectation)
    assert {"sharpe", "round_trips", "max_drawdown"} <= set(metrics)


def test_features_are_free_of_look_ahead(two_hundred: list[Proposal], frame: pd.DataFrame) -> None:
    for p in two_hundred[::10]:
        ns = load(p.region)
        full, full_raw = compute_signals(ns["generate_features"], ns["strategy_logic"], frame)
        for cut in (260, 530):
            part, part_raw = compute_signals(ns["generate_features"], ns["strategy_logic"], frame.iloc[:cut])
            assert list(part.columns) == list(full.columns)
            np.testing.assert_allclose(part.to_numpy(float), full.iloc[:cut].to_numpy(float),
                                       rtol=1e-12, atol=1e-12, equal_nan=True)
            assert list(part_raw) == list(full_raw[:cut])


def test_variety_of_indicators_and_mutations() -> None:
    proposals = chain(seed=21, n=50)
    families: set[str] = set()
    entries: set[str] = set()
    for p in proposals:
        spec = spec_of(p.region)
        assert spec is not None
        families |= indicator_families(spec)
        entries.add(spec["entry"]["kind"])
    assert len(families) >= 5, families
    assert len(entries) >= 3, entries
    mutations = Counter(m for p in proposals for m in p.raw.splitlines()[0].removeprefix("mutations: ").split(", "))
    assert len(mutations) >= 5, mutations


def test_every_entry_kind_renders_and_runs(frame: pd.DataFrame) -> None:
    for kind in ENTRY_SPACE:
        spec = spec_of(render({**BASELINE_SPEC, "entry": {"kind": kind}}))
        assert spec is not None and spec["entry"]["kind"] == kind
        for exits in ([{"kind": "opposite"}], [{"kind": "time"}, {"kind": "trail"}], [{"kind": "ma_stop"}]):
            full = {**spec, "exits": exits, "filters": [{"kind": "atr"}, {"kind": "volume"}]}
            code = render(spec_of(render(full)))
            strict_gate(code)
            ns = load(code)
            _, raw = compute_signals(ns["generate_features"], ns["strategy_logic"], frame)
            validate_signals(raw, len(frame))


def test_baseline_spec_matches_the_hand_written_baseline(frame: pd.DataFrame) -> None:
    base = load(extract_region(template_text()))
    mine = load(render(BASELINE_SPEC))
    _, a = compute_signals(base["generate_features"], base["strategy_logic"], frame)
    _, b = compute_signals(mine["generate_features"], mine["strategy_logic"], frame)
    assert list(a) == list(b)
    assert (np.asarray(a) != 0).sum() > 4


def test_spec_round_trips_through_the_region() -> None:
    assert spec_of(render(BASELINE_SPEC)) == BASELINE_SPEC


@pytest.mark.parametrize("parent", [
    "",
    "def generate_features(df):\n    return df\n",
    "# offline-spec: {not json}\n",
    "# offline-spec: " + json.dumps({"entry": {"kind": "nope"}}) + "\n",
    "# offline-spec: " + json.dumps({"entry": {"kind": "ma_cross", "fast": "x", "slow": -4}, "exits": 3}) + "\n",
])
def test_unreadable_or_foreign_parents_start_from_the_baseline_spec(parent: str) -> None:
    p = OfflineProposer(0).propose(ctx(1, parent))
    assert p.region and spec_of(p.region) is not None
    strict_gate(p.region)


def test_child_differs_from_parent() -> None:
    """Each proposal changes its parent, starting with the template's own region."""
    proposals = chain(seed=2, n=40)
    assert all(p.error is None and p.region for p in proposals)
    regions = [extract_region(template_text())] + [p.region for p in proposals]
    same = [i for i, (parent, child) in enumerate(zip(regions, regions[1:], strict=False), start=1) if parent == child]
    assert same == [], f"iterations that returned their parent unchanged: {same}"


def test_last_outcome_steers_the_search() -> None:
    parent = render({**BASELINE_SPEC, "filters": [{"kind": "trend", "ma": "sma", "window": 200}]})
    outcome = "iter 3 rejected: too few trades (2)"

    def drops(last_outcome: str | None) -> int:
        firsts = [OfflineProposer(0).propose(ctx(i, parent, last_outcome)).raw.split("\n")[0] for i in range(60)]
        return sum("drop_filter" in line for line in firsts)

    assert drops(outcome) > drops(None)


def test_a_change_that_altered_no_position_steers_away_from_nudges() -> None:
    parent = render(BASELINE_SPEC)

    def tunes(unchanged: bool) -> int:
        firsts = [OfflineProposer(0).propose(replace(ctx(i, parent), unchanged_positions=unchanged)).raw.split("\n")[0]
                  for i in range(80)]
        return sum(line.startswith("mutations: tune") for line in firsts)

    assert tunes(True) < tunes(False)
    assert OfflineProposer(0).propose(ctx(5, parent)).raw == OfflineProposer(0).propose(ctx(5, parent)).raw


def test_compact_defers_to_the_loop() -> None:
    assert OfflineProposer(0).compact("lots of text", 100) is None


def test_regions_pass_the_project_gate(two_hundred: list[Proposal]) -> None:
    gate = pytest.importorskip("sandbox.gate")
    for p in two_hundred:
        verdict = gate.check(p.region)
        assert verdict.ok, verdict.reason
