"""The positions' rules for their settings section, [positions] (config/default.toml), added to
the kernel's by `dispatch/positions/__init__.py` (dispatch.core.settings.add_check)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from dispatch.core.settings import SettingsError, Values, require_positive

# The longest wait between a marker moving and its `position` event that the setting allows.
EVENT_EVERY_MAX_S = 5


def check_settings(values: Values) -> None:
    """SettingsError naming the first [positions] setting that is invalid."""
    require_positive(values, "positions.retention_days", "positions.max_future_s",
                     "positions.shelter_radius_m", "positions.geofence_margin_m",
                     "positions.max_age_days")
    if not 0 < values["positions"]["event_every_s"] <= EVENT_EVERY_MAX_S:
        raise SettingsError(_l("setting positions.event_every_s must be more than 0 and at "
                               "most %(max)s seconds", max=EVENT_EVERY_MAX_S))
