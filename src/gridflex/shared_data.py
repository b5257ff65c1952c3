"""Locate the public test feeders in ``../shared`` beside the project root.

The feeders are never copied into the repository. A user's clone may not have them: callers get
a :class:`~gridflex.errors.SharedDataMissingError` with a clear reason, which tests turn into a
skip and benchmarks into a message.
"""

from __future__ import annotations

import os
from pathlib import Path

from gridflex.errors import SharedDataMissingError

#: Environment variable that points at the shared folder when it is not beside the project root.
SHARED_ENV = "GRIDFLEX_SHARED_DIR"


def shared_dir() -> Path:
    """Return the ``shared`` folder (``$GRIDFLEX_SHARED_DIR`` or ``<project root>/../shared``)."""
    env = os.environ.get(SHARED_ENV)
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    # src/gridflex/shared_data.py -> project root is parents[2]; its sibling is ../shared
    candidates += [p.parent / "shared" for p in here.parents[1:4]]
    candidates.append(Path.cwd().parent / "shared")
    for c in candidates:
        if (c / "feeders").is_dir():
            return c
    raise SharedDataMissingError(
        "the shared test data folder (../shared beside the project root, with feeders/) is not "
        f"present; set {SHARED_ENV} to its path to run feeder tests and benchmarks"
    )


def shared_feeder(relative: str) -> Path:
    """Return ``shared/feeders/<relative>``, raising :class:`SharedDataMissingError` if absent."""
    path = shared_dir() / "feeders" / relative
    if not path.exists():
        raise SharedDataMissingError(f"shared feeder file {path} does not exist")
    return path
