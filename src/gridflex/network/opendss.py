"""Import an OpenDSS model through dss-python into a :class:`~gridflex.network.model.Network`.

OpenDSS compiles the model (so every default, ``action=normalize``, ``mult=(file=...)`` and
``batchedit`` is applied exactly as OpenDSS applies them); this module then reads, element by
element, what the batched solver needs:

* the node order and names (``Circuit.YNodeOrder``, lower-cased) and node base voltages;
* every enabled power-delivery element's primitive admittance ``Yprim`` and its node references
  (``CktElement.NodeRef``), from which ``y_fixed`` is assembled — loads, PV, storage and
  generators are left out (the solver injects their currents), and so are regulator
  transformers and capacitors (kept per tap / step so any control state can be assembled);
* the source's Yprim and its Norton injection ``Yprim · [Vs; 0]`` (OpenDSS's Vsource model);
* loads, PV, storage, load shapes, RegControls and CapControls with their settings.

A regulator transformer's Yprim at any tap follows from the one read: the conductors of the
tapped winding scale by ``tap_read / tap`` (checked against OpenDSS to 1e-11 relative).

References
----------
.. [1] EPRI, OpenDSS reference guide: Vsource, Transformer, RegControl, Capacitor, CapControl,
   Load and LoadShape object properties.
.. [2] dss-extensions/dss_capi, ``src/PCElements/Load.pas`` (load models, ``SetNominalLoad``)
   and ``src/General/LoadShape.pas`` (``GetMultAtHour``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from gridflex.errors import InputError
from gridflex.network.model import (
    BranchTable,
    CapacitorTable,
    LoadShape,
    LoadTable,
    Network,
    PVTable,
    RegulatorTable,
    SourceModel,
    StorageTable,
)

_MAX_LOAD_CONDS = 4
#: classes whose currents the solver injects (not part of the admittance)
_INJECTION_CLASSES = ("load", "pvsystem", "storage", "generator")


def _each(collection: Any) -> Iterator[None]:
    """Make each element of a DSS collection active in turn (OpenDSS's ``First``/``Next`` idiom)."""
    i = collection.First
    while i > 0:
        yield None
        i = collection.Next


def _complex_matrix(flat: Any) -> np.ndarray:
    a = np.asarray(flat, dtype=float)
    z = a[0::2] + 1j * a[1::2]
    n = math.isqrt(z.size)
    return z.reshape(n, n)


def _new_engine() -> Any:
    """A fresh, private OpenDSS engine (a new context, so parallel imports do not collide)."""
    from dss import DSS

    ctx = DSS.NewContext()
    ctx.AllowForms = False
    return ctx


def _compile(dss: Any, master: Path) -> None:
    if not master.exists():
        raise InputError(
            f"OpenDSS master file {master} does not exist",
            "give the path of the feeder's master .dss file (e.g. IEEE13Nodeckt.dss)",
        )
    if master.is_dir():
        raise InputError(
            f"{master} is a folder, not an OpenDSS master file",
            "give the master .dss file inside it",
        )
    dss.Text.Command = "clear"
    try:
        dss.Text.Command = f'compile "{master}"'
    except Exception as exc:  # dss-python raises DSSException with OpenDSS's own message
        msg = str(exc).strip()
        fix = "correct the .dss line OpenDSS names (property, element or file) and retry"
        shape = re.search(r'LoadShape object "([^"]+)" not found', msg, flags=re.IGNORECASE)
        if shape:
            fix = (
                f"define 'New Loadshape.{shape.group(1)} npts=... interval=... mult=(...)' before "
                "the element that uses it, or correct the load-shape name"
            )
        raise InputError(f"OpenDSS could not compile {master}: {msg}", fix) from exc
    circuit = dss.ActiveCircuit
    if circuit is None or circuit.NumNodes == 0:
        raise InputError(
            f"{master} defines no circuit (no 'New Circuit.<name>' line was compiled)",
            "start the master file with 'New Circuit.<name> basekv=... bus1=...'",
        )


def _element_refs(circuit: Any) -> tuple[np.ndarray, np.ndarray]:
    """Node indices (0-based, -1 ground) and Yprim of the active element."""
    e = circuit.ActiveCktElement
    refs = np.asarray(e.NodeRef, dtype=np.int64) - 1
    return refs, _complex_matrix(e.Yprim)


def _pairs(
    parts: list[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (row node, column node, value, element) of the elements' square matrices, built
    in a few whole-array operations (no loop over thousands of elements); ground (-1) kept."""
    sizes = np.fromiter((refs.size for refs, _ in parts), dtype=np.int64, count=len(parts))
    refs_all = np.concatenate([refs for refs, _ in parts])
    vals = np.concatenate([np.asarray(y).ravel() for _, y in parts])
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    sq = sizes * sizes
    elem = np.repeat(np.arange(len(parts)), sq)
    pos = np.arange(int(sq.sum())) - np.repeat(np.cumsum(sq) - sq, sq)
    k = sizes[elem]
    rows = refs_all[start[elem] + pos // k]
    cols = refs_all[start[elem] + pos % k]
    return rows, cols, vals, elem


def _assemble(n: int, parts: list[tuple[np.ndarray, np.ndarray]]) -> sp.csc_matrix:
    if not parts:
        return sp.csc_matrix((n, n), dtype=complex)
    rows, cols, vals, _ = _pairs(parts)
    keep = (rows >= 0) & (cols >= 0)
    m = sp.coo_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n))
    return m.tocsc()


def _prop(circuit: Any, name: str) -> str:
    return str(circuit.ActiveDSSElement.Properties(name).Val).strip()


def _float_prop(circuit: Any, name: str, default: float) -> float:
    try:
        return float(_prop(circuit, name))
    except (ValueError, KeyError, Exception):
        return default


def _pad_refs(refs: np.ndarray, width: int = _MAX_LOAD_CONDS) -> np.ndarray:
    out = np.full(width, -1, dtype=np.int64)
    out[: refs.size] = refs[:width]
    return out


def load_opendss(master: str | Path) -> Network:
    """Compile an OpenDSS master file and build a :class:`Network` from it.

    Parameters
    ----------
    master:
        Path of the master ``.dss`` file. Relative ``redirect``/``file=`` paths resolve from the
        master's folder as in OpenDSS.

    Raises
    ------
    InputError
        The file is missing, OpenDSS reports a syntax/property error, a load names an unknown
        load shape, or a node is not connected to the source.
    """
    master = Path(master).expanduser().resolve()
    dss = _new_engine()
    _compile(dss, master)
    circuit = dss.ActiveCircuit
    notes: list[str] = []

    node_names = [s.lower() for s in circuit.YNodeOrder]
    n = len(node_names)
    # Bus data: names, base kV (L-N), coordinates
    bus_names: list[str] = []
    bus_x: list[float] = []
    bus_y: list[float] = []
    bus_kv: dict[str, float] = {}
    for i in range(circuit.NumBuses):
        circuit.SetActiveBusi(i)
        b = circuit.ActiveBus
        name = str(b.Name).lower()
        bus_names.append(name)
        bus_kv[name] = float(b.kVBase)
        if b.Coorddefined:
            bus_x.append(float(b.x))
            bus_y.append(float(b.y))
        else:
            bus_x.append(math.nan)
            bus_y.append(math.nan)
    bus_index = {b: i for i, b in enumerate(bus_names)}
    node_bus = np.array([bus_index[nm.split(".")[0]] for nm in node_names], dtype=np.int64)
    node_base_kv = np.array([bus_kv[nm.split(".")[0]] for nm in node_names])
    missing_base = [node_names[i] for i in np.flatnonzero(node_base_kv <= 0)]
    if missing_base:
        raise InputError(
            f"{master}: buses without a base voltage (first: {missing_base[0]!r})",
            "add 'Set VoltageBases=[...]' and 'CalcVoltageBases' to the master file",
        )

    # Regulators first: which transformers are switched by RegControls
    reg_xf: dict[str, str] = {}
    rc = circuit.RegControls
    for _ in _each(rc):
        reg_xf[str(rc.Name).lower()] = "transformer." + str(rc.Transformer).lower()
    reg_transformers = set(reg_xf.values())

    # Power-delivery elements
    fixed_parts: list[tuple[np.ndarray, np.ndarray]] = []
    br_names: list[str] = []
    br_refs: list[np.ndarray] = []
    br_y: list[np.ndarray] = []
    br_np: list[int] = []
    br_nc: list[int] = []
    br_nt: list[int] = []
    br_norm: list[float] = []
    br_emerg: list[float] = []
    br_buses: list[list[str]] = []
    br_scale: list[np.ndarray] = []
    cap_names: list[str] = []
    pd = circuit.PDElements
    for _ in _each(pd):
        e = circuit.ActiveCktElement
        full = str(e.Name).lower()
        cls = full.split(".")[0]
        if e.Enabled:
            refs, y = _element_refs(circuit)
            if cls == "capacitor":
                cap_names.append(full)
            else:
                br_names.append(full)
                br_refs.append(refs)
                br_y.append(y)
                br_np.append(int(e.NumPhases))
                br_nc.append(int(e.NumConductors))
                br_nt.append(int(e.NumTerminals))
                br_norm.append(float(e.NormalAmps))
                br_emerg.append(float(e.EmergAmps))
                br_buses.append([str(b).split(".")[0].lower() for b in e.BusNames])
                br_scale.append(_terminal_rating_scale(circuit, full, int(e.NumTerminals)))
                if full not in reg_transformers:
                    fixed_parts.append((refs, y))

    # Source(s): Vsource Yprim in the admittance; Norton injection Yprim[:, bus1] @ Vs
    vs = circuit.Vsources
    i_inj = np.zeros(n, dtype=complex)
    source: SourceModel | None = None
    for _ in _each(vs):
        name = str(vs.Name).lower()
        circuit.SetActiveElement(f"vsource.{name}")
        refs, y = _element_refs(circuit)
        nph = int(vs.Phases)
        kv = float(vs.BasekV)
        pu = float(vs.pu)
        ang = float(vs.AngleDeg)
        vmag = kv * pu * 1000.0 / (2.0 * math.sin(math.pi / nph)) if nph > 1 else kv * pu * 1000.0
        seq = _prop(circuit, "sequence").lower() if "sequence" in _all_props(circuit) else "pos"
        shift = -1.0 if not seq.startswith("neg") else 1.0
        v_term = np.zeros(refs.size, dtype=complex)
        for k in range(nph):
            v_term[k] = vmag * np.exp(1j * math.radians(ang + shift * 360.0 * k / nph))
        inj = y @ v_term
        np.add.at(i_inj, refs[refs >= 0], inj[refs >= 0])
        fixed_parts.append((refs, y))
        if source is None:
            source = SourceModel(
                name=f"vsource.{name}",
                bus=str(circuit.ActiveCktElement.BusNames[0]).split(".")[0].lower(),
                node_idx=refs[:nph].copy(),
                i_inj_a=i_inj,
                base_kv_ll=kv,
                v_pu=pu,
                angle_deg=ang,
                y_prim=y,
                term_node_idx=refs,
            )
        else:
            notes.append(f"additional source vsource.{name} included in the admittance")
    if source is None:
        raise InputError(f"{master}: the circuit has no Vsource", "define 'New Circuit.<name>'")
    source.i_inj_a = i_inj

    n_other = 0
    for cls in ("isource", "generator"):
        circuit.SetActiveClass(cls)
        n_other += len(circuit.ActiveClass.AllNames) if circuit.ActiveClass.Count else 0
    if n_other:
        notes.append(
            f"{n_other} Isource/Generator element(s) are not modelled by the time-series solver"
        )

    y_fixed = _assemble(n, fixed_parts)
    branches = BranchTable(
        names=br_names,
        n_phases=np.array(br_np, dtype=np.int64),
        n_conds=np.array(br_nc, dtype=np.int64),
        n_terms=np.array(br_nt, dtype=np.int64),
        node_idx=br_refs,
        y_prim=br_y,
        rating_normal_a=np.array(br_norm),
        rating_emerg_a=np.array(br_emerg),
        bus_names=br_buses,
        terminal_rating_scale=br_scale,
    )

    loadshapes = _read_loadshapes(circuit)
    regulators = _read_regulators(circuit, branches, reg_xf, node_names)
    capacitors = _read_capacitors(dss, circuit, cap_names, branches, node_names)
    loads = _read_loads(circuit, loadshapes, master)
    pv = _read_pv(circuit, loadshapes, master)
    storage = _read_storage(circuit)
    if len(storage):
        notes.append(f"{len(storage)} storage element(s) are kept idle by the solver")

    net = Network(
        name=str(circuit.Name).lower(),
        source_file=str(master),
        node_names=node_names,
        node_base_kv=node_base_kv,
        bus_names=bus_names,
        node_bus=node_bus,
        bus_x=np.array(bus_x),
        bus_y=np.array(bus_y),
        y_fixed=y_fixed,
        source=source,
        branches=branches,
        regulators=regulators,
        capacitors=capacitors,
        loads=loads,
        pv=pv,
        storage=storage,
        loadshapes=loadshapes,
        frequency_hz=float(circuit.Solution.Frequency),
        load_mult=float(circuit.Solution.LoadMult),
        profile_step_h=_profile_step(loads, pv, loadshapes),
        notes=notes,
    )
    check_connected(net)
    return net


def _terminal_rating_scale(circuit: Any, full: str, n_terms: int) -> np.ndarray:
    """Rated current of each terminal relative to terminal 1 (transformers: kVA_w / kV_w)."""
    if not full.startswith("transformer.") or n_terms < 2:
        return np.ones(n_terms)
    xf = circuit.Transformers
    xf.Name = full.split(".", 1)[1]
    rated = []
    for w in range(1, n_terms + 1):
        xf.Wdg = w
        kv = float(xf.kV)
        rated.append(float(xf.kVA) / kv if kv > 0 else 0.0)
    circuit.SetActiveElement(full)  # keep the PD iterator's element active
    if rated[0] <= 0 or min(rated) <= 0:
        return np.ones(n_terms)
    return np.asarray(rated) / rated[0]


def _all_props(circuit: Any) -> list[str]:
    return [p.lower() for p in circuit.ActiveCktElement.AllPropertyNames]


def _profile_step(loads: LoadTable, pv: PVTable, shapes: dict[str, LoadShape]) -> float:
    used = {s for s in loads.yearly + pv.yearly if s}
    steps = [shapes[s].interval_h for s in used if s in shapes and shapes[s].interval_h > 0]
    return float(min(steps)) if steps else 1.0


def _read_loadshapes(circuit: Any) -> dict[str, LoadShape]:
    out: dict[str, LoadShape] = {}
    ls = circuit.LoadShapes
    for _ in _each(ls):
        name = str(ls.Name).lower()
        npts = int(ls.Npts)
        p = np.asarray(ls.Pmult, dtype=float)[:npts].copy()
        q_raw = np.asarray(ls.Qmult, dtype=float)
        # dss-python returns [0.0] (or an empty array) when the shape has no qmult
        q = q_raw[:npts].copy() if q_raw.size == npts and npts > 1 else None
        if npts == 1 and q_raw.size == 1 and _has_qmult(circuit):
            q = q_raw.copy()
        interval = float(ls.HrInterval)
        hours = None
        if interval <= 0:
            hours = np.asarray(ls.TimeArray, dtype=float)[:npts].copy()
        out[name] = LoadShape(
            name=name,
            p_mult=p,
            q_mult=q,
            interval_h=interval,
            hours=hours,
            use_actual=bool(ls.UseActual),
        )
    return out


def _has_qmult(circuit: Any) -> bool:
    try:
        return bool(_prop(circuit, "qmult"))
    except Exception:
        return False


def _shape_or_error(name: str, shapes: dict[str, LoadShape], element: str, master: Path) -> str:
    name = name.strip().lower()
    if name and name not in shapes:
        raise InputError(
            f"{master}: {element} uses load shape {name!r}, which is not defined",
            f"define 'New Loadshape.{name} ...' before {element} or correct the name",
        )
    return name


def _read_loads(circuit: Any, shapes: dict[str, LoadShape], master: Path) -> LoadTable:
    names: list[str] = []
    refs: list[np.ndarray] = []
    nph: list[int] = []
    ncond: list[int] = []
    delta: list[bool] = []
    model: list[int] = []
    kw: list[float] = []
    kvar: list[float] = []
    kv: list[float] = []
    vbase: list[float] = []
    vmin: list[float] = []
    vmax: list[float] = []
    vlow: list[float] = []
    cvrw: list[float] = []
    cvrv: list[float] = []
    fixed: list[bool] = []
    yearly: list[str] = []
    daily: list[str] = []
    ld = circuit.Loads
    for _ in _each(ld):
        e = circuit.ActiveCktElement
        if e.Enabled:
            name = str(ld.Name).lower()
            r = np.asarray(e.NodeRef, dtype=np.int64) - 1
            p = int(ld.Phases)
            is_delta = bool(ld.IsDelta)
            m = int(ld.Model)
            if m == 8:
                raise InputError(
                    f"{master}: load.{name} uses model=8 (ZIPV), which gridflex does not solve",
                    "use model 1, 2, 3, 4, 5, 6 or 7 for this load",
                )
            names.append(name)
            refs.append(_pad_refs(r))
            nph.append(p)
            ncond.append(int(e.NumConductors))
            delta.append(is_delta)
            model.append(m)
            kw.append(float(ld.kW))
            kvar.append(float(ld.kvar))
            k = float(ld.kV)
            kv.append(k)
            if is_delta:
                vbase.append(k * 1000.0)
            elif p in (2, 3):
                vbase.append(k * 1000.0 / math.sqrt(3.0))
            else:
                vbase.append(k * 1000.0)
            vmin.append(float(ld.Vminpu))
            vmax.append(float(ld.Vmaxpu))
            vlow.append(_float_prop(circuit, "vlowpu", 0.5))
            cvrw.append(float(ld.CVRwatts))
            cvrv.append(float(ld.CVRvars))
            fixed.append(int(ld.Status) == 1)
            yearly.append(_shape_or_error(str(ld.Yearly), shapes, f"load.{name}", master))
            daily.append(_shape_or_error(str(ld.daily), shapes, f"load.{name}", master))
    return LoadTable(
        names=names,
        node_idx=np.array(refs, dtype=np.int64).reshape(-1, _MAX_LOAD_CONDS),
        n_phases=np.array(nph, dtype=np.int64),
        n_conds=np.array(ncond, dtype=np.int64),
        delta=np.array(delta, dtype=bool),
        model=np.array(model, dtype=np.int64),
        kw=np.array(kw),
        kvar=np.array(kvar),
        kv=np.array(kv),
        v_base_v=np.array(vbase),
        vminpu=np.array(vmin),
        vmaxpu=np.array(vmax),
        vlowpu=np.array(vlow),
        cvr_watts=np.array(cvrw),
        cvr_vars=np.array(cvrv),
        fixed=np.array(fixed, dtype=bool),
        yearly=yearly,
        daily=daily,
    )


def _read_pv(circuit: Any, shapes: dict[str, LoadShape], master: Path) -> PVTable:
    rows: list[dict[str, Any]] = []
    pvs = circuit.PVSystems
    for _ in _each(pvs):
        e = circuit.ActiveCktElement
        if e.Enabled:
            name = str(pvs.Name).lower()
            r = np.asarray(e.NodeRef, dtype=np.int64) - 1
            p = int(e.NumPhases)
            conn = _prop(circuit, "conn").lower()
            is_delta = conn.startswith("d") or conn.startswith("l")
            k = _float_prop(circuit, "kv", 12.47)
            if is_delta:
                vb = k * 1000.0
            elif p in (2, 3):
                vb = k * 1000.0 / math.sqrt(3.0)
            else:
                vb = k * 1000.0
            pf_txt = _prop(circuit, "pf")
            kvar_txt = _prop(circuit, "kvar")
            rows.append(
                {
                    "name": name,
                    "refs": _pad_refs(r),
                    "nph": p,
                    "ncond": int(e.NumConductors),
                    "delta": is_delta,
                    "kv": k,
                    "vb": vb,
                    "pmpp": float(pvs.Pmpp),
                    "kva": float(pvs.kVArated),
                    "irr": float(pvs.Irradiance),
                    "pf": float(pf_txt) if pf_txt else 1.0,
                    "kvar": float(kvar_txt) if kvar_txt else 0.0,
                    "pf_spec": not bool(kvar_txt) or float(kvar_txt) == 0.0,
                    "vmin": _float_prop(circuit, "vminpu", 0.9),
                    "vmax": _float_prop(circuit, "vmaxpu", 1.1),
                    "yearly": _shape_or_error(str(pvs.yearly), shapes, f"pvsystem.{name}", master),
                    "daily": _shape_or_error(str(pvs.daily), shapes, f"pvsystem.{name}", master),
                    "cutin": _float_prop(circuit, "%cutin", 20.0),
                    "cutout": _float_prop(circuit, "%cutout", 20.0),
                }
            )
    return PVTable(
        names=[r["name"] for r in rows],
        node_idx=np.array([r["refs"] for r in rows], dtype=np.int64).reshape(-1, _MAX_LOAD_CONDS),
        n_phases=np.array([r["nph"] for r in rows], dtype=np.int64),
        n_conds=np.array([r["ncond"] for r in rows], dtype=np.int64),
        delta=np.array([r["delta"] for r in rows], dtype=bool),
        kv=np.array([r["kv"] for r in rows], dtype=float),
        v_base_v=np.array([r["vb"] for r in rows], dtype=float),
        pmpp_kw=np.array([r["pmpp"] for r in rows], dtype=float),
        kva=np.array([r["kva"] for r in rows], dtype=float),
        irradiance=np.array([r["irr"] for r in rows], dtype=float),
        pf=np.array([r["pf"] for r in rows], dtype=float),
        kvar=np.array([r["kvar"] for r in rows], dtype=float),
        pf_specified=np.array([r["pf_spec"] for r in rows], dtype=bool),
        vminpu=np.array([r["vmin"] for r in rows], dtype=float),
        vmaxpu=np.array([r["vmax"] for r in rows], dtype=float),
        yearly=[r["yearly"] for r in rows],
        daily=[r["daily"] for r in rows],
        cutin_pct=np.array([r["cutin"] for r in rows], dtype=float),
        cutout_pct=np.array([r["cutout"] for r in rows], dtype=float),
    )


def _read_storage(circuit: Any) -> StorageTable:
    names: list[str] = []
    refs: list[np.ndarray] = []
    nph: list[int] = []
    kw: list[float] = []
    kwh: list[float] = []
    kv: list[float] = []
    st = circuit.Storages
    for _ in _each(st):
        e = circuit.ActiveCktElement
        if e.Enabled:
            names.append(str(st.Name).lower())
            refs.append(_pad_refs(np.asarray(e.NodeRef, dtype=np.int64) - 1))
            nph.append(int(e.NumPhases))
            kw.append(_float_prop(circuit, "kwrated", 0.0))
            kwh.append(_float_prop(circuit, "kwhrated", 0.0))
            kv.append(_float_prop(circuit, "kv", 0.0))
    return StorageTable(
        names=names,
        node_idx=np.array(refs, dtype=np.int64).reshape(-1, _MAX_LOAD_CONDS),
        n_phases=np.array(nph, dtype=np.int64),
        kw_rated=np.array(kw),
        kwh_rated=np.array(kwh),
        kv=np.array(kv),
    )


def _phase_setting(text: str) -> int:
    t = text.strip().lower()
    if t.startswith("max"):
        return 0
    if t.startswith("min"):
        return -1
    if t.startswith("avg"):
        return -2
    try:
        return int(float(t))
    except ValueError:
        return 1


def _monitored_bus_nodes(bus_spec: str, node_names: list[str]) -> np.ndarray:
    """Node indices of ``bus.n1.n2`` (all phase nodes of the bus if no suffix)."""
    parts = bus_spec.strip().lower().split(".")
    bus = parts[0]
    phases = [p for p in parts[1:] if p and p != "0"]
    if phases:
        want = [f"{bus}.{p}" for p in phases]
        return np.array([node_names.index(w) for w in want if w in node_names], dtype=np.int64)
    return np.array(
        [k for k, nm in enumerate(node_names) if nm.split(".")[0] == bus], dtype=np.int64
    )


def _read_regulators(
    circuit: Any, branches: BranchTable, reg_xf: dict[str, str], node_names: list[str]
) -> RegulatorTable:
    cols: dict[str, list[Any]] = {
        k: []
        for k in [
            "names",
            "transformer",
            "branch_idx",
            "winding",
            "tap_step_pu",
            "tap_min",
            "tap_max",
            "tap0",
            "y_prim_by_tap",
            "node_idx",
            "vreg_v",
            "band_v",
            "pt_ratio",
            "ct_primary_a",
            "r_ldc_v",
            "x_ldc_v",
            "pt_phase",
            "monitored_node_idx",
            "ct_conductor",
            "max_tap_change",
            "reversible",
            "rev_vreg_v",
            "rev_band_v",
            "rev_r_ldc_v",
            "rev_x_ldc_v",
            "vlimit_v",
            "delay_s",
            "winding_delta",
            "winding_base_v",
        ]
    }
    rc = circuit.RegControls
    xf = circuit.Transformers
    for name, xfname in reg_xf.items():
        rc.Name = name
        winding = int(rc.Winding)
        circuit.SetActiveElement(f"regcontrol.{name}")
        pt_phase = _phase_setting(_prop(circuit, "ptphase"))
        rev = bool(rc.IsReversible)
        mon_bus = str(rc.MonitoredBus).strip()
        vreg, band = float(rc.ForwardVreg), float(rc.ForwardBand)
        ptr, ctp = float(rc.PTratio), float(rc.CTPrimary)
        r_ldc, x_ldc = float(rc.ForwardR), float(rc.ForwardX)
        rvreg, rband = float(rc.ReverseVreg), float(rc.ReverseBand)
        rr, rx = float(rc.ReverseR), float(rc.ReverseX)
        maxchg = int(rc.MaxTapChange)
        vlim = float(rc.VoltageLimit)
        delay = float(rc.Delay)
        b = branches.index(xfname)
        xf.Name = xfname.split(".", 1)[1]
        xf.Wdg = winding
        wdg_delta = bool(xf.IsDelta)
        wdg_kv = float(xf.kV)
        nph_x = int(branches.n_phases[branches.index(xfname)])
        # Transformer.pas RecalcElementData: VBase = kV/sqrt(3) for 2-/3-phase wye, kV otherwise
        wdg_base = (
            wdg_kv * 1000.0 / math.sqrt(3.0)
            if (nph_x in (2, 3) and not wdg_delta)
            else wdg_kv * 1000.0
        )
        numtaps = int(xf.NumTaps)
        tmin, tmax = float(xf.MinTap), float(xf.MaxTap)
        tap = float(xf.Tap)
        step = (tmax - tmin) / numtaps if numtaps > 0 else 0.00625
        pos_min = round((tmin - 1.0) / step)
        pos_max = round((tmax - 1.0) / step)
        pos0 = round((tap - 1.0) / step)
        refs = branches.node_idx[b]
        y_read = branches.y_prim[b]
        nc = int(branches.n_conds[b])
        wsl = slice((winding - 1) * nc, winding * nc)
        ys = []
        for pos in range(pos_min, pos_max + 1):
            s = np.ones(refs.size)
            s[wsl] = tap / (1.0 + pos * step)
            ys.append(y_read * np.outer(s, s))
        if mon_bus:
            mon = _monitored_bus_nodes(mon_bus, node_names)
        else:
            mon = refs[wsl][: int(branches.n_phases[b])]
        cols["names"].append(name)
        cols["transformer"].append(xfname)
        cols["branch_idx"].append(b)
        cols["winding"].append(winding)
        cols["tap_step_pu"].append(step)
        cols["tap_min"].append(pos_min)
        cols["tap_max"].append(pos_max)
        cols["tap0"].append(pos0)
        cols["y_prim_by_tap"].append(np.array(ys))
        cols["node_idx"].append(refs)
        cols["vreg_v"].append(vreg)
        cols["band_v"].append(band)
        cols["pt_ratio"].append(ptr)
        cols["ct_primary_a"].append(ctp)
        cols["r_ldc_v"].append(r_ldc)
        cols["x_ldc_v"].append(x_ldc)
        cols["pt_phase"].append(pt_phase)
        cols["monitored_node_idx"].append(mon)
        cols["ct_conductor"].append((winding - 1) * nc)
        cols["max_tap_change"].append(maxchg)
        cols["reversible"].append(rev)
        cols["rev_vreg_v"].append(rvreg)
        cols["rev_band_v"].append(rband)
        cols["rev_r_ldc_v"].append(rr)
        cols["rev_x_ldc_v"].append(rx)
        cols["vlimit_v"].append(vlim)
        cols["delay_s"].append(delay)
        cols["winding_delta"].append(wdg_delta)
        cols["winding_base_v"].append(wdg_base)
    f = np.asarray
    return RegulatorTable(
        names=cols["names"],
        transformer=cols["transformer"],
        branch_idx=f(cols["branch_idx"], dtype=np.int64),
        winding=f(cols["winding"], dtype=np.int64),
        tap_step_pu=f(cols["tap_step_pu"], dtype=float),
        tap_min=f(cols["tap_min"], dtype=np.int64),
        tap_max=f(cols["tap_max"], dtype=np.int64),
        tap0=f(cols["tap0"], dtype=np.int64),
        y_prim_by_tap=cols["y_prim_by_tap"],
        node_idx=cols["node_idx"],
        vreg_v=f(cols["vreg_v"], dtype=float),
        band_v=f(cols["band_v"], dtype=float),
        pt_ratio=f(cols["pt_ratio"], dtype=float),
        ct_primary_a=f(cols["ct_primary_a"], dtype=float),
        r_ldc_v=f(cols["r_ldc_v"], dtype=float),
        x_ldc_v=f(cols["x_ldc_v"], dtype=float),
        pt_phase=f(cols["pt_phase"], dtype=np.int64),
        monitored_node_idx=cols["monitored_node_idx"],
        ct_conductor=f(cols["ct_conductor"], dtype=np.int64),
        max_tap_change=f(cols["max_tap_change"], dtype=np.int64),
        reversible=f(cols["reversible"], dtype=bool),
        rev_vreg_v=f(cols["rev_vreg_v"], dtype=float),
        rev_band_v=f(cols["rev_band_v"], dtype=float),
        rev_r_ldc_v=f(cols["rev_r_ldc_v"], dtype=float),
        rev_x_ldc_v=f(cols["rev_x_ldc_v"], dtype=float),
        vlimit_v=f(cols["vlimit_v"], dtype=float),
        delay_s=f(cols["delay_s"], dtype=float),
        winding_delta=f(cols["winding_delta"], dtype=bool),
        winding_base_v=f(cols["winding_base_v"], dtype=float),
    )


def _read_capacitors(
    dss: Any, circuit: Any, cap_names: list[str], branches: BranchTable, node_names: list[str]
) -> CapacitorTable:
    caps = circuit.Capacitors
    # CapControls by capacitor
    ctl: dict[str, dict[str, Any]] = {}
    cc = circuit.CapControls
    for _ in _each(cc):
        cname = str(cc.Name).lower()
        circuit.SetActiveElement(f"capcontrol.{cname}")
        mode = {0: "current", 1: "voltage", 2: "kvar", 3: "time", 4: "pf"}.get(int(cc.Mode), "")
        ctl["capacitor." + str(cc.Capacitor).lower()] = {
            "name": cname,
            "type": mode,
            "on": float(cc.ONSetting),
            "off": float(cc.OFFSetting),
            "pt": float(cc.PTratio),
            "ct": float(cc.CTratio),
            "element": str(cc.MonitoredObj).lower(),
            "terminal": int(cc.MonitoredTerm),
            "ptphase": _phase_setting(_prop(circuit, "ptphase")),
            "ctphase": _phase_setting(_prop(circuit, "ctphase")),
            "override": bool(cc.UseVoltOverride),
            "vmin": float(cc.Vmin),
            "vmax": float(cc.Vmax),
            "don": float(cc.Delay),
            "doff": float(cc.DelayOff),
            "dead": float(cc.DeadTime),
        }

    cols: dict[str, list[Any]] = {
        k: [] for k in ["names", "refs", "ys", "nsteps", "state0", "kvar", "delta"]
    }
    ccols: dict[str, list[Any]] = {
        k: []
        for k in [
            "name",
            "type",
            "on",
            "off",
            "pt",
            "ct",
            "element",
            "terminal",
            "monnodes",
            "monbranch",
            "ptphase",
            "ctphase",
            "override",
            "vmin",
            "vmax",
            "don",
            "doff",
            "dead",
        ]
    }
    for full in cap_names:
        caps.Name = full.split(".", 1)[1]
        nsteps = int(caps.NumSteps)
        states0 = list(caps.States)
        ys = []
        for k in range(nsteps + 1):
            caps.States = [1] * k + [0] * (nsteps - k)
            circuit.Solution.BuildYMatrix(2, False)
            circuit.SetActiveElement(full)
            ys.append(_complex_matrix(circuit.ActiveCktElement.Yprim))
        caps.States = states0
        circuit.Solution.BuildYMatrix(2, False)
        circuit.SetActiveElement(full)
        refs = np.asarray(circuit.ActiveCktElement.NodeRef, dtype=np.int64) - 1
        cols["names"].append(full)
        cols["refs"].append(refs)
        cols["ys"].append(np.array(ys))
        cols["nsteps"].append(nsteps)
        cols["state0"].append(int(sum(states0)))
        cols["kvar"].append(float(caps.kvar))
        cols["delta"].append(bool(caps.IsDelta))
        c = ctl.get(full)
        if c is None:
            for key, val in (
                ("name", ""),
                ("type", ""),
                ("on", math.nan),
                ("off", math.nan),
                ("pt", math.nan),
                ("ct", math.nan),
                ("element", ""),
                ("terminal", 1),
                ("monnodes", np.zeros(0, dtype=np.int64)),
                ("monbranch", -1),
                ("ptphase", 1),
                ("ctphase", 1),
                ("override", False),
                ("vmin", math.nan),
                ("vmax", math.nan),
                ("don", 0.0),
                ("doff", 0.0),
                ("dead", 0.0),
            ):
                ccols[key].append(val)
            continue
        elem = c["element"]
        term = c["terminal"]
        if elem in branches.names:
            bi = branches.index(elem)
            nc = int(branches.n_conds[bi])
            refs_b = branches.node_idx[bi]
            monnodes = refs_b[(term - 1) * nc : (term - 1) * nc + int(branches.n_phases[bi])]
        elif elem == full:
            bi = -1
            monnodes = refs[: int(circuit.ActiveCktElement.NumPhases)]
        else:
            bi = -1
            circuit.SetActiveElement(elem)
            r2 = np.asarray(circuit.ActiveCktElement.NodeRef, dtype=np.int64) - 1
            nc = int(circuit.ActiveCktElement.NumConductors)
            monnodes = r2[
                (term - 1) * nc : (term - 1) * nc + int(circuit.ActiveCktElement.NumPhases)
            ]
        for key in [
            "name",
            "type",
            "on",
            "off",
            "pt",
            "ct",
            "element",
            "terminal",
            "ptphase",
            "ctphase",
            "override",
            "vmin",
            "vmax",
            "don",
            "doff",
            "dead",
        ]:
            ccols[key].append(c[key])
        ccols["monnodes"].append(monnodes)
        ccols["monbranch"].append(bi)
    f = np.asarray
    return CapacitorTable(
        names=cols["names"],
        node_idx=cols["refs"],
        y_prim_by_steps=cols["ys"],
        n_steps=f(cols["nsteps"], dtype=np.int64),
        state0=f(cols["state0"], dtype=np.int64),
        kvar=f(cols["kvar"], dtype=float),
        control_name=ccols["name"],
        control_type=ccols["type"],
        on_setting=f(ccols["on"], dtype=float),
        off_setting=f(ccols["off"], dtype=float),
        pt_ratio=f(ccols["pt"], dtype=float),
        ct_ratio=f(ccols["ct"], dtype=float),
        monitored_element=ccols["element"],
        monitored_terminal=f(ccols["terminal"], dtype=np.int64),
        monitored_node_idx=ccols["monnodes"],
        monitored_branch_idx=f(ccols["monbranch"], dtype=np.int64),
        pt_phase=f(ccols["ptphase"], dtype=np.int64),
        ct_phase=f(ccols["ctphase"], dtype=np.int64),
        volt_override=f(ccols["override"], dtype=bool),
        vmin_v=f(ccols["vmin"], dtype=float),
        vmax_v=f(ccols["vmax"], dtype=float),
        delay_on_s=f(ccols["don"], dtype=float),
        delay_off_s=f(ccols["doff"], dtype=float),
        dead_time_s=f(ccols["dead"], dtype=float),
        delta=f(cols["delta"], dtype=bool),
    )


def check_connected(net: Network) -> None:
    """Raise :class:`InputError` naming the first bus with no path to the source.

    Connectivity counts series elements (branches with non-negligible coupling) and closed
    regulator/capacitor elements; shunts to ground alone do not connect a node.
    """
    n = net.n_nodes
    elems = list(zip(net.branches.node_idx, net.branches.y_prim, strict=True))
    elems += list(
        zip(net.capacitors.node_idx, [y[-1] for y in net.capacitors.y_prim_by_steps], strict=True)
    )
    if not elems:
        return
    r, c, vals, elem = _pairs(elems)
    mag = np.abs(vals)
    inside = (r >= 0) & (c >= 0)
    # coupling is significant against the element's own largest entry (between live nodes)
    scale = np.zeros(len(elems))
    np.maximum.at(scale, elem[inside], mag[inside])
    strong = inside & (mag > 1e-9 * scale[elem]) & (scale[elem] > 0)
    if not strong.any():
        return
    g = sp.coo_matrix(
        (np.ones(int(strong.sum())), (r[strong], c[strong])),
        shape=(n, n),
    ).tocsr()
    _, labels = sp.csgraph.connected_components(g, directed=False)
    # every phase of the source energises its component (uncoupled phases are separate graphs)
    src_nodes = [int(k) for k in net.source.node_idx if k >= 0]
    if net.source.term_node_idx is not None:
        src_nodes += [int(k) for k in net.source.term_node_idx if k >= 0]
    live = np.isin(labels, labels[src_nodes])
    dead = np.flatnonzero(~live)
    # a dead component confined to one bus is a neutral/winding point grounded through a shunt
    comp_buses: dict[int, set[int]] = {}
    for k in dead:
        comp_buses.setdefault(int(labels[k]), set()).add(int(net.node_bus[k]))
    island = [k for k in dead if len(comp_buses[int(labels[k])]) > 1]
    if island:
        buses = sorted({net.node_names[k].split(".")[0] for k in island})
        shown = ", ".join(buses[:5]) + (" ..." if len(buses) > 5 else "")
        raise InputError(
            f"{net.source_file}: {len(buses)} bus(es) are not connected to the source "
            f"(an island): {shown}",
            "connect them with a line/transformer, close the open switch, or remove them",
        )
