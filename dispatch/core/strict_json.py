"""Strict RFC 8259 JSON, the one decoder for every body the hub takes: API requests (through
dispatch.core.body) and gateway payloads (telemetry.decode). Pure: bytes in, values or
JsonRefused out.

- UTF-8 only (RFC 8259 §8.1); one leading BOM is tolerated.
- No NaN / Infinity / -Infinity literals (§6: not JSON, and a bare NaN sent on to a browser
  breaks its JSON.parse).
- No duplicate keys (§4: names SHOULD be unique, and parsers disagree on which one wins).
- A number that overflows a double (1e400, an integer of 309+ digits) is not finite: refused, or
  kept as infinity for a caller that gives it a reason of its own (ingest's `not_finite`).
- Nesting deeper than MAX_DEPTH is refused: Python's parser recurses, and a document 1,000 deep
  raised RecursionError (a 500) from Flask's get_json. The parser's own RecursionError is
  caught, and what it parsed is measured afterwards (measured on a batch of 1,000 readings:
  0.5 ms, against 2.5 ms for scanning the text before parsing).
- Text no database stores (NUL, an unpaired surrogate from a `\\ud800` escape, §8.2) is refused
  unless the caller checks its fields itself (ingest names the field in its `schema` reason).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

MAX_DEPTH = 64
_BOM = b"\xef\xbb\xbf"
# Python refuses to convert integers longer than this many digits (CVE-2020-10735 guard).
_INT_DIGITS = 4000
_CONTAINERS = (dict, list)
# Escapes that can decode to NUL or a surrogate (valid UTF-8 input holds neither raw).
_RISKY_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class JsonRefused(ValueError):
    """Bytes that are not strict JSON: `reason` is `bad_json` or `bad_encoding`, `problem` names
    the rule (for a translated message), `detail` says it in English (logs, dead letters)."""

    def __init__(self, reason: str, problem: str, detail: str, **params: Any):
        super().__init__(detail)
        self.reason = reason
        self.problem = problem
        self.detail = detail
        self.params = params


def _no_constants(name: str) -> NoReturn:
    raise JsonRefused("bad_json", "constant", f"{name} is not JSON (RFC 8259 §6)", name=name)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise JsonRefused("bad_json", "duplicate_key", f"duplicate key {key!r}",
                              key=key[:64])
        seen[key] = value
    return seen


def _integer(text: str) -> int | float:
    # A huge integer literal is valid JSON but no double: it overflows to infinity.
    return int(text) if len(text) <= _INT_DIGITS else float(text)


def _finite_integer(text: str) -> int:
    if len(text.lstrip("-")) > 308:  # |n| >= 1e308: near no double, past every column
        raise JsonRefused("bad_json", "overflow", f"the number {text[:20]}… is too large",
                          number=text[:20] + "…")
    return int(text)


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise JsonRefused("bad_json", "overflow", f"the number {text[:20]} is too large",
                          number=text[:20])
    return number


# One decoder per mode (json.loads with options builds a new one per call).
_KEEPING_INFINITY = json.JSONDecoder(parse_constant=_no_constants, parse_int=_integer,
                                     object_pairs_hook=_no_duplicates)
_FINITE = json.JSONDecoder(parse_constant=_no_constants, parse_int=_finite_integer,
                           parse_float=_finite_float, object_pairs_hook=_no_duplicates)


def deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether decoded arrays and objects nest more than `limit` deep."""
    if type(value) not in _CONTAINERS:
        return False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if type(item) is dict else item:
            if type(child) in _CONTAINERS:
                stack.append((child, depth + 1))
    return False


def _unstorable_text(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _too_deep(limit: int) -> JsonRefused:
    return JsonRefused("bad_json", "too_deep", f"nested more than {limit} deep", depth=limit)


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH, keep_infinity: bool = False,
          check_text: bool = True) -> Any:
    """Decode strict JSON from UTF-8 bytes (or text already decoded); JsonRefused says why not.

    keep_infinity: a number overflowing a double becomes inf instead of being refused.
    check_text: refuse strings holding NUL or an unpaired surrogate anywhere in the document."""
    if isinstance(raw, str):
        text = raw.removeprefix("\ufeff")
    else:
        try:
            text = raw.removeprefix(_BOM).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRefused("bad_encoding", "encoding", f"not UTF-8: {exc.reason} at byte "
                              f"{exc.start}", byte=exc.start) from None
    try:
        value = (_KEEPING_INFINITY if keep_infinity else _FINITE).decode(text)
    except json.JSONDecodeError as exc:
        raise JsonRefused("bad_json", "syntax", f"not JSON: {exc.msg} at line {exc.lineno} "
                          f"column {exc.colno}", line=exc.lineno, column=exc.colno) from None
    except RecursionError:
        raise _too_deep(max_depth) from None
    # Fewer brackets than the limit cannot nest past it: most payloads skip the walk.
    if text.count("[") + text.count("{") > max_depth and deeper_than(value, max_depth):
        raise _too_deep(max_depth)
    if check_text and _RISKY_ESCAPE.search(text) and _unstorable_text(value):
        raise JsonRefused("bad_json", "text", "a string holds NUL or an unpaired surrogate "
                          "(RFC 8259 §8.2)")
    return value
