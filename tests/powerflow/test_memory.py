"""Result arrays in their own small-page mapping."""

from __future__ import annotations

import pickle

import numpy as np

from gridflex.powerflow.memory import result_array


def test_result_array_is_a_writable_c_ordered_array_of_the_shape_and_dtype() -> None:
    a = result_array((5, 7), np.float32)
    assert a.shape == (5, 7)
    assert a.dtype == np.float32
    assert a.flags.writeable
    assert a.flags.c_contiguous
    a[:] = np.arange(35, dtype=np.float32).reshape(5, 7)
    assert a[4, 6] == 34.0
    # rows are views into the mapping; a copy (pickling, as Dask does) holds the values
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(a)), a)


def test_empty_shapes_give_ordinary_empty_arrays() -> None:
    assert result_array((0, 12), np.float64).shape == (0, 12)
    assert result_array((3, 0), np.float32).dtype == np.float32
