"""The package's layout rules: one module names the workdir's files, and no import cycle anywhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from alphaloop.run import workdir

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("alphaloop/**/*.py"), *ROOT.glob("sandbox/**/*.py"), ROOT / "harness.py",
                  ROOT / "prepare.py"])
NAMES = {workdir.STATE, workdir.RESULTS_TSV, workdir.LEARNINGS, workdir.BEST_TRADE, workdir.MANIFEST,
         workdir.READINGS, workdir.STATS, workdir.STRESS, workdir.CROSS_MARKET, workdir.REPORT, workdir.FORECAST_STATS,
         *(workdir.FORECASTS.format(split=s) for s in ("val", "test"))}
PER_ITERATION = re.compile(r"iter_(\{\}|\*|N|\\?\(|\d)\S*_(trade\.py|results\.json|reply\.md|returns\.json)")


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def _templates(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal as written, an f-string's fields as ``{}``, docstrings left out."""
    skip, out, inside = _docstrings(tree), [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                inside.add(id(v))
                parts.append(v.value if isinstance(v, ast.Constant) else "{}")
            out.append((node.lineno, "".join(str(p) for p in parts)))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
                and id(node) not in inside):
            out.append((node.lineno, node.value))
    return out


def test_only_workdir_py_names_the_run_folders_files() -> None:
    """A path into the run folder is built from workdir.py's names, never spelled elsewhere."""
    offenders = []
    for path in SOURCES:
        if path == ROOT / "alphaloop" / "run" / "workdir.py":
            continue
        for line, text in _templates(ast.parse(path.read_text(encoding="utf-8"))):
            spelled = text.strip() in NAMES or any(text.endswith("/" + n) for n in NAMES) or PER_ITERATION.search(text)
            if spelled:
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert offenders == []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> project modules it imports: module level, inside functions, and under TYPE_CHECKING."""
    modules = {_module_name(p): p for p in SOURCES}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                targets.add(base)
                targets |= {f"{base}.{a.name}" for a in node.names}
        edges = set()
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                edges.add(t)
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return [*stack[stack.index(m):], m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_the_import_graph_is_acyclic() -> None:
    graph = import_graph()
    assert "alphaloop.run.loop" in graph and "alphaloop.commands.finish" in graph["alphaloop.run.loop"]
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]  # the check itself finds a cycle
    assert _cycle(graph) is None


# ----- one seam per dimension (issue 18) -------------------------------------------------------------------
# A line "tests which task runs" when it compares anything with a task's name or the forecast metric's name
# (a string, or a tuple or list of them), compares something named ``task`` with a string, calls an
# ``is_forecast*`` helper, or asks ``isinstance`` of a task's own scores class. A line "tests how many
# instruments there are" when it compares ``len(...)`` of something named after instruments (histories,
# instruments, universe, frames, names, schemes, legs, reports, outputs) with 1 or 2, or uses a flag named
# ``many``.
TASK_NAMES = {"trade", "forecast", "portfolio", "rps_skill_mean"}
TASK_CLASSES = {"ForecastScores", "PortfolioScores"}
COUNTED = re.compile(r"histor|instrument|universe|frames|names|schemes|legs|reports|outputs", re.I)
TASK_HOME = ROOT / "alphaloop" / "tasks"
INSTRUMENT_HOMES = (ROOT / "alphaloop" / "data", ROOT / "alphaloop" / "present")
MAX_TASK_LINES = MAX_INSTRUMENT_LINES = 6


def _named_task(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "task") or (isinstance(node, ast.Attribute)
                                                                 and node.attr == "task")


def _strings(node: ast.AST) -> set[object]:
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
    return {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}


def _task_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            named = any(_strings(s) & TASK_NAMES for s in sides)
            if named or (any(_named_task(s) for s in sides) and any(_strings(s) for s in sides)):
                lines.add(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id.startswith("is_forecast"):
                lines.add(node.lineno)
            if node.func.id == "isinstance" and len(node.args) == 2 and ast.unparse(node.args[1]) in TASK_CLASSES:
                lines.add(node.lineno)
    return lines


def _instrument_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for left, right in zip([node.left, *node.comparators], node.comparators, strict=False):
                for a, b in ((left, right), (right, left)):
                    if (isinstance(a, ast.Call) and isinstance(a.func, ast.Name) and a.func.id == "len"
                            and isinstance(b, ast.Constant) and b.value in (1, 2) and COUNTED.search(ast.unparse(a))):
                        lines.add(node.lineno)
        if isinstance(node, ast.Name) and node.id == "many":
            lines.add(node.lineno)
    return lines


def _offenders(find, exempt: tuple[Path, ...]) -> list[str]:
    out = []
    for path in SOURCES:
        if any(path.is_relative_to(home) for home in exempt):
            continue
        source = path.read_text(encoding="utf-8")
        text = source.splitlines()
        out += [f"{path.relative_to(ROOT)}:{n}: {text[n - 1].strip()}" for n in sorted(find(ast.parse(source)))]
    return out


def test_the_task_is_asked_of_the_task_object_not_tested() -> None:
    """Outside alphaloop/tasks/ at most a handful of code lines test which task runs; everything else calls
    the task object (alphaloop.tasks.protocol.Task)."""
    assert _task_lines(ast.parse('if cfg.task == "trade":\n    pass\nx = task != "y"\nz = task is None\n')) == {1, 3}
    offenders = _offenders(_task_lines, (TASK_HOME,))
    assert len(offenders) <= MAX_TASK_LINES, "\n".join(offenders)


def test_only_the_loader_and_the_presentation_count_instruments() -> None:
    """Outside alphaloop/data/ and alphaloop/present/ at most a handful of code lines test how many
    instruments there are: instruments are always a tuple (one instrument is a universe of one)."""
    assert _instrument_lines(ast.parse("if len(histories) > 1:\n    pass\nok = 1 == len(h.instruments)\n")) == {1, 3}
    offenders = _offenders(_instrument_lines, INSTRUMENT_HOMES)
    assert len(offenders) <= MAX_INSTRUMENT_LINES, "\n".join(offenders)


DRIVER_LIST = {"alphaloop.evaluate.sandboxed", "alphaloop.candidate"}


def test_no_module_outside_a_task_imports_a_task_plug_in() -> None:
    """Code outside alphaloop/tasks/ reaches a task through the registry (alphaloop.tasks) and the protocol,
    never a plug-in's own modules (alphaloop.tasks.<name>.*): adding a task touches no other package."""
    graph = import_graph()
    plugins = {m for m in graph if m.startswith("alphaloop.tasks.") and m != "alphaloop.tasks.protocol"}
    # sandbox/ is held to more (it imports nothing from alphaloop: the trust boundary's own test);
    # evaluate/sandboxed lists every task's driver, and candidate runs the drivers in-process (tests, trade.py),
    # until both read them from the registry (Task.driver_source)
    offenders = sorted(f"{m} -> {t}" for m, targets in graph.items()
                       if m.startswith("alphaloop") and not m.startswith("alphaloop.tasks") and m not in DRIVER_LIST
                       for t in targets & plugins)
    assert offenders == []


def test_the_package_declares_its_public_face() -> None:
    tree = ast.parse((ROOT / "alphaloop" / "__init__.py").read_text(encoding="utf-8"))
    names = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)]
    assert "__all__" in names
    import alphaloop

    assert all(hasattr(alphaloop, name) for name in alphaloop.__all__)


def test_no_source_module_exceeds_500_lines() -> None:
    long = [f"{p.relative_to(ROOT)}: {n}" for p in SOURCES
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500]
    assert long == []
