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
every node voltage: local, so it is built in a few vectorised passes (SciPy's global
``CubicSpline`` took 0.1-0.25 s for 256 knots x 8531 nodes, for no fewer iterations). Its
coefficients are kept per interval in ascending powers of ``level - knot`` so the lane kernel
(:mod:`gridflex.powerflow.fused`) evaluates a step's start by Horner's rule when the step enters
a lane.

References
----------
.. [1] C. de Boor, "A Practical Guide to Splines", rev. ed., Springer, 2001, ch. IV
   (piecewise cubic Hermite interpolation; Bessel interpolation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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
    """Node voltages (V, complex) as a cubic spline in the load level.

    ``coef_re[q, p, i]`` / ``coef_im[q, p, i]``: coefficient of ``(level - knots[q]) ** p`` on
    interval ``q`` for node ``i`` (real and imaginary part), ``p`` = 0..3.
    """

    knots: FloatArray
    coef_re: FloatArray
    coef_im: FloatArray

    @classmethod
    def fit(cls, knots: FloatArray, v: ComplexArray) -> SplineGuess:
        """Interpolate solved voltages ``v`` (N x K, one column per knot) at ``knots`` (K,).

        The rows keep the order of ``v`` (the lane kernel wants the factor's solution order).
        """
        x = np.asarray(knots, dtype=np.float64)
        if x.ndim != 1 or x.size < 2 or v.shape[1] != x.size:
            raise ValueError("a spline needs two or more knots, one voltage column each")
        h = np.diff(x)
        if not np.all(h > 0.0):
            raise ValueError("spline knots must be strictly increasing")
        y = np.ascontiguousarray(v.T)  # (K, N)
        delta = np.diff(y, axis=0) / h[:, None]  # secant slopes (K - 1, N)
        slope = np.empty_like(y)
        if x.size == 2:
            slope[:] = delta[0]
        else:
            # Bessel: the slope of the parabola through each knot and its two neighbours
            w0 = (h[1:] / (h[:-1] + h[1:]))[:, None]
            slope[1:-1] = w0 * delta[:-1] + (1.0 - w0) * delta[1:]
            slope[0] = 2.0 * delta[0] - slope[1]
            slope[-1] = 2.0 * delta[-1] - slope[-2]
        hh = h[:, None]
        coef_re = np.empty((x.size - 1, 4, y.shape[1]))
        coef_im = np.empty((x.size - 1, 4, y.shape[1]))
        parts = (
            y[:-1],
            slope[:-1],
            (3.0 * delta - 2.0 * slope[:-1] - slope[1:]) / hh,
            (slope[:-1] + slope[1:] - 2.0 * delta) / (hh * hh),
        )
        for p, part in enumerate(parts):
            coef_re[:, p, :] = part.real
            coef_im[:, p, :] = part.imag
        return cls(x, coef_re, coef_im)

    @property
    def n(self) -> int:
        """Number of nodes."""
        return int(self.coef_re.shape[2])

    def evaluate(self, level: FloatArray) -> ComplexArray:
        """Voltages (N x k) at ``level`` (k,), clamped to the knots' range."""
        x = np.clip(np.asarray(level, dtype=np.float64), self.knots[0], self.knots[-1])
        q = np.clip(np.searchsorted(self.knots, x) - 1, 0, self.knots.size - 2)
        h = (x - self.knots[q])[None, :]
        out = np.zeros((self.n, x.size), dtype=np.complex128)
        for p in range(3, -1, -1):  # Horner
            out = out * h + (self.coef_re[q, p, :].T + 1j * self.coef_im[q, p, :].T)
        return out
