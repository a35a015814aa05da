"""How every response leaves the hub: security headers, gzip, static assets at content-hash URLs.

- Headers on every response (pages, JSON, errors, files and Socket.IO's): a
  Content-Security-Policy that allows no inline script, no framing, `nosniff` and a same-origin
  referrer.
- gzip for text-like bodies above MIN_GZIP_BYTES when the client accepts it (a township's roads
  layer: 796 KB of GeoJSON, 56 KB gzipped). Not Socket.IO's: Engine.IO's middleware answers
  /socket.io/ before Flask's hooks run (and compresses its own long-polling bodies).
- Static assets (each package's static/ and the npm packages of core.views.VENDOR): templates link
  them with `static_url(endpoint, filename)`, which adds `?v=<hash of the content>`. Asked for
  with the current hash, a file is cached for a year (`immutable`); without it (or with an old
  one), browsers revalidate every time (`no-cache` with an ETag). Our ES modules import each
  other by relative URL ("../live.js"): those specifiers get the `?v=` of their target when
  served, so a module has one URL wherever it is loaded from (one live socket per page, not two),
  and a module's hash covers the modules it imports.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import mimetypes
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.routing import MapAdapter
from werkzeug.security import safe_join
from werkzeug.wsgi import get_host

log = logging.getLogger(__name__)

MIN_GZIP_BYTES = 1024
GZIP_LEVEL = 5  # demo roads (796 KB): 5 → 56.6 KB in 15 ms; 6 → 56.5 KB, 22 ms; 9 → 54 KB, 74 ms
HASH_CHARS = 16
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
GZIP_TYPES = {
    "application/json", "application/geo+json", "application/javascript",
    "application/manifest+json", "application/xml", "image/svg+xml",
}
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# A host as a browser sends it (name or address, optional port): anything else in Host is not
# copied into the policy, where a ";" would add directives.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
# Relative module specifiers in `import … from "./x.js"`, `export … from "../x.js"`,
# `import "./x.js"` and `import("../x.js")`; lines that are comments are left alone.
_SPECIFIER = re.compile(
    r"""(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])(\.{1,2}/[^"'?#\s]+\.js)\2""")


# --- Content-Security-Policy ------------------------------------------------------------------

def _tile_source(tile_url: str) -> str | None:
    """The img-src source for a Leaflet tile URL template ("https://{s}.tiles.example/{z}/…")."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        log.warning("map.tile_url %r is not an http(s) URL: no tiles allowed by the CSP", tile_url)
        return None
    host = re.sub(r"^\{[a-z]+\}\.", "*.", parts.netloc)  # {s}.tile… → *.tile… (CSP wildcard)
    if "{" in host:
        # A placeholder elsewhere in the host cannot be a CSP source: allow the scheme.
        log.warning("map.tile_url %r: placeholder in the host; the CSP allows any %s: image",
                    tile_url, parts.scheme)
        return f"{parts.scheme}:"
    return f"{parts.scheme}://{host}"


def content_security_policy(tile_url: str = "") -> str:
    """The policy for this hub, with `{socket}` left for the request's WebSocket origins."""
    images = " ".join(filter(None, ["'self'", "data:", _tile_source(tile_url)]))
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",  # no inline script, no eval: behaviour lives in static/*.js
        # Leaflet and our pages set styles through the CSSOM (element.style), which CSP allows;
        # no page has a style attribute or <style> block, so no 'unsafe-inline' is needed.
        "style-src 'self'",
        f"img-src {images}",
        "font-src 'self'",
        "connect-src 'self'{socket}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def _socket_sources(host: str) -> str:
    # CSP 3 lets 'self' match ws(s) of the same host; older Safari does not: name them.
    if not _HOST.fullmatch(host):
        return ""
    return f" ws://{host} wss://{host}"


class SecurityHeaders:
    """WSGI middleware: the security headers on every response of the process, Flask's and
    Engine.IO's alike (/socket.io/ is answered by Flask-SocketIO's middleware, never by Flask).
    A header the response already has (a view's own choice) is kept."""

    def __init__(self, wsgi_app: Callable, policy: str):
        self.wsgi_app = wsgi_app
        self.policy = policy

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        policy = self.policy.replace("{socket}", _socket_sources(get_host(environ)))
        extra = [("Content-Security-Policy", policy), *SECURITY_HEADERS.items()]

        def start(status: str, headers: list[tuple[str, str]], exc_info=None):
            present = {name.lower() for name, _ in headers}
            added = [(k, v) for k, v in extra if k.lower() not in present]
            return start_response(status, [*headers, *added], exc_info)

        return self.wsgi_app(environ, start)


# --- static assets ----------------------------------------------------------------------------

@dataclass
class Asset:
    """One static file as served: its body (module imports stamped), hash and type."""

    body: bytes
    digest: str
    mimetype: str
    _gzipped: bytes | None = field(default=None, repr=False)

    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, GZIP_LEVEL, mtime=0)
        return self._gzipped


def _adapter(app: Flask) -> MapAdapter:
    return app.url_map.bind("localhost")


def asset_folder(app: Flask, endpoint: str, args: dict) -> Path | None:
    """The directory an asset endpoint serves from, or None for any other endpoint."""
    if endpoint == "static":
        folder = app.static_folder
    elif endpoint.endswith(".static"):
        blueprint = app.blueprints.get(endpoint.rsplit(".", 1)[0])
        folder = blueprint.static_folder if blueprint else None
    elif endpoint == "core.vendor":
        from dispatch.core.views import VENDOR

        package = VENDOR.get(args.get("package", ""))
        folder = Path(app.config["NODE_MODULES"]) / package if package else None
    else:
        folder = None
    return Path(folder) if folder else None


def asset(app: Flask, url_path: str, _seen: tuple[str, ...] = ()) -> Asset | None:
    """The static file at a URL path as served, or None; read once per process (each time in
    debug, where files change under a running hub)."""
    cache = app.extensions["rescuehub.assets"]
    if not app.debug and url_path in cache:
        return cache[url_path]
    if url_path in _seen:
        raise RuntimeError("ES modules import each other in a cycle: "
                           + " → ".join((*_seen, url_path)))
    found = _load(app, url_path, (*_seen, url_path))
    cache[url_path] = found
    return found


def _load(app: Flask, url_path: str, seen: tuple[str, ...]) -> Asset | None:
    try:
        endpoint, args = _adapter(app).match(url_path, method="GET")
    except HTTPException:
        return None
    folder = asset_folder(app, endpoint, args)
    name = safe_join(str(folder), args.get("filename", "")) if folder else None
    if name is None or not Path(name).is_file():
        return None
    body = Path(name).read_bytes()
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if name.endswith(".js") and endpoint != "core.vendor":
        body = _stamp_imports(app, url_path, body, seen)
    return Asset(body, hashlib.sha256(body).hexdigest()[:HASH_CHARS], mimetype)


def _stamp_imports(app: Flask, url_path: str, body: bytes, seen: tuple[str, ...]) -> bytes:
    base = posixpath.dirname(url_path)

    def stamp(match: re.Match) -> str:
        head, quote, spec = match.groups()
        target = asset(app, posixpath.normpath(posixpath.join(base, spec)), seen)
        if target is None:
            log.warning("%s imports %s, which is not a static file", url_path, spec)
            return match.group(0)
        return f"{head}{quote}{spec}?v={target.digest}{quote}"

    lines = body.decode("utf-8").split("\n")
    for i, line in enumerate(lines):
        if not line.lstrip().startswith(("//", "*", "/*")):
            lines[i] = _SPECIFIER.sub(stamp, line)
    return "\n".join(lines).encode("utf-8")


def static_url(endpoint: str, filename: str, **values: str) -> str:
    """URL of a static file with `?v=` its content hash (template global)."""
    path = _adapter(current_app).build(endpoint, {"filename": filename, **values})
    found = asset(current_app, path)
    if found is None:
        log.warning("static_url: no file %s for %s", filename, endpoint)
        return url_for(endpoint, filename=filename, **values)
    return url_for(endpoint, filename=filename, v=found.digest, **values)


def _is_asset_endpoint(endpoint: str | None) -> bool:
    return bool(endpoint) and (endpoint == "static" or endpoint.endswith(".static")
                               or endpoint == "core.vendor")


def serve_asset() -> Response | None:
    """before_request: answer a static file from the assets (stamped body, hash ETag, caching)."""
    if request.method not in ("GET", "HEAD") or not _is_asset_endpoint(request.endpoint):
        return None
    found = asset(current_app, request.path)
    if found is None:
        return None  # the view answers (404)
    compressible = _compressible(found.mimetype) and len(found.body) >= MIN_GZIP_BYTES
    gzipped = compressible and _accepts_gzip()
    response = Response(found.gzipped() if gzipped else found.body, mimetype=found.mimetype)
    # One ETag per representation (RFC 9110 §8.8.3): the gzipped bytes are another one.
    response.set_etag(found.digest + ("-gz" if gzipped else ""))
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    if compressible:
        response.vary.add("Accept-Encoding")
    fresh = request.args.get("v") == found.digest
    response.headers["Cache-Control"] = IMMUTABLE if fresh else REVALIDATE
    return response.make_conditional(request)


# --- compression ------------------------------------------------------------------------------

def _compressible(mimetype: str) -> bool:
    return mimetype.startswith("text/") or mimetype in GZIP_TYPES or mimetype.endswith("+json")


def _accepts_gzip() -> bool:
    return request.accept_encodings["gzip"] > 0


def compress(response: Response) -> Response:
    """gzip a text-like body of MIN_GZIP_BYTES or more for a client that accepts it."""
    if (response.direct_passthrough or response.is_streamed or response.status_code < 200
            or response.status_code in (204, 206, 304)
            or "Content-Encoding" in response.headers
            or not _compressible(response.mimetype or "")):
        return response
    body = response.get_data()
    if len(body) < MIN_GZIP_BYTES:
        return response
    response.vary.add("Accept-Encoding")
    if not _accepts_gzip():
        return response
    response.set_data(gzip.compress(body, GZIP_LEVEL, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    etag, weak = response.get_etag()
    if etag and not weak:
        response.set_etag(etag, weak=True)  # the same content, another encoding
    return response


def init_app(app: Flask) -> None:
    """Headers around everything (after realtime.init_app, whose middleware it then wraps),
    static assets before the views, compression after them."""
    app.extensions["rescuehub.assets"] = {}
    policy = content_security_policy(app.config["SETTINGS"].map.tile_url)
    app.wsgi_app = SecurityHeaders(app.wsgi_app, policy)  # type: ignore[method-assign]
    app.before_request(serve_asset)
    app.after_request(compress)
    app.jinja_env.globals["static_url"] = static_url
