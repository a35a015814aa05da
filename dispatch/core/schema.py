"""Create or upgrade the schema with Alembic (the same revisions on SpatiaLite and PostGIS)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_babel import lazy_gettext as _l
from geoalchemy2 import alembic_helpers
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from dispatch.core.errors import SetupError

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"

SPATIALITE_TABLES = {
    "spatial_ref_sys", "spatial_ref_sys_aux", "spatialite_history", "sql_statements_log",
    "data_licenses", "KNN", "KNN2", "SpatialIndex", "ElementaryGeometries", "geometry_columns",
    "geometry_columns_auth", "geometry_columns_field_infos", "geometry_columns_statistics",
    "geometry_columns_time", "views_geometry_columns", "views_geometry_columns_auth",
    "views_geometry_columns_field_infos", "views_geometry_columns_statistics",
    "virts_geometry_columns", "virts_geometry_columns_auth", "virts_geometry_columns_field_infos",
    "virts_geometry_columns_statistics", "spatial_ref_sys_all", "vector_layers",
    "vector_layers_auth", "vector_layers_field_infos", "vector_layers_statistics",
    "topologies", "networks", "raster_coverages", "wms_getcapabilities",
    "SE_external_graphics", "SE_fonts", "SE_raster_styled_layers", "SE_vector_styled_layers",
    "rl2map_configurations", "stored_procedures", "stored_variables", "iso_metadata",
    "layer_statistics", "views_layer_statistics", "virts_layer_statistics",
}


def include_object(obj, name, type_, reflected, compare_to):
    """Leave SpatiaLite's own tables out of autogenerate and comparisons (NOTES.md)."""
    if type_ == "table" and (name in SPATIALITE_TABLES or name.startswith(("idx_", "spatial"))):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def alembic_config(connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _ensure_postgis(engine: Engine) -> None:
    with engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).scalar():
            return
        try:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            conn.commit()
        except DBAPIError as exc:
            raise SetupError(_l(
                "PostGIS is not enabled in this database and the hub's user may not enable it "
                "(%(problem)s). As a superuser run: CREATE EXTENSION postgis; (Debian: apt-get "
                "install postgresql-15-postgis-3).", problem=str(exc.orig).splitlines()[0])
            ) from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (PostGIS: enable the extension first)."""
    if engine.dialect.name == "postgresql":
        _ensure_postgis(engine)
    with engine.connect() as conn:
        command.upgrade(alembic_config(conn), revision)
        conn.commit()


def current(engine: Engine) -> str | None:
    """The schema's current revision, None on an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    """The newest revision in the code."""
    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()
