"""One error tree: every error the hub raises on purpose carries its HTTP status, code and message.

Views raise these; one handler (dispatch.core.views) turns them into
`{"error": code, "message": text}` with the status. Messages are lazy so they are translated in
the language of the request that shows them.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l


class HubError(Exception):
    """Base of the hub's errors: an HTTP status, a machine-readable code and a message."""

    status = 500
    code = "internal_error"
    message: Any = _l("Something went wrong on the hub. Try again; if it persists, see the log.")

    def __init__(self, message: Any = None, *, code: str | None = None, status: int | None = None,
                 details: dict[str, Any] | None = None):
        if message is not None:
            self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details or {}
        super().__init__(str(self.message))


class BadRequest(HubError):
    """The request is malformed or a value is invalid."""

    status = 400
    code = "bad_request"
    message = _l("The request is not valid.")


class Unauthorized(HubError):
    """No valid credentials were given."""

    status = 401
    code = "unauthorized"
    message = _l("Sign in first, or send a valid bearer token.")


class Forbidden(HubError):
    """The signed-in principal's role does not allow this."""

    status = 403
    code = "forbidden"
    message = _l("Your role does not allow this. Ask the commander for access.")


class NotFound(HubError):
    """No such resource."""

    status = 404
    code = "not_found"
    message = _l("Not found. Check the address or identifier.")


class Conflict(HubError):
    """The request conflicts with what is stored."""

    status = 409
    code = "conflict"
    message = _l("This conflicts with what is stored. Reload and try again.")


class PayloadTooLarge(HubError):
    """The body exceeds a configured limit."""

    status = 413
    code = "too_large"
    message = _l("The request body is too large.")


class TooManyRequests(HubError):
    """A rate limit was hit."""

    status = 429
    code = "rate_limited"
    message = _l("Too many attempts. Wait a few minutes and try again.")


class SetupError(HubError):
    """The hub cannot start: something is missing on the machine or in the settings."""

    code = "setup_error"


def field_error(field: str, problem: Any) -> BadRequest:
    """A 400 for one field of a JSON body (`bad_field`, with `field`): the field keeps the name
    the API gives it, `problem` is a lazy translated phrase such as _l("is required")."""
    return BadRequest(_l("%(field)s: %(problem)s", field=field, problem=problem),
                      code="bad_field", details={"field": field})


def parameter_error(name: str, problem: Any) -> BadRequest:
    """A 400 for one query parameter (`bad_parameter`, with `parameter`)."""
    return BadRequest(_l("query parameter %(name)s: %(problem)s", name=name, problem=problem),
                      code="bad_parameter", details={"parameter": name})
