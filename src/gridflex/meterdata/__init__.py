"""Meter data the way the utility sends it.

One job: turn utility meter data exchanges into tidy, timezone-aware UTC series (and back), and
hold the retail-access rules that go with them. Sources: 003_bfb20267a3df903e.txt (Ameren,
Resources for Retail Electric Suppliers: FAQ) and 000_9d43a5ca67169be9.txt (BTM production
metering requirements, sign convention).

* :mod:`~gridflex.meterdata.edi867` - X12 867 interval usage read / write (DST days, split
  boundary hours, subtractive and unmetered meters).
* :mod:`~gridflex.meterdata.x12` - tokenizing (``ansi-x12``) and envelope checks.
* :mod:`~gridflex.meterdata.timecodes` - X12 time codes and the elapsed-hours rule.
* :mod:`~gridflex.meterdata.billing` - billing windows, enrollment dates, single-billing option.
* :mod:`~gridflex.meterdata.losses` - dynamic distribution loss factors.
* :mod:`~gridflex.meterdata.sign` - production-meter sign check (reversed CTs).
"""

from __future__ import annotations

from gridflex.meterdata.edi867 import (
    Edi867,
    Edi867Header,
    check_intervals,
    combine_867,
    read_867,
    write_867,
)
from gridflex.meterdata.x12 import Envelope

__all__ = [
    "Edi867",
    "Edi867Header",
    "Envelope",
    "check_intervals",
    "combine_867",
    "read_867",
    "write_867",
]
