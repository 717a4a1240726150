"""The Alembic migrations produce exactly the schema the models declare, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ecpa.db import Base, current_revision, get_engine, import_all_models


def test_migrated_schema_matches_models(db_url):
    import_all_models()
    with get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert current_revision(db_url) is not None
