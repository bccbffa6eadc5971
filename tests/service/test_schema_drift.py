"""db/models.py describes the schema the migrations build: tables, columns, types, indexes,
unique and foreign keys (Alembic's own comparison), so code written against the models is
written against the real database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tracker_service.db.models import metadata


def test_models_match_the_migrated_database(db):
    with db.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == [], "db/models.py and the migrations differ:\n" + "\n".join(map(repr, differences))
