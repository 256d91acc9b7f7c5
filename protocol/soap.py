# Copyright 2026 The mm7-gateway authors. SPDX-License-Identifier: Apache-2.0
"""SOAP 1.1 envelope constants and the Fault code used for MM7 error responses."""

from __future__ import annotations

from typing import Final

SOAP_ENV_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
ENV: Final = "{" + SOAP_ENV_NS + "}"

#: Content-ID of the SOAP part in the multipart bodies we build.
SOAP_PART_ID: Final = "mm7-soap@mm7-gateway"


def fault_code_for(status_code: int) -> str:
    """SOAP faultcode for an MM7 error: the sender's fault for 2xxx, ours otherwise."""
    return "env:Client" if status_code // 1000 == 2 else "env:Server"
