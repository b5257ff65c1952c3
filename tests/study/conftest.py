"""Fixtures of the simulate / SimBench / fan-out tests.

The SimBench import cache goes to a per-session folder (never the user's home), and the
embedded default grid is imported once per session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridflex.network.model import Network
from gridflex.network.pandapower_import import CACHE_ENV
from gridflex.study.simulate import DEFAULT_FEEDER


@pytest.fixture(scope="session", autouse=True)
def simbench_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A session cache folder for imported SimBench grids (also seen by Dask workers)."""
    path = tmp_path_factory.mktemp("gridflex-cache")
    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(path)
    yield path
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old


@pytest.fixture(scope="session")
def default_network(simbench_cache: Path) -> Network:
    """The embedded default SimBench grid (imported once, then cached)."""
    from gridflex.network import load_network

    return load_network(DEFAULT_FEEDER)


@pytest.fixture(scope="session")
def default_code() -> str:
    """SimBench code of the embedded default."""
    return DEFAULT_FEEDER.split(":", 1)[1]
