"""Fixtures for the power-flow tests: feeders from ../shared wrapped with a yearly shape."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import require_feeder
from tests.powerflow.opendss_ref import year_master


@pytest.fixture
def feeder_year(tmp_path: Path) -> Callable[[str, bool], Path]:
    """``feeder_year(rel, with_shape)``: a master that runs ``rel`` over a year."""

    def make(rel: str, with_shape: bool = True) -> Path:
        master = require_feeder(rel)
        shape = require_feeder("loadshapes/LoadShape1.CSV") if with_shape else None
        return year_master(tmp_path, master, shape)

    return make
