"""Telemetry's rules for its settings sections, [ingest] and [telemetry] (config/default.toml),
added to the kernel's by `telemetry/__init__.py` (dispatch.core.settings.add_check)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from dispatch.core.settings import SettingsError, Values, require_positive


def check_settings(values: Values) -> None:
    """SettingsError naming the first [ingest] or [telemetry] setting that is invalid."""
    require_positive(values, "ingest.max_payload_bytes", "ingest.max_future_s",
                     "ingest.max_age_days", "ingest.dead_letters_per_minute",
                     "ingest.dead_letter_bytes_per_minute", "ingest.dead_letter_retention_days",
                     "telemetry.raw_retention_days", "telemetry.event_dry_gap_h",
                     "telemetry.antecedent_days", "telemetry.gateway_silence_s")
    if not 0 < values["telemetry"]["antecedent_k"] < 1:
        raise SettingsError(_l("setting telemetry.antecedent_k must be between 0 and 1"))
