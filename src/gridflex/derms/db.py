"""Database plumbing of the registry: the declarative ``Base``, engines, sessions, migrations.

SQLite is the embedded default (a file under ``~/.local/share/gridflex``), PostgreSQL the
production store (issue 4, "Registry"). Both run the same Alembic migrations, which ship inside the
package (``gridflex/derms/migrations``) and are applied programmatically by :func:`upgrade`.

Transactions: managers in :mod:`gridflex.derms.registry` flush but never commit; the caller owns
the transaction (``with factory.begin() as session: ...``), so a failing operation changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from gridflex.errors import InputError

#: Constraint names are deterministic so migrations can drop/alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class Base(DeclarativeBase):
    """Declarative base of every gridflex table (registry here, 2030.5 tables in ``sep2``)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def default_url() -> str:
    """The database URL used when none is given.

    ``$GRIDFLEX_DB_URL`` if set, else the SQLite file ``gridflex.sqlite`` under
    ``$XDG_DATA_HOME/gridflex`` (``~/.local/share/gridflex`` when that is unset).
    """
    env = os.environ.get("GRIDFLEX_DB_URL")
    if env:
        return env
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(data_home) / 'gridflex' / 'gridflex.sqlite'}"


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and pick the drivers gridflex ships with (psycopg 3 for PostgreSQL).

    Raises
    ------
    InputError
        If the URL cannot be parsed or names a backend other than SQLite or PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise InputError(
            f"database URL {str(url)!r} is not a valid SQLAlchemy URL",
            "use e.g. 'sqlite:////path/to/gridflex.sqlite' or 'postgresql://user@host:5432/dbname'",
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername in {"postgresql", "postgres"}:
            parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise InputError(
            f"database URL {parsed.render_as_string(hide_password=True)!r} names backend "
            f"{backend!r}; gridflex supports SQLite and PostgreSQL",
            "give a 'sqlite:///...' or 'postgresql://...' URL",
        )
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling defeats SAVEPOINT and transactional DDL; take it over
    # (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL" for pysqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


def make_engine(url: str | URL | None = None, **kwargs: Any) -> Engine:
    """Create an engine for the registry database.

    Parameters
    ----------
    url:
        SQLAlchemy URL; ``None`` uses :func:`default_url`. ``postgresql://`` URLs use psycopg 3.
    **kwargs:
        Passed to :func:`sqlalchemy.create_engine`.

    Notes
    -----
    SQLite connections get ``foreign_keys=ON`` and WAL journaling; the parent folder of a SQLite
    file is created when missing.
    """
    parsed = normalize_url(default_url() if url is None else url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine`` (objects stay usable after commit)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One session in one transaction: committed on success, rolled back on any error."""
    with session_factory(engine).begin() as session:
        yield session


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def _as_engine(engine_or_url: Engine | str | URL | None) -> tuple[Engine, bool]:
    if isinstance(engine_or_url, Engine):
        return engine_or_url, False
    return make_engine(engine_or_url), True


def upgrade(engine_or_url: Engine | str | URL | None = None, revision: str = "head") -> None:
    """Apply the Alembic migrations up to ``revision`` (default: the newest)."""
    from alembic import command

    engine, owned = _as_engine(engine_or_url)
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), revision)
    finally:
        if owned:
            engine.dispose()


def downgrade(engine_or_url: Engine | str | URL | None, revision: str = "base") -> None:
    """Undo migrations down to ``revision`` (default: an empty database)."""
    from alembic import command

    engine, owned = _as_engine(engine_or_url)
    try:
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), revision)
    finally:
        if owned:
            engine.dispose()


def current_revision(engine_or_url: Engine | str | URL | None = None) -> str | None:
    """The revision the database is at (``None`` for a database never migrated)."""
    from alembic.runtime.migration import MigrationContext

    engine, owned = _as_engine(engine_or_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        if owned:
            engine.dispose()


def head_revision() -> str:
    """The newest revision shipped with this gridflex."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(None))
    head = script.get_current_head()
    assert head is not None  # the package always ships at least 0001_registry
    return head


def table_names(engine: Engine) -> set[str]:
    """Names of the tables present in the database (diagnostics and tests)."""
    return set(inspect(engine).get_table_names())
