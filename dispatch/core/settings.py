"""Settings: config/default.toml, then the RESCUEHUB_CONFIG file, then RESCUEHUB_* variables.

This is the only module that reads the environment for configuration. Every value is checked
against the type of its default, then against the kernel's rules and those each package adds for
its own sections (`add_check`, when the package is imported: telemetry checks [ingest] and
[telemetry]); a bad value stops start-up with a `SettingsError` naming the setting.

One switch is for the test suite only: `RESCUEHUB_TESTING=1` lets `web.password_hash` name a
method weaker than the floors below (tests hash with "pbkdf2:sha256:1", since a strong hash takes
~100 ms and several are made per test user). Without it such a method is refused at start-up.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import lazy_gettext as _l

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "config"
DEFAULT_FILE = CONFIG_DIR / "default.toml"
ENV_PREFIX = "RESCUEHUB_"
TESTING_VAR = ENV_PREFIX + "TESTING"

# The weakest password hashes the hub accepts outside tests: werkzeug's scrypt default
# (N=2^15, r=8, p=1) and OWASP's PBKDF2 figures (Password Storage Cheat Sheet, 2023).
SCRYPT_FLOOR = (2**15, 8, 1)
PBKDF2_FLOORS = {"sha256": 600_000, "sha512": 210_000}


class SettingsError(ValueError):
    """A setting is missing, unknown or invalid; the message names it and says what to do
    (a lazy string: English in logs, the terminal's language from `rescuehub`)."""


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(_l("settings file %(path)s not found: check RESCUEHUB_CONFIG",
                               path=path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(_l("settings file %(path)s is not valid TOML: %(problem)s",
                               path=path, problem=exc)) from None


TYPE_NAMES = {int: _l("a whole number"), float: _l("a number"), str: _l("text"),
              bool: _l("true or false")}


def _coerce(name: str, default: Any, value: Any) -> Any:
    """Convert an override (TOML value or environment string) to the default's type."""
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        if kind is bool:
            if text.lower() in {"1", "true", "yes", "on"}:
                return True
            if text.lower() in {"0", "false", "no", "off"}:
                return False
            raise SettingsError(_l("setting %(name)s must be true or false, got %(value)s",
                                   name=name, value=repr(value)))
        try:
            return kind(text)
        except ValueError:
            raise SettingsError(_l("setting %(name)s must be %(type)s, got %(value)s",
                                   name=name, type=TYPE_NAMES[kind], value=repr(value))) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise SettingsError(_l("setting %(name)s must be %(type)s, got %(value)s",
                               name=name, type=TYPE_NAMES[kind], value=repr(value)))
    return value


def _merge(base: dict[str, dict[str, Any]], layer: Mapping[str, Any], origin: str) -> None:
    for section, values in layer.items():
        if section not in base or not isinstance(values, Mapping):
            raise SettingsError(_l("unknown settings section [%(section)s] in %(origin)s",
                                   section=section, origin=origin))
        for key, value in values.items():
            name = f"{section}.{key}"
            if key not in base[section]:
                raise SettingsError(_l("unknown setting %(name)s in %(origin)s", name=name,
                                       origin=origin))
            base[section][key] = _coerce(name, base[section][key], value)


def _env_layer(environ: Mapping[str, str], known: Mapping[str, Mapping[str, Any]]) -> dict:
    layer: dict[str, dict[str, str]] = {}
    for var, value in environ.items():
        # RESCUEHUB_CONFIG names the file; RESCUEHUB_LANG the command's language
        # (dispatch.core.i18n.terminal_locale); RESCUEHUB_TESTING is the test suite's switch
        # (module docstring): none is a setting.
        if not var.startswith(ENV_PREFIX) or var in (ENV_PREFIX + "CONFIG", ENV_PREFIX + "LANG",
                                                     TESTING_VAR):
            continue
        rest = var[len(ENV_PREFIX):].lower()
        for section in known:
            if rest.startswith(section + "_") and rest[len(section) + 1:] in known[section]:
                layer.setdefault(section, {})[rest[len(section) + 1:]] = value
                break
        else:
            if not rest.startswith("test_"):
                raise SettingsError(_l("unknown setting in environment variable %(var)s",
                                       var=var))
    return layer


def _port(name: str, value: int) -> None:
    if not 1 <= value <= 65535:
        raise SettingsError(_l("setting %(name)s must be a port number 1-65535, got %(value)s",
                               name=name, value=value))


Values = Mapping[str, Mapping[str, Any]]
# The packages' own rules, run after the kernel's by every load_settings (see add_check).
_PACKAGE_CHECKS: list[Callable[[Values], None]] = []


def add_check(check: Callable[[Values], None]) -> None:
    """Add a package's rules for its own sections (raise SettingsError naming the setting);
    called when the package is imported, which the app factory's module does for every package."""
    if check not in _PACKAGE_CHECKS:
        _PACKAGE_CHECKS.append(check)


def require_positive(values: Values, *names: str) -> None:
    """SettingsError unless each named setting ("section.key") is greater than 0."""
    for name in names:
        section, key = name.split(".")
        if values[section][key] <= 0:
            raise SettingsError(_l("setting %(name)s must be greater than 0", name=name))


def require_timezone(values: Values, *names: str) -> None:
    """SettingsError unless each named setting ("section.key") is an IANA time zone name."""
    for name in names:
        section, key = name.split(".")
        try:
            ZoneInfo(str(values[section][key]))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(_l("setting %(name)s must be a time zone name such as "
                                   "Asia/Shanghai", name=name)) from exc


@dataclass(frozen=True)
class MqttEndpoint:
    """Where the broker listens, parsed from mqtt.url."""

    host: str
    port: int
    tls: bool


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """Parse mqtt://host:port (or mqtts://) into its parts; SettingsError if malformed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SettingsError(_l("setting mqtt.url is not a valid URL: %(url)s",
                               url=repr(url))) from None
    if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
        raise SettingsError(_l("setting mqtt.url must look like mqtt://127.0.0.1:18830, got "
                               "%(url)s", url=repr(url)))
    tls = parts.scheme == "mqtts"
    return MqttEndpoint(parts.hostname, port or (8883 if tls else 1883), tls)


def _password_hash_floor(method: str) -> tuple[bool, str] | None:
    """(weaker than the floor, the floor's method) of a werkzeug hash method; None when it is
    not a method the hub takes."""
    name, *args = method.split(":")
    if name == "scrypt" and len(args) in (0, 3):
        try:
            n, r, p = (int(a) for a in args) if args else SCRYPT_FLOOR
        except ValueError:
            return None
        if n < 2 or n & (n - 1) or r < 1 or p < 1:
            return None  # hashlib.scrypt takes a power of two above 1 and positive r, p
        weaker = n < SCRYPT_FLOOR[0] or r < SCRYPT_FLOOR[1] or p < SCRYPT_FLOOR[2]
        return weaker, "scrypt:" + ":".join(map(str, SCRYPT_FLOOR))
    if name == "pbkdf2" and len(args) == 2 and args[0] in PBKDF2_FLOORS and args[1].isascii() \
            and args[1].isdigit() and int(args[1]) > 0:
        floor = PBKDF2_FLOORS[args[0]]
        return int(args[1]) < floor, f"pbkdf2:{args[0]}:{floor}"
    return None


def _check_password_hash(method: str, testing: bool) -> None:
    verdict = _password_hash_floor(method)
    if verdict is None:
        raise SettingsError(_l('setting web.password_hash must be "scrypt", "scrypt:N:r:p" or '
                               '"pbkdf2:sha256:ITERATIONS" (or sha512), got %(value)s',
                               value=repr(method)))
    weaker, floor = verdict
    if weaker and not testing:
        raise SettingsError(_l("setting web.password_hash %(value)s is too weak to protect "
                               "passwords: use the default, or at least %(floor)s",
                               value=repr(method), floor=floor))


def _validate(values: dict[str, dict[str, Any]], testing: bool = False) -> None:
    _port("web.port", values["web"]["port"])
    require_positive(values, "web.threads", "web.http_threads",
                     "web.max_connections_per_address", "web.request_timeout_s",
                     "web.live_auth_timeout_s", "web.token_ttl_s", "web.session_ttl_s",
                     "web.login_max_failures", "web.login_window_s", "database.pool_size",
                     "database.busy_timeout_s", "mqtt.session_expiry_s", "mqtt.keepalive_s")
    if values["web"]["http_threads"] >= values["web"]["threads"]:
        raise SettingsError(_l("setting web.http_threads must be less than web.threads (the "
                               "rest serve live connections)"))
    parse_mqtt_url(values["mqtt"]["url"])
    if values["mqtt"]["protocol"] not in {"3.1.1", "5"}:
        raise SettingsError(_l('setting mqtt.protocol must be "3.1.1" or "5"'))
    url = values["database"]["url"]
    if url and not url.startswith(("sqlite:///", "postgresql")):
        raise SettingsError(_l("setting database.url must be empty (SpatiaLite in the data "
                               "directory), sqlite:///FILE or postgresql+psycopg://…, got "
                               "%(url)s", url=repr(url)))
    anchor = values["audit"]["anchor_url"]
    if anchor and not anchor.startswith(("https://", "http://")):
        raise SettingsError(_l("setting audit.anchor_url must be empty or an http(s):// URL, got "
                               "%(url)s", url=repr(anchor)))
    queue = values["realtime"]["message_queue"]
    if queue and not queue.startswith(("redis://", "rediss://")):
        raise SettingsError(_l("setting realtime.message_queue must be a redis:// URL, got "
                               "%(url)s", url=repr(queue)))
    if values["log"]["level"].upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError(_l("setting log.level must be DEBUG, INFO, WARNING or ERROR"))
    if not 0 <= values["worker"]["metrics_port"] <= 65535:
        raise SettingsError(_l("setting worker.metrics_port must be 0 (off) or a port number"))
    if values["web"]["default_locale"] not in {"zh_Hans_CN", "en"}:
        raise SettingsError(_l("setting web.default_locale must be zh_Hans_CN or en"))
    _check_password_hash(values["web"]["password_hash"], testing)
    for check in _PACKAGE_CHECKS:
        check(values)


class Settings:
    """Validated settings, read as settings.section.key or settings.get('section.key')."""

    def __init__(self, values: dict[str, dict[str, Any]]):
        self._values = values

    def get(self, name: str) -> Any:
        section, key = name.split(".", 1)
        return self._values[section][key]

    def __getattr__(self, section: str) -> Any:
        try:
            return _Section(self._values[section])
        except KeyError:
            raise AttributeError(section) from None

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {section: dict(values) for section, values in self._values.items()}

    @property
    def data_dir(self) -> Path:
        """The data directory, absolute."""
        return Path(self._values["data"]["dir"]).expanduser().resolve()

    @property
    def mqtt_endpoint(self) -> MqttEndpoint:
        return parse_mqtt_url(self._values["mqtt"]["url"])

    @property
    def database_url(self) -> str:
        """The configured database URL, or the SpatiaLite file in the data directory."""
        return self._values["database"]["url"] or f"sqlite:///{self.data_dir / 'rescuehub.sqlite'}"


class _Section:
    def __init__(self, values: dict[str, Any]):
        self._values = values

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None


def load_settings(
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Load and validate settings: defaults, RESCUEHUB_CONFIG file, environment, then overrides
    (a weak web.password_hash only with RESCUEHUB_TESTING=1 in the environment: tests only)."""
    environ = os.environ if environ is None else environ
    values = _load_toml(DEFAULT_FILE)
    config_file = environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        _merge(values, _load_toml(Path(config_file)), config_file)
    _merge(values, _env_layer(environ, values), "the environment")
    if overrides:
        _merge(values, overrides, "overrides")
    _validate(values, testing=environ.get(TESTING_VAR) == "1")
    return Settings(values)
