"""What happens after the MM7 listener accepted a callback: store it, then react.

Each handler returns once its change is committed (the listener answers the MMSC only
then): a report moves its recipient, an inbound MMS is stored with its media and any
opt-out and its confirmation reply. Afterwards the webhook outbox is woken (it finds
the events the commit added) and so is the worker that sends the reply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from gateway.inbound.mm7_server import Handlers

if TYPE_CHECKING:
    from gateway.inbound.deliver import InboundService
    from gateway.inbound.delivery import ReportService
    from gateway.ops.metrics import Metrics
    from gateway.store.records import NewMessage
    from protocol import DeliverReq, DeliveryReportReq, ReadReplyReq

log = structlog.get_logger("gateway.inbound")


class CallbackHandlers:
    """The three MM7 request handlers of one gateway."""

    def __init__(
        self,
        *,
        reports: ReportService,
        inbound: InboundService,
        metrics: Metrics,
        events_added: Callable[[], None],
        reply_committed: Callable[[NewMessage], None],
    ) -> None:
        self.reports = reports
        self.inbound = inbound
        self.metrics = metrics
        #: Called after a commit that added a keyword's reply (wakes the route's worker).
        self.reply_committed = reply_committed
        #: Called after a commit that added webhook events (wakes the outbox).
        self.events_added = events_added

    def as_handlers(self) -> Handlers:
        return Handlers(
            delivery_report=self.on_delivery_report,
            read_reply=self.on_read_reply,
            deliver=self.on_deliver,
        )

    async def on_delivery_report(self, mmsc: str, msg: DeliveryReportReq) -> None:
        result = await self.reports.delivery_report(mmsc, msg)
        if result.outcome == "applied":
            self.events_added()

    async def on_read_reply(self, mmsc: str, msg: ReadReplyReq) -> None:
        result = await self.reports.read_reply(mmsc, msg)
        if result.outcome == "applied":
            self.events_added()

    async def on_deliver(self, mmsc: str, msg: DeliverReq) -> None:
        received = await self.inbound.receive(mmsc, msg)
        # At info, like reports: operators follow inbound traffic and opt-outs at the
        # default level (numbers are masked by the log setup).
        log.info(
            "inbound MMS received",
            inbound_id=received.id,
            sender=received.sender,
            recipient=received.recipient,
            repeated=not received.created,
        )
        if received.created and received.optout is not None:
            log.info(
                "opt-out keyword applied",
                inbound_id=received.id,
                keyword=received.optout,
                sender=received.sender,
                recipient=received.recipient,
            )
        if received.created:
            self.metrics.inbound_messages_total.labels(mmsc=mmsc).inc()
            if received.pool is not None and received.keyword is not None:
                self.metrics.keyword_event(received.pool, received.keyword)
            self.events_added()
            if received.reply is not None:
                self.reply_committed(received.reply)
                log.info(
                    "opt-out confirmation queued",
                    inbound_id=received.id,
                    mmsc=mmsc,
                    message_id=received.reply.id,
                    keyword=received.keyword or received.optout,
                )
