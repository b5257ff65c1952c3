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


def regulator_pending_taps(net: Network, r: int, v: ComplexArray, tap_pos: int) -> int:
    """Tap change (in steps, signed) RegControl ``r`` asks for; 0 when in band or blocked.

    The one-step twin of :func:`regulator_pending_batch` (same rules, scalar arithmetic: the
    control iterations call it thousands of times).
    """
    reg = net.regulators
    b = reg.branch_idx[r]
    refs = reg.node_idx[r]
    nc = int(net.branches.n_conds[b])
    nph = int(net.branches.n_phases[b])
    w = int(reg.winding[r])
    vt = _v(v, refs)
    term = vt[(w - 1) * nc : w * nc]
    if reg.winding_delta[r] and nph > 1:
        vw = np.array([term[i] - term[(i + 1) % nph] for i in range(nph)])
    else:
        vw = term[:nph] - term[nph] if nc > nph else term[:nph].copy()
    mon = reg.monitored_node_idx[r]
    if mon.size and not np.array_equal(mon, refs[(w - 1) * nc : (w - 1) * nc + nph]):
        vw = v[mon]  # regulated remote bus (bus=): node voltages to ground
    ptr = reg.pt_ratio[r]
    setting = int(reg.pt_phase[r])
    mags = np.abs(vw)
    if setting == 0:  # MAX
        ph = int(np.argmax(mags))
    elif setting == -1:  # MIN
        ph = int(np.argmin(mags))
    else:
        ph = min(max(setting, 1), vw.size) - 1
    vcontrol = vw[ph] / ptr
    vlocal = abs(vcontrol)
    if reg.r_ldc_v[r] != 0.0 or reg.x_ldc_v[r] != 0.0:
        y = reg.y_prim_by_tap[r][tap_pos - reg.tap_min[r]]
        i_cond = y @ vt
        ildc = i_cond[nc * (w - 1) + ph] / reg.ct_primary_a[r]
        vcontrol = vcontrol + complex(reg.r_ldc_v[r], reg.x_ldc_v[r]) * ildc
    vactual = abs(vcontrol)
    vreg = reg.vreg_v[r]
    need = abs(vreg - vactual) > reg.band_v[r] / 2.0
    vboost = vreg - vactual
    if reg.vlimit_v[r] > 0 and vlocal > reg.vlimit_v[r]:
        need = True
        vboost = reg.vlimit_v[r] - vlocal
    if not need or reg.max_tap_change[r] == 0:
        return 0
    boost_pu = vboost * ptr / reg.winding_base_v[r]
    steps = pascal_round(boost_pu / reg.tap_step_pu[r])
    if steps > 0 and tap_pos >= reg.tap_max[r]:
        return 0
    if steps < 0 and tap_pos <= reg.tap_min[r]:
        return 0
    return steps


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


def _terminal_currents(net: Network, c: int, v: ComplexArray) -> tuple[ComplexArray, int, int]:
    """Currents into the monitored element's conductors (all terminals), nconds, nphases."""
    cap = net.capacitors
    bi = int(cap.monitored_branch_idx[c])
    br = net.branches
    refs = br.node_idx[bi]
    return br.y_prim[bi] @ _v(v, refs), int(br.n_conds[bi]), int(br.n_phases[bi])


def _term_voltages(net: Network, c: int, v: ComplexArray) -> ComplexArray:
    return v[net.capacitors.monitored_node_idx[c]]


def _control_voltage(net: Network, c: int, vbuf: ComplexArray) -> float:
    cap = net.capacitors
    ph = int(cap.pt_phase[c])
    pt = cap.pt_ratio[c]
    mags = np.abs(vbuf)
    if ph == -2:  # AVG
        return float(mags.mean() / pt)
    if ph == 0:
        return float(mags.max() / pt)
    if ph == -1:
        return float(mags.min() / pt)
    k = min(max(ph, 1), vbuf.size) - 1
    if cap.delta[c]:
        return float(abs(vbuf[k] - vbuf[(k + 1) % vbuf.size]) / pt)
    return float(mags[k] / pt)


def capacitor_pending(net: Network, c: int, v: ComplexArray, steps_on: int) -> int:
    """Switching CapControl ``c`` asks for: ``CLOSE`` (+1 step), ``OPEN`` (-1) or ``NONE``.

    Implements ``TCapControlObj.Sample`` for voltage, current, kvar and PF types, with the
    voltage override.
    """
    cap = net.capacitors
    kind = cap.control_type[c]
    if not kind or (cap.monitored_branch_idx[c] < 0 and kind in ("current", "kvar", "pf")):
        return NONE
    closed = steps_on > 0
    available = int(cap.n_steps[c]) - steps_on
    on, off = cap.on_setting[c], cap.off_setting[c]
    if cap.volt_override[c] and kind != "voltage":
        v_ctl = _control_voltage(net, c, _term_voltages(net, c, v))
        if not closed and v_ctl < cap.vmin_v[c]:
            return CLOSE
        if closed and v_ctl > cap.vmax_v[c]:
            return OPEN
    if kind == "voltage":
        x = _control_voltage(net, c, _term_voltages(net, c, v))
        if not closed:
            return CLOSE if x < on else NONE
        if x > off:
            return OPEN
        return CLOSE if (available > 0 and x < on) else NONE
    if kind == "current":
        i_all, nc, nph = _terminal_currents(net, c, v)
        ct = cap.ct_ratio[c]
        off_c = (int(cap.monitored_terminal[c]) - 1) * nc
        ph = int(cap.ct_phase[c])
        mags_t = np.abs(i_all[off_c : off_c + nph])
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
    i_all, nc, _ = _terminal_currents(net, c, v)
    bi = int(cap.monitored_branch_idx[c])
    refs = net.branches.node_idx[bi]
    t0 = (int(cap.monitored_terminal[c]) - 1) * nc
    vt = _v(v, refs)[t0 : t0 + nc]
    s = complex(np.sum(vt * np.conj(i_all[t0 : t0 + nc])))
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
            return CLOSE if (pf < on and s.imag * 0.001 > 0.5 * cap.kvar[c]) else NONE
        if pf > off:
            return OPEN
        step_kvar = cap.kvar[c] / max(int(cap.n_steps[c]), 1)
        return CLOSE if (available > 0 and pf < on and s.imag * 0.001 > 0.5 * step_kvar) else NONE
    return NONE
