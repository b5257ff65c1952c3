"""Fixtures for the rule checks: the shipped example applications as editable mappings."""

from __future__ import annotations

from typing import Any

import pytest

from tests.rules.support import example


@pytest.fixture
def campus() -> dict[str, Any]:
    """The embedded example: 13.2 kV primary customer with PV, storage and a CHP generator."""
    return example("example.yaml")


@pytest.fixture
def level1() -> dict[str, Any]:
    """The embedded Level 1 example: 10 kW PV on a shared secondary."""
    return example("example_level1.yaml")
