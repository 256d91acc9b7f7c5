"""Realistic, fully populated MM7 messages for every type and schema version.

``full_message(cls, version)`` sets every field the version's schema defines for that
message, with values a real VASP or MMSC would send, so the encoded Body exercises every
element the schema knows.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from protocol import (
    Address,
    AddressCoding,
    Attachment,
    ContentReference,
    Message,
    Recipients,
    ReplyCharging,
    Response,
    SenderIdentification,
    UACapabilities,
    UserAgent,
    UserAgentDateTime,
)
from protocol.layouts import LAYOUTS
from protocol.versions import ADDRESS_SECURITY_VERSIONS, LEGACY_VERSIONS

KST = timezone(timedelta(hours=9))
WHEN = datetime(2024, 7, 4, 3, 11, 38, tzinfo=KST)
LATER = datetime(2024, 7, 11, 3, 11, 38, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"
SMIL = (
    b'<smil><head><layout><region id="Image" top="0" left="0" height="80%" width="100%"/>'
    b'</layout></head><body><par dur="5s"><img src="cid:photo@vasp.example" region="Image"/>'
    b'<text src="cid:caption@vasp.example"/></par></body></smil>'
)


def number(
    value: str,
    version: str,
    *,
    display_only: bool | None = None,
    address_coding: AddressCoding | None = None,
    ident: str | None = None,
) -> Address:
    """A Number, with ``+`` only where the schema allows it and REL-6 attributes where they exist."""
    if version in LEGACY_VERSIONS:
        value = value.lstrip("+")
    if version not in ADDRESS_SECURITY_VERSIONS:
        address_coding, ident = None, None
    return Address(value=value, display_only=display_only, address_coding=address_coding, id=ident)


def attachments() -> tuple[Attachment, ...]:
    """A SMIL presentation with an image and a caption, as nested multipart/related."""
    return (
        Attachment(
            content_type='multipart/related; type="application/smil"; start="<pres@vasp.example>"',
            content_id="content@vasp.example",
            parts=(
                Attachment(
                    content_type="application/smil", data=SMIL, content_id="pres@vasp.example"
                ),
                Attachment(content_type="image/jpeg", data=JPEG, content_id="photo@vasp.example"),
                Attachment(
                    content_type="text/plain; charset=utf-8",
                    data="Grüße aus Seoul 서울".encode(),
                    content_id="caption@vasp.example",
                    content_location="caption.txt",
                ),
            ),
        ),
    )


def _values(version: str) -> dict[str, Any]:
    rel6 = version.startswith("REL-6")
    sender = number("+821056610926", version)
    sender_id = SenderIdentification(
        vasp_id="seoultel",
        vas_id="news-alerts",
        sender_address=Address.short_code("7777"),
    )
    recipients = Recipients(
        to=(
            number("+821056610926", version, display_only=False),
            number(
                "+821098765432",
                version,
                address_coding=AddressCoding.OBFUSCATED,
                ident="rcpt-2",
            ),
        ),
        cc=(Address.rfc2822("news@vasp.example", display_only=True),),
        bcc=(Address.short_code("1234"),),
    )
    return {
        "transaction_id": "vasp-2024-0704-000123",
        "sender_identification": sender_id,
        "recipients": recipients,
        "service_code": "NEWS-DAILY",
        "linked_id": "mmsc-0701-778899",
        "message_class": "Informational",
        "time_stamp": WHEN,
        "reply_charging": ReplyCharging(reply_charging_size=40960, reply_deadline="P2D"),
        "earliest_delivery_time": WHEN + timedelta(minutes=5),
        "expiry_date": LATER,
        "delivery_report": True,
        "read_reply": False,
        "priority": "High",
        "subject": "Weather for Seoul / 서울 날씨",
        "charged_party": "ThirdParty" if version == "REL-6-MM7-1-4" else "Sender",
        "charged_party_id": "acct-4471",
        "distribution_indicator": False,
        "delivery_condition": (1, 3),
        "applic_id": "com.example.weather",
        "reply_applic_id": "com.example.weather.reply",
        "aux_applic_info": "locale=ko-KR",
        "content_class": "image-basic",
        "drm_content": False,
        "content": ContentReference(href="cid:content@vasp.example", allow_adaptations=True),
        "message_id": "041502073667",
        "mms_relay_server_id": "mmsc01.carrier.example",
        "vasp_id": "seoultel",
        "vas_id": "news-alerts",
        "sender": sender,
        "recipient": number("+821056610926", version),
        "previously_sent_by": (
            UserAgent(address=number("+821011112222", version), sequence=1),
            UserAgent(address=Address.rfc2822("friend@example.net"), sequence=2),
        ),
        "previously_sent_date_and_time": (
            UserAgentDateTime(value=WHEN - timedelta(hours=2), sequence=1),
            UserAgentDateTime(value=WHEN - timedelta(hours=1), sequence=2),
        ),
        "sender_spi": "SPI-A",
        "recipient_spi": "SPI-B",
        "reply_charging_id": "rc-000042",
        "ua_capabilities": UACapabilities(
            ua_prof="http://nds1.nds.nokia.com/uaprof/N6230r200.xml", time_stamp=WHEN
        ),
        "date": WHEN,
        "mm_status": "Retrieved",
        "mm_status_extension": "RejectionByMMSRecipient" if rel6 else None,
        "status_text": "Delivered to handset",
        "cancel_id": "cancel-0042",
        "replace_id": "replace-0042",
    }


def full_message(cls: type[Message], version: str, *, with_attachments: bool = True) -> Message:
    """Every field ``version`` defines for ``cls`` set to a realistic value."""
    layout = LAYOUTS[version][cls.TAG]
    wanted = {cls.ELEMENTS[element][0] for element, _ in layout}
    values = _values(version)
    kwargs: dict[str, Any] = {"transaction_id": values["transaction_id"]}
    for field in dataclasses.fields(cls):
        if field.name in wanted and field.name in values and values[field.name] is not None:
            kwargs[field.name] = values[field.name]
    if cls.TAG == "ReadReplyReq":
        kwargs["mm_status"] = "Read"
    if issubclass(cls, Response):
        kwargs["status_code"] = 1000
        if cls.TAG.startswith("extended"):
            pass  # their Status holds StatusCode only
        else:
            kwargs["status_text"] = "Success"
            kwargs["details"] = "accepted by mmsc01"
        if cls.TAG in ("RSErrorRsp", "VASPErrorRsp"):
            kwargs["status_code"] = 4006
            kwargs["status_text"] = "Service unavailable"
    if with_attachments and "content" in kwargs:
        kwargs["attachments"] = attachments()
    return cls(**kwargs)
