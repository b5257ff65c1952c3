"""Bulk registration from one YAML/JSON file (``gridflex registry import FILE``).

Loads aggregators, sites with their service points and DER, connection terms (inline or from
files beside the import file) and programs in ONE transaction: a bad entry anywhere stores
nothing, and the error names the entry's path in the file (``sites[0].ders[1].nameplate_kw``).
References between entries are by name: a DER's ``aggregator`` is an aggregator name, its
``service_point`` a service point number of its site, a program's ``members`` are DER names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from gridflex.derms import registry as reg
from gridflex.derms.models import ConstraintKind, DerType
from gridflex.errors import GridflexError, InputError
from gridflex.terms import ConnectionTerms


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AggregatorEntry(_Strict):
    """An aggregator to register."""

    name: str = Field(min_length=1)
    lfdi: str | None = None
    sfdi: int | None = Field(default=None, ge=0)
    contact: str = ""


class ServicePointEntry(_Strict):
    """A service point of a site."""

    number: str = Field(min_length=1)
    meter_number: str = ""
    service_voltage_ll_v: float | None = Field(default=None, gt=0)
    phases: str = ""
    feeder: str = ""
    transformer: str = ""


class DerEntry(_Strict):
    """A DER of a site (registered in state ``applied``)."""

    name: str = Field(min_length=1, description="Unique within the file (programs refer to it).")
    der_type: DerType
    nameplate_kw: float = Field(gt=0, allow_inf_nan=False)
    nameplate_kva: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    energy_kwh: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    aggregator: str | None = Field(default=None, description="Aggregator name.")
    service_point: str | None = Field(default=None, description="Service point number.")
    lfdi: str | None = None
    sfdi: int | None = Field(default=None, ge=0)
    inverter_settings: dict[str, Any] = Field(default_factory=dict)
    telemetry: dict[str, Any] = Field(default_factory=dict)
    feeder: str = ""
    transformer: str = ""
    phase: str = ""
    connection_id: str | None = None


class SiteEntry(_Strict):
    """A site with its service points and DER."""

    name: str = Field(min_length=1)
    address: str = ""
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    customer: str = ""
    service_points: list[ServicePointEntry] = Field(default_factory=list)
    ders: list[DerEntry] = Field(default_factory=list)


class TermsFileEntry(_Strict):
    """Terms read from a JSON/YAML file (relative to the import file)."""

    file: str
    agreed: bool = False
    note: str = ""


class ProgramEntry(_Strict):
    """A program and its member DER (by name)."""

    name: str = Field(min_length=1)
    constraint_kind: ConstraintKind
    constraint_element: str = Field(min_length=1)
    capacity_kw: float | None = Field(default=None, ge=0)
    description: str = ""
    members: list[str] = Field(default_factory=list)


class RegistryFile(_Strict):
    """The whole import file."""

    aggregators: list[AggregatorEntry] = Field(default_factory=list)
    sites: list[SiteEntry] = Field(default_factory=list)
    terms: list[TermsFileEntry | ConnectionTerms] = Field(default_factory=list)
    programs: list[ProgramEntry] = Field(default_factory=list)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"TermsFileEntry", "ConnectionTerms"}:
            out += f" (as {part})"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def read_registry_file(path: str | Path) -> RegistryFile:
    """Parse and validate an import file, naming the path of every problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise InputError(f"{p}: cannot be read ({exc})", "give a YAML or JSON file") from exc
    try:
        return RegistryFile.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()[:8])
        raise InputError(f"{p}: {problems}", "correct the named entries") from exc


def import_registry(
    session: Session, source: str | Path | RegistryFile, *, actor: str
) -> dict[str, int]:
    """Register everything in an import file; returns how many of each were added.

    Runs inside the caller's transaction; any error (re-raised naming the entry) should roll it
    back, which ``gridflex registry import`` does.
    """
    base = Path(source).parent if not isinstance(source, RegistryFile) else Path.cwd()
    doc = source if isinstance(source, RegistryFile) else read_registry_file(source)
    counts = dict.fromkeys(
        ("aggregators", "sites", "service_points", "ders", "terms", "programs"), 0
    )

    def where(path: str, exc: GridflexError) -> GridflexError:
        """The same kind of error, prefixed with the entry's path in the file."""
        if isinstance(exc, InputError):
            return InputError(f"{path}: {exc}")
        return type(exc)(f"{path}: {exc}")

    agg_ids: dict[str, int] = {}
    for i, a in enumerate(doc.aggregators):
        try:
            agg_ids[a.name] = reg.add_aggregator(
                session, name=a.name, lfdi=a.lfdi, sfdi=a.sfdi, contact=a.contact
            ).id
        except GridflexError as exc:
            raise where(f"aggregators[{i}]", exc) from exc
        counts["aggregators"] += 1
    der_ids: dict[str, int] = {}
    for i, s in enumerate(doc.sites):
        try:
            site = reg.add_site(
                session, name=s.name, address=s.address, latitude=s.latitude,
                longitude=s.longitude, customer=s.customer,
            )  # fmt: skip
        except GridflexError as exc:
            raise where(f"sites[{i}]", exc) from exc
        counts["sites"] += 1
        sp_ids: dict[str, int] = {}
        for j, sp in enumerate(s.service_points):
            try:
                sp_ids[sp.number] = reg.add_service_point(
                    session, site_id=site.id, **sp.model_dump()
                ).id
            except GridflexError as exc:
                raise where(f"sites[{i}].service_points[{j}]", exc) from exc
            counts["service_points"] += 1
        for j, d in enumerate(s.ders):
            path = f"sites[{i}].ders[{j}]"
            if d.name in der_ids:
                raise InputError(f"{path}: DER name {d.name!r} is used twice", "make names unique")
            agg_id = None
            if d.aggregator is not None:
                agg_id = agg_ids.get(d.aggregator)
                if agg_id is None:
                    found = [a for a in reg.list_aggregators(session) if a.name == d.aggregator]
                    if not found:
                        raise InputError(
                            f"{path}.aggregator: no aggregator named {d.aggregator!r}",
                            "list it under aggregators: or register it first",
                        )
                    agg_id = found[0].id
            sp_id = None
            if d.service_point is not None:
                sp_id = sp_ids.get(d.service_point)
                if sp_id is None:
                    raise InputError(
                        f"{path}.service_point: site {s.name!r} has no service point "
                        f"{d.service_point!r}",
                        "list it under the site's service_points:",
                    )
            fields = d.model_dump(exclude={"aggregator", "service_point"})
            fields["der_type"] = d.der_type.value
            try:
                der = reg.add_der(
                    session, site_id=site.id, aggregator_id=agg_id, service_point_id=sp_id,
                    actor=actor, **fields,
                )  # fmt: skip
            except GridflexError as exc:
                raise where(path, exc) from exc
            der_ids[d.name] = der.id
            counts["ders"] += 1
    for i, t in enumerate(doc.terms):
        path = f"terms[{i}]"
        agreed, note = False, ""
        if isinstance(t, TermsFileEntry):
            agreed, note = t.agreed, t.note
            file = (base / t.file) if not Path(t.file).is_absolute() else Path(t.file)
            try:
                t = ConnectionTerms.from_file(file)
            except (OSError, ValueError) as exc:
                raise InputError(f"{path}: {file}: {exc}", "fix the terms file") from exc
        try:
            reg.add_terms(session, t, actor=actor, agreed=agreed, note=note)
        except GridflexError as exc:
            raise where(path, exc) from exc
        counts["terms"] += 1
    for i, pr in enumerate(doc.programs):
        path = f"programs[{i}]"
        try:
            prog = reg.add_program(
                session, name=pr.name, constraint_kind=pr.constraint_kind.value,
                constraint_element=pr.constraint_element, capacity_kw=pr.capacity_kw,
                description=pr.description,
            )  # fmt: skip
        except GridflexError as exc:
            raise where(path, exc) from exc
        for name in pr.members:
            if name not in der_ids:
                raise InputError(
                    f"{path}.members: no DER named {name!r} in this file",
                    "members are names of DER listed under sites[].ders[]",
                )
            reg.add_program_member(session, prog.id, der_ids[name], actor=actor)
        counts["programs"] += 1
    return counts
