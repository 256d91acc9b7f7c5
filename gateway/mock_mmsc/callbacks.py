"""Pushes from the mock MMSC to the VASP: DeliveryReportReq, DeliverReq, ReadReplyReq.

A push is delivered when the VASP answers HTTP 2xx with an MM7 response whose status is
a success (1xxx). Anything else (connection refused, timeout, HTTP error, a Fault, an
error status) is retried with exponential back-off, ``callback_backoff`` doubling up to
``callback_max_backoff``, for at most ``callback_attempts`` attempts, as a carrier MMSC
does. Delivery reports are scheduled as background tasks that the app cancels on
shutdown, the reports of one submission concurrently, each with its own back-off;
admin pushes are sent once and their answer returned to the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp

from protocol import DecodeError, EncodeError, Message, Response, decode, encode, status_info
from protocol.status import StatusClass

if TYPE_CHECKING:
    from gateway.mock_mmsc.config import MockSettings
    from gateway.mock_mmsc.recorder import Recorder
    from gateway.mock_mmsc.stats import Metrics, Stats

from gateway.mock_mmsc.recorder import http_bytes
from gateway.mock_mmsc.stats import DELIVERED, FAILED, RETRIED


@dataclass(frozen=True, slots=True)
class PushResult:
    """The VASP's answer to one push (the last attempt's, after retries)."""

    delivered: bool
    attempts: int
    http_status: int | None = None
    response_type: str | None = None
    status_code: int | None = None
    status_text: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "delivered": self.delivered,
            "attempts": self.attempts,
            "http_status": self.http_status,
            "response_type": self.response_type,
            "status_code": self.status_code,
            "status_text": self.status_text,
            "error": self.error,
        }


class CallbackClient:
    """Sends MM7 requests to ``vasp_url`` on one kept-alive session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: Callable[[], MockSettings],
        stats: Stats,
        metrics: Metrics,
        recorder: Recorder | None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.stats = stats
        self.metrics = metrics
        self.recorder = recorder
        self._tasks: set[asyncio.Task[None]] = set()
        self.pending = 0

    # -- one attempt -------------------------------------------------------------------
    async def send_once(self, message: Message, version: str) -> PushResult:
        settings = self.settings()
        if settings.vasp_url is None:
            return PushResult(delivered=False, attempts=0, error="no vasp_url configured")
        content_type, body = encode(message, version)
        headers = {"Content-Type": content_type, "SOAPAction": '""'}
        exchange = self.recorder.next_exchange() if self.recorder else 0
        if self.recorder is not None:
            await self._record_request(exchange, settings.vasp_url, headers, body)
        try:
            async with self.session.post(
                settings.vasp_url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=settings.callback_timeout or None),
            ) as response:
                raw = await response.read()
                status = response.status
                answer_type = response.headers.get("Content-Type")
                if self.recorder is not None:
                    start = f"HTTP/1.1 {status} {response.reason or ''}".rstrip()
                    await self.recorder.write(
                        exchange,
                        "out",
                        "response",
                        http_bytes(start, response.headers.items(), raw),
                    )
        except TimeoutError:
            return PushResult(delivered=False, attempts=1, error="timeout")
        except (aiohttp.ClientError, OSError) as exc:
            return PushResult(delivered=False, attempts=1, error=f"{type(exc).__name__}: {exc}")
        return _judge(status, raw, answer_type)

    async def _record_request(
        self, exchange: int, url: str, headers: dict[str, str], body: bytes
    ) -> None:
        assert self.recorder is not None  # noqa: S101 - callers check
        parts = urlsplit(url)
        lines = [("Host", parts.netloc), *headers.items(), ("Content-Length", str(len(body)))]
        start = f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1"
        await self.recorder.write(exchange, "out", "request", http_bytes(start, lines, body))

    # -- with retries ------------------------------------------------------------------
    async def send(self, message: Message, version: str, **details: object) -> PushResult:
        """Send with back-off until delivered or out of attempts; count every attempt."""
        kind = type(message).TAG
        attempt = 0
        settings = self.settings()
        while True:
            attempt += 1
            try:
                result = await self.send_once(message, version)
            except EncodeError as exc:
                # e.g. a "+" number in a REL-5-MM7-1-0 report: retrying cannot help.
                result = PushResult(
                    delivered=False, attempts=attempt, error=f"cannot encode: {exc}"
                )
                attempt = settings.callback_attempts
            settings = self.settings()
            if result.delivered or attempt >= settings.callback_attempts:
                outcome = DELIVERED if result.delivered else FAILED
                self.metrics.callbacks.labels(kind, outcome).inc()
                self.stats.callback(kind, outcome, attempts=attempt, **details)
                return PushResult(
                    result.delivered,
                    attempt,
                    result.http_status,
                    result.response_type,
                    result.status_code,
                    result.status_text,
                    result.error,
                )
            self.metrics.callbacks.labels(kind, RETRIED).inc()
            self.stats.callback(kind, RETRIED)
            delay = min(
                settings.callback_max_backoff, settings.callback_backoff * 2 ** (attempt - 1)
            )
            await asyncio.sleep(delay)

    # -- scheduled delivery reports ----------------------------------------------------
    def schedule(
        self,
        messages: list[Message],
        version: str,
        delay: float,
        wanted: Callable[[], bool],
        **details: object,
    ) -> None:
        """After ``delay`` seconds, push each message (with retries) unless ``wanted()``
        has turned false (the submission was cancelled meanwhile).

        The messages are pushed concurrently, each with its own back-off: one report
        per recipient, and recipient N must not wait behind recipient N-1's retries
        while the VASP is down.
        """
        self.pending += len(messages)
        self.metrics.pending_callbacks.inc(len(messages))
        task = asyncio.get_running_loop().create_task(
            self._run_later(messages, version, delay, wanted, details)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_later(
        self,
        messages: list[Message],
        version: str,
        delay: float,
        wanted: Callable[[], bool],
        details: dict[str, object],
    ) -> None:
        remaining = len(messages)

        async def push(message: Message) -> None:
            nonlocal remaining
            try:
                if wanted():
                    await self.send(message, version, **details)
            finally:
                remaining -= 1
                self.pending -= 1
                self.metrics.pending_callbacks.dec()

        try:
            await asyncio.sleep(delay)
            # return_exceptions: a push that fails must not leave its siblings running
            # past this ``finally`` (they would be counted off twice); re-raised below.
            results = await asyncio.gather(
                *(push(message) for message in messages), return_exceptions=True
            )
        finally:
            # Pushes cancelled before they started never ran their own ``finally``.
            self.pending -= remaining
            self.metrics.pending_callbacks.dec(remaining)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def cancel_all(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _judge(status: int, raw: bytes, content_type: str | None) -> PushResult:
    answer: Message | None = None
    error: str | None = None
    if raw.strip():
        try:
            answer = decode(raw, content_type)
        except DecodeError as exc:
            error = f"undecodable answer: {exc}"
    code = answer.status_code if isinstance(answer, Response) else None
    text = answer.status_text if isinstance(answer, Response) else None
    ok = (
        200 <= status < 300
        and code is not None
        and status_info(code).status_class is StatusClass.SUCCESS
    )
    if not ok and error is None:
        error = f"HTTP {status}" if code is None else f"HTTP {status}, status {code}"
    return PushResult(
        ok,
        1,
        http_status=status,
        response_type=type(answer).TAG if answer is not None else None,
        status_code=code,
        status_text=text,
        error=None if ok else error,
    )
