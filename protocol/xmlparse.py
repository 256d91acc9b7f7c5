# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Hardened XML parsing for untrusted MM7 input, and namespace-agnostic helpers.

Theory of operation: MM7 peers send SOAP from every era of XML tooling, so we match
elements by *local name* and treat namespaces as information, not as a filter. Nothing
in an MM7 message needs a DTD: any document type declaration is refused before parsing
(which also rules out entity expansion bombs and external entities), and the parser
itself never loads DTDs, resolves entities or touches the network.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import TYPE_CHECKING, Final

from lxml import etree

from protocol.errors import MalformedXML, XmlTooDeep, XmlTooLarge

if TYPE_CHECKING:
    from protocol.limits import Limits

_DOCTYPE: Final = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_DECL: Final = re.compile(rb"^\s*<\?xml[^>]*?\?>", re.IGNORECASE)
_ENVELOPE_END: Final = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?Envelope\s*>")
_DECL_ENCODING: Final = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")

#: Charset names MMSCs use for Korean text; cp949 is the superset that decodes them all.
CHARSET_ALIASES: Final[dict[str, str]] = {
    "euc-kr": "cp949",
    "euc_kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "x-windows-949": "cp949",
    "windows-949": "cp949",
}


def python_codec(charset: str) -> str:
    """The Python codec to use for a charset label seen on the wire."""
    return CHARSET_ALIASES.get(charset.strip().strip('"').lower(), charset.strip().strip('"'))


_LOCAL = threading.local()


def _parser() -> etree.XMLParser:
    # One parser per thread: lxml parsers are not thread-safe (the gateway decodes in
    # executor threads), and building one per call cost as much as a small parse.
    parser: etree.XMLParser | None = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = _new_parser()
    return parser


def _new_parser() -> etree.XMLParser:
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


def parse_xml(data: bytes, limits: Limits, leniencies: list[str]) -> etree._Element:
    """Parse an untrusted XML document and return its root element.

    Raises:
        XmlTooLarge: the document is longer than ``limits.max_xml_bytes``.
        XmlTooDeep: its elements nest deeper than ``limits.max_xml_depth``.
        MalformedXML: not well-formed, or it carries a DTD/entity declaration.
    """
    if len(data) > limits.max_xml_bytes:
        raise XmlTooLarge(
            f"SOAP part is {len(data)} bytes, more than the {limits.max_xml_bytes} allowed",
            value=len(data),
            maximum=limits.max_xml_bytes,
        )
    if b"<!" in data and _DOCTYPE.search(data):
        raise MalformedXML("XML document type or entity declarations are not allowed in MM7")
    stripped = data if data[:1] == b"<" else data.lstrip()
    if stripped.startswith(b"\xef\xbb\xbf"):
        # A UTF-8 byte order mark (Windows toolkits): XML allows it only as the very first
        # bytes, and peers put whitespace or MIME padding before it, so drop it and say so.
        leniencies.append("utf8_bom")
        stripped = stripped[3:]
    if not stripped.startswith(b"<"):
        raise MalformedXML("SOAP part does not start with an XML element")
    try:
        root = etree.fromstring(stripped, _parser())
    except etree.XMLSyntaxError as exc:
        if "Extra content at the end" in str(exc):
            root = _reparse_without_trailer(stripped, exc, leniencies)
        else:
            root = _reparse_with_charset_fallback(stripped, exc, leniencies)
    # Nesting cannot exceed the number of start tags: most SOAP bodies have fewer than the
    # limit, and two byte counts in C are cheaper than walking the tree.
    if data.count(b"<") - data.count(b"</") > limits.max_xml_depth:
        _check_depth(root, limits.max_xml_depth)
    return root


def _reparse_without_trailer(
    data: bytes, first_error: etree.XMLSyntaxError, leniencies: list[str]
) -> etree._Element:
    """Drop junk after the root element's end tag (seen after ``</env:Envelope>``).

    The *first* Envelope end tag closes the document: one capture repeats a fragment of
    the body after it, so cutting at the last one would keep the junk.
    """
    for match in _ENVELOPE_END.finditer(data):
        try:
            root = etree.fromstring(data[: match.end()], _parser())
        except etree.XMLSyntaxError:
            continue
        leniencies.append("trailing_garbage")
        return root
    raise MalformedXML(f"SOAP part is not well-formed XML: {first_error}") from first_error


def _reparse_with_charset_fallback(
    data: bytes, first_error: etree.XMLSyntaxError, leniencies: list[str]
) -> etree._Element:
    """Retry a parse that failed, when the failure may be a charset problem.

    Real MMSCs declare ``euc-kr``/``ks_c_5601-1987`` (which libxml2 may not know) and
    sometimes declare one charset while sending UTF-8 bytes.
    """
    decl = _XML_DECL.match(data)
    declared: str | None = None
    if decl:
        enc = _DECL_ENCODING.search(decl.group(0))
        declared = enc.group(1).decode("ascii") if enc else None
    candidates: list[str] = []
    if declared:
        candidates.append(python_codec(declared))
    candidates += [c for c in ("utf-8", "cp949") if c not in candidates]
    body = data[decl.end() :] if decl else data
    for index, codec in enumerate(candidates):
        try:
            text = body.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        try:
            root = etree.fromstring(text.encode("utf-8"), _parser())
        except etree.XMLSyntaxError:
            # Not a charset problem after all: report the original parser error.
            break
        if declared and index == 0:
            leniencies.append("charset_alias")
        else:
            leniencies.append("charset_mismatch")
        return root
    raise MalformedXML(f"SOAP part is not well-formed XML: {first_error}") from first_error


def _check_depth(root: etree._Element, max_depth: int) -> None:
    if _deeper_than(max_depth)(root):
        raise XmlTooDeep(
            f"XML nesting deeper than {max_depth} levels",
            value=max_depth + 1,
            maximum=max_depth,
        )


@functools.lru_cache(maxsize=8)
def _deeper_than(max_depth: int) -> etree.XPath:
    """An XPath that is true when some element sits below ``max_depth`` levels.

    Evaluated in C: a Python ``iterwalk`` over the tree cost as much as the parse.
    """
    return etree.XPath("boolean(" + "/*" * (max_depth + 1) + ")")


def local_name(element: etree._Element) -> str:
    # lxml-stubs say ``str``, but comments, PIs and entities carry a function as tag.
    tag: object = element.tag
    if not isinstance(tag, str):
        return ""
    return tag[tag.find("}") + 1 :]


def namespace_of(element: etree._Element) -> str | None:
    tag: object = element.tag
    if isinstance(tag, str) and tag.startswith("{"):
        return tag[1:].split("}", 1)[0]
    return None


def is_element(node: etree._Element) -> bool:
    """True for a real element (not a comment, PI or entity node)."""
    tag: object = node.tag
    return isinstance(tag, str)


def child_elements(element: etree._Element) -> list[etree._Element]:
    # Filtering on etree.Element happens in C (comments, PIs, entities are skipped).
    return list(element.iterchildren(etree.Element))


def find_child(element: etree._Element, name: str) -> etree._Element | None:
    """First child element with this local name, whatever its namespace."""
    for child in element.iterchildren(etree.Element):
        tag = child.tag
        if tag[tag.find("}") + 1 :] == name:
            return child
    return None


def find_child_ci(element: etree._Element, name: str) -> etree._Element | None:
    """Like ``find_child`` but ignoring case (``faultcode`` vs ``FaultCode``)."""
    lowered = name.lower()
    for child in element.iterchildren(etree.Element):
        tag = child.tag
        if tag[tag.find("}") + 1 :].lower() == lowered:
            return child
    return None


def text_of(element: etree._Element | None) -> str | None:
    """Text content of an element, stripped; ``""`` for an empty element."""
    if element is None:
        return None
    if not len(element):  # the common case: a leaf, no need to walk descendants
        text = element.text
        return text.strip() if text else ""
    return "".join(str(t) for t in element.itertext()).strip()


def attribute(element: etree._Element, name: str) -> str | None:
    """An attribute by local name, qualified or not (``href`` or ``mm7:href``)."""
    value = element.get(name)
    if value is not None:
        return value
    for key, val in element.attrib.items():
        if isinstance(key, str) and key.rsplit("}", 1)[-1] == name:
            return str(val)
    return None
