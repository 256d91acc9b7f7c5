"""Fetch client media given by URL: size cap, deadline, content types, bounded redirects, SSRF.

Server-side request forgery protection: every hop's host is resolved once, each answer is
checked by :func:`address_allowed`, and the connection is made to exactly the addresses that
were checked (a pinned aiohttp resolver), so a DNS answer that changes between the check and
the connect (DNS rebinding) cannot reach a refused address. Link-local (cloud metadata),
multicast, reserved and unspecified addresses are always refused; loopback and private
(RFC 1918, IPv6 ULA) addresses only when the configuration allows them.

The whole fetch (every lookup, redirect hop and body byte) runs under one deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from gateway.errors import PayloadTooLarge, ValidationError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``lookup(host, port)`` answers the IP addresses (as text) of ``host``; tests inject one.
Lookup = Callable[[str, int], Awaitable[list[str]]]

REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})

#: Networks allowed only with ``allow_private``: loopback, RFC 1918 and IPv6 unique-local.
#: Anything else that is not global (shared 100.64/10, documentation, ...) stays refused.
_PRIVATE_NETWORKS: Final = tuple(
    ipaddress.ip_network(net)
    for net in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "::1/128",
        "fc00::/7",
    )
)
#: Refused always, beyond link-local/multicast/reserved/unspecified: "this network" (Linux
#: connects 0.0.0.0 to the local host) and the AWS metadata service's unique-local address.
_ALWAYS_REFUSED: Final = tuple(
    ipaddress.ip_network(net) for net in ("0.0.0.0/8", "fd00:ec2::254/128")
)
#: NAT64 well-known prefix: the last 32 bits are an IPv4 destination.
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")

#: Response types that can be media (the pipeline sniffs the real type later). A missing
#: Content-Type is accepted too.
_MEDIA_MAJOR_TYPES: Final = frozenset({"image", "audio", "video"})
_MEDIA_TYPES: Final = frozenset(
    {
        "text/plain",
        "text/vcard",
        "text/x-vcard",
        "text/directory",
        "application/smil",
        "application/smil+xml",
        "application/octet-stream",
    }
)


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    timeout_seconds: float = 10.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 3
    allow_private: bool = False


def _views(address: IPAddress) -> list[IPAddress]:
    """What to check for ``address``: an IPv4-mapped address is its IPv4 address; a NAT64
    or 6to4 address is itself and the IPv4 address embedded in it."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return [address.ipv4_mapped]
        if address in _NAT64:
            return [address, ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
        if address.sixtofour is not None:
            return [address, address.sixtofour]
    return [address]


def address_allowed(address: IPAddress, allow_private: bool) -> bool:
    """Whether media may be fetched from ``address``.

    Link-local (cloud metadata), multicast, reserved, unspecified and "this network"
    addresses are refused always; loopback and private networks unless ``allow_private``;
    global ones pass. IPv4 addresses embedded in IPv6 ones are checked too.
    """
    for view in _views(address):
        if any(view in network for network in _ALWAYS_REFUSED):
            return False
        if any(view in network for network in _PRIVATE_NETWORKS):
            if allow_private:
                continue
            return False
        if (
            view.is_link_local
            or view.is_multicast
            or view.is_reserved
            or view.is_unspecified
            or not view.is_global
        ):
            return False
    return True


async def _system_lookup(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _normal_host(host: str) -> str:
    return host.rstrip(".").lower()


def _family(address: IPAddress) -> socket.AddressFamily:
    return socket.AF_INET6 if address.version == 6 else socket.AF_INET


class _PinnedResolver(AbstractResolver):
    """Answers only the addresses vetted for a host; the connector never resolves itself."""

    def __init__(self) -> None:
        self.vetted: dict[str, list[IPAddress]] = {}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self.vetted.get(_normal_host(host))
        if not addresses:
            raise OSError(f"{host} was not vetted for this fetch")
        return [
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": _family(address),
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
            if family in (socket.AF_UNSPEC, _family(address))
        ]

    async def close(self) -> None:
        self.vetted.clear()


def _forbidden(field: str, allow_private: bool) -> ValidationError:
    what = (
        "a link-local, multicast or reserved address"
        if allow_private
        else "a private, loopback, link-local or reserved address"
    )
    return ValidationError(f"media URL points at {what}", field=field, code="media_url_forbidden")


async def _vet(
    url: URL, policy: FetchPolicy, field: str, lookup: Lookup, resolver: _PinnedResolver
) -> None:
    """Check one hop's URL and host; pin the checked addresses for the connection."""
    host = url.raw_host
    if url.scheme not in ("http", "https") or not host:
        raise ValidationError(
            "media URL must be http(s) with a host", field=field, code="invalid_media_url"
        )
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        # aiohttp connects to an IP literal without asking the resolver.
        if not address_allowed(literal, policy.allow_private):
            raise _forbidden(field, policy.allow_private)
        return
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        answers = [ipaddress.ip_address(text.split("%", 1)[0]) for text in await lookup(host, port)]
    except (OSError, ValueError):
        answers = []
    if not answers:
        raise ValidationError(
            "media URL host does not resolve", field=field, code="media_fetch_failed"
        )
    # One refused answer refuses the host: a round-robin answer could pick it next time.
    if not all(address_allowed(address, policy.allow_private) for address in answers):
        raise _forbidden(field, policy.allow_private)
    resolver.vetted[_normal_host(host)] = list(dict.fromkeys(answers))


def _media_type(header: str | None, field: str) -> str | None:
    """The bare media type of a response, or a refusal when it cannot be media."""
    bare = header.split(";", 1)[0].strip().lower() if header else ""
    if not bare:
        return None
    major, _, minor = bare.partition("/")
    if bare in _MEDIA_TYPES or (major in _MEDIA_MAJOR_TYPES and minor):
        return bare
    raise ValidationError(
        f"media URL answered Content-Type {bare[:100]}, which is not media",
        field=field,
        code="media_type_refused",
    )


async def _fetch(
    session: aiohttp.ClientSession,
    url: str,
    policy: FetchPolicy,
    field: str,
    lookup: Lookup,
    resolver: _PinnedResolver,
) -> tuple[str | None, bytes]:
    try:
        current = URL(url)
    except (TypeError, ValueError):
        raise ValidationError(
            "media URL must be http(s) with a host", field=field, code="invalid_media_url"
        ) from None
    for _ in range(policy.max_redirects + 1):
        await _vet(current, policy, field, lookup, resolver)
        try:
            async with session.get(
                current, allow_redirects=False, headers={"Accept-Encoding": "identity"}
            ) as response:
                if response.status in REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise ValidationError(
                            f"media URL answered HTTP {response.status} without a Location",
                            field=field,
                            code="media_fetch_failed",
                        )
                    current = current.join(URL(location))
                    continue
                if response.status != 200:
                    raise ValidationError(
                        f"media URL answered HTTP {response.status}",
                        field=field,
                        code="media_fetch_failed",
                    )
                content_type = _media_type(response.headers.get("Content-Type"), field)
                too_large = f"media at URL exceeds {policy.max_bytes} bytes"
                declared = response.headers.get("Content-Length")
                if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
                    raise PayloadTooLarge(too_large, field=field)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > policy.max_bytes:
                        raise PayloadTooLarge(too_large, field=field)
                    chunks.append(chunk)
                return content_type, b"".join(chunks)
        except (aiohttp.ClientError, ValueError) as exc:
            raise ValidationError(
                f"media URL could not be fetched ({type(exc).__name__})",
                field=field,
                code="media_fetch_failed",
            ) from None
    raise ValidationError(
        f"media URL redirected more than {policy.max_redirects} times",
        field=field,
        code="media_fetch_failed",
    )


async def fetch_media(
    session: aiohttp.ClientSession,
    url: str,
    policy: FetchPolicy,
    field: str,
    *,
    lookup: Lookup | None = None,
) -> tuple[str | None, bytes]:
    """Return (content type, bytes) of a media URL, enforcing ``policy``.

    The request goes through a short-lived session whose connector only connects to the
    addresses vetted for each hop; ``session`` contributes its default headers. ``lookup``
    replaces the system resolver (tests).
    """
    resolver = _PinnedResolver()
    try:
        async with (
            asyncio.timeout(policy.timeout_seconds),
            aiohttp.ClientSession(
                # A fresh connection per hop, each resolved by the pinned resolver.
                connector=aiohttp.TCPConnector(
                    resolver=resolver, use_dns_cache=False, force_close=True
                ),
                headers=session.headers,
                auto_decompress=False,  # the size cap counts the bytes that arrive
                trust_env=False,  # no proxy: the proxy would resolve the host itself
                cookie_jar=aiohttp.DummyCookieJar(),
            ) as fetcher,
        ):
            return await _fetch(fetcher, url, policy, field, lookup or _system_lookup, resolver)
    except TimeoutError:
        raise ValidationError(
            f"media URL did not answer within {policy.timeout_seconds:g} seconds",
            field=field,
            code="media_fetch_failed",
        ) from None
