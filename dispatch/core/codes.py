"""The one rule for codes: the identifiers the hub prints on labels, scans back and puts in
addresses (villages, shelters, hazard zones, roads, sensors, gateways, …).

A code is 1 to `max_len` ASCII letters, digits, "-", "_" and ".", starting with a letter or a
digit. What that keeps out, and why:
- "/" (an address segment cannot hold it: `/api/v1/villages/a/b` names no village), and the
  codes "." and ".." (clients resolve them away from the path);
- NUL and other control characters (PostgreSQL text refuses NUL; a label printer stops at it);
- bidirectional overrides (U+202A-202E, U+2066-2069: "Trojan Source", the shown code differs
  from the stored one) and zero-width characters (U+200B-200D, U+FEFF), which make two codes
  that look the same;
- look-alike letters from other scripts (Cyrillic "А" beside Latin "A"), and spaces, which
  scanners and spreadsheets trim.
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l

from dispatch.core.errors import BadRequest, field_error

CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*", re.ASCII)


def is_code(value: Any, max_len: int = 64) -> bool:
    """Whether `value` is a well-formed code of at most `max_len` characters."""
    return isinstance(value, str) and len(value) <= max_len and CODE.fullmatch(value) is not None


def check_code(field: str, value: Any, max_len: int = 64) -> str:
    """`value` if it is a well-formed code, else a 400 `bad_field` naming `field`."""
    if not is_code(value, max_len):
        raise code_error(field, max_len)
    return value


def code_error(field: str, max_len: int = 64) -> BadRequest:
    """The 400 for a malformed code in `field`."""
    return field_error(field, _l("must be a code of 1-%(max)d characters: ASCII letters, digits, "
                                 "“-”, “_” and “.”, starting with a letter or digit",
                                 max=max_len))
