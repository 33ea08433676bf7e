"""AST helpers of the gate: refusals, constant folding, attribute rules and the call-argument checks.

``sandbox/gate.py`` walks the tree; the checks here look at one node (or one call's arguments).
"""

from __future__ import annotations

import ast
import string
from typing import Any

from sandbox.gate_tables import (
    DISPATCH_METHODS,
    DISPATCH_OPTION_KEYWORDS,
    DISPATCH_TABLE,
    DTYPE_NAMES,
    DTYPE_STARTS,
    IANA_NAME,
    INTERNAL_ATTRS,
    INTROSPECTION_ATTRS,
    IO_ATTRS,
    MAX_INT_BITS,
    MAX_LITERAL_CHARS,
    MAX_LITERAL_ELEMENTS,
    MAX_LITERAL_TOTAL,
    MODULE_NAMES,
    OPTIONS_ATTRS,
    REDUCER_STRINGS,
    SAFE_FUNCTIONS,
    SAFE_TO_ATTRS,
    STRING_EVAL_ATTRS,
    TZ_DTYPE,
)

TOO_BIG = object()


class Refusal(Exception):
    def __init__(self, rule: str, node: ast.AST | None, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.line = getattr(node, "lineno", None)
        self.message = message


def attribute_refusal(attr: str) -> tuple[str, str] | None:
    """Return ``(rule, why)`` when an attribute name is never allowed, else None.

    Shared with the tests that walk everything reachable from ``pd`` and ``np``.
    """
    if attr.startswith("_"):
        return "private-name", f"attribute {attr!r} starts with '_'"
    if attr in INTROSPECTION_ATTRS:
        return "introspection", f"attribute {attr!r} reaches frames, code or tracebacks"
    if attr in STRING_EVAL_ATTRS:
        return "string-eval", f"attribute {attr!r} evaluates strings as code"
    if attr.startswith("read_") or attr in IO_ATTRS:
        return "io", f"attribute {attr!r} reads, writes or inspects files"
    if attr.startswith("to_") and attr not in SAFE_TO_ATTRS:
        return "io", f"attribute {attr!r} is a writer (only {', '.join(sorted(SAFE_TO_ATTRS)[:4])}, ... are allowed)"
    if attr in OPTIONS_ATTRS:
        return "options", f"attribute {attr!r} changes global options or plots"
    if attr in INTERNAL_ATTRS:
        return "internals", f"attribute {attr!r} reaches library internals or the system"
    return None


def dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def const_int(node: ast.AST) -> object:
    """Fold an integer constant expression without ever computing a huge number."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = const_int(node.operand)
        if isinstance(inner, int):
            return -inner if isinstance(node.op, ast.USub) else inner
        return inner
    if isinstance(node, ast.BinOp):
        left, right = const_int(node.left), const_int(node.right)
        if left is TOO_BIG or right is TOO_BIG:
            return TOO_BIG
        if not (isinstance(left, int) and isinstance(right, int)):
            return None
        op = node.op
        if isinstance(op, ast.Pow):
            if right < 0:
                return None
            if abs(left) > 1 and right * abs(left).bit_length() > MAX_INT_BITS:
                return TOO_BIG
            value = left**right
        elif isinstance(op, ast.LShift):
            if right < 0:
                return None
            if right + abs(left).bit_length() > MAX_INT_BITS:
                return TOO_BIG
            value = left << right
        elif isinstance(op, ast.Mult):
            value = left * right
        elif isinstance(op, ast.Add):
            value = left + right
        elif isinstance(op, ast.Sub):
            value = left - right
        elif isinstance(op, ast.FloorDiv) and right:
            value = left // right
        else:
            return None
        return TOO_BIG if abs(value).bit_length() > MAX_INT_BITS else value
    return None


def const_count(node: ast.AST) -> object:
    """Element count of a constant size or shape (a tuple multiplies), or None."""
    if isinstance(node, (ast.Tuple, ast.List)):
        total = 1
        for elt in node.elts:
            part = const_count(elt)
            if part is TOO_BIG:
                return TOO_BIG
            if not isinstance(part, int):
                return None
            total *= max(part, 0)
        return total
    return const_int(node)


def is_big(value: object, limit: int) -> bool:
    return value is TOO_BIG or (isinstance(value, int) and abs(value) > limit)


def is_literal(node: ast.AST) -> bool:
    """A constant that a top-level assignment may bind (numbers, strings and containers of them)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return is_literal(node.operand)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(is_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and is_literal(k) for k in node.keys) and all(
            is_literal(v) for v in node.values
        )
    if isinstance(node, ast.BinOp):
        return is_literal(node.left) and is_literal(node.right) and const_int(node) is not TOO_BIG
    return False


def is_sequence(node: ast.AST) -> bool:
    return isinstance(node, (ast.List, ast.Tuple, ast.ListComp, ast.JoinedStr)) or (
        isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))
    )


def private(name: str) -> bool:
    """Dunder names stay refused; a region's own ``_helper`` or ``_WINDOW`` is an ordinary name."""
    return name.startswith("__")


def arg_names(args: ast.arguments) -> list[ast.arg]:
    out = list(args.posonlyargs) + list(args.args) + list(args.kwonlyargs)
    out += [a for a in (args.vararg, args.kwarg) if a is not None]
    return out


def loop_exits(body: list[ast.stmt]) -> bool:
    """True when a ``while`` body can leave the loop: a break at its level, a return or a raise."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Return, ast.Raise)):
            return True
        if isinstance(node, ast.Break):
            return True
        if isinstance(node, (ast.For, ast.While)):
            stack.extend(n for n in ast.walk(node) if isinstance(n, (ast.Return, ast.Raise)))
            continue
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


class CallChecks:
    """Checks on one call's arguments and one literal; mixed into the gate's tree walker."""

    def_names: set[str]
    rebound: set[str]
    literal_total: int
    literal_seen: set[tuple[str, str]]
    literal_chars: int

    def _literal_data(self, node: ast.Constant) -> None:
        """Count each distinct number (its digits) and string or bytes (its characters) once, whole."""
        value = node.value
        if value is None or isinstance(value, bool) or value is Ellipsis:
            return
        if isinstance(value, (str, bytes)):
            key, size = (type(value).__name__, repr(value)), len(value)
        else:
            text = repr(abs(value)) if isinstance(value, (int, float)) else repr(value)
            key, size = ("number", text), sum(ch.isdigit() for ch in text)
        if key in self.literal_seen:
            return
        self.literal_seen.add(key)
        self.literal_chars += size
        if self.literal_chars > MAX_LITERAL_CHARS:
            raise Refusal("literal-data", node, f"the region holds more than {MAX_LITERAL_CHARS} characters of literal "
                           "data (every distinct number's digits and every distinct string's characters, counted "
                           "whole; docstrings excepted): keep parameters to a few numbers and short column names, "
                           "and compute everything else from the data; do not embed tables of dates, prices, rows "
                           "or outcomes")

    def _dtype_string(self, node: ast.AST, value: str) -> None:
        """Text that begins a datetime dtype must be a whole dtype, its time zone (if any) a plain IANA name."""
        if not DTYPE_STARTS.search(value):
            return
        match = TZ_DTYPE.fullmatch(value)
        if match is None and ("," not in value and value.strip().endswith("]")):
            return  # "datetime64[ns]": no time zone
        if match is not None and IANA_NAME.fullmatch(match.group(3).strip()):
            return
        raise Refusal("timezone", node, "a datetime dtype string must be written whole, with a plain IANA time zone "
                       "such as 'datetime64[ns, America/New_York]' (no paths, no pieces joined later)")

    def _dtype(self, node: ast.AST) -> None:
        """A dtype is written out (float, 'float64', np.int32, a column's .dtype), never computed text:
        a dtype string can name a time zone, and time zones come only from plain IANA names."""
        if isinstance(node, ast.Constant):
            return  # a literal string is checked as a constant (``_dtype_string``)
        if isinstance(node, ast.Name) and node.id in DTYPE_NAMES and node.id not in self.rebound:
            return
        if isinstance(node, ast.Attribute):
            path = dotted(node)
            root = path.split(".")[0] if path else ""
            if (root in MODULE_NAMES and root not in self.rebound) or node.attr in ("dtype", "dtypes"):
                return
        if isinstance(node, ast.Call) and all(isinstance(a, ast.Constant) for a in node.args) \
                and all(isinstance(k.value, ast.Constant) for k in node.keywords):
            path = dotted(node.func)
            if path and path.split(".")[0] in MODULE_NAMES and path.split(".")[0] not in self.rebound:
                return
        if isinstance(node, ast.Dict):
            for value in node.values:
                self._dtype(value)
            return
        raise Refusal("timezone", node, "a dtype must be written out (float, 'float64', np.int32, a column's .dtype), "
                       "not computed: a dtype string can name a time zone, and time zones come only from plain "
                       "IANA names")

    def _literal_count(self, node: ast.AST, elts: list[Any]) -> None:
        constants = sum(1 for e in elts if isinstance(e, (ast.Constant, ast.UnaryOp)))
        if len(elts) > MAX_LITERAL_ELEMENTS:
            raise Refusal("literal-data", node, f"a literal collection of {len(elts)} elements (limit "
                           f"{MAX_LITERAL_ELEMENTS}): parameters are a few numbers; do not embed data or row lists")
        self.literal_total += constants
        if self.literal_total > MAX_LITERAL_TOTAL:
            raise Refusal("literal-data", node, f"more than {MAX_LITERAL_TOTAL} constants in literal collections: "
                           "do not embed data or row lists in the region")
    def _format_receiver(self, node: ast.Attribute) -> None:
        value = node.value
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            raise Refusal("format-string", node, f".{node.attr}() is only allowed on a literal string")
        pending = [value.value]
        while pending:
            try:
                fields = list(string.Formatter().parse(pending.pop()))
            except ValueError as exc:
                raise Refusal("format-string", node, f"unparsable format string: {exc}") from None
            for _, field, spec, _ in fields:
                if field and ("." in field or "[" in field):
                    raise Refusal("format-string", node,
                                   f"format field {field!r} reaches into attributes or items")
                if spec:
                    pending.append(spec)
    def _timezone(self, node: ast.AST) -> None:
        """A time zone must be a literal IANA name (or None): other strings open files or paths."""
        if isinstance(node, ast.Constant) and node.value is None:
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and IANA_NAME.fullmatch(node.value):
            return
        raise Refusal("timezone", node, "time zones must be a literal IANA name such as 'UTC' or "
                       "'America/New_York' (no paths, no 'dateutil/' prefix, no computed names)")

    def _dispatch(self, node: ast.Call, method: str) -> None:
        receiver = dotted(node.func.value) if isinstance(node.func, ast.Attribute) else None
        if receiver is not None and "." in receiver and receiver.split(".")[0] in MODULE_NAMES:
            # pd.DataFrame.pivot_table(df, ...): the unbound method shifts every position by one
            raise Refusal("string-dispatch", node, f"call .{method}() on a frame or series, not through {receiver}")
        if method not in DISPATCH_METHODS:
            self._dispatch_at(node, method)
            return
        if node.args and isinstance(node.args[0], ast.Starred):
            raise Refusal("string-dispatch", node, f"cannot verify the function passed to .{method}()")
        if node.args:
            self._callable_spec(node.args[0], method)
        for kw in node.keywords:
            if kw.arg is None:
                raise Refusal("string-dispatch", kw.value, f"**kwargs in .{method}() cannot be verified")
            if kw.arg in DISPATCH_OPTION_KEYWORDS:
                continue
            value = kw.value
            if kw.arg not in ("func", "arg") and isinstance(value, ast.Tuple) and len(value.elts) == 2:
                value = value.elts[1]
            self._callable_spec(value, method)

    def _dispatch_at(self, node: ast.Call, method: str) -> None:
        """filter, pivot_table, crosstab: only the places the table names take a function."""
        positions, keywords = DISPATCH_TABLE[method]
        if method == "pivot_table":
            receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
            positions = (4,) if isinstance(receiver, ast.Name) and receiver.id == "pd" else (3,)
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise Refusal("string-dispatch", node, f"cannot verify the arguments of .{method}() given with * or **")
        for pos in positions:
            if pos < len(node.args):
                arg = node.args[pos]
                if method == "filter" and isinstance(arg, (ast.List, ast.Tuple)):
                    continue  # DataFrame.filter(items): labels, not a function
                self._callable_spec(arg, method)
        for kw in node.keywords:
            if kw.arg in keywords:
                self._callable_spec(kw.value, method)

    def _callable_spec(self, node: ast.AST, method: str) -> None:
        """The function given to apply/agg/transform/pipe must visibly be a function or a reducer name."""
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, ast.Name) and node.id not in self.rebound and (
            node.id in self.def_names or node.id in SAFE_FUNCTIONS
        ):
            return
        if isinstance(node, ast.Attribute):
            path = dotted(node)
            root = path.split(".")[0] if path else ""
            if root in MODULE_NAMES and root not in self.rebound:
                return
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in REDUCER_STRINGS:
                return
            raise Refusal("string-dispatch", node, f".{method}({node.value!r}) dispatches to a method by name; "
                          "only reducers such as 'mean', 'sum', 'std' are allowed")
        if isinstance(node, (ast.List, ast.Tuple)):
            for elt in node.elts:
                self._callable_spec(elt, method)
            return
        if isinstance(node, ast.Dict):
            for value in node.values:
                self._callable_spec(value, method)
            return
        raise Refusal("string-dispatch", node, f"cannot verify the function passed to .{method}(); use a lambda, "
                      "a helper defined here, an np/pd function or a reducer name")
