"""The gate's checks on expressions, one handler a node type; mixed into the tree walker of ``gate.py``.

Split from ``gate.py`` at the seam between statements (scopes, bindings, the contract: there) and
expressions (names, attributes, literals, calls: here), so each module stays readable on its own.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
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
    is_sequence,
    private,
)
from sandbox.gate_tables import (
    ALLOCATING_CALLS,
    ALLOWED_CHAINS,
    DISPATCH_TABLE,
    MAX_DEPTH,
    MAX_ELEMENTS,
    MAX_INT_BITS,
    MAX_LITERAL_INT_BITS,
    MAX_LITERAL_STRING,
    MAX_REPEAT,
    SIZE_KEYWORDS,
    TZ_CALLS,
    TZ_KEYWORDS,
    TZ_POSITIONS,
)

Scopes = tuple[set[str], ...]


class ExprChecks(CallChecks):
    """Every expression a region may hold, checked as the walker reaches it; anything else is refused.

    The statement walker that mixes this in provides ``_target`` and ``_bind`` (it owns the scopes).
    """

    depth: int
    loads: list[tuple[ast.Name, Scopes]]
    dispatches: list[tuple[ast.Call, str]]
    called: set[int]
    str_args: set[int]
    docstrings: set[int]
    expr_handlers: dict[type, Callable[[Any, Scopes], None]]

    def _expr_handlers(self) -> dict[type, Callable[[Any, Scopes], None]]:
        return {
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
        if id(node) not in self.docstrings:
            self._literal_data(node)
        if isinstance(value, (str, bytes)):
            if "dateutil" in str(value):
                raise Refusal("timezone", node, "'dateutil' time zones open files; use a plain IANA name such as "
                               "'America/New_York'")
            if isinstance(value, str):
                self._dtype_string(node, value)
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
        if node.attr in DISPATCH_TABLE and id(node) not in self.called:
            # bound to a name, passed on or returned, its arguments could not be checked where it is called
            raise Refusal("string-dispatch", node, f".{node.attr} must be called directly, not bound to a name or "
                           "passed around")
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
        if callee in TZ_POSITIONS and len(node.args) > TZ_POSITIONS[callee]:
            self._timezone(node.args[TZ_POSITIONS[callee]])
        if callee == "astype" and node.args:
            self._dtype(node.args[0])
        for kw in node.keywords:
            if kw.arg in TZ_KEYWORDS:
                self._timezone(kw.value)
            elif kw.arg == "dtype":
                self._dtype(kw.value)
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
