"""SQLAlchemy models of the IEEE 2030.5 resources on the registry's ``Base`` (migration 0002)."""

from gridflex.sep2.persistence.models import (
    SITE_PROGRAM_KEY,
    ControlResponse,
    DerControl,
    DerInfo,
    DerProgram,
    EndDevice,
    MirrorMeterReading,
    MirrorUsagePoint,
    Notification,
    Reading,
    Registration,
    Subscription,
)

__all__ = [
    "SITE_PROGRAM_KEY",
    "ControlResponse",
    "DerControl",
    "DerInfo",
    "DerProgram",
    "EndDevice",
    "MirrorMeterReading",
    "MirrorUsagePoint",
    "Notification",
    "Reading",
    "Registration",
    "Subscription",
]
