"""SpatiaLite: drop the geometry-column timestamp triggers

SpatiaLite gives every geometry column three triggers (tmi_/tmu_/tmd_<table>_<column>) that
stamp `geometry_columns_time` after each INSERT, UPDATE and DELETE of a row. The UPDATE one fires
for any column, not only the geometry: every reading batch updates its sensors' last value and
revision, so each sensor row updated also rewrote `geometry_columns_time` (a scan with Lower()
per row). Measured with the ingest writer alone (1,000 rain gauges, single-reading messages):
183 µs per message with the triggers, 122 µs without. Nothing in the hub reads those stamps;
the geometry-constraint (gg*) and spatial-index (gi*) triggers stay.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 22:50:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_KINDS = (("tmi", "INSERT", "last_insert"), ("tmu", "UPDATE", "last_update"),
          ("tmd", "DELETE", "last_delete"))


def _geometry_columns(conn) -> list[tuple[str, str]]:
    return [tuple(row) for row in conn.execute(sa.text(
        "SELECT f_table_name, f_geometry_column FROM geometry_columns"))]


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    for table, column in _geometry_columns(conn):
        for kind, _event, _stamp in _KINDS:
            op.execute(f'DROP TRIGGER IF EXISTS "{kind}_{table}_{column}"')


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return
    for table, column in _geometry_columns(conn):
        for kind, event, stamp in _KINDS:
            op.execute(
                f'CREATE TRIGGER IF NOT EXISTS "{kind}_{table}_{column}" AFTER {event} ON '
                f'"{table}" FOR EACH ROW BEGIN UPDATE geometry_columns_time SET {stamp} = '
                f"strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE Lower(f_table_name) = "
                f"Lower('{table}') AND Lower(f_geometry_column) = Lower('{column}'); END")
