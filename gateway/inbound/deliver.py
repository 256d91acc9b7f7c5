# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""Inbound MMS (``DeliverReq``): media into the content-addressed store, message into SQL.

Order matters for durability, as on the submission path: every part's bytes are written
(fsynced) to the media store first; then the message, its parts, any opt-out change, its
confirmation reply and the ``message.inbound`` webhook event are committed in one
transaction; only then does
the MM7 listener answer ``DeliverRsp`` 1000. A DeliverReq the MMSC repeats (because our
answer was lost) has the same dedupe key and is answered without a second event.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from gateway.errors import StoreError
from gateway.inbound.keywords import inbound_number, normalise_keyword
from gateway.store.records import ConsentChange, InboundPart, InboundRow, NewMessage, iso_time

if TYPE_CHECKING:
    from collections.abc import Callable

    from gateway.inbound.keywords import OptOutConfirmations, OptOutPolicy, PoolKeywords
    from gateway.media.links import MediaLinks
    from gateway.media.store import MediaStorage
    from gateway.store import Store
    from protocol import Attachment, DeliverReq

#: Korean MMSCs label text with names Python does not know, or knows as the narrower
#: EUC-KR; cp949 is the superset they actually send.
CHARSET_ALIASES: Final = {
    "euc-kr": "cp949",
    "euckr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "korean": "cp949",
    "x-windows-949": "cp949",
    "windows-949": "cp949",
}


@dataclass(frozen=True, slots=True)
class Received:
    """What :meth:`InboundService.receive` stored."""

    id: str
    created: bool
    #: ``stop``/``start`` when the text was an opt-out keyword.
    optout: str | None
    sender: str | None
    recipient: str | None
    #: The confirmation reply committed with it (a new message to send), if any.
    reply: NewMessage | None = None
    #: The pool whose sender got it and the pool keyword (stop/start/help) it was, if any.
    pool: str | None = None
    keyword: str | None = None


def content_type_params(content_type: str) -> tuple[str, dict[str, str]]:
    """``("text/plain", {"charset": "utf-8"})`` from a Content-Type value."""
    media_type, *rest = content_type.split(";")
    params = {}
    for item in rest:
        name, sep, value = item.partition("=")
        if sep:
            params[name.strip().lower()] = value.strip().strip('"').strip("'")
    return media_type.strip().lower(), params


def decode_text(data: bytes, charset: str | None) -> tuple[str, str]:
    """Decode a text part; returns ``(text, codec used)``.

    A declared charset is honoured (through the aliases above); without one, or with one
    Python does not know, UTF-8 is tried, then cp949, then Latin-1 (which never fails).
    """
    if charset:
        name = CHARSET_ALIASES.get(charset.lower(), charset.lower())
        try:
            codecs.lookup(name)
        except LookupError:
            pass
        else:
            return data.decode(name, errors="replace"), name
    for name in ("utf-8", "cp949"):
        try:
            return data.decode(name), name
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def leaf_parts(attachments: tuple[Attachment, ...]) -> list[Attachment]:
    """Every non-multipart part, depth first (SMIL, text, images, ...)."""
    return [p for a in attachments for p in a.walk() if not p.is_multipart]


@dataclass(frozen=True, slots=True)
class InboundSettings:
    #: API key (name) that owns inbound messages, and its webhook URL; per MMSC name.
    owners: dict[str, tuple[str | None, str | None]]
    policy: OptOutPolicy


def _timestamp(value: object) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _dedupe_key(mmsc: str, msg: DeliverReq, digests: list[str]) -> str:
    recipients = [a.value for a in msg.recipients.all()] if msg.recipients else []
    # A resend after a lost DeliverRsp may carry a fresh TransactionID; the MMSC's own
    # TimeStamp (with sender, recipients, content) identifies the original better. Without
    # a TimeStamp, two identical texts could be two messages: the TransactionID decides.
    identity = [
        mmsc,
        msg.transaction_id if msg.time_stamp is None else None,
        msg.sender.value if msg.sender else None,
        recipients,
        msg.subject,
        str(msg.time_stamp) if msg.time_stamp is not None else None,
        msg.linked_id,
        digests,
    ]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


class InboundService:
    def __init__(
        self,
        store: Store,
        media_store: MediaStorage,
        settings: InboundSettings,
        links: MediaLinks,
        clock: Callable[[], float],
        confirmations: OptOutConfirmations | None = None,
        pool_keywords: PoolKeywords | None = None,
    ) -> None:
        #: Keywords to pool senders change that pool's consent instead of the route list.
        self.pool_keywords = pool_keywords
        self.store = store
        self.media_store = media_store
        self.settings = settings
        self.links = links
        self.clock = clock
        #: Builds the STOP/START reply that commits with the inbound message (None: none).
        self.confirmations = confirmations

    async def _put(self, data: bytes) -> str:
        try:
            return await self.media_store.put(data)
        except StoreError:
            # MediaStore names its temporary file after the digest and the pid only, so two
            # concurrent puts of the same bytes collide and the loser's rename fails; the
            # content is then already in place.
            digest = hashlib.sha256(data).hexdigest()
            if self.media_store.exists(digest):
                return digest
            raise

    async def receive(self, mmsc: str, msg: DeliverReq) -> Received:
        """Store one DeliverReq durably; ``created`` is False for a repeated DeliverReq."""
        now = self.clock()
        parts: list[InboundPart] = []
        texts: list[str] = []
        for part in leaf_parts(msg.attachments):
            digest = await self._put(part.data)
            media_type, params = content_type_params(part.content_type)
            text = charset = None
            if media_type == "text/plain":
                text, charset = decode_text(part.data, params.get("charset"))
                texts.append(text)
            parts.append(
                InboundPart(
                    content_type=part.content_type,
                    sha256=digest,
                    size=len(part.data),
                    content_id=part.content_id,
                    content_location=part.content_location,
                    charset=charset,
                    text=text,
                )
            )
        body = "\n".join(texts) if texts else None
        recipients = tuple(a.value for a in msg.recipients.all()) if msg.recipients else ()
        owner, url = self.settings.owners.get(mmsc, (None, None))
        recipient = recipients[0] if recipients else None
        sender = msg.sender.value if msg.sender else None
        pool = self.pool_keywords.policy_for(recipient) if self.pool_keywords else None
        keyword = consent = None
        if pool is not None:
            keyword = pool.classify(body) if len(texts) == 1 else None
            optout = keyword if keyword in ("stop", "start") else None
            number = inbound_number(sender)
            if optout is not None and number is not None:
                consent = ConsentChange(
                    pool=pool.pool,
                    number=number,
                    status="opted_out" if optout == "stop" else "opted_in",
                    source="keyword",
                    reason=normalise_keyword(body or ""),
                    at=now,
                    recorded_at=now,
                )
        else:
            optout = self.settings.policy.classify(body) if len(texts) == 1 else None
        row = InboundRow(
            id="inb_" + uuid.uuid4().hex,
            mmsc=mmsc,
            dedupe_key=_dedupe_key(mmsc, msg, [p.sha256 for p in parts]),
            api_key=owner,
            sender=sender,
            recipient=recipient,
            recipients=recipients,
            subject=msg.subject,
            text=body,
            linked_id=msg.linked_id,
            transaction_id=msg.transaction_id,
            optout=optout,
            sent_at=_timestamp(msg.time_stamp),
            received_at=now,
            parts=tuple(parts),
            consent=consent,
        )
        event = (url, self.event_data(row, now)) if url else None
        reply = None
        if self.confirmations is not None and pool is not None and keyword is not None:
            # The pool's own text, from the pool sender the keyword was addressed to.
            reply = self.confirmations.reply_with(
                mmsc, pool.texts.get(keyword), row.sender, row.recipient
            )
        elif self.confirmations is not None and row.optout is not None:
            reply = self.confirmations.reply_for(mmsc, row.optout, row.sender, row.recipient)
        inbound_id, created = await self.store.store_inbound(row, event, reply=reply)
        return Received(
            inbound_id,
            created,
            row.optout,
            row.sender,
            row.recipient,
            reply if created else None,
            pool=pool.pool if pool is not None else None,
            keyword=keyword,
        )

    def event_data(self, row: InboundRow, now: float) -> dict[str, Any]:
        """The ``data`` of a ``message.inbound`` event (media as signed URLs)."""
        return {
            "id": row.id,
            "mmsc": row.mmsc,
            "from": row.sender,
            "to": row.recipient,
            "recipients": list(row.recipients),
            "subject": row.subject,
            "text": row.text,
            "linked_id": row.linked_id,
            "optout": row.optout,
            "received_at": iso_time(row.received_at),
            "media": [
                {
                    "id": p.sha256,
                    "content_type": p.content_type,
                    "size": p.size,
                    "content_id": p.content_id,
                    "text": p.text,
                    "url": self.links.url(p.sha256, now),
                }
                for p in row.parts
            ],
        }
