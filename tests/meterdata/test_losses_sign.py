"""Loss factors at known loads (hand-computed from FAQ 26) and the production sign check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gridflex.errors import InputError
from gridflex.meterdata import read_867
from gridflex.meterdata.losses import distribution_loss_factor, loss_factors, with_losses_kwh
from gridflex.meterdata.sign import check_production_sign
from tests.meterdata.conftest import FIXTURES


def test_loss_factors_at_known_loads():
    # FAQ 26 by hand: L = 10,000 MW -> L^2 = 1e8.
    assert distribution_loss_factor(10_000.0, "secondary") == pytest.approx(1.06102 + 0.021951)
    assert distribution_loss_factor(10_000.0, "primary") == pytest.approx(1.02370 + 0.024522)
    assert distribution_loss_factor(10_000.0, "high") == pytest.approx(1.00816 + 0.010086)
    # L = 6,000 MW -> L^2 = 3.6e7.
    assert distribution_loss_factor(6_000.0) == pytest.approx(1.06102 + 2.1951e-10 * 3.6e7)
    assert distribution_loss_factor(0.0, "high") == pytest.approx(1.00816)


def test_loss_factors_are_vectorised_and_keep_the_index():
    idx = pd.date_range("2026-07-01", periods=3, freq="h", tz="UTC")
    load = pd.Series([4000.0, 8000.0, 12000.0], index=idx)
    got = distribution_loss_factor(load, "primary")
    assert isinstance(got, pd.Series)
    assert got.index.equals(idx)
    np.testing.assert_allclose(got.to_numpy(), 1.02370 + 2.4522e-10 * load.to_numpy() ** 2)
    arr = distribution_loss_factor(np.array([1000.0, 2000.0]), "secondary")
    assert isinstance(arr, np.ndarray)
    table = loss_factors(load)
    assert list(table.columns) == ["secondary", "primary", "high"]
    assert (table["secondary"] > table["primary"]).all()
    assert (table["primary"] > table["high"]).all()


def test_losses_gross_up_energy_and_refuse_gaps():
    idx = pd.date_range("2026-07-01", periods=2, freq="h", tz="UTC")
    kwh = pd.Series([10.0, 20.0], index=idx)
    load = pd.Series([10_000.0, 0.0], index=idx)
    got = with_losses_kwh(kwh, load, "secondary")
    assert got.tolist() == pytest.approx([10.0 * 1.082971, 20.0 * 1.06102])
    with pytest.raises(InputError, match=r"no system load for interval"):
        with_losses_kwh(kwh, load.iloc[:1])


@pytest.mark.parametrize(("load", "what"), [(-5.0, "-5.0"), (9.5e6, "9500000.0"), (np.nan, "nan")])
def test_implausible_loads_are_refused(load, what):
    with pytest.raises(InputError, match=rf"system load {what} MW .* in MW \(not kW\)"):
        distribution_loss_factor(np.array([1000.0, load]))


def test_unknown_delivery_voltage():
    with pytest.raises(InputError, match=r"delivery voltage 'medium'"):
        distribution_loss_factor(1000.0, "medium")  # type: ignore[arg-type]


def test_generation_reading_negative_passes_the_sign_check():
    intervals = read_867(FIXTURES / "subtractive_unmetered.x12").intervals
    got = check_production_sign(intervals, ["PRD01"])
    assert got["meter"].tolist() == ["PRD01"]
    assert got["generated_kwh"].iloc[0] == pytest.approx(5.0)
    assert not got["sign_error"].iloc[0]
    assert got["finding"].iloc[0] == ""


def test_reversed_ct_is_flagged(fixture_text):
    # Reversed CTs: the production meter reports generation as delivered (positive) energy.
    text = fixture_text("subtractive_unmetered.x12").replace("QTY*87*", "QTY*QD*")
    text = text.replace("QTY*QD*8.5*KH", "QTY*QD*18.5*KH")
    got = check_production_sign(read_867(text.encode()).intervals, ["PRD01"])
    assert got["sign_error"].iloc[0]
    assert got["positive_share"].iloc[0] == pytest.approx(1.0)
    assert "CTs reversed" in got["finding"].iloc[0]


def test_sign_check_unknown_meter():
    intervals = read_867(FIXTURES / "subtractive_unmetered.x12").intervals
    with pytest.raises(InputError, match=r"production meter\(s\) NOPE have no intervals"):
        check_production_sign(intervals, ["NOPE"])
