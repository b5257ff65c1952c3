"""Reading EDI 867 interval usage: gridflex vs the ansi-x12 structural parser, side by side.

The peer (``ansi-x12``: tokenize + envelope parse) only splits segments and checks envelopes;
gridflex does that, then the 867 loops, the DST/time-code conversion and the tidy UTC frame. The
ratio is therefore "full read" against "structure only" on the same file: a meter-year of hourly
data for N meters of one service point, with elapsed-hour labels (the costlier convention).

Run: ``python bench/meterdata_867.py [meters]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd


def _best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(meters: int = 10) -> None:
    from x12 import parse_x12_interchange, tokenize_x12

    from gridflex.meterdata import read_867, write_867

    idx = pd.date_range("2026-01-01T06:00Z", "2027-01-01T06:00Z", freq="h", inclusive="left")
    rng = np.random.default_rng(7)
    frame = pd.concat(
        pd.DataFrame(
            {
                "service_point": "SP1",
                "meter": f"M{m}",
                "interval_start": idx,
                "interval_end": idx + pd.Timedelta(hours=1),
                "kwh": np.round(rng.random(len(idx)) * 5, 3),
            }
        )
        for m in range(meters)
    )
    payload = write_867(frame, time_codes="elapsed")
    n = len(frame)
    t_gridflex = _best_of(lambda: read_867(payload))
    t_peer = _best_of(lambda: parse_x12_interchange(tokenize_x12(payload)))
    print(f"file: {len(payload) / 1e6:.1f} MB, {n} hourly intervals ({meters} meter-years)")
    print(
        f"gridflex read_867 (full, tidy UTC frame): {t_gridflex:6.2f} s  {n / t_gridflex:9,.0f} /s"
    )
    print(f"ansi-x12 tokenize+parse (structure only):  {t_peer:6.2f} s  {n / t_peer:9,.0f} /s")
    print(f"ratio gridflex / peer: {t_gridflex / t_peer:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
