"""The meter-data YAML files (``meterdata/data``), loaded once."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def load(name: str) -> dict[str, Any]:
    """Parsed content of ``gridflex/meterdata/data/<name>.yaml``."""
    text = resources.files("gridflex.meterdata").joinpath("data", f"{name}.yaml").read_text()
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise TypeError(f"meterdata/data/{name}.yaml must hold a mapping")
    return data


def utility() -> dict[str, Any]:
    """The utility settings (zone, billing window, calendar, sign check)."""
    return load("utility")
