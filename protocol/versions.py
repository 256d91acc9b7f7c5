# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""MM7 schema versions: namespace URIs, ``MM7Version`` values and namespace detection.

Theory of operation: the *schema version* (``REL-6-MM7-1-4``) is the suffix of the
namespace URI and decides the element layout; the ``MM7Version`` element (``6.8.0``) is
a separate value that each schema restricts to an enumeration. We emit the newest value
each schema allows by default. On input we accept any namespace that looks like an MM7
one (or none at all) and report what we had to guess.
"""

from __future__ import annotations

import functools
import re
from typing import Final

NAMESPACE_PREFIX: Final = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/"

#: Every schema version we can emit, oldest first.
VERSIONS: Final[tuple[str, ...]] = (
    "REL-5-MM7-1-0",
    "REL-5-MM7-1-1",
    "REL-5-MM7-1-2",
    "REL-5-MM7-1-3",
    "REL-5-MM7-1-4",
    "REL-6-MM7-1-0",
    "REL-6-MM7-1-1",
    "REL-6-MM7-1-2",
    "REL-6-MM7-1-3",
    "REL-6-MM7-1-4",
)

DEFAULT_VERSION: Final = "REL-6-MM7-1-4"

#: ``MM7Version`` values each schema's enumeration allows (first = what we emit).
MM7_VERSION_VALUES: Final[dict[str, tuple[str, ...]]] = {
    "REL-5-MM7-1-0": ("5.3.0",),
    "REL-5-MM7-1-1": ("5.3.0",),
    "REL-5-MM7-1-2": ("5.3.0",),
    "REL-5-MM7-1-3": ("5.6.0", "5.5.0", "5.3.0"),
    "REL-5-MM7-1-4": ("5.8.0", "5.6.0", "5.5.0", "5.3.0"),
    "REL-6-MM7-1-0": ("6.3.0", "5.6.0", "5.5.0", "5.3.0"),
    "REL-6-MM7-1-1": ("6.4.0", "6.3.0", "5.8.0", "5.6.0", "5.5.0", "5.3.0"),
    "REL-6-MM7-1-2": ("6.5.0", "6.4.0", "6.3.0", "5.10.0", "5.8.0", "5.6.0", "5.5.0", "5.3.0"),
    "REL-6-MM7-1-3": (
        "6.6.0",
        "6.5.0",
        "6.4.0",
        "6.3.0",
        "5.10.0",
        "5.8.0",
        "5.6.0",
        "5.5.0",
        "5.3.0",
    ),
    "REL-6-MM7-1-4": (
        "6.8.0",
        "6.6.0",
        "6.5.0",
        "6.4.0",
        "6.3.0",
        "5.10.0",
        "5.8.0",
        "5.6.0",
        "5.5.0",
        "5.3.0",
    ),
}

#: Versions whose schema types TransactionID, Number and ShortCode as ``xs:NMTOKEN``:
#: no SOAP attributes on TransactionID, no ``+`` in Number, and SenderAddress is plain text.
LEGACY_VERSIONS: Final = frozenset({"REL-5-MM7-1-0", "REL-5-MM7-1-1"})

#: Versions whose address elements carry ``addressCoding``/``id`` attributes.
ADDRESS_SECURITY_VERSIONS: Final = frozenset(v for v in VERSIONS if v.startswith("REL-6"))

_VERSION_RE: Final = re.compile(r"REL-(\d+)-MM7-(\d+)-(\d+)")
_LOOSE_RE: Final = re.compile(r"REL-(\d+)-MM7(?:-(\d+))?(?:-(\d+))?")


def namespace_for(version: str) -> str:
    """Return the namespace URI of a schema version we emit."""
    return NAMESPACE_PREFIX + version


def is_known(version: str) -> bool:
    return version in MM7_VERSION_VALUES


@functools.lru_cache(maxsize=64)
def version_from_namespace(namespace: str | None) -> tuple[str | None, bool]:
    """Map a namespace URI to its version suffix.

    Returns ``(suffix, exact)``: ``exact`` is False when the namespace is not one of the
    official ten (a made-up ``REL-6-MM7-6-7``, a truncated ``REL-5-MM7-1``, or an
    unrelated URI); the suffix is still returned when one can be read from it.
    """
    if not namespace:
        return None, False
    tail = namespace.rstrip("/").rsplit("/", 1)[-1]
    if tail in MM7_VERSION_VALUES and namespace.startswith(NAMESPACE_PREFIX):
        return tail, True
    match = _LOOSE_RE.search(namespace)
    if match:
        return match.group(0), False
    return None, False


def closest_known(version: str | None) -> str:
    """Pick the official schema closest to a seen (possibly bogus) version suffix.

    Used to choose element layouts for leniency reports; never to reject input.
    """
    if version in MM7_VERSION_VALUES:
        return version
    if version:
        match = _LOOSE_RE.search(version)
        if match and match.group(1) == "5":
            return "REL-5-MM7-1-4" if match.group(3) else "REL-5-MM7-1-0"
    return DEFAULT_VERSION
