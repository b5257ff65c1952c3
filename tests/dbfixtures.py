"""Database fixtures shared by the registry (``tests/derms``) and 2030.5 (``tests/sep2``) tests.

Import them into an area's ``conftest.py``::

    from tests.dbfixtures import _migrated_templates, db_backend, db_url, engine, session

- ``db_backend``: ``"sqlite"`` or ``"postgresql"`` (the PostgreSQL param is marked ``postgres``).
- ``db_url``: a fresh, EMPTY database of that backend (a temp SQLite file, or a uniquely named
  PostgreSQL database created for the test and dropped afterwards).
- ``engine``: an engine on an empty database already migrated to head. For speed, SQLite copies
  a file migrated once per session; PostgreSQL reuses one migrated database per session and
  TRUNCATEs every table (identities restarted) after each test, because CREATE DATABASE costs a
  checkpoint. The migrations themselves are tested from an empty ``db_url``.
- ``session``: a session on ``engine`` (closed afterwards; commit in the test as needed).

PostgreSQL comes from ``GRIDFLEX_TEST_POSTGRES_URL`` (an admin URL, any database), defaulting to
``postgresql://postgres@127.0.0.1:5432/postgres``. If the variable is SET and the server cannot be
reached the tests FAIL (CI promised a server); if it is unset and nothing answers they are skipped.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from gridflex.derms.db import head_revision, make_engine, normalize_url, session_factory, upgrade

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@cache
def _postgres_admin() -> tuple[URL | None, str]:
    """(admin URL, reason) — URL is None when PostgreSQL is unavailable."""
    raw = os.environ.get("GRIDFLEX_TEST_POSTGRES_URL")
    url = normalize_url(raw or DEFAULT_POSTGRES_URL)
    try:
        import psycopg

        psycopg.connect(
            url.set(drivername="postgresql").render_as_string(hide_password=False),
            connect_timeout=3,
        ).close()
    except Exception as exc:
        where = url.render_as_string(hide_password=True)
        if raw:
            return None, (
                f"GRIDFLEX_TEST_POSTGRES_URL is set to {where} but the server cannot be reached "
                f"({type(exc).__name__}: {str(exc).strip()[:200]}); start it or unset the variable"
            )
        return None, f"no PostgreSQL at {where} and GRIDFLEX_TEST_POSTGRES_URL unset ({exc})"
    return url, ""


def _require_postgres() -> URL:
    url, reason = _postgres_admin()
    if url is None:
        if os.environ.get("GRIDFLEX_TEST_POSTGRES_URL"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return url


def _admin_execute(admin: URL, sql: str) -> None:
    engine = make_engine(admin, isolation_level="AUTOCOMMIT", poolclass=_null_pool())
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _null_pool() -> type:
    from sqlalchemy.pool import NullPool

    return NullPool


def _create_pg_database(template: str | None = None) -> tuple[URL, str]:
    admin = _require_postgres()
    name = f"gridflex_test_{uuid.uuid4().hex[:16]}"
    suffix = f" TEMPLATE {template}" if template else ""
    _admin_execute(admin, f'CREATE DATABASE "{name}"{suffix}')
    return admin.set(database=name), name


def _drop_pg_database(name: str) -> None:
    admin = _require_postgres()
    _admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_backend(request: pytest.FixtureRequest) -> str:
    """Which database backend the test runs on."""
    backend: str = request.param
    if backend == "postgresql":
        _require_postgres()
    return backend


@pytest.fixture
def db_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database (dropped afterwards)."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'gridflex-test.sqlite'}"
        return
    url, name = _create_pg_database()
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        _drop_pg_database(name)


@pytest.fixture(scope="session")
def _migrated_templates(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """Per backend, a database migrated to head once per session (created on first use)."""
    made: dict[str, str] = {}
    yield made
    if "postgresql" in made:
        _drop_pg_database(made["postgresql"])


def _template_for(backend: str, made: dict[str, str], base: Path) -> str:
    if backend in made:
        return made[backend]
    if backend == "sqlite":
        path = base / "template.sqlite"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        with engine.connect() as conn:  # fold the WAL into the main file before copying it
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        made[backend] = str(path)
    else:
        url, name = _create_pg_database()
        upgrade(url)
        made[backend] = name
    return made[backend]


def _reset_pg_database(name: str) -> bool:
    """Empty every table of the shared migrated test database (identities restart at 1).

    CREATE DATABASE costs a checkpoint (seconds on a busy disk) and TRUNCATE creates new files,
    so PostgreSQL tests share one migrated database and DELETE its rows after each test, with
    triggers off (``session_replication_role = replica``: no FK checks, and the immutability
    trigger of ``connection_terms`` does not fire). Returns False when the database is no longer
    at head (a test migrated it), so the caller recreates it.
    """
    admin = _require_postgres()
    # a test may leave a connection open (a server thread, a leaked session): end it first
    _admin_execute(
        admin,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
    )
    eng = _pg_test_engine(admin.set(database=name), poolclass=_null_pool())
    try:
        with eng.begin() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if version != head_revision():
                return False
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            tables = conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            ).scalars()
            for table in list(tables):
                conn.execute(text(f'DELETE FROM "{table}"'))
            sequences = conn.execute(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
            ).scalars()
            for seq in list(sequences):
                conn.execute(text(f'ALTER SEQUENCE "{seq}" RESTART'))
    except Exception:
        return False
    finally:
        eng.dispose()
    return True


def _pg_test_engine(url: URL, **kwargs: object) -> Engine:
    """Test engines skip waiting for the WAL flush: a crash loses only test data."""
    return make_engine(url, connect_args={"options": "-c synchronous_commit=off"}, **kwargs)


@pytest.fixture
def engine(
    db_backend: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    _migrated_templates: dict[str, str],
) -> Iterator[Engine]:
    """An engine on an empty database migrated to head (disposed and emptied afterwards)."""
    base = tmp_path_factory.getbasetemp()
    if db_backend == "sqlite":
        template = _template_for(db_backend, _migrated_templates, base)
        path = tmp_path / "gridflex-test.sqlite"
        shutil.copyfile(template, path)
        eng = make_engine(f"sqlite:///{path}")
        try:
            yield eng
        finally:
            eng.dispose()
        return
    name = _template_for(db_backend, _migrated_templates, base)
    admin = _require_postgres()
    eng = _pg_test_engine(admin.set(database=name))
    try:
        yield eng
    finally:
        eng.dispose()
        if not _reset_pg_database(name):
            _drop_pg_database(name)
            del _migrated_templates[db_backend]


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the migrated test database (the test commits when it needs to)."""
    with session_factory(engine)() as s:
        yield s
