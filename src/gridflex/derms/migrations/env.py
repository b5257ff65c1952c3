"""Alembic environment of gridflex: runs on the connection :func:`gridflex.derms.db.upgrade` passes.

Run from the command line too (``alembic -x url=sqlite:///x.sqlite ...`` with a config whose
``script_location`` is this folder), but ``gridflex db upgrade`` is the supported way.
"""

from __future__ import annotations

import contextlib
import importlib

from alembic import context
from sqlalchemy.engine import Connection

from gridflex.derms import models as _registry_models  # noqa: F401  (fills Base.metadata)
from gridflex.derms.db import Base, make_engine

# The 2030.5 tables live in gridflex.sep2.persistence; import them when present so autogenerate
# sees every table.
with contextlib.suppress(ImportError):
    importlib.import_module("gridflex.sep2.persistence")

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite ALTER TABLE goes through batch mode
        compare_type=True,
    )


def run_migrations_online() -> None:
    """Run on the caller's connection, or on an engine built from ``-x url=...``."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("gridflex migrations run online only: use `gridflex db upgrade`")
run_migrations_online()
