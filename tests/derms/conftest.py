"""Fixtures of the registry tests: the shared database fixtures plus seeded registry objects."""

from __future__ import annotations

from tests.dbfixtures import _migrated_templates, db_backend, db_url, engine, session

__all__ = ["_migrated_templates", "db_backend", "db_url", "engine", "session"]
