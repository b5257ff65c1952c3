"""Reference runs of OpenDSS itself (through dss-python) for the agreement tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Reference:
    node_names: list[str]
    v_pu: np.ndarray  # T x N, in the order of node_names
    taps: np.ndarray  # T x R (RegControl TapNumber)
    cap_states: np.ndarray  # T x C (closed steps)
    pv_kw: np.ndarray  # T x n_pv


def run_opendss(
    master: Path,
    steps: int,
    controls: str,
    *,
    max_control_iter: int = 10,
) -> Reference:
    """OpenDSS yearly mode, one hourly step at a time; tolerance tightened to 1e-9."""
    from dss import DSS

    d = DSS.NewContext()
    d.Text.Command = f'compile "{master}"'
    d.Text.Command = "set tolerance=1e-9"
    d.Text.Command = "set maxiterations=500"
    d.Text.Command = f"set maxcontroliter={max_control_iter}"
    c = d.ActiveCircuit
    if controls == "off":
        c.Solution.Solve()
        d.Text.Command = "set controlmode=off"
    else:
        d.Text.Command = "set controlmode=static"
    d.Text.Command = "set mode=yearly number=1 stepsize=1h"
    names = [s.lower() for s in c.YNodeOrder]
    base = np.array([0.0] * len(names))
    for k, nm in enumerate(names):
        c.SetActiveBus(nm.split(".")[0])
        base[k] = c.ActiveBus.kVBase * 1000.0
    v_out, taps, caps, pv = [], [], [], []
    for _ in range(steps):
        c.Solution.Solve()
        v = np.asarray(c.YNodeVarray)
        v_out.append(np.abs(v[0::2] + 1j * v[1::2]) / base)
        row = []
        i = c.RegControls.First
        while i > 0:
            row.append(c.RegControls.TapNumber)
            i = c.RegControls.Next
        taps.append(row)
        crow = []
        i = c.Capacitors.First
        while i > 0:
            crow.append(int(sum(c.Capacitors.States)))
            i = c.Capacitors.Next
        caps.append(crow)
        prow = []
        i = c.PVSystems.First
        while i > 0:
            prow.append(-float(np.sum(np.asarray(c.ActiveCktElement.Powers)[0::2])))
            i = c.PVSystems.Next
        pv.append(prow)
    return Reference(
        node_names=names,
        v_pu=np.array(v_out),
        taps=np.array(taps, dtype=np.int64).reshape(steps, -1),
        cap_states=np.array(caps, dtype=np.int64).reshape(steps, -1),
        pv_kw=np.array(pv, dtype=float).reshape(steps, -1),
    )


def year_master(
    tmp: Path, master: Path, shape_csv: Path | None, extra: tuple[str, ...] = ()
) -> Path:
    """A wrapper master: the feeder, plus (optionally) one yearly shape for every load.

    This is how OpenDSS users run the IEEE feeders over a year (shared feeders README).
    """
    lines = [f'Redirect "{master}"']
    if shape_csv is not None:
        lines.append(
            f"New Loadshape.ls1 npts=8760 interval=1 mult=(file={shape_csv}) action=normalize"
        )
        lines.append("batchedit load..* yearly=ls1")
    lines += list(extra)
    out = tmp / f"year_{master.stem}.dss"
    out.write_text("\n".join(lines) + "\n")
    return out
