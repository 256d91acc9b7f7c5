"""Offline access to the official MM7 schemas in ``../shared/mm7/schemas`` for tests.

Loads every XSD with a no-network parser whose resolver maps the SOAP envelope import
(``http://schemas.xmlsoap.org/soap/envelope/``) to the local ``soapEnvelope.xsd``, and
re-derives the message element layouts straight from the XSD text.
"""

from __future__ import annotations

import email.parser
import email.policy
import functools
from pathlib import Path
from typing import Any

from lxml import etree

from tests.conftest import SHARED_MM7

XS = "{http://www.w3.org/2001/XMLSchema}"
SOAP_ENVELOPE_URL = "http://schemas.xmlsoap.org/soap/envelope/"
SCHEMAS = SHARED_MM7 / "schemas"


class _LocalEnvelope(etree.Resolver):
    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:
        if system_url.rstrip("/") == SOAP_ENVELOPE_URL.rstrip("/"):
            return self.resolve_filename(str(SCHEMAS / "soapEnvelope.xsd"), context)
        return None


def offline_parser() -> etree.XMLParser:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_LocalEnvelope())
    return parser


def schema_path(version: str) -> Path:
    return SCHEMAS / f"{version}.xsd"


@functools.cache
def schema(version: str) -> etree.XMLSchema:
    doc = etree.parse(str(schema_path(version)), offline_parser())
    return etree.XMLSchema(doc)


@functools.cache
def _doc(version: str) -> etree._ElementTree:
    return etree.parse(str(schema_path(version)), offline_parser())


def _local(qname: str) -> str:
    return qname.split(":", 1)[-1]


def extract_layouts(version: str) -> dict[str, tuple[tuple[str, bool], ...]]:
    """Top-level element name -> ((child element, required), ...) in schema order."""
    root = _doc(version).getroot()
    types = {t.get("name"): t for t in root.findall(XS + "complexType")}
    out: dict[str, tuple[tuple[str, bool], ...]] = {}
    for element in root.findall(XS + "element"):
        type_name = element.get("type")
        if type_name is None or _local(type_name) not in types:
            continue
        out[element.get("name") or ""] = tuple(_children(types[_local(type_name)], types))
    return out


def _children(ctype: etree._Element, types: dict[Any, etree._Element]) -> list[tuple[str, bool]]:
    result: list[tuple[str, bool]] = []
    for node in ctype.iter(XS + "extension", XS + "sequence"):
        if node.tag == XS + "extension":
            base = types.get(_local(node.get("base") or ""))
            if base is not None:
                result = _children(base, types) + result
            continue
        if _owning_type(node) is not ctype:
            continue
        for item in node:
            if item.tag == XS + "element":
                name = item.get("name") or _local(item.get("ref") or "")
                result.append((name, item.get("minOccurs", "1") != "0"))
            elif item.tag in (XS + "choice", XS + "sequence", XS + "any"):
                raise AssertionError(
                    f"unexpected {item.tag} in a message sequence ({version_hint(ctype)})"
                )
    return result


def _owning_type(node: etree._Element) -> etree._Element | None:
    """The nearest enclosing complexType (a sequence inside an inline child type belongs to it)."""
    parent = node.getparent()
    while parent is not None and parent.tag != XS + "complexType":
        parent = parent.getparent()
    return parent


def version_hint(node: etree._Element) -> str:
    return str(node.get("name"))


SOAP_ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"


def soap_part(content_type: str, body: bytes) -> bytes:
    """The SOAP XML of an encoded body, split with the stdlib ``email`` parser.

    Deliberately independent of ``protocol.mime``: a framing bug of ours must not be
    hidden by the same bug on the reading side.
    """
    if not content_type.startswith("multipart/"):
        return body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    assert message.is_multipart()
    start = message.get_param("start")
    parts = list(message.iter_parts())
    for part in parts:
        if part.get("Content-ID") == start:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload
    raise AssertionError(f"no part with Content-ID {start}")


def envelope_parts(xml: bytes) -> tuple[etree._Element, etree._Element]:
    """(TransactionID element, MM7 message element) of an envelope; faults unwrapped."""
    root = etree.fromstring(xml)
    assert root.tag == SOAP_ENV + "Envelope"
    header = root.find(SOAP_ENV + "Header")
    assert header is not None
    transaction = header[0]
    body = root.find(SOAP_ENV + "Body")
    assert body is not None
    assert len(body) == 1
    element = body[0]
    if element.tag == SOAP_ENV + "Fault":
        detail = element.find("detail")
        assert detail is not None
        element = detail[0]
    return transaction, element


def validate(version: str, element: etree._Element) -> list[str]:
    """Schema errors of ``element`` (a standalone copy) under ``version``'s XSD."""
    checker = schema(version)
    if checker.validate(etree.fromstring(etree.tostring(element))):
        return []
    return [f"{e.line}: {e.message}" for e in checker.error_log]


@functools.cache
def envelope_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "soapEnvelope.xsd"), offline_parser()))
