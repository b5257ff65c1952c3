"""Production-meter sign convention: generation reads negative.

"Generation should read as a negative value on the Ameren production meter", which is why CT
polarity marks must face the utility (000_9d43a5ca67169be9.txt, CT specifications). A production
meter whose energy is mostly positive therefore has reversed CTs (or reversed polarity wiring):
it is flagged as a sign error. The allowed positive share (night-time inverter standby draw) is
``production_sign.max_positive_energy_share`` in ``meterdata/data/utility.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from gridflex.errors import InputError
from gridflex.meterdata import _config


def check_production_sign(
    intervals: pd.DataFrame, production_meters: Iterable[str] | None = None
) -> pd.DataFrame:
    """Flag production meters whose data has the wrong sign (reversed CTs).

    Parameters
    ----------
    intervals:
        Tidy series (``service_point``, ``meter``, ``kwh``, ...), e.g. ``read_867(...).intervals``.
    production_meters:
        Meter numbers that are production (generation) meters; default: every meter in
        ``intervals``.

    Returns
    -------
    pandas.DataFrame
        One row per production meter: ``service_point``, ``meter``, ``generated_kwh`` (energy
        read negative, as a positive number), ``positive_kwh``, ``positive_share`` (of the
        absolute energy), ``sign_error`` and ``finding`` (a sentence, empty when fine).
    """
    for col in ("service_point", "meter", "kwh"):
        if col not in intervals.columns:
            raise InputError(f"intervals: missing column {col}", "pass a tidy interval table")
    data = intervals
    if production_meters is not None:
        wanted = {str(m) for m in production_meters}
        unknown = wanted - set(intervals["meter"].astype(str))
        if unknown:
            raise InputError(
                f"production meter(s) {', '.join(sorted(unknown))} have no intervals",
                "check the meter numbers",
            )
        data = intervals[intervals["meter"].astype(str).isin(wanted)]
    limit = float(_config.utility()["production_sign"]["max_positive_energy_share"])
    kwh = data["kwh"].to_numpy(dtype=float)
    frame = pd.DataFrame(
        {
            "service_point": data["service_point"].astype(str).to_numpy(),
            "meter": data["meter"].astype(str).to_numpy(),
            "neg": np.where(kwh < 0, -kwh, 0.0),
            "pos": np.where(kwh > 0, kwh, 0.0),
        }
    )
    out = frame.groupby(["service_point", "meter"], as_index=False, sort=True).agg(
        generated_kwh=("neg", "sum"), positive_kwh=("pos", "sum")
    )
    total = out["generated_kwh"] + out["positive_kwh"]
    out["positive_share"] = np.where(
        total > 0, out["positive_kwh"] / total.where(total > 0, 1), 0.0
    )
    out["sign_error"] = out["positive_share"] > limit
    out["finding"] = [
        (
            f"production meter {m} reads {share:.0%} of its energy positive: generation must "
            "read negative; CTs reversed? (000_9d43a5ca67169be9.txt, CT specifications)"
        )
        if err
        else ""
        for m, share, err in zip(
            out["meter"], out["positive_share"], out["sign_error"], strict=True
        )
    ]
    return out
