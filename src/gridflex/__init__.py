"""gridflex: flexible interconnection and DER orchestration on unbalanced distribution grids.

The module map follows ARCHITECTURE.md: ``terms`` (the connection-terms spine), ``application``,
``network`` (feeder models), ``powerflow`` (batched time-series solver), ``rules``, ``study``,
``doe``, ``derms`` (registry), ``sep2`` (IEEE 2030.5 server), ``orchestration``, ``meterdata``
and ``cli``. Importing ``gridflex`` imports none of them, so each stays cheap to load.
"""

__version__ = "0.1.0"
