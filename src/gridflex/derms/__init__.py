"""The DER registry: persistence, lifecycle and the operator REST API (issue 4, part A).

Layers, top to bottom (each imports only those below it):

- ``api``: FastAPI edge (``create_app(engine)``): authentication, role checks, HTTP mapping of
  domain errors (InputError 422, NotFoundError 404, ConflictError 409, PermissionDeniedError 403).
- ``auth``: API users, hashed API keys, and the frozen :class:`~gridflex.derms.auth.Scope` that
  says what the caller may see.
- ``registry``: managers, functions over a ``Session`` that flush but never commit.
- ``lifecycle``: the DER lifecycle table (``data/lifecycle.yaml``, cited to the seed).
- ``models``: SQLAlchemy 2 tables; ``db``: ``Base``, engines, sessions, Alembic migrations.

The IEEE 2030.5 server (``gridflex.sep2``) builds on ``db``, ``models`` and ``registry``.
"""
