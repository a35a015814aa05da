"""Languages: Chinese first (zh_Hans_CN), English second, switched with the `lang` cookie.

Babel reads `zh_CN` as `zh_Hans_CN`, so the catalog lives in translations/zh_Hans_CN (NOTES.md).
Source strings are English; the Chinese catalog translates them.
"""

from flask import Flask, request
from flask_babel import Babel, refresh

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
