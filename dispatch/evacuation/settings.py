"""The evacuation planner's rules for its settings section, [evacuation] (config/default.toml),
added to the kernel's by `dispatch/evacuation/__init__.py` (dispatch.core.settings.add_check)."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l

from dispatch.core.settings import SettingsError, Values, require_positive, require_timezone

CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def minutes_of_day(text: str) -> int:
    """"20:00" -> 1200 (the caller has checked the form)."""
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def check_settings(values: Values) -> None:
    """SettingsError naming the first [evacuation] setting that is invalid."""
    section = values["evacuation"]
    require_positive(values, "evacuation.access_speed_kmh", "evacuation.max_travel_min",
                     "evacuation.debounce_s")
    if not 0 <= section["prepare_fraction"] <= 1:
        raise SettingsError(_l("setting evacuation.prepare_fraction must be between 0 and 1"))
    for key in ("night_start", "night_end"):
        if not CLOCK.match(str(section[key])):
            raise SettingsError(_l("setting evacuation.%(key)s must be a time of day as HH:MM",
                                   key=key))
    require_timezone(values, "evacuation.timezone")
