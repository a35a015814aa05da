"""Languages: Chinese first (zh_Hans_CN), English second, switched with the `lang` cookie.

Babel reads `zh_CN` as `zh_Hans_CN`, so the catalog lives in translations/zh_Hans_CN (NOTES.md).
Source strings are English; the Chinese catalog translates them.

The `rescuehub` command speaks the terminal's language (`terminal_locale`): its own lines go
through `terminal_text`, and the hub's lazy messages (errors) through `terminal_str`.
"""

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from flask import Flask, request
from flask_babel import Babel, force_locale, lazy_gettext, refresh

LOCALES = {"zh_Hans_CN": "中文", "en": "English"}

babel = Babel()


def select_locale() -> str:
    """The `lang` cookie if it names a known locale, else the configured default."""
    from flask import current_app

    chosen = request.cookies.get("lang") if request else None
    if chosen in LOCALES:
        return chosen
    return current_app.config["SETTINGS"].web.default_locale


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale, default_timezone="Asia/Shanghai")
    # Flask-Babel caches the locale in `g`, which lives as long as the app context; an app
    # context may span several requests (tests, CLI), so choose afresh for each request.
    app.before_request(refresh)
    app.jinja_env.globals["LOCALES"] = LOCALES
    app.jinja_env.globals["current_locale"] = select_locale


def terminal_locale(environ: Mapping[str, str] = os.environ) -> str:
    """The language of the `rescuehub` command's own output: RESCUEHUB_LANG when it names one
    (zh_Hans_CN or en), else the terminal's, from the first of LC_ALL, LC_MESSAGES and LANG
    that is set: Chinese for zh…, English for anything else (C, en_US…) and, as gettext does
    in the C locale, when none is set (a service manager or a script's bare environment)."""
    chosen = environ.get("RESCUEHUB_LANG", "")
    if chosen in LOCALES:
        return chosen
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return "zh_Hans_CN" if value.lower().startswith("zh") else "en"
    return "en"


@lru_cache(maxsize=1)
def _terminal_app() -> Flask:
    # A bare app whose only use is Flask-Babel's catalog lookup outside any request (the
    # command has no request, and often no hub app yet, e.g. when the settings are bad).
    app = Flask("dispatch")
    Babel(app, locale_selector=terminal_locale)
    return app


def terminal_str(message: Any) -> str:
    """A message (a lazy string of the hub's, or plain text) in the terminal's language."""
    with _terminal_app().app_context(), force_locale(terminal_locale()):
        return str(message)


def terminal_text(message: str, **variables: Any) -> str:
    """Translate one of the command's own lines (`%(name)s` placeholders) for the terminal."""
    return terminal_str(lazy_gettext(message, **variables))
