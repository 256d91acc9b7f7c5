"""Our own listeners over TLS (DESIGN.md section 15): the API and MM7 listeners serve
HTTPS with ``[listen] tls_cert_file``/``tls_key_file``; with ``mm7_client_ca_file`` the MM7
listener requires an MMSC client certificate from that CA (none, an expired one or one
from another CA is refused); SIGHUP to a running ``mm7-gateway serve`` swaps in renewed
certificate files for new connections, and unusable files change nothing.

Certificates are made per test with the openssl CLI (``openssl ca`` for the expired one:
``x509 -req`` cannot date a certificate in the past).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from protocol import encode
from tests.gateway.callback_helpers import delivery_report
from tests.gateway.support import API_KEY, make_config
from tests.reliability.helpers import (
    Daemon,
    Pki,
    _issue,
    _openssl,
    free_port,
    gateway_toml,
    make_ca,
    make_pki,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

CLIENT_EXTENSIONS = (
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
)


def issue_expired_client(directory: Path) -> tuple[Path, Path]:
    """A client certificate from ``directory``'s CA that expired in 2020."""
    (directory / "index.txt").write_text("")
    (directory / "serial.txt").write_text("1000\n")
    (directory / "expired.ext").write_text(CLIENT_EXTENSIONS)
    (directory / "ca.cnf").write_text(
        "[ca]\ndefault_ca = test\n[test]\n"
        f"database = {directory}/index.txt\nnew_certs_dir = {directory}\n"
        f"serial = {directory}/serial.txt\ndefault_md = sha256\npolicy = any\n"
        "[any]\ncommonName = supplied\n"
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=expired-mmsc",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
        "-in", "expired.csr", "-out", "expired.pem", "-notext", "-extfile", "expired.ext",
        "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
        cwd=directory,
    )  # fmt: skip
    return directory / "expired.pem", directory / "expired.key"


def client_context(pki: Pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


async def post_report(url: str, context: ssl.SSLContext) -> int:
    content_type, body = encode(delivery_report("mid-1", "+12025550101", "Retrieved"))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=body, headers={"Content-Type": content_type}, ssl=context
        ) as response,
    ):
        await response.read()
        return response.status


async def test_https_listeners_and_mm7_client_certificates(
    tmp_path: Path, run_gateway: Any
) -> None:
    pki = make_pki(tmp_path / "pki")
    expired_cert, expired_key = issue_expired_client(tmp_path / "pki")
    make_ca(tmp_path / "other", "ca")
    _issue(tmp_path / "other", "ca", "client", "/CN=stranger", CLIENT_EXTENSIONS)
    running = await run_gateway(
        make_config(
            tmp_path / "data",
            "http://127.0.0.1:9/mm7",
            listen__tls_cert_file=str(pki.server_cert),
            listen__tls_key_file=str(pki.server_key),
            listen__mm7_client_ca_file=str(pki.ca),
        )
    )
    gateway = running.gateway
    api = "https://%s:%d" % gateway.listeners.api
    mm7 = "https://%s:%d/mm7" % gateway.listeners.mm7
    assert gateway.base_url().startswith("https://")
    # The API: HTTPS with our certificate, no client certificate needed; no clear text.
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            api + "/v1/messages/msg_unknown",
            headers={"Authorization": f"Bearer {API_KEY}"},
            ssl=client_context(pki),
        ) as response,
    ):
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"
    with pytest.raises(aiohttp.ClientError):
        await post_report("http://%s:%d/mm7" % gateway.listeners.mm7, ssl.create_default_context())
    # MM7: an MMSC with a client certificate from the configured CA is served.
    assert await post_report(mm7, client_context(pki, pki.client_cert, pki.client_key)) == 200
    # Refused: no certificate, an expired one, one from another CA. TLS 1.3 lets the
    # client finish its half of the handshake, so the refusal shows on the first request;
    # TLS 1.2 verifies the client certificate within the handshake, which then fails.
    port = gateway.listeners.mm7[1]
    assert await tls12_handshake(port, client_context(pki, pki.client_cert, pki.client_key))
    for name, context in {
        "none": client_context(pki),
        "expired": client_context(pki, expired_cert, expired_key),
        "other_ca": client_context(
            pki, tmp_path / "other/client.pem", tmp_path / "other/client.key"
        ),
    }.items():
        with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
            await post_report(mm7, context)
        assert not await tls12_handshake(port, context), name
    # What is wrong with the expired certificate is its date (same CA as the good one).
    verdict = subprocess.run(
        ["openssl", "verify", "-CAfile", str(pki.ca), str(expired_cert)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert verdict.returncode != 0
    assert "certificate has expired" in verdict.stdout + verdict.stderr


async def tls12_handshake(port: int, context: ssl.SSLContext) -> bool:
    """Whether a TLS 1.2 handshake with ``context`` succeeds."""
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    except (ssl.SSLError, ConnectionResetError):
        return False  # the server aborts a refused handshake without an alert
    writer.close()
    await writer.wait_closed()
    return True


def serial_of(certificate: bytes, form: str) -> str:
    out = subprocess.run(
        ["openssl", "x509", "-inform", form, "-noout", "-serial"],
        input=certificate,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    return out.decode().strip()


async def served_serial(port: int, pki: Pki) -> str:
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context(pki))
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        await writer.wait_closed()
    return serial_of(der, "DER")


async def test_sighup_reloads_the_listener_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    san = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    _issue(tmp_path / "pki", "ca", "renewed", "/CN=127.0.0.1", san)
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(pki.server_cert, live / "server.pem")
    shutil.copy(pki.server_key, live / "server.key")
    ports = {name: free_port() for name in ("api", "mm7", "ops")}
    config = tmp_path / "gateway.toml"
    config.write_text(
        gateway_toml(
            tmp_path / "data",
            f"http://127.0.0.1:{free_port()}/mm7",
            ports,
            listen={
                "tls_cert_file": str(live / "server.pem"),
                "tls_key_file": str(live / "server.key"),
            },
        )
    )
    first = serial_of(pki.server_cert.read_bytes(), "PEM")
    renewed = serial_of((tmp_path / "pki/renewed.pem").read_bytes(), "PEM")
    assert first != renewed
    daemon = Daemon(["serve", "--config", str(config)], tmp_path / "gateway.log")
    daemon.start()
    assert daemon.process is not None
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            try:
                served = await served_serial(ports["api"], pki)
                break
            except OSError:
                assert daemon.alive(), (tmp_path / "gateway.log").read_text()
                assert asyncio.get_running_loop().time() < deadline, "no HTTPS listener"
                await asyncio.sleep(0.1)
        assert served == first
        assert await served_serial(ports["mm7"], pki) == first
        # Renewal: the files are replaced, then the daemon is told.
        shutil.copy(tmp_path / "pki/renewed.pem", live / "server.pem")
        shutil.copy(tmp_path / "pki/renewed.key", live / "server.key")
        assert await served_serial(ports["api"], pki) == first  # nothing read before SIGHUP
        daemon.process.send_signal(signal.SIGHUP)
        deadline = asyncio.get_running_loop().time() + 10
        while (served := await served_serial(ports["api"], pki)) != renewed:
            assert asyncio.get_running_loop().time() < deadline, served
            await asyncio.sleep(0.05)
        assert await served_serial(ports["mm7"], pki) == renewed
        # A half-written certificate: the reload is refused, the renewed one stays.
        (live / "server.pem").write_text("-----BEGIN CERTIFICATE-----\ntruncated\n")
        daemon.process.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        assert daemon.alive()
        assert await served_serial(ports["api"], pki) == renewed
        assert "TLS reload failed" in (tmp_path / "gateway.log").read_text()
    finally:
        daemon.stop()


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"tls_key_file": "key"}, "tls_cert_file and tls_key_file go together"),
        ({"tls_cert_file": "cert"}, "tls_cert_file and tls_key_file go together"),
        (
            {"mm7_client_ca_file": "ca"},
            "mm7_client_ca_file needs tls_cert_file and tls_key_file (HTTPS)",
        ),
    ],
)
def test_check_config_refuses_incomplete_listener_tls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keys: dict[str, str], problem: str
) -> None:
    from gateway.cli import main

    for name in ("cert", "key", "ca"):
        (tmp_path / name).write_text("pem")
    listen = {key: str(tmp_path / value) for key, value in keys.items()}
    path = tmp_path / "gateway.toml"
    ports = {"api": 8080, "mm7": 8081, "ops": 9100}
    path.write_text(gateway_toml(tmp_path, "http://127.0.0.1:9/mm7", ports, listen=listen))
    assert main(["check-config", str(path)]) == 2
    assert capsys.readouterr().err == f"{path}: listen: {problem}\n"
