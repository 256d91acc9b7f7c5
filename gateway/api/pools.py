"""Consent records of sender pools: ``/v1/pools/{pool}/subscribers/{number}``.

``PUT`` records an opt-in or opt-out (status, source, time), ``GET`` shows the record and
its history (every change, oldest first: evidence, never rewritten), ``DELETE`` records an
opt-out with source ``api``. Everything is checked before anything is stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from gateway.api.resources import iso
from gateway.api.schemas import parse_time
from gateway.errors import NotFoundError, ValidationError
from gateway.numbers import normalise_number
from gateway.store.records import CONSENT_STATUSES, ConsentChange, ConsentRecord

if TYPE_CHECKING:
    from gateway.store import Store

_PUT_FIELDS: Final = frozenset({"status", "source", "at"})


def consent_resource(record: ConsentRecord) -> dict[str, Any]:
    return {
        "pool": record.pool,
        "number": record.number,
        "status": record.status,
        "source": record.source,
        "at": iso(record.at),
        "updated_at": iso(record.updated_at),
        "history": [
            {
                "status": h.status,
                "source": h.source,
                "reason": h.reason,
                "at": iso(h.at),
                "recorded_at": iso(h.recorded_at),
            }
            for h in record.history
        ],
    }


class ConsentRoutes:
    """Handlers over the store's consent operations for the configured pools."""

    def __init__(self, store: Store, pools: frozenset[str], clock: Callable[[], float]) -> None:
        self.store = store
        self.pools = pools
        self.clock = clock

    def add_routes(self, app: web.Application) -> None:
        path = "/v1/pools/{pool}/subscribers/{number}"
        app.router.add_put(path, self.put)
        app.router.add_get(path, self.get)
        app.router.add_delete(path, self.delete)

    def _target(self, request: web.Request) -> tuple[str, str]:
        pool = request.match_info["pool"]
        if pool not in self.pools:
            raise NotFoundError(f"no pool {pool!r}", field="pool", code="unknown_pool")
        return pool, normalise_number(request.match_info["number"], "number")

    async def put(self, request: web.Request) -> web.Response:
        pool, number = self._target(request)
        try:
            body = json.loads(await request.read())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ValidationError("malformed JSON", code="malformed_json") from None
        if not isinstance(body, dict):
            raise ValidationError("the request body must be a JSON object")
        unknown = sorted(set(body) - _PUT_FIELDS)
        if unknown:
            raise ValidationError(
                f"unknown field {unknown[0]!r}", field=unknown[0], code="unknown_field"
            )
        status = body.get("status")
        if status not in CONSENT_STATUSES:
            raise ValidationError(
                f"status must be one of {', '.join(CONSENT_STATUSES)}",
                field="status",
                code="invalid_status",
            )
        source = body.get("source", "api")
        if not isinstance(source, str) or not 0 < len(source.strip()) <= 200:
            raise ValidationError("source must be a string of 1-200 characters", field="source")
        now = self.clock()
        at = parse_time(body["at"], "at") if body.get("at") is not None else now
        if at > now + 300:
            raise ValidationError("at must not be in the future", field="at")
        record = await self.store.set_consent(
            ConsentChange(
                pool=pool, number=number, status=str(status), source=source.strip(), at=at,
                recorded_at=now,
            )
        )  # fmt: skip
        return web.json_response(consent_resource(record))

    async def get(self, request: web.Request) -> web.Response:
        pool, number = self._target(request)
        record = await self.store.get_consent(pool, number)
        if record is None:
            raise NotFoundError(f"no consent record for this number in pool {pool}")
        return web.json_response(consent_resource(record))

    async def delete(self, request: web.Request) -> web.Response:
        pool, number = self._target(request)
        now = self.clock()
        record = await self.store.set_consent(
            ConsentChange(
                pool=pool, number=number, status="opted_out", source="api", at=now,
                recorded_at=now, reason="DELETE",
            )
        )  # fmt: skip
        return web.json_response(consent_resource(record))
