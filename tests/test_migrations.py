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


def test_loan_products_made_before_the_prepayment_choice_keep_paying_in_advance(tmp_path):
    """Migration 0017 gives existing products and loans ``advance_instalments``: their
    recorded repayments were allocated that way and must replay the same."""
    from sqlalchemy import text

    from ecpa.db import dispose_engines, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0016")
    with get_engine(url).begin() as conn:
        conn.execute(text(
            "INSERT INTO loan_product (id, name, lender_name, annual_rate, penalty_rate, months, "
            "method, grace_months, fee_fen, max_principal_fen, allocation_order, "
            "interest_subsidy_bp, guarantor_kind, guarantor_name, guarantee_bp, created_by, "
            "created_at) VALUES (1, 'old', 'rcc', '0.0435', '0', 12, 'bullet', 0, 0, 100, "
            "'[\"penalty\", \"fee\", \"interest\", \"principal\"]', 0, 'government', 'fund', 0, "
            "'test', '2024-01-01 00:00:00')"))
    upgrade(url)
    with get_engine(url).connect() as conn:
        assert conn.execute(text("SELECT prepayment FROM loan_product")).scalar_one() == \
            "advance_instalments"
    dispose_engines()
