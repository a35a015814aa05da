"""The positions' rules for their settings section, [positions] (config/default.toml), added to
the kernel's by `dispatch/positions/__init__.py` (dispatch.core.settings.add_check)."""

from __future__ import annotations

from dispatch.core.settings import Values, require_positive


def check_settings(values: Values) -> None:
    """SettingsError naming the first [positions] setting that is invalid."""
    require_positive(values, "positions.retention_days", "positions.max_future_s",
                     "positions.shelter_radius_m", "positions.geofence_margin_m",
                     "positions.max_age_days")
