"""The one reader of API request bodies: strict JSON (dispatch.core.strict_json) or a 400
`bad_json` in the request's language. Views call json_body()/json_object(), never get_json().
Also the kernel's guard on the rest of a request's text (no NUL in the address, query or form) and
the app's body limit, which packages raise for their own endpoints."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_babel import lazy_gettext as _l

from dispatch.core.errors import BadRequest, HubError
from dispatch.core.strict_json import JsonRefused, loads

# The largest request body the kernel's own endpoints take (JSON objects, forms). A package
# whose endpoints take more raises the app's limit in its init_app (raise_body_limit).
BODY_LIMIT = 64 * 1024


def raise_body_limit(app: Flask, size: int) -> None:
    """Let the app take request bodies of up to `size` bytes (never lowers its limit)."""
    current = app.config.get("MAX_CONTENT_LENGTH")
    if current is not None and current < size:
        app.config["MAX_CONTENT_LENGTH"] = size


# What each strict_json rule says to a person (strict_json's own details are English).
PROBLEMS = {
    "encoding": _l("the body is not UTF-8 text (byte %(byte)d)"),
    "constant": _l("%(name)s is not a JSON number: send finite numbers only"),
    "duplicate_key": _l("the key “%(key)s” appears twice"),
    "overflow": _l("the number %(number)s is too large"),
    "too_deep": _l("arrays and objects are nested more than %(depth)d deep"),
    "syntax": _l("not JSON (line %(line)d, column %(column)d)"),
    "text": _l("a string holds a NUL character or an unpaired surrogate"),
}


def problem_text(exc: JsonRefused) -> str:
    """The rule strict_json applied, in the request's language."""
    return str(PROBLEMS[exc.problem]) % exc.params


def refused(exc: JsonRefused) -> BadRequest:
    """The 400 for a body strict_json refused: `bad_json`, the rule in the request's language."""
    return BadRequest(_l("The body is not valid JSON: %(problem)s.", problem=problem_text(exc)),
                      code="bad_json")


def json_body() -> Any:
    """The request's JSON body (None when there is none); 400 `bad_json` when it is not strict
    JSON, 415 when a body comes as another content type."""
    raw = request.get_data(cache=True)
    if not raw:
        return None
    if not request.is_json:
        # Parsing text/plain as JSON would let a cross-site form post a body (CSRF).
        raise HubError(_l("Send the body as JSON (Content-Type: application/json)."),
                       code="unsupported_type", status=415)
    try:
        return loads(raw)
    except JsonRefused as exc:
        raise refused(exc) from None


def json_object(*, required: bool = True) -> dict[str, Any]:
    """The request's body as a JSON object ({} when absent and not required)."""
    body = json_body()
    if body is None and not required:
        return {}
    if not isinstance(body, dict):
        raise BadRequest(_l("Send a JSON object."), code="bad_json")
    return body


def _holds_nul(values) -> bool:
    return any("\x00" in key or "\x00" in value for key, value in values.items(multi=True))


def refuse_nul() -> None:
    """before_request: no address, query parameter or form field may hold NUL (PostgreSQL text
    cannot: a lookup of `/api/v1/villages/%00` answered 500 there)."""
    form = request.mimetype == "application/x-www-form-urlencoded"  # multipart: read by its view
    if "\x00" in request.path or _holds_nul(request.args) or (form and _holds_nul(request.form)):
        raise BadRequest(_l("The address or a form field holds a NUL character."),
                         code="bad_request")
