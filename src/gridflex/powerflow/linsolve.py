"""Sparse LU factorisation of the complex node admittance, solved for many right-hand sides.

One factorisation serves every time step of a control state. The factors come from SuperLU
(``scipy.sparse.linalg.splu``, minimum-degree ordering on ``A^T + A``, which suits radial
feeders: little fill).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from gridflex.errors import InputError

ComplexArray = npt.NDArray[np.complex128]


class Factor:
    """A factorised admittance matrix; :meth:`solve` takes (N,) or (N, k) right-hand sides."""

    def __init__(self, lu: sla.SuperLU) -> None:
        self._lu = lu

    def solve(self, rhs: ComplexArray) -> ComplexArray:
        """Solve ``Y x = rhs`` for every column of ``rhs``."""
        return np.asarray(self._lu.solve(np.asarray(rhs, dtype=np.complex128)))


def factorize(y: sp.spmatrix) -> Factor:
    """Factorise ``y``; a singular matrix (an island, a floating node) raises ``InputError``."""
    try:
        lu = sla.splu(sp.csc_matrix(y, dtype=np.complex128), permc_spec="MMD_AT_PLUS_A")
    except RuntimeError as exc:
        raise InputError(
            f"the network admittance matrix is singular ({exc})",
            "check for nodes with no path to the source (open switches, missing lines)",
        ) from exc
    return Factor(lu)
