"""Alerts' rules for its settings section, [alerts] (config/default.toml), added to the kernel's
by `alerts/__init__.py` (dispatch.core.settings.add_check), and the parsed forms of its two
structured settings: the escalation steps and the webhooks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l

from alerts.choices import LEVELS, AlertKind
from dispatch.core.settings import SettingsError, Values, require_positive

# Who an escalation step may go to: office roles, then the county's webhook.
ESCALATION_TARGETS = ("dispatcher", "commander", "county")


@dataclass(frozen=True)
class EscalationStep:
    """One step: who is told, how many minutes after the level was reached (highest levels)."""

    target: str
    minutes: float


@dataclass(frozen=True)
class Webhook:
    """A webhook: where to POST, which kinds and levels (empty: all), JSON or CAP body."""

    url: str
    kinds: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    body: str = "json"

    def wants(self, kind: str, level: str) -> bool:
        return (not self.kinds or kind in self.kinds) and (not self.levels or level in self.levels)


def escalation_steps(text: str) -> list[EscalationStep]:
    """Parse "dispatcher:5,commander:10,county:15" (SettingsError naming the setting)."""
    steps = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        target, _, minutes = part.partition(":")
        try:
            value = float(minutes)
        except ValueError:
            value = -1.0
        if target not in ESCALATION_TARGETS or not value > 0:
            raise SettingsError(_l(
                "setting alerts.escalation: %(part)s is not who:minutes (who is dispatcher, "
                "commander or county; minutes greater than 0)", part=repr(part)))
        if steps and value <= steps[-1].minutes:
            raise SettingsError(_l("setting alerts.escalation: the minutes must increase "
                                   "from step to step"))
        steps.append(EscalationStep(target, value))
    return steps


def _https_or_http(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def webhooks(text: str) -> list[Webhook]:
    """Parse the JSON list of webhooks (SettingsError naming the setting and the entry)."""
    if not text.strip():
        return []
    try:
        entries = json.loads(text)
    except ValueError as exc:
        raise SettingsError(_l("setting alerts.webhooks is not JSON: %(problem)s",
                               problem=exc)) from None
    if not isinstance(entries, list):
        raise SettingsError(_l("setting alerts.webhooks must be a JSON list of objects"))
    hooks = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not _https_or_http(entry.get("url")):
            raise SettingsError(_l("setting alerts.webhooks[%(i)d] needs a \"url\" that starts "
                                   "with http:// or https://", i=i))
        kinds = tuple(entry.get("kinds") or ())
        levels = tuple(entry.get("levels") or ())
        body = entry.get("body", "json")
        known_levels = {lv for kind_levels in LEVELS.values() for lv in kind_levels}
        if (any(k not in set(AlertKind) for k in kinds) or any(lv not in known_levels
                                                               for lv in levels)
                or body not in {"json", "cap"}):
            raise SettingsError(_l("setting alerts.webhooks[%(i)d]: unknown kind, level or body "
                                   "(body is \"json\" or \"cap\")", i=i))
        hooks.append(Webhook(entry["url"], kinds, levels, body))
    return hooks


def check_settings(values: Values) -> None:
    """SettingsError naming the first [alerts] setting that is invalid."""
    alerts = values["alerts"]
    require_positive(values, "alerts.gauge_radius_m", "alerts.clear_hold_min",
                     "alerts.velocity_window_h", "alerts.webhook_attempts",
                     "alerts.webhook_backoff_s", "alerts.webhook_timeout_s")
    if not 0 < alerts["min_completeness"] <= 1:
        raise SettingsError(_l("setting alerts.min_completeness must be above 0 and at most 1"))
    escalation_steps(alerts["escalation"])
    webhooks(alerts["webhooks"])
    if alerts["county_webhook"] and not _https_or_http(alerts["county_webhook"]):
        raise SettingsError(_l("setting alerts.county_webhook must start with http:// or "
                               "https://"))
    if alerts["public_url"] and not _https_or_http(alerts["public_url"]):
        raise SettingsError(_l("setting alerts.public_url must start with http:// or https://"))
    if alerts["cap_status"] not in {"Actual", "Exercise", "System", "Test", "Draft"}:
        raise SettingsError(_l("setting alerts.cap_status must be Actual, Exercise, System, "
                               "Test or Draft (CAP 1.2 status)"))
    if not alerts["cap_sender"] or any(c in alerts["cap_sender"] for c in " ,<&"):
        raise SettingsError(_l("setting alerts.cap_sender must be an identifier without spaces, "
                               "commas, < or & (CAP 1.2 §3.2.1)"))
