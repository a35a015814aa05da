"""OpenAPI 3.1 description generated from the app's routes, so it cannot drift from them.

Each `/api/v1` route contributes its methods, its docstring's first line as the summary, its path
parameters and its access (public, or the roles allowed, as bearer or cookie security). What a
route cannot say about itself (its body, query parameters, answers) each package declares in its
own `api_schemas` module, keyed by endpoint name (`rule.endpoint`), and hands to `register`: the
kernel never imports a package (DESIGN §2). One declaration:

    "telemetry.register_sensor": {
        "body": {...},                   # JSON Schema of an application/json body
        "media": {"text/csv": {...}},    # bodies of other media types (instead of `body`)
        "body_required": False,          # the body may be left out (default: required)
        "query": [{"name": "kind", "schema": {...}}],   # query parameters ("in" is implied)
        "path": {"name": {"enum": [...]}},               # narrower path parameter schemas
        "ok": {201: ("application/json", {...})},       # success: media type (None: empty)
                                                         # and schema (None: not described)
        "errors": (409, 422),            # statuses beyond those every operation may answer
    }
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from dispatch.core.api_schemas import ENDPOINTS as KERNEL_ENDPOINTS
from dispatch.core.api_schemas import ERROR
from dispatch.core.auth import access_of

PARAM = re.compile(r"<(?:(?P<conv>[a-z]+):)?(?P<name>[a-z_]+)>")
EXTENSION = "rescuehub.openapi"
# The largest id a BIGINT column holds: an integer path parameter never names more.
MAX_ID = 2**63 - 1
BODY_METHODS = {"POST", "PUT", "PATCH"}
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad request",
           401: "Not signed in, or the token is unknown, revoked or expired",
           403: "The caller's role does not allow this", 404: "Not found",
           409: "Conflicts with what is stored", 413: "The body is too large",
           415: "Unsupported media type", 422: "Rows or values refused; nothing written",
           429: "Too many attempts"}


def register(app: Flask, endpoints: dict[str, dict[str, Any]]) -> None:
    """Add a package's declarations (bodies, query parameters, answers) to the document."""
    app.extensions.setdefault(EXTENSION, {}).update(endpoints)


def declared(app: Flask) -> dict[str, dict[str, Any]]:
    """Every declaration: the kernel's own and those the packages registered."""
    return {**KERNEL_ENDPOINTS, **app.extensions.get(EXTENSION, {})}


def _path_parameter(match: re.Match, narrower: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if match["conv"] == "int":
        schema = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
    schema = {**schema, **narrower.get(match["name"], {})}
    return {"name": match["name"], "in": "path", "required": True, "schema": schema}


def _body(spec: dict[str, Any]) -> dict[str, Any] | None:
    media = dict(spec.get("media") or {})
    if "body" in spec:
        media = {"application/json": spec["body"], **media}
    if not media:
        return None
    return {"required": spec.get("body_required", True),
            "content": {kind: {"schema": schema} for kind, schema in media.items()}}


def _responses(spec: dict[str, Any], *, secured: bool, has_path: bool,
               has_body: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (media, schema) in (spec.get("ok") or {200: ("application/json", None)}).items():
        answer: dict[str, Any] = {"description": REASONS.get(status, "OK")}
        if media is not None:
            answer["content"] = {media: {"schema": schema} if schema is not None else {}}
        responses[str(status)] = answer
    errors = {400, *spec.get("errors", ())}
    if secured:
        errors |= {401, 403}
    if has_path:
        errors.add(404)
    if has_body:
        errors.add(413)
    for status in sorted(errors):
        responses[str(status)] = {"description": REASONS.get(status, "Error"),
                                  "content": {"application/json": {"schema": ERROR}}}
    return responses


def _operation(view, rule, method: str, spec: dict[str, Any]) -> dict[str, Any]:
    doc = (view.__doc__ or "").strip().splitlines()
    allowed = access_of(view) or ()
    op: dict[str, Any] = {
        "operationId": f"{rule.endpoint}.{method.lower()}",
        "summary": doc[0] if doc else rule.endpoint,
    }
    params = [_path_parameter(m, spec.get("path", {})) for m in PARAM.finditer(rule.rule)]
    params += [{"in": "query", "required": False, **q} for q in spec.get("query", ())]
    if params:
        op["parameters"] = params
    body = _body(spec) if method in BODY_METHODS else None
    if body is not None:
        op["requestBody"] = body
    op["responses"] = _responses(spec, secured=bool(allowed), has_path="<" in rule.rule,
                                 has_body=body is not None)
    if allowed:
        op["security"] = [{"bearer": []}, {"cookie": []}]
        op["x-roles"] = list(allowed)
    else:
        op["security"] = []
    return op


def describe(app: Flask) -> dict[str, Any]:
    """The OpenAPI document for every /api/v1 route."""
    specs = declared(app)
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/v1/"):
            continue
        view = app.view_functions[rule.endpoint]
        path = PARAM.sub(lambda m: "{" + m["name"] + "}", rule.rule)
        spec = specs.get(rule.endpoint, {})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(view, rule, method, spec)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Township Rescue Hub API", "version": "1"},
        "paths": paths,
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "rescuehub_session"},
        }},
    }
