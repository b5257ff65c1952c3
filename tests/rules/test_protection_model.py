"""The effective clearing time of a set of relay elements, against a brute-force sweep."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gridflex.application import RelayElement
from gridflex.rules.protection import effective_clearing_cycles

elements = st.lists(
    st.builds(
        lambda device, pickup, t: RelayElement(
            device=device, pickup_v=pickup, clearing_time_cycles=t
        ),
        st.sampled_from(["27", "59"]),
        st.floats(30.0, 180.0).map(lambda x: round(x, 1)),
        st.floats(0.5, 200.0).map(lambda x: round(x, 1)),
    ),
    max_size=6,
)


def brute_force(elems: list[RelayElement], device: str, v: float) -> float | None:
    """Time to trip at voltage ``v``: the fastest element of ``device`` whose pickup is crossed."""
    times = [
        e.clearing_time_cycles
        for e in elems
        if e.device == device
        and e.pickup_v is not None
        and e.clearing_time_cycles is not None
        and ((device == "27" and v < e.pickup_v) or (device == "59" and v > e.pickup_v))
    ]
    return min(times) if times else None


@settings(max_examples=200, deadline=None)
@given(elems=elements, threshold=st.sampled_from([60.0, 104.0, 132.0, 165.0]))
def test_effective_time_is_the_worst_case_just_past_the_threshold(
    elems: list[RelayElement], threshold: float
) -> None:
    for device, direction, sign in (("27", "under", -1.0), ("59", "over", 1.0)):
        got = effective_clearing_cycles(elems, device, direction, threshold, 60.0)
        # every voltage past the threshold must be cleared at least this fast; just past it
        # is the slowest point, and deeper excursions are never slower
        just_past = brute_force(elems, device, threshold + sign * 1e-6)
        assert got == just_past
        for v in threshold + sign * np.linspace(1e-6, 40.0, 9):
            deeper = brute_force(elems, device, float(v))
            if got is not None:
                assert deeper is not None
                assert deeper <= got
