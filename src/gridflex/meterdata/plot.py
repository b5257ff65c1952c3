"""Plot of a tidy interval series (one step line per service point and meter)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_intervals(intervals: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Save a PNG of kWh per interval against interval start (UTC); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(11, 4.5), constrained_layout=True)
    for (sp, meter), rows in intervals.groupby(["service_point", "meter"], sort=True):
        ax.step(rows["interval_start"], rows["kwh"], where="post", label=f"{sp} / {meter}")
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    ax.set_xlabel("interval start (UTC)")
    ax.set_ylabel("energy per interval (kWh)")
    ax.set_title(title or "EDI 867 interval usage (subtractive meters and generation negative)")
    if intervals[["service_point", "meter"]].drop_duplicates().shape[0] <= 12:
        ax.legend(loc="best", fontsize="small", title="service point / meter")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
