"""Violations found and formatted as CSV bytes in one compiled pass over the result arrays.

A year of the IEEE 8500-node feeder against ANSI C84.1 Range A holds about 61 million
violation rows (its source is set at 1.05 pu, Range A's upper edge, so almost every node-hour is
an overvoltage): a 3.9 GB ``violations.csv``. Building pandas/Arrow tables for those rows and
letting Arrow's CSV writer format them took about 30 s; this module scans the ``(T, N)`` arrays
step by step in a Numba kernel (no GIL), writes each row straight into a byte buffer and hands
full buffers to a writer thread, so formatting and disk writes overlap and memory stays at two
sets of buffers.

A row is assembled from pieces built once: the step's time stamp, the row head
``,element,kind,`` per element and kind, and the kind's line end ``,limit\n``, each copied in
16-byte moves; only the value is formatted per row. The file is written with ``O_DIRECT`` where
the system allows it (:data:`DIRECT_IO`). On the 8500-node year this took the pass from 12-15 s
of CPU to about 3 s (same bytes).

The rows are exactly those of :func:`gridflex.powerflow.violations.find_violations`, in the same
order (time, then kind in :data:`~gridflex.powerflow.violations.VIOLATION_KINDS` order, then
element in model order). Numbers are written as ``%.12g`` writes them (12 significant digits,
trailing zeros dropped, ``1.05``, ``100``, ``1.05000012308``; correctly rounded for magnitudes
from 1e-11 to 1e33): 5e-13 relative, far below the solver's 1e-6 pu tolerance, and 6 bytes a row
shorter than the 17-digit round trip.

The same pass folds the per-kind summary of ``run.json`` (rows, distinct elements, distinct
steps, the worst row) so nothing is read twice.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt
import pandas as pd
from numba.core import cgutils, types
from numba.extending import intrinsic

from gridflex.powerflow.violations import (
    SOURCE_ELEMENT,
    VIOLATION_COLUMNS,
    VIOLATION_KINDS,
    Limits,
    _as_time_index,
    _check_shape,
    load_limits,
)

#: Significant digits of ``value`` and ``limit`` in ``violations.csv`` (see the module notes).
SIGNIFICANT_DIGITS = 12

#: Bytes of one part's output buffer (two sets of one buffer per Numba thread are in use: one
#: being filled, one being written).
BUFFER_BYTES = 32 * 2**20

#: Upper bound of the bytes of one formatted number (sign, 12 digits, point, exponent).
_NUM_MAX = 24
#: ``YYYY-MM-DDTHH:MM:SSZ``
_TIME_LEN = 20


@intrinsic
def _copy16(
    typingctx: Any, dst: Any, dpos: Any, src: Any, spos: Any
) -> tuple[Any, Callable[..., Any]]:
    """16 bytes from ``src[spos:]`` to ``dst[dpos:]`` (uint8 arrays) as one unaligned move.

    A byte loop cannot become one: the compiler cannot prove that the two arrays do not
    overlap. Bounds are the caller's (the pieces and the buffers carry 16 bytes of slack).
    """
    sig = types.void(dst, dpos, src, spos)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        d, dp, s, sp = args
        dst_ptr = context.make_array(signature.args[0])(context, builder, d).data
        src_ptr = context.make_array(signature.args[2])(context, builder, s).data
        cgutils.raw_memcpy(builder, builder.gep(dst_ptr, [dp]), builder.gep(src_ptr, [sp]),
                           context.get_constant(types.int64, 16), 1)  # fmt: skip
        return context.get_dummy_value()

    return sig, codegen


@nb.njit(cache=True, nogil=True)
def _put_piece(buf: Any, pos: int, src: Any, at: int, n: int) -> int:
    """``src[at:at+n]`` at ``buf[pos:]`` in 16-byte moves (may write up to 15 bytes past)."""
    for c in range(0, n, 16):
        _copy16(buf, pos + c, src, at + c)  # type: ignore[call-arg]
    return pos + n


_POW10 = np.array([10.0**k for k in range(-22, 23)])  # _POW10[k + 22] == 10**k, exact
_PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode("ascii"), dtype=np.uint8)


@nb.njit(cache=True, nogil=True)
def _put_digits(buf: Any, end: int, m: int, n: int) -> None:
    """The ``n`` lowest decimal digits of ``m >= 0`` (zero-padded) into ``buf[end-n:end]``."""
    p = end
    while n >= 2:
        r = m % 100
        m //= 100
        buf[p - 1] = _PAIRS[2 * r + 1]
        buf[p - 2] = _PAIRS[2 * r]
        p -= 2
        n -= 2
    if n == 1:
        buf[p - 1] = 48 + m % 10


# unsigned constants: Numba's signed // and % follow Python's floor semantics (extra sign
# fixes per operation); on uint64 they are the plain multiply-and-shift of a division by a
# constant. The 12 digits of a mantissa took 19 ns signed, 9 ns unsigned.
_U10 = np.uint64(10)
_U100 = np.uint64(100)
_U1E4 = np.uint64(10_000)
_U1E6 = np.uint64(1_000_000)


@nb.njit(cache=True, nogil=True, inline="always")
def _put_pair(buf: Any, pos: int, r: Any) -> None:
    """The two digits of ``0 <= r < 100`` (uint64) at ``buf[pos:pos+2]``."""
    i = np.intp(r) * 2
    buf[pos] = _PAIRS[i]
    buf[pos + 1] = _PAIRS[i + 1]


@nb.njit(cache=True, nogil=True, inline="always")
def _put_12_digits(buf: Any, pos: int, m: Any) -> None:
    """The 12 digits of ``m < 10**12`` (uint64, zero-padded) at ``buf[pos:pos+12]``: two
    halves of six digits, each three pairs, so the divisions do not wait on each other."""
    hi = m // _U1E6
    lo = m - hi * _U1E6
    a = hi // _U1E4
    b = hi - a * _U1E4
    c = lo // _U1E4
    d = lo - c * _U1E4
    b1 = b // _U100
    d1 = d // _U100
    _put_pair(buf, pos, a)
    _put_pair(buf, pos + 2, b1)
    _put_pair(buf, pos + 4, b - b1 * _U100)
    _put_pair(buf, pos + 6, c)
    _put_pair(buf, pos + 8, d1)
    _put_pair(buf, pos + 10, d - d1 * _U100)


@nb.njit(cache=True, nogil=True)
def _scale(x: float, k: int) -> float:
    """``x * 10**k`` with one rounding (exact powers of ten up to 1e22)."""
    if 0 <= k <= 22:
        return x * _POW10[k + 22]
    if -22 <= k < 0:
        return x / _POW10[-k + 22]
    if k > 300:  # subnormal x: 10**k alone would overflow
        return (x * 1e300) * 10.0 ** (k - 300)
    return x * 10.0**k


@nb.njit(cache=True, nogil=True)
def _product_error(a: float, b: float, p: float) -> float:
    """``a * b - p`` exactly, for ``p = fl(a * b)`` (Dekker's two-product with Veltkamp
    splitting: T. J. Dekker, "A floating-point technique for extending the available
    precision", Numer. Math. 18, 1971)."""
    c = 134217729.0 * a  # 2**27 + 1
    a_hi = c - (c - a)
    a_lo = a - a_hi
    c = 134217729.0 * b
    b_hi = c - (c - b)
    b_lo = b - b_hi
    return ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


@nb.njit(cache=True, nogil=True)
def _round_scaled(x: float, k: int) -> int:
    """``x * 10**k`` (``x > 0``) rounded to an integer as ``%.12g`` rounds: to nearest, ties
    to even, decided on the exact product.

    The rounded product alone misrounds when it lands exactly on a half while the exact value
    lies just above or below it (``1.034341766105`` printed ``1.0343417661``); the exact error
    of the product (or remainder of the quotient) then decides. Exact for ``|k| <= 22`` (the
    power of ten is a double); beyond that (``|x| >= 1e33`` or ``< 1e-11``) one more rounding
    remains.
    """
    p = _scale(x, k)
    f = np.floor(p)
    if p - f != 0.5 or not -22 <= k <= 22:
        return int(np.rint(p))
    if k >= 0:
        err = _product_error(x, _POW10[k + 22], p)  # x * 10**k - p
    else:
        d = _POW10[-k + 22]
        qd = p * d
        # sign of x - p * d, the sign of x / d - p (x - qd is exact: the two are close)
        err = (x - qd) - _product_error(p, d, qd)
    if err > 0:
        return int(f) + 1
    if err < 0:
        return int(f)
    return int(np.rint(p))  # a true tie: to even


@nb.njit(cache=True, nogil=True, inline="always")
def _put_float(buf: Any, pos: int, x: float) -> int:
    """``x`` as ``%.12g`` prints it (fixed for 1e-4 <= |x| < 1e12, else scientific).

    The 12 significant digits are one integer, written two digits at a time straight into
    ``buf`` (no digit scratch array, no per-byte trimming pass); up to 12 bytes past the
    returned end may be written.
    """
    if x != x:
        buf[pos] = 110  # nan
        buf[pos + 1] = 97
        buf[pos + 2] = 110
        return pos + 3
    if x < 0:
        buf[pos] = 45  # '-'
        pos += 1
        x = -x
    if x == np.inf:
        buf[pos] = 105  # inf
        buf[pos + 1] = 110
        buf[pos + 2] = 102
        return pos + 3
    if x == 0.0:
        if np.signbit(x):  # -0.0 prints "-0"
            buf[pos] = 45
            pos += 1
        buf[pos] = 48
        return pos + 1
    sig = 12
    # decimal exponent: a short walk from 10**0 for the usual magnitudes, log10 otherwise
    if 1e-20 < x < 1e20:
        e = 0
        while x >= _POW10[e + 23]:
            e += 1
        while x < _POW10[e + 22]:
            e -= 1
    else:
        e = int(np.floor(np.log10(x)))
    k = sig - 1 - e
    mi = _round_scaled(x, k)
    # rounding can carry to 13 digits (9.99999999999951 -> 10.0000000000)
    if mi >= 1_000_000_000_000:
        e += 1
        mi = _round_scaled(x, k - 1)
        if mi >= 1_000_000_000_000:
            mi //= 10
    elif mi < 100_000_000_000:
        e -= 1
        mi = _round_scaled(x, k + 1)
        if mi >= 1_000_000_000_000:
            mi //= 10
            e += 1
    # %g drops trailing zeros: nd significant digits remain (mi >= 1e11, so the loop ends);
    # all 12 digits are written and the zeros after the nd-th left out by the returned end
    m = np.uint64(mi)
    nd = sig
    while m % _U10 == 0:
        m //= _U10
        nd -= 1
    um = np.uint64(mi)
    if -4 <= e < sig:
        if e < 0:  # 0.000ddd
            buf[pos] = 48
            buf[pos + 1] = 46
            pos += 2
            for _ in range(-e - 1):
                buf[pos] = 48
                pos += 1
            _put_12_digits(buf, pos, um)
            return pos + nd
        # ddd.ddd: the digits one place to the right, then the integer part moved left
        _put_12_digits(buf, pos + 1, um)
        for i in range(e + 1):
            buf[pos + i] = buf[pos + 1 + i]
        if nd <= e + 1:  # an integer (its zeros are among the 12 digits)
            return pos + e + 1
        buf[pos + e + 1] = 46
        return pos + nd + 1
    # d.ddde+XX
    _put_12_digits(buf, pos + 1, um)
    buf[pos] = buf[pos + 1]
    if nd > 1:
        buf[pos + 1] = 46
        pos += nd + 1
    else:
        pos += 1
    buf[pos] = 101  # 'e'
    if e < 0:
        buf[pos + 1] = 45
        e = -e
    else:
        buf[pos + 1] = 43
    pos += 2
    ne = 2 if e < 100 else 3
    _put_digits(buf, pos + ne, e, ne)
    return pos + ne


@nb.njit(cache=True, nogil=True)
def _put_row(
    buf: Any,
    pos: int,
    pieces: Any,
    time_at: int,
    head_at: int,
    head_len: int,
    tail_at: int,
    tail_len: int,
    value: float,
    limit: float,
) -> int:
    """``time,element,kind,value,limit`` and a line break.

    ``pieces`` holds the step's time stamp, the row head ``,element,kind,`` and the line end
    ``,limit\\n`` (``tail_len`` 0: ``limit`` varies by row and is formatted here).
    """
    pos = _put_piece(buf, pos, pieces, time_at, _TIME_LEN)
    pos = _put_piece(buf, pos, pieces, head_at, head_len)
    pos = _put_float(buf, pos, value)
    if tail_len > 0:
        return _put_piece(buf, pos, pieces, tail_at, tail_len)
    buf[pos] = 44
    pos = _put_float(buf, pos + 1, limit)
    buf[pos] = 10
    return pos + 1


@nb.njit(cache=True, nogil=True)
def _note(
    stats_rows: Any,
    flags: Any,
    worst_val: Any,
    worst_at: Any,
    kind: int,
    t: int,
    e: int,
    value: float,
    limit: float,
    low: bool,
) -> None:
    stats_rows[kind] += 1
    flags[kind, e] = True
    best = worst_val[kind, 0]
    if worst_at[kind, 0] < 0 or (value < best if low else value > best):
        worst_val[kind, 0] = value
        worst_val[kind, 1] = limit
        worst_at[kind, 0] = t
        worst_at[kind, 1] = e


@nb.njit(cache=True, nogil=True)
def _emit(
    buf: Any,
    pos: int,
    pieces: Any,
    at: Any,
    size: Any,
    base: Any,
    t: int,
    kind: int,
    j: int,
    value: float,
    limit: float,
) -> int:
    """Row of element ``j`` (within its kind's group) of ``kind`` at step ``t``; see _scan."""
    head = base[kind] + j
    tail = base[5] + kind
    return _put_row(buf, pos, pieces, at[t], at[head], size[head], at[tail], size[tail],
                    value, limit)  # fmt: skip


@nb.njit(cache=True, nogil=True)
def _scan(
    t0: int,
    t_end: int,
    buf: Any,
    pos0: int,
    cap: int,
    step_bytes: int,
    pieces: Any,
    at: Any,
    size: Any,
    base: Any,
    v: Any,
    load: Any,
    emerg: Any,
    emerg_mode: int,
    rev: Any,
    lim: Any,
    stats_rows: Any,
    stats_steps: Any,
    flags: Any,
    worst_val: Any,
    worst_at: Any,
    emit: bool,
) -> tuple[int, int]:
    """Format the rows of steps ``t0, t0+1, ... < t_end`` into ``buf`` from ``buf[pos0]`` on,
    until a step could pass ``buf[cap]`` (``buf`` holds 16 bytes more).

    Returns ``(end of the bytes written, next step)``; with ``emit`` False only the summary is
    folded.
    The text pieces are ``pieces[at[i] : at[i] + size[i]]`` for entry ``i``: the time stamp of
    step ``t`` is entry ``t``, the head ``,element,kind,`` of element ``j`` of ``kind`` is entry
    ``base[kind] + j`` (elements: nodes for the voltage kinds, branches for the thermal ones,
    source and regulators for reverse power) and the kind's line end ``,limit\\n`` is entry
    ``base[5] + kind`` (empty for ``thermal_emergency``, whose limit varies by row).
    """
    n_steps = v.shape[0]
    n = v.shape[1]
    nb_ = load.shape[1]
    nr = rev.shape[1]
    uv, ov, tn, te, rmin = lim[0], lim[1], lim[2], lim[3], lim[4]
    pos = pos0
    t = t0
    while t < min(t_end, n_steps) and (not emit or pos + step_bytes <= cap):
        seen = np.zeros(5, dtype=np.bool_)
        for j in range(n):
            x = float(v[t, j])  # float32 results: formatted as the float64 they equal
            if x < uv:
                if emit:
                    pos = _emit(buf, pos, pieces, at, size, base, t, 0, j, x, uv)
                _note(stats_rows, flags, worst_val, worst_at, 0, t, j, x, uv, True)
                seen[0] = True
        for j in range(n):
            x = float(v[t, j])  # float32 results: formatted as the float64 they equal
            if x > ov:
                if emit:
                    pos = _emit(buf, pos, pieces, at, size, base, t, 1, j, x, ov)
                _note(stats_rows, flags, worst_val, worst_at, 1, t, j, x, ov, False)
                seen[1] = True
        for j in range(nb_):
            x = float(load[t, j])
            if x > tn:
                if emit:
                    pos = _emit(buf, pos, pieces, at, size, base, t, 2, j, x, tn)
                _note(stats_rows, flags, worst_val, worst_at, 2, t, j, x, tn, False)
                seen[2] = True
        if emerg_mode != 0:
            for j in range(nb_):
                x = float(load[t, j])
                # % of the emergency rating: given (1), or the normal loading x normal/emergency
                # rating (2: one row of per-branch ratios)
                y = float(emerg[t, j]) if emerg_mode == 1 else x * emerg[0, j]
                if y > te:
                    # normal/emergency rating ratio from the two loadings of the same current
                    limit = te * x / y
                    if emit:
                        pos = _emit(buf, pos, pieces, at, size, base, t, 3, j, x, limit)
                    _note(stats_rows, flags, worst_val, worst_at, 3, t, j, x, limit, False)
                    seen[3] = True
        for j in range(nr):
            x = rev[t, j]
            if x < rmin:
                if emit:
                    pos = _emit(buf, pos, pieces, at, size, base, t, 4, j, x, rmin)
                _note(stats_rows, flags, worst_val, worst_at, 4, t, j, x, rmin, True)
                seen[4] = True
        for k in range(5):
            if seen[k]:
                stats_steps[k] += 1
        t += 1
    return pos, t


@nb.njit(cache=True, nogil=True, parallel=True)
def _scan_parts(
    starts: Any,
    ends: Any,
    bufs: Any,
    firsts: Any,
    cap: int,
    sizes: Any,
    nexts: Any,
    step_bytes: int,
    pieces: Any,
    at: Any,
    size: Any,
    base: Any,
    v: Any,
    load: Any,
    emerg: Any,
    emerg_mode: int,
    rev: Any,
    lim: Any,
    stats_rows: Any,
    stats_steps: Any,
    flags: Any,
    worst_val: Any,
    worst_at: Any,
) -> None:
    """Part ``p`` formats steps ``starts[p] <= t < ends[p]`` into ``bufs[p]`` from
    ``bufs[p, firsts[p]]`` on, on its own thread with its own summary arrays; its bytes end at
    ``sizes[p]``, ``nexts[p]`` is the step it stopped at (before ``ends[p]`` when its buffer
    filled up)."""
    for p in nb.prange(bufs.shape[0]):
        size_p, nxt = _scan(starts[p], ends[p], bufs[p], firsts[p], cap, step_bytes, pieces, at,
                            size, base, v, load, emerg, emerg_mode, rev, lim, stats_rows[p],
                            stats_steps[p], flags[p], worst_val[p], worst_at[p],
                            True)  # fmt: skip
        sizes[p] = size_p
        nexts[p] = nxt


@dataclass
class _Totals:
    """The summary of the committed steps (parts are folded in time order)."""

    rows: npt.NDArray[np.int64]
    steps: npt.NDArray[np.int64]
    flags: npt.NDArray[np.bool_]
    worst_val: npt.NDArray[np.float64]
    worst_at: npt.NDArray[np.int64]

    @classmethod
    def zeros(cls, parts: int, width: int) -> _Totals:
        # per-part rows padded to 128 bytes: the counters that threads update on every row
        # must not share a cache line (that made two threads slower than one)
        return cls(
            rows=np.zeros((parts, 16), dtype=np.int64)[:, :5],
            steps=np.zeros((parts, 16), dtype=np.int64)[:, :5],
            flags=np.zeros((parts, 5, width + 128), dtype=np.bool_)[:, :, :width],
            worst_val=np.zeros((parts, 8, 2))[:, :5],
            worst_at=np.full((parts, 8, 2), -1, dtype=np.int64)[:, :5],
        )

    def clear(self) -> None:
        self.rows[:] = 0
        self.steps[:] = 0
        self.flags[:] = False
        self.worst_val[:] = 0.0
        self.worst_at[:] = -1

    def fold(self, part: _Totals, p: int) -> None:
        """Add part ``p`` of ``part`` to row 0 of these totals (the first worst row stays)."""
        self.rows[0] += part.rows[p]
        self.steps[0] += part.steps[p]
        self.flags[0] |= part.flags[p]
        for k in range(5):
            if part.worst_at[p, k, 0] < 0:
                continue
            low = k in (0, 4)  # undervoltage, reverse_power: lowest is worst
            cand, best = part.worst_val[p, k, 0], self.worst_val[0, k, 0]
            if self.worst_at[0, k, 0] < 0 or (cand < best if low else cand > best):
                self.worst_val[0, k] = part.worst_val[p, k]
                self.worst_at[0, k] = part.worst_at[p, k]


#: Write ``violations.csv`` with ``O_DIRECT`` where the system allows it (Linux): the bytes go
#: from the format buffers to the disk without the kernel's copy into its page cache. On the
#: 8500-node year that copy (3.9 GB) was 2.3-2.4 s of system CPU (``dd`` of 3.8 GB of zeros
#: in 32 MB blocks: 2.4 s wall, 2.3 s system; with ``oflag=direct`` 2.5 s wall, 0.4 s system),
#: CPU that the formatting and the Parquet threads need on a small machine. The file's bytes are
#: the same either way.
DIRECT_IO = True

#: File offset, length and buffer address granularity of the direct writes (the common logical
#: block and page size; a multiple of the 512 bytes most disks need).
_BLOCK = 4096


def _aligned_empty(rows: int, width: int) -> npt.NDArray[np.uint8]:
    """A ``(rows, width)`` byte array whose rows start on ``_BLOCK`` boundaries."""
    stride = -(-width // _BLOCK) * _BLOCK
    raw = np.empty(rows * stride + _BLOCK, dtype=np.uint8)
    skip = (-raw.ctypes.data) % _BLOCK
    return raw[skip : skip + rows * stride].reshape(rows, stride)[:, :width]


class _Appender:
    """Appends bytes to a new file, in whole ``_BLOCK`` blocks from aligned buffers while it
    writes with ``O_DIRECT`` (:data:`DIRECT_IO`); falls back to ordinary writes where the file
    system refuses direct ones (``EINVAL``: tmpfs and others)."""

    def __init__(self, path: str | Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
        direct = getattr(os, "O_DIRECT", 0) if DIRECT_IO else 0
        self.direct = False
        if direct:
            try:
                self.fd = os.open(path, flags | direct, 0o666)
                self.direct = True
            except OSError:
                self.fd = os.open(path, flags, 0o666)
        else:
            self.fd = os.open(path, flags, 0o666)

    def _buffered(self) -> None:
        import fcntl

        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        self.direct = False

    def write(self, data: memoryview) -> None:
        """Write every byte (a raw write may take fewer than asked)."""
        while len(data):
            try:
                done = os.write(self.fd, data)
            except OSError as exc:
                if not (self.direct and exc.errno == errno.EINVAL):
                    raise
                self._buffered()
                continue
            if self.direct and done % _BLOCK:
                self._buffered()  # the next offset would not be aligned
            data = data[done:]

    def close(self, tail: bytes) -> None:
        """Write the last, partial block and close."""
        try:
            if tail:
                if self.direct:
                    self._buffered()
                self.write(memoryview(tail))
        finally:
            os.close(self.fd)


def _write_batch(
    out: _Appender, bufs: npt.NDArray[np.uint8], ends: npt.NDArray[np.int64], block: int
) -> None:
    """Write ``bufs[p, :ends[p]]`` of each part in order, whole blocks only.

    Part 0 starts with the carry of the batch before; the partial block at the end of each part
    is moved to the front of the next (its bytes shifted right, at most ``block - 1`` places)
    and the one at the end of the last part is the caller's carry into the next batch.
    """
    carry = b""
    for p, end in enumerate(ends):
        row = bufs[p]
        n = int(end)
        if carry:
            k = len(carry)
            ctypes.memmove(row.ctypes.data + k, row.ctypes.data, n)  # no GIL, overlap-safe
            row[:k] = np.frombuffer(carry, dtype=np.uint8)
            n += k
        whole = n - n % block
        if whole:
            out.write(row[:whole].data)
        carry = row[whole:n].tobytes()


def _stream_tail(bufs: npt.NDArray[np.uint8], ends: npt.NDArray[np.int64], k: int) -> bytes:
    """The last ``k`` bytes of ``bufs[0, :ends[0]] + bufs[1, :ends[1]] + ...``."""
    pieces: list[bytes] = []
    for p in range(len(ends) - 1, -1, -1):
        if k <= 0:
            break
        take = min(k, int(ends[p]))
        pieces.append(bufs[p, int(ends[p]) - take : int(ends[p])].tobytes())
        k -= take
    return b"".join(reversed(pieces))


def _write_csv(
    path: str | Path,
    n_t: int,
    cap: int,
    step_bytes: int,
    arrays: tuple[Any, ...],
    total: _Totals,
    parts: int,
    width: int,
) -> None:
    """The header and the rows of all steps into ``path``; the summary folded into ``total``.

    Each batch of steps is cut into ``parts`` formatted on Numba threads (no GIL), each part
    into its own buffer; one set of buffers is filled while the other is written.
    """
    part = _Totals.zeros(parts, width)
    # a part's bytes end before cap + _BLOCK (the first part starts after the carry of a
    # partial block, shorter than _BLOCK); room behind for the carry moved in front of the
    # next part (less than _BLOCK) and the 16-byte moves' overshoot
    end_cap = cap + _BLOCK
    bufs = [_aligned_empty(parts, end_cap + _BLOCK + 16) for _ in range(2)]
    firsts = np.zeros(parts, dtype=np.int64)
    sizes = np.zeros(parts, dtype=np.int64)
    nexts = np.zeros(parts, dtype=np.int64)
    # steps per part: first what the bound of one step allows, then what the rows so far
    # suggest (a part that fills its buffer early just stops there): few, large batches
    part_steps = max(1, cap // max(step_bytes, 1))
    out = _Appender(path)
    carry = (",".join(VIOLATION_COLUMNS) + "\n").encode("ascii")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending: list[Future[Any] | None] = [None, None]
            t, i = 0, 0
            while t < n_t:
                prev = pending[i]
                if prev is not None:
                    prev.result()  # this set's previous write is done
                per_part = max(1, min(part_steps, -(-(n_t - t) // parts)))
                starts = np.minimum(t + per_part * np.arange(parts), n_t)
                ends = np.minimum(starts + per_part, n_t)
                # the bytes not yet written (a partial block) lead the first part
                bufs[i][0, : len(carry)] = np.frombuffer(carry, dtype=np.uint8)
                firsts[0] = len(carry)
                part.clear()
                _scan_parts(starts, ends, bufs[i], firsts, end_cap, sizes, nexts, *arrays,  # type: ignore[call-arg]
                            part.rows, part.steps, part.flags, part.worst_val,
                            part.worst_at)  # fmt: skip
                # keep the parts in time order up to the first that stopped early
                keep = 0
                for p in range(parts):
                    total.fold(part, p)
                    keep = p + 1
                    t = int(nexts[p])
                    if nexts[p] < ends[p]:
                        break
                block = _BLOCK if out.direct else 1
                kept = sizes[:keep].copy()
                carry = _stream_tail(bufs[i], kept, int(kept.sum()) % block)
                pending[i] = pool.submit(_write_batch, out, bufs[i], kept, block)
                i = 1 - i
                done = nexts[:keep] - starts[:keep]
                dense = float(np.max((kept - firsts[:keep]) / np.maximum(done, 1)))
                part_steps = max(1, int(0.5 * cap / max(dense, 1.0)))
            for f in pending:
                if f is not None:
                    f.result()
    finally:
        out.close(carry)


def _csv_field(name: str) -> bytes:
    """A CSV field, quoted only when it needs it (a comma, a quote or a line break)."""
    if any(c in name for c in ',"\n\r'):
        return ('"' + name.replace('"', '""') + '"').encode("utf-8")
    return name.encode("utf-8")


def _packed(
    texts: Sequence[bytes],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``texts`` in one byte array (plus 16 bytes for the 16-byte moves' overshoot), with the
    start and the length of each."""
    size = np.array([len(b) for b in texts], dtype=np.int64)
    at = np.zeros(len(texts), dtype=np.int64)
    at[1:] = np.cumsum(size)[:-1]
    data = np.zeros(int(size.sum()) + 16, dtype=np.uint8)
    data[: int(size.sum())] = np.frombuffer(b"".join(texts), dtype=np.uint8)
    return data, at, size


@dataclass(frozen=True)
class ViolationScan:
    """What :func:`write_violations_from_result` counted while writing ``violations.csv``."""

    rows: dict[str, int]
    detail: dict[str, dict[str, Any]]
    seconds: float


def write_violations_from_result(
    result: Any,
    path: str | Path | None,
    limits: Limits | None = None,
    *,
    source_name: str = SOURCE_ELEMENT,
    buffer_bytes: int = BUFFER_BYTES,
    threads: int | None = None,
) -> ViolationScan:
    """Find every violation of ``result`` and write ``violations.csv`` in one compiled pass.

    Parameters
    ----------
    result:
        A ``TimeSeriesResult`` (or any object with its arrays: ``time``, ``node_names``,
        ``v_pu``, ``branch_names``, ``branch_loading_pct``, ``branch_loading_emerg_pct`` or,
        when that is None, ``branch_emerg_scale``, ``source_p_kw``, ``regulator_names``,
        ``regulator_p_kw``).
    path:
        The CSV file (replaced); None to fold the summary only (``--violations summary``).
    limits:
        Default ANSI C84.1 Range A (:func:`~gridflex.powerflow.violations.load_limits`).
    source_name:
        Element name of the substation source's reverse-power rows.
    buffer_bytes:
        Size of each part's output buffer (grown when two steps could not fit).
    threads:
        Threads that format the rows, each into its own buffer (default: Numba's thread
        count). The file's bytes do not depend on it.

    Returns
    -------
    ViolationScan
        Rows per kind and, per kind, rows, distinct elements, distinct steps and the worst row
        (lowest value for ``undervoltage`` and ``reverse_power``, highest otherwise; the first
        in file order on a tie), as ``run.json`` holds them.
    """
    import time as _time

    start = _time.perf_counter()
    lim = limits if limits is not None else load_limits()
    time = _as_time_index(result.time)
    n_t = len(time)
    node_names = [str(s) for s in result.node_names]
    branch_names = [str(s) for s in result.branch_names]
    reg_names = [str(s) for s in (result.regulator_names or [])]
    rev_names = [source_name, *reg_names]
    v = np.ascontiguousarray(_check_shape(result.v_pu, n_t, node_names, "v_pu"))
    load = np.ascontiguousarray(
        _check_shape(result.branch_loading_pct, n_t, branch_names, "branch_loading_pct")
    )
    emerg_raw = result.branch_loading_emerg_pct
    scale_raw = getattr(result, "branch_emerg_scale", None)
    if emerg_raw is not None:
        emerg_mode = 1
        emerg = np.ascontiguousarray(
            _check_shape(emerg_raw, n_t, branch_names, "branch_loading_emerg_pct")
        )
    elif scale_raw is not None:
        emerg_mode = 2
        emerg = np.ascontiguousarray(
            _check_shape(np.reshape(scale_raw, (1, -1)), 1, branch_names, "branch_emerg_scale")
        )
    else:
        emerg_mode = 0
        emerg = np.zeros((1, 1))
    rev = np.empty((n_t, len(rev_names)))
    rev[:, 0] = np.asarray(result.source_p_kw, dtype=np.float64).reshape(n_t, -1)[:, 0]
    if reg_names:
        rev[:, 1:] = np.asarray(result.regulator_p_kw, dtype=np.float64).reshape(n_t, -1)
    # the text pieces of the rows (see _scan): time stamps, row heads, line ends
    stamps = [s.encode("ascii") for s in time.strftime("%Y-%m-%dT%H:%M:%SZ")]
    kind_groups = (node_names, node_names, branch_names, branch_names, rev_names)
    heads = [
        b"," + _csv_field(name) + f",{kind},".encode("ascii")
        for kind, group in zip(VIOLATION_KINDS, kind_groups, strict=True)
        for name in group
    ]
    # the line end ",limit\n" per kind (empty: thermal_emergency's limit varies by row)
    constant = [lim.undervoltage_pu, lim.overvoltage_pu, lim.thermal_normal_pct, None,
                lim.reverse_min_p_kw]  # fmt: skip
    tails = [b"" if c is None else f",{c:.12g}\n".encode("ascii") for c in constant]
    pieces, at, size = _packed([*stamps, *heads, *tails])
    base = np.cumsum([n_t, *(len(g) for g in kind_groups)], dtype=np.int64)
    # bound of one step's bytes: every element of every kind in violation, numbers at their
    # longest, and the 16-byte moves' overshoot past the last row
    n_rows = sum(len(g) for g in kind_groups)
    step_bytes = int(size[n_t : n_t + n_rows].sum()) + n_rows * (_TIME_LEN + 2 * _NUM_MAX + 3)
    step_bytes += 16
    cap = max(int(buffer_bytes), 2 * step_bytes)
    limits_arr = np.array(
        [lim.undervoltage_pu, lim.overvoltage_pu, lim.thermal_normal_pct,
         lim.thermal_emergency_pct, lim.reverse_min_p_kw], dtype=np.float64,
    )  # fmt: skip
    parts = max(1, int(nb.get_num_threads() if threads is None else threads))
    width = max(len(node_names), len(branch_names), len(rev_names), 1)
    total = _Totals.zeros(1, width)
    arrays = (step_bytes, pieces, at, size, base, v, load, emerg, emerg_mode, rev, limits_arr)

    if path is None:
        _scan(0, n_t, np.zeros(16, dtype=np.uint8), 0, 0, *arrays, total.rows[0],
              total.steps[0], total.flags[0], total.worst_val[0], total.worst_at[0],
              False)  # fmt: skip
    else:
        # the parts' parallel region on exactly ``parts`` threads: Numba's idle workers would
        # spin beside it, on the cores left to the Parquet encoders (write_results). On the
        # 8500-node frozen year, one part with the second worker spinning cost more CPU than
        # two parts (whole run 9.4-13.2 s against 8.5-11.2 s); narrowed, 7.3-7.9 s
        outer = nb.get_num_threads()
        nb.set_num_threads(min(parts, outer))
        try:
            _write_csv(path, n_t, cap, step_bytes, arrays, total, parts, width)
        finally:
            nb.set_num_threads(outer)
    stats_rows_all = total.rows[0]
    stats_steps_all = total.steps[0]
    flags_any = total.flags[0]
    worst_val = total.worst_val
    worst_at = total.worst_at

    groups = {0: node_names, 1: node_names, 2: branch_names, 3: branch_names, 4: rev_names}
    detail: dict[str, dict[str, Any]] = {}
    for k, kind in enumerate(VIOLATION_KINDS):
        worst = None
        if worst_at[0, k, 0] >= 0:
            worst = {
                "time": pd.Timestamp(time[int(worst_at[0, k, 0])]).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "element": groups[k][int(worst_at[0, k, 1])],
                "value": float(worst_val[0, k, 0]),
                "limit": float(worst_val[0, k, 1]),
            }
        detail[kind] = {
            "rows": int(stats_rows_all[k]),
            "elements": int(flags_any[k].sum()),
            "steps": int(stats_steps_all[k]),
            "worst": worst,
        }
    return ViolationScan(
        rows={kind: int(stats_rows_all[k]) for k, kind in enumerate(VIOLATION_KINDS)},
        detail=detail,
        seconds=_time.perf_counter() - start,
    )
