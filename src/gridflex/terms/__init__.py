"""Connection terms: the agreed limits every later stage shares (ARCHITECTURE.md, the spine).

This package imports nothing else of gridflex; everything above it may import it.
"""

from gridflex.terms.model import (
    AllocationPolicy,
    ConnectionTerms,
    DynamicClass,
    StaggerPhase,
    VoltWattCurve,
)

__all__ = ["AllocationPolicy", "ConnectionTerms", "DynamicClass", "StaggerPhase", "VoltWattCurve"]
