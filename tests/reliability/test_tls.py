"""Outbound MM7 over HTTPS: CA bundle, client certificate (mTLS), and what happens when
the TLS peer cannot be trusted (the message waits in the queue, nothing goes out in clear).

The CA and certificates are generated per test with the openssl CLI; the mock MMSC is the
real one, served by aiohttp with an ``ssl.SSLContext`` that requires a client certificate.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.support import make_config
from tests.reliability.helpers import eventually, free_port, make_ca, make_pki, server_context

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

MESSAGE = {"to": "+12025550101", "text": "over TLS"}


def tls_config(data_dir: Path, url: str, **tls: Any) -> Any:
    return make_config(
        data_dir,
        url,
        mmsc_timeout_seconds=3.0,
        mmsc_connect_timeout_seconds=2.0,
        **{f"mmsc_{k}": str(v) if isinstance(v, Path) else v for k, v in tls.items()},
    )


async def wait_error(running: Any, message_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The message once an attempt failed (it must stay queued, never be sent)."""
    resource: dict[str, Any] = {}

    async def failed_once() -> bool:
        nonlocal resource
        resource = await running.get(message_id)
        return resource["attempts"] >= 2 and resource["last_error"] is not None

    await eventually(failed_once, timeout, "a failed TLS attempt")
    return resource


async def test_mtls_submission_with_ca_bundle_and_client_certificate(
    tmp_path: Path, mocks: Any, run_gateway: Any
) -> None:
    pki = make_pki(tmp_path / "pki")
    mock = await mocks(ssl_context=server_context(pki, require_client_cert=True))
    assert mock.url.startswith("https://")
    running = await run_gateway(
        tls_config(
            tmp_path / "data",
            mock.url,
            tls_ca_file=pki.ca,
            tls_cert_file=pki.client_cert,
            tls_key_file=pki.client_key,
        )
    )
    status, body = await running.submit(MESSAGE)
    assert status == 202
    resource = await running.wait_status(body["id"], {"submitted", "delivered"})
    assert resource["recipients"][0]["mm7_message_id"].startswith("mock-")
    assert len(mock.posts) == 1
    assert mock.state().stats.requests["SubmitReq", "1000"] == 1


async def test_server_requiring_a_client_certificate_refuses_a_gateway_without_one(
    tmp_path: Path, mocks: Any, run_gateway: Any
) -> None:
    pki = make_pki(tmp_path / "pki")
    mock = await mocks(ssl_context=server_context(pki, require_client_cert=True))
    running = await run_gateway(tls_config(tmp_path / "data", mock.url, tls_ca_file=pki.ca))
    status, body = await running.submit(MESSAGE)
    assert status == 202
    resource = await wait_error(running, body["id"])
    assert resource["status"] == "queued", resource
    assert not mock.posts, "the MMSC must never see a request from an unauthenticated client"


async def test_untrusted_server_certificate_keeps_the_message_queued(
    tmp_path: Path, mocks: Any, run_gateway: Any
) -> None:
    pki = make_pki(tmp_path / "pki")
    other_ca = make_ca(tmp_path / "other", "other")
    mock = await mocks(ssl_context=server_context(pki, require_client_cert=False))
    running = await run_gateway(
        tls_config(
            tmp_path / "data",
            mock.url,
            tls_ca_file=other_ca,
            tls_cert_file=pki.client_cert,
            tls_key_file=pki.client_key,
        )
    )
    status, body = await running.submit(MESSAGE)
    assert status == 202
    resource = await wait_error(running, body["id"])
    assert resource["status"] == "queued", resource
    assert "certificate verify failed" in resource["last_error"].lower(), resource["last_error"]
    assert not mock.posts
    # Trust restored (a new process with the right CA): the same queued message goes out.
    await running.gateway.stop()
    fixed = await run_gateway(
        tls_config(
            tmp_path / "data",
            mock.url,
            tls_ca_file=pki.ca,
            tls_cert_file=pki.client_cert,
            tls_key_file=pki.client_key,
        )
    )
    await fixed.wait_status(body["id"], {"submitted", "delivered"})
    assert len(mock.posts) == 1


async def test_https_url_never_falls_back_to_clear_text(tmp_path: Path, run_gateway: Any) -> None:
    """A peer that does not speak TLS at all: all it ever receives is TLS handshakes."""
    received: list[bytes] = []

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")  # plain HTTP answer
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(sink, "127.0.0.1", free_port())
    port = server.sockets[0].getsockname()[1]
    try:
        running = await run_gateway(tls_config(tmp_path / "data", f"https://127.0.0.1:{port}/mm7"))
        status, body = await running.submit(MESSAGE)
        assert status == 202
        resource = await wait_error(running, body["id"])
        assert resource["status"] == "queued"
    finally:
        server.close()
        await server.wait_closed()
    assert received
    for chunk in received:
        assert chunk[:2] == b"\x16\x03", f"not a TLS handshake record: {chunk[:40]!r}"
        assert b"SubmitReq" not in chunk
        assert b"POST" not in chunk
