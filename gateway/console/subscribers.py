"""Pool subscribers (``/console/subscribers``): look up a number's consent record in a
pool and change it with a reason. Changes go through ``Store.set_consent``, the operation
the REST API uses, so a console change is the same append-only evidence as an API one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlencode

import structlog
from aiohttp import web

from gateway.console.context import DEPS, PREFIX, render, session_of
from gateway.errors import ApiError
from gateway.numbers import normalise_number
from gateway.ops.log_setup import mask_number
from gateway.store.records import CONSENT_STATUSES, ConsentChange, ConsentRecord, iso_time

log = structlog.get_logger("gateway.console")

MAX_REASON: Final = 500
_FIELDS: Final = ("pool", "number", "status", "reason")


class FormInputError(Exception):
    """Form input the page refuses: shown next to the form with a 400."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def target(pools: Mapping[str, str], pool: str, number: str) -> tuple[str, str]:
    """The configured pool and the E.164 number the form names."""
    if not pool:
        raise FormInputError("missing_pool", "Choose a pool.", "pool")
    if pool not in pools:
        raise FormInputError("unknown_pool", f"No pool {pool!r} is configured.", "pool")
    if not number:
        raise FormInputError("missing_number", "Enter a number in E.164 form (+ and country code).",
                       "number")  # fmt: skip
    try:
        return pool, normalise_number(number, "number")
    except ApiError as exc:
        raise FormInputError(exc.code, exc.message, "number") from None


def _values(source: Mapping[str, Any]) -> dict[str, str]:
    return {k: v.strip() if isinstance(v := source.get(k), str) else "" for k in _FIELDS}


async def _page(
    request: web.Request,
    values: dict[str, str],
    *,
    error: FormInputError | None = None,
    reveal: bool = False,
) -> web.Response:
    deps = request.app[DEPS]
    found: tuple[str, str] | None = None
    if values["pool"] or values["number"]:
        try:
            found = target(deps.pools, values["pool"], values["number"])
        except FormInputError as exc:
            error = error or exc
    masked = deps.mask_numbers and not reveal

    def show(text: str | None) -> str:
        # Sources and reasons are free text that may hold numbers too.
        return (mask_number(text) if masked else text) if text else ""

    # Only a status is echoed: a crafted link cannot make the banner say anything else.
    changed = request.query.get("changed")
    record: ConsentRecord | None = None
    if found is not None:
        record = await deps.store.get_consent(*found)
    return render(
        request,
        "subscribers.html",
        status=400 if error else 200,
        pools=deps.pools,
        statuses=CONSENT_STATUSES,
        values=values,
        # The operator's own input stays in the box only when it is not a number we show
        # masked (else the box would undo the masking).
        number_input="" if found is not None and masked else values["number"],
        error=error,
        target={"pool": found[0], "number": found[1], "shown": show(found[1])} if found else None,
        record=None if record is None else {
            "status": record.status, "source": show(record.source), "at": iso_time(record.at),
        },
        history=[
            {"at": iso_time(h.at), "status": h.status, "source": show(h.source),
             "reason": show(h.reason), "recorded": iso_time(h.recorded_at)}
            for h in (record.history if record else ())
        ],
        changed=changed if found and changed in CONSENT_STATUSES else None,
        can_reveal=found is not None and masked,
        reveal_query=urlencode({"pool": found[0], "number": found[1], "reveal": "1"})
        if found else "",
    )  # fmt: skip


async def subscribers(request: web.Request) -> web.Response:
    values = _values(request.query)
    reveal = request.query.get("reveal") == "1"
    if reveal and values["pool"] and values["number"]:
        session = session_of(request)
        # Unmasked numbers are personal data: who looked, and at what, is on record.
        log.warning(
            "console revealed numbers",
            user=session.user if session else None,
            pool=values["pool"],
            number=values["number"],
        )
    return await _page(request, values, reveal=reveal)


def checked(pools: Mapping[str, str], values: dict[str, str]) -> tuple[str, str, str]:
    """(pool, number, status) of a change form, every field checked before anything is stored."""
    pool, number = target(pools, values["pool"], values["number"])
    if values["status"] not in CONSENT_STATUSES:
        raise FormInputError("invalid_status", "Choose opted_in or opted_out.", "status")
    if not values["reason"]:
        raise FormInputError("missing_reason", "Give a reason: it is kept as evidence.", "reason")
    if len(values["reason"]) > MAX_REASON:
        raise FormInputError(
            "reason_too_long", f"Keep the reason to {MAX_REASON} characters.", "reason"
        )
    return pool, number, values["status"]


async def change(request: web.Request) -> web.Response:
    """Record an opt-in or opt-out with the operator's reason; then back to the lookup."""
    deps = request.app[DEPS]
    session = session_of(request)
    values = _values(await request.post())
    try:
        pool, number, status = checked(deps.pools, values)
    except FormInputError as exc:
        return await _page(request, values, error=exc)
    user = session.user if session else "?"
    now = deps.clock()
    await deps.store.set_consent(
        ConsentChange(
            pool=pool, number=number, status=status, source=f"console:{user}",
            reason=values["reason"], at=now, recorded_at=now,
        )
    )  # fmt: skip
    log.info("console consent change", user=user, pool=pool, number=number, status=status)
    query = urlencode({"pool": pool, "number": number, "changed": status})
    raise web.HTTPSeeOther(f"{PREFIX}/subscribers?{query}")
