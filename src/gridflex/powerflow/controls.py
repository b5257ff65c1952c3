"""Regulator (RegControl) and capacitor (CapControl) sampling with OpenDSS static semantics.

Each function looks at one solved time step (node voltages ``v``, complex, volts) and the
present control state, and says what the device would do. :func:`control_loop` in
``timeseries`` runs OpenDSS's static control iterations around them: sample every device, arm
those that want to act with their delay, execute the armed actions with the smallest delay
(OpenDSS ``ControlQueue.DoNearestActions`` in ``controlmode=static``), re-solve, repeat.

References
----------
.. [1] dss-extensions/dss_capi, ``src/Controls/RegControl.pas`` (``Sample``,
   ``AtLeastOneTap``, ``DoPendingAction``) and ``src/Controls/CapControl.pas`` (``Sample``,
   ``GetControlVoltage``, ``GetControlCurrent``, ``DoPendingAction``).
.. [2] EPRI, OpenDSS reference guide, RegControl and CapControl objects; Solution
   ``ControlMode=Static``.
"""

from __future__ import annotations

import math
import weakref

import numba as nb
import numpy as np
import numpy.typing as npt

from gridflex.network.model import Network

ComplexArray = npt.NDArray[np.complex128]

CLOSE = 1
OPEN = -1
NONE = 0


def _v(v: ComplexArray, refs: npt.NDArray[np.int64]) -> ComplexArray:
    out = np.zeros(refs.shape[0], dtype=complex)
    ok = refs >= 0
    out[ok] = v[refs[ok]]
    return out


def pascal_round(x: float) -> int:
    """Round half to even, as Pascal's ``Round``."""
    return int(np.rint(x))


class _RegSpec:
    """The static part of one RegControl's sampling, resolved once per network.

    The control iterations sample every regulator thousands of times per run; resolving the
    winding slice, the remote-bus test and the settings on each call was most of their cost.
    """

    __slots__ = (
        "base_v",
        "ct_primary",
        "delta",
        "half_band",
        "ldc",
        "ldc_rx",
        "max_change",
        "mon",
        "nc",
        "nph",
        "ok",
        "ptr",
        "refs",
        "refs_ok",
        "row0",
        "setting",
        "step_pu",
        "tap_max",
        "tap_min",
        "term",
        "vlimit",
        "vreg",
        "y_by_tap",
    )

    def __init__(self, net: Network, r: int) -> None:
        reg = net.regulators
        b = reg.branch_idx[r]
        refs = reg.node_idx[r]
        self.refs = refs
        self.ok = refs >= 0
        self.refs_ok = refs[self.ok]
        self.nc = nc = int(net.branches.n_conds[b])
        self.nph = nph = int(net.branches.n_phases[b])
        w = int(reg.winding[r])
        term = refs[(w - 1) * nc : w * nc]
        # winding conductors: node indices (-1 = ground, read as 0 V)
        self.term = [int(x) for x in term]
        self.delta = bool(reg.winding_delta[r]) and nph > 1
        mon = reg.monitored_node_idx[r]
        remote = mon.size and not np.array_equal(mon, refs[(w - 1) * nc : (w - 1) * nc + nph])
        self.mon = [int(x) for x in mon] if remote else None
        self.ptr = float(reg.pt_ratio[r])
        self.setting = int(reg.pt_phase[r])
        self.ldc = reg.r_ldc_v[r] != 0.0 or reg.x_ldc_v[r] != 0.0
        self.ldc_rx = complex(reg.r_ldc_v[r], reg.x_ldc_v[r])
        self.ct_primary = float(reg.ct_primary_a[r])
        self.row0 = nc * (w - 1)
        self.vreg = float(reg.vreg_v[r])
        self.half_band = float(reg.band_v[r]) / 2.0
        self.vlimit = float(reg.vlimit_v[r])
        self.max_change = int(reg.max_tap_change[r])
        self.base_v = float(reg.winding_base_v[r])
        self.step_pu = float(reg.tap_step_pu[r])
        self.tap_min = int(reg.tap_min[r])
        self.tap_max = int(reg.tap_max[r])
        self.y_by_tap = reg.y_prim_by_tap[r]


_REG_SPECS: dict[int, tuple[weakref.ref[object], list[_RegSpec | None]]] = {}


def _reg_spec(net: Network, r: int) -> _RegSpec:
    reg = net.regulators
    entry = _REG_SPECS.get(id(reg))
    if entry is None or entry[0]() is not reg:
        for key in [k for k, (ref, _) in _REG_SPECS.items() if ref() is None]:
            del _REG_SPECS[key]
        entry = (weakref.ref(reg), [None] * len(reg))
        _REG_SPECS[id(reg)] = entry
    spec = entry[1][r]
    if spec is None:
        spec = entry[1][r] = _RegSpec(net, r)
    return spec


def regulator_pending_taps(net: Network, r: int, v: ComplexArray, tap_pos: int) -> int:
    """Tap change (in steps, signed) RegControl ``r`` asks for; 0 when in band or blocked.

    The one-step twin of :func:`regulator_pending_batch` (same rules, scalar arithmetic: the
    control iterations call it thousands of times).
    """
    sp_ = _reg_spec(net, r)
    nph = sp_.nph
    if sp_.mon is not None:
        vw = [complex(v[i]) for i in sp_.mon]  # regulated remote bus (bus=): node voltages
    else:
        term = [complex(v[i]) if i >= 0 else 0j for i in sp_.term]
        if sp_.delta:
            vw = [term[i] - term[(i + 1) % nph] for i in range(nph)]
        elif sp_.nc > nph:
            vw = [term[i] - term[nph] for i in range(nph)]
        else:
            vw = term[:nph]
    ptr = sp_.ptr
    setting = sp_.setting
    if setting == 0:  # MAX (first of equals, as argmax)
        mags = [abs(x) for x in vw]
        ph = mags.index(max(mags))
    elif setting == -1:  # MIN
        mags = [abs(x) for x in vw]
        ph = mags.index(min(mags))
    else:
        ph = min(max(setting, 1), len(vw)) - 1
    vcontrol = vw[ph] / ptr
    vlocal = abs(vcontrol)
    if sp_.ldc:
        vt = np.zeros(sp_.refs.shape[0], dtype=complex)
        vt[sp_.ok] = v[sp_.refs_ok]
        i_cond = sp_.y_by_tap[tap_pos - sp_.tap_min] @ vt
        ildc = complex(i_cond[sp_.row0 + ph]) / sp_.ct_primary
        vcontrol = vcontrol + sp_.ldc_rx * ildc
    vactual = abs(vcontrol)
    vreg = sp_.vreg
    need = abs(vreg - vactual) > sp_.half_band
    vboost = vreg - vactual
    if sp_.vlimit > 0 and vlocal > sp_.vlimit:
        need = True
        vboost = sp_.vlimit - vlocal
    if not need or sp_.max_change == 0:
        return 0
    boost_pu = vboost * ptr / sp_.base_v
    steps = pascal_round(boost_pu / sp_.step_pu)
    if steps > 0 and tap_pos >= sp_.tap_max:
        return 0
    if steps < 0 and tap_pos <= sp_.tap_min:
        return 0
    return steps


class _RegTable:
    """Every regulator's sampling as arrays, for the regulators the compiled sampler covers.

    A regulator is *plain* when its control voltage is one node-to-node difference: a fixed
    PT phase (not max/min) and a wye winding (or a remote bus, whose node voltage is used),
    with or without line-drop compensation. Those are sampled together in one compiled call;
    the others keep :func:`regulator_pending_taps`. The arithmetic is the scalar sampler's,
    term by term (``_plain_regs``), except that the compensated current's one Yprim row is
    summed in order where the scalar sampler takes NumPy's matrix product: the two can differ
    in the last bit of that current.
    """

    def __init__(self, net: Network) -> None:
        n_reg = len(net.regulators)
        specs = [_reg_spec(net, r) for r in range(n_reg)]
        plain: list[int] = []
        node_a: list[int] = []
        node_b: list[int] = []
        phases: list[int] = []
        for r, sp_ in enumerate(specs):
            if sp_.setting <= 0:
                continue
            if sp_.mon is not None:
                ph = min(max(sp_.setting, 1), len(sp_.mon)) - 1
                a, b = sp_.mon[ph], -1
            elif sp_.delta:
                continue
            else:
                ph = min(max(sp_.setting, 1), sp_.nph) - 1
                a = sp_.term[ph]
                b = sp_.term[sp_.nph] if sp_.nc > sp_.nph else -1
            if a < 0:  # a grounded phase conductor: leave it to the scalar sampler
                continue
            plain.append(r)
            node_a.append(a)
            node_b.append(b)
            phases.append(ph)
        self.plain = np.asarray(plain, dtype=np.int64)
        self.other = [r for r in range(n_reg) if r not in set(plain)]
        self.a = np.asarray(node_a, dtype=np.int64)
        self.b = np.asarray(node_b, dtype=np.int64)
        sel = [specs[r] for r in plain]
        self.ptr = np.array([x.ptr for x in sel], dtype=float)
        self.vreg = np.array([x.vreg for x in sel], dtype=float)
        self.half_band = np.array([x.half_band for x in sel], dtype=float)
        self.vlimit = np.array([x.vlimit for x in sel], dtype=float)
        self.movable = np.array([x.max_change != 0 for x in sel], dtype=bool)
        self.base_v = np.array([x.base_v for x in sel], dtype=float)
        self.step_pu = np.array([x.step_pu for x in sel], dtype=float)
        self.tap_min = np.array([x.tap_min for x in sel], dtype=np.int64)
        self.tap_max = np.array([x.tap_max for x in sel], dtype=np.int64)
        # line-drop compensation: the current of the controlled phase's conductor is row
        # row0 + ph of the Yprim at the present tap times the branch's terminal voltages
        self.ldc = np.array([x.ldc for x in sel], dtype=bool)
        self.ldc_rx = np.array([x.ldc_rx for x in sel], dtype=np.complex128)
        self.ct = np.array([x.ct_primary if x.ldc else 1.0 for x in sel], dtype=float)
        width = max([x.refs.size for x in sel if x.ldc] or [1])
        n_taps = max([len(x.y_by_tap) for x in sel if x.ldc] or [1])
        self.ldc_nodes = np.full((len(sel), width), -1, dtype=np.int64)
        self.ldc_y = np.zeros((len(sel), n_taps, width), dtype=np.complex128)
        for q, x in enumerate(sel):
            if not x.ldc:
                continue
            self.ldc_nodes[q, : x.refs.size] = np.where(x.ok, x.refs, -1)
            row = x.row0 + phases[q]
            for t, y in enumerate(x.y_by_tap):
                self.ldc_y[q, t, : x.refs.size] = y[row]


_REG_TABLES: dict[int, tuple[weakref.ref[object], _RegTable]] = {}


@nb.njit(cache=True, nogil=True)
def _plain_regs(
    v: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    ptr: np.ndarray,
    vreg: np.ndarray,
    half_band: np.ndarray,
    vlimit: np.ndarray,
    movable: np.ndarray,
    base_v: np.ndarray,
    step_pu: np.ndarray,
    tap_min: np.ndarray,
    tap_max: np.ndarray,
    ldc: np.ndarray,
    ldc_rx: np.ndarray,
    ct: np.ndarray,
    ldc_nodes: np.ndarray,
    ldc_y: np.ndarray,
    pos: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """:func:`regulator_pending_taps` of the plain regulators (see :class:`_RegTable`), the
    scalar sampler's operations in its order (complex division by the PT ratio, ``abs`` by
    ``hypot``, round half to even)."""
    for q in range(a.shape[0]):
        vw = v[a[q]] - (v[b[q]] if b[q] >= 0 else 0j)
        vcontrol = vw / ptr[q]
        vlocal = abs(vcontrol)
        vactual = vlocal
        if ldc[q]:
            t = pos[q] - tap_min[q]
            cur = 0j
            for j in range(ldc_nodes.shape[1]):
                nd = ldc_nodes[q, j]
                if nd >= 0:
                    cur += ldc_y[q, t, j] * v[nd]
            vactual = abs(vcontrol + ldc_rx[q] * (cur / ct[q]))
        vboost = vreg[q] - vactual
        need = abs(vboost) > half_band[q]
        if vlimit[q] > 0 and vlocal > vlimit[q]:
            need = True
            vboost = vlimit[q] - vlocal
        steps = 0
        if need and movable[q]:
            boost_pu = vboost * ptr[q] / base_v[q]
            steps = int(np.rint(boost_pu / step_pu[q]))
            if steps > 0 and pos[q] >= tap_max[q]:
                steps = 0
            if steps < 0 and pos[q] <= tap_min[q]:
                steps = 0
        out[q] = steps


def regulators_pending(
    net: Network, v: ComplexArray, taps: tuple[int, ...] | list[int]
) -> list[int]:
    """:func:`regulator_pending_taps` of every regulator at once (one solved step ``v``)."""
    reg = net.regulators
    entry = _REG_TABLES.get(id(reg))
    if entry is None or entry[0]() is not reg:
        for key in [k for k, (ref, _) in _REG_TABLES.items() if ref() is None]:
            del _REG_TABLES[key]
        entry = (weakref.ref(reg), _RegTable(net))
        _REG_TABLES[id(reg)] = entry
    tb = entry[1]
    out = [0] * len(reg)
    if tb.plain.size:
        pos = np.asarray([taps[r] for r in tb.plain], dtype=np.int64)
        steps = np.empty(tb.plain.size, dtype=np.int64)
        _plain_regs(
            np.ascontiguousarray(v, dtype=np.complex128),
            tb.a,
            tb.b,
            tb.ptr,
            tb.vreg,
            tb.half_band,
            tb.vlimit,
            tb.movable,
            tb.base_v,
            tb.step_pu,
            tb.tap_min,
            tb.tap_max,
            tb.ldc,
            tb.ldc_rx,
            tb.ct,
            tb.ldc_nodes,
            tb.ldc_y,
            pos,
            steps,
        )
        for r, st in zip(tb.plain.tolist(), steps.tolist(), strict=True):
            out[r] = st
    for r in tb.other:
        out[r] = regulator_pending_taps(net, r, v, taps[r])
    return out


def regulator_pending_batch(
    net: Network, r: int, v: ComplexArray, tap_pos: int
) -> npt.NDArray[np.int64]:
    """Tap changes RegControl ``r`` asks for at each column of ``v`` (N x k), all at ``tap_pos``.

    Implements ``TRegControlObj.Sample`` (forward direction, no reverse/cogen mode): the
    monitored winding voltage / PT ratio, line-drop compensation ``(R + jX) * I / CTprim``, the
    band test ``|Vreg - V| > band / 2``, ``vlimit`` and ``Round(boost / increment)``; 0 where the
    tap cannot move that way.
    """
    reg = net.regulators
    b = reg.branch_idx[r]
    refs = reg.node_idx[r]
    nc = int(net.branches.n_conds[b])
    nph = int(net.branches.n_phases[b])
    w = int(reg.winding[r])
    k = v.shape[1]
    vt = np.zeros((refs.size, k), dtype=complex)
    ok = refs >= 0
    vt[ok] = v[refs[ok]]
    term = vt[(w - 1) * nc : w * nc]
    if reg.winding_delta[r] and nph > 1:
        vw = term[:nph] - np.roll(term[:nph], -1, axis=0)
    else:
        vw = term[:nph] - term[nph] if nc > nph else term[:nph].copy()
    mon = reg.monitored_node_idx[r]
    if mon.size and not np.array_equal(mon, refs[(w - 1) * nc : (w - 1) * nc + nph]):
        vw = v[mon]  # regulated remote bus (bus=): node voltages to ground
    ptr = reg.pt_ratio[r]
    setting = int(reg.pt_phase[r])
    mags = np.abs(vw)
    cols = np.arange(k)
    if setting == 0:  # MAX
        ph = np.argmax(mags, axis=0)
    elif setting == -1:  # MIN
        ph = np.argmin(mags, axis=0)
    else:
        ph = np.full(k, min(max(setting, 1), vw.shape[0]) - 1)
    vcontrol = vw[ph, cols] / ptr
    vlocal = np.abs(vcontrol)
    if reg.r_ldc_v[r] != 0.0 or reg.x_ldc_v[r] != 0.0:
        y = reg.y_prim_by_tap[r][tap_pos - reg.tap_min[r]]
        i_cond = y @ vt
        ildc = i_cond[nc * (w - 1) + ph, cols] / reg.ct_primary_a[r]
        vcontrol = vcontrol + complex(reg.r_ldc_v[r], reg.x_ldc_v[r]) * ildc
    vactual = np.abs(vcontrol)
    vreg = reg.vreg_v[r]
    need = np.abs(vreg - vactual) > reg.band_v[r] / 2.0
    vboost = vreg - vactual
    if reg.vlimit_v[r] > 0:
        over = vlocal > reg.vlimit_v[r]
        need |= over
        vboost = np.where(over, reg.vlimit_v[r] - vlocal, vboost)
    if reg.max_tap_change[r] == 0:
        return np.zeros(k, dtype=np.int64)
    boost_pu = vboost * ptr / reg.winding_base_v[r]
    steps = np.rint(boost_pu / reg.tap_step_pu[r]).astype(np.int64)  # Pascal Round
    steps = np.where(need, steps, 0)
    steps = np.where((steps > 0) & (tap_pos >= reg.tap_max[r]), 0, steps)
    steps = np.where((steps < 0) & (tap_pos <= reg.tap_min[r]), 0, steps)
    return np.asarray(steps, dtype=np.int64)


def regulator_tap_after(net: Network, r: int, tap_pos: int, pending_steps: int) -> int:
    """New position after ``AtLeastOneTap`` in static mode (70 % of the way, at least one)."""
    reg = net.regulators
    n = math.trunc(0.7 * abs(pending_steps))
    n = max(n, 1)
    n = min(n, int(reg.max_tap_change[r]))
    new = tap_pos + (n if pending_steps > 0 else -n)
    return int(min(max(new, reg.tap_min[r]), reg.tap_max[r]))


class _CapSpec:
    """The static part of one CapControl's sampling, resolved once per network (as
    :class:`_RegSpec`: the control iterations sample every capacitor control thousands of
    times per run, and looking the settings up on each call was most of the cost)."""

    __slots__ = (
        "all_ok",
        "available_max",
        "closed_ok",
        "ct",
        "ct_phase",
        "delta",
        "kind",
        "kvar",
        "mon",
        "nc",
        "nph",
        "off",
        "ok",
        "on",
        "pt",
        "pt_phase",
        "refs_n",
        "refs_ok",
        "t0",
        "vmax",
        "vmin",
        "volt_override",
        "y",
    )

    def __init__(self, net: Network, c: int) -> None:
        cap = net.capacitors
        self.kind = cap.control_type[c]
        bi = int(cap.monitored_branch_idx[c])
        # current, kvar and pf controls need a monitored element; without one: no action
        self.closed_ok = bool(self.kind) and not (bi < 0 and self.kind in ("current", "kvar", "pf"))
        self.available_max = int(cap.n_steps[c])
        self.on = float(cap.on_setting[c])
        self.off = float(cap.off_setting[c])
        self.volt_override = bool(cap.volt_override[c])
        self.vmin = float(cap.vmin_v[c])
        self.vmax = float(cap.vmax_v[c])
        self.mon = np.asarray(cap.monitored_node_idx[c])
        self.pt_phase = int(cap.pt_phase[c])
        self.pt = float(cap.pt_ratio[c])
        self.delta = bool(cap.delta[c])
        self.ct = float(cap.ct_ratio[c])
        self.ct_phase = int(cap.ct_phase[c])
        self.kvar = float(cap.kvar[c])
        if bi >= 0:
            br = net.branches
            refs = br.node_idx[bi]
            self.ok = refs >= 0
            self.all_ok = bool(self.ok.all())
            self.refs_ok = refs[self.ok]
            self.refs_n = int(refs.shape[0])
            self.y = br.y_prim[bi]
            self.nc = int(br.n_conds[bi])
            self.nph = int(br.n_phases[bi])
            self.t0 = (int(cap.monitored_terminal[c]) - 1) * self.nc
        else:
            self.ok = np.zeros(0, dtype=bool)
            self.all_ok = True
            self.refs_ok = np.zeros(0, dtype=np.int64)
            self.refs_n = 0
            self.y = np.zeros((0, 0), dtype=complex)
            self.nc = self.nph = self.t0 = 0

    def terminal(self, v: ComplexArray) -> tuple[ComplexArray, ComplexArray]:
        """Voltages at and currents into the monitored element's conductors (all terminals)."""
        if self.all_ok:  # one gather, no zero fill (most monitored elements)
            vt = v[self.refs_ok]
        else:
            vt = np.zeros(self.refs_n, dtype=complex)
            vt[self.ok] = v[self.refs_ok]
        return vt, self.y @ vt

    def terminal_power(self, v: ComplexArray) -> complex:
        """``sum V conj(I)`` into the monitored terminal (VA)."""
        vt, i_all = self.terminal(v)
        t0 = self.t0
        nc = self.nc
        return complex(np.dot(vt[t0 : t0 + nc], i_all[t0 : t0 + nc].conj()))

    def control_voltage(self, v: ComplexArray) -> float:
        vbuf = v[self.mon]
        ph = self.pt_phase
        pt = self.pt
        mags = np.abs(vbuf)
        if ph == -2:  # AVG
            return float(mags.mean() / pt)
        if ph == 0:
            return float(mags.max() / pt)
        if ph == -1:
            return float(mags.min() / pt)
        k = min(max(ph, 1), vbuf.size) - 1
        if self.delta:
            return float(abs(vbuf[k] - vbuf[(k + 1) % vbuf.size]) / pt)
        return float(mags[k] / pt)


_CAP_SPECS: dict[int, tuple[weakref.ref[object], list[_CapSpec | None]]] = {}


def _cap_spec(net: Network, c: int) -> _CapSpec:
    cap = net.capacitors
    entry = _CAP_SPECS.get(id(cap))
    if entry is None or entry[0]() is not cap:
        for key in [k for k, (ref, _) in _CAP_SPECS.items() if ref() is None]:
            del _CAP_SPECS[key]
        entry = (weakref.ref(cap), [None] * len(cap))
        _CAP_SPECS[id(cap)] = entry
    spec = entry[1][c]
    if spec is None:
        spec = entry[1][c] = _CapSpec(net, c)
    return spec


def capacitors_pending(net: Network, v: ComplexArray, steps_on: list[int]) -> list[int]:
    """:func:`capacitor_pending` of every capacitor at once (one solved step ``v``).

    The control voltages and monitored-terminal powers of all capacitors come from one
    compiled pass (``_cap_measures``); each control's decision is then
    :func:`capacitor_pending`'s own code, given those two values.
    """
    cap = net.capacitors
    entry = _CAP_TABLES.get(id(cap))
    if entry is None or entry[0]() is not cap:
        for key in [k for k, (ref, _) in _CAP_TABLES.items() if ref() is None]:
            del _CAP_TABLES[key]
        entry = (weakref.ref(cap), _CapTable(net))
        _CAP_TABLES[id(cap)] = entry
    tb = entry[1]
    n_cap = len(cap)
    vctl = np.zeros(n_cap)
    s_re = np.zeros(n_cap)
    s_im = np.zeros(n_cap)
    _cap_measures(
        np.ascontiguousarray(v, dtype=np.complex128),
        tb.refs,
        tb.nref,
        tb.y,
        tb.t0,
        tb.nc,
        tb.mon,
        tb.nmon,
        tb.pt_phase,
        tb.pt,
        tb.delta,
        vctl,
        s_re,
        s_im,
    )
    out = [NONE] * n_cap
    for c in range(n_cap):
        if cap.control_type[c]:
            out[c] = capacitor_pending(
                net,
                c,
                v,
                steps_on[c],
                v_ctl=float(vctl[c]) if tb.nmon[c] else None,
                s=complex(s_re[c], s_im[c]) if tb.nref[c] else None,
            )
    return out


class _CapTable:
    """Every capacitor's monitored nodes and terminal as padded arrays for ``_cap_measures``."""

    def __init__(self, net: Network) -> None:
        specs = [_cap_spec(net, c) for c in range(len(net.capacitors))]
        n_cap = len(specs)
        r_max = max([x.refs_n for x in specs] + [1])
        m_max = max([len(x.mon) for x in specs] + [1])
        self.refs = np.full((n_cap, r_max), -1, dtype=np.int64)
        self.nref = np.zeros(n_cap, dtype=np.int64)
        self.y = np.zeros((n_cap, r_max, r_max), dtype=np.complex128)
        self.t0 = np.zeros(n_cap, dtype=np.int64)
        self.nc = np.zeros(n_cap, dtype=np.int64)
        self.mon = np.zeros((n_cap, m_max), dtype=np.int64)
        self.nmon = np.zeros(n_cap, dtype=np.int64)
        self.pt_phase = np.zeros(n_cap, dtype=np.int64)
        self.pt = np.ones(n_cap)
        self.delta = np.zeros(n_cap, dtype=np.bool_)
        for c, x in enumerate(specs):
            if x.refs_n:
                refs = np.full(x.refs_n, -1, dtype=np.int64)
                refs[x.ok] = x.refs_ok
                self.refs[c, : x.refs_n] = refs
                self.y[c, : x.refs_n, : x.refs_n] = x.y
            self.nref[c] = x.refs_n
            self.t0[c] = x.t0
            self.nc[c] = x.nc
            self.mon[c, : len(x.mon)] = x.mon
            self.nmon[c] = len(x.mon)
            self.pt_phase[c] = x.pt_phase
            self.pt[c] = x.pt
            self.delta[c] = x.delta


_CAP_TABLES: dict[int, tuple[weakref.ref[object], _CapTable]] = {}


@nb.njit(cache=True, nogil=True)
def _cap_measures(
    v: np.ndarray,
    refs: np.ndarray,
    nref: np.ndarray,
    y: np.ndarray,
    t0: np.ndarray,
    nc: np.ndarray,
    mon: np.ndarray,
    nmon: np.ndarray,
    pt_phase: np.ndarray,
    pt: np.ndarray,
    delta: np.ndarray,
    vctl: np.ndarray,
    s_re: np.ndarray,
    s_im: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Per capacitor: ``_CapSpec.control_voltage`` and ``_CapSpec.terminal_power``."""
    for c in range(refs.shape[0]):
        m = nmon[c]
        if m > 0:
            ph = pt_phase[c]
            if ph == -2:  # AVG
                acc = 0.0
                for q in range(m):
                    acc += abs(v[mon[c, q]])
                vctl[c] = acc / m / pt[c]
            elif ph == 0:
                best = abs(v[mon[c, 0]])
                for q in range(1, m):
                    best = max(best, abs(v[mon[c, q]]))
                vctl[c] = best / pt[c]
            elif ph == -1:
                best = abs(v[mon[c, 0]])
                for q in range(1, m):
                    best = min(best, abs(v[mon[c, q]]))
                vctl[c] = best / pt[c]
            else:
                k = min(max(ph, 1), m) - 1
                if delta[c]:
                    vctl[c] = abs(v[mon[c, k]] - v[mon[c, (k + 1) % m]]) / pt[c]
                else:
                    vctl[c] = abs(v[mon[c, k]]) / pt[c]
        acc_s = 0j
        r = nref[c]
        for row in range(t0[c], t0[c] + nc[c]):
            cur = 0j
            for col in range(r):
                node = refs[c, col]
                if node >= 0:
                    cur += y[c, row, col] * v[node]
            vr = v[refs[c, row]] if refs[c, row] >= 0 else 0j
            acc_s += vr * cur.conjugate()
        s_re[c] = acc_s.real
        s_im[c] = acc_s.imag


def capacitor_pending(
    net: Network,
    c: int,
    v: ComplexArray,
    steps_on: int,
    *,
    v_ctl: float | None = None,
    s: complex | None = None,
) -> int:
    """Switching CapControl ``c`` asks for: ``CLOSE`` (+1 step), ``OPEN`` (-1) or ``NONE``.

    Implements ``TCapControlObj.Sample`` for voltage, current, kvar and PF types, with the
    voltage override. ``v_ctl`` (control voltage) and ``s`` (VA into the monitored terminal),
    when given, are used instead of computing them from ``v``.
    """
    sp_ = _cap_spec(net, c)
    kind = sp_.kind
    if not sp_.closed_ok:
        return NONE
    closed = steps_on > 0
    available = sp_.available_max - steps_on
    on, off = sp_.on, sp_.off
    if v_ctl is None and (kind == "voltage" or sp_.volt_override):
        v_ctl = sp_.control_voltage(v)
    if sp_.volt_override and kind != "voltage":
        assert v_ctl is not None
        if not closed and v_ctl < sp_.vmin:
            return CLOSE
        if closed and v_ctl > sp_.vmax:
            return OPEN
    if kind == "voltage":
        assert v_ctl is not None
        x = v_ctl
        if not closed:
            return CLOSE if x < on else NONE
        if x > off:
            return OPEN
        return CLOSE if (available > 0 and x < on) else NONE
    if kind == "current":
        _, i_all = sp_.terminal(v)
        ct = sp_.ct
        off_c = sp_.t0
        ph = sp_.ct_phase
        mags_t = np.abs(i_all[off_c : off_c + sp_.nph])
        if ph == -2:
            x = float(mags_t.mean() / ct)
        elif ph == 0:
            x = float(mags_t.max() / ct)
        elif ph == -1:
            x = float(mags_t.min() / ct)
        else:
            # CapControl.pas indexes the first terminal's conductors here
            x = float(abs(i_all[min(max(ph, 1), i_all.size) - 1]) / ct)
        if not closed:
            return CLOSE if x > on else NONE
        if x < off:
            return OPEN
        return CLOSE if (available > 0 and x > on) else NONE
    # kvar / pf: power into the monitored terminal
    if s is None:
        s = sp_.terminal_power(v)
    if kind == "kvar":
        q = s.imag * 0.001
        if not closed:
            return CLOSE if q > on else NONE
        if q < off:
            return OPEN
        return CLOSE if (available > 0 and q > on) else NONE
    if kind == "pf":
        sabs = abs(s)
        pf = abs(s.real) / sabs if sabs != 0 else 1.0
        if s.imag < 0:
            pf = 2.0 - pf
        if not closed:
            # OpenDSS default pctMinkvar = 50 %: close only with half the bank's kvar to absorb
            return CLOSE if (pf < on and s.imag * 0.001 > 0.5 * sp_.kvar) else NONE
        if pf > off:
            return OPEN
        step_kvar = sp_.kvar / max(sp_.available_max, 1)
        return CLOSE if (available > 0 and pf < on and s.imag * 0.001 > 0.5 * step_kvar) else NONE
    return NONE
