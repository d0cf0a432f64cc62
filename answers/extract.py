"""Final answers out of generated text, in one canonical form so that equal answers vote together.

Extraction tries, in order: a configured pattern, `\\boxed{...}` (MATH), `#### x` (GSM8K), "the answer is x",
then the last number in the text. Answers are canonicalised so that "1,200", "1200.0" and "$1200" agree.
"""

from __future__ import annotations

import functools
import re

_GSM8K = re.compile(r"####\s*([^\n]+)")
_ANSWER_IS = re.compile(r"answer is[:\s]*\$?\s*([^\n]+?)\s*(?:\.\s*$|\.\s|$)", re.IGNORECASE | re.MULTILINE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_PLAIN_NUMBER = re.compile(r"-?[\d,]*\.?\d+")


def extract_answer(text: str, pattern: re.Pattern[str] | None = None) -> str | None:
    """The canonical final answer of `text`, or None when it states none. A `pattern`'s first group wins."""
    if pattern is not None:
        found = pattern.findall(text)
        if found:
            last = found[-1]
            return canonical(last[0] if isinstance(last, tuple) else last)
    boxed = last_boxed(text)
    if boxed is not None:
        return canonical(boxed)
    for rule in (_GSM8K, _ANSWER_IS):
        matches = rule.findall(text)
        if matches:
            return canonical(matches[-1])
    numbers = _NUMBER.findall(text)
    return canonical(numbers[-1]) if numbers else None


@functools.lru_cache(maxsize=65536)  # a few distinct answers recur across many samples
def canonical(answer: str) -> str | None:
    """Strip dollars, units' punctuation and spaces; numbers lose thousands separators and a trailing `.0`."""
    value = answer.strip().strip("$").strip().rstrip(".").strip()
    if value.startswith("\\boxed{") and value.endswith("}"):
        value = value[len("\\boxed{") : -1]
    if _PLAIN_NUMBER.fullmatch(value):
        value = value.replace(",", "")
        if "." in value:
            value = value.rstrip("0").rstrip(".") or "0"
        if value in ("-0", ""):
            value = "0"
        return value
    value = re.sub(r"\s+", "", value)
    return value or None


def last_boxed(text: str) -> str | None:
    """The contents of the last `\\boxed{...}`, braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for position in range(begin, len(text)):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            if depth == 0:
                return text[begin:position]
            depth -= 1
    return None
