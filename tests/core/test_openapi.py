"""The OpenAPI document: complete enough to call every /api/v1 endpoint from it (bodies, query
parameters, answers), valid, and declaring nothing the app does not serve.

Backend-independent: the document is built from the routes and the packages' declarations, so
these tests use one app on SpatiaLite and never touch its database.
"""

from __future__ import annotations

import json
import re

import jsonschema_rs
import pytest
from jsonschema import Draft202012Validator
from schemathesis.specs.openapi.definitions import OPENAPI_31

from dispatch import create_app
from dispatch.core import openapi

BODY_METHODS = {"post", "put", "patch"}


@pytest.fixture(scope="module")
def flask_app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("openapi")
    return create_app({"database": {"url": f"sqlite:///{folder / 'hub.sqlite'}"},
                       "data": {"dir": str(folder)},
                       "mqtt": {"url": "mqtt://127.0.0.1:1", "managed": False}})


@pytest.fixture(scope="module")
def doc(flask_app):
    with flask_app.test_request_context():
        return json.loads(json.dumps(openapi.describe(flask_app)))


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def _schemas(node):
    """Every JSON Schema the document holds (parameters, bodies, answers)."""
    if isinstance(node, dict):
        if "schema" in node and isinstance(node["schema"], dict):
            yield node["schema"]
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def test_every_endpoint_that_takes_a_body_declares_it(doc):
    missing = [f"{method.upper()} {path} ({op['operationId']})"
               for path, method, op in _operations(doc)
               if method in BODY_METHODS and "requestBody" not in op]
    assert not missing, f"declare a body in the package's api_schemas module: {missing}"


def test_every_declaration_names_an_endpoint_that_exists(flask_app):
    endpoints = {rule.endpoint for rule in flask_app.url_map.iter_rules()
                 if rule.rule.startswith("/api/v1/")}
    unknown = sorted(set(openapi.declared(flask_app)) - endpoints)
    assert not unknown, f"declared in an api_schemas module but not served: {unknown}"


def test_declarations_use_only_known_keys(flask_app):
    known = {"body", "media", "body_required", "query", "path", "ok", "errors"}
    odd = {name: sorted(set(spec) - known) for name, spec in openapi.declared(flask_app).items()
           if set(spec) - known}
    assert not odd


def test_document_is_valid_openapi_31(doc):
    # The OpenAPI 3.1 meta-schema as schemathesis ships it, checked by its fast validator
    # (jsonschema takes seconds on this meta-schema's dynamic references).
    errors = [str(e).splitlines()[0] + " at " + "/".join(map(str, e.instance_path))
              for e in jsonschema_rs.validator_for(OPENAPI_31).iter_errors(doc)]
    assert not errors, errors[:5]


def test_every_schema_in_the_document_is_valid_json_schema(doc):
    schemas = list(_schemas(doc))
    assert len(schemas) > 100
    for schema in schemas:
        Draft202012Validator.check_schema(schema)


def test_operations_are_complete(doc):
    ids = set()
    for path, method, op in _operations(doc):
        where = f"{method.upper()} {path}"
        assert op["operationId"] not in ids, where
        ids.add(op["operationId"])
        assert any(code.startswith("2") for code in op["responses"]), where
        params = op.get("parameters", [])
        assert len({(p["name"], p["in"]) for p in params}) == len(params), where
        in_path = {p["name"] for p in params if p["in"] == "path"}
        assert in_path == set(re.findall(r"{(\w+)}", path)), where
        if op["security"]:
            assert {"401", "403"} <= set(op["responses"]), where


def test_bodies_say_what_the_services_check(doc):
    paths = doc["paths"]
    sensor = paths["/api/v1/sensors"]["post"]["requestBody"]["content"]["application/json"]
    schema = sensor["schema"]
    assert set(schema["required"]) == {"code", "kind", "unit", "gateway", "lon", "lat"}
    assert schema["properties"]["lon"] == {"type": "number", "minimum": -180, "maximum": 180}
    assert "rain_gauge" in schema["properties"]["kind"]["enum"]
    # Unknown members are ignored by the server (forward compatibility), so they are allowed.
    assert schema.get("additionalProperties", True) is not False
    village = paths["/api/v1/villages"]["post"]["requestBody"]["content"]["application/json"]
    props = village["schema"]["properties"]["properties"]
    assert {"code", "name_zh"} <= set(props["required"])
    assert props["properties"]["elevation_m"]["minimum"] == -500
    shelter = paths["/api/v1/shelters/{code}"]["patch"]["requestBody"]["content"]
    assert "school" in shelter["application/json"]["schema"]["properties"]["kind"]["enum"]
    imports = paths["/api/v1/villages/import"]["post"]["requestBody"]["content"]
    assert {"text/csv", "application/geo+json", "multipart/form-data"} <= set(imports)


def test_query_parameters_and_answers_are_declared(doc):
    paths = doc["paths"]
    letters = {p["name"] for p in paths["/api/v1/dead-letters"]["get"]["parameters"]}
    assert {"reason", "gateway", "sensor", "resolved", "limit", "before"} <= letters
    readings = {p["name"] for p in paths["/api/v1/sensors/{code}/readings"]["get"]["parameters"]}
    assert {"since", "until", "limit"} <= readings
    layer = paths["/api/v1/layers/{name}"]["get"]
    assert "application/geo+json" in layer["responses"]["200"]["content"]
    assert "sensors" in next(p for p in layer["parameters"] if p["name"] == "name")["schema"][
        "enum"]
    assert "201" in paths["/api/v1/sensors"]["post"]["responses"]
    assert set(paths["/api/v1/villages/{code}"]["delete"]["responses"]) >= {"204", "404"}
    assert "content" not in paths["/api/v1/villages/{code}"]["delete"]["responses"]["204"]


def test_the_hub_serves_the_document(flask_app):
    served = flask_app.test_client().get("/api/v1/openapi.json")
    assert served.status_code == 200
    assert "requestBody" in served.json["paths"]["/api/v1/auth/token"]["post"]
