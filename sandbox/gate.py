"""Static allow-list gate over a candidate region's AST, run in the trusted parent.

The gate is the cheap first wall: it refuses anything that is not plainly "compute signals from
a DataFrame with pandas and numpy" before a process is ever started. It is strict on names and
attributes (the usual escape hatches of Python: dunder names, frames, reflection, file and URL
readers, string evaluation, method dispatch by string) and permissive on ordinary control flow,
because real strategies use loops, helpers, comprehensions, lambdas and try/except. It fails
closed: any input it cannot analyse, including one that breaks the parser, is a rejection, and
``check`` never raises.
"""

from __future__ import annotations

import ast
import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.gate_ast import Refusal, arg_names, is_literal, loop_exits, private
from sandbox.gate_ast import attribute_refusal as attribute_refusal  # re-exported: the gate tests read it here
from sandbox.gate_expr import ExprChecks, Scopes
from sandbox.gate_tables import (  # noqa: F401  (re-exported: tests and the runner read them here)
    ALLOCATING_CALLS,
    ALLOWED_CHAINS,
    DISPATCH_METHODS,
    DISPATCH_OPTION_KEYWORDS,
    DISPATCH_TABLE,
    FORBIDDEN_NAMES,
    IANA_NAME,
    INTERNAL_ATTRS,
    INTROSPECTION_ATTRS,
    IO_ATTRS,
    MAX_DEPTH,
    MAX_ELEMENTS,
    MAX_INT_BITS,
    MAX_LITERAL_CHARS,
    MAX_LITERAL_ELEMENTS,
    MAX_LITERAL_INT_BITS,
    MAX_LITERAL_STRING,
    MAX_LITERAL_TOTAL,
    MAX_REPEAT,
    MAX_SOURCE_CHARS,
    MAX_VIOLATIONS,
    MODULE_NAMES,
    OPTIONS_ATTRS,
    REDUCER_STRINGS,
    REQUIRED_FUNCTIONS,
    RULES,
    SAFE_BUILTINS,
    SAFE_EXCEPTIONS,
    SAFE_FUNCTIONS,
    SAFE_TO_ATTRS,
    SIZE_KEYWORDS,
    STRING_EVAL_ATTRS,
    TASK_FUNCTIONS,
    TZ_CALLS,
    TZ_KEYWORDS,
)


@dataclass(frozen=True)
class GateResult:
    """Verdict on one region: ``ok`` or the first rule broken, with its line and a message."""

    ok: bool
    rule: str
    line: int | None
    reason: str


def _result(rule: str, line: int | None, message: str) -> GateResult:
    where = f"line {line}: " if line is not None else ""
    return GateResult(False, rule, line, f"{where}{message} (rule: {rule})")


class _Checker(ExprChecks):
    """One pass over a parsed region; raises ``Refusal`` at the first broken rule.

    Names are resolved after the pass, once every scope knows all the names it binds, so a
    single walk of the tree is enough (the gate must stay within a few ms: ``bench/bench_sandbox.py``).
    """

    def __init__(self, tree: ast.Module, required: tuple[str, ...] = REQUIRED_FUNCTIONS) -> None:
        self.tree = tree
        self.required = required
        self.depth = 0
        self.def_names: set[str] = set()
        self.rebound: set[str] = set()
        self.loads: list[tuple[ast.Name, Scopes]] = []
        self.dispatches: list[tuple[ast.Call, str]] = []
        self.called: set[int] = set()
        self.refusals: list[Refusal] = []
        self.exc_names: set[str] = set()
        self.str_args: set[int] = set()
        self.docstrings: set[int] = set()
        self.literal_total = 0
        self.literal_seen: set[tuple[str, str]] = set()
        self.literal_chars = 0
        self.expr_handlers = self._expr_handlers()

    def run(self) -> None:
        module: set[str] = set()
        seen: dict[str, int] = {}
        for stmt in self.tree.body:
            for name in self._top_level_names(stmt):
                if name in seen:
                    raise Refusal("duplicate-definition", stmt,
                                   f"{name!r} is defined twice (first on line {seen[name]})")
                seen[name] = stmt.lineno
                module.add(name)
        scopes: Scopes = (module,)
        for stmt in self.tree.body:
            self._collect(self._top_level, stmt, scopes)
        for node, scopes_ in self.loads:
            self._collect(self._resolve_name, node, scopes_)
        for call, method in self.dispatches:
            self._collect(self._dispatch, call, method)
        self._collect(self._contract)
        if self.refusals:
            raise self.refusals[0]

    def _collect(self, step: Any, *args: Any) -> None:
        """Run one check; a refusal is recorded (the verdict lists several) and the walk goes on."""
        depth = self.depth
        try:
            step(*args)
        except Refusal as refusal:
            self.depth = depth
            self.refusals.append(refusal)

    def _top_level(self, stmt: ast.stmt, scopes: Scopes) -> None:
        if isinstance(stmt, ast.FunctionDef):
            self._function(stmt, scopes)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                self._target(target, scopes)
            if stmt.value is not None:
                self._expr(stmt.value, scopes)

    def _top_level_names(self, stmt: ast.stmt) -> list[str]:
        if isinstance(stmt, ast.FunctionDef):
            return [stmt.name]
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            return []
        if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets) \
                and is_literal(stmt.value):
            return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None \
                and is_literal(stmt.value):
            return [stmt.target.id]
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            raise Refusal("import", stmt, "imports are not allowed; pd and np are already in scope")
        kind = type(stmt).__name__
        raise Refusal("top-level", stmt,
                       f"only function definitions and literal constants may appear at top level, found {kind}")

    def _resolve_name(self, node: ast.Name, scopes: Scopes) -> None:
        name = node.id
        if name in self.exc_names and id(node) not in self.str_args:
            raise Refusal("exception-attr", node, f"the caught exception {name!r} may only be used as str({name}); "
                           "its attributes reach library internals")
        if name in MODULE_NAMES or name in SAFE_BUILTINS or any(name in scope for scope in scopes):
            return
        if name in FORBIDDEN_NAMES:
            raise Refusal(FORBIDDEN_NAMES[name], node, f"name {name!r} is not allowed")
        raise Refusal("unbound-name", node,
                       f"name {name!r} is not defined here (only local names, pd, np and safe builtins)")

    def _contract(self) -> None:
        defs = {s.name: s for s in self.tree.body if isinstance(s, ast.FunctionDef)}
        for name in self.required:
            node = defs.get(name)
            if node is None:
                raise Refusal("contract", None, f"the region must define {name}(...) at top level")
            args = node.args
            positional = args.posonlyargs + args.args
            required = len(positional) - len(args.defaults)
            kw_required = sum(1 for d in args.kw_defaults if d is None)
            if (not positional and args.vararg is None) or required > 1 or kw_required:
                raise Refusal("contract", node, f"{name} must accept exactly one positional argument")

    def _enter(self, node: ast.AST) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Refusal("too-deep", node, f"nesting deeper than {MAX_DEPTH} levels")

    def _bind(self, name: str, node: ast.AST, scopes: Scopes, what: str = "name") -> None:
        if private(name):
            raise Refusal("private-name", node, f"{what} {name!r} starts with '_'")
        scopes[-1].add(name)
        self.rebound.add(name)

    def _function(self, node: ast.FunctionDef, scopes: Scopes) -> None:
        self._enter(node)
        if node.decorator_list:
            raise Refusal("decorator", node, f"decorators are not allowed (on {node.name!r})")
        if private(node.name):
            raise Refusal("private-name", node, f"name {node.name!r} starts with '_'")
        scopes[-1].add(node.name)
        self.def_names.add(node.name)
        local: set[str] = set()
        inner = scopes + (local,)
        for arg in arg_names(node.args):
            self._bind(arg.arg, arg, inner, "parameter")
            if arg.annotation is not None:
                self._expr(arg.annotation, scopes)
        for default in node.args.defaults:
            self._expr(default, scopes)
        for default in node.args.kw_defaults:
            if default is not None:
                self._expr(default, scopes)
        if node.returns is not None:
            self._expr(node.returns, scopes)
        for stmt in node.body:
            self._collect(self._stmt, stmt, inner)
        self.depth -= 1

    def _stmt(self, node: ast.stmt, scopes: Scopes) -> None:
        if isinstance(node, ast.FunctionDef):
            self._function(node, scopes)
            return
        self._enter(node)
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._target(target, scopes)
            self._expr(node.value, scopes)
        elif isinstance(node, ast.Return):
            if node.value is not None:
                self._expr(node.value, scopes)
        elif isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                self.docstrings.add(id(node.value))
            self._expr(node.value, scopes)
        elif isinstance(node, ast.If):
            self._expr(node.test, scopes)
            self._body(node.body, scopes)
            self._body(node.orelse, scopes)
        elif isinstance(node, ast.AugAssign):
            self._target(node.target, scopes)
            self._expr(node.value, scopes)
        elif isinstance(node, ast.For):
            self._target(node.target, scopes)
            self._expr(node.iter, scopes)
            self._body(node.body, scopes)
            self._body(node.orelse, scopes)
        elif isinstance(node, ast.While):
            test = node.test
            if isinstance(test, ast.Constant) and test.value and not loop_exits(node.body):
                raise Refusal("infinite-loop", node, "'while' loop on a constant condition never exits")
            self._expr(test, scopes)
            self._body(node.body, scopes)
            self._body(node.orelse, scopes)
        elif isinstance(node, ast.AnnAssign):
            self._target(node.target, scopes)
            self._expr(node.annotation, scopes)
            if node.value is not None:
                self._expr(node.value, scopes)
        elif isinstance(node, ast.Try):
            self._body(node.body, scopes)
            for handler in node.handlers:
                if handler.type is not None:
                    self._expr(handler.type, scopes)
                if handler.name is not None:
                    self._bind(handler.name, handler, scopes)
                    self.exc_names.add(handler.name)
                self._body(handler.body, scopes)
            self._body(node.orelse, scopes)
            self._body(node.finalbody, scopes)
        elif isinstance(node, ast.Raise):
            for part in (node.exc, node.cause):
                if part is not None:
                    self._expr(part, scopes)
        elif isinstance(node, ast.Assert):
            self._expr(node.test, scopes)
            if node.msg is not None:
                self._expr(node.msg, scopes)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self._target(target, scopes)
        elif isinstance(node, (ast.Pass, ast.Break, ast.Continue)):
            pass
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            raise Refusal("import", node, "imports are not allowed; pd and np are already in scope")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            raise Refusal("scope", node, f"'{type(node).__name__.lower()}' statements are not allowed")
        else:
            raise Refusal("statement", node, f"'{type(node).__name__}' statements are not allowed")
        self.depth -= 1

    def _body(self, body: list[ast.stmt], scopes: Scopes) -> None:
        for stmt in body:
            self._collect(self._stmt, stmt, scopes)

    def _target(self, node: ast.expr, scopes: Scopes) -> None:
        self._enter(node)
        if isinstance(node, ast.Name):
            self._bind(node.id, node, scopes)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                self._target(elt, scopes)
        elif isinstance(node, ast.Starred):
            self._target(node.value, scopes)
        elif isinstance(node, ast.Subscript):
            self._expr(node.value, scopes)
            self._expr(node.slice, scopes)
        elif isinstance(node, ast.Attribute):
            raise Refusal("attribute-assign", node,
                           f"assigning or deleting attribute {node.attr!r} is not allowed; use df['col'] = ...")
        else:
            raise Refusal("statement", node, f"cannot assign to {type(node).__name__}")
        self.depth -= 1


def check(source: str, required: tuple[str, ...] = REQUIRED_FUNCTIONS) -> GateResult:
    """Decide whether a candidate region may run; never raises, refuses whatever it cannot read.

    ``required`` names the top-level functions the task's contract asks for (``TASK_FUNCTIONS``), each
    taking exactly one positional argument.
    """
    try:
        return _check(source, tuple(required))
    except RecursionError:
        return _result("too-deep", None, "source nests too deeply to analyse")
    except MemoryError:
        return _result("parse", None, "source exhausted memory while being analysed")
    except Exception as exc:  # the gate fails closed on its own bugs as well
        return _result("internal", None, f"gate could not analyse the source ({type(exc).__name__})")


def task_check(task: str) -> Callable[[str], GateResult]:
    """The gate of one task (``--task trade`` or ``--task forecast``), as a one-argument function."""
    return functools.partial(check, required=TASK_FUNCTIONS[task])


def _check(source: str, required: tuple[str, ...] = REQUIRED_FUNCTIONS) -> GateResult:
    if not isinstance(source, str):
        return _result("input", None, f"region must be text, got {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        return _result("size", None, f"region has {len(source):,} characters, more than {MAX_SOURCE_CHARS:,}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename="<candidate>", mode="exec")
    except SyntaxError as exc:
        return _result("parse", exc.lineno, f"syntax error: {exc.msg}")
    except (ValueError, MemoryError, RecursionError, OverflowError) as exc:
        return _result("parse", None, f"the parser refused the source ({type(exc).__name__})")
    checker = _Checker(tree, required)
    try:
        checker.run()
    except Refusal as refusal:
        found = checker.refusals or [refusal]
        first = _result(found[0].rule, found[0].line, found[0].message)
        more = [_result(r.rule, r.line, r.message).reason for r in found[1:MAX_VIOLATIONS]]
        if not more:
            return first
        extra = f" and {len(found) - MAX_VIOLATIONS} more" if len(found) > MAX_VIOLATIONS else ""
        return GateResult(False, first.rule, first.line, f"{first.reason}; also {'; '.join(more)}{extra}")
    return GateResult(True, "", None, "")
