"""The depot's rules for its settings section, [depot] (config/default.toml), added to the
kernel's by `depot/__init__.py` (dispatch.core.settings.add_check)."""

from __future__ import annotations

from dispatch.core.settings import Values, require_positive, require_timezone


def check_settings(values: Values) -> None:
    """SettingsError naming the first [depot] setting that is invalid."""
    require_positive(values, "depot.default_due_h", "depot.inspection_warn_days",
                     "depot.expiry_warn_days")
    require_timezone(values, "depot.timezone")
