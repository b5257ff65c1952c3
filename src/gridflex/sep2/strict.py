"""Strict IEEE 2030.5 validation of a parsed document: what a certified server's XSD check refuses.

envoy-schema's pydantic-xml models mirror ``sep.xsd`` (one model per complex type, fields in the
order of the XSD sequence, base type's fields first), but they parse leniently: their search mode
is ``unordered``, unknown elements and attributes are ignored, and most integers are plain
``int``. :func:`check` walks the lxml tree against a structure compiled once per model class
from pydantic-xml's own serializer tree (so the element names are exactly those the model
reads) and refuses

- an element the type does not declare there (unknown, misplaced in the wrong parent, or from a
  foreign namespace — CSIP-AUS elements are declared only where the profile defines them);
- an element out of sequence order, or repeated where the XSD allows one;
- a missing required element or attribute, an undeclared attribute;
- text inside an element that holds only elements, elements or attributes inside a simple one;
- a value outside its XSD type: integer lexical form and range (:mod:`gridflex.sep2.xsdtypes`),
  ``xs:boolean`` (``true``/``false``/``1``/``0`` only), hexBinary (pairs of hex digits, at most
  the type's octets), string ``maxLength``, and the enumerations envoy types as ``IntEnum``.

The first violation raises :class:`StrictViolationError` naming the element path
(``Parent/child[2]``) and the fix. Nothing is built on success: paths are computed from the
element's ancestors only when a violation is reported.

Why a separate walk and not pydantic-xml's ``extra='forbid'`` with ``search_mode='strict'``:
those are per-model settings, and the envoy models set their search mode in
``__init_subclass__``; strict variants would mean re-declaring every nested model (a parallel
class tree to keep in step with envoy), and pydantic-xml still has no XSD ranges or lexical
forms. The walk is one pass over the tree with dictionary look-ups, cheaper than the model
validation it precedes (``bench/sep2_strict.py``).
"""

from __future__ import annotations

import enum
import inspect
import re
import threading
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from envoy_schema.server.schema.sep2 import der as der_schema
from envoy_schema.server.schema.sep2.end_device import (
    EndDeviceListResponse,
    EndDeviceRequest,
    EndDeviceResponse,
)
from envoy_schema.server.schema.sep2.function_set_assignments import (
    FunctionSetAssignmentsListResponse,
)
from envoy_schema.server.schema.sep2.metering_mirror import (
    MirrorMeterReadingList,
    MirrorMeterReadingListRequest,
)
from envoy_schema.server.schema.sep2.pub_sub import NotificationResourceCombined
from lxml import etree  # type: ignore[import-untyped]
from pydantic_xml import BaseXmlModel
from pydantic_xml.serializers.factories import homogeneous, primitive
from pydantic_xml.serializers.factories import model as model_serializers

from gridflex.sep2 import xsdtypes
from gridflex.sep2.xsdtypes import SimpleType

SEP2_NS = "urn:ieee:std:2030.5:ns"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSI_TYPE = "{" + XSI_NS + "}type"
ALWAYS_ALLOWED_ATTRIBUTES = frozenset(
    {"{" + XSI_NS + "}schemaLocation", "{" + XSI_NS + "}noNamespaceSchemaLocation"}
)
"""XML Schema lets these hints stand on any element of an instance document (XSD part 1,
section 3.4.4, "xsi: attributes are always allowed")."""
_WS = " \t\r\n"
"""XSD whitespace (collapsed for numbers, booleans and hexBinary)."""
_MAX_INT_DIGITS = 25
"""Longer integer literals are out of every 2030.5 range; refused before ``int()`` sees them."""

STRUCTURE_OF: dict[type[BaseXmlModel], type[BaseXmlModel]] = {
    EndDeviceRequest: EndDeviceResponse,
    MirrorMeterReadingListRequest: MirrorMeterReadingList,
}
"""Request models that declare only what the server reads of an XSD type; the document is checked
against the full type (e.g. an EndDevice may carry its RegistrationLink), then parsed by the
request model, which ignores what it does not need."""
OPTIONAL_ATTRIBUTES: dict[type[BaseXmlModel], frozenset[str]] = {
    MirrorMeterReadingList: frozenset({"all", "results"}),
}
"""``List/@all`` and ``@results`` are required by sep.xsd but describe a page the *server*
returns; envoy's request model for a posted MirrorMeterReadingList leaves them out
(``metering_mirror.MirrorMeterReadingListRequest``) and so do deployed CSIP-AUS clients."""
XSI_TYPE_MODELS: dict[type[BaseXmlModel], dict[str, type[BaseXmlModel]]] = {
    NotificationResourceCombined: {
        "DERControlList": der_schema.DERControlListResponse,
        "DefaultDERControl": der_schema.DefaultDERControl,
        "DERProgramList": der_schema.DERProgramListResponse,
        "EndDeviceList": EndDeviceListResponse,
        "FunctionSetAssignmentsList": FunctionSetAssignmentsListResponse,
        "DERAvailability": der_schema.DERAvailability,
        "DERCapability": der_schema.DERCapability,
        "DERSettings": der_schema.DERSettings,
        "DERStatus": der_schema.DERStatus,
    },
}
"""Elements whose type is chosen by ``xsi:type`` (Notification/Resource): envoy parses them with
one combined model; the strict check uses the named type's own sequence."""

ValueCheck = Callable[[str | None], str | None]
"""Returns what is wrong with a value (``None`` when it is valid)."""


class StrictViolationError(ValueError):
    """A document that does not validate; ``path`` names the element, ``fix`` the remedy."""

    def __init__(self, path: str, problem: str, fix: str) -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        super().__init__(f"{path}: {problem}")


@dataclass(slots=True, eq=False)
class _Child:
    tag: str
    label: str
    pos: int
    repeat: bool
    required: bool
    complex: _Type | None = None
    simple: ValueCheck | None = None
    simple_type: str = ""
    by_xsi_type: dict[str, _Type] | None = None


@dataclass(slots=True, eq=False)
class _Type:
    name: str
    children: dict[str, _Child] = field(default_factory=dict)
    sequence: list[_Child] = field(default_factory=list)
    attrs: dict[str, ValueCheck] = field(default_factory=dict)
    required_attrs: list[str] = field(default_factory=list)
    n_required: int = 0
    xsi_types: frozenset[str] = frozenset()
    """Type names ``xsi:type`` may give (empty: only the type's own name)."""
    untyped: list[str] = field(default_factory=list)
    """Fields typed only ``int``/``str`` with no :data:`xsdtypes.ELEMENT_TYPES` entry."""


# ---- value checks -------------------------------------------------------------------------------
_INT = re.compile(r"[+-]?[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]*")
_BOOLEAN = frozenset({"true", "false", "1", "0"})
_checks: dict[tuple[SimpleType, type[enum.Enum] | None], ValueCheck] = {}


def _value_check(t: SimpleType, enum_cls: type[enum.Enum] | None = None) -> ValueCheck:
    key = (t, enum_cls)
    if key in _checks:
        return _checks[key]
    check: ValueCheck
    if t.kind == "int":
        lo, hi = t.lo, t.hi
        allowed = frozenset(int(m.value) for m in enum_cls) if enum_cls is not None else None
        name = enum_cls.__name__ if enum_cls is not None else t.name
        listed = ", ".join(str(v) for v in sorted(allowed)) if allowed else ""

        def check(text: str | None) -> str | None:
            s = (text or "").strip(_WS)
            if not _INT.fullmatch(s):
                return f"{text or ''!r} is not an integer ({name})"
            if len(s) > _MAX_INT_DIGITS:
                return f"{s} is out of range for {name}"
            v = int(s)
            if lo is not None and hi is not None and not lo <= v <= hi:
                return f"{v} is out of range for {t.name} ({lo}..{hi})"
            if allowed is not None and v not in allowed:
                return f"{v} is not a {name} value (allowed: {listed})"
            return None

    elif t.kind == "bool":

        def check(text: str | None) -> str | None:
            if (text or "").strip(_WS) in _BOOLEAN:
                return None
            return f"{text or ''!r} is not an xs:boolean (true, false, 1 or 0)"

    elif t.kind == "hex":
        octets = t.max_len or 0

        def check(text: str | None) -> str | None:
            s = (text or "").strip(_WS)
            if not s:
                return f"empty value; {t.name} needs hex digits"
            if not _HEX.fullmatch(s):
                return f"{s!r} is not hexBinary (digits 0-9, A-F)"
            if len(s) % 2:
                return f"{s!r} has an odd number of hex digits (hexBinary is whole octets)"
            if len(s) // 2 > octets:
                return f"{s!r} is {len(s) // 2} octets, longer than {t.name} ({octets} octets)"
            return None

    else:
        max_len = t.max_len

        def check(text: str | None) -> str | None:
            if max_len is not None and text is not None and len(text) > max_len:
                return f"{len(text)} characters, longer than {t.name} ({max_len})"
            return None

    _checks[key] = check
    return check


# ---- compiling a model's structure --------------------------------------------------------------
def _unwrap(annotation: object) -> tuple[object, list[object]]:
    """The value type of a field annotation (``X | None``, ``list[X]``, ``Annotated[X, ...]``
    stripped) and the ``Annotated`` metadata found on the way (envoy's ``HexBinary128``, …)."""
    metadata: list[object] = []
    for _ in range(4):
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            metadata.extend(getattr(annotation, "__metadata__", ()))
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                break
            annotation = args[0]
        elif origin in (list, typing.List):  # noqa: UP006
            annotation = typing.get_args(annotation)[0]
        else:
            break
    return annotation, metadata


def _declaring_class(model: type[BaseXmlModel], name: str) -> str:
    for cls in model.__mro__:
        if name in inspect.get_annotations(cls):
            return cls.__name__
    return model.__name__


def _simple_type_of(model: type[BaseXmlModel], name: str, owner: _Type) -> tuple[ValueCheck, str]:
    info = model.model_fields[name]
    annotation, metadata = _unwrap(info.annotation)
    table = xsdtypes.ELEMENT_TYPES.get(_declaring_class(model, name), {})
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        t = table.get(name, xsdtypes.INT64)
        return _value_check(t, annotation), annotation.__name__
    if annotation is bool:
        return _value_check(xsdtypes.BOOLEAN), "boolean"
    for meta in [*info.metadata, *metadata]:
        fn = getattr(getattr(meta, "func", None), "__name__", "")
        for prefix, types_by_size in (
            ("validate_HexBinary", xsdtypes.HEX_BITS),
            ("validate_String", xsdtypes.STRING_LENGTHS),
        ):
            size = fn[len(prefix) :]
            if fn.startswith(prefix) and size.isdigit() and int(size) in types_by_size:
                t = types_by_size[int(size)]
                return _value_check(t), t.name
    if name in table:
        return _value_check(table[name]), table[name].name
    if annotation is int:
        owner.untyped.append(f"{_declaring_class(model, name)}.{name}")
        return _value_check(xsdtypes.INT64), "Int64"
    if annotation is str:
        return _value_check(xsdtypes.STRING), "string"
    owner.untyped.append(f"{_declaring_class(model, name)}.{name}")
    return _value_check(xsdtypes.STRING), "string"


def _label(tag: str) -> str:
    q = etree.QName(tag)
    if q.namespace in (None, SEP2_NS):
        return str(q.localname)
    if q.namespace == XSI_NS:
        return f"xsi:{q.localname}"
    return (
        f"csipaus:{q.localname}"
        if "csipaus.org" in q.namespace
        else f"{{{q.namespace}}}{q.localname}"
    )


_compiled: dict[type[BaseXmlModel], _Type] = {}
"""Published structures: complete, read without a lock by every request thread."""
_compile_lock = threading.Lock()


def compile_model(model: type[BaseXmlModel]) -> _Type:
    """The structure documents of ``model`` are checked against (compiled once, cached).

    Compiled under a lock and published only when complete (with every model it contains), so a
    request thread never walks a half-built structure."""
    hit = _compiled.get(model)
    if hit is not None:
        return hit
    with _compile_lock:
        building: dict[type[BaseXmlModel], _Type] = {}
        t = _compile(model, building)
        _compiled.update(building)
        return t


def _compile(model: type[BaseXmlModel], building: dict[type[BaseXmlModel], _Type]) -> _Type:
    hit = _compiled.get(model) or building.get(model)
    if hit is not None:
        return hit
    structure = STRUCTURE_OF.get(model, model)
    if structure is not model:
        t = _compile(structure, building)
        building[model] = t
        return t
    serializer = model.__xml_serializer__
    if not isinstance(serializer, model_serializers.ModelSerializer):  # pragma: no cover
        raise TypeError(f"{model.__name__} is not a complete pydantic-xml model")
    t = _Type(model.__xml_tag__ or model.__name__)
    if model in XSI_TYPE_MODELS:
        t.xsi_types = frozenset(XSI_TYPE_MODELS[model])
    building[model] = t  # before the children: a model may (indirectly) contain itself
    optional_attrs = OPTIONAL_ATTRIBUTES.get(model, frozenset())
    pos = 0
    for name, ser in serializer.fields_serializers.items():
        required = model.model_fields[name].is_required()
        if isinstance(ser, primitive.AttributeSerializer):
            attr = ser._attr_name
            t.attrs[attr], _ = _simple_type_of(model, name, t)
            if required and attr not in optional_attrs:
                t.required_attrs.append(attr)
            continue
        repeat = isinstance(ser, homogeneous.ElementSerializer)
        inner = ser._inner_serializer if isinstance(ser, homogeneous.ElementSerializer) else ser
        if isinstance(inner, model_serializers.ModelProxySerializer):
            tag = inner.element_name
            child = _Child(
                tag, _label(tag), pos, repeat, required, complex=_compile(inner.model, building)
            )
            dispatch = XSI_TYPE_MODELS.get(inner.model)
            if dispatch:
                child.by_xsi_type = {k: _compile(m, building) for k, m in dispatch.items()}
        elif isinstance(inner, primitive.ElementSerializer):
            tag = inner._element_name
            check, type_name = _simple_type_of(model, name, t)
            child = _Child(tag, _label(tag), pos, repeat, required, simple=check)
            child.simple_type = type_name
        else:  # pragma: no cover - text/raw/union fields do not occur in the 2030.5 models
            raise TypeError(f"{model.__name__}.{name}: unsupported field kind {type(inner)}")
        if tag in t.children:  # pragma: no cover - one element name per type in sep.xsd
            continue
        t.children[tag] = child
        t.sequence.append(child)
        t.n_required += required
        pos += 1
    return t


def untyped_fields(model: type[BaseXmlModel]) -> list[str]:
    """``Class.field`` of every integer field reachable from ``model`` with no XSD type known."""
    seen: set[int] = set()
    out: list[str] = []

    def visit(t: _Type) -> None:
        if id(t) in seen:
            return
        seen.add(id(t))
        out.extend(t.untyped)
        for c in t.sequence:
            for sub in [c.complex, *(c.by_xsi_type or {}).values()]:
                if sub is not None:
                    visit(sub)

    visit(compile_model(model))
    return sorted(set(out))


# ---- checking a document ------------------------------------------------------------------------
def _path(el: etree._Element) -> str:
    parts: list[str] = []
    node: etree._Element | None = el
    while node is not None:
        tag = node.tag
        parent = node.getparent()
        label = _label(tag)
        if parent is not None:
            same = [s for s in parent if s.tag == tag]
            if len(same) > 1:
                label += f"[{same.index(node) + 1}]"
        parts.append(label)
        node = parent
    return "/".join(reversed(parts))


def _names(children: Iterable[_Child]) -> str:
    return ", ".join(c.label for c in children)


def _after(t: _Type, child: _Child) -> str:
    before = [c.label for c in t.sequence if c.pos < child.pos]
    return before[-1] if before else "the start"


def _allowed_after(t: _Type, last: int) -> list[_Child]:
    return [c for c in t.sequence if c.pos > last or (c.pos == last and c.repeat)]


def _unknown(child: etree._Element, t: _Type, last: int) -> StrictViolationError:
    tag = child.tag
    q = etree.QName(tag)
    expected = _allowed_after(t, last)
    hint = ""
    same_local = [c for c in t.sequence if etree.QName(c.tag).localname == q.localname]
    if same_local:
        ns = etree.QName(same_local[0].tag).namespace
        hint = f"; {q.localname} belongs in namespace {ns}, not {q.namespace or 'no namespace'}"
    elif q.namespace not in (SEP2_NS,) and "csipaus.org" not in (q.namespace or ""):
        hint = f"; namespace {q.namespace or '(none)'} is not IEEE 2030.5 or CSIP-AUS"
    if expected:
        where = f"expected one of: {_names(expected)}"
    else:
        prev = next(c for c in t.sequence if c.pos == last)
        where = f"nothing may follow {prev.label} in {t.name}"
    return StrictViolationError(
        _path(child),
        f"element not allowed here{hint} ({where})",
        f"remove it, or move it to where IEEE 2030.5 / CSIP-AUS define it in {t.name}",
    )


def _xsi_type_problem(t: _Type, value: str) -> str | None:
    """``xsi:type`` must name the element's own type (or, where the XSD declares a base type the
    server fills with several, one of those); the prefix is not resolved, the local name is."""
    allowed = t.xsi_types or frozenset({t.name})
    if value.strip(_WS).rpartition(":")[2] in allowed:
        return None
    return f"xsi:type {value!r} is not a type this element may take ({', '.join(sorted(allowed))})"


def _walk(el: etree._Element, t: _Type) -> None:
    attrib = el.attrib
    if len(attrib):
        for name, value in attrib.items():
            attr_check = t.attrs.get(name)
            if attr_check is None:
                if name in ALWAYS_ALLOWED_ATTRIBUTES:
                    continue
                allowed = ", ".join(_label(a) for a in t.attrs) or "none"
                raise StrictViolationError(
                    f"{_path(el)}/@{_label(name)}",
                    f"attribute not allowed here (allowed: {allowed})",
                    "remove the attribute",
                )
            problem = attr_check(value)
            if problem is None and name == XSI_TYPE:
                problem = _xsi_type_problem(t, value)
            if problem is not None:
                raise StrictViolationError(
                    f"{_path(el)}/@{_label(name)}", problem, "send a value of the attribute's type"
                )
    for name in t.required_attrs:
        if name not in attrib:
            raise StrictViolationError(
                f"{_path(el)}/@{_label(name)}",
                "required attribute missing",
                f"add the {_label(name)} attribute",
            )
    text = el.text
    if text is not None and text.strip(_WS):
        raise StrictViolationError(
            _path(el),
            f"text {text.strip(_WS)[:40]!r} not allowed in {t.name} (it holds only elements)",
            "remove the text",
        )
    children = t.children
    last = -1
    have = 0
    for child in el:
        tag = child.tag
        if tag.__class__ is not str:  # comments and processing instructions
            continue
        c = children.get(tag)
        if c is None:
            raise _unknown(child, t, last)
        pos = c.pos
        if pos > last:
            last = pos
            if c.required:
                have += 1
        elif pos < last:
            prev = next(x for x in t.sequence if x.pos == last)
            raise StrictViolationError(
                _path(child),
                f"element out of order: {c.label} must come before {prev.label} "
                f"(the sequence of {t.name}: {_names(t.sequence)})",
                f"send the elements of {t.name} in the IEEE 2030.5 sequence order",
            )
        elif not c.repeat:
            raise StrictViolationError(
                _path(child),
                f"element repeated: {t.name} allows one {c.label}",
                f"send {c.label} once",
            )
        tail = child.tail
        if tail is not None and tail.strip(_WS):
            raise StrictViolationError(
                _path(el),
                f"text {tail.strip(_WS)[:40]!r} not allowed in {t.name} (it holds only elements)",
                "remove the text",
            )
        sub = c.complex
        if sub is not None:
            if c.by_xsi_type is not None:
                sub = c.by_xsi_type.get(child.get(XSI_TYPE, "").rpartition(":")[2], sub)
            _walk(child, sub)
            continue
        if len(child):
            first = child[0]
            raise StrictViolationError(
                _path(first) if isinstance(first.tag, str) else _path(child),
                f"element not allowed here ({c.label} holds a {c.simple_type} value)",
                "remove it",
            )
        if len(child.attrib):
            name = next(iter(child.attrib))
            if name not in ALWAYS_ALLOWED_ATTRIBUTES:
                raise StrictViolationError(
                    f"{_path(child)}/@{_label(name)}",
                    f"attribute not allowed here ({c.label} holds a {c.simple_type} value)",
                    "remove the attribute",
                )
        value_check = c.simple
        if value_check is not None:
            problem = value_check(child.text)
            if problem is not None:
                raise StrictViolationError(
                    _path(child), problem, f"send a {c.simple_type} value in {c.label}"
                )
    if have != t.n_required:
        present = {child.tag for child in el}
        missing = next(c for c in t.sequence if c.required and c.tag not in present)
        raise StrictViolationError(
            f"{_path(el)}/{missing.label}",
            f"required element missing (after {_after(t, missing)} in {t.name})",
            f"add {missing.label}",
        )


def check(model: type[BaseXmlModel], root: etree._Element) -> None:
    """Refuse ``root`` unless it is a valid instance of ``model``'s XSD type.

    Raises :class:`StrictViolationError` (the first problem found, with its element path)."""
    _walk(root, compile_model(model))
