"""Grading answers: apportion's sympy-based `equivalent` against math-verify, on the same cases.

Cases are GSM8K- and MATH-style (final answers as models write them, against gold answers as the datasets
write them), each with the verdict a careful human gives. Reports agreement with that verdict and time per
check for each grader. math-verify is optional: `pip install "math-verify[antlr4_13_2]"` to include it.

    python bench/grading.py [--out bench/results/grading.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from answers.equivalence import equivalent

# (answer as extracted from a sample, gold answer, same value?)
CASES: list[tuple[str, str, bool]] = [
    ("72", "72", True),
    ("72.0", "72", True),
    ("1,200", "1200", True),
    ("$18", "18", True),
    ("18.00", "18", True),
    ("-3", "-3", True),
    ("0.25", "1/4", True),
    ("25\\%", "0.25", True),
    ("5", "6", False),
    ("1200", "120", False),
    ("\\frac{1}{2}", "\\frac12", True),
    ("\\dfrac{3}{4}", "0.75", True),
    ("\\frac{2}{4}", "\\frac{1}{2}", True),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
    ("2\\sqrt{3}", "\\sqrt{12}", True),
    ("\\sqrt{8}", "3", False),
    ("\\pi", "3.14", False),
    ("2\\pi", "\\pi\\cdot 2", True),
    ("x^2+2x+1", "(x+1)^2", True),
    ("(x-1)(x+1)", "x^2-1", True),
    ("x^2-1", "x^2+1", False),
    ("\\frac{x}{2}", "0.5x", True),
    ("10\\text{ cm}", "10", True),
    ("90^\\circ", "90", True),
    ("(1,2)", "(1, 2)", True),
    ("(1,2)", "(2,1)", False),
    ("\\left(3, 4\\right)", "(3,4)", True),
    ("\\frac{1}{3}", "0.333", False),
    ("7", "\\boxed{7}", True),
    ("\\boxed{\\frac{5}{2}}", "2.5", True),
    ("9^{9^{9^9}}", "9^{9^{9^9}}", True),
    ("9^{9^{9^9}}", "9^{9^{9^8}}", False),
    ("2^{10}", "1024", True),
    ("3x", "x3", True),
    ("\\frac{7}{3}", "2\\frac{1}{3}", True),
    ("1/0", "0", False),
    ("", "3", False),
    ("e^{i\\pi}", "-1", True),
    ("\\infty", "\\infty", True),
    ("0.1", "\\frac{1}{10}", True),
]


def time_grader(check: Callable[[str, str], bool]) -> dict[str, object]:
    verdicts, seconds = [], []
    for answer, gold, _ in CASES:
        started = time.perf_counter()
        try:
            verdicts.append(bool(check(answer, gold)))
        except Exception:  # a grader that raises has judged nothing
            verdicts.append(None)
        seconds.append(time.perf_counter() - started)
    wrong = [f"{a!r} vs {g!r}" for (a, g, truth), v in zip(CASES, verdicts, strict=True) if v is not truth]
    return {
        "right": len(CASES) - len(wrong),
        "cases": len(CASES),
        "median_ms": statistics.median(seconds) * 1e3,
        "max_ms": max(seconds) * 1e3,
        "wrong": wrong,
    }


def math_verify_check() -> Callable[[str, str], bool] | None:
    try:
        from math_verify import parse, verify  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None

    def check(answer: str, gold: str) -> bool:
        wrap = lambda text: text if "\\boxed" in text else f"${text}$"  # noqa: E731
        return bool(verify(parse(wrap(gold)), parse(wrap(answer))))

    return check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "grading.json")
    args = parser.parse_args()
    report: dict[str, object] = {"apportion": time_grader(equivalent)}
    other = math_verify_check()
    report["math_verify"] = time_grader(other) if other else "not installed"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, result in report.items():
        if isinstance(result, dict):
            print(
                f"{name:12} {result['right']}/{result['cases']} right, median {result['median_ms']:.2f} ms, "
                f"max {result['max_ms']:.1f} ms; wrong on: {', '.join(result['wrong']) or 'none'}"
            )
        else:
            print(f"{name:12} {result}")


if __name__ == "__main__":
    main()
