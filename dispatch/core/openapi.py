"""OpenAPI 3.1 description generated from the app's routes, so it cannot drift from them.

Each `/api/v1` route contributes its methods, its docstring's first line as the summary, its path
parameters and its access (public, or the roles allowed, as bearer or cookie security).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from dispatch.core.auth import access_of

PARAM = re.compile(r"<(?:(?P<conv>[a-z]+):)?(?P<name>[a-z_]+)>")
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}


def _operation(view, rule, method: str) -> dict[str, Any]:
    doc = (view.__doc__ or "").strip().splitlines()
    allowed = access_of(view) or ()
    op: dict[str, Any] = {
        "operationId": f"{rule.endpoint}.{method.lower()}",
        "summary": doc[0] if doc else rule.endpoint,
        "responses": {
            "200": {"description": "OK"},
            "default": {"description": "Error",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}}},
        },
    }
    params = [{"name": m["name"], "in": "path", "required": True,
               "schema": {"type": "integer" if m["conv"] == "int" else "string"}}
              for m in PARAM.finditer(rule.rule)]
    if params:
        op["parameters"] = params
    if allowed:
        op["security"] = [{"bearer": []}, {"cookie": []}]
        op["x-roles"] = list(allowed)
    else:
        op["security"] = []
    return op


def describe(app: Flask) -> dict[str, Any]:
    """The OpenAPI document for every /api/v1 route."""
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/v1/"):
            continue
        view = app.view_functions[rule.endpoint]
        path = PARAM.sub(lambda m: "{" + m["name"] + "}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(view, rule, method)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Township Rescue Hub API", "version": "1"},
        "paths": paths,
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "rescuehub_session"},
        }},
    }
