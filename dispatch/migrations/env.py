"""Alembic environment: runs on the hub's own engine (with the SpatiaLite hook) on both backends.

NOTES.md: use geoalchemy2's alembic helpers, render_as_batch on SQLite, foreign keys off during a
batch migration, and keep SpatiaLite's own tables out of autogenerate.
"""

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import text

import alerts.models  # noqa: F401
import depot.models  # noqa: F401
import dispatch.core.models  # noqa: F401  (register the kernel's tables)
import dispatch.evacuation.models  # noqa: F401
import dispatch.positions.models  # noqa: F401
import dispatch.roster.models  # noqa: F401
import maps.models  # noqa: F401
import telemetry.models  # noqa: F401
from dispatch.core.db import Base
from dispatch.core.schema import include_object


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.execute(text("PRAGMA foreign_keys = OFF"))
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        connection.execute(text("PRAGMA foreign_keys = ON"))


run_migrations_online()
