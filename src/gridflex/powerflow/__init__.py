"""Batched unbalanced time-series power flow over a :class:`gridflex.network.Network`.

* :func:`simulate` — all time steps as right-hand sides of one sparse LU per control state,
  fixed-point current injection with a Newton fallback, regulator / capacitor controls
  (OpenDSS ``controlmode=static`` semantics) and PV volt/var + volt/watt in the loop.
* :class:`TimeSeriesResult` — time-major result arrays.
* :class:`InverterSettings` — which inverter functions act, with which curves.
"""

from __future__ import annotations

from gridflex.powerflow.inverter import InverterSettings
from gridflex.powerflow.result import StepFailure, TimeSeriesResult
from gridflex.powerflow.timeseries import simulate

__all__ = ["InverterSettings", "StepFailure", "TimeSeriesResult", "simulate"]
