"""Is a sample's final answer the gold answer? Math-aware: 0.5, 1/2, \\frac{1}{2}, \\dfrac12 and 50% agree.

Three steps, cheapest first: canonical strings (`answers.extract.canonical`), exact rational numbers, then
sympy on a small LaTeX-to-sympy translation, which decides `\\frac{\\sqrt{2}}{2}` = `\\frac{1}{\\sqrt{2}}`.
sympy runs only on short answers: no signal-based timeout is needed (those fail outside the main thread),
and nothing pathological (`9^{9^{9^9}}`) is ever evaluated, because powers are compared symbolically.
`bench/grading.py` measures this against math-verify.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache
from tokenize import TokenError

import sympy
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

from answers.extract import canonical

_LONGEST = 120  # characters: longer answers are compared as strings only
_TRANSFORMS = (*standard_transformations, implicit_multiplication_application, convert_xor)
_FRACTION = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_SHORT_FRACTION = re.compile(r"\\[dt]?frac\s*(\d)(\d)")
_MIXED = re.compile(r"(\d+)\s*\\[dt]?frac\s*\{(\d+)\}\s*\{(\d+)\}")
_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")


def equivalent(answer: str | None, gold: str | None) -> bool:
    """Whether `answer` states the same value as `gold` (None never does)."""
    if answer is None or gold is None:
        return False
    a, g = _clean(answer), _clean(gold)
    if not a or not g:
        return False
    if a == g:
        return True
    x, y = _rational(a), _rational(g)
    if x is not None and y is not None:
        return x == y
    if len(a) > _LONGEST or len(g) > _LONGEST:
        return False
    return _same_expression(a, g)


def _clean(text: str) -> str:
    value = canonical(text) or ""
    value = value.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\,", "")
    value = re.sub(r"\\text\{[^{}]*\}", "", value)  # units: \text{ cm}
    value = re.sub(r"\^\{?\\circ\}?", "", value)  # degrees
    value = value.removeprefix("x=").removeprefix("y=")
    return value.strip("$ ")


def _rational(text: str) -> Fraction | None:
    """Integers, decimals, a/b, \\frac{a}{b} and percentages, exactly."""
    value = text.replace(",", "")
    percent = value.endswith("\\%") or value.endswith("%")
    value = value.removesuffix("\\%").removesuffix("%")
    mixed = _MIXED.fullmatch(value)  # 2\frac{1}{3}: a whole number and a fraction
    fraction = _FRACTION.fullmatch(value) or _SHORT_FRACTION.fullmatch(value)
    try:
        if mixed:
            number = Fraction(mixed.group(1)) + Fraction(mixed.group(2)) / Fraction(mixed.group(3))
        elif fraction:
            number = Fraction(fraction.group(1)) / Fraction(fraction.group(2))
        elif "/" in value and value.count("/") == 1:
            top, bottom = value.split("/")
            number = Fraction(top) / Fraction(bottom)
        elif _NUMBER.fullmatch(value):
            number = Fraction(value)
        else:
            return None
    except (ValueError, ZeroDivisionError):
        return None
    return number / 100 if percent else number


_TOWER = re.compile(r"\^\s*\{[^{}]*\^|\^[\w.]*\^|\*\*[\w.]*\*\*")  # a power inside an exponent
_BIG_EXPONENT = re.compile(r"(\^|\*\*)\s*\{?\(?\s*(\d{4,})")


@lru_cache(maxsize=4096)
def _same_expression(a: str, g: str) -> bool:
    if any(_TOWER.search(x) or _BIG_EXPONENT.search(x) for x in (a, g)):
        return False  # towers and huge powers: equal only as written (checked before), never evaluated
    left, right = _sympy(a), _sympy(g)
    if left is None or right is None:
        return False
    try:
        return bool(sympy.simplify(left - right) == 0)
    except (TypeError, ValueError, AttributeError, RecursionError):
        return False


@lru_cache(maxsize=8192)
def _sympy(text: str) -> sympy.Expr | None:
    """A small LaTeX subset (fractions, roots, pi, cdot, powers in braces) as a sympy expression."""
    value = text
    value = re.sub(r"\\sqrt\[(\d+)\]\{([^{}]*)\}", r"((\2)**(1/(\1)))", value)
    value = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", value)
    value = re.sub(r"\\sqrt(\d+)", r"sqrt(\1)", value)
    for _ in range(4):  # nested fractions, inside out
        value = _FRACTION.sub(r"((\1)/(\2))", value)
    value = _SHORT_FRACTION.sub(r"((\1)/(\2))", value)
    value = value.replace("\\pi", "pi").replace("\\cdot", "*").replace("\\times", "*")
    value = value.replace("{", "(").replace("}", ")").replace("\\", "")
    if not re.fullmatch(r"[\w\s+\-*/^().]*", value):
        return None
    try:
        parsed = parse_expr(value, transformations=_TRANSFORMS, evaluate=False)
    except (SyntaxError, TypeError, ValueError, AttributeError, NameError, TokenError, RecursionError):
        return None
    return parsed if isinstance(parsed, sympy.Expr) else None
