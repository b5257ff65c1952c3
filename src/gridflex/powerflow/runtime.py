"""Process settings for the heavy sections (a year's solve, the result files).

Two parts of a Python process compete with gridflex's own threads (the Numba kernels' threads,
the file writers) without doing any of the run's work:

* **OpenBLAS's worker threads.** After each BLAS call (SuperLU's supernodes call it when a
  matrix is factorised) OpenBLAS keeps its workers spinning for about 0.1 s, on the cores the
  Numba kernels need. None of the run's BLAS calls is large enough to gain from them. Inside
  :func:`heavy_section` BLAS runs on the calling thread (``threadpoolctl``, which finds every
  OpenBLAS/MKL a process has loaded: NumPy and SciPy each bring their own).
* **The cyclic garbage collector's full collections.** They walk every container object in the
  process: about 190,000 after the imports of NumPy, pandas, Arrow and Numba. They took 0.13 s
  of the 8500-node feeder's frozen solve, on the main thread with the GIL held, and the Parquet
  writer sets them off again (8,531 Arrow arrays a row group of voltages). Inside
  :func:`heavy_section` the objects that existed before it are frozen (``gc.freeze``): the
  collector still collects what the section creates, but no longer rescans them.

Measured on the 8500-node frozen year with the violation formatter on one thread
(as ``write_results`` then ran it), 2-vCPU EPYC VM, 6 fresh runs each,
alternating with the commit before: end to end 4.67-5.57 s (median 5.10) against 5.00-6.01 s
(5.40), ``solve_s`` median 1.31 s against 1.47 s, 7.7 s of CPU against 9.0 s.

The settings are process-wide, so sections on several threads (a Dask worker's threads)
share them: the first to enter applies them, the last to leave restores them. (OpenBLAS 0.3.31
ignores a thread count set from another thread once the main thread has set one; a section
entered off the main thread may then run with OpenBLAS's own count, only slower.)
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_depth = 0
_blas_limit: Any = None


@contextmanager
def heavy_section() -> Iterator[None]:
    """BLAS on one thread and the collector off the objects that exist on entry (see above).

    Usable as a decorator (``@heavy_section()``); nests and may be entered from several threads.
    """
    global _depth, _blas_limit
    with _lock:
        _depth += 1
        if _depth == 1:
            _blas_limit = ThreadpoolController().limit(limits=1, user_api="blas")
            gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()
                _blas_limit.restore_original_limits()
                _blas_limit = None
