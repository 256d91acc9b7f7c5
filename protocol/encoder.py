# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Build MM7 SOAP envelopes (and SwA multipart bodies) that validate against a schema.

Theory of operation: the target version's layout (``layouts.py``) decides which child
elements are emitted and in which order; each message class's ``ELEMENTS`` says which
attribute feeds each element and how to render it. A field that is set but does not
exist in the target schema, or a required element with no value, is an ``EncodeError``:
we are strict in what we send.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import TYPE_CHECKING, Any, Final

from lxml import etree

from protocol import mime
from protocol.addresses import Address, AddressKind, Recipients
from protocol.errors import EncodeError, UnsupportedVersion
from protocol.layouts import LAYOUTS
from protocol.messages import (
    MESSAGE_TYPES,
    Attachment,
    ContentReference,
    ErrorRsp,
    ExtendedCancelRsp,
    ExtendedReplaceRsp,
    Kind,
    Message,
    ReplyCharging,
    Response,
    SenderIdentification,
    SubmitReq,
    UACapabilities,
    UserAgent,
    UserAgentDateTime,
)
from protocol.soap import ENV, SOAP_ENV_NS, SOAP_PART_ID, fault_code_for
from protocol.status import status_name
from protocol.values import write_bool, write_date
from protocol.versions import (
    ADDRESS_SECURITY_VERSIONS,
    LEGACY_VERSIONS,
    MM7_VERSION_VALUES,
    namespace_for,
)

if TYPE_CHECKING:
    from protocol.template import EnvelopeTemplates

_NMTOKEN: Final = re.compile(r"^[\w.:-]+$")
#: Elements typed ``xs:NMTOKEN`` (messageIDType/entityIDType) in REL-5-MM7-1-0/1-1.
_LEGACY_NMTOKEN_ELEMENTS: Final = frozenset(
    {"MessageID", "LinkedID", "ReplyChargingID", "MMSRelayServerID", "VASPID", "VASID"}
)
_BASE_FIELDS: Final = frozenset(
    {"transaction_id", "mm7_version", "version", "attachments", "extensions", "leniencies"}
)
_RESPONSE_FIELDS: Final = frozenset({"status_code", "status_text", "details"})
_ERROR_FIELDS: Final = frozenset({"fault_code", "fault_string"})


_TEXT: Final = Kind.TEXT
_VERSION: Final = Kind.VERSION
_STATUS: Final = Kind.STATUS


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    """How one message type is emitted in one schema version (computed once)."""

    #: (element, qualified name, attribute, kind, required) in schema order.
    steps: tuple[tuple[str, str, str, Kind, bool], ...]
    #: (attribute, element) of fields this version does not define: must be unset.
    undefined: tuple[tuple[str, str], ...]


@functools.cache
def _plan(tag: str, version: str) -> _Plan:
    layout = LAYOUTS[version].get(tag)
    if layout is None:
        raise EncodeError(f"{tag} does not exist in MM7 schema {version}")
    cls = MESSAGE_TYPES[tag]
    q = "{" + namespace_for(version) + "}"
    steps = tuple((e, q + e, *cls.ELEMENTS[e], required) for e, required in layout)
    emitted = {attr for _, _, attr, _, _ in steps}
    skip = _BASE_FIELDS | _RESPONSE_FIELDS | _ERROR_FIELDS
    undefined = tuple(
        (f.name, next(e for e, (a, _) in cls.ELEMENTS.items() if a == f.name))
        for f in dataclasses.fields(cls)
        if f.name not in skip and f.name not in emitted
    )
    return _Plan(steps, undefined)


class _Builder:
    """Renders one message for one schema version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.ns = namespace_for(version)
        self.q = "{" + self.ns + "}"
        self.legacy = version in LEGACY_VERSIONS

    # -- entry ---------------------------------------------------------------------------
    def body_element(self, msg: Message, parent: etree._Element | None = None) -> etree._Element:
        cls = type(msg)
        plan = _plan(cls.TAG, self.version)
        # The MM7 namespace is the default one, unless an unqualified extension must
        # follow: libxml2 cannot undeclare a default namespace (no xmlns=""), so the
        # extension would silently move into the MM7 namespace. Use a prefix then.
        unqualified = any(ext.namespace is None for ext in msg.extensions)
        # ``Any`` keys: lxml takes None for the default namespace; its stubs say str.
        nsmap: dict[Any, str] = {"mm7": self.ns} if unqualified else {None: self.ns}
        # Built in place: appending a finished subtree makes lxml re-home every node.
        root = (
            etree.Element(self.q + cls.TAG, nsmap=nsmap)
            if parent is None
            else etree.SubElement(parent, self.q + cls.TAG, nsmap=nsmap)
        )
        legacy = self.legacy
        for element, qname, attr, kind, required in plan.steps:
            value = getattr(msg, attr)
            if kind is _TEXT and value is not None:  # the common case, inlined
                text = str(value)
                if legacy and element in _LEGACY_NMTOKEN_ELEMENTS and not _NMTOKEN.match(text):
                    raise EncodeError(
                        f"{element} {text!r} is not an xs:NMTOKEN, as {self.version} requires"
                    )
                etree.SubElement(root, qname).text = text
                continue
            if kind is _VERSION:
                etree.SubElement(root, qname).text = value or MM7_VERSION_VALUES[self.version][0]
                continue
            if kind is _STATUS:
                assert isinstance(msg, Response)  # noqa: S101 - ELEMENTS ties STATUS to responses
                self._status(root, msg)
                continue
            if value is None or (value == () and kind is not Kind.SENDER_ID):
                if required:
                    raise EncodeError(
                        f"{cls.TAG}.{element} is required by MM7 schema {self.version}"
                    )
                continue
            self._value(root, element, kind, value, cls.TAG)
        for attr, element in plan.undefined:
            if getattr(msg, attr) not in (None, ()):
                raise EncodeError(
                    f"{cls.TAG}.{element} is not defined in MM7 schema {self.version}"
                )
        for ext in msg.extensions:
            root.append(self._extension(ext.name, ext.namespace, ext.text, ext.xml))
        return root

    def _value(
        self, parent: etree._Element, element: str, kind: Kind, value: Any, tag: str
    ) -> None:
        if kind is Kind.TEXT:
            self._text(parent, element, str(value))
        elif kind is Kind.BOOL:
            self._text(parent, element, write_bool(bool(value)))
        elif kind is Kind.DATE:
            self._text(parent, element, write_date(value))
        elif kind is Kind.ADDRESS:
            self._address(etree.SubElement(parent, self.q + element), value)
        elif kind is Kind.RECIPIENTS:
            self._recipients(parent, element, value, tag)
        elif kind is Kind.SENDER_ID:
            self._sender_id(parent, value)
        elif kind is Kind.CONTENT:
            self._content(parent, value)
        elif kind is Kind.REPLY_CHARGING:
            self._reply_charging(parent, value)
        elif kind is Kind.DELIVERY_CONDITION:
            self._delivery_condition(parent, value)
        elif kind is Kind.UA_CAPABILITIES:
            self._ua_capabilities(parent, value)
        elif kind is Kind.PREVIOUSLY_SENT_BY:
            self._previously_sent_by(parent, value)
        elif kind is Kind.PREVIOUSLY_SENT_DATE:
            self._previously_sent_date(parent, value)
        else:  # pragma: no cover - every Kind is handled above
            raise EncodeError(f"cannot encode element kind {kind}")

    # -- element renderers --------------------------------------------------------------
    def _text(self, parent: etree._Element, element: str, text: str) -> etree._Element:
        if self.legacy and element in _LEGACY_NMTOKEN_ELEMENTS and not _NMTOKEN.match(text):
            raise EncodeError(
                f"{element} {text!r} is not an xs:NMTOKEN, as {self.version} requires"
            )
        child = etree.SubElement(parent, self.q + element)
        child.text = text
        return child

    def _status(self, parent: etree._Element, msg: Response) -> None:
        status = etree.SubElement(parent, self.q + "Status")
        self._text(status, "StatusCode", str(msg.status_code))
        if isinstance(msg, ExtendedCancelRsp | ExtendedReplaceRsp):
            # Their Status type holds StatusCode only.
            if msg.status_text is not None or msg.details is not None:
                raise EncodeError(f"{type(msg).TAG} carries only a StatusCode")
            return
        self._text(status, "StatusText", msg.status_text or status_name(msg.status_code))
        if msg.details is not None:
            details = etree.SubElement(status, self.q + "Details")
            self._text(details, "Text", msg.details)

    def _address(self, element: etree._Element, address: Address) -> None:
        if not isinstance(address, Address):
            raise EncodeError(f"expected an Address, got {type(address).__name__}")
        value = address.value
        if self.legacy and address.kind is not AddressKind.RFC2822:
            # REL-5-MM7-1-0/1-1 type Number/ShortCode as xs:NMTOKEN: no '+', no spaces.
            value = value.lstrip("+")
            if not _NMTOKEN.match(value):
                raise EncodeError(
                    f"address {address.value!r} is not valid in MM7 schema {self.version}"
                )
        child = self._text(element, address.kind.value, value)
        if address.display_only is not None:
            child.set("displayOnly", write_bool(address.display_only))
        if address.address_coding is not None or address.id is not None:
            if self.version not in ADDRESS_SECURITY_VERSIONS:
                raise EncodeError(f"addressCoding/id are not defined in {self.version}")
            if address.address_coding is not None:
                child.set("addressCoding", address.address_coding.value)
            if address.id is not None:
                child.set("id", address.id)

    def _recipients(self, parent: etree._Element, element: str, value: Any, tag: str) -> None:
        if not isinstance(value, Recipients) or len(value) == 0:
            raise EncodeError(f"{tag}.{element} needs at least one To, Cc or Bcc address")
        recipients = etree.SubElement(parent, self.q + element)
        for group, addresses in (("To", value.to), ("Cc", value.cc), ("Bcc", value.bcc)):
            if addresses:
                holder = etree.SubElement(recipients, self.q + group)
                for address in addresses:
                    self._address(holder, address)

    def _sender_id(self, parent: etree._Element, value: SenderIdentification) -> None:
        sender = etree.SubElement(parent, self.q + "SenderIdentification")
        if value.vasp_id is not None:
            self._text(sender, "VASPID", value.vasp_id)
        if value.vas_id is not None:
            self._text(sender, "VASID", value.vas_id)
        if value.sender_address is not None:
            if self.legacy:
                # xs:string in REL-5-MM7-1-0/1-1: the address text only.
                self._text(sender, "SenderAddress", value.sender_address.value)
            else:
                self._address(
                    etree.SubElement(sender, self.q + "SenderAddress"), value.sender_address
                )

    def _content(self, parent: etree._Element, value: ContentReference) -> None:
        child = etree.SubElement(parent, self.q + "Content")
        child.set("href", value.href)
        if value.allow_adaptations is not None:
            child.set("allowAdaptations", write_bool(value.allow_adaptations))

    def _reply_charging(self, parent: etree._Element, value: ReplyCharging) -> None:
        child = etree.SubElement(parent, self.q + "ReplyCharging")
        if value.reply_charging_size is not None:
            child.set("replyChargingSize", str(value.reply_charging_size))
        if value.reply_deadline is not None:
            child.set("replyDeadline", write_date(value.reply_deadline))

    def _delivery_condition(self, parent: etree._Element, value: tuple[int, ...]) -> None:
        if self.version == "REL-6-MM7-1-3":  # a plain string element in that schema only
            self._text(parent, "DeliveryCondition", " ".join(str(v) for v in value))
            return
        child = etree.SubElement(parent, self.q + "DeliveryCondition")
        for dc in value:
            self._text(child, "DC", str(dc))

    def _ua_capabilities(self, parent: etree._Element, value: UACapabilities) -> None:
        child = etree.SubElement(parent, self.q + "UACapabilities")
        if value.ua_prof is not None:
            child.set("UAProf", value.ua_prof)
        if value.time_stamp is not None:
            child.set("TimeStamp", write_date(value.time_stamp))

    def _previously_sent_by(self, parent: etree._Element, value: tuple[UserAgent, ...]) -> None:
        child = etree.SubElement(parent, self.q + "Previouslysentby")
        for agent in value:
            entry = etree.SubElement(child, self.q + "UserAgent")
            if agent.sequence is not None:
                entry.set("sequence", str(agent.sequence))
            self._address(entry, agent.address)

    def _previously_sent_date(
        self, parent: etree._Element, value: tuple[UserAgentDateTime, ...]
    ) -> None:
        child = etree.SubElement(parent, self.q + "Previouslysentdateandtime")
        for item in value:
            entry = self._text(child, "DateTime", write_date(item.value))
            if item.sequence is not None:
                entry.set("sequence", str(item.sequence))

    def _extension(
        self, name: str, namespace: str | None, text: str | None, xml: bytes
    ) -> etree._Element:
        if xml:
            return etree.fromstring(xml)
        element = etree.Element(("{" + namespace + "}" if namespace else "") + name)
        element.text = text
        return element

    # -- envelope ------------------------------------------------------------------------
    def envelope(self, msg: Message) -> bytes:
        envelope = etree.Element(ENV + "Envelope", nsmap={"env": SOAP_ENV_NS})
        header = etree.SubElement(envelope, ENV + "Header")
        if msg.transaction_id is None:
            raise EncodeError("transaction_id is required (SOAP header TransactionID)")
        tid = etree.SubElement(header, self.q + "TransactionID", nsmap={"mm7": self.ns})
        tid.text = msg.transaction_id
        if self.legacy:
            if not _NMTOKEN.match(msg.transaction_id):
                raise EncodeError(
                    f"TransactionID {msg.transaction_id!r} is not an xs:NMTOKEN, "
                    f"as {self.version} requires"
                )
        else:
            tid.set(ENV + "mustUnderstand", "1")
        body = etree.SubElement(envelope, ENV + "Body")
        if isinstance(msg, ErrorRsp):
            fault = etree.SubElement(body, ENV + "Fault")
            etree.SubElement(fault, "faultcode").text = msg.fault_code or fault_code_for(
                msg.status_code
            )
            etree.SubElement(fault, "faultstring").text = (
                msg.fault_string or msg.status_text or status_name(msg.status_code)
            )
            self.body_element(msg, etree.SubElement(fault, "detail"))
        else:
            self.body_element(msg, body)
        return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def _content_id(attachment: Attachment, index: int) -> str:
    return attachment.content_id or f"part{index}@mm7-gateway"


def _out_part(
    attachment: Attachment, index: int, binary: bool, seed: str
) -> tuple[mime.OutPart, bytes]:
    headers: list[tuple[str, str]] = []
    if attachment.parts:
        children = [
            _out_part(child, i, binary, f"{seed}.{index}")[0]
            for i, child in enumerate(attachment.parts)
        ]
        boundary = mime.choose_boundary(f"{seed}.{index}", [c.body for c in children])
        body = mime.build_multipart(children, boundary)
        headers.append(("Content-Type", f'{attachment.content_type}; boundary="{boundary}"'))
    else:
        headers.append(("Content-Type", attachment.content_type))
        if binary:
            body = attachment.data
            headers.append(("Content-Transfer-Encoding", "binary"))
        else:
            body = mime.encode_base64(attachment.data)
            headers.append(("Content-Transfer-Encoding", "base64"))
    if attachment.content_id is not None:
        headers.append(("Content-ID", f"<{attachment.content_id}>"))
    if attachment.content_location is not None:
        headers.append(("Content-Location", attachment.content_location))
    return mime.OutPart(tuple(headers), body), body


def envelope_xml(msg: Message, version: str) -> bytes:
    """The SOAP envelope of ``msg`` (its XML part), built element by element."""
    return _Builder(version).envelope(msg)


def encode_message(
    msg: Message,
    version: str,
    *,
    transfer_encoding: str = "binary",
    boundary: str | None = None,
    templates: EnvelopeTemplates | None = None,
) -> tuple[str, bytes]:
    if version not in LAYOUTS:
        raise UnsupportedVersion(f"unknown MM7 schema version {version!r}")
    if transfer_encoding not in ("binary", "base64"):
        raise EncodeError(
            f"transfer_encoding must be 'binary' or 'base64', not {transfer_encoding!r}"
        )
    has_content = "content" in type(msg).__dataclass_fields__
    if msg.attachments and has_content and getattr(msg, "content", None) is None:
        first = msg.attachments[0]
        if first.content_id is None:
            raise EncodeError("the first attachment needs a content_id for the Content href")
        msg = dataclasses.replace(msg, content=ContentReference(href="cid:" + first.content_id))  # type: ignore[call-arg]
    if templates is not None and isinstance(msg, SubmitReq):
        xml = templates.envelope(msg, version)
    else:
        xml = _Builder(version).envelope(msg)
    if not msg.attachments:
        return "text/xml; charset=utf-8", xml
    seed = msg.transaction_id or "mm7"
    binary = transfer_encoding == "binary"
    parts = [
        mime.OutPart(
            (
                ("Content-Type", "text/xml; charset=utf-8"),
                ("Content-Transfer-Encoding", "8bit"),
                ("Content-ID", f"<{SOAP_PART_ID}>"),
            ),
            xml,
        )
    ]
    parts += [_out_part(a, i, binary, seed)[0] for i, a in enumerate(msg.attachments)]
    chosen = boundary or mime.choose_boundary(seed, [p.body for p in parts])
    content_type = (
        f'multipart/related; boundary="{chosen}"; type="text/xml"; start="<{SOAP_PART_ID}>"'
    )
    return content_type, mime.build_multipart(parts, chosen)
