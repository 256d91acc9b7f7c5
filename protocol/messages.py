# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Plain data classes for every MM7 message (TS 23.140 §8.7, schemas REL-5-MM7-1-0 … REL-6-MM7-1-4).

Class names are the MM7 element names; attribute names are the snake_case of the element
names (DESIGN.md §9). Each class lists, in ``ELEMENTS``, which child element feeds which
attribute and how its text is typed; the per-version *order* and *presence* of those
elements lives in ``layouts.py``. Fields hold the union of every version's elements:
the encoder refuses a field that the target version does not define.

Values are kept tolerant: enumerations (priority, message class, MMStatus, …) are plain
strings so that a vendor's odd value survives decoding; dates are ``datetime`` when they
parse and the raw text otherwise (durations like ``P90D`` are legitimate raw values).

Long by nature (past 500 lines): one class per MM7 message, each with its element table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Final

from protocol.addresses import Address, Recipients

#: An MM7 date: an absolute ``datetime`` or the text of a relative duration (``P90D``)
#: or of a date we could not parse.
DateValue = datetime | str


class Kind(enum.Enum):
    """How a child element's content maps to a Python value."""

    TEXT = "text"
    BOOL = "bool"
    INT = "int"
    DATE = "date"
    ADDRESS = "address"
    SENDER_ADDRESS = "sender_address"  # xs:string in REL-5-MM7-1-0/1-1, an address later
    RECIPIENTS = "recipients"
    SENDER_ID = "sender_id"
    REPLY_CHARGING = "reply_charging"
    DELIVERY_CONDITION = "delivery_condition"
    UA_CAPABILITIES = "ua_capabilities"
    PREVIOUSLY_SENT_BY = "previously_sent_by"
    PREVIOUSLY_SENT_DATE = "previously_sent_date"
    CONTENT = "content"
    STATUS = "status"
    VERSION = "version"


#: Enumerated values the schemas define (kept as strings on the messages).
PRIORITIES: Final = ("Normal", "High", "Low")
MESSAGE_CLASSES: Final = ("Personal", "Informational", "Advertisement", "Auto")
CHARGED_PARTIES: Final = ("Sender", "Recipient", "Both", "Neither", "ThirdParty")
CONTENT_CLASSES: Final = (
    "text",
    "image-basic",
    "image-rich",
    "video-basic",
    "video-rich",
    "megapixel",
    "content-basic",
    "content-rich",
)
MM_DELIVERY_STATUSES: Final = (
    "Expired",
    "Retrieved",
    "Rejected",
    "Indeterminate",
    "Forwarded",
    "Unrecognised",
    "Deferred",
    "DeliveryConditionNotMet",
)
MM_READ_STATUSES: Final = ("Indeterminate", "Read", "Deleted")
MM_STATUS_EXTENSIONS: Final = ("RejectionByMMSRecipient", "RejectionByOtherRS")


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    """One MIME part carried with the SOAP envelope (SOAP with Attachments).

    ``content_type`` is the full header value except any ``boundary`` parameter (the
    encoder makes one). A multipart part (e.g. ``multipart/related`` holding a SMIL
    presentation and its media) has its children in ``parts`` and empty ``data``.
    """

    content_type: str
    data: bytes = b""
    content_id: str | None = None
    content_location: str | None = None
    parts: tuple[Attachment, ...] = ()

    @property
    def media_type(self) -> str:
        return self.content_type.split(";", 1)[0].strip().lower()

    @property
    def is_multipart(self) -> bool:
        return self.media_type.startswith("multipart/")

    def walk(self) -> tuple[Attachment, ...]:
        """This part and all nested parts, depth first."""
        out: list[Attachment] = [self]
        for part in self.parts:
            out.extend(part.walk())
        return tuple(out)

    @property
    def size(self) -> int:
        return len(self.data) + sum(part.size for part in self.parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Extension:
    """An element the schema does not define (vendor additions such as ``X-SKT-*``).

    ``xml`` is the element serialised as received, re-emitted verbatim by the encoder.
    """

    name: str
    namespace: str | None = None
    text: str | None = None
    xml: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderIdentification:
    vasp_id: str | None = None
    vas_id: str | None = None
    sender_address: Address | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentReference:
    """``Content``: the ``href`` to the MIME part holding the MM content."""

    href: str
    allow_adaptations: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyCharging:
    reply_charging_size: int | None = None
    reply_deadline: DateValue | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UACapabilities:
    ua_prof: str | None = None
    time_stamp: DateValue | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserAgent:
    """One ``Previouslysentby/UserAgent`` entry."""

    address: Address
    sequence: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserAgentDateTime:
    """One ``Previouslysentdateandtime/DateTime`` entry."""

    value: DateValue
    sequence: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """Fields every MM7 message carries, whatever its type."""

    #: Element name -> (attribute name, kind); each subclass extends it.
    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {"MM7Version": ("mm7_version", Kind.VERSION)}
    #: The element name in the SOAP Body (differs from the class name for the extended ones).
    TAG: ClassVar[str] = ""

    #: SOAP header ``TransactionID``.
    transaction_id: str | None = None
    #: ``MM7Version`` element text; ``None`` means "the default of the encoded schema".
    mm7_version: str | None = None
    #: Namespace suffix seen on decode (``REL-6-MM7-1-4``); ignored by ``encode``.
    version: str | None = field(default=None, compare=False)
    attachments: tuple[Attachment, ...] = ()
    extensions: tuple[Extension, ...] = ()
    #: Tolerances applied while decoding (vendor quirks), e.g. ``"missing_start"``.
    leniencies: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Response(Message):
    """Generic response: ``Status`` with code, text and optional details."""

    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {
        **Message.ELEMENTS,
        "Status": ("status_code", Kind.STATUS),
    }

    status_code: int = 1000
    #: ``StatusText``; ``None`` makes the encoder emit the code's standard name.
    status_text: str | None = None
    #: Text content of ``Status/Details`` (vendor diagnostics).
    details: str | None = None


_APPLIC: Final[dict[str, tuple[str, Kind]]] = {
    "ApplicID": ("applic_id", Kind.TEXT),
    "ReplyApplicID": ("reply_applic_id", Kind.TEXT),
    "AuxApplicInfo": ("aux_applic_info", Kind.TEXT),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitReq(Message):
    """MM7_submit.REQ: VASP -> MMS Relay/Server (TS 23.140 §8.7.1)."""

    TAG: ClassVar[str] = "SubmitReq"
    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {
        **Message.ELEMENTS,
        "SenderIdentification": ("sender_identification", Kind.SENDER_ID),
        "Recipients": ("recipients", Kind.RECIPIENTS),
        "ServiceCode": ("service_code", Kind.TEXT),
        "LinkedID": ("linked_id", Kind.TEXT),
        "MessageClass": ("message_class", Kind.TEXT),
        "TimeStamp": ("time_stamp", Kind.DATE),
        "ReplyCharging": ("reply_charging", Kind.REPLY_CHARGING),
        "EarliestDeliveryTime": ("earliest_delivery_time", Kind.DATE),
        "ExpiryDate": ("expiry_date", Kind.DATE),
        "DeliveryReport": ("delivery_report", Kind.BOOL),
        "ReadReply": ("read_reply", Kind.BOOL),
        "Priority": ("priority", Kind.TEXT),
        "Subject": ("subject", Kind.TEXT),
        "ChargedParty": ("charged_party", Kind.TEXT),
        "ChargedPartyID": ("charged_party_id", Kind.TEXT),
        "DistributionIndicator": ("distribution_indicator", Kind.BOOL),
        # REL-5-MM7-1-0 name of the same flag.
        "DistributionProtection": ("distribution_indicator", Kind.BOOL),
        "DeliveryCondition": ("delivery_condition", Kind.DELIVERY_CONDITION),
        **_APPLIC,
        "ContentClass": ("content_class", Kind.TEXT),
        "DRMContent": ("drm_content", Kind.BOOL),
        "Content": ("content", Kind.CONTENT),
    }

    sender_identification: SenderIdentification = field(default_factory=SenderIdentification)
    recipients: Recipients = field(default_factory=Recipients)
    service_code: str | None = None
    linked_id: str | None = None
    message_class: str | None = None
    time_stamp: DateValue | None = None
    reply_charging: ReplyCharging | None = None
    earliest_delivery_time: DateValue | None = None
    expiry_date: DateValue | None = None
    delivery_report: bool | None = None
    read_reply: bool | None = None
    priority: str | None = None
    subject: str | None = None
    charged_party: str | None = None
    charged_party_id: str | None = None
    distribution_indicator: bool | None = None
    #: ``DeliveryCondition/DC`` values (a single string element in REL-6-MM7-1-3).
    delivery_condition: tuple[int, ...] | None = None
    applic_id: str | None = None
    reply_applic_id: str | None = None
    aux_applic_info: str | None = None
    content_class: str | None = None
    drm_content: bool | None = None
    content: ContentReference | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitRsp(Response):
    TAG: ClassVar[str] = "SubmitRsp"
    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {
        **Response.ELEMENTS,
        "MessageID": ("message_id", Kind.TEXT),
    }

    message_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverReq(Message):
    """MM7_deliver.REQ: MMS Relay/Server -> VASP, an MM from a user (§8.7.4)."""

    TAG: ClassVar[str] = "DeliverReq"
    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {
        **Message.ELEMENTS,
        "MMSRelayServerID": ("mms_relay_server_id", Kind.TEXT),
        "VASPID": ("vasp_id", Kind.TEXT),
        "VASID": ("vas_id", Kind.TEXT),
        "LinkedID": ("linked_id", Kind.TEXT),
        "Sender": ("sender", Kind.ADDRESS),
        "Recipients": ("recipients", Kind.RECIPIENTS),
        "Previouslysentby": ("previously_sent_by", Kind.PREVIOUSLY_SENT_BY),
        "Previouslysentdateandtime": ("previously_sent_date_and_time", Kind.PREVIOUSLY_SENT_DATE),
        "SenderSPI": ("sender_spi", Kind.TEXT),
        "RecipientSPI": ("recipient_spi", Kind.TEXT),
        "TimeStamp": ("time_stamp", Kind.DATE),
        "ReplyChargingID": ("reply_charging_id", Kind.TEXT),
        "Priority": ("priority", Kind.TEXT),
        "Subject": ("subject", Kind.TEXT),
        **_APPLIC,
        "UACapabilities": ("ua_capabilities", Kind.UA_CAPABILITIES),
        "Content": ("content", Kind.CONTENT),
    }

    mms_relay_server_id: str | None = None
    vasp_id: str | None = None
    vas_id: str | None = None
    linked_id: str | None = None
    #: Mandatory in every schema, but real MMSCs omit it: ``None`` when absent.
    sender: Address | None = None
    recipients: Recipients | None = None
    previously_sent_by: tuple[UserAgent, ...] = ()
    previously_sent_date_and_time: tuple[UserAgentDateTime, ...] = ()
    sender_spi: str | None = None
    recipient_spi: str | None = None
    time_stamp: DateValue | None = None
    reply_charging_id: str | None = None
    priority: str | None = None
    subject: str | None = None
    applic_id: str | None = None
    reply_applic_id: str | None = None
    aux_applic_info: str | None = None
    ua_capabilities: UACapabilities | None = None
    content: ContentReference | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverRsp(Response):
    TAG: ClassVar[str] = "DeliverRsp"
    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {
        **Response.ELEMENTS,
        "ServiceCode": ("service_code", Kind.TEXT),
    }

    service_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelReq(Message):
    TAG: ClassVar[str] = "CancelReq"
    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {
        **Message.ELEMENTS,
        "SenderIdentification": ("sender_identification", Kind.SENDER_ID),
        "MessageID": ("message_id", Kind.TEXT),
        **_APPLIC,
    }

    sender_identification: SenderIdentification = field(default_factory=SenderIdentification)
    message_id: str | None = None
    applic_id: str | None = None
    reply_applic_id: str | None = None
    aux_applic_info: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRsp(Response):
    TAG: ClassVar[str] = "CancelRsp"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceReq(Message):
    TAG: ClassVar[str] = "ReplaceReq"
    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {
        **Message.ELEMENTS,
        "SenderIdentification": ("sender_identification", Kind.SENDER_ID),
        "MessageID": ("message_id", Kind.TEXT),
        "ServiceCode": ("service_code", Kind.TEXT),
        "TimeStamp": ("time_stamp", Kind.DATE),
        "ReadReply": ("read_reply", Kind.BOOL),
        "EarliestDeliveryTime": ("earliest_delivery_time", Kind.DATE),
        "DistributionIndicator": ("distribution_indicator", Kind.BOOL),
        "DistributionProtection": ("distribution_indicator", Kind.BOOL),
        "ContentClass": ("content_class", Kind.TEXT),
        "DRMContent": ("drm_content", Kind.BOOL),
        **_APPLIC,
        "Content": ("content", Kind.CONTENT),
    }

    sender_identification: SenderIdentification = field(default_factory=SenderIdentification)
    message_id: str | None = None
    service_code: str | None = None
    time_stamp: DateValue | None = None
    read_reply: bool | None = None
    earliest_delivery_time: DateValue | None = None
    distribution_indicator: bool | None = None
    content_class: str | None = None
    drm_content: bool | None = None
    applic_id: str | None = None
    reply_applic_id: str | None = None
    aux_applic_info: str | None = None
    content: ContentReference | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceRsp(Response):
    TAG: ClassVar[str] = "ReplaceRsp"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtendedCancelReq(Message):
    """REL-6-MM7-1-4 only: cancel by ``CancelID``."""

    TAG: ClassVar[str] = "extendedCancelReq"
    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {
        **Message.ELEMENTS,
        "SenderIdentification": ("sender_identification", Kind.SENDER_ID),
        "CancelID": ("cancel_id", Kind.TEXT),
    }

    sender_identification: SenderIdentification = field(default_factory=SenderIdentification)
    cancel_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtendedCancelRsp(Response):
    """REL-6-MM7-1-4 only; its ``Status`` holds only ``StatusCode``."""

    TAG: ClassVar[str] = "extendedCancelRsp"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtendedReplaceReq(Message):
    TAG: ClassVar[str] = "extendedReplaceReq"
    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {
        **Message.ELEMENTS,
        "VASPID": ("vasp_id", Kind.TEXT),
        "VASID": ("vas_id", Kind.TEXT),
        "ServiceCode": ("service_code", Kind.TEXT),
        "ReplaceID": ("replace_id", Kind.TEXT),
        "TimeStamp": ("time_stamp", Kind.DATE),
        "EarliestDeliveryTime": ("earliest_delivery_time", Kind.DATE),
        "ExpiryDate": ("expiry_date", Kind.DATE),
        "ReadReply": ("read_reply", Kind.BOOL),
        "DeliveryReport": ("delivery_report", Kind.BOOL),
        "Content": ("content", Kind.CONTENT),
    }

    vasp_id: str | None = None
    vas_id: str | None = None
    service_code: str | None = None
    replace_id: str | None = None
    time_stamp: DateValue | None = None
    earliest_delivery_time: DateValue | None = None
    expiry_date: DateValue | None = None
    read_reply: bool | None = None
    delivery_report: bool | None = None
    content: ContentReference | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtendedReplaceRsp(Response):
    TAG: ClassVar[str] = "extendedReplaceRsp"
    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {
        **Response.ELEMENTS,
        "MessageID": ("message_id", Kind.TEXT),
    }

    message_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryReportReq(Message):
    """MM7_delivery_report.REQ: MMS Relay/Server -> VASP (§8.7.6)."""

    TAG: ClassVar[str] = "DeliveryReportReq"
    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {
        **Message.ELEMENTS,
        "MMSRelayServerID": ("mms_relay_server_id", Kind.TEXT),
        "MessageID": ("message_id", Kind.TEXT),
        "Recipient": ("recipient", Kind.ADDRESS),
        "Sender": ("sender", Kind.ADDRESS),
        "Date": ("date", Kind.DATE),
        # REL-5-MM7-1-4 and REL-6-MM7-1-1 name the date ``TimeStamp``; vendors mix both.
        "TimeStamp": ("date", Kind.DATE),
        "MMStatus": ("mm_status", Kind.TEXT),
        "MMStatusExtension": ("mm_status_extension", Kind.TEXT),
        "StatusText": ("status_text", Kind.TEXT),
        **_APPLIC,
        "UACapabilities": ("ua_capabilities", Kind.UA_CAPABILITIES),
    }

    mms_relay_server_id: str | None = None
    message_id: str | None = None
    recipient: Address | None = None
    sender: Address | None = None
    date: DateValue | None = None
    mm_status: str | None = None
    mm_status_extension: str | None = None
    status_text: str | None = None
    applic_id: str | None = None
    reply_applic_id: str | None = None
    aux_applic_info: str | None = None
    ua_capabilities: UACapabilities | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryReportRsp(Response):
    TAG: ClassVar[str] = "DeliveryReportRsp"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadReplyReq(Message):
    """MM7_read_reply.REQ: MMS Relay/Server -> VASP (§8.7.7)."""

    TAG: ClassVar[str] = "ReadReplyReq"
    ELEMENTS: ClassVar[dict[str, tuple[str, Kind]]] = {
        **Message.ELEMENTS,
        "MMSRelayServerID": ("mms_relay_server_id", Kind.TEXT),
        "MessageID": ("message_id", Kind.TEXT),
        "Recipient": ("recipient", Kind.ADDRESS),
        "Sender": ("sender", Kind.ADDRESS),
        "TimeStamp": ("time_stamp", Kind.DATE),
        "MMStatus": ("mm_status", Kind.TEXT),
        "StatusText": ("status_text", Kind.TEXT),
        **_APPLIC,
    }

    mms_relay_server_id: str | None = None
    message_id: str | None = None
    recipient: Address | None = None
    sender: Address | None = None
    time_stamp: DateValue | None = None
    mm_status: str | None = None
    status_text: str | None = None
    applic_id: str | None = None
    reply_applic_id: str | None = None
    aux_applic_info: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadReplyRsp(Response):
    TAG: ClassVar[str] = "ReadReplyRsp"


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorRsp(Response):
    """Base of the two error responses, normally carried in a SOAP Fault's ``detail``."""

    #: SOAP ``faultcode`` (e.g. ``env:Server``) when the response came in a Fault.
    fault_code: str | None = None
    #: SOAP ``faultstring``.
    fault_string: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RSErrorRsp(ErrorRsp):
    """Error response from the MMS Relay/Server to a VASP request."""

    TAG: ClassVar[str] = "RSErrorRsp"


@dataclass(frozen=True, slots=True, kw_only=True)
class VASPErrorRsp(ErrorRsp):
    """Error response from the VASP to an MMS Relay/Server request."""

    TAG: ClassVar[str] = "VASPErrorRsp"


#: Body element local name -> class.
MESSAGE_TYPES: Final[dict[str, type[Message]]] = {
    cls.TAG: cls
    for cls in (
        SubmitReq,
        SubmitRsp,
        DeliverReq,
        DeliverRsp,
        CancelReq,
        CancelRsp,
        ReplaceReq,
        ReplaceRsp,
        ExtendedCancelReq,
        ExtendedCancelRsp,
        ExtendedReplaceReq,
        ExtendedReplaceRsp,
        DeliveryReportReq,
        DeliveryReportRsp,
        ReadReplyReq,
        ReadReplyRsp,
        RSErrorRsp,
        VASPErrorRsp,
    )
}

#: Request class -> the response class that answers it.
RESPONSE_FOR: Final[dict[type[Message], type[Response]]] = {
    SubmitReq: SubmitRsp,
    DeliverReq: DeliverRsp,
    CancelReq: CancelRsp,
    ReplaceReq: ReplaceRsp,
    ExtendedCancelReq: ExtendedCancelRsp,
    ExtendedReplaceReq: ExtendedReplaceRsp,
    DeliveryReportReq: DeliveryReportRsp,
    ReadReplyReq: ReadReplyRsp,
}
