"""What a worker puts on the wire: the SubmitReq of a stored message and its attachments,
plus two small LRU caches that spare the store a read per message under load.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from protocol import (
    Address,
    Attachment,
    ContentReference,
    Recipients,
    SenderIdentification,
    SubmitReq,
)

if TYPE_CHECKING:
    from gateway.media.store import MediaStorage
    from gateway.outbound.dispatcher import RouteSettings
    from gateway.store import Batch, MessageRecord


def sender_address(value: str) -> Address:
    """A short code is all digits and short; long codes are numbers; others alphanumeric."""
    digits = value.lstrip("+")
    if digits.isdigit():
        return Address.short_code(value) if len(digits) <= 8 else Address.number(value)
    return Address.rfc2822(value) if "@" in value else Address.short_code(value)


def build_submit(
    route: RouteSettings, message: MessageRecord, batch: Batch, media: dict[str, bytes]
) -> SubmitReq:
    attachments = content_attachments(message, media)
    sender = batch.sender or message.sender or route.sender
    return SubmitReq(
        transaction_id=batch.transaction_id,
        sender_identification=SenderIdentification(
            vasp_id=route.vasp_id,
            vas_id=route.vas_id,
            sender_address=sender_address(sender) if sender else None,
        ),
        recipients=Recipients(to=tuple(Address.number(r) for r in batch.recipients)),
        delivery_report=message.delivery_report,
        read_reply=message.read_report or None,
        priority=message.priority,
        subject=message.subject,
        expiry_date=datetime.fromtimestamp(message.expires_at, UTC).replace(microsecond=0),
        attachments=attachments,
        # What the encoder would fill in, set here: it then need not copy the message.
        content=ContentReference(href="cid:" + attachments[0].content_id)
        if attachments and attachments[0].content_id
        else None,
    )


def content_attachments(message: MessageRecord, media: dict[str, bytes]) -> tuple[Attachment, ...]:
    """The MM7 content of a message: its text, or its stored parts (SMIL-related)."""
    parts: list[Attachment] = []
    # With media, the text is one of the stored parts (the SMIL refers to it); a text-only
    # message (or a link fallback) carries its text here.
    if message.text and not message.parts:
        parts.append(
            Attachment(
                content_type="text/plain; charset=utf-8",
                data=message.text.encode("utf-8"),
                content_id="text",
            )
        )
    parts.extend(
        Attachment(content_type=p.content_type, data=media[p.sha256], content_id=p.content_id)
        for p in message.parts
    )
    has_smil = any(p.media_type == "application/smil" for p in parts)
    if len(parts) == 1 and not has_smil:
        attachments = (parts[0],)
    else:
        container_type = (
            'multipart/related; type="application/smil"; start="<'
            + next(p.content_id or "" for p in parts if p.media_type == "application/smil")
            + '>"'
            if has_smil
            else "multipart/mixed"
        )
        attachments = (
            Attachment(content_type=container_type, content_id="mm7-content", parts=tuple(parts)),
        )
    return attachments


class RecentMessages:
    """The records of messages just accepted, so a worker need not read them back.

    Under load the dispatcher sends a message moments after the API committed it; handing
    the committed record over saves a store round trip a message. Clients that submit
    faster than the MMSC takes them build a backlog of thousands, so the cache holds
    thousands of records, but only small ones (text of a short message, media as
    references): a miss costs the same store read whatever the record's size, so big
    records (long texts) are not worth their memory and are read back instead. Bounded by
    count and by an estimate of the records' size: a longer queue stays in the database,
    not in memory. Only fields fixed at creation (content, sender, options, validity) are
    used from it.

    Workers send the oldest messages first, so a full cache keeps the records it has and
    does not keep the new one (read back when its turn comes): evicting the oldest, as an
    LRU does, made every send miss once a backlog outgrew the cache. What goes first when
    room is needed: records a worker already took (needed again only for a retry or a
    message's next SubmitReq), then records nobody took for ``max_age`` seconds (their
    SubmitReqs went elsewhere: cancelled, refused, sent by another instance).
    """

    #: A record's size beyond its text: object headers, ids, options, recipient records.
    RECORD_OVERHEAD = 1024
    RECIPIENT_OVERHEAD = 256

    def __init__(
        self,
        max_entries: int = 8192,
        max_bytes: int = 4 * 1024 * 1024,
        max_record_bytes: int = 2048,
        max_age: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_record_bytes = max_record_bytes
        self.max_age = max_age
        self.clock = clock
        # Not yet taken, oldest first: (record, size, when added).
        self._waiting: OrderedDict[str, tuple[MessageRecord, int, float]] = OrderedDict()
        # Taken by a worker, least recently first.
        self._taken: OrderedDict[str, tuple[MessageRecord, int, float]] = OrderedDict()
        self._bytes = 0

    def _size(self, record: MessageRecord) -> int:
        return (
            self.RECORD_OVERHEAD
            + len(record.text or "")
            + len(record.subject or "")
            + self.RECIPIENT_OVERHEAD * len(record.recipients)
        )

    def add(self, record: MessageRecord) -> None:
        self.discard(record.id)
        size = self._size(record)
        if size > self.max_record_bytes:
            return
        now = self.clock()
        while len(self) + 1 > self.max_entries or self._bytes + size > self.max_bytes:
            if self._taken:
                _, (_, old, _) = self._taken.popitem(last=False)
            elif self._waiting and now - next(iter(self._waiting.values()))[2] > self.max_age:
                _, (_, old, _) = self._waiting.popitem(last=False)
            else:
                return  # full of records still to send: this one is read back later
            self._bytes -= old
        self._waiting[record.id] = (record, size, now)
        self._bytes += size

    def get(self, message_id: str) -> MessageRecord | None:
        """The record, for a worker about to send it."""
        item = self._waiting.pop(message_id, None)
        if item is not None:
            self._taken[message_id] = item
            return item[0]
        item = self._taken.get(message_id)
        if item is None:
            return None
        self._taken.move_to_end(message_id)
        return item[0]

    def discard(self, message_id: str) -> None:
        """Forget a record whose content changed (a replacement)."""
        item = self._waiting.pop(message_id, None) or self._taken.pop(message_id, None)
        if item is not None:
            self._bytes -= item[1]

    def __len__(self) -> int:
        return len(self._waiting) + len(self._taken)


class MediaCache:
    """Small LRU of media bytes: a campaign sends the same image many times."""

    def __init__(self, store: MediaStorage, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0

    async def get(self, sha256: str) -> bytes:
        data = self._items.get(sha256)
        if data is not None:
            self._items.move_to_end(sha256)
            return data
        data = await self.store.get(sha256)
        self._items[sha256] = data
        self._size += len(data)
        while self._size > self.max_bytes and self._items:
            _, old = self._items.popitem(last=False)
            self._size -= len(old)
        return data


async def encode_stored_submit(
    route: RouteSettings,
    encode: Callable[[SubmitReq], Awaitable[tuple[str, bytes]]],
    media: MediaCache,
    message: MessageRecord,
    batch: Batch,
) -> tuple[str, bytes]:
    """The SubmitReq a worker sends for ``batch`` of a stored message, encoded the same way
    (the console's download; protocol encoding is deterministic for a TransactionID)."""
    parts = {p.sha256: await media.get(p.sha256) for p in message.parts}
    return await encode(build_submit(route, message, batch, parts))
