"""How responses leave the hub (dispatch.core.web): security headers on every kind of response,
gzip for large text bodies (a township's roads layer), and static assets at content-hash URLs
with long caching, including ES modules that import each other."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import pytest
from flask import Response

from dispatch import create_app
from dispatch.core import auth, web
from dispatch.core.db import db
from dispatch.core.settings import ROOT
from maps import service
from tests.conftest import demo_township

# Pages, sockets and translations: no backend-specific SQL (conftest: any_backend).
pytestmark = pytest.mark.any_backend

STATIC = ROOT / "dispatch" / "static"


def bare_app(tmp_path: Path, **sections):
    """The hub's app on a SpatiaLite file nobody opens: pages and files that need no database."""
    overrides = {"database": {"url": f"sqlite:///{tmp_path / 'hub.sqlite'}"},
                 "data": {"dir": str(tmp_path)},
                 "mqtt": {"url": "mqtt://127.0.0.1:1", "managed": False}, **sections}
    app = create_app(overrides)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def web_app(tmp_path):
    return bare_app(tmp_path)


@pytest.fixture
def web_client(web_app):
    return web_app.test_client()


def directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {d.split()[0]: d.partition(" ")[2] for d in (p.strip() for p in policy.split(";"))}


def assert_secure(response) -> None:
    d = directives(response)
    assert d["script-src"] == "'self'"  # no inline script, no eval, no other origin
    assert d["frame-ancestors"] == "'none'" and d["object-src"] == "'none'"
    assert "'unsafe-inline'" not in d["style-src"]
    assert d["img-src"].split()[:2] == ["'self'", "data:"]
    assert d["connect-src"].startswith("'self'")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


# --- headers ----------------------------------------------------------------------------------

@pytest.mark.allow_logged_exceptions
def test_every_kind_of_response_carries_the_headers(web_app, web_client):
    def boom():
        raise RuntimeError("a bug")

    web_app.add_url_rule("/boom", view_func=auth.public(boom))
    html = {"Accept": "text/html"}
    cases = [
        (web_client.get("/login"), 200, "text/html"),                      # a page
        (web_client.get("/healthz"), 200, "application/json"),             # JSON
        (web_client.get("/api/v1/openapi.json"), 200, "application/json"),
        (web_client.get("/api/v1/me"), 401, "application/json"),           # JSON errors
        (web_client.get("/api/v1/nothing-here"), 404, "application/json"),
        (web_client.get("/nothing-here", headers=html), 404, "text/html"),  # an error page
        (web_client.get("/boom", headers=html), 500, "text/html"),
        (web_client.get("/"), 302, "text/html"),                            # to sign-in
        (web_client.get("/static/hub.css"), 200, "text/css"),               # files
        (web_client.get("/static/missing.css"), 404, "text/html"),
        (web_client.get("/vendor/leaflet/leaflet.js"), 200, "text/javascript"),
        # Engine.IO answers this before Flask does (its long-polling handshake).
        (web_client.get("/socket.io/?EIO=4&transport=polling"), 200, "text/plain"),
    ]
    for response, status, mimetype in cases:
        assert (response.status_code, response.mimetype) == (status, mimetype), response.data
        assert_secure(response)


def test_the_socket_origin_is_named_only_for_a_well_formed_host(web_client):
    plain = directives(web_client.get("/healthz", headers={"Host": "hub.local:8080"}))
    assert plain["connect-src"] == "'self' ws://hub.local:8080 wss://hub.local:8080"
    hostile = web_client.get("/healthz", headers={"Host": "x; script-src *"})
    assert directives(hostile)["connect-src"] == "'self'"
    assert "script-src *" not in hostile.headers["Content-Security-Policy"]


@pytest.mark.parametrize(("tile_url", "source"), [
    ("", None),
    ("http://10.0.0.2/tiles/{z}/{x}/{y}.png", "http://10.0.0.2"),
    ("https://{s}.tiles.example.org:8443/{z}/{x}/{y}.png", "https://*.tiles.example.org:8443"),
    ("https://tiles-{s}.example.org/{z}/{x}/{y}.png", "https:"),  # no CSP host pattern for it
    ("file:///srv/tiles/{z}/{x}/{y}.png", None),
])
def test_tile_server_source(tile_url, source):
    assert web._tile_source(tile_url) == source


def test_the_policy_lets_the_configured_tiles_in(tmp_path):
    app = bare_app(tmp_path, map={"tile_url": "https://{s}.tiles.example.org/{z}/{x}/{y}.png"})
    images = directives(app.test_client().get("/login"))["img-src"]
    assert images == "'self' data: https://*.tiles.example.org"


# --- compression ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def township():
    return demo_township()


def test_a_township_s_roads_go_gzipped(app, client, bearer, township):
    with db.transaction() as s:
        service.load_demo_township(s, township, actor="test")
    headers = bearer("viewer")
    plain = client.get("/api/v1/layers/roads", headers=headers)
    zipped = client.get("/api/v1/layers/roads", headers={**headers,
                                                          "Accept-Encoding": "gzip, br"})
    assert plain.status_code == zipped.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    for response in (plain, zipped):
        assert "Accept-Encoding" in response.headers["Vary"]
    assert gzip.decompress(zipped.data) == plain.data
    assert int(zipped.headers["Content-Length"]) == len(zipped.data)
    assert len(plain.data) > 500_000 and len(zipped.data) < len(plain.data) / 8
    refused = client.get("/api/v1/layers/roads", headers={**headers,
                                                           "Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers and refused.data == plain.data


@pytest.mark.parametrize(("make", "compressed"), [
    (lambda: Response("x" * 5000, mimetype="application/geo+json"), True),
    (lambda: Response("x" * 5000, mimetype="text/html"), True),
    (lambda: Response("x" * 1000, mimetype="application/json"), False),  # too small to matter
    (lambda: Response(b"\x89PNG" * 2000, mimetype="image/png"), False),  # compressed already
    (lambda: Response(iter([b"x" * 5000]), mimetype="text/plain"), False),  # streamed
    (lambda: Response("x" * 5000, status=206, mimetype="text/plain"), False),  # a byte range
], ids=["geojson", "html", "small", "png", "streamed", "range"])
def test_what_is_compressed(web_app, make, compressed):
    with web_app.test_request_context(headers={"Accept-Encoding": "gzip"}):
        response = web.compress(make())
    assert (response.headers.get("Content-Encoding") == "gzip") is compressed


def test_a_strong_etag_becomes_weak_once_gzipped(web_app):
    with web_app.test_request_context(headers={"Accept-Encoding": "gzip"}):
        response = Response("x" * 5000, mimetype="text/plain")
        response.set_etag("abc")
        assert web.compress(response).get_etag() == ("abc", True)


# --- static assets ----------------------------------------------------------------------------

def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:web.HASH_CHARS]


def test_pages_link_assets_by_content_hash_and_those_are_cached_for_good(web_client):
    page = web_client.get("/login").get_data(as_text=True)
    css = (STATIC / "hub.css").read_bytes()
    url = f"/static/hub.css?v={sha(css)}"
    assert f'href="{url}"' in page

    fresh = web_client.get(url)
    assert fresh.status_code == 200 and fresh.data == css
    assert fresh.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert fresh.get_etag() == (sha(css), False)
    for stale in ("/static/hub.css", "/static/hub.css?v=0123456789abcdef"):
        response = web_client.get(stale)
        assert response.data == css and response.headers["Cache-Control"] == "no-cache"
    again = web_client.get("/static/hub.css", headers={"If-None-Match": f'"{sha(css)}"'})
    assert again.status_code == 304 and again.data == b""


def test_vendor_packages_are_hashed_and_gzipped(web_app, web_client):
    leaflet = Path(web_app.config["NODE_MODULES"]) / "leaflet" / "dist" / "leaflet.js"
    with web_app.test_request_context():
        url = web.static_url("core.vendor", "leaflet.js", package="leaflet")
    assert url == f"/vendor/leaflet/leaflet.js?v={sha(leaflet.read_bytes())}"
    response = web_client.get(url, headers={"Accept-Encoding": "gzip"})
    assert response.headers["Cache-Control"].endswith("immutable")
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.data) == leaflet.read_bytes()
    assert response.get_etag()[0] != sha(leaflet.read_bytes())  # another representation
    assert web_client.get("/vendor/leaflet/..%2f..%2fpackage.json").status_code == 404
    assert web_client.get("/vendor/nothing/x.js").status_code == 404


def test_modules_import_each_other_at_the_hashed_url(web_app, web_client):
    with web_app.test_request_context():
        live = web.static_url("static", "live.js")
        dom = web.static_url("static", "dom.js")
        map_js = web.static_url("maps.static", "map.js")
    body = web_client.get(map_js).get_data(as_text=True)
    # The map imports live.js dynamically at the very URL base.html loads it from: one module,
    # one socket per page.
    assert f'import("..{live.removeprefix("/static")}")' in body
    assert f'from "..{dom.removeprefix("/static")}"' in body
    # Lines that are comments are left as they are (live.js names itself in one).
    assert 'from "./live.js";' in web_client.get(live).get_data(as_text=True)
    assert map_js.endswith("v=" + sha(body.encode()))


def test_a_module_hash_covers_what_it_imports(tmp_path):
    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "a.js").write_text('import { b } from "./b.js";\nconsole.log(b);\n')
    (folder / "b.js").write_text("export const b = 1;\n")

    def url_of_a() -> str:
        app = bare_app(tmp_path / "hub")
        app.static_folder = str(folder)
        with app.test_request_context():
            return web.static_url("static", "a.js")

    (tmp_path / "hub").mkdir()
    before = url_of_a()
    (folder / "b.js").write_text("export const b = 2;\n")
    assert url_of_a() != before  # a.js did not change; what it imports did


def test_modules_that_import_in_a_cycle_are_refused(tmp_path):
    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "a.js").write_text('import "./b.js";\n')
    (folder / "b.js").write_text('import "./a.js";\n')
    app = bare_app(tmp_path)
    app.static_folder = str(folder)
    with app.test_request_context(), pytest.raises(RuntimeError, match="cycle"):
        web.static_url("static", "a.js")


def test_every_template_links_assets_through_static_url():
    for template in ROOT.glob("*/templates/*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"url_for\('(\w+\.)?static'|url_for\('core\.vendor'", text), template
        assert "|safe" not in text.replace(" ", ""), template
        assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)", text), template
        # No inline event handlers (in the markup: a Jinja call's `online=` argument is not one).
        markup = re.sub(r"{{.*?}}|{%.*?%}", "", text, flags=re.S)
        assert not re.search(r"\son[a-z]+=", markup), template
        assert "style=" not in text, template  # the policy allows no inline style
