"""Hypothesis strategies: MM7 messages of every type that are valid for a drawn version.

Values stay inside what the encoder can emit for that version and what the decoder reads
back unchanged (text without surrounding whitespace, NMTOKENs where REL-5-MM7-1-0/1-1
demand them, ``+`` only where allowed). The documented asymmetries are avoided on purpose:
``status_text`` and fault code/string are always set, and ``content`` always names the
first attachment, so ``decode(encode(m)) == m`` must hold exactly.
"""

from __future__ import annotations

import functools
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from protocol import (
    Address,
    AddressCoding,
    AddressKind,
    Attachment,
    ContentReference,
    ErrorRsp,
    Extension,
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
from protocol.messages import (
    CHARGED_PARTIES,
    CONTENT_CLASSES,
    MESSAGE_CLASSES,
    MESSAGE_TYPES,
    MM_DELIVERY_STATUSES,
    MM_READ_STATUSES,
    MM_STATUS_EXTENSIONS,
    PRIORITIES,
    Kind,
)
from protocol.status import STATUS_TABLE
from protocol.versions import ADDRESS_SECURITY_VERSIONS, LEGACY_VERSIONS, MM7_VERSION_VALUES

NMTOKEN_ELEMENTS = frozenset(
    {"MessageID", "LinkedID", "ReplyChargingID", "MMSRelayServerID", "VASPID", "VASID"}
)

#: Any XML-safe text the decoder gives back unchanged (it strips surrounding whitespace,
#: and XML turns CR into LF).
texts = (
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc", "Cn"), blacklist_characters="\ufffe\uffff"),
        min_size=1,
        max_size=24,
    )
    .map(str.strip)
    .filter(bool)
)
nmtokens = st.text(string.ascii_letters + string.digits + "._:-", min_size=1, max_size=24)
digits = st.text(string.digits, min_size=3, max_size=15)
zones = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=9)), timezone(-timedelta(hours=5, minutes=30))]
)
datetimes = st.builds(
    lambda dt, tz: dt.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),  # noqa: DTZ001
    zones,
)
durations = st.sampled_from(["P90D", "PT12H", "P1Y2M", "P2DT3H4M"])
dates = st.one_of(datetimes, durations)


@functools.cache
def addresses(version: str, *, attributes: bool = True) -> st.SearchStrategy[Address]:
    legacy = version in LEGACY_VERSIONS
    number = (
        digits
        if legacy
        else st.builds(lambda plus, d: plus + d, st.sampled_from(["", "+"]), digits)
    )
    short = st.text(string.digits, min_size=3, max_size=6)
    email = st.builds(
        lambda u, d: f"{u}@{d}.example",
        nmtokens.filter(lambda s: ":" not in s),
        st.sampled_from(["vasp", "carrier"]),
    )
    security = attributes and version in ADDRESS_SECURITY_VERSIONS
    return st.one_of(
        *(
            st.builds(
                lambda value, display, coding, ident, kind=kind: Address(
                    value=value, kind=kind, display_only=display, address_coding=coding, id=ident
                ),
                values,
                st.none() | st.booleans() if attributes else st.none(),
                st.none() | st.sampled_from(AddressCoding) if security else st.none(),
                st.none() | st.from_regex(r"\Aa[a-z0-9]{1,8}\Z") if security else st.none(),
            )
            for kind, values in (
                (AddressKind.NUMBER, number),
                (AddressKind.SHORT_CODE, short),
                (AddressKind.RFC2822, email),
            )
        )
    )


def sender_addresses(version: str) -> st.SearchStrategy[Address]:
    if version in LEGACY_VERSIONS:
        # SenderAddress is plain text there: only the value survives, read back as a
        # Number (or an RFC2822Address when it holds '@').
        return st.one_of(
            digits.map(Address.number),
            st.builds(
                lambda u: Address.rfc2822(f"{u}@vasp.example"),
                nmtokens.filter(lambda s: ":" not in s),
            ),
        )
    return addresses(version)


def recipients(version: str) -> st.SearchStrategy[Recipients]:
    group = st.lists(addresses(version), max_size=3).map(tuple)
    return st.builds(Recipients, to=group, cc=group, bcc=group).filter(lambda r: len(r) > 0)


def sender_identifications(version: str) -> st.SearchStrategy[SenderIdentification]:
    ident = nmtokens if version in LEGACY_VERSIONS else texts
    return st.builds(
        SenderIdentification,
        vasp_id=st.none() | ident,
        vas_id=st.none() | ident,
        sender_address=st.none() | sender_addresses(version),
    )


_MEDIA = [
    "image/jpeg",
    "image/gif",
    "image/png",
    "text/plain; charset=utf-8",
    "audio/amr",
    "application/smil",
    "text/x-vCard",
]


def leaves(ids: st.SearchStrategy[str]) -> st.SearchStrategy[Attachment]:
    return st.builds(
        Attachment,
        content_type=st.sampled_from(_MEDIA),
        data=st.binary(max_size=300),
        content_id=ids,
        content_location=st.none() | st.sampled_from(["photo.jpg", "text_0.txt", "pres.smil"]),
    )


@functools.cache
def attachment_trees() -> st.SearchStrategy[tuple[Attachment, ...]]:
    ids = st.integers(0, 999).map(lambda n: f"part{n}@vasp.example")
    optional_ids = st.none() | ids
    nested = st.builds(
        Attachment,
        content_type=st.sampled_from(
            [
                'multipart/related; type="application/smil"',
                "multipart/mixed",
                "multipart/alternative",
            ]
        ),
        content_id=ids,
        parts=st.lists(leaves(optional_ids), min_size=1, max_size=4).map(tuple),
    )
    doubly = st.builds(
        Attachment,
        content_type=st.just("multipart/mixed"),
        content_id=ids,
        parts=st.lists(st.one_of(leaves(optional_ids), nested), min_size=1, max_size=3).map(tuple),
    )
    first = st.one_of(leaves(ids), nested, doubly)
    rest = st.lists(st.one_of(leaves(optional_ids), nested), max_size=3)
    return st.builds(lambda a, b: (a, *b), first, rest)


def extensions() -> st.SearchStrategy[tuple[Extension, ...]]:
    return st.lists(
        st.builds(
            Extension,
            name=st.sampled_from(["X-Vendor-Tag", "CPID", "X-SKT-Alias", "CalledNet"]),
            namespace=st.sampled_from([None, "urn:vendor:ext"]),
            text=texts,
        ),
        max_size=2,
    ).map(tuple)


#: Elements whose schema type is an enumeration: draw realistic values.
ENUMERATIONS: dict[str, tuple[str, ...]] = {
    "MMStatus": MM_DELIVERY_STATUSES[:5] + MM_READ_STATUSES[1:],
    "MMStatusExtension": MM_STATUS_EXTENSIONS,
    "Priority": PRIORITIES,
    "MessageClass": MESSAGE_CLASSES,
    "ChargedParty": CHARGED_PARTIES[:4],
    "ContentClass": CONTENT_CLASSES,
}


@functools.cache
def _value(kind: Kind, element: str, version: str) -> st.SearchStrategy[Any]:
    legacy = version in LEGACY_VERSIONS
    if element in ENUMERATIONS:
        return st.sampled_from(ENUMERATIONS[element])
    strategies: dict[Kind, st.SearchStrategy[Any]] = {
        Kind.TEXT: nmtokens if legacy and element in NMTOKEN_ELEMENTS else texts,
        Kind.BOOL: st.booleans(),
        Kind.INT: st.integers(1, 10**6),
        Kind.DATE: dates,
        Kind.ADDRESS: addresses(version),
        Kind.RECIPIENTS: recipients(version),
        Kind.SENDER_ID: sender_identifications(version),
        Kind.REPLY_CHARGING: st.builds(
            ReplyCharging,
            reply_charging_size=st.none() | st.integers(1, 10**6),
            reply_deadline=st.none() | dates,
        ),
        Kind.DELIVERY_CONDITION: st.lists(st.integers(1, 999), min_size=1, max_size=4).map(tuple),
        Kind.UA_CAPABILITIES: st.builds(
            UACapabilities, ua_prof=st.none() | texts, time_stamp=st.none() | datetimes
        ),
        Kind.PREVIOUSLY_SENT_BY: st.lists(
            st.builds(
                UserAgent, address=addresses(version), sequence=st.none() | st.integers(0, 99)
            ),
            max_size=3,
        ).map(tuple),
        Kind.PREVIOUSLY_SENT_DATE: st.lists(
            st.builds(UserAgentDateTime, value=dates, sequence=st.none() | st.integers(0, 99)),
            max_size=3,
        ).map(tuple),
    }
    return strategies[kind]


@st.composite
def messages(draw: st.DrawFn, version: str, tag: str) -> Message:
    """A message of type ``tag`` that ``version`` can carry, round-trip safe."""
    cls = MESSAGE_TYPES[tag]
    legacy = version in LEGACY_VERSIONS
    kwargs: dict[str, Any] = {
        "transaction_id": draw(nmtokens if legacy else texts),
        "mm7_version": draw(st.sampled_from(MM7_VERSION_VALUES[version])),
        "extensions": draw(extensions()),
    }
    has_content = False
    for element, required in LAYOUTS[version][tag]:
        attr, kind = cls.ELEMENTS[element]
        if kind in (Kind.VERSION, Kind.STATUS):
            continue
        if kind is Kind.CONTENT:
            has_content = True
            continue
        strategy = _value(kind, element, version)
        value = draw(strategy if required else st.none() | strategy)
        if value is not None:
            kwargs[attr] = value
    if has_content and draw(st.booleans()):
        attachments = draw(attachment_trees())
        kwargs["attachments"] = attachments
        kwargs["content"] = ContentReference(
            href="cid:" + (attachments[0].content_id or ""),
            allow_adaptations=draw(st.none() | st.booleans()),
        )
    if issubclass(cls, Response):
        codes = st.sampled_from(sorted(STATUS_TABLE)) | st.integers(1000, 4999)
        kwargs["status_code"] = draw(codes)
        if not tag.startswith("extended"):
            kwargs["status_text"] = draw(texts)
            kwargs["details"] = draw(st.none() | texts)
    if issubclass(cls, ErrorRsp):
        kwargs["fault_code"] = draw(st.sampled_from(["env:Client", "env:Server"]))
        kwargs["fault_string"] = draw(texts)
    return cls(**kwargs)


@st.composite
def versioned_messages(draw: st.DrawFn) -> tuple[str, Message]:
    version = draw(st.sampled_from(list(LAYOUTS)))
    tag = draw(st.sampled_from(sorted(LAYOUTS[version])))
    return version, draw(messages(version, tag))
