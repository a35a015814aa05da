"""Sensor kinds, their units and labels, and quality flags, in one place."""

from enum import StrEnum

from flask_babel import lazy_gettext as _l


class SensorKind(StrEnum):
    """What a sensor measures (DESIGN §5)."""

    RAIN_GAUGE = "rain_gauge"
    WATER_LEVEL = "water_level"
    CRACK_METER = "crack_meter"
    GNSS = "gnss"
    TILT = "tilt"
    SOIL_MOISTURE = "soil_moisture"
    PORE_PRESSURE = "pore_pressure"


# The unit each kind reports in; a registration or a reading with another unit is refused.
UNITS = {
    SensorKind.RAIN_GAUGE: ("mm",),
    SensorKind.WATER_LEVEL: ("m",),
    SensorKind.CRACK_METER: ("mm",),
    SensorKind.GNSS: ("mm",),
    SensorKind.TILT: ("deg",),
    SensorKind.SOIL_MOISTURE: ("%",),
    SensorKind.PORE_PRESSURE: ("kPa",),
}

# Instrument limits used when a registration gives no range (hard limits, DESIGN §5 "Range").
DEFAULT_RANGES = {
    SensorKind.RAIN_GAUGE: (0.0, 200.0),
    SensorKind.WATER_LEVEL: (-5.0, 50.0),
    SensorKind.CRACK_METER: (0.0, 2000.0),
    SensorKind.GNSS: (0.0, 5000.0),
    SensorKind.TILT: (-90.0, 90.0),
    SensorKind.SOIL_MOISTURE: (0.0, 100.0),
    SensorKind.PORE_PRESSURE: (-100.0, 1000.0),
}

DISPLACEMENT_KINDS = (SensorKind.CRACK_METER, SensorKind.GNSS)

LABELS = {
    SensorKind.RAIN_GAUGE: _l("Rain gauge"),
    SensorKind.WATER_LEVEL: _l("Water level"),
    SensorKind.CRACK_METER: _l("Crack meter"),
    SensorKind.GNSS: _l("GNSS displacement"),
    SensorKind.TILT: _l("Tilt"),
    SensorKind.SOIL_MOISTURE: _l("Soil moisture"),
    SensorKind.PORE_PRESSURE: _l("Pore pressure"),
}

# Quality-control parameters a sensor gets unless its registration sets its own (`qc`, merged
# over these; telemetry.qc.QcParams names them). Plausibility, not hard limits: a reading beyond
# them is stored flagged suspect or fail (DESIGN §5 "Range"). Sources: QARTOD manuals (tests);
# values are conservative starting points for a 5-10 minute reporting interval — tune per site.
DEFAULT_QC = {
    # 40 mm in one 5-minute report is beyond the heaviest observed 5-minute rain; a non-zero
    # value repeated for 2 h (24 reports) looks like a stuck counter (dry zeros are exempt).
    SensorKind.RAIN_GAUGE: {"suspect_max": 40.0, "stuck_count": 24},
    # A river rising 1.5 m between two reports or faster than 18 m/h is suspect; 3 h flat too.
    SensorKind.WATER_LEVEL: {"spike_threshold": 1.5, "rate_of_change_max": 0.005,
                             "stuck_count": 36},
    # Displacement is cumulative: a jump of 50 mm against the recent median is suspect, 200 fail.
    SensorKind.CRACK_METER: {"spike_threshold": 50.0, "spike_fail_threshold": 200.0},
    SensorKind.GNSS: {"spike_threshold": 50.0, "spike_fail_threshold": 200.0},
    SensorKind.TILT: {"spike_threshold": 5.0},
    SensorKind.SOIL_MOISTURE: {"spike_threshold": 25.0, "stuck_count": 288,
                               "stuck_tolerance": 0.0},
    SensorKind.PORE_PRESSURE: {"spike_threshold": 50.0},
}
