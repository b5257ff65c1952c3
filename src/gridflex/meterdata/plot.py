"""Plot of a tidy interval series (one step line per service point and meter)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _stairs(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each interval as a flat segment over its own span; gaps in the data stay gaps."""
    starts = rows["interval_start"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    ends = rows["interval_end"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    kwh = rows["kwh"].to_numpy(dtype=float)
    gap = np.append(starts[1:] != ends[:-1], False)
    x = np.column_stack([starts, ends, ends]).ravel()
    y = np.column_stack([kwh, kwh, np.where(gap, np.nan, kwh)]).ravel()
    # The third point of an interval repeats its end; NaN there breaks the line at a gap.
    return x, y


def plot_intervals(intervals: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Save a PNG of kWh per interval against interval start (UTC); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(11, 4.5), constrained_layout=True)
    for (sp, meter), rows in intervals.groupby(["service_point", "meter"], sort=True):
        ax.plot(*_stairs(rows), label=f"{sp} / {meter}", linewidth=1.2)
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("energy per interval (kWh)")
    ax.set_title(title or "EDI 867 interval usage (subtractive meters and generation negative)")
    if intervals[["service_point", "meter"]].drop_duplicates().shape[0] <= 12:
        ax.legend(loc="best", fontsize="small", title="service point / meter")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
