"""The roster's rules for its settings section, [roster] (config/default.toml), added to the
kernel's by `dispatch/roster/__init__.py` (dispatch.core.settings.add_check)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from dispatch.core.settings import SettingsError, Values, require_positive, require_timezone
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
    require_timezone(values, "roster.timezone")
