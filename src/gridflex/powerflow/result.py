"""The result of a batched time-series power flow: time-major NumPy arrays.

Field names are a contract: ``gridflex simulate`` writes them to Parquet (``powerflow.io``) and
violation detection reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
#: per-unit voltages and loadings: float32 from :func:`~gridflex.powerflow.simulate`, float64
#: from other sources
ValueArray = npt.NDArray[np.floating[Any]]


def value_array(a: npt.ArrayLike) -> ValueArray:
    """``a`` itself when it holds float32 or float64 values (no copy), else as float64."""
    arr = np.asarray(a)
    if arr.dtype in (np.float32, np.float64):
        return arr
    return np.asarray(arr, dtype=np.float64)


@dataclass
class StepFailure:
    """One time step the solver could not converge: when, and why."""

    step: int
    time: pd.Timestamp
    cause: str
    max_dv_pu: float


@dataclass
class TimeSeriesResult:
    """Time-major arrays of one simulation (T steps, N node-phases, B branches).

    Attributes
    ----------
    time:
        UTC ``DatetimeIndex`` (T,).
    node_names, v_pu:
        ``bus.phase`` names and voltage magnitudes (T x N) in per unit of each node's base.
        ``simulate`` stores them, and the branch loadings, in single precision (float32, as
        OpenDSS monitors store their samples): 6e-8 relative, far below the solver's 1e-6 pu
        tolerance, and half the memory (a year of the 8500-node feeder: 299 + 171 MB).
    branch_names, branch_loading_pct, branch_loading_emerg_pct:
        ``class.name``; max over phase conductors and terminals of |I| / rating x 100 (T x B);
        NaN for unrated elements (rating 0). ``branch_loading_emerg_pct`` may be None when
        ``branch_emerg_scale`` is given (:meth:`loading_emerg_pct` gives it either way).
    branch_emerg_scale:
        Per branch (B,), normal rating / emergency rating: loading in % of the emergency
        rating = ``branch_loading_pct`` x this (NaN where either rating is 0). ``simulate``
        keeps this instead of a second T x B array (343 MB for the 8500-node year).
    source_p_kw, source_q_kvar:
        Power into the feeder from the source (T,), positive = delivered to the feeder.
    regulator_names, regulator_taps, regulator_p_kw:
        RegControl names, tap positions (T x R, integer steps from neutral) and active power
        through the regulated winding (T x R; negative = reverse flow).
    capacitor_names, capacitor_states:
        Capacitor names and closed steps (T x C).
    losses_kw:
        Total losses (T,): source power minus power consumed by loads plus power from PV.
    pv_names, pv_available_kw, pv_p_kw, pv_curtailed_kw, e_curtailed_kwh:
        PV available and delivered power, the part curtailed by volt/watt (T x n_pv) and the
        curtailed energy per PV system over the run (n_pv,).
    converged, iterations:
        Per step (T,). A step with ``converged`` False is also listed in ``failures``.
    timings:
        Seconds: ``import_s`` (set by the caller of ``load_network``), ``solve_s``, and parts.
    """

    time: pd.DatetimeIndex
    node_names: list[str]
    v_pu: ValueArray
    branch_names: list[str]
    branch_loading_pct: ValueArray
    branch_loading_emerg_pct: ValueArray | None
    source_p_kw: FloatArray
    source_q_kvar: FloatArray
    regulator_names: list[str]
    regulator_taps: IntArray
    regulator_p_kw: FloatArray
    capacitor_names: list[str]
    capacitor_states: IntArray
    losses_kw: FloatArray
    pv_names: list[str]
    pv_available_kw: FloatArray
    pv_p_kw: FloatArray
    pv_curtailed_kw: FloatArray
    e_curtailed_kwh: FloatArray
    converged: BoolArray
    iterations: IntArray
    failures: list[StepFailure] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    step_h: float = 1.0
    controls: str = "static"
    branch_emerg_scale: FloatArray | None = None

    @property
    def n_steps(self) -> int:
        """Number of time steps."""
        return int(self.v_pu.shape[0])

    def loading_emerg_pct(self) -> ValueArray:
        """(T, B) branch loading in % of the emergency rating (computed when not stored)."""
        if self.branch_loading_emerg_pct is not None:
            return self.branch_loading_emerg_pct
        if self.branch_emerg_scale is None:
            raise ValueError("this result holds no emergency loading (neither array nor scale)")
        return np.asarray(self.branch_loading_pct * self.branch_emerg_scale[None, :])

    def voltages_frame(self) -> pd.DataFrame:
        """Voltages as a DataFrame indexed by time, one column per node."""
        return pd.DataFrame(self.v_pu, index=self.time, columns=self.node_names)
