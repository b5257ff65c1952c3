"""The unbalanced network model every gridflex solver and study reads.

A :class:`Network` is a node-phase model, the same one OpenDSS builds: every conductor of every
bus that is not ground is a *node* named ``bus.phase`` in lower case (``"671.1"``), numbered in
OpenDSS's ``YNodeOrder``. Index ``-1`` in any node-index array means ground (OpenDSS node 0).

The model separates what is fixed from what varies in time or with control state:

* ``y_fixed`` — the sparse complex node admittance (siemens) of every series element and fixed
  shunt, plus the source's Thevenin admittance, *without* loads, PV, storage and generators, and
  *without* the switchable elements (regulator transformers and capacitors), whose primitive
  admittances are kept per tap / step in :class:`RegulatorTable` and :class:`CapacitorTable` so the
  solver can assemble ``Y(state)`` for any control state without going back to OpenDSS.
* ``source.i_inj_a`` — the Norton current the source injects (OpenDSS's Vsource equivalent).
* Loads, PV and storage as column arrays (one entry per element) with their load shapes by name.

Everything is plain NumPy / SciPy so a network pickles and travels to Dask workers.

Names are final (the ``simbench:`` importer and the ``gridflex simulate`` command build on them).

References
----------
.. [1] EPRI, OpenDSS reference guide, "Circuit modeling" (nodal admittance, Norton equivalents of
   power-conversion elements) and the Load, RegControl and CapControl object descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: OpenDSS load models (``model=`` property) supported by the solver.
LOAD_MODELS = {
    1: "constant PQ",
    2: "constant Z",
    3: "constant P, quadratic Q (motor)",
    4: "CVR: P ~ V^CVRwatts, Q ~ V^CVRvars",
    5: "constant |I|",
    6: "constant P, fixed Q",
    7: "constant P, fixed Q as impedance",
}


@dataclass
class LoadShape:
    """A load shape as OpenDSS holds it after ``action=normalize`` and ``mult=(file=...)``.

    Parameters
    ----------
    name:
        Lower-case load-shape name.
    p_mult:
        Active-power multipliers (npts,).
    q_mult:
        Reactive-power multipliers (npts,) or ``None`` when the shape has no ``qmult`` (then
        OpenDSS applies ``p_mult`` to kvar too).
    interval_h:
        Fixed interval in hours; ``0`` when the shape carries explicit ``hours``.
    hours:
        Explicit point times in hours (npts,) when ``interval_h == 0``.
    use_actual:
        ``useactual=yes``: multipliers are kW/kvar, not per unit.
    """

    name: str
    p_mult: FloatArray
    q_mult: FloatArray | None
    interval_h: float
    hours: FloatArray | None = None
    use_actual: bool = False

    @property
    def npts(self) -> int:
        """Number of points."""
        return int(self.p_mult.shape[0])


@dataclass
class SourceModel:
    """The feeder's source (OpenDSS ``Vsource.source``) as a Norton equivalent.

    ``y_fixed`` already holds the source's Thevenin admittance; ``i_inj_a`` (N,) is the current
    the source injects into each node so that, with no load, ``y_fixed @ v = i_inj_a`` gives the
    no-load voltages. ``node_idx`` are the nodes of ``bus1`` in phase order.
    """

    name: str
    bus: str
    node_idx: IntArray
    i_inj_a: ComplexArray
    base_kv_ll: float
    v_pu: float
    angle_deg: float
    #: the Vsource primitive admittance and its conductors (bus1 then bus2), for source power
    y_prim: ComplexArray | None = None
    term_node_idx: IntArray | None = None


@dataclass
class BranchTable:
    """Power-delivery elements (lines, transformers, reactors, capacitors in series).

    Per element ``b`` (lists, because orders differ): ``node_idx[b]`` (n_terms * n_conds,) the
    node index of each conductor, terminal-major, ``-1`` = ground; ``y_prim[b]`` the primitive
    admittance (siemens) in the same order, so terminal currents are ``y_prim[b] @ v[node_idx[b]]``
    (amperes flowing *into* the element at each conductor).
    """

    names: list[str]  # "class.name", lower case ("line.l115", "transformer.reg1")
    n_phases: IntArray
    n_conds: IntArray
    n_terms: IntArray
    node_idx: list[IntArray]
    y_prim: list[ComplexArray]
    rating_normal_a: FloatArray  # OpenDSS normamps (0 = unrated)
    rating_emerg_a: FloatArray  # OpenDSS emergamps (0 = unrated)
    bus_names: list[list[str]]  # per terminal, lower-case bus name without node suffix
    #: per terminal, its rated current as a multiple of the element's rating (OpenDSS gives a
    #: transformer's normamps/emergamps at winding 1; winding w carries kVA_w/kV_w over
    #: kVA_1/kV_1 times that). Ones for lines. Loading compares each terminal to its own rating.
    terminal_rating_scale: list[FloatArray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    def rating_scale(self, b: int) -> FloatArray:
        """Per-terminal rating multipliers of branch ``b`` (ones when not recorded)."""
        if b < len(self.terminal_rating_scale):
            return self.terminal_rating_scale[b]
        return np.ones(int(self.n_terms[b]))

    def index(self, name: str) -> int:
        """Row of branch ``class.name`` (case-insensitive)."""
        return self.names.index(name.lower())


@dataclass
class RegulatorTable:
    """Regulator transformers with their RegControl settings (one row per RegControl).

    ``y_prim_by_tap[r]`` (n_positions, K, K): the transformer's primitive admittance at each tap
    position ``tap_min .. tap_max``; ``position = round((tap_pu - 1) / tap_step_pu)``.
    ``y_fixed`` holds none of these transformers: the solver adds the rows for the current state.
    """

    names: list[str]  # regcontrol names, lower case
    transformer: list[str]  # "transformer.<name>"
    branch_idx: IntArray  # row in BranchTable
    winding: IntArray  # controlled winding, 1-based as in OpenDSS
    tap_step_pu: FloatArray
    tap_min: IntArray  # lowest position (e.g. -16)
    tap_max: IntArray  # highest position (e.g. +16)
    tap0: IntArray  # position at import (after the compile's own snapshot, if any)
    y_prim_by_tap: list[ComplexArray]
    node_idx: list[IntArray]  # the transformer's conductors, as BranchTable.node_idx
    # RegControl settings, in OpenDSS's units (volts on the 120 V PT secondary base, amperes)
    vreg_v: FloatArray
    band_v: FloatArray
    pt_ratio: FloatArray
    ct_primary_a: FloatArray
    r_ldc_v: FloatArray
    x_ldc_v: FloatArray
    pt_phase: IntArray  # 1-based monitored phase; 0 = max, -1 = min (OpenDSS ptphase=max/min)
    monitored_node_idx: list[IntArray]  # nodes the PT reads (winding terminal or bus=)
    ct_conductor: IntArray  # position in node_idx of the conductor whose current the CT reads
    max_tap_change: IntArray
    reversible: BoolArray
    rev_vreg_v: FloatArray
    rev_band_v: FloatArray
    rev_r_ldc_v: FloatArray
    rev_x_ldc_v: FloatArray
    vlimit_v: FloatArray  # 0 = none
    delay_s: FloatArray  # RegControl delay: orders actions within a static control iteration
    winding_delta: BoolArray  # connection of the monitored winding
    winding_base_v: FloatArray  # OpenDSS BaseVoltage of the monitored winding (volts)

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class CapacitorTable:
    """Shunt capacitors with optional CapControl (one row per capacitor).

    ``y_prim_by_steps[c]`` (numsteps + 1, K, K): the primitive admittance with 0..numsteps steps
    closed. ``state0`` is the number of closed steps at import. ``y_fixed`` holds none of them.
    """

    names: list[str]  # "capacitor.<name>"
    node_idx: list[IntArray]
    y_prim_by_steps: list[ComplexArray]
    n_steps: IntArray
    state0: IntArray
    kvar: FloatArray  # total rated kvar
    # CapControl (empty string / NaN when the capacitor has none)
    control_name: list[str]
    control_type: list[str]  # "voltage", "current", "kvar", "pf", "time", "" (none)
    on_setting: FloatArray
    off_setting: FloatArray
    pt_ratio: FloatArray
    ct_ratio: FloatArray
    monitored_element: list[str]  # "class.name"
    monitored_terminal: IntArray  # 1-based
    monitored_node_idx: list[IntArray]  # nodes of the monitored terminal (phase conductors)
    monitored_branch_idx: IntArray  # row in BranchTable of the monitored element, -1 if none
    pt_phase: IntArray  # 1-based; 0 = max, -1 = min, -2 = average (OpenDSS MAX, MIN, AVG)
    ct_phase: IntArray
    volt_override: BoolArray
    vmin_v: FloatArray
    vmax_v: FloatArray
    delay_on_s: FloatArray
    delay_off_s: FloatArray
    dead_time_s: FloatArray
    delta: BoolArray  # capacitor connection (delta capacitors control on L-L voltage)

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class LoadTable:
    """Loads as column arrays, OpenDSS semantics (see ``Load.pas`` behaviour in [1]_).

    ``node_idx`` (n, 4): conductors of the load, ``-1`` padding/ground; a wye load's last
    conductor is its neutral (``n_phases + 1`` conductors), a delta load has ``n_phases``
    conductors (``n_phases + 1`` for 1- and 2-phase delta, OpenDSS's L-L / open delta).
    ``kw``/``kvar`` are totals at ``v_base_v`` before shapes and ``loadmult``.
    """

    names: list[str]
    node_idx: IntArray
    n_phases: IntArray
    n_conds: IntArray
    delta: BoolArray
    model: IntArray
    kw: FloatArray
    kvar: FloatArray
    kv: FloatArray  # the load's kV (L-L for 2-/3-phase and delta, L-N for 1-phase wye)
    v_base_v: FloatArray  # per-phase base voltage OpenDSS uses (L-L delta, L-N wye)
    vminpu: FloatArray
    vmaxpu: FloatArray
    vlowpu: FloatArray
    cvr_watts: FloatArray
    cvr_vars: FloatArray
    fixed: BoolArray  # status=fixed: no shape, no loadmult
    yearly: list[str]  # load-shape name or ""
    daily: list[str]

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class PVTable:
    """PV systems (OpenDSS ``PVSystem``) as column arrays.

    Output before inverter functions: ``pmpp_kw * irradiance * shape(t)`` limited to ``kva``;
    reactive power from ``pf`` or ``kvar``. Treated as a constant-power source between
    ``vminpu`` and ``vmaxpu`` and a constant impedance outside, as OpenDSS does.
    """

    names: list[str]
    node_idx: IntArray  # (n, 4) like LoadTable
    n_phases: IntArray
    n_conds: IntArray
    delta: BoolArray
    kv: FloatArray
    v_base_v: FloatArray
    pmpp_kw: FloatArray
    kva: FloatArray
    irradiance: FloatArray
    pf: FloatArray
    kvar: FloatArray
    pf_specified: BoolArray
    vminpu: FloatArray
    vmaxpu: FloatArray
    yearly: list[str]
    daily: list[str]
    cutin_pct: FloatArray  # inverter turns on above this % of kVA (OpenDSS %cutin)
    cutout_pct: FloatArray  # and off below this (OpenDSS %cutout)

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class StorageTable:
    """Storage elements (kept for studies; the time-series solver treats them as idle)."""

    names: list[str]
    node_idx: IntArray
    n_phases: IntArray
    kw_rated: FloatArray
    kwh_rated: FloatArray
    kv: FloatArray

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class Network:
    """A feeder as a node-phase admittance model plus its time-varying injections.

    Build one with :func:`gridflex.network.load_network`.
    """

    name: str
    source_file: str
    node_names: list[str]  # "bus.phase", lower case, OpenDSS YNodeOrder
    node_base_kv: FloatArray  # L-N base kV of each node (OpenDSS Bus.kVBase)
    bus_names: list[str]
    node_bus: IntArray  # index into bus_names of each node
    bus_x: FloatArray  # NaN where the model has no coordinates
    bus_y: FloatArray
    y_fixed: sp.csc_matrix
    source: SourceModel
    branches: BranchTable
    regulators: RegulatorTable
    capacitors: CapacitorTable
    loads: LoadTable
    pv: PVTable
    storage: StorageTable
    loadshapes: dict[str, LoadShape]
    frequency_hz: float = 60.0
    load_mult: float = 1.0
    #: the default step of the model's own profiles (hourly for OpenDSS yearly shapes)
    profile_step_h: float = 1.0
    #: notes from the importer (assumptions, elements ignored), shown by the CLI
    notes: list[str] = field(default_factory=list)
    kind: Literal["opendss", "pandapower"] = "opendss"

    @property
    def n_nodes(self) -> int:
        """Number of node-phases."""
        return len(self.node_names)

    def node_index(self, name: str) -> int:
        """Index of node ``bus.phase`` (case-insensitive)."""
        try:
            return self.node_names.index(name.lower())
        except ValueError:
            from gridflex.errors import NotFoundError

            raise NotFoundError(
                f"node {name!r} is not in network {self.name!r}; node names are 'bus.phase' "
                "in lower case, e.g. 'n1.1'"
            ) from None
