"""Migrations: up from empty on both backends, and the models match the revisions."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from dispatch.core import schema
from dispatch.core.db import Base, db
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
