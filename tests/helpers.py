"""Helpers for tests: the public feeders in ../shared, skipped with a clear reason when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridflex.errors import SharedDataMissingError
from gridflex.shared_data import shared_feeder


def require_feeder(relative: str) -> Path:
    """Path of ``shared/feeders/<relative>``; skips the calling test when it is not present."""
    try:
        return shared_feeder(relative)
    except SharedDataMissingError as exc:
        pytest.skip(str(exc))
