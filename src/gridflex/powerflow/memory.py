"""Large arrays that are written once, in small pages.

NumPy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every array of
4 MB or more. Where the kernel must compact memory to find a free 2 MB block, or where a
virtual machine's balloon driver has handed free blocks back to its host (free page
reporting), the first touch of a huge page is slow: on the Firecracker VMs gridflex is
benchmarked on, first-touching 470 MB took 1.1-1.4 s of system time in huge pages against
0.20-0.23 s in 4 KB pages (8 runs; ``bench/fresh_pages.py`` measures it on any machine).
Huge pages pay off for memory that is reused (the same 470 MB touched again in the process:
0.05 s), not for result arrays that are written once. :func:`result_array` gives such arrays
their own anonymous mapping and asks for small pages.
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np
import numpy.typing as npt


def result_array(shape: tuple[int, ...], dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """An uninitialised C-ordered array in its own anonymous mapping, in 4 KB pages.

    The mapping is released with the array (the array's base holds it). Falls back to
    ``np.empty`` for empty shapes.
    """
    dt = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if size == 0:
        return np.empty(shape, dtype=dt)
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    advice = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if advice is not None:  # Linux; elsewhere the kernel's default pages
        buf.madvise(advice)
    return np.frombuffer(buf, dtype=dt).reshape(shape)
