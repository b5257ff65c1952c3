"""XML on the wire: hardened parsing into the ``envoy-schema`` models, and rendering.

Every request body is parsed by :func:`parse` and every response produced by :func:`render`,
both through the pydantic-xml models of IEEE 2030.5 + CSIP-AUS published as ``envoy-schema``
(namespace ``urn:ieee:std:2030.5:ns``; CSIP-AUS extensions in ``https://csipaus.org/ns``).

Hostile XML is refused before any model sees it (IEEE 2030.5 never uses a DTD):

- documents larger than ``max_bytes`` → :class:`XmlTooLargeError` (HTTP 413);
- any DOCTYPE / DTD (the carrier of entity expansion "billion laughs" and external entities)
  → :class:`XmlRefusedError` (HTTP 400); the parser also never resolves entities, never loads
  a DTD and never touches the network;
- malformed XML or a document that does not validate → :class:`XmlInvalidError` (HTTP 400)
  naming the element path and the fix. Validation is strict (:mod:`gridflex.sep2.strict`, as an
  XSD validator would): unknown, misplaced, out-of-order, repeated or missing elements,
  undeclared attributes, foreign-namespace elements and values outside their XSD types are
  refused before the envoy-schema model (which alone would ignore most of them) is built.

CSIP-AUS namespace versions: deployed clients speak v1.2 (``https://csipaus.org/ns``), newer ones
v1.3 (``https://csipaus.org/ns/v1.3``). Both are accepted on input; output uses the namespace the
server is configured with (:data:`CSIP_AUS_NS_V12` by default).
"""

from __future__ import annotations

from typing import Any, TypeVar

from lxml import etree  # type: ignore[import-untyped]
from pydantic import ValidationError
from pydantic_xml import BaseXmlModel

from gridflex.errors import InputError
from gridflex.sep2 import strict

SEP2_NS = "urn:ieee:std:2030.5:ns"
CSIP_AUS_NS_V12 = "https://csipaus.org/ns"
CSIP_AUS_NS_V13 = "https://csipaus.org/ns/v1.3"
_MODEL_CSIP_NS = CSIP_AUS_NS_V13  # the namespace envoy-schema's models are declared with
CONTENT_TYPE = "application/sep+xml"
DEFAULT_MAX_XML_BYTES = 256 * 1024
"""Largest 2030.5 document accepted (bytes): a MirrorMeterReadingList of a day of 5-minute readings
is about 100 kB."""

M = TypeVar("M", bound=BaseXmlModel)


class XmlRejectedError(InputError):
    """A request document was refused; ``status`` is the HTTP status the edge returns."""

    status = 400


class XmlTooLargeError(XmlRejectedError):
    status = 413


class XmlRefusedError(XmlRejectedError):
    """Hostile constructs (DTD, entities)."""


class XmlInvalidError(XmlRejectedError):
    """Malformed XML or not valid against the 2030.5 model."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def parse_tree(body: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES) -> etree._Element:
    """Parse ``body`` into an element tree, refusing hostile or oversized documents."""
    if len(body) > max_bytes:
        raise XmlTooLargeError(
            f"XML document of {len(body)} bytes exceeds the {max_bytes} byte limit",
            "send smaller documents (split MirrorMeterReading lists into several POSTs)",
        )
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise XmlRefusedError(
            "XML document declares a DTD or entities, which IEEE 2030.5 never uses and this "
            "server refuses (entity expansion, external entities)",
            "send the resource without a DOCTYPE",
        )
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise XmlInvalidError(f"malformed XML: {exc}", "send well-formed IEEE 2030.5 XML") from exc
    if root is None:
        raise XmlInvalidError("empty XML document", "send an IEEE 2030.5 resource")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlRefusedError("XML document carries a DTD", "send the resource without a DOCTYPE")
    _to_model_namespace(root)
    return root


def _to_model_namespace(root: etree._Element) -> None:
    """Rewrite CSIP-AUS v1.2 element names into the namespace the models use (in place)."""
    prefix = "{" + CSIP_AUS_NS_V12 + "}"
    for el in root.iter():
        tag = el.tag
        if isinstance(tag, str) and tag.startswith(prefix):
            el.tag = "{" + _MODEL_CSIP_NS + "}" + tag[len(prefix) :]


def parse(model: type[M], body: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES) -> M:
    """Parse and validate a request body as ``model`` (an envoy-schema pydantic-xml model)."""
    return model_from_tree(model, parse_tree(body, max_bytes=max_bytes))


def model_from_tree(model: type[M], root: etree._Element) -> M:
    """Validate a tree from :func:`parse_tree` as ``model`` (no second parse of the bytes)."""
    expected = model.__xml_tag__ or model.__name__
    local = etree.QName(root).localname
    namespace = etree.QName(root).namespace
    if local != expected or namespace not in (SEP2_NS, _MODEL_CSIP_NS):
        raise XmlInvalidError(
            f"expected a {expected} element in namespace {SEP2_NS}, got {local} in "
            f"{namespace or 'no namespace'}",
            f"POST a {expected} document",
        )
    try:
        strict.check(model, root)
    except strict.StrictViolationError as exc:
        raise XmlInvalidError(f"{expected} is not valid IEEE 2030.5: {exc}", exc.fix) from exc
    try:
        return model.from_xml_tree(root)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or expected
        raise XmlInvalidError(
            f"{expected} is not valid IEEE 2030.5: {where}: {first.get('msg')}",
            f"correct {where} (see IEEE 2030.5-2018 / CSIP-AUS for its type)",
        ) from exc
    except Exception as exc:  # pydantic-xml raises ParsingError and friends for bad structure
        raise XmlInvalidError(f"{expected} is not valid IEEE 2030.5: {exc}", "correct it") from exc


def render(entity: BaseXmlModel, *, csip_aus_ns: str = CSIP_AUS_NS_V12) -> bytes:
    """Serialize a response model to bytes in the configured CSIP-AUS namespace."""
    raw: Any = entity.to_xml(skip_empty=True, exclude_none=True)
    data = raw if isinstance(raw, bytes) else raw.encode()
    if csip_aus_ns != _MODEL_CSIP_NS:
        # only the xmlns declaration carries the URI; the quoted form cannot occur elsewhere
        data = data.replace(
            b'"' + _MODEL_CSIP_NS.encode() + b'"', b'"' + csip_aus_ns.encode() + b'"'
        )
    return data


def validate_response(model: type[M], body: bytes) -> M:
    """Parse a server response back into its model (tests and the reference client use this)."""
    return parse(model, body, max_bytes=10 * DEFAULT_MAX_XML_BYTES)
