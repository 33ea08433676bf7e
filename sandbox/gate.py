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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sandbox.gate_ast import (
    TOO_BIG,
    CallChecks,
    Refusal,
    arg_names,
    attribute_refusal,
    const_count,
    const_int,
    dotted,
    is_big,
    is_literal,
    is_sequence,
    loop_exits,
    private,
)
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


Scopes = tuple[set[str], ...]


class _Checker(CallChecks):
    """One pass over a parsed region; raises ``Refusal`` at the first broken rule.

    Names are resolved after the pass, once every scope knows all the names it binds, so a
    single walk of the tree is enough (the gate must stay well under 5 ms).
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
        self.expr_handlers = {
            ast.Constant: self._x_constant, ast.Name: self._x_name, ast.Attribute: self._x_attribute,
            ast.Subscript: self._x_subscript, ast.Slice: self._x_slice, ast.Starred: self._x_starred,
            ast.BinOp: self._x_binop, ast.UnaryOp: self._x_unaryop, ast.BoolOp: self._x_boolop,
            ast.Compare: self._x_compare, ast.IfExp: self._x_ifexp, ast.List: self._x_elts,
            ast.Tuple: self._x_elts, ast.Set: self._x_elts, ast.Dict: self._x_dict,
            ast.JoinedStr: self._x_joinedstr, ast.FormattedValue: self._x_formatted,
            ast.NamedExpr: self._x_namedexpr, ast.Lambda: self._x_lambda, ast.ListComp: self._x_comp,
            ast.SetComp: self._x_comp, ast.GeneratorExp: self._x_comp, ast.DictComp: self._x_dictcomp,
            ast.Call: self._x_call,
        }

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

    def _expr(self, node: ast.AST, scopes: Scopes) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise Refusal("too-deep", node, f"nesting deeper than {MAX_DEPTH} levels")
        handler = self.expr_handlers.get(type(node))
        if handler is None:
            raise Refusal("expression", node, f"'{type(node).__name__}' expressions are not allowed")
        handler(node, scopes)
        self.depth -= 1

    def _each(self, nodes: Iterable[ast.AST | None], scopes: Scopes) -> None:
        for node in nodes:
            if node is not None:
                self._expr(node, scopes)

    def _x_constant(self, node: ast.Constant, scopes: Scopes) -> None:
        value = node.value
        if isinstance(value, (str, bytes)):
            if "dateutil" in str(value):
                raise Refusal("timezone", node, "'dateutil' time zones open files; use a plain IANA name such as "
                               "'America/New_York'")
            if len(value) > MAX_LITERAL_STRING and id(node) not in self.docstrings:
                raise Refusal("literal-data", node, f"string literal of {len(value)} characters (limit "
                               f"{MAX_LITERAL_STRING}): compute from the data instead of embedding it")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > MAX_LITERAL_INT_BITS:
            raise Refusal("literal-data", node, f"integer literal beyond {MAX_LITERAL_INT_BITS} bits: "
                           "a parameter never needs that many digits")

    def _x_name(self, node: ast.Name, scopes: Scopes) -> None:
        if private(node.id):
            raise Refusal("private-name", node, f"name {node.id!r} starts with '_'")
        if isinstance(node.ctx, ast.Load):
            self.loads.append((node, scopes))
        else:
            self._bind(node.id, node, scopes)

    def _x_attribute(self, node: ast.Attribute, scopes: Scopes) -> None:
        if node.attr == "sliding_window_view" and dotted(node) in ALLOWED_CHAINS:
            root = node
            while isinstance(root, ast.Attribute):
                root = root.value
            self._expr(root, scopes)
            return
        refusal = attribute_refusal(node.attr)
        if refusal is not None:
            raise Refusal(refusal[0], node, refusal[1])
        if node.attr in ("format", "format_map"):
            self._format_receiver(node)
        if node.attr in DISPATCH_METHODS and id(node) not in self.called:
            raise Refusal("string-dispatch", node, f".{node.attr} must be called directly, not passed around")
        if not isinstance(node.ctx, ast.Load):
            raise Refusal("attribute-assign", node, f"assigning attribute {node.attr!r} is not allowed")
        self._expr(node.value, scopes)

    def _x_subscript(self, node: ast.Subscript, scopes: Scopes) -> None:
        self._expr(node.value, scopes)
        self._expr(node.slice, scopes)

    def _x_slice(self, node: ast.Slice, scopes: Scopes) -> None:
        self._each((node.lower, node.upper, node.step), scopes)

    def _x_starred(self, node: ast.Starred, scopes: Scopes) -> None:
        self._expr(node.value, scopes)

    def _x_binop(self, node: ast.BinOp, scopes: Scopes) -> None:
        op = node.op
        if isinstance(op, (ast.Pow, ast.LShift, ast.Mult)):
            if const_int(node) is TOO_BIG:
                raise Refusal("huge-size", node, f"integer constant expression beyond {MAX_INT_BITS} bits")
            if isinstance(op, ast.Mult):
                for seq, count in ((node.left, node.right), (node.right, node.left)):
                    if is_sequence(seq) and is_big(const_int(count), MAX_REPEAT):
                        raise Refusal("huge-size", node, f"sequence repeated more than {MAX_REPEAT:,} times")
        self._expr(node.left, scopes)
        self._expr(node.right, scopes)

    def _x_unaryop(self, node: ast.UnaryOp, scopes: Scopes) -> None:
        self._expr(node.operand, scopes)

    def _x_boolop(self, node: ast.BoolOp, scopes: Scopes) -> None:
        self._each(node.values, scopes)

    def _x_compare(self, node: ast.Compare, scopes: Scopes) -> None:
        self._expr(node.left, scopes)
        self._each(node.comparators, scopes)

    def _x_ifexp(self, node: ast.IfExp, scopes: Scopes) -> None:
        self._each((node.test, node.body, node.orelse), scopes)

    def _x_elts(self, node: ast.List | ast.Tuple | ast.Set, scopes: Scopes) -> None:
        if isinstance(getattr(node, "ctx", None), (ast.Store, ast.Del)):
            self._target(node, scopes)
            return
        self._literal_count(node, node.elts)
        self._each(node.elts, scopes)

    def _x_dict(self, node: ast.Dict, scopes: Scopes) -> None:
        self._literal_count(node, [*node.keys, *node.values])
        self._each(node.keys, scopes)
        self._each(node.values, scopes)

    def _x_joinedstr(self, node: ast.JoinedStr, scopes: Scopes) -> None:
        self._each(node.values, scopes)

    def _x_formatted(self, node: ast.FormattedValue, scopes: Scopes) -> None:
        self._each((node.value, node.format_spec), scopes)

    def _x_namedexpr(self, node: ast.NamedExpr, scopes: Scopes) -> None:
        self._target(node.target, scopes)
        self._expr(node.value, scopes)

    def _x_lambda(self, node: ast.Lambda, scopes: Scopes) -> None:
        self._each(node.args.defaults, scopes)
        self._each(node.args.kw_defaults, scopes)
        inner = scopes + (set(),)
        for arg in arg_names(node.args):
            self._bind(arg.arg, node, inner, "parameter")
        self._expr(node.body, inner)

    def _comprehension(self, node: ast.AST, generators: list[ast.comprehension],
                       parts: Iterable[ast.AST], scopes: Scopes) -> None:
        inner = scopes + (set(),)
        for gen in generators:
            if gen.is_async:
                raise Refusal("expression", node, "async comprehensions are not allowed")
            self._target(gen.target, inner)
            self._expr(gen.iter, inner)
            self._each(gen.ifs, inner)
        self._each(parts, inner)

    def _x_comp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp, scopes: Scopes) -> None:
        self._comprehension(node, node.generators, [node.elt], scopes)

    def _x_dictcomp(self, node: ast.DictComp, scopes: Scopes) -> None:
        self._comprehension(node, node.generators, [node.key, node.value], scopes)

    def _x_call(self, node: ast.Call, scopes: Scopes) -> None:
        func = node.func
        self.called.add(id(func))
        self._expr(func, scopes)
        if isinstance(func, ast.Attribute):
            callee = func.attr
        else:
            callee = func.id if isinstance(func, ast.Name) else ""
        if callee in DISPATCH_TABLE:
            self.dispatches.append((node, callee))
        if callee == "str" and len(node.args) == 1 and isinstance(node.args[0], ast.Name):
            self.str_args.add(id(node.args[0]))
        if callee in TZ_CALLS and node.args:
            self._timezone(node.args[0])
        for kw in node.keywords:
            if kw.arg in TZ_KEYWORDS:
                self._timezone(kw.value)
        if callee in ALLOCATING_CALLS:
            sizes = list(node.args) + [k.value for k in node.keywords if k.arg in SIZE_KEYWORDS]
            for size in sizes:
                if is_big(const_count(size), MAX_ELEMENTS):
                    raise Refusal("huge-size", node, f"{callee}() asked for more than {MAX_ELEMENTS:,} elements")
        self._each(node.args, scopes)
        for kw in node.keywords:
            if kw.arg is not None and kw.arg.startswith("_"):
                raise Refusal("private-name", kw, f"keyword {kw.arg!r} starts with '_'")
            if kw.arg == "aggfunc" and callee not in DISPATCH_TABLE:  # any call taking aggfunc dispatches too
                self._callable_spec(kw.value, callee or "aggfunc")
            self._expr(kw.value, scopes)

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
