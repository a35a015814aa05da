"""The roster's rules for its settings section, [roster] (config/default.toml), added to the
kernel's by `dispatch/roster/__init__.py` (dispatch.core.settings.add_check)."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import lazy_gettext as _l

from dispatch.core.settings import SettingsError, Values, require_positive
from dispatch.evacuation.settings import CLOCK
from dispatch.roster.rota import SHIFT_HOURS


def check_settings(values: Values) -> None:
    """SettingsError naming the first [roster] setting that is invalid."""
    section = values["roster"]
    require_positive(values, "roster.shift_h", "roster.coverage_days", "roster.expiry_warn_days")
    if section["shift_h"] not in SHIFT_HOURS:
        raise SettingsError(_l("setting roster.shift_h must be 8, 12 or 24 (hours)"))
    if not CLOCK.match(str(section["change_at"])):
        raise SettingsError(_l("setting roster.change_at must be a time of day as HH:MM"))
    try:
        ZoneInfo(str(section["timezone"]))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(_l("setting roster.timezone must be a time zone name such as "
                               "Asia/Shanghai")) from exc
