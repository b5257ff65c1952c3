"""Dynamic distribution loss factors (Ameren Illinois, beginning 2007).

``factor = a + b * L**2`` with ``L`` the Ameren Illinois service-territory system load in MW;
the coefficients per delivery voltage live in ``meterdata/data/loss_factors.yaml``.

References
----------
003_bfb20267a3df903e.txt (Ameren, Resources for Retail Electric Suppliers: FAQ), FAQ 26.
"""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from gridflex.errors import InputError
from gridflex.meterdata import _config

DeliveryVoltage = Literal["secondary", "primary", "high"]
ArrayLike = TypeVar("ArrayLike", float, npt.NDArray[np.float64], pd.Series)


def loss_coefficients(delivery_voltage: DeliveryVoltage) -> tuple[float, float]:
    """``(constant, coefficient_per_mw2)`` of one delivery voltage."""
    table = _config.load("loss_factors")["delivery_voltages"]
    if delivery_voltage not in table:
        raise InputError(
            f"delivery voltage {delivery_voltage!r} has no loss formula",
            f"use one of {', '.join(table)}",
        )
    entry = table[delivery_voltage]
    return float(entry["constant"]), float(entry["coefficient_per_mw2"])


def distribution_loss_factor(
    system_load_mw: ArrayLike, delivery_voltage: DeliveryVoltage = "secondary"
) -> ArrayLike:
    """Distribution loss factor at each system load.

    Parameters
    ----------
    system_load_mw:
        Ameren Illinois territory load (AmerenCIPS, CIPS-ME, CILCO, IP), MW: scalar, ndarray or
        Series (a Series keeps its index).
    delivery_voltage:
        ``secondary``, ``primary`` or ``high``.

    Returns
    -------
    Loss factor (dimensionless, >= 1), the same shape and type as the input.

    Raises
    ------
    InputError
        Negative, non-finite or implausibly large loads (kW given for MW).

    References
    ----------
    003_bfb20267a3df903e.txt, FAQ 26: secondary ``1.06102 + 2.1951e-10 L^2``, primary
    ``1.02370 + 2.4522e-10 L^2``, high ``1.00816 + 1.0086e-10 L^2``.
    """
    a, b = loss_coefficients(delivery_voltage)
    load = np.asarray(system_load_mw, dtype=float)
    limit = float(_config.load("loss_factors")["system_load_mw_max"])
    bad = ~np.isfinite(load) | (load < 0) | (load > limit)
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise InputError(
            f"system load {float(load.ravel()[i])!r} MW (position {i}) is outside 0..{limit:g} MW",
            "give the Ameren Illinois territory load in MW (not kW), without gaps",
        )
    factor = a + b * load**2
    if isinstance(system_load_mw, pd.Series):
        name = f"loss_factor_{delivery_voltage}"
        return pd.Series(factor, index=system_load_mw.index, name=name)
    if np.ndim(system_load_mw) == 0:
        return float(factor)  # type: ignore[return-value]
    return factor  # type: ignore[return-value]


def loss_factors(system_load_mw: pd.Series | npt.ArrayLike) -> pd.DataFrame:
    """All three delivery voltages' loss factors for a load series (one column each)."""
    load = (
        system_load_mw
        if isinstance(system_load_mw, pd.Series)
        else pd.Series(np.asarray(system_load_mw, dtype=float))
    )
    return pd.DataFrame(
        {
            v: np.asarray(distribution_loss_factor(load, v))
            for v in ("secondary", "primary", "high")
        },
        index=load.index,
    )


def with_losses_kwh(
    kwh: pd.Series, system_load_mw: pd.Series, delivery_voltage: DeliveryVoltage = "secondary"
) -> pd.Series:
    """Metered energy grossed up for distribution losses (kWh at the supply point).

    ``kwh`` and ``system_load_mw`` are aligned on their index (e.g. interval start, UTC); an
    interval without a system load is an error, not a silent 1.0.
    """
    load = system_load_mw.reindex(kwh.index)
    missing = load.isna().to_numpy()
    if missing.any():
        raise InputError(
            f"no system load for interval {kwh.index[int(np.flatnonzero(missing)[0])]}",
            "give the system load for every interval of the usage series",
        )
    return kwh * distribution_loss_factor(load, delivery_voltage)
