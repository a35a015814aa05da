"""Reading the depot's request fields (no database): codes as scanned, bin paths, texts, dates,
quantities. Each reader returns the value as stored or raises the 400 `bad_field` naming the
field, in the request's language; the CSV imports turn the same errors into row reasons.

Codes are printed on labels and scanned, so they are case-insensitive: a code is read with the
kernel's code rule (dispatch.core.codes) and kept in upper case (depot.models).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l

from dispatch.core.codes import is_code
from dispatch.core.errors import field_error

# Column widths of depot.models.
CODE_MAX = 32
PATH_MAX = 128
NAME_MAX = 64
NAME_EN_MAX = 128
UNIT_MAX = 16
SERIAL_MAX = 64
CONDITION_MAX = 200
REASON_MAX = 200
PHONE_MAX = 32
# A bin path: the site, then up to three more parts (room, rack, shelf).
PATH_PARTS = (2, 4)
# The largest quantity one move or one stock line takes (the column holds 12 integer digits).
QTY_MAX = Decimal(10) ** 9
QTY_MAX_TEXT = f"{QTY_MAX:,}"
QTY_PLACES = 3
# Dates the depot takes (purchase, expiry, inspection): a plausible calendar, not year 1 or 9999.
YEARS = (1950, 2200)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def code(field: str, value: Any) -> str:
    """A code as stored (upper case); 400 unless it is a well-formed code."""
    if not is_code(value, CODE_MAX):
        raise field_error(field, _l("must be a code of 1-%(max)d characters: ASCII letters, "
                                    "digits, “-”, “_” and “.”, starting with a letter or digit",
                                    max=CODE_MAX))
    return value.upper()


def path(field: str, value: Any) -> str:
    """A bin path as stored (`SITE/room/rack/shelf`, 2-4 codes, upper case)."""
    parts = value.split("/") if isinstance(value, str) and len(value) <= PATH_MAX else []
    if not PATH_PARTS[0] <= len(parts) <= PATH_PARTS[1] \
            or not all(is_code(p, CODE_MAX) for p in parts):
        raise field_error(field, _l("must be a path SITE/room/rack/shelf: 2-4 codes joined by "
                                    "“/”, at most %(max)d characters, its first part a site's "
                                    "code", max=PATH_MAX))
    return "/".join(parts).upper()


def text(field: str, value: Any, max_len: int, *, required: bool = False) -> str:
    """A line of text, stripped; 400 when not text, too long, holding control characters, or
    empty when required."""
    if not isinstance(value, str):
        raise field_error(field, _l("must be text"))
    value = value.strip()
    if required and not value:
        raise field_error(field, _l("is required"))
    if len(value) > max_len:
        raise field_error(field, _l("is longer than %(max)d characters", max=max_len))
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise field_error(field, _l("must not hold control characters"))
    return value


def optional_text(field: str, value: Any, max_len: int) -> str:
    """Text, or "" for null."""
    return "" if value is None else text(field, value, max_len)


def flag(field: str, value: Any) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise field_error(field, _l("must be true or false"))
    return value


def choice(field: str, value: Any, choices: Collection[str]) -> str:
    """One of `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise field_error(field, _l("must be one of %(choices)s", choices=", ".join(choices)))
    return value


def day(field: str, value: Any) -> date | None:
    """A date as YYYY-MM-DD, or None for null."""
    if value is None:
        return None
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and YEARS[0] <= parsed.year <= YEARS[1]:
            return parsed
    raise field_error(field, _l("must be a date as YYYY-MM-DD (years %(first)d-%(last)d)",
                                first=YEARS[0], last=YEARS[1]))


def integer(field: str, value: Any, low: int, high: int) -> int:
    """A whole number from low to high."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise field_error(field, _l("must be a whole number from %(low)d to %(high)d",
                                    low=low, high=high))
    return value


def number(field: str, value: Any) -> Decimal:
    """A finite JSON number with at most three decimals, as a Decimal (not a boolean, not a
    numeric string), of at most QTY_MAX either way."""
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or (isinstance(value, float) and not math.isfinite(value)):
        raise field_error(field, _l("must be a number"))
    try:
        amount = Decimal(str(value))
    except InvalidOperation:  # pragma: no cover (str of a finite number always parses)
        raise field_error(field, _l("must be a number")) from None
    if abs(amount) > QTY_MAX:
        raise field_error(field, _l("must be at most %(max)s", max=QTY_MAX_TEXT))
    if amount != amount.quantize(Decimal(1).scaleb(-QTY_PLACES)):
        raise field_error(field, _l("must have at most %(places)d decimals",
                                    places=QTY_PLACES))
    return amount


def quantity(field: str, value: Any, *, whole: bool, signed: bool = False) -> Decimal:
    """A quantity of stock: more than zero (or any non-zero delta when `signed`), whole for a
    type counted in whole units."""
    amount = number(field, value)
    if amount == 0 or (amount < 0 and not signed):
        raise field_error(field, _l("must be more than zero") if not signed
                          else _l("must not be zero"))
    if whole and amount != amount.to_integral_value():
        raise field_error(field, _l("must be a whole number: this type is counted in whole "
                                    "units"))
    return amount


def recipient(field: str, value: Any, kinds: Collection[str]) -> tuple[str, str] | None:
    """`{"member"|"team"|"incident": code}` as (kind, code), or None for null."""
    if value is None:
        return None
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, who),) = value.items()
        if kind in kinds and is_code(who, CODE_MAX):
            return kind, who
    raise field_error(field, _l("must name one member, team or incident by code, e.g. "
                                "{\"team\": \"T000-FT\"}"))


def lon_lat(body: Mapping[str, Any]) -> tuple[float, float] | None:
    """`lon` and `lat` in WGS 84 (both or neither), or None when neither is given."""
    lon, lat = body.get("lon"), body.get("lat")
    if lon is None and lat is None:
        return None
    for name, value, bound in (("lon", lon, 180), ("lat", lat, 90)):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or abs(value) > bound:
            raise field_error(name, _l("must be a number from -%(bound)d to %(bound)d "
                                       "(WGS 84 degrees; give lon and lat together)",
                                       bound=bound))
    return float(lon), float(lat)


def amount_json(value: Decimal | None) -> int | float | None:
    """A stored quantity for JSON: an integer when whole."""
    if value is None:
        return None
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)
