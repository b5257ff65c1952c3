"""The envelope and duration-curve arrays behind ``voltage_envelope.png``."""

from __future__ import annotations

import numpy as np

from gridflex.study.simulate_plot import envelope, loading_duration


def test_envelope_keeps_failed_steps_as_nan() -> None:
    v = np.array([[1.0, 0.97], [np.nan, np.nan], [np.nan, 1.02]])
    lo, hi = envelope(v)
    np.testing.assert_array_equal(lo, [0.97, np.nan, 1.02])
    np.testing.assert_array_equal(hi, [1.0, np.nan, 1.02])


def test_loading_duration_is_sorted_highest_first_and_skips_unrated() -> None:
    load = np.array([[10.0, np.nan], [80.0, np.nan], [40.0, np.nan]])
    np.testing.assert_array_equal(loading_duration(load), [80.0, 40.0, 10.0])
    assert loading_duration(np.full((3, 2), np.nan)).size == 0


def test_binned_envelope_keeps_the_extremes() -> None:
    from gridflex.study.simulate_plot import MAX_POINTS, _bin_envelope

    n = 5 * MAX_POINTS + 3
    t = np.arange(n).astype("datetime64[h]")
    lo = np.full(n, 1.0)
    hi = np.full(n, 1.0)
    lo[1234] = 0.91
    hi[7777] = 1.08
    tb, lob, hib = _bin_envelope(t, lo, hi)
    assert tb.size == lob.size == hib.size == MAX_POINTS
    assert lob.min() == 0.91
    assert hib.max() == 1.08
