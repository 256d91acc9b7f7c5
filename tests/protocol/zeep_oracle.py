"""zeep's XSD engine loaded offline from the official schemas: an independent MM7 peer.

Imported by tests only (zeep drags in requests; protocol must never import it). The
SOAP envelope import is pointed at the local ``soapEnvelope.xsd`` and served by a
transport that can only read the shared schema folder, with zeep's ``forbid_external``
on, so nothing can reach the network.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import zeep
import zeep.xsd
from lxml import etree

from tests.protocol.xsd import SCHEMAS, SOAP_ENVELOPE_URL, XS, offline_parser


class LocalSchemaTransport:
    """The only ``load`` zeep gets: files under the shared schema folder."""

    def load(self, url: str) -> bytes:
        path = Path(url.removeprefix("file://")).resolve()
        if path.parent != SCHEMAS.resolve():
            raise PermissionError(f"zeep tried to load {url!r}; only local schemas are served")
        return path.read_bytes()


@functools.cache
def zeep_schema(version: str) -> zeep.xsd.Schema:
    document = etree.parse(str(SCHEMAS / f"{version}.xsd"), offline_parser())
    for imported in document.getroot().iter(XS + "import"):
        if imported.get("schemaLocation") == SOAP_ENVELOPE_URL:
            imported.set("schemaLocation", str(SCHEMAS / "soapEnvelope.xsd"))
    settings = zeep.Settings(forbid_external=True, forbid_dtd=True, forbid_entities=True)
    return zeep.xsd.Schema(
        document.getroot(),
        transport=LocalSchemaTransport(),
        location=str(SCHEMAS / f"{version}.xsd"),
        settings=settings,
    )


def element(version: str, tag: str) -> Any:
    ns = "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/" + version
    return zeep_schema(version).get_element(f"{{{ns}}}{tag}")
