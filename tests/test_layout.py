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
