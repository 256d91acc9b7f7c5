"""Fetch client media given by URL: size cap, timeout, bounded redirects, no private hosts.

Private, loopback and link-local destinations are refused unless the configuration
allows them (server-side request forgery protection); every redirect hop is checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp

from gateway.errors import PayloadTooLarge, ValidationError


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    timeout_seconds: float = 10.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 3
    allow_private: bool = False


async def _check_host(url: str, policy: FetchPolicy, field: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            "media URL must be http(s) with a host", field=field, code="invalid_media_url"
        )
    if policy.allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
            type=socket.SOCK_STREAM,
        )
    except OSError:
        raise ValidationError(
            "media URL host does not resolve", field=field, code="media_fetch_failed"
        ) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise ValidationError(
                "media URL points at a private or loopback address",
                field=field,
                code="media_url_forbidden",
            )


async def fetch_media(
    session: aiohttp.ClientSession, url: str, policy: FetchPolicy, field: str
) -> tuple[str | None, bytes]:
    """Return (content type, bytes) of a media URL, enforcing ``policy``."""
    current = url
    for _ in range(policy.max_redirects + 1):
        await _check_host(current, policy, field)
        try:
            async with session.get(
                current,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=policy.timeout_seconds),
            ) as response:
                if response.status in (301, 302, 303, 307, 308):
                    location = response.headers.get("Location")
                    if not location:
                        break
                    current = urljoin(current, location)
                    continue
                if response.status != 200:
                    raise ValidationError(
                        f"media URL answered HTTP {response.status}",
                        field=field,
                        code="media_fetch_failed",
                    )
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
                    raise PayloadTooLarge(
                        f"media at URL exceeds {policy.max_bytes} bytes", field=field
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > policy.max_bytes:
                        raise PayloadTooLarge(
                            f"media at URL exceeds {policy.max_bytes} bytes", field=field
                        )
                    chunks.append(chunk)
                content_type = response.headers.get("Content-Type")
                return (content_type.split(";")[0].strip() if content_type else None), b"".join(
                    chunks
                )
        except TimeoutError:
            raise ValidationError(
                "media URL timed out", field=field, code="media_fetch_failed"
            ) from None
        except aiohttp.ClientError as exc:
            raise ValidationError(
                f"media URL could not be fetched ({type(exc).__name__})",
                field=field,
                code="media_fetch_failed",
            ) from None
    raise ValidationError(
        "media URL redirected too many times", field=field, code="media_fetch_failed"
    )
