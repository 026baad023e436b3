"""Compile value expressions and predicates from the rule model into plain closures.

Compiling once at load time keeps the hot path to a few dictionary lookups and comparisons per
rule per reading. Unknown inputs propagate as ``None`` (three-valued logic): a rule never fires on
a value it does not have, and never clears because a value went missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from rules.model import AllOf, AnyOf, Compare, Expr, NotOf

Values = Mapping[str, Any]
ValueFn = Callable[[Values], Any]
NumFn = Callable[[Values], float | None]
PredFn = Callable[[Values], bool | None]


def as_number(value: Any) -> float | None:
    """Numbers and booleans are numeric; text and missing values are not."""
    if value is None or isinstance(value, str):
        return None
    return float(value)


def compile_value(expr: str | Expr) -> ValueFn:
    """A metric name returns the raw value (number, bool or enum text); an ``Expr`` a number."""
    if isinstance(expr, str):
        name = expr

        def metric(values: Values) -> Any:
            return values.get(name)

        return metric
    return _compile_expr(expr)


def compile_number(expr: str | Expr) -> NumFn:
    if isinstance(expr, str):
        name = expr

        def metric(values: Values) -> float | None:
            v = values.get(name)
            if v is None or isinstance(v, str):
                return None
            return float(v)

        return metric
    return _compile_expr(expr)


def _compile_expr(expr: Expr) -> NumFn:
    op = expr.op
    arg = getattr(expr, op)
    if op == "abs":
        inner = compile_number(arg)

        def absolute(values: Values) -> float | None:
            v = inner(values)
            return None if v is None else abs(v)

        return absolute
    parts = [compile_number(a) for a in arg]
    reduce: Callable[[list[float]], float | None]
    if op == "min":
        reduce = min
    elif op == "max":
        reduce = max
    elif op == "sum":
        reduce = sum
    elif op == "product":
        reduce = math.prod
    elif op == "mean":
        reduce = _mean
    elif op == "spread":
        reduce = _spread
    elif op == "diff":
        reduce = _diff
    elif op == "ratio":
        reduce = _ratio
    else:  # pragma: no cover - the model only admits the operators above
        raise AssertionError(op)

    def combined(values: Values) -> float | None:
        nums: list[float] = []
        for part in parts:
            v = part(values)
            if v is None:
                return None
            nums.append(v)
        return reduce(nums)

    return combined


def _mean(nums: list[float]) -> float:
    return sum(nums) / len(nums)


def _spread(nums: list[float]) -> float:
    return max(nums) - min(nums)


def _diff(nums: list[float]) -> float:
    return nums[0] - nums[1]


def _ratio(nums: list[float]) -> float | None:
    return None if nums[1] == 0 else nums[0] / nums[1]


def compile_predicate(pred: AllOf | AnyOf | NotOf | Compare) -> PredFn:
    if isinstance(pred, AllOf):
        subs = [compile_predicate(p) for p in pred.all]

        def all_of(values: Values) -> bool | None:
            unknown = False
            for sub in subs:
                r = sub(values)
                if r is False:
                    return False
                if r is None:
                    unknown = True
            return None if unknown else True

        return all_of
    if isinstance(pred, AnyOf):
        subs = [compile_predicate(p) for p in pred.any]

        def any_of(values: Values) -> bool | None:
            unknown = False
            for sub in subs:
                r = sub(values)
                if r is True:
                    return True
                if r is None:
                    unknown = True
            return None if unknown else False

        return any_of
    if isinstance(pred, NotOf):
        sub = compile_predicate(pred.not_)

        def not_of(values: Values) -> bool | None:
            r = sub(values)
            return None if r is None else not r

        return not_of
    return _compile_compare(pred)


def _compile_compare(cmp: Compare) -> PredFn:
    get = compile_value(cmp.metric)
    tests: list[Callable[[Any], bool | None]] = []
    if cmp.eq is not None:
        tests.append(_equals(cmp.eq, negate=False))
    if cmp.ne is not None:
        tests.append(_equals(cmp.ne, negate=True))
    if cmp.in_ is not None:
        tests.append(_member(cmp.in_, negate=False))
    if cmp.not_in is not None:
        tests.append(_member(cmp.not_in, negate=True))
    for bound, check in (
        (cmp.above, float.__gt__),
        (cmp.below, float.__lt__),
        (cmp.at_least, float.__ge__),
        (cmp.at_most, float.__le__),
    ):
        if bound is not None:
            tests.append(_numeric(check, float(bound)))
    if cmp.bit is not None:
        tests.append(_bit(cmp.bit, want=True))
    if cmp.bit_clear is not None:
        tests.append(_bit(cmp.bit_clear, want=False))

    if len(tests) == 1:
        only = tests[0]

        def single(values: Values) -> bool | None:
            v = get(values)
            return None if v is None else only(v)

        return single

    def several(values: Values) -> bool | None:
        v = get(values)
        if v is None:
            return None
        unknown = False
        for test in tests:
            r = test(v)
            if r is False:
                return False
            if r is None:
                unknown = True
        return None if unknown else True

    return several


def _norm(value: Any) -> Any:
    # enum text compares case-insensitively; numbers compare by value (1 == 1.0 == True)
    return value.lower() if isinstance(value, str) else value


def _equals(expected: Any, *, negate: bool) -> Callable[[Any], bool | None]:
    want = _norm(expected)

    def test(v: Any) -> bool | None:
        return bool(_norm(v) == want) != negate

    return test


def _member(options: list[Any], *, negate: bool) -> Callable[[Any], bool | None]:
    wanted = [_norm(o) for o in options]

    def test(v: Any) -> bool | None:
        return (_norm(v) in wanted) != negate

    return test


def _numeric(check: Callable[[float, float], bool], bound: float) -> Callable[[Any], bool | None]:
    def test(v: Any) -> bool | None:
        if isinstance(v, str):
            return None
        return check(float(v), bound)

    return test


def _bit(index: int, *, want: bool) -> Callable[[Any], bool | None]:
    mask = 1 << index

    def test(v: Any) -> bool | None:
        if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v):
            return None
        return bool(int(v) & mask) == want

    return test


def metrics_of(node: Any) -> set[str]:
    """Every metric name a rule, condition, predicate or expression refers to."""
    found: set[str] = set()
    _collect(node, found)
    return found


def _collect(node: Any, found: set[str]) -> None:
    if isinstance(node, Expr):
        arg = getattr(node, node.op)
        for item in arg if isinstance(arg, list) else [arg]:
            if isinstance(item, str):
                found.add(item)
            else:
                _collect(item, found)
        return
    if isinstance(node, list):
        for item in node:
            _collect(item, found)
        return
    if not isinstance(node, BaseModel):
        return
    for name in type(node).model_fields:
        value = getattr(node, name)
        if value is None:
            continue
        if name in ("metric", "increase", "value") and isinstance(value, str):
            found.add(value)
        elif name in (
            "id",
            "severity",
            "kinds",
            "devices",
            "profiles",
            "description",
            "message",
            "clear_message",
            "labels",
            "timezone",
            "priority",
        ):
            continue
        else:
            _collect(value, found)
