"""The batched time-series solver (see :func:`simulate`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from gridflex.network.model import Network
from gridflex.powerflow.inverter import InverterSettings
from gridflex.powerflow.result import TimeSeriesResult


def simulate(
    network: Network,
    *,
    start: datetime | None = None,
    steps: int,
    step: timedelta | None = None,
    controls: Literal["static", "off"] = "static",
    inverter: InverterSettings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TimeSeriesResult:
    """Solve ``steps`` time steps of ``network`` (signature final; body lands next commit)."""
    raise NotImplementedError("gridflex.powerflow.simulate: solver body is being committed")
