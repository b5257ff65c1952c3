"""The interconnection application: one schema for all of gridflex (issue 3).

Layer: the pydantic model (:mod:`gridflex.application.model`) and its YAML/JSON reader with
errors that name the field (:mod:`gridflex.application.io`). Depends only on ``gridflex.terms``.
Study work extends this schema with optional sections; nothing defines a second one.
"""

from __future__ import annotations

from gridflex.application.io import (
    application_json_schema,
    example_application,
    example_text,
    parse_application,
    read_application,
)
from gridflex.application.model import (
    Application,
    CTSet,
    ExistingLoad,
    GeneratorMetering,
    InverterSettings,
    MeteringDesign,
    NetworkData,
    NewLoad,
    OtherGeneration,
    PointOfInterconnection,
    ProtectionSettings,
    PTSet,
    PVResource,
    RelayElement,
    Service,
    ServiceConfiguration,
    Site,
    StorageResource,
    SynchronousResource,
)

__all__ = [
    "Application",
    "CTSet",
    "ExistingLoad",
    "GeneratorMetering",
    "InverterSettings",
    "MeteringDesign",
    "NetworkData",
    "NewLoad",
    "OtherGeneration",
    "PTSet",
    "PVResource",
    "PointOfInterconnection",
    "ProtectionSettings",
    "RelayElement",
    "Service",
    "ServiceConfiguration",
    "Site",
    "StorageResource",
    "SynchronousResource",
    "application_json_schema",
    "example_application",
    "example_text",
    "parse_application",
    "read_application",
]
