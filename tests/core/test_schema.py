"""Migrations: up from empty on both backends, and the models match the revisions."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from dispatch.core import schema
from dispatch.core.db import Base, db, make_engine
from dispatch.core.schema import include_object


def test_schema_at_head(app):
    assert schema.current(db.engine) == schema.head()
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "gateways", "api_tokens", "audit_log", "audit_head"} <= tables


def test_models_match_migrations(app):
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include_object,
                                                     "compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(app):
    schema.upgrade(db.engine)
    assert schema.current(db.engine) == schema.head()


def _triggers(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                     "AND tbl_name = 'sensors'")).scalars())


def test_spatialite_timestamp_triggers_dropped_and_restored(tmp_path):
    """0006 drops the triggers that stamped geometry_columns_time on every sensor update; the
    geometry-constraint and spatial-index triggers stay; a downgrade brings them back."""
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    try:
        schema.upgrade(engine)
        kept = {"ggi_sensors_location", "ggu_sensors_location", "gii_sensors_location",
                "giu_sensors_location", "gid_sensors_location"}
        stamps = {"tmi_sensors_location", "tmu_sensors_location", "tmd_sensors_location"}
        assert _triggers(engine) == kept
        with engine.connect() as conn:
            command.downgrade(schema.alembic_config(conn), "0005")
            conn.commit()
        assert _triggers(engine) == kept | stamps
        schema.upgrade(engine)
        assert _triggers(engine) == kept
    finally:
        engine.dispose()
