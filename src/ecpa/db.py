"""Storage: the SQLAlchemy engine, sessions and schema migrations.

The schema is declared once, in each domain package's ``models`` module, on ``Base``;
Alembic migrations in ``ecpa/migrations`` create and upgrade it on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from .config import get_settings

# Fixed constraint names so that migrations are the same on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().database_url
    engine = _engines.get(url)
    if engine is None:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            settings = get_settings()
            engine = create_engine(url, pool_pre_ping=True, pool_size=settings.db_pool_size,
                                   max_overflow=settings.db_max_overflow)
        _engines[url] = engine
    return engine


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    url = url or get_settings().database_url
    factory = _factories.get(url)
    if factory is None:
        factory = _factories[url] = sessionmaker(get_engine(url), expire_on_commit=False)
    return factory


def dispose_engines() -> None:
    """Close every pooled connection (tests, and before deleting a SQLite file)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _factories.clear()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session committed on success and rolled back on any error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def bulk_insert(session: Session, table, rows: list[dict]) -> None:
    """Insert many rows of one shape: COPY on PostgreSQL (several times faster than
    multi-row INSERT over the socket), executemany elsewhere.  Python-side column
    defaults are not applied by COPY: rows must carry every value they need."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(table.insert(), rows)
        return
    import json

    columns = list(rows[0])
    json_cols = {c.name for c in table.columns if c.type.__class__.__name__ == "JSON"}
    cursor = session.connection().connection.driver_connection.cursor()
    names = ", ".join(f'"{c}"' for c in columns)
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([
                json.dumps(row[c], ensure_ascii=False) if c in json_cols and row[c] is not None
                else (row[c].value if hasattr(row[c], "value") else row[c])
                for c in columns
            ])


def _alembic_config(url: str):
    from alembic.config import Config

    here = Path(__file__).parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(here))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "heads") -> None:
    """Create or upgrade the schema to ``revision`` with the Alembic migrations."""
    from alembic import command

    url = url or get_settings().database_url
    command.upgrade(_alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def import_all_models() -> None:
    """Import every domain package's models so that ``Base.metadata`` is complete."""
    from .api import idempotency as _idempotency  # noqa: F401
    from .advice import models as _advice  # noqa: F401
    from .campaigns import models as _campaigns  # noqa: F401
    from .cases import models as _cases  # noqa: F401
    from .cooperatives import models as _cooperatives  # noqa: F401
    from .duplicates import models as _duplicates  # noqa: F401
    from .grievances import models as _grievances  # noqa: F401
    from .ledger import models as _ledger  # noqa: F401
    from .livelihoods import models as _livelihoods  # noqa: F401
    from .market import models as _market  # noqa: F401
    from .measure import models as _measure  # noqa: F401
    from .people import models as _people  # noqa: F401
    from .programs import models as _programs  # noqa: F401
    from .regions import models as _regions  # noqa: F401
    from .stations import models as _stations  # noqa: F401
    from .registry import models as _registry  # noqa: F401
    from .quality import models as _quality  # noqa: F401
    from .trace import models as _trace  # noqa: F401


def in_list(session: Session, column, values: list):
    """``column IN values``; on PostgreSQL as ``= ANY(array)`` with one parameter, which
    spares the driver from parsing thousands of placeholders (bulk use cases)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import ARRAY, any_, bindparam
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def any_of(column, name: str, dialect: str):
    """``column`` equal to one of the list bound later as ``name``, for a statement built
    once and executed many times: one array parameter on PostgreSQL, an expanding IN
    elsewhere (see ``in_list``)."""
    from sqlalchemy import ARRAY, any_, bindparam
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))
