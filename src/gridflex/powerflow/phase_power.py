"""Nominal power per injector phase over a run, kept factored by load shape.

Every injector phase's nominal power at step ``t`` is one element factor times one profile
value, divided by the element's phase count:

    ``w[i, t] = coef_w[i] * profile[src_w[i], t] / n_ph[i]`` (and the same for var)

with one profile per load shape (its multipliers), one of ones (loads without a shape, fixed
loads, snapshot runs) and one per PV system (its available power). A year of the 8500-node
feeder thus keeps 2 profiles of 8,760 values instead of two 2,354 x 8,760 arrays (330 MB of
fresh memory: about 0.8 s of page faults on the VMs this is measured on), and a block of steps
gets its columns when it is solved. The arithmetic is the one a dense build did, operation by
operation, so the columns are bit-identical to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridflex.network.model import Network
from gridflex.powerflow.injections import Injectors, shape_multipliers

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class PhasePower:
    """Nominal W and var per injector phase (absorbed: PV rows negative), step by step.

    ``profile_w[src_w[i]]`` is row ``i``'s profile of W (likewise var); see the module notes.
    """

    coef_w: FloatArray
    coef_var: FloatArray
    n_ph: FloatArray
    src_w: IntArray
    src_var: IntArray
    profile_w: FloatArray  # (profiles, T)
    profile_var: FloatArray  # (profiles, T)

    @classmethod
    def from_dense(cls, w: FloatArray, var: FloatArray) -> PhasePower:
        """Explicit W and var (n x T each): one profile per row."""
        w = np.asarray(w, dtype=np.float64)
        var = np.asarray(var, dtype=np.float64)
        if w.shape != var.shape or w.ndim != 2:
            raise ValueError(f"w and var must be two n x T arrays, got {w.shape} and {var.shape}")
        n = w.shape[0]
        rows = np.arange(n, dtype=np.int64)
        ones = np.ones(n)
        return cls(ones, ones, ones, rows, rows.copy(), w.copy(), var.copy())

    @property
    def n(self) -> int:
        """Injector phases (rows)."""
        return int(self.coef_w.size)

    @property
    def steps(self) -> int:
        """Time steps (columns)."""
        return int(self.profile_w.shape[1])

    def cols(self, idx: IntArray | slice) -> tuple[FloatArray, FloatArray]:
        """W and var of steps ``idx``: two (n, k) arrays."""
        n_ph = self.n_ph[:, None]
        w = self.profile_w[:, idx][self.src_w]
        var = self.profile_var[:, idx][self.src_var]
        np.multiply(self.coef_w[:, None], w, out=w)
        np.multiply(self.coef_var[:, None], var, out=var)
        np.divide(w, n_ph, out=w)
        np.divide(var, n_ph, out=var)
        return w, var

    def dense(self) -> tuple[FloatArray, FloatArray]:
        """W and var of every step (n x T each: for small runs and tests)."""
        return self.cols(slice(None))

    def mean(self) -> tuple[FloatArray, FloatArray]:
        """W and var per row averaged over the run."""
        mw = self.profile_w.mean(axis=1)
        mq = self.profile_var.mean(axis=1)
        w = self.coef_w * mw[self.src_w] / self.n_ph
        return w, self.coef_var * mq[self.src_var] / self.n_ph

    def total_w(self) -> FloatArray:
        """Total nominal W absorbed per step (the run's load level)."""
        weight = np.zeros(self.profile_w.shape[0])
        np.add.at(weight, self.src_w, self.coef_w / self.n_ph)
        return np.asarray(weight @ self.profile_w, dtype=np.float64)

    def any_generation(self) -> bool:
        """Whether some row is negative at some step (PV, or a negative load)."""
        lo = self.profile_w.min(axis=1)[self.src_w]
        hi = self.profile_w.max(axis=1)[self.src_w]
        return bool(np.any(np.minimum(self.coef_w * lo, self.coef_w * hi) < 0.0))

    def first_equal_step(self) -> IntArray:
        """Per step, the first step with exactly its load vector (equal profile columns).

        Columns are grouped by a random projection, then compared exactly (a projection
        collision only costs a solve: the step keeps its own index).
        """
        key_w = self.profile_w[np.unique(self.src_w)]
        key_q = self.profile_var[np.unique(self.src_var)]
        rng = np.random.default_rng(20261122)
        key = rng.standard_normal(key_w.shape[0]) @ key_w + 1j * (
            rng.standard_normal(key_q.shape[0]) @ key_q
        )
        _, first_idx, inverse = np.unique(key, return_index=True, return_inverse=True)
        first = np.asarray(first_idx[inverse.ravel()], dtype=np.int64)
        cand = np.flatnonzero(first != np.arange(self.steps))
        for part in np.array_split(cand, max(1, cand.size // 512)):
            same = np.all(key_w[:, part] == key_w[:, first[part]], axis=0) & np.all(
                key_q[:, part] == key_q[:, first[part]], axis=0
            )
            first[part[~same]] = part[~same]
        return first


def phase_power(
    net: Network, inj: Injectors, hours: FloatArray, snapshot: bool
) -> tuple[PhasePower, FloatArray]:
    """The run's :class:`PhasePower` and PV available kW (n_pv x T).

    ``hours`` are the shape hours of the steps; ``snapshot``: every shape at 1 (nominal load,
    as OpenDSS's snapshot solution).
    """
    t = hours.shape[0]
    ld = net.loads
    profiles_w: list[FloatArray] = [np.ones(t)]
    profiles_q: list[FloatArray] = [np.ones(t)]
    by_shape: dict[str, int] = {}

    def shape_row(name: str) -> int:
        if snapshot or not name:
            return 0
        if name not in by_shape:
            pm, qm = shape_multipliers(net.loadshapes.get(name), hours)
            by_shape[name] = len(profiles_w)
            profiles_w.append(np.asarray(pm, dtype=np.float64))
            profiles_q.append(np.asarray(qm, dtype=np.float64))
        return by_shape[name]

    n = inj.n
    coef_w = np.zeros(n)
    coef_q = np.zeros(n)
    src_w = np.zeros(n, dtype=np.int64)
    src_q = np.zeros(n, dtype=np.int64)
    n_ph = np.ones(n)
    element = inj.element
    load_rows = np.flatnonzero(~inj.is_pv)
    order = np.argsort(element[load_rows], kind="stable")
    by_load = np.split(load_rows[order], np.flatnonzero(np.diff(element[load_rows][order])) + 1)
    for rows in by_load if load_rows.size else []:
        k = int(element[rows[0]])
        if ld.fixed[k]:
            row, factor = 0, 1.0
        else:
            row, factor = shape_row(ld.yearly[k]), net.load_mult
        shape = net.loadshapes.get(ld.yearly[k]) if ld.yearly[k] else None
        if shape is not None and shape.use_actual and not snapshot and not ld.fixed[k]:
            w_k, var_k = 1000.0, 1000.0
        else:
            w_k = 1000.0 * ld.kw[k] * factor
            var_k = 1000.0 * ld.kvar[k] * factor
        coef_w[rows], coef_q[rows] = w_k, var_k
        src_w[rows], src_q[rows] = row, row
        n_ph[rows] = float(ld.n_phases[k])
    pv = net.pv
    pv_avail_kw = np.zeros((len(pv), t))
    pv_var = np.zeros((len(pv), t))
    for k in range(len(pv)):
        pm = profiles_w[shape_row(pv.yearly[k])]
        p = np.minimum(pv.pmpp_kw[k] * pv.irradiance[k] * pm, pv.kva[k])
        p = np.where(p * 100.0 < pv.cutin_pct[k] * pv.kva[k], 0.0, p)
        pv_avail_kw[k] = p
        if pv.pf_specified[k]:
            pf = pv.pf[k]
            q = p * np.sqrt(max(1.0 / pf**2 - 1.0, 0.0)) * np.sign(pf) if pf != 0 else 0 * p
        else:
            q = np.where(p > 0, pv.kvar[k], 0.0)
        pv_var[k] = q
    if len(pv):
        rows = np.flatnonzero(inj.is_pv)
        base = len(profiles_w)
        profiles_w.extend(pv_avail_kw)
        profiles_q.extend(pv_var)
        coef_w[rows] = coef_q[rows] = -1000.0
        src_w[rows] = src_q[rows] = base + element[rows]
        n_ph[rows] = pv.n_phases[element[rows]]
    power = PhasePower(
        coef_w=coef_w,
        coef_var=coef_q,
        n_ph=n_ph,
        src_w=src_w,
        src_var=src_q,
        profile_w=np.vstack(profiles_w),
        profile_var=np.vstack(profiles_q),
    )
    return power, pv_avail_kw
