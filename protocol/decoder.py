# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Read MM7 messages from whatever real MMSCs and VASPs send.

Theory of operation: first find the SOAP part (bare XML, ``multipart/related`` with or
without ``start``, a multipart Content-Type with no boundary, no Content-Type at all),
then the message element (inside ``Body``, inside a ``Fault``'s ``detail``, or bare), then
map its children to fields by *local name*, whatever their namespace, order or case.
Everything tolerated is recorded in ``leniencies`` so the gateway can count vendor
quirks. Only what makes a message meaningless raises a ``DecodeError``.

Past 500 lines on purpose: the value readers share one ``_Reader`` whose leniency list
every tolerance writes to; splitting them apart would only thread that list through
more modules.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from lxml import etree

from protocol import mime
from protocol.addresses import (
    Address,
    AddressCoding,
    AddressKind,
    Recipients,
    strip_plmn_suffix,
)
from protocol.errors import (
    BodyTooLarge,
    InvalidValue,
    MalformedMIME,
    MissingElement,
    NotSOAP,
    UnknownMessageType,
)
from protocol.layouts import LAYOUTS
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.messages import (
    MESSAGE_TYPES,
    Attachment,
    ContentReference,
    ErrorRsp,
    Extension,
    Kind,
    Message,
    ReplyCharging,
    Response,
    SenderIdentification,
    UACapabilities,
    UserAgent,
    UserAgentDateTime,
)
from protocol.values import read_bool, read_date, read_int
from protocol.versions import LEGACY_VERSIONS, closest_known, version_from_namespace
from protocol.xmlparse import (
    attribute,
    child_elements,
    find_child_ci,
    local_name,
    namespace_of,
    parse_xml,
    text_of,
)

_ADDRESS_KINDS: Final = {kind.value: kind for kind in AddressKind}
_ADDRESS_KINDS_CI: Final = {kind.value.lower(): kind for kind in AddressKind}
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_TYPES_CI: Final = {name.lower(): cls for name, cls in MESSAGE_TYPES.items()}
#: Element names peers use in place of the schema's (besides case differences).
_ELEMENT_ALIASES: Final = {
    "Recipients": "Recipient",
    "Recipient": "Recipients",
    "Date": "TimeStamp",
}


def decode_message(
    body: bytes, content_type: str | None = None, *, limits: Limits = DEFAULT_LIMITS
) -> Message:
    if len(body) > limits.max_body_bytes:
        raise BodyTooLarge(
            f"body is {len(body)} bytes, more than the {limits.max_body_bytes} allowed",
            value=len(body),
            maximum=limits.max_body_bytes,
        )
    leniencies: list[str] = []
    xml, attachments = _split_soap(body, content_type, limits, leniencies)
    root = parse_xml(xml, limits, leniencies)
    element, fault, transaction = _locate(root, leniencies)
    return _Reader(leniencies).message(element, fault, transaction, attachments)


# -- framing ---------------------------------------------------------------------------------


def _split_soap(
    body: bytes, content_type: str | None, limits: Limits, leniencies: list[str]
) -> tuple[bytes, tuple[Attachment, ...]]:
    media, params = mime.parse_content_type(content_type)
    is_xml = _starts_as_xml(body)
    if not media:
        leniencies.append("no_content_type")
    if media.startswith("multipart/"):
        boundary = params.get("boundary")
        if boundary is None:
            if is_xml:
                leniencies.append("multipart_without_boundary")
                return body, ()
            boundary = mime.sniff_boundary(body)
            if boundary is None:
                raise MalformedMIME("multipart Content-Type without boundary, and none in the body")
            leniencies.append("boundary_sniffed")
        return _from_multipart(body, boundary, params, limits, leniencies)
    if is_xml:
        if media and media not in ("text/xml", "application/soap+xml", "application/xml"):
            leniencies.append("unexpected_content_type")
        return body, ()
    boundary = mime.sniff_boundary(body)
    if boundary is not None:
        if media:
            leniencies.append("multipart_body_under_non_multipart_type")
        leniencies.append("boundary_sniffed")
        return _from_multipart(body, boundary, params, limits, leniencies)
    raise MalformedMIME("body is neither XML nor a MIME multipart")


def _starts_as_xml(data: bytes) -> bool:
    """True if ``data`` opens with ``<``, after whitespace and an optional UTF-8 BOM.

    Windows-built peers put a BOM before the XML declaration; ``parse_xml`` strips it
    (and reports ``utf8_bom``), so framing must not mistake such a body for non-XML.
    """
    return data.lstrip().removeprefix(_UTF8_BOM).startswith(b"<")


def _from_multipart(
    body: bytes,
    boundary: str,
    params: dict[str, str],
    limits: Limits,
    leniencies: list[str],
) -> tuple[bytes, tuple[Attachment, ...]]:
    parts = mime.split_multipart(body, boundary, limits, leniencies)
    if not parts:
        raise MalformedMIME("multipart body holds no parts")
    root_index = 0
    start = params.get("start")
    if start is None:
        leniencies.append("missing_start")
    else:
        wanted = mime.normalise_cid(start)
        for index, part in enumerate(parts):
            if part.content_id == wanted:
                root_index = index
                break
        else:
            leniencies.append("start_not_found")
    soap = parts[root_index]
    if not _starts_as_xml(soap.body):
        raise MalformedMIME("the SOAP part of the multipart body is not XML")
    others = [p for i, p in enumerate(parts) if i != root_index]
    return soap.body, tuple(_attachment(p, leniencies) for p in others)


def _attachment(part: mime.Part, leniencies: list[str]) -> Attachment:
    raw_id = part.headers.get("content-id")
    if raw_id is not None and not raw_id.strip().startswith("<"):
        leniencies.append("content_id_without_brackets")
    content_type = part.content_type
    if not content_type:
        leniencies.append("part_without_content_type")
        content_type = "application/octet-stream"
    if part.children:
        return Attachment(
            content_type=mime.strip_boundary_param(content_type),
            content_id=part.content_id,
            content_location=part.headers.get("content-location"),
            parts=tuple(_attachment(child, leniencies) for child in part.children),
        )
    return Attachment(
        content_type=content_type,
        data=part.body,
        content_id=part.content_id,
        content_location=part.headers.get("content-location"),
    )


# -- locating the message element --------------------------------------------------------------


def _locate(
    root: etree._Element, leniencies: list[str]
) -> tuple[etree._Element, etree._Element | None, etree._Element | None]:
    """Return (message element, Fault element or None, TransactionID element or None)."""
    if local_name(root) != "Envelope":
        if local_name(root) in MESSAGE_TYPES:
            leniencies.append("no_envelope")
            return root, None, None
        raise NotSOAP(f"expected a SOAP Envelope, found <{local_name(root)}>")
    header = body = None
    for child in root.iterchildren(etree.Element):  # one pass: Header, then Body
        name = local_name(child)
        if name == "Header" and header is None:
            header = child
        elif name == "Body":
            body = child
            break
    transaction = None
    if header is not None:
        # "{*}" matches any namespace or none, and the search runs in C.
        transaction = next(header.iter("{*}TransactionID"), None)
    if body is None:
        raise NotSOAP("SOAP Envelope has no Body")
    first = next(body.iterchildren(etree.Element), None)
    if first is None:
        raise NotSOAP("SOAP Body is empty")
    if local_name(first) == "Fault":
        detail = find_child_ci(first, "detail")
        inner = child_elements(detail) if detail is not None else []
        for candidate in inner:
            if local_name(candidate) in MESSAGE_TYPES:
                return candidate, first, transaction
        raise UnknownMessageType(
            "SOAP Fault without an MM7 error response in its detail: "
            + (text_of(find_child_ci(first, "faultstring")) or "no faultstring")
        )
    return first, None, transaction


# -- reading fields ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _layout_notes(tag: str, version: str, seen: tuple[str, ...]) -> tuple[str, ...]:
    """Leniencies for the children a message carried, in order, against the schema layout.

    Cached: a peer sends the same element sequence for every message of a kind.
    """
    cls = MESSAGE_TYPES[tag]
    layout, order = _layout_order(tag, version)
    notes: list[str] = []
    positions = [order[name] for name in seen if name in order]
    if positions != sorted(positions):
        notes.append("element_order")
    present = set(seen)
    if present - order.keys():
        notes.append("element_not_in_version")
    for name, required in layout:
        if required and name not in present and name != "MM7Version":
            # Aliased names (Date/TimeStamp) count as present.
            attr = cls.ELEMENTS[name][0]
            if not any(cls.ELEMENTS[s][0] == attr for s in present):
                notes.append("missing_mandatory")
                break
    if "MM7Version" not in present:
        notes.append("missing_mandatory")
    return tuple(notes)


@functools.cache
def _lowered_names(tag: str) -> dict[str, str]:
    return {name.lower(): name for name in MESSAGE_TYPES[tag].ELEMENTS}


@functools.cache
def _layout_order(tag: str, version: str) -> tuple[tuple[tuple[str, bool], ...], dict[str, int]]:
    layout = LAYOUTS[version].get(tag) or LAYOUTS["REL-6-MM7-1-4"][tag]
    return layout, {name: i for i, (name, _) in enumerate(layout)}


class _Reader:
    def __init__(self, leniencies: list[str]) -> None:
        self.leniencies = leniencies
        #: REL-5-MM7-1-0/1-1, where SenderAddress is plain text by schema.
        self.legacy = False

    def note(self, kind: str) -> None:
        self.leniencies.append(kind)

    def message(
        self,
        element: etree._Element,
        fault: etree._Element | None,
        transaction: etree._Element | None,
        attachments: tuple[Attachment, ...],
    ) -> Message:
        name = local_name(element)
        cls = MESSAGE_TYPES.get(name)
        if cls is None:
            cls = _TYPES_CI.get(name.lower())
            if cls is None:
                raise UnknownMessageType(f"<{name}> is not an MM7 message")
            self.note("element_name_case")
        version = self._version(element, transaction)
        self.legacy = closest_known(version) in LEGACY_VERSIONS
        values: dict[str, Any] = {"version": version, "attachments": attachments}
        if transaction is None:
            self.note("missing_transaction_id")
        else:
            tid = text_of(transaction) or ""
            if tid != (transaction.text or ""):
                self.note("transaction_id_whitespace")
            values["transaction_id"] = tid
        if fault is not None and issubclass(cls, ErrorRsp):
            values["fault_code"] = text_of(find_child_ci(fault, "faultcode"))
            values["fault_string"] = text_of(find_child_ci(fault, "faultstring"))
        elif fault is None and issubclass(cls, ErrorRsp):
            self.note("error_without_fault")
        seen, extensions = self._children(element, cls, values)
        self._check_layout(cls, version, seen)
        if issubclass(cls, Response) and "status_code" not in values:
            raise MissingElement(f"{name} has no Status/StatusCode")
        values["extensions"] = tuple(extensions)
        _check_href(values.get("content"), attachments, self.leniencies)
        values["leniencies"] = tuple(dict.fromkeys(self.leniencies))
        return cls(**values)

    def _version(self, element: etree._Element, transaction: etree._Element | None) -> str | None:
        namespace = namespace_of(element)
        if namespace is None:
            child_namespaces = (namespace_of(c) for c in element.iterchildren(etree.Element))
            namespace = next((ns for ns in child_namespaces if ns), None)
        if namespace is None and transaction is not None:
            namespace = namespace_of(transaction)
            if namespace:
                self.note("namespace_from_header")
        if namespace is None:
            self.note("no_namespace")
            return None
        version, exact = version_from_namespace(namespace)
        if not exact:
            self.note("unknown_namespace")
        return version

    def _children(
        self, element: etree._Element, cls: type[Message], values: dict[str, Any]
    ) -> tuple[list[str], list[Extension]]:
        table = cls.ELEMENTS
        lowered = _lowered_names(cls.TAG)
        seen: list[str] = []
        extensions: list[Extension] = []
        unqualified = False
        for child in element.iterchildren(etree.Element):
            tag = child.tag
            brace = tag.find("}")
            if brace < 0:
                unqualified = True
            name = tag[brace + 1 :]
            if name not in table:
                canonical = lowered.get(name.lower()) or _ELEMENT_ALIASES.get(name)
                if canonical is None or canonical not in table:
                    extensions.append(self._extension(child))
                    continue
                self.note(
                    "element_name_case" if name.lower() == canonical.lower() else "element_alias"
                )
                name = canonical
            attr, kind = table[name]
            if attr in values and kind is not Kind.STATUS:
                self.note("duplicate_element")
                continue
            seen.append(name)
            if kind is Kind.TEXT or kind is Kind.VERSION:
                # Inlined fast path: most MM7 children are plain text leaves.
                text = child.text if not len(child) else text_of(child)
                values[attr] = text = text.strip() if text else ""
                if name == "MMStatus" and text.isdigit():
                    # Some MMSCs send a status code ("1000") instead of the enumeration.
                    self.note("numeric_mm_status")
                continue
            self._read(child, name, attr, kind, values)
        if extensions:
            self.note("extension_element")
        if unqualified and namespace_of(element):
            self.note("unqualified_children")
        return seen, extensions

    def _extension(self, child: etree._Element) -> Extension:
        return Extension(
            name=local_name(child),
            namespace=namespace_of(child),
            text=text_of(child),
            xml=etree.tostring(child),
        )

    def _check_layout(self, cls: type[Message], version: str | None, seen: list[str]) -> None:
        self.leniencies.extend(_layout_notes(cls.TAG, closest_known(version), tuple(seen)))

    # -- value readers --------------------------------------------------------------
    def _read(
        self, child: etree._Element, name: str, attr: str, kind: Kind, values: dict[str, Any]
    ) -> None:
        if kind is Kind.STATUS:
            self._status(child, values)
            return
        value: Any
        if kind in (Kind.TEXT, Kind.VERSION):
            value = text_of(child)
        elif kind is Kind.BOOL:
            value = read_bool(text_of(child) or "", self.leniencies)
        elif kind is Kind.INT:
            value = read_int(text_of(child) or "", self.leniencies)
        elif kind is Kind.DATE:
            value = read_date(text_of(child) or "", self.leniencies)
        elif kind in (Kind.ADDRESS, Kind.SENDER_ADDRESS):
            value = self._address(child)
        elif kind is Kind.RECIPIENTS:
            value = self._recipients(child, name)
        elif kind is Kind.SENDER_ID:
            value = self._sender_id(child)
        elif kind is Kind.CONTENT:
            value = self._content(child)
        elif kind is Kind.REPLY_CHARGING:
            size = attribute(child, "replyChargingSize")
            deadline = attribute(child, "replyDeadline")
            value = ReplyCharging(
                reply_charging_size=read_int(size, self.leniencies) if size is not None else None,
                reply_deadline=read_date(deadline, self.leniencies) if deadline else None,
            )
        elif kind is Kind.DELIVERY_CONDITION:
            value = self._delivery_condition(child)
        elif kind is Kind.UA_CAPABILITIES:
            stamp = attribute(child, "TimeStamp")
            value = UACapabilities(
                ua_prof=attribute(child, "UAProf"),
                time_stamp=read_date(stamp, self.leniencies) if stamp else None,
            )
        elif kind is Kind.PREVIOUSLY_SENT_BY:
            value = tuple(
                UserAgent(address=address, sequence=self._sequence(agent))
                for agent in child_elements(child)
                if (address := self._address(agent)) is not None
            )
        elif kind is Kind.PREVIOUSLY_SENT_DATE:
            value = tuple(
                UserAgentDateTime(
                    value=read_date(text_of(item) or "", self.leniencies),
                    sequence=self._sequence(item),
                )
                for item in child_elements(child)
            )
        else:  # pragma: no cover - every Kind is handled above
            raise InvalidValue(f"cannot read element kind {kind}")
        values[attr] = value

    def _sequence(self, element: etree._Element) -> int | None:
        raw = attribute(element, "sequence")
        return read_int(raw, self.leniencies) if raw is not None else None

    def _status(self, child: etree._Element, values: dict[str, Any]) -> None:
        code_el = find_child_ci(child, "StatusCode")
        if code_el is None:
            raise MissingElement("Status has no StatusCode")
        raw = text_of(code_el) or ""
        try:
            values["status_code"] = int(raw)
        except ValueError:
            raise InvalidValue(f"StatusCode {raw!r} is not a number") from None
        text_el = find_child_ci(child, "StatusText")
        if text_el is not None:
            values["status_text"] = text_of(text_el)
        details = find_child_ci(child, "Details")
        if details is not None:
            values["details"] = text_of(details)
            if details.text and details.text.strip():
                self.note("details_as_text")

    def _address(self, element: etree._Element) -> Address | None:
        target = None
        kind = AddressKind.NUMBER
        for candidate in element.iterdescendants(etree.Element):
            tag = candidate.tag
            name = tag[tag.find("}") + 1 :]
            found = _ADDRESS_KINDS.get(name) or _ADDRESS_KINDS_CI.get(name.lower())
            if found is not None:
                target, kind = candidate, found
                break
        if target is None:
            text = text_of(element) or ""
            if not text:
                self.note("empty_address")
                return None
            self.note("bare_address")
            kind = AddressKind.RFC2822 if "@" in text else AddressKind.NUMBER
            value, had_suffix = strip_plmn_suffix(text)
            if had_suffix:
                self.note("plmn_suffix")
            return Address(value=value, kind=kind)
        return self._address_of(target, kind)

    def _address_of(self, target: etree._Element, kind: AddressKind) -> Address:
        """The address held by a ``Number``/``ShortCode``/``RFC2822Address`` element."""
        text = target.text if not len(target) else text_of(target)
        value = text.strip() if text else ""
        if "/" in value:
            value, had_suffix = strip_plmn_suffix(value)
            if had_suffix:
                self.note("plmn_suffix")
        if not target.attrib:  # the common case
            return Address(value=value, kind=kind)
        display = attribute(target, "displayOnly")
        coding = attribute(target, "addressCoding")
        address_coding = None
        if coding is not None:
            try:
                address_coding = AddressCoding(coding)
            except ValueError:
                self.note("invalid_address_coding")
        return Address(
            value=value,
            kind=kind,
            display_only=read_bool(display, self.leniencies) if display is not None else None,
            address_coding=address_coding,
            id=attribute(target, "id"),
        )

    def _recipients(self, element: etree._Element, name: str) -> Recipients | Address | None:
        if name == "Recipient":  # a single address element (DeliveryReportReq, ReadReplyReq)
            return self._address(element)
        to: list[Address] = []
        cc: list[Address] = []
        bcc: list[Address] = []
        groups = {"to": to, "cc": cc, "bcc": bcc}
        for group in element.iterchildren(etree.Element):
            key = local_name(group).lower()
            found = groups.get(key)
            if found is None:
                if key in _ADDRESS_KINDS_CI:  # address directly under Recipients
                    self.note("recipient_without_group")
                    to.append(self._address_from_self(group))
                continue
            found.extend(
                self._address_from_self(address_el)
                for address_el in group.iterchildren(etree.Element)
            )
        return Recipients(to=tuple(to), cc=tuple(cc), bcc=tuple(bcc))

    def _address_from_self(self, element: etree._Element) -> Address:
        name = local_name(element)
        kind = _ADDRESS_KINDS.get(name) or _ADDRESS_KINDS_CI.get(name.lower())
        if kind is not None:
            return self._address_of(element, kind)
        address = self._address(element)
        return address if address is not None else Address(value="")

    def _sender_id(self, element: etree._Element) -> SenderIdentification:
        sender_address = None
        address_el = find_child_ci(element, "SenderAddress")
        if address_el is not None:
            text = text_of(address_el) or ""
            if self.legacy and text and not child_elements(address_el):
                # xs:string in these schemas: text is the proper form, not a quirk.
                kind = AddressKind.RFC2822 if "@" in text else AddressKind.NUMBER
                sender_address = Address(value=text, kind=kind)
            else:
                sender_address = self._address(address_el)
        return SenderIdentification(
            vasp_id=text_of(find_child_ci(element, "VASPID")),
            vas_id=text_of(find_child_ci(element, "VASID")),
            sender_address=sender_address,
        )

    def _content(self, element: etree._Element) -> ContentReference:
        href = element.get("href")
        if href is None:
            href = attribute(element, "href")
            if href is not None:
                self.note("qualified_href")
        if href is None:
            self.note("content_without_href")
            href = ""
        # Most Content elements carry a plain href alone: look no further then.
        attrib = element.attrib
        alone = len(attrib) == 1 and "href" in attrib
        allow = None if alone else attribute(element, "allowAdaptations")
        return ContentReference(
            href=href,
            allow_adaptations=read_bool(allow, self.leniencies) if allow is not None else None,
        )

    def _delivery_condition(self, element: etree._Element) -> tuple[int, ...]:
        items = [text_of(dc) or "" for dc in child_elements(element)]
        if not items:
            items = (text_of(element) or "").replace(",", " ").split()
        out = []
        for item in items:
            number = read_int(item, self.leniencies)
            if number is not None:
                out.append(number)
        return tuple(out)


def _check_href(
    content: object, attachments: tuple[Attachment, ...], leniencies: list[str]
) -> None:
    if not isinstance(content, ContentReference) or not content.href:
        return
    if resolve_href(content.href, attachments, leniencies) is None:
        leniencies.append("dangling_href")


def resolve_href(
    href: str, attachments: tuple[Attachment, ...], leniencies: list[str] | None = None
) -> Attachment | None:
    """Find the attachment a ``Content`` href points at, tolerating vendor spellings.

    Accepts ``cid:x``, ``cid: x``, ``cid x``, a bare Content-ID or a Content-Location.
    """
    raw = href.strip()
    lowered = raw.lower()
    if lowered.startswith("cid:"):
        key = raw[4:].strip()
        if raw[4:5].isspace() and leniencies is not None:
            leniencies.append("href_spacing")
    elif lowered.startswith("cid "):
        key = raw[4:].strip()
        if leniencies is not None:
            leniencies.append("href_without_colon")
    else:
        key = raw
    key = mime.normalise_cid(key)
    for attachment in attachments:
        for part in attachment.walk():
            if key in (part.content_id, part.content_location):
                return part
    return None
