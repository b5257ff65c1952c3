"""Read applications from YAML or JSON with errors that name the field and the fix."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from gridflex.application.model import Application
from gridflex.errors import InputError

_UNIT_HINTS = {
    "_kw": "kW",
    "_kva": "kVA",
    "_kwh": "kWh",
    "_v": "volts",
    "_a": "amperes",
    "_hz": "hertz",
    "_s": "seconds",
    "_cycles": "cycles",
    "_in": "inches",
    "_ft": "feet",
    "_pu": "per unit",
    "_pct": "percent",
}


def _loc_text(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _field_names(loc: tuple[int | str, ...]) -> list[str]:
    """Field names allowed at the model that contains ``loc[-1]`` (best effort)."""
    from gridflex.application import model as m

    kinds: dict[str, type[BaseModel]] = {
        "pv": m.PVResource,
        "storage": m.StorageResource,
        "synchronous": m.SynchronousResource,
        "other_generation": m.OtherGeneration,
        "load": m.NewLoad,
    }
    model: Any = Application
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if part in kinds:
            model = kinds[str(part)]
            continue
        if isinstance(model, type) and issubclass(model, BaseModel):
            if part in model.model_fields:
                model = model.model_fields[part].annotation
            else:
                # a union member tag (e.g. resources[0].pv): pick the member by its kind
                return []
        model = _unwrap(model, part)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _unwrap(annotation: Any, tag: str | int) -> Any:
    """Strip Optional / tuple / Annotated down to one model class where possible."""
    for _ in range(6):
        origin = get_origin(annotation)
        if origin is None:
            return annotation
        args = [a for a in get_args(annotation) if a is not type(None) and a is not Ellipsis]
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
        if not args:
            return annotation
        annotation = args[0]
    return annotation


def _describe(err: Any) -> str:
    loc = tuple(err["loc"])
    # drop union tags that pydantic puts in the location ("resources.0.pv.ac_kw")
    clean = tuple(p for p in loc if not (isinstance(p, str) and p in _KINDS))
    where = _loc_text(clean)
    kind = err["type"]
    given = err.get("input")
    if kind == "extra_forbidden":
        allowed = _field_names(loc)
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        return f"{where}: unknown field{hint}"
    if kind == "missing":
        return f"{where}: required field or section is missing"
    if kind in {"float_parsing", "float_type", "int_parsing", "int_type"}:
        name = str(clean[-1]) if clean else ""
        unit = next((u for s, u in _UNIT_HINTS.items() if name.endswith(s)), None)
        unit_hint = (
            f"; the unit ({unit}) is in the field name, write the number alone" if unit else ""
        )
        return f"{where}: {given!r} is not a number{unit_hint}"
    if kind == "union_tag_invalid":
        return f"{where}: kind {err['ctx'].get('tag')!r} is unknown; use one of {', '.join(_KINDS)}"
    if kind == "union_tag_not_found":
        return f"{where}: each resource needs a 'kind' ({', '.join(_KINDS)})"
    msg = str(err["msg"]).removeprefix("Value error, ")
    shown = kind.startswith("literal") or kind == "enum"
    return f"{where}: {msg}" + (f" (given {given!r})" if shown else "")


_KINDS = ("pv", "storage", "synchronous", "other_generation", "load")


def parse_application(data: Any, origin: str = "application") -> Application:
    """Validate a mapping (already parsed YAML/JSON) as an :class:`Application`.

    Raises
    ------
    InputError
        Naming every bad field: unknown fields, values with units where a number is expected,
        missing required sections.
    """
    if not isinstance(data, dict):
        raise InputError(
            f"{origin}: an application must be a mapping of sections, got {type(data).__name__}",
            "start from the example: gridflex check --show-example",
        )
    try:
        return Application.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        nested = {e["loc"][0] for e in errors if len(e["loc"]) > 1}
        # a bad resource also makes pydantic report the list as too short: say it once
        errors = [e for e in errors if not (e["type"] == "too_short" and e["loc"][0] in nested)]
        problems = "; ".join(_describe(e) for e in errors)
        raise InputError(f"{origin}: {problems}", "correct the named fields") from exc


def read_application(path: str | Path) -> Application:
    """Read an application from a ``.yaml``/``.yml`` or ``.json`` file."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"application file {p} does not exist", "give the path of a YAML/JSON file"
        )
    text = p.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: cannot be parsed ({exc})", "fix the file's syntax") from exc
    return parse_application(data, str(p))


def example_text() -> str:
    """The YAML text of the example application shipped with gridflex."""
    return (resources.files("gridflex.application") / "data" / "example.yaml").read_text(
        encoding="utf-8"
    )


def example_application() -> Application:
    """The example application shipped with gridflex (exercises every built-in rule set)."""
    import yaml

    return parse_application(yaml.safe_load(example_text()), "gridflex example application")


def application_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Application` (published as docs/schemas/application.json)."""
    return Application.model_json_schema()
