"""Initial voltages for a year of steps: cubic splines through solved anchor steps.

With controls frozen, a step's solution depends on its load vector only. On a feeder whose
loads follow one shape (plus loads fixed at their nominal power, as the IEEE 8500-node feeder
with LoadShape1), the load vector, and so the solution, is a function of one number, the total
load ``level``. A few hundred real steps spread over the year's range of levels ("anchors") are
solved first; every other step starts from a cubic spline through the anchors' voltages,
evaluated at its own level. That start is within about 1e-7 pu of the solution on the 8500-node
feeder (median over the year), so most steps converge in the one iteration that certifies them:
mean iterations per step 5.9 (scaled mean load) -> 1.1, and 3.8 -> 1.0 on IEEE 123.

With several load shapes (EPRI ckt5, ckt7) the level does not determine the load pattern and the
spline is only an approximation (ckt5: 4.2 -> 3.1 iterations); it never costs accuracy, since
every step still iterates to the solver's tolerance from wherever it starts.

The spline is the piecewise cubic Hermite interpolant with Bessel slopes (at each knot, the
slope of the parabola through it and its two neighbours) [1]_, per real and imaginary part of
every node voltage: local, so it is built in one compiled pass over nodes and knots (SciPy's
global ``CubicSpline`` took 0.1-0.25 s for 256 knots x 8531 nodes, for no fewer iterations). It
is kept in Hermite form, each knot's values and slopes, so the lane kernel
(:mod:`gridflex.powerflow.fused`) evaluates a step's start from the two knots around its level
with the four cubic Hermite basis weights when the step enters a lane. Per interval
coefficients of ``level - knot`` (the form before) are twice the memory (140 MB for 256 knots on
the 8500-node feeder) and twice the fit's writes, for the same four reads per node.

References
----------
.. [1] C. de Boor, "A Practical Guide to Splines", rev. ed., Springer, 2001, ch. IV
   (piecewise cubic Hermite interpolation; Bessel interpolation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt

from gridflex.powerflow.memory import result_array

ComplexArray = npt.NDArray[np.complex128]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def anchor_steps(level: FloatArray, n_anchors: int) -> IntArray:
    """Steps to solve first: spread over both the ranks and the range of ``level``.

    Half the anchors sit at evenly spaced ranks (dense where the year spends its hours), half at
    the steps nearest to evenly spaced levels (so the rare extremes, peaks, get knots too); the
    smallest and the largest level are always anchors. Returned sorted by level, with strictly
    increasing levels (of steps at equal levels the first is kept: a spline needs distinct
    knots).
    """
    t = level.size
    if t == 0 or n_anchors < 2:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(level, kind="stable")
    ranked = level[order]
    by_rank = order[np.round(np.linspace(0, t - 1, max(2, n_anchors // 2))).astype(np.int64)]
    targets = np.linspace(ranked[0], ranked[-1], max(2, n_anchors - n_anchors // 2))
    pos = np.clip(np.searchsorted(ranked, targets), 1, t - 1) if t > 1 else np.zeros(1, np.int64)
    if t > 1:
        nearer_left = np.abs(targets - ranked[pos - 1]) <= np.abs(ranked[pos] - targets)
        pos = np.where(nearer_left, pos - 1, pos)
    anchors = np.unique(np.concatenate([by_rank, order[pos]]))
    anchors = anchors[np.argsort(level[anchors], kind="stable")]
    span = float(np.max(np.abs(level))) if t else 0.0
    distinct = np.concatenate([[True], np.diff(level[anchors]) > 1e-12 * max(span, 1.0)])
    return np.asarray(anchors[distinct], dtype=np.int64)


@dataclass(frozen=True)
class SplineGuess:
    """Node voltages (V, complex) as a cubic spline in the load level, in Hermite form.

    ``knot_data[q, 0, i]`` / ``knot_data[q, 1, i]``: real / imaginary voltage of node ``i`` at
    knot ``q``; ``knot_data[q, 2, i]`` / ``knot_data[q, 3, i]``: its slope in the level there.
    """

    knots: FloatArray
    knot_data: FloatArray

    @classmethod
    def fit(cls, knots: FloatArray, v: ComplexArray, rows: IntArray | None = None) -> SplineGuess:
        """Interpolate solved voltages ``v`` (N x K, one column per knot) at ``knots`` (K,).

        Node ``i`` becomes row ``rows[i]`` of the spline (default: row ``i``); the lane kernel
        wants the factor's solution order. ``v`` may be node-major or step-major.
        """
        x = np.asarray(knots, dtype=np.float64)
        if x.ndim != 1 or x.size < 2 or v.ndim != 2 or v.shape[1] != x.size:
            raise ValueError("a spline needs two or more knots, one voltage column each")
        if not np.all(np.diff(x) > 0.0):
            raise ValueError("spline knots must be strictly increasing")
        n = v.shape[0]
        perm = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        if not (v.flags.c_contiguous or v.flags.f_contiguous):
            v = np.ascontiguousarray(v)
        # written once, then read (memory.result_array says why small pages)
        knot_data = result_array((x.size, 4, n), np.float64)
        _hermite_bessel(x, v.astype(np.complex128, copy=False), perm, knot_data)
        return cls(x, knot_data)

    @property
    def n(self) -> int:
        """Number of nodes."""
        return int(self.knot_data.shape[2])

    def evaluate(self, level: FloatArray) -> ComplexArray:
        """Voltages (N x k) at ``level`` (k,), clamped to the knots' range."""
        x = np.clip(np.asarray(level, dtype=np.float64), self.knots[0], self.knots[-1])
        q = np.clip(np.searchsorted(self.knots, x) - 1, 0, self.knots.size - 2)
        out = np.empty((self.n, x.size), dtype=np.complex128)
        for c in range(x.size):
            w00, w10, w01, w11 = hermite_weights(self.knots, int(q[c]), float(x[c]))
            d0 = self.knot_data[q[c]]
            d1 = self.knot_data[q[c] + 1]
            re = w00 * d0[0] + w10 * d0[2] + w01 * d1[0] + w11 * d1[2]
            im = w00 * d0[1] + w10 * d0[3] + w01 * d1[1] + w11 * d1[3]
            out[:, c] = re + 1j * im
        return out


@nb.njit(cache=True, nogil=True)
def hermite_weights(knots: np.ndarray, q: int, x: float) -> tuple[float, float, float, float]:
    """Weights of knot ``q``'s value and slope and knot ``q + 1``'s at level ``x`` (de Boor,
    ch. IV: the cubic Hermite basis on the interval, the slopes' weights scaled by its width)."""
    width = knots[q + 1] - knots[q]
    t = (x - knots[q]) / width
    u = 1.0 - t
    return (1.0 + 2.0 * t) * u * u, t * u * u * width, t * t * (3.0 - 2.0 * t), -t * t * u * width


@nb.njit(cache=True, nogil=True, inline="always")
def _bessel_slope(x: np.ndarray, v: np.ndarray, i: int, j: int) -> complex:  # pragma: no cover
    """Slope at knot ``j`` (0 < j < K - 1) of the parabola through knots j - 1, j, j + 1."""
    h0 = x[j] - x[j - 1]
    h1 = x[j + 1] - x[j]
    d0 = (v[i, j] - v[i, j - 1]) / h0
    d1 = (v[i, j + 1] - v[i, j]) / h1
    w0 = h1 / (h0 + h1)
    return w0 * d0 + (1.0 - w0) * d1


@nb.njit(cache=True, nogil=True, inline="always")
def _slope(x: np.ndarray, v: np.ndarray, i: int, j: int) -> complex:  # pragma: no cover
    """Bessel slope at knot ``j``; at the ends, the one that matches the neighbour's parabola."""
    k = x.shape[0]
    if k == 2:
        return (v[i, 1] - v[i, 0]) / (x[1] - x[0])
    if j == 0:
        return 2.0 * (v[i, 1] - v[i, 0]) / (x[1] - x[0]) - _bessel_slope(x, v, i, 1)
    if j == k - 1:
        d = (v[i, k - 1] - v[i, k - 2]) / (x[k - 1] - x[k - 2])
        return 2.0 * d - _bessel_slope(x, v, i, k - 2)
    return _bessel_slope(x, v, i, j)


@nb.njit(cache=True, nogil=True, parallel=True)
def _hermite_bessel(
    x: np.ndarray, v: np.ndarray, perm: np.ndarray, knot_data: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Values and Bessel slopes of ``v`` (N x K) at ``x``, knot by knot, rows in ``perm`` order.

    Each knot's four rows are written in order (row ``r`` from node ``perm^-1[r]``), a thread
    per run of knots: tiles of nodes in node order scattered each row's writes over the array
    (0.46 s for the 140 MB of per-interval coefficients this replaced, a cache miss per write).
    """
    n, k = v.shape
    node_of = np.empty(n, dtype=np.int64)
    for i in range(n):
        node_of[perm[i]] = i
    for q in nb.prange(k):
        for r in range(n):
            i = node_of[r]
            y = v[i, q]
            s = _slope(x, v, i, q)
            knot_data[q, 0, r] = y.real
            knot_data[q, 1, r] = y.imag
            knot_data[q, 2, r] = s.real
            knot_data[q, 3, r] = s.imag
