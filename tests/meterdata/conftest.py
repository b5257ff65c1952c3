"""Fixtures of the meter-data tests: hand-written X12 867 files with known UTC answers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixture_text():
    """Text of a fixture file (tests edit copies of it to break one thing at a time)."""

    def read(name: str) -> str:
        return (FIXTURES / name).read_text()

    return read


@pytest.fixture
def expected():
    """A known-answer CSV (interval_start, interval_end, kwh) as a UTC frame."""

    def read(name: str) -> pd.DataFrame:
        frame = pd.read_csv(FIXTURES / name, comment="#")
        for col in ("interval_start", "interval_end"):
            frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[ns, UTC]")
        return frame

    return read
