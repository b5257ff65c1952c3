"""pandapower and SimBench networks as a balanced one-phase equivalent :class:`Network`.

pandapower models a balanced three-phase grid by its positive sequence. gridflex keeps the
*same* node-phase :class:`~gridflex.network.Network` for it, with one node per bus named
``<bus name>.1`` (lower case, spaces -> ``_``), so the solver, the result files and the studies
need no second code path.

The equivalent (documented in ``docs/sim.md``):

* node voltages are line-to-neutral, ``node_base_kv = vn_kv / sqrt(3)``, so ``v_pu`` is
  pandapower's ``vm_pu``;
* powers are the *three-phase* totals (a load's ``kw`` is ``p_mw * scaling * 1000``), so every
  current in the equivalent is three times the phase current and every admittance three times the
  per-phase admittance; branch ratings are scaled the same way, so loadings in percent are
  pandapower's;
* the admittances are pandapower's own: the branch table pandapower builds for its power flow
  (``net._ppc``: lines with their shunt capacitance, two-winding transformers in the T model with
  tap position and phase shift, closed bus-bus switches fused, open line switches removed), so a
  gridflex power flow agrees with ``pandapower.runpp`` to solver tolerance;
* the external grid becomes a stiff source (series reactance :data:`SOURCE_Z_PU` per unit of the
  grid's base) holding ``vm_pu`` / ``va_degree``;
* loads are constant power (constant impedance / current when pandapower's ZIP percentages say
  100 %), PV static generators are :class:`PVTable` rows, other static generators (wind,
  biomass, hydro) negative constant-power loads so inverter functions do not act on them.

SimBench profiles (15-minute, one year, relative to ``p_mw`` / ``q_mvar``) become load shapes.

References
----------
.. [1] L. Thurner et al., "pandapower - an open-source Python tool for convenient modeling,
   analysis, and optimization of electric power systems", IEEE Trans. Power Syst. 33(6), 2018.
.. [2] S. Meinecke et al., "SimBench - a benchmark dataset of electric power systems to compare
   innovative solutions based on power flow analysis", Energies 13(12), 3290, 2020.
.. [3] R. D. Zimmerman et al., MATPOWER manual, section 3.2 (branch model), used by
   pandapower's ``makeYbus``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import pickle
import re
import sys
import typing
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gridflex.errors import InputError
from gridflex.network.model import (
    BoolArray,
    BranchTable,
    CapacitorTable,
    ComplexArray,
    FloatArray,
    IntArray,
    LoadShape,
    LoadTable,
    Network,
    PVTable,
    RegulatorTable,
    SourceModel,
    StorageTable,
)

_T = TypeVar("_T")

#: Series reactance of the stiff source standing for pandapower's ideal external grid, per unit
#: of ``net.sn_mva`` and the slack bus voltage: its voltage drop stays below 1e-7 pu.
SOURCE_Z_PU = 1e-8

#: SimBench profiles start at 2016-01-01 00:00 and run 366 days without DST shifts: German
#: standard time (CET, UTC+1) all year (Meinecke et al. [2]_, section 4).
SIMBENCH_PROFILE_START = datetime(2016, 1, 1, tzinfo=timezone(timedelta(hours=1)))

#: SimBench profile step in hours (15 minutes).
SIMBENCH_STEP_H = 0.25

# pandapower ppc column indices (MATPOWER layout: pandapower.pypower.idx_bus / idx_brch)
_BUS_TYPE, _BASE_KV = 1, 9
_F_BUS, _T_BUS, _BR_STATUS = 0, 1, 10
_ISOLATED = 4


def node_name(bus_name: str) -> str:
    """Node name of a pandapower bus: lower case, whitespace -> ``_``, suffix ``.1``."""
    return re.sub(r"\s+", "_", str(bus_name).strip().lower()) + ".1"


def _element_name(prefix: str, name: Any, index: int) -> str:
    text = str(name).strip() if isinstance(name, str) and name.strip() else f"{prefix}{index}"
    return re.sub(r"\s+", "_", text.lower())


def _table(cls: type[_T], n: int, **given: Any) -> _T:
    """Build a model table of ``n`` rows from ``given`` columns; others get neutral values.

    Neutral values (zeros, ``False``, empty strings / lists) are right for the columns a
    one-phase pandapower equivalent has no use for: controls it has none of, delays, and so on.
    """
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in given:
            kwargs[f.name] = given[f.name]
            continue
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        hint = hints[f.name]
        if typing.get_origin(hint) is list:
            (inner,) = typing.get_args(hint)
            if inner is str:
                kwargs[f.name] = [""] * n
            else:
                kwargs[f.name] = [np.zeros(0, dtype=np.int64) for _ in range(n)]
        elif hint is BoolArray:
            kwargs[f.name] = np.zeros(n, dtype=bool)
        elif hint is IntArray:
            kwargs[f.name] = np.zeros(n, dtype=np.int64)
        else:
            kwargs[f.name] = np.zeros(n, dtype=np.float64)
    return cls(**kwargs)


def _build_ppc(net: Any) -> None:
    """Let pandapower build its internal branch table (``net._ppc``) for this network."""
    import pandapower as pp

    # A base-case power flow fills net._ppc exactly as every later runpp would; numba=False keeps
    # pandapower from logging a warning on machines without numba.
    try:
        pp.runpp(net, numba=False, calculate_voltage_angles=True, trafo_model="t", init="flat")
    except pp.LoadflowNotConverged:
        # the tables are built before the Newton loop starts; they are all we need
        if getattr(net, "_ppc", None) is None:
            raise


def _zip_model(row: Any, label: str) -> int:
    z = float(row.get("const_z_p_percent", row.get("const_z_percent", 0.0)) or 0.0)
    i = float(row.get("const_i_p_percent", row.get("const_i_percent", 0.0)) or 0.0)
    zq = float(row.get("const_z_q_percent", z) or 0.0)
    iq = float(row.get("const_i_q_percent", i) or 0.0)
    if z == i == zq == iq == 0.0:
        return 1
    if z == zq == 100.0 and i == iq == 0.0:
        return 2
    if i == iq == 100.0 and z == zq == 0.0:
        return 5
    raise InputError(
        f"{label}: mixed ZIP load (const_z {z}/{zq} %, const_i {i}/{iq} %) is not supported",
        "set the load to 0 % (constant power), 100 % const_z or 100 % const_i",
    )


def from_pandapower(
    net: Any,
    *,
    name: str = "pandapower",
    source: str = "pandapower",
    load_shapes: Mapping[str, LoadShape] | None = None,
    load_profile: Mapping[int, str] | None = None,
    sgen_profile: Mapping[int, str] | None = None,
    profile_step_h: float = 1.0,
) -> Network:
    """Build the one-phase equivalent :class:`Network` of a pandapower network.

    Parameters
    ----------
    net:
        A ``pandapowerNet`` with exactly one in-service external grid and no voltage-controlled
        generators (``gen``).
    name, source:
        Network name and a description of where it came from (``simbench:<code>``).
    load_shapes:
        Load shapes by lower-case name (multipliers of ``p_mw`` / ``q_mvar``).
    load_profile, sgen_profile:
        Load-shape name of each load / static generator (by pandapower index); elements without
        one keep their base-case power.
    profile_step_h:
        The step of the shapes in hours (SimBench: 0.25).

    Returns
    -------
    Network
        ``kind="pandapower"``.

    Raises
    ------
    InputError
        No or several external grids, ``gen`` elements, a mixed ZIP load, an islanded load.
    """
    label = f"pandapower network {name!r}"
    ext = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    if len(ext) != 1:
        raise InputError(
            f"{label} has {len(ext)} in-service external grids; gridflex needs exactly one",
            "keep one ext_grid in service (the feeder's substation)",
        )
    if "gen" in net and len(net.gen) and net.gen.in_service.astype(bool).any():
        first = net.gen[net.gen.in_service.astype(bool)].iloc[0]
        raise InputError(
            f"{label}: voltage-controlled generator gen {first['name']!r} is not supported by the "
            "distribution solver",
            "convert gens to static generators (sgen) with a fixed reactive power",
        )
    notes: list[str] = [
        "balanced one-phase equivalent of a pandapower network: powers are three-phase totals, "
        "node voltages line-to-neutral"
    ]
    _build_ppc(net)
    ppc = net._ppc
    bus_lookup = np.asarray(net._pd2ppc_lookups["bus"], dtype=np.int64)
    ppc_bus = np.asarray(ppc["bus"], dtype=np.float64)
    ppc_branch = np.asarray(ppc["branch"])
    base_mva = float(ppc["baseMVA"])

    # nodes: one per energised ppc bus, named after the first pandapower bus fused into it
    energised = ppc_bus[:, _BUS_TYPE] != _ISOLATED
    ppc_to_node = np.full(len(ppc_bus), -1, dtype=np.int64)
    ppc_to_node[energised] = np.arange(int(energised.sum()))
    n_nodes = int(energised.sum())
    names: list[str | None] = [None] * n_nodes
    merged: dict[int, list[str]] = {}
    for pp_bus in net.bus.index:
        b = int(bus_lookup[pp_bus]) if pp_bus < len(bus_lookup) else -1
        if b < 0 or ppc_to_node[b] < 0:
            continue
        node = int(ppc_to_node[b])
        nm = node_name(net.bus.at[pp_bus, "name"] or f"bus{pp_bus}")
        if names[node] is None:
            names[node] = nm
        else:
            merged.setdefault(node, []).append(nm)
    node_names = [n if n is not None else f"ppc_bus{i}.1" for i, n in enumerate(names)]
    if len(set(node_names)) != len(node_names):
        dup = pd.Index(node_names)[pd.Index(node_names).duplicated()][0]
        raise InputError(
            f"{label}: two buses are both named {dup[:-2]!r} after lower-casing",
            "give every bus a unique name",
        )
    for node, others in merged.items():
        notes.append(f"buses {', '.join(o[:-2] for o in others)} fused into {node_names[node]}")
    isolated = [
        str(net.bus.at[b, "name"])
        for b in net.bus.index
        if b < len(bus_lookup) and bus_lookup[b] >= 0 and ppc_to_node[bus_lookup[b]] < 0
    ]
    if isolated:
        notes.append(f"{len(isolated)} out-of-service or unsupplied buses left out: {isolated[:5]}")

    base_kv_ll = ppc_bus[energised, _BASE_KV]
    node_base_kv = base_kv_ll / math.sqrt(3.0)

    # pandapower's own admittances (MATPOWER branch model, bus shunts included), in pu
    from pandapower.pypower.makeYbus import makeYbus

    y_bus_pu, y_from_pu, y_to_pu = makeYbus(base_mva, ppc["bus"], ppc["branch"])
    y_bus_pu, y_from_pu, y_to_pu = (sp.csr_matrix(m) for m in (y_bus_pu, y_from_pu, y_to_pu))
    in_service = ppc_branch[:, _BR_STATUS].real > 0
    f_ppc = ppc_branch[:, _F_BUS].real.astype(np.int64)
    t_ppc = ppc_branch[:, _T_BUS].real.astype(np.int64)
    keep = in_service & (ppc_to_node[f_ppc] >= 0) & (ppc_to_node[t_ppc] >= 0)
    # pu -> siemens of the three-phase-total equivalent: 3 * Y_pu * S_base / (V_ll,i * V_ll,j)
    inv_v = 1.0 / (base_kv_ll * 1e3)
    s3 = 3.0 * base_mva * 1e6
    sel = np.flatnonzero(energised)
    y_nodes = y_bus_pu[sel][:, sel].tocoo()
    rows: list[int] = [int(r) for r in y_nodes.row]
    cols: list[int] = [int(c) for c in y_nodes.col]
    vals: list[complex] = list(y_nodes.data * s3 * inv_v[y_nodes.row] * inv_v[y_nodes.col])

    branch_rows = _branch_rows(net, len(ppc_branch))
    b_names: list[str] = []
    b_nodes: list[IntArray] = []
    b_yprim: list[ComplexArray] = []
    rating_a: list[float] = []
    b_buses: list[list[str]] = []
    b_scale: list[FloatArray] = []
    for k in np.flatnonzero(keep):
        info = branch_rows.get(int(k))
        if info is None:  # an element type without a thermal rating in pandapower
            continue
        fb, tb = int(f_ppc[k]), int(t_ppc[k])
        i, j = int(ppc_to_node[fb]), int(ppc_to_node[tb])
        y2 = np.array(
            [
                [y_from_pu[k, fb] * inv_v[i] * inv_v[i], y_from_pu[k, tb] * inv_v[i] * inv_v[j]],
                [y_to_pu[k, fb] * inv_v[j] * inv_v[i], y_to_pu[k, tb] * inv_v[j] * inv_v[j]],
            ],
            dtype=np.complex128,
        )
        # each terminal against its own rated current: a transformer's low-voltage winding
        # carries vn_hv / vn_lv times the high-voltage rated current, so loading is pandapower's
        # max(i_hv / i_hv_rated, i_lv / i_lv_rated)
        b_scale.append(np.array([1.0, 1.0 / info[2]]))
        b_names.append(info[0])
        b_nodes.append(np.array([i, j], dtype=np.int64))
        b_yprim.append(y2 * s3)
        rating_a.append(info[1])
        b_buses.append([node_names[i][:-2], node_names[j][:-2]])
    n_shunts = int(sum(len(net[t]) for t in ("shunt", "ward", "xward") if t in net))
    if n_shunts:
        notes.append(f"{n_shunts} shunt / ward elements included in the admittance")

    # the source: a stiff Thevenin equivalent at the slack bus
    ext_row = ext.iloc[0]
    slack_ppc = int(bus_lookup[int(ext_row["bus"])])
    slack = int(ppc_to_node[slack_ppc])
    if slack < 0:
        raise InputError(f"{label}: the external grid's bus is out of service", "energise it")
    y_src = s3 * inv_v[slack] ** 2 / (1j * SOURCE_Z_PU)
    rows.append(slack)
    cols.append(slack)
    vals.append(y_src)
    v_src = (
        float(ext_row["vm_pu"])
        * node_base_kv[slack]
        * 1e3
        * np.exp(1j * np.deg2rad(float(ext_row.get("va_degree", 0.0) or 0.0)))
    )
    i_inj = np.zeros(n_nodes, dtype=np.complex128)
    i_inj[slack] = y_src * v_src
    y_fixed = sp.csc_matrix(
        sp.coo_matrix(
            (np.asarray(vals, dtype=np.complex128), (np.asarray(rows), np.asarray(cols))),
            shape=(n_nodes, n_nodes),
        )
    )
    src = SourceModel(
        name=f"vsource.{_element_name('ext_grid', ext_row['name'], int(ext.index[0]))}",
        bus=node_names[slack][:-2],
        node_idx=np.array([slack], dtype=np.int64),
        i_inj_a=i_inj,
        base_kv_ll=float(base_kv_ll[slack]),
        v_pu=float(ext_row["vm_pu"]),
        angle_deg=float(ext_row.get("va_degree", 0.0) or 0.0),
        y_prim=np.array([[y_src]], dtype=np.complex128),
        term_node_idx=np.array([slack], dtype=np.int64),
    )

    def node_of(pp_bus: int, what: str) -> int:
        b = int(bus_lookup[pp_bus])
        n = int(ppc_to_node[b]) if b >= 0 else -1
        if n < 0:
            raise InputError(
                f"{label}: {what} is connected to bus {net.bus.at[pp_bus, 'name']!r}, which is "
                "not supplied (out of service or islanded)",
                "take the element out of service or connect its bus",
            )
        return n

    load_profile = dict(load_profile or {})
    sgen_profile = dict(sgen_profile or {})
    loads = _LoadRows()
    for idx, row in net.load.iterrows():
        if not bool(row["in_service"]):
            continue
        lname = f"load.{_element_name('load', row['name'], int(idx))}"
        n = node_of(int(row["bus"]), lname)
        scaling = float(row.get("scaling", 1.0))
        loads.add(
            lname, n, float(row["p_mw"]) * scaling * 1e3, float(row["q_mvar"]) * scaling * 1e3,
            node_base_kv[n], _zip_model(row, lname), load_profile.get(int(idx), ""),
        )  # fmt: skip
    pv = _PVRows()
    n_other = 0
    if "sgen" in net:
        for idx, row in net.sgen.iterrows():
            if not bool(row["in_service"]):
                continue
            scaling = float(row.get("scaling", 1.0))
            p_kw = float(row["p_mw"]) * scaling * 1e3
            q_kvar = float(row["q_mvar"]) * scaling * 1e3
            shape = sgen_profile.get(int(idx), "")
            if "pv" in str(row.get("type", "")).lower():
                pname = f"pvsystem.{_element_name('sgen', row['name'], int(idx))}"
                n = node_of(int(row["bus"]), pname)
                sn = row.get("sn_mva", float("nan"))
                kva = float(sn) * 1e3 * scaling if pd.notna(sn) and float(sn) > 0 else p_kw
                pv.add(pname, n, p_kw, max(kva, p_kw), q_kvar, node_base_kv[n], shape)
            else:
                gname = f"load.{_element_name('sgen', row['name'], int(idx))}"
                n = node_of(int(row["bus"]), gname)
                loads.add(gname, n, -p_kw, -q_kvar, node_base_kv[n], 1, shape)
                n_other += 1
    if n_other:
        notes.append(
            f"{n_other} non-PV static generators modelled as negative constant-power loads"
        )
    storage = _storage_table(net, node_of, node_base_kv, notes)
    return Network(
        name=name,
        source_file=source,
        node_names=node_names,
        node_base_kv=np.asarray(node_base_kv, dtype=np.float64),
        bus_names=[n[:-2] for n in node_names],
        node_bus=np.arange(n_nodes, dtype=np.int64),
        bus_x=_coords(net, bus_lookup, ppc_to_node, n_nodes, "x"),
        bus_y=_coords(net, bus_lookup, ppc_to_node, n_nodes, "y"),
        y_fixed=y_fixed,
        source=src,
        branches=BranchTable(
            names=b_names,
            n_phases=np.ones(len(b_names), dtype=np.int64),
            n_conds=np.ones(len(b_names), dtype=np.int64),
            n_terms=np.full(len(b_names), 2, dtype=np.int64),
            node_idx=b_nodes,
            y_prim=b_yprim,
            rating_normal_a=np.asarray(rating_a, dtype=np.float64),
            # pandapower has one thermal rating; it is the emergency rating too
            rating_emerg_a=np.asarray(rating_a, dtype=np.float64),
            bus_names=b_buses,
            terminal_rating_scale=b_scale,
        ),
        regulators=_table(RegulatorTable, 0),
        capacitors=_table(CapacitorTable, 0),
        loads=loads.table(),
        pv=pv.table(),
        storage=storage,
        loadshapes=dict(load_shapes or {}),
        frequency_hz=float(getattr(net, "f_hz", 50.0) or 50.0),
        profile_step_h=profile_step_h,
        notes=notes,
        kind="pandapower",
    )


def _branch_rows(net: Any, n_branch: int) -> dict[int, tuple[str, float, float]]:
    """ppc branch row -> (``class.name``, normal rating in A of the 3x-current equivalent,
    factor referring terminal-2 current to terminal 1: ``vn_lv / vn_hv`` for transformers)."""
    lookup = net._pd2ppc_lookups.get("branch", {})
    out: dict[int, tuple[str, float, float]] = {}
    if "line" in lookup:
        start, _stop = lookup["line"]
        for pos, (idx, row) in enumerate(net.line.iterrows()):
            k = int(start) + pos
            rating_ka = float(row["max_i_ka"]) * float(row.get("df", 1.0)) * float(row["parallel"])
            out[k] = (f"line.{_element_name('line', row['name'], int(idx))}", 3e3 * rating_ka, 1.0)
    if "trafo" in lookup:
        start, _stop = lookup["trafo"]
        for pos, (idx, row) in enumerate(net.trafo.iterrows()):
            k = int(start) + pos
            # rated current of the high-voltage winding; the equivalent carries 3x phase current
            rated_a = float(row["sn_mva"]) * 1e6 / (math.sqrt(3.0) * float(row["vn_hv_kv"]) * 1e3)
            rated_a *= float(row.get("parallel", 1)) * float(row.get("df", 1.0))
            name = f"transformer.{_element_name('trafo', row['name'], int(idx))}"
            out[k] = (name, 3 * rated_a, float(row["vn_lv_kv"]) / float(row["vn_hv_kv"]))
    return {k: v for k, v in out.items() if k < n_branch}


def _coords(
    net: Any, bus_lookup: np.ndarray, ppc_to_node: np.ndarray, n_nodes: int, axis: str
) -> FloatArray:
    out = np.full(n_nodes, np.nan)
    geo = getattr(net, "bus_geodata", None)
    if geo is None or not len(geo) or axis not in geo:
        return out
    for b, value in geo[axis].items():
        p = int(bus_lookup[b]) if b < len(bus_lookup) else -1
        if p >= 0 and ppc_to_node[p] >= 0 and np.isnan(out[ppc_to_node[p]]):
            out[ppc_to_node[p]] = float(value)
    return out


class _LoadRows:
    def __init__(self) -> None:
        self.rows: list[tuple[str, int, float, float, float, int, str]] = []

    def add(
        self, name: str, node: int, kw: float, kvar: float, base_kv: float, model: int, shape: str
    ) -> None:
        self.rows.append((name, node, kw, kvar, base_kv, model, shape))

    def table(self) -> LoadTable:
        n = len(self.rows)
        node_idx = np.full((n, 4), -1, dtype=np.int64)
        for k, r in enumerate(self.rows):
            node_idx[k, 0] = r[1]  # phase conductor; the neutral (index 1) is ground
        kv = np.array([r[4] for r in self.rows], dtype=np.float64)
        return _table(
            LoadTable,
            n,
            names=[r[0] for r in self.rows],
            node_idx=node_idx,
            n_phases=np.ones(n, dtype=np.int64),
            n_conds=np.full(n, 2, dtype=np.int64),
            delta=np.zeros(n, dtype=bool),
            model=np.array([r[5] for r in self.rows], dtype=np.int64),
            kw=np.array([r[2] for r in self.rows], dtype=np.float64),
            kvar=np.array([r[3] for r in self.rows], dtype=np.float64),
            kv=kv,
            v_base_v=kv * 1e3,
            # pandapower keeps constant power at any voltage; these bands are outside any
            # voltage a solved grid reaches, so OpenDSS's switch to constant Z never happens
            vminpu=np.full(n, 0.5),
            vmaxpu=np.full(n, 1.5),
            vlowpu=np.full(n, 0.3),
            cvr_watts=np.ones(n),
            cvr_vars=np.full(n, 2.0),
            fixed=np.zeros(n, dtype=bool),
            yearly=[r[6] for r in self.rows],
            daily=["" for _ in self.rows],
        )


class _PVRows:
    def __init__(self) -> None:
        self.rows: list[tuple[str, int, float, float, float, float, str]] = []

    def add(
        self, name: str, node: int, p_kw: float, kva: float, q_kvar: float, base_kv: float,
        shape: str,
    ) -> None:  # fmt: skip
        self.rows.append((name, node, p_kw, kva, q_kvar, base_kv, shape))

    def table(self) -> PVTable:
        n = len(self.rows)
        node_idx = np.full((n, 4), -1, dtype=np.int64)
        for k, r in enumerate(self.rows):
            node_idx[k, 0] = r[1]
        kv = np.array([r[5] for r in self.rows], dtype=np.float64)
        return _table(
            PVTable,
            n,
            names=[r[0] for r in self.rows],
            node_idx=node_idx,
            n_phases=np.ones(n, dtype=np.int64),
            n_conds=np.full(n, 2, dtype=np.int64),
            delta=np.zeros(n, dtype=bool),
            kv=kv,
            v_base_v=kv * 1e3,
            pmpp_kw=np.array([r[2] for r in self.rows], dtype=np.float64),
            kva=np.array([r[3] for r in self.rows], dtype=np.float64),
            irradiance=np.ones(n),
            pf=np.ones(n),
            kvar=np.array([r[4] for r in self.rows], dtype=np.float64),
            pf_specified=np.zeros(n, dtype=bool),
            vminpu=np.full(n, 0.5),
            vmaxpu=np.full(n, 1.5),
            yearly=[r[6] for r in self.rows],
            daily=["" for _ in self.rows],
            # pandapower generators never cut out at low output (OpenDSS default is 20 %)
            cutin_pct=np.zeros(n),
            cutout_pct=np.zeros(n),
        )


def _storage_table(
    net: Any, node_of: Any, node_base_kv: FloatArray, notes: list[str]
) -> StorageTable:
    rows = []
    if "storage" in net:
        for idx, row in net.storage.iterrows():
            if bool(row["in_service"]):
                sname = f"storage.{_element_name('storage', row['name'], int(idx))}"
                rows.append(
                    (sname, node_of(int(row["bus"]), sname), float(row.get("sn_mva", 0) or 0),
                     float(row.get("max_e_mwh", 0) or 0))
                )  # fmt: skip
    if rows:
        notes.append(
            f"{len(rows)} storage units kept idle (the time-series solver dispatches none)"
        )
    n = len(rows)
    node_idx = np.full((n, 4), -1, dtype=np.int64)
    for k, r in enumerate(rows):
        node_idx[k, 0] = r[1]
    return _table(
        StorageTable,
        n,
        names=[r[0] for r in rows],
        node_idx=node_idx,
        n_phases=np.ones(n, dtype=np.int64),
        kw_rated=np.array([r[2] * 1e3 for r in rows], dtype=np.float64),
        kwh_rated=np.array([r[3] * 1e3 for r in rows], dtype=np.float64),
        kv=np.array([node_base_kv[r[1]] for r in rows], dtype=np.float64),
    )


def simbench_codes() -> list[str]:
    """Every SimBench grid code the installed ``simbench`` package knows."""
    import simbench as sb

    return [str(c) for c in sb.collect_all_simbench_codes()]


#: Environment variable naming the cache folder (default ``~/.cache/gridflex``).
CACHE_ENV = "GRIDFLEX_CACHE_DIR"


def _cache_path(code: str) -> Path:
    """Cache file of an imported SimBench grid, keyed by the code and everything that shapes it.

    The key hashes this module's and the model's source with the simbench and pandapower
    versions, so a change to any of them imports afresh.
    """
    from importlib.metadata import version

    from gridflex.network import model

    key = hashlib.sha256()
    for mod in (sys.modules[__name__], model):
        key.update(Path(str(mod.__file__)).read_bytes())
    # package metadata, not an import: pandapower takes seconds to import
    key.update(f"{version('simbench')}|{version('pandapower')}|{code}".encode())
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "gridflex")
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", code)
    return root / "simbench" / f"{safe}-{key.hexdigest()[:16]}.pickle"


def load_simbench(code: str, *, use_cache: bool = True) -> Network:
    """A SimBench grid with its one-year 15-minute profiles, as a one-phase equivalent Network.

    Reading a grid from the simbench package takes seconds; the imported network is kept in a
    cache folder (``$GRIDFLEX_CACHE_DIR``, default ``~/.cache/gridflex``) so the next run loads
    it in milliseconds. The cache is keyed by the code, the importer's and the model's source and
    the simbench and pandapower versions.

    Parameters
    ----------
    code:
        A SimBench code such as ``"1-LV-rural1--0-sw"`` (see :func:`simbench_codes`).
    use_cache:
        Read and write the cache.

    Raises
    ------
    InputError
        The code is unknown (the message lists close matches) or the grid has no profiles.
    """
    code = code.strip()
    if use_cache:
        path = _cache_path(code)
        if path.is_file():
            try:
                with path.open("rb") as fh:
                    cached = pickle.load(fh)
                if isinstance(cached, Network):
                    return cached
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError):
                pass  # a stale or partial cache file: import afresh and overwrite it
    network = _import_simbench(code)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as fh:
                pickle.dump(network, fh, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)
        except OSError:
            pass  # a read-only home is no reason to fail the import
    return network


def _import_simbench(code: str) -> Network:
    import simbench as sb

    known = simbench_codes()
    if code not in known:
        import difflib

        close = difflib.get_close_matches(code, known, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"e.g. {known[0]}"
        raise InputError(
            f"unknown SimBench code {code!r}",
            f"give one of the {len(known)} codes of the simbench package ({hint})",
        )
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    net = sb.get_simbench_net(code)
    profiles = getattr(net, "profiles", None) or {}
    shapes: dict[str, LoadShape] = {}
    load_profile: dict[int, str] = {}
    sgen_profile: dict[int, str] = {}
    load_rel = profiles.get("load")
    if load_rel is not None and len(load_rel):
        for idx, prof in net.load["profile"].items():
            if not isinstance(prof, str) or not prof:
                continue
            key = prof.lower()
            if key not in shapes:
                p_col, q_col = f"{prof}_pload", f"{prof}_qload"
                if p_col not in load_rel:
                    raise InputError(
                        f"SimBench grid {code}: load profile {prof!r} missing from its profiles",
                        "report this to the simbench package; the grid data is incomplete",
                    )
                shapes[key] = LoadShape(
                    name=key,
                    p_mult=load_rel[p_col].to_numpy(dtype=np.float64),
                    q_mult=load_rel[q_col].to_numpy(dtype=np.float64)
                    if q_col in load_rel
                    else None,
                    interval_h=SIMBENCH_STEP_H,
                )
            load_profile[int(idx)] = key
    gen_rel = [profiles.get(k) for k in ("renewables", "powerplants")]
    gen_cols = {c: df for df in gen_rel if df is not None and len(df) for c in df.columns}
    if "sgen" in net and "profile" in net.sgen:
        for idx, prof in net.sgen["profile"].items():
            if not isinstance(prof, str) or not prof:
                continue
            key = prof.lower()
            if key not in shapes:
                if prof not in gen_cols:
                    raise InputError(
                        f"SimBench grid {code}: generation profile {prof!r} missing",
                        "report this to the simbench package; the grid data is incomplete",
                    )
                shapes[key] = LoadShape(
                    name=key,
                    p_mult=gen_cols[prof][prof].to_numpy(dtype=np.float64),
                    q_mult=None,
                    interval_h=SIMBENCH_STEP_H,
                )
            sgen_profile[int(idx)] = key
    if not shapes:
        raise InputError(
            f"SimBench grid {code} has no time-series profiles",
            "pick a grid with profiles (any code ending in --0-sw, --1-sw or --2-sw)",
        )
    network = from_pandapower(
        net,
        name=code,
        source=f"simbench:{code}",
        load_shapes=shapes,
        load_profile=load_profile,
        sgen_profile=sgen_profile,
        profile_step_h=SIMBENCH_STEP_H,
    )
    network.notes.append(
        f"SimBench profiles: {len(shapes)} shapes, 15-minute steps from "
        f"{SIMBENCH_PROFILE_START.isoformat()} (CET, no DST)"
    )
    return network
