"""Network models: the node-phase admittance model and its importers (no solving here).

* :mod:`gridflex.network.model` — :class:`Network` and its tables.
* :mod:`gridflex.network.opendss` — OpenDSS ``.dss`` models through dss-python.
* :func:`load_network` — one entry point: a ``.dss`` master path (or ``simbench:<code>``,
  dispatched to the pandapower/SimBench importer when it is present).
"""

from __future__ import annotations

from pathlib import Path

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

__all__ = [
    "BranchTable",
    "CapacitorTable",
    "LoadShape",
    "LoadTable",
    "Network",
    "PVTable",
    "RegulatorTable",
    "SourceModel",
    "StorageTable",
    "load_network",
]


def load_network(source: str | Path) -> Network:
    """Load a network from an OpenDSS master file (``.dss``) or ``simbench:<code>``.

    Parameters
    ----------
    source:
        Path of an OpenDSS master file, or ``"simbench:<code>"`` for a SimBench grid.

    Raises
    ------
    gridflex.errors.InputError
        Missing file, a syntax error in the model, an unknown load shape, an islanded node; the
        message names the file/element and the fix.
    """
    text = str(source)
    if text.lower().startswith("simbench:"):
        from gridflex.network import pandapower_import

        return pandapower_import.load_simbench(text.split(":", 1)[1])
    from gridflex.network.opendss import load_opendss

    return load_opendss(Path(source))
