"""Client of Kannel's sendsms HTTP interface (smsbox ``sendsms-port``).

One GET per SMS: ``username``/``password`` of a ``sendsms-user``, ``to``, ``from``,
``text`` in UTF-8 with ``charset=UTF-8`` and ``coding`` 0 (GSM-7) or 2 (UCS-2), so
smsbox converts the text itself; ``dlr-mask=31`` asks for every report type and
``dlr-url`` is where smsbox reports them (it replaces ``%d`` with the type). Kannel
answers ``202 0: Accepted for delivery`` or ``202 3: Queued for later delivery``; a
4xx answer is a request it will never take (bad credentials, number, text). Returns a
result instead of raising.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

import aiohttp

if TYPE_CHECKING:
    from gateway.sms.segments import Coding

#: Every Kannel report type: delivered, undelivered, queued at SMSC, SMSC accepted, refused.
DLR_MASK: Final = 31
_CODING: Final = {"gsm7": "0", "ucs2": "2"}
#: Answers worth another try later (Kannel overloaded, a proxy in between, rate limits).
_TRANSIENT: Final = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class KannelSettings:
    sendsms_url: str
    username: str
    password: str
    timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class SendResult:
    #: ``ok`` (Kannel has it), ``retry`` (try again later) or ``fail`` (never will).
    outcome: Literal["ok", "retry", "fail"]
    detail: str


class KannelClient:
    def __init__(self, settings: KannelSettings) -> None:
        self.settings = settings
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        self.session = aiohttp.ClientSession(timeout=timeout)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def params(
        self, *, to: str, sender: str | None, text: str, coding: Coding, dlr_url: str
    ) -> dict[str, str]:
        params = {
            "username": self.settings.username,
            "password": self.settings.password,
            "to": to,
            "text": text,
            "charset": "UTF-8",
            "coding": _CODING[coding],
            "dlr-mask": str(DLR_MASK),
            "dlr-url": dlr_url,
        }
        if sender:
            params["from"] = sender
        return params

    async def send(
        self, *, to: str, sender: str | None, text: str, coding: Coding, dlr_url: str
    ) -> SendResult:
        if self.session is None:
            return SendResult("retry", "client closed")
        params = self.params(to=to, sender=sender, text=text, coding=coding, dlr_url=dlr_url)
        try:
            async with self.session.get(self.settings.sendsms_url, params=params) as response:
                body = (await response.content.read(512)).decode("utf-8", "replace").strip()
        except TimeoutError:
            return SendResult("retry", "timeout")
        except (aiohttp.ClientError, OSError) as exc:
            return SendResult("retry", f"{type(exc).__name__}: {exc}"[:200])
        detail = f"HTTP {response.status}: {body}"[:200]
        if 200 <= response.status < 300:
            return SendResult("ok", detail)
        return SendResult("retry" if response.status in _TRANSIENT else "fail", detail)
