"""Load and PV currents as functions of voltage, vectorised over elements and time steps.

Every load or PV phase is one *injector* between two nodes ``a`` and ``b`` (``b`` is the
neutral for wye, the next conductor for delta; ground is the extra zero node ``N``). The
functions here return the current flowing from ``a`` through the element to ``b`` for a
(n_phase_elements x T) block of voltages, replicating OpenDSS's load models exactly
(``Load.pas``: ``DoConstantPQLoad``, ``DoConstantZLoad``, ``DoMotorTypeLoad``, ``DoCVRModel``,
``DoConstantILoad``, ``DoFixedQ``, ``DoFixedQZ``), including the constant-impedance zones below
``Vminpu`` (blended linearly down to ``Vlowpu``) and above ``Vmaxpu``.

References
----------
.. [1] dss-extensions/dss_capi, ``src/PCElements/Load.pas`` (``SetNominalLoad``,
   ``InterpolateY95_YLow``, ``InterpolateY95I_YLow`` and the ``Do*Load`` procedures).
.. [2] EPRI, OpenDSS reference guide, Load object, properties ``model``, ``Vminpu``,
   ``Vmaxpu``, ``Vlowpu``, ``CVRwatts``, ``CVRvars``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from gridflex.network.model import LoadShape, Network

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
IntArray = npt.NDArray[np.int64]

#: model code used internally for PV (constant PQ generation, Yeq outside Vminpu..Vmaxpu)
PV_MODEL = 101


def shape_multipliers(shape: LoadShape | None, hours: FloatArray) -> tuple[FloatArray, FloatArray]:
    """P and Q multipliers of ``shape`` at simulation ``hours`` (OpenDSS ``GetMultAtHour``).

    Fixed-interval shapes take the point nearest ``hours / interval`` (1-based, wrapping, point
    0 meaning the last point); shapes with explicit hours interpolate linearly and wrap at the
    last hour. Without Q multipliers, Q follows P (0 when ``useactual``).
    """
    t = hours.shape[0]
    if shape is None or shape.npts == 0:
        return np.ones(t), np.ones(t)
    p = shape.p_mult
    q = shape.q_mult
    if shape.npts == 1:
        pm = np.full(t, p[0])
        qm = np.full(t, q[0]) if q is not None else (np.zeros(t) if shape.use_actual else pm)
        return pm, qm.copy()
    if shape.interval_h > 0:
        # Pascal round() is round-half-even, as np.rint
        i = np.rint(hours / shape.interval_h).astype(np.int64)
        i = np.where(i > shape.npts, i % shape.npts, i)
        i = np.where(i == 0, shape.npts, i)
        idx = i - 1
        pm = p[idx]
        return pm, _q_or_default(q[idx] if q is not None else None, pm, shape.use_actual)
    h = shape.hours if shape.hours is not None else np.arange(shape.npts, dtype=float)
    last = h[-1]
    hr = np.where(hours > last, hours - np.trunc(hours / last) * last, hours)
    pm = np.interp(hr, h, p)
    return pm, _q_or_default(np.interp(hr, h, q) if q is not None else None, pm, shape.use_actual)


def _q_or_default(qm: FloatArray | None, pm: FloatArray, use_actual: bool) -> FloatArray:
    """Q multipliers; without them Q follows P, or is 0 for ``useactual`` shapes."""
    if qm is not None:
        return qm
    return np.zeros_like(pm) if use_actual else pm.copy()


@dataclass
class Injectors:
    """Flattened load and PV phases (one row per phase of each element)."""

    a: IntArray  # node index of the phase conductor (N = ground)
    b: IntArray  # neutral / next conductor (N = ground)
    element: IntArray  # row in LoadTable (loads) or PVTable (PV, offset by n_loads)
    is_pv: npt.NDArray[np.bool_]
    model: IntArray
    v_base_v: FloatArray
    v_low_v: FloatArray
    v_min_v: FloatArray
    v_max_v: FloatArray
    vminpu: FloatArray
    vmaxpu: FloatArray
    cvr_watts: FloatArray
    cvr_vars: FloatArray
    var_base: FloatArray  # model 6/7: fixed var per phase (unscaled by shapes)
    incidence: sp.csr_matrix  # (N, n) +1 at a, -1 at b: injection = -incidence @ current

    @property
    def n(self) -> int:
        """Number of injector phases."""
        return int(self.a.shape[0])

    def kernel_arrays(
        self,
    ) -> tuple[
        IntArray,
        IntArray,
        IntArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
        FloatArray,
    ]:
        """The per-phase arrays every load-model kernel takes, in the kernels' argument order."""
        return (
            self.a,
            self.b,
            self.model,
            self.v_base_v,
            self.v_low_v,
            self.v_min_v,
            self.v_max_v,
            self.vminpu,
            self.vmaxpu,
            self.cvr_watts,
            self.cvr_vars,
            self.var_base,
        )


def build_injectors(net: Network) -> Injectors:
    """Flatten the network's loads and PV systems into injector phases."""
    n_nodes = net.n_nodes
    rows: dict[str, list[float]] = {
        k: []
        for k in (
            [
                "a",
                "b",
                "element",
                "is_pv",
                "model",
                "vb",
                "vlow",
                "vmin",
                "vmax",
                "vminpu",
                "vmaxpu",
                "cvrw",
                "cvrv",
                "varbase",
            ]
        )
    }

    def add(
        kind_pv: bool,
        table_row: int,
        refs: IntArray,
        nph: int,
        ncond: int,
        delta: bool,
        model: int,
        vb: float,
        vlowpu: float,
        vminpu: float,
        vmaxpu: float,
        cvrw: float,
        cvrv: float,
        varbase: float,
    ) -> None:
        refs = np.where(refs < 0, n_nodes, refs)
        for i in range(nph):
            a = int(refs[i])
            if delta:
                b = int(refs[(i + 1) % ncond])
            else:
                b = int(refs[ncond - 1]) if ncond > nph else n_nodes
            rows["a"].append(a)
            rows["b"].append(b)
            rows["element"].append(table_row)
            rows["is_pv"].append(kind_pv)
            rows["model"].append(model)
            rows["vb"].append(vb)
            rows["vlow"].append(vlowpu * vb)
            rows["vmin"].append(vminpu * vb)
            rows["vmax"].append(vmaxpu * vb)
            rows["vminpu"].append(vminpu)
            rows["vmaxpu"].append(vmaxpu)
            rows["cvrw"].append(cvrw)
            rows["cvrv"].append(cvrv)
            rows["varbase"].append(varbase)

    ld = net.loads
    for k in range(len(ld)):
        nph = int(ld.n_phases[k])
        add(
            False,
            k,
            ld.node_idx[k],
            nph,
            int(ld.n_conds[k]),
            bool(ld.delta[k]),
            int(ld.model[k]),
            float(ld.v_base_v[k]),
            float(ld.vlowpu[k]),
            float(ld.vminpu[k]),
            float(ld.vmaxpu[k]),
            float(ld.cvr_watts[k]),
            float(ld.cvr_vars[k]),
            1000.0 * float(ld.kvar[k]) / nph,
        )
    pv = net.pv
    for k in range(len(pv)):
        nph = int(pv.n_phases[k])
        add(
            True,
            k,
            pv.node_idx[k],
            nph,
            int(pv.n_conds[k]),
            bool(pv.delta[k]),
            PV_MODEL,
            float(pv.v_base_v[k]),
            0.0,
            float(pv.vminpu[k]),
            float(pv.vmaxpu[k]),
            1.0,
            2.0,
            0.0,
        )
    a = np.array(rows["a"], dtype=np.int64)
    b = np.array(rows["b"], dtype=np.int64)
    n = a.size
    cols = np.arange(n)
    inc = sp.coo_matrix(
        (
            np.concatenate([np.ones(n), -np.ones(n)]),
            (np.concatenate([a, b]), np.concatenate([cols, cols])),
        ),
        shape=(n_nodes + 1, n),
    ).tocsr()[:n_nodes]
    f = np.asarray
    return Injectors(
        a=a,
        b=b,
        element=f(rows["element"], dtype=np.int64),
        is_pv=f(rows["is_pv"], dtype=bool),
        model=f(rows["model"], dtype=np.int64),
        v_base_v=f(rows["vb"], dtype=float),
        v_low_v=f(rows["vlow"], dtype=float),
        v_min_v=f(rows["vmin"], dtype=float),
        v_max_v=f(rows["vmax"], dtype=float),
        vminpu=f(rows["vminpu"], dtype=float),
        vmaxpu=f(rows["vmaxpu"], dtype=float),
        cvr_watts=f(rows["cvrw"], dtype=float),
        cvr_vars=f(rows["cvrv"], dtype=float),
        var_base=f(rows["varbase"], dtype=float),
        incidence=inc,
    )


def phase_currents(
    inj: Injectors, vd: ComplexArray, w: FloatArray, var: FloatArray
) -> ComplexArray:
    """Current through each injector phase (n x T), from ``a`` to ``b``, in amperes.

    Parameters
    ----------
    inj:
        Injector description.
    vd:
        Voltage across each phase, ``V[a] - V[b]`` (n x T), volts.
    w, var:
        Nominal active / reactive power per phase at the base voltage (n x T), watts / var,
        consumption positive (PV phases carry negative values: generation).
    """
    vmag = np.abs(vd)
    vb = inj.v_base_v[:, None]
    yeq = (w - 1j * var) / vb**2
    vminpu = inj.vminpu[:, None]
    vmaxpu = inj.vmaxpu[:, None]
    yeq95 = np.where(vminpu != 0, yeq / np.where(vminpu != 0, vminpu, 1.0) ** 2, 0.0)
    yeq105 = np.where(vmaxpu != 0, yeq / np.where(vmaxpu != 0, vmaxpu, 1.0) ** 2, yeq)
    vlow = inj.v_low_v[:, None]
    v95 = inj.v_min_v[:, None]
    v105 = inj.v_max_v[:, None]
    safe_v = np.where(vmag > 0, vd, 1.0)
    safe_mag = np.where(vmag > 0, vmag, 1.0)
    model = inj.model[:, None]

    # constant-power part (model 1 and PV): conj(S / V)
    s_const = np.conj((w + 1j * var) / safe_v)
    cur = s_const
    is_m2 = model == 2
    cur = np.where(is_m2, yeq * vd, cur)
    # motor (3): constant P, Q as impedance
    m3 = np.conj(w / safe_v) + 1j * yeq.imag * vd
    cur = np.where(model == 3, m3, cur)
    # CVR (4)
    if np.any(inj.model == 4):
        vr = vmag / vb
        wf = np.where(inj.cvr_watts[:, None] != 1.0, vr ** inj.cvr_watts[:, None], vr)
        vf = vr ** inj.cvr_vars[:, None]
        m4 = np.where(wf > 0, np.conj(w * wf / safe_v), 0.0) + np.conj(1j * var * vf / safe_v)
        cur = np.where(model == 4, m4, cur)
    # constant |I| (5)
    if np.any(inj.model == 5):
        m5 = np.conj((w + 1j * var) / (safe_v / safe_mag * vb))
        cur = np.where(model == 5, m5, cur)
    # fixed Q (6) and fixed Q as impedance (7)
    if np.any((inj.model == 6) | (inj.model == 7)):
        varb = inj.var_base[:, None]
        yqfixed = -varb / vb**2
        m6 = np.conj((w + 1j * varb) / safe_v)
        m7 = np.conj(w / safe_v) + 1j * yqfixed * vd
        cur = np.where(model == 6, m6, cur)
        cur = np.where(model == 7, m7, cur)
    else:
        yqfixed = np.zeros_like(vb)

    # Zones outside Vminpu..Vmaxpu (none for model 2)
    low = vmag <= vlow
    mid = (~low) & (vmag <= v95)
    high = vmag > v105
    is_pv = model == PV_MODEL
    is_fixq = (model == 6) | (model == 7)
    is_ci = model == 5
    # Interpolation between ILow (at Vlow, Yeq) and I95 (at Vmin)
    ilow = yeq * vlow
    denom = np.where(v95 - vlow != 0, v95 - vlow, 1.0)
    m95 = (yeq95 * v95 - ilow) / denom
    m95i = (yeq * vb - ilow) / denom
    y_interp = (ilow + m95 * (vmag - vlow)) / safe_mag
    y_interp_i = (ilow + m95i * (vmag - vlow)) / safe_mag
    y_mid = np.where(is_ci, y_interp_i, y_interp)
    y_mid = np.where(is_fixq, yeq95.real + 1j * yqfixed, y_mid)
    y_mid = np.where(is_pv, yeq95, y_mid)  # PV: impedance below Vminpu, no Vlow zone
    y_high = np.where(is_ci, yeq / np.where(vmaxpu != 0, vmaxpu, 1.0), yeq105)
    y_high = np.where(is_fixq, yeq105.real + 1j * yqfixed, y_high)
    y_low = np.where(is_pv, yeq95, yeq)
    zone = ~is_m2
    cur = np.where(zone & high, y_high * vd, cur)
    cur = np.where(zone & mid, y_mid * vd, cur)
    cur = np.where(zone & low, y_low * vd, cur)
    return np.asarray(cur, dtype=np.complex128)


@nb.njit(cache=True, nogil=True)
def constant_power_zones(
    model: np.ndarray,
    vlow: np.ndarray,
    v95: np.ndarray,
    v105: np.ndarray,
    vb: np.ndarray,
    vmaxpu: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Per injector phase, what :func:`constant_power_current` needs: whether it is constant
    P+jQ (load model 1, PV), the squared voltage above which it is (``lo2``, the larger of its
    Vminpu and Vlow voltages) and up to which it draws its power (``hi2``, Vmaxpu), and ``zf``
    = 1 / (Vbase Vmaxpu)^2 (1 / Vbase^2 where Vmaxpu is 0, as :func:`_current`)."""
    n_inj = model.shape[0]
    fast = np.empty(n_inj, dtype=np.bool_)
    lo2 = np.empty(n_inj)
    hi2 = np.empty(n_inj)
    zf = np.empty(n_inj)
    for j in range(n_inj):
        fast[j] = model[j] == 1 or model[j] == PV_MODEL
        lo = max(v95[j], vlow[j])
        lo2[j] = lo * lo
        hi2[j] = v105[j] * v105[j]
        zf[j] = 1.0 / (vb[j] * vb[j])
        if vmaxpu[j] != 0.0:
            zf[j] /= vmaxpu[j] * vmaxpu[j]
    return fast, lo2, hi2, zf


@nb.njit(cache=True, nogil=True, inline="always")
def constant_power_current(
    dr: float, di: float, v2: float, w: float, var: float, hi2: float, zf: float
) -> tuple[float, float]:  # pragma: no cover - compiled
    """Current of a constant P+jQ phase (load model 1, PV) at ``V = dr + j di`` above its low
    zone (``|V|^2 = v2``), as :func:`_current` gives it: ``conj(S) V / |V|^2`` up to Vmaxpu
    (``v2 <= hi2``), above it the impedance of the nominal power at Vmaxpu, ``conj(S) zf V``
    with ``zf = 1 / (Vbase Vmaxpu)^2`` (OpenDSS ``Load.pas``). The solver kernels take it
    inline, without the general model's zone tests: the frozen 8500-node year puts most of its
    loads above Vmaxpu, where those cost a tenth of the lane kernel.
    """
    if v2 <= hi2:
        inv = 1.0 / v2
        return (w * dr + var * di) * inv, (w * di - var * dr) * inv
    zr = w * zf
    zi = -var * zf
    return zr * dr - zi * di, zr * di + zi * dr


@nb.njit(cache=True, nogil=True, inline="always")
def constant_power_w(v2: float, w: float, hi2: float, zf: float) -> float:  # pragma: no cover
    """Active power the phase of :func:`constant_power_current` absorbs: ``w`` up to Vmaxpu,
    ``|V|^2 w zf`` above it. Written as a select, not through the current: the recording's
    lane loop then vectorises (through the current, 12-17 % more recording time)."""
    return w if v2 <= hi2 else v2 * w * zf


@nb.njit(cache=True, nogil=True, inline="always")
def _current(
    vd: complex,
    model: int,
    vb: float,
    vlow: float,
    v95: float,
    v105: float,
    vminpu: float,
    vmaxpu: float,
    cvrw: float,
    cvrv: float,
    varbase: float,
    w: float,
    var: float,
) -> complex:  # pragma: no cover - compiled
    """Scalar twin of :func:`phase_currents` (same zones and formulas, one phase, one step).

    ``conj(S / V)`` is evaluated as ``conj(S) V / |V|^2`` (no complex division: this function
    runs for every load phase, step and iteration, and the division dominated its cost).
    """
    vre = vd.real
    vim = vd.imag
    v2 = vre * vre + vim * vim
    vmag = np.sqrt(v2)
    inv_vb2 = 1.0 / (vb * vb)
    yeq = complex(w * inv_vb2, -var * inv_vb2)
    if model == 2:
        return yeq * vd
    if model == PV_MODEL:
        if vmag <= v95:
            return (yeq / (vminpu * vminpu) if vminpu != 0.0 else 0j) * vd
        if vmag > v105:
            return (yeq / (vmaxpu * vmaxpu) if vmaxpu != 0.0 else yeq) * vd
        return complex(w, -var) * vd / v2
    if vmag <= vlow:
        return yeq * vd
    if vmag <= v95:
        yeq95 = yeq / (vminpu * vminpu) if vminpu != 0.0 else 0j
        if model == 6 or model == 7:
            return complex(yeq95.real, -varbase * inv_vb2) * vd
        ilow = yeq * vlow
        i_top = yeq * vb if model == 5 else yeq95 * v95  # InterpolateY95I_YLow vs Y95_YLow
        m = (i_top - ilow) / (v95 - vlow)
        return (ilow + m * (vmag - vlow)) / vmag * vd
    if vmag > v105:
        yeq105 = yeq / (vmaxpu * vmaxpu) if vmaxpu != 0.0 else yeq
        if model == 6 or model == 7:
            return complex(yeq105.real, -varbase * inv_vb2) * vd
        if model == 5:
            return (yeq / vmaxpu if vmaxpu != 0.0 else yeq) * vd
        return yeq105 * vd
    if model == 1:
        return complex(w, -var) * vd / v2
    if model == 3:
        return w * vd / v2 + 1j * yeq.imag * vd
    if model == 4:
        vr = vmag / vb
        wf = vr**cvrw if cvrw != 1.0 else vr
        cur = w * wf * vd / v2 if wf > 0.0 else 0j
        return cur + complex(0.0, -var * vr**cvrv) * vd / v2
    if model == 5:
        return complex(w, -var) * vd / (vmag * vb)
    if model == 6:
        return complex(w, -varbase) * vd / v2
    if model == 7:
        return w * vd / v2 + 1j * (-varbase * inv_vb2) * vd
    return complex(w, -var) * vd / v2


@nb.njit(cache=True, nogil=True)
def _rhs_block(
    v: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    model: np.ndarray,
    vb: np.ndarray,
    vlow: np.ndarray,
    v95: np.ndarray,
    v105: np.ndarray,
    vminpu: np.ndarray,
    vmaxpu: np.ndarray,
    cvrw: np.ndarray,
    cvrv: np.ndarray,
    varbase: np.ndarray,
    w: np.ndarray,
    var: np.ndarray,
    y_nom: np.ndarray,
    i_src: np.ndarray,
    out: np.ndarray,
    c0: int,
    c1: int,
) -> None:  # pragma: no cover - compiled
    """``out = I_src - C (i(V) - y_nom (V_a - V_b))`` for columns ``c0:c1``, in one pass."""
    n_nodes = v.shape[0]
    n = a.shape[0]
    for i in range(n_nodes):
        s = i_src[i]
        for c in range(c0, c1):
            out[i, c] = s
    for j in range(n):
        ia = a[j]
        ib = b[j]
        for c in range(c0, c1):
            va = v[ia, c] if ia < n_nodes else 0j
            vbb = v[ib, c] if ib < n_nodes else 0j
            vd = va - vbb
            cur = _current(
                vd,
                model[j],
                vb[j],
                vlow[j],
                v95[j],
                v105[j],
                vminpu[j],
                vmaxpu[j],
                cvrw[j],
                cvrv[j],
                varbase[j],
                w[j, c],
                var[j, c],
            )
            net_i = cur - y_nom[j] * vd
            if ia < n_nodes:
                out[ia, c] -= net_i
            if ib < n_nodes:
                out[ib, c] += net_i


@nb.njit(cache=True, parallel=True)
def _rhs_parallel(
    v: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    model: np.ndarray,
    vb: np.ndarray,
    vlow: np.ndarray,
    v95: np.ndarray,
    v105: np.ndarray,
    vminpu: np.ndarray,
    vmaxpu: np.ndarray,
    cvrw: np.ndarray,
    cvrv: np.ndarray,
    varbase: np.ndarray,
    w: np.ndarray,
    var: np.ndarray,
    y_nom: np.ndarray,
    i_src: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    k = v.shape[1]
    nblocks = (k + 31) // 32
    for blk in nb.prange(nblocks):
        c0 = blk * 32
        _rhs_block(
            v,
            a,
            b,
            model,
            vb,
            vlow,
            v95,
            v105,
            vminpu,
            vmaxpu,
            cvrw,
            cvrv,
            varbase,
            w,
            var,
            y_nom,
            i_src,
            out,
            c0,
            min(k, c0 + 32),
        )


@nb.njit(cache=True, nogil=True)
def _rhs_serial(
    v: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    model: np.ndarray,
    vb: np.ndarray,
    vlow: np.ndarray,
    v95: np.ndarray,
    v105: np.ndarray,
    vminpu: np.ndarray,
    vmaxpu: np.ndarray,
    cvrw: np.ndarray,
    cvrv: np.ndarray,
    varbase: np.ndarray,
    w: np.ndarray,
    var: np.ndarray,
    y_nom: np.ndarray,
    i_src: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    _rhs_block(
        v,
        a,
        b,
        model,
        vb,
        vlow,
        v95,
        v105,
        vminpu,
        vmaxpu,
        cvrw,
        cvrv,
        varbase,
        w,
        var,
        y_nom,
        i_src,
        out,
        0,
        v.shape[1],
    )


def injection_rhs_for(
    inj: Injectors,
    v: ComplexArray,
    w: FloatArray,
    var: FloatArray,
    y_nom: ComplexArray,
    i_src: ComplexArray,
) -> ComplexArray:
    """Right-hand side of the fixed-point step for voltages ``v`` (N x k)."""
    out = np.empty(v.shape, dtype=np.complex128)
    kernel = _rhs_parallel if v.shape[1] > 64 else _rhs_serial
    kernel(
        np.ascontiguousarray(v),
        *inj.kernel_arrays(),
        np.ascontiguousarray(w),
        np.ascontiguousarray(var),
        np.ascontiguousarray(y_nom, dtype=np.complex128),
        np.ascontiguousarray(i_src, dtype=np.complex128),
        out,
    )
    return out
